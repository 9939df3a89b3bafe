"""The call center's declaration: its topics, tables and message types, and the reads its
views share with its agents. Agents and views of the call center import from here and from
the rules beside it; `app/` knows nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import faust

from app.codec import register_types
from app.housekeeping import mark_stream_time
from app.main import app, dead_letters, settings, state_table
from app.stages import topic_partitions
from app.state import UNBOUNDED
from app.streamtime import InputTracker, StreamMark
from app.topics import WEEK_S, declare_topic
from tables.callcenter import calls, events, operators, windows
from tables.callcenter.aliases import OperatorAliases
from tables.callcenter.calls import CallState
from tables.callcenter.operators import OperatorState
from tables.callcenter.queues import QueueState
from tables.callcenter.settings import callcenter_settings
from tables.callcenter.views import recent_window_starts, window_summary
from tables.callcenter.windows import WindowAgg, window_key, window_start

__all__ = ["CallCenterTopics", "calls_table", "cc_settings", "input_partitions", "input_tracker", "local_windows",
           "operator_aliases", "operators_table", "queues_table", "recent_windows", "topics", "windows_table"]


cc_settings = callcenter_settings()
operator_aliases = OperatorAliases.of(cc_settings.operator_aliases)  # one operator, several names


@dataclass(frozen=True)
class CallCenterTopics:
    qapp_events: faust.TopicT  # input: Asterisk queue_log records
    call_status: faust.TopicT  # compacted, by call id
    operator_status: faust.TopicT  # compacted, by agent
    operator_activity: faust.TopicT  # events, by agent: signed in or out, calls answered and ended
    queue_status: faust.TopicT  # compacted, by queue
    queue_metrics: faust.TopicT  # one record per queue and closed window
    cc_events: faust.TopicT  # internal: call events in the call's partition, operator events in the agent's
    cc_queues: faust.TopicT  # internal: waiting / member / window facts in the queue's partition
    dead_letters: faust.TopicT  # shared by every domain


def _declare() -> CallCenterTopics:
    s = settings
    return CallCenterTopics(
        qapp_events=declare_topic(app, s, s.topic_qapp_events),
        call_status=declare_topic(app, s, cc_settings.topic_call_status, compacted=True),
        operator_status=declare_topic(app, s, cc_settings.topic_operator_status, compacted=True),
        operator_activity=declare_topic(app, s, cc_settings.topic_operator_activity, retention_s=WEEK_S),
        queue_status=declare_topic(app, s, cc_settings.topic_queue_status, compacted=True),
        queue_metrics=declare_topic(app, s, cc_settings.topic_queue_metrics, retention_s=WEEK_S),
        cc_events=declare_topic(app, s, s.internal_topic("cc-events")),
        cc_queues=declare_topic(app, s, s.internal_topic("cc-queues")),
        dead_letters=dead_letters,
    )


topics = _declare()

# the messages its internal topics carry
register_types((
    events.CallEntered, events.CallRingNoAnswer, events.CallConnected, events.CallCompleted, events.CallTransferred,
    events.CallLeftUnanswered, events.MemberAdded, events.MemberRemoved, events.MemberPaused, events.AgentLoggedIn,
    calls.WaitingChange, calls.CallSwept, calls.CallEndInferred, operators.MemberChange, operators.OperatorSwept, StreamMark,
    windows.WindowFact,
))

# how far this worker has read qapp-events: the call center's stream time and freshness
input_tracker = InputTracker()
mark_stream_time(topics.qapp_events, input_tracker, topics.cc_events)


def input_partitions() -> int:
    """Partitions of the input topic as the cluster has it (it may be made outside)."""
    return topic_partitions(topics.qapp_events)


WINDOW_CACHE_KEYS = 50_000  # open windows and their ledgers, the last 15 minutes' windows


def _window_or_ledger(value: Any) -> WindowAgg | frozenset:
    return WindowAgg.from_json(value) if isinstance(value, dict) else frozenset(value)


# One table per kind of thing, keyed like the stream that writes it.
calls_table = state_table("cc-calls", CallState.from_json)
operators_table = state_table("cc-operators", OperatorState.from_json, cache_keys=UNBOUNDED)
queues_table = state_table("cc-queues", QueueState.from_json, cache_keys=UNBOUNDED)
# A queue's windows ("queue|start") and their ledgers of counted facts ("queue|start|bucket")
# share one table, so their writes land in order (see windows.FactCounter).
windows_table = state_table("cc-windows", _window_or_ledger, cache_keys=WINDOW_CACHE_KEYS)


def local_windows(queue: str, now: float, windows: Any = windows_table) -> Iterator[WindowAgg]:
    """This worker's windows of `queue` for the last 15 minutes (the queue must be local),
    from the table or from a batch's overlay of it."""
    for start in recent_window_starts(now, cc_settings.window_s):
        window = windows.get(window_key(queue, start))
        if window is not None:
            yield window


class RecentWindows:
    """`current_window` and `last_15m` of each local queue as the API shows them: made once
    per queue and current window, again after the queue stage wrote one of its windows,
    and after a rebalance (a status request for 500 queues would read 7,500 windows)."""

    def __init__(self) -> None:
        self.summaries: dict[str, tuple[float, int, dict]] = {}

    def of(self, queue: str, now: float) -> dict:
        current = window_start(now, cc_settings.window_s)
        known = self.summaries.get(queue)
        if known is not None and known[0] == current and known[1] == windows_table.generation:
            return known[2]
        summary = window_summary(local_windows(queue, now), now, cc_settings.window_s)
        self.summaries[queue] = (current, windows_table.generation, summary)
        return summary

    def changed(self, queue: str) -> None:
        self.summaries.pop(queue, None)


recent_windows = RecentWindows()
