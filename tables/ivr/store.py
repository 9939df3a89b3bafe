"""IVR routing's declaration: its topics, tables and message types. Its agents and views
import from here and from the rules beside it; `app/` knows nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from prometheus_client import Counter

from app.codec import register_types
from app.housekeeping import mark_stream_time
from app.main import app, dead_letters, settings, state_table
from app.metrics import REGISTRY
from app.streamtime import InputTracker, StreamMark
from app.topics import WEEK_S, declare_topic
from tables.ivr.commands import BindInbound, RouteToIvr, RouteToOperator
from tables.ivr.rules import Binding, RoutingRule
from tables.ivr.settings import ivr_settings

__all__ = ["IvrCounters", "IvrTopics", "bindings_table", "counters", "input_tracker", "ivr", "rules_table", "topics"]

ivr = ivr_settings()


@dataclass(frozen=True)
class IvrTopics:
    ivr_commands: faust.TopicT  # input: commands of the HTTP endpoints (and of any service), JSON
    ivr_routing_rules: faust.TopicT  # compacted, by phone (E.164): the rule while calls go to the IVR
    ivr_events: faust.TopicT  # internal: checked commands in the partition of their key, and stream marks
    dead_letters: faust.TopicT


def _declare() -> IvrTopics:
    return IvrTopics(
        ivr_commands=declare_topic(app, settings, ivr.topic_ivr_commands, retention_s=WEEK_S),
        ivr_routing_rules=declare_topic(app, settings, ivr.topic_ivr_routing_rules, compacted=True),
        ivr_events=declare_topic(app, settings, settings.internal_topic("ivr-events")),
        dead_letters=dead_letters,
    )


topics = _declare()
register_types((BindInbound, RouteToIvr, RouteToOperator, StreamMark))

# how far this worker has read ivr-commands: the stream time rules and bindings expire by
input_tracker = InputTracker()
mark_stream_time(topics.ivr_commands, input_tracker, topics.ivr_events)

# by phone, and by order id; the telephony reads them on every call: from standbys too
rules_table = state_table("ivr-rules", RoutingRule.from_json, cache_keys=100_000, standby_reads=True)
bindings_table = state_table("ivr-bindings", Binding.from_json, cache_keys=100_000, standby_reads=True)


@dataclass(frozen=True)
class IvrCounters:
    holds_expired: Counter
    bindings_expired: Counter
    routing_answers: Counter


counters = IvrCounters(
    holds_expired=Counter("switchboard_ivr_holds_expired_total",
                          "Orders whose hold on a passenger's calls ended by its TTL (no route-to-operator came)",
                          registry=REGISTRY),
    bindings_expired=Counter("switchboard_ivr_bindings_expired_total", "Inbound-number bindings deleted by the clean-up",
                             registry=REGISTRY),
    routing_answers=Counter("switchboard_ivr_routing_answers_total", "GET /routing answers, by target and reason",
                            ["target", "reason"], registry=REGISTRY),
)
