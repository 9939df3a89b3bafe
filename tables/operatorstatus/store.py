"""Operator status's declaration: its topics, tables and message types. Its agents and views
import from here and from the rules beside it; `app/` knows nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import faust
from prometheus_client import Counter, Gauge

from app.codec import register_types
from app.main import app, dead_letters, settings, state_table
from app.metrics import REGISTRY
from app.topics import WEEK_S, declare_topic
from tables.operatorstatus.identity import Identities, identities_from_setting
from tables.operatorstatus.settings import operator_status_settings
from tables.operatorstatus.status import (
    CallAnswered,
    CallFinished,
    EndpointRegistered,
    EndpointUnregistered,
    LoggedIn,
    LoggedOut,
    OperatorCrm,
    StatusRequested,
)

__all__ = ["IdentityBook", "OperatorStatusCounters", "OperatorStatusTopics", "counters", "crm_table", "identities",
           "operator_status", "topics"]

operator_status = operator_status_settings()


@dataclass(frozen=True)
class OperatorStatusTopics:
    operator_commands: faust.TopicT  # input: CRM status changes people asked for, JSON
    sip_registrations: faust.TopicT  # input: SIP endpoints registered or gone, JSON
    operator_activity: faust.TopicT  # input here: what each operator did, as the call center saw it
    operator_crm_status: faust.TopicT  # compacted, by operator: the CRM status (and the push source)
    os_events: faust.TopicT  # internal: checked inputs in the partition of their operator
    dead_letters: faust.TopicT


def _declare() -> OperatorStatusTopics:
    s = operator_status
    return OperatorStatusTopics(
        operator_commands=declare_topic(app, settings, s.topic_operator_commands, retention_s=WEEK_S),
        sip_registrations=declare_topic(app, settings, s.topic_sip_registrations, retention_s=WEEK_S),
        operator_activity=declare_topic(app, settings, s.topic_operator_activity, retention_s=WEEK_S),
        operator_crm_status=declare_topic(app, settings, s.topic_operator_crm_status, compacted=True),
        os_events=declare_topic(app, settings, settings.internal_topic("os-events")),
        dead_letters=dead_letters,
    )


topics = _declare()
register_types((StatusRequested, EndpointRegistered, EndpointUnregistered, CallAnswered, CallFinished, LoggedIn, LoggedOut))

# by operator id, partitioned like the call center's operators (same key, same partition)
crm_table = state_table("os-crm", OperatorCrm.from_json, cache_keys=50_000)


@dataclass(frozen=True)
class OperatorStatusCounters:
    changes: Counter  # CRM status changes, per status and cause
    pause_syncs: Counter  # pause requests for Asterisk, per outcome
    pending_pauses: Gauge
    repairs: Counter  # drift repaired by reconciliation, per direction
    registrations_heard: Counter  # AMI endpoint events turned into sip-registrations
    known_interfaces: Gauge


counters = OperatorStatusCounters(
    changes=Counter("switchboard_operator_status_changes_total", "CRM status changes, per status and cause",
                    ["status", "cause"], registry=REGISTRY),
    pause_syncs=Counter("switchboard_ami_pause_syncs_total",
                        "Pause states sent to Asterisk (QueuePause), per outcome: ok, refused (not retried), retried",
                        ["outcome"], registry=REGISTRY),
    pending_pauses=Gauge("switchboard_ami_pending_pauses", "Operators whose pause Asterisk has not taken yet",
                         registry=REGISTRY),
    repairs=Counter("switchboard_ami_drift_repairs_total",
                    "Queue members whose Asterisk pause differed from their CRM status, per direction",
                    ["paused"], registry=REGISTRY),
    registrations_heard=Counter("switchboard_ami_endpoint_events_total",
                                "AMI endpoint events (PeerStatus, ContactStatus) sent on to sip-registrations",
                                ["registered"], registry=REGISTRY),
    known_interfaces=Gauge("switchboard_ami_known_interfaces",
                           "Queue members whose interface differs from their name and is known (Asterisk, OPERATOR_INTERFACES)",
                           registry=REGISTRY),
)


class IdentityBook:
    """This worker's `Identities`: from OPERATOR_INTERFACES at start, then whatever Asterisk
    tells (every worker hears it: QueueStatus, QueueMemberAdded). Views and routes read it."""

    def __init__(self, start: Identities) -> None:
        self.current = start
        counters.known_interfaces.set(len(start.interfaces))

    def learn(self, members: Iterable[tuple[str, str, str]]) -> None:
        self.current = self.current.learned(members)
        counters.known_interfaces.set(len(self.current.interfaces))

    def operator_of(self, name_or_interface: str) -> str:
        return self.current.operator_of(name_or_interface)

    def interface_of(self, operator: str) -> str:
        return self.current.interface_of(operator)


identities = IdentityBook(identities_from_setting(operator_status.operator_interfaces))
