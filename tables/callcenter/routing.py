"""Which stage hears of an event, under which key (the topology's one decision)."""

from __future__ import annotations

from tables.callcenter.events import (
    AgentLoggedIn,
    CallCompleted,
    CallConnected,
    CallEntered,
    CallLeftUnanswered,
    CallRingNoAnswer,
    CallTransferred,
    MemberAdded,
    MemberPaused,
    MemberRemoved,
)

__all__ = [
    "AGENTS", "CALLS", "destinations", "is_call_event", "is_operator_event",
]

CALLS, AGENTS = "calls", "agents"
_CALL_EVENTS = (CallEntered, CallRingNoAnswer, CallConnected, CallCompleted, CallTransferred, CallLeftUnanswered)
_AGENT_EVENTS = (MemberAdded, MemberRemoved, MemberPaused, AgentLoggedIn, CallConnected, CallCompleted, CallTransferred)


def destinations(event: object) -> list[tuple[str, str]]:
    """(stage, key) pairs: call events go to the call stage by call id, and whatever
    changes an operator goes to the operator stage by agent, so each keeps its order."""
    out = []
    if isinstance(event, _CALL_EVENTS):
        out.append((CALLS, event.callid))
    if isinstance(event, _AGENT_EVENTS):
        out.append((AGENTS, event.agent))
    return out


def is_call_event(event: object) -> bool:
    return isinstance(event, _CALL_EVENTS)


def is_operator_event(event: object) -> bool:
    return isinstance(event, _AGENT_EVENTS)


