"""Typed call-center events: what one Asterisk queue_log record means.

A record on `qapp-events` (raw queue_log line or its JSON form) is first decoded into a
`QueueLogRecord` (the six columns, data still strings), then interpreted into one of the
event classes below, with the data fields of every Asterisk layout (1.4 to 22) mapped to
named, typed attributes. Everything here is plain data: no Kafka, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Optional, Union

__all__ = [
    "AgentLoggedIn", "CallCenterEvent", "CallCompleted", "CallConnected", "CallEntered", "CallEvent",
    "CallLeftUnanswered", "CallRingNoAnswer", "CallTransferred", "Ignored", "MalformedEvent", "MemberAdded",
    "MemberEvent", "MemberPaused", "MemberRemoved", "NONE", "QueueLogRecord", "TransferKind", "UNANSWERED_KINDS",
    "UnansweredKind",
]

NONE = "NONE"  # Asterisk's placeholder for "no call id / no queue / no agent"


class TransferKind(StrEnum):
    """How an operator transferred a call (the queue_log event)."""

    TRANSFER = "TRANSFER"  # Asterisk <= 11
    BLINDTRANSFER = "BLINDTRANSFER"
    ATTENDEDTRANSFER = "ATTENDEDTRANSFER"


class UnansweredKind(StrEnum):
    """How a call left a queue without an operator (the queue_log event)."""

    ABANDON = "ABANDON"  # the caller hung up
    EXITWITHTIMEOUT = "EXITWITHTIMEOUT"
    EXITEMPTY = "EXITEMPTY"
    EXITWITHKEY = "EXITWITHKEY"
    WITHDRAW = "WITHDRAW"  # Asterisk 16.25+: withdrawn by the dialplan; not counted as unanswered


class MalformedEvent(ValueError):
    """The bytes are not a queue_log record; `reason` says why (goes to dead-letters)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class QueueLogRecord:
    """One queue_log record, columns as Asterisk writes them (the JSON form of `qapp-events`)."""

    time: float  # epoch seconds, may carry a fraction
    callid: str
    queue: str
    agent: str
    event: str  # upper case, as in app_queue.c
    data: tuple[str, ...] = ()


# --- calls -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallEntered:  # ENTERQUEUE
    time: float
    callid: str
    queue: str
    callerid: str
    position: Optional[int]  # origposition; absent in Asterisk 1.4


@dataclass(frozen=True, slots=True)
class CallRingNoAnswer:  # RINGNOANSWER / RINGCANCELED
    time: float
    callid: str
    queue: str
    agent: str
    ringtime_s: float  # Asterisk writes milliseconds
    canceled: bool = False


@dataclass(frozen=True, slots=True)
class CallConnected:  # CONNECT
    time: float
    callid: str
    queue: str
    agent: str
    holdtime_s: float
    ringtime_s: Optional[float]  # absent in Asterisk 1.4


@dataclass(frozen=True, slots=True)
class CallCompleted:  # COMPLETEAGENT / COMPLETECALLER
    time: float
    callid: str
    queue: str
    agent: str
    holdtime_s: float
    calltime_s: float
    by_agent: bool


@dataclass(frozen=True, slots=True)
class CallTransferred:  # TRANSFER (<= 11), BLINDTRANSFER, ATTENDEDTRANSFER
    time: float
    callid: str
    queue: str
    agent: str
    kind: TransferKind
    target: str  # exten@context, or the attended-transfer method data
    holdtime_s: float
    calltime_s: float


@dataclass(frozen=True, slots=True)
class CallLeftUnanswered:  # ABANDON, EXITWITHTIMEOUT, EXITEMPTY, EXITWITHKEY, WITHDRAW
    time: float
    callid: str
    queue: str
    kind: UnansweredKind
    waittime_s: Optional[float]  # absent in some 1.4 layouts
    position: Optional[int]
    key: Optional[str] = None  # EXITWITHKEY only


# --- operators (queue members) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberAdded:  # ADDMEMBER
    time: float
    queue: str
    agent: str
    paused: bool


@dataclass(frozen=True, slots=True)
class MemberRemoved:  # REMOVEMEMBER
    time: float
    queue: str
    agent: str


@dataclass(frozen=True, slots=True)
class MemberPaused:  # PAUSE / UNPAUSE (one queue), PAUSEALL / UNPAUSEALL (queue None)
    time: float
    queue: Optional[str]  # None = every queue of the agent
    agent: str
    paused: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AgentLoggedIn:  # AGENTLOGIN / AGENTLOGOFF (chan_agent era)
    time: float
    agent: str
    logged_in: bool
    channel: str = ""


@dataclass(frozen=True, slots=True)
class Ignored:
    """A known or unknown event that changes no state (QUEUESTART, CONFIGRELOAD, ...)."""

    time: float
    event: str
    known: bool  # False: an event type this service does not know; counted separately


CallEvent = Union[CallEntered, CallRingNoAnswer, CallConnected, CallCompleted, CallTransferred, CallLeftUnanswered]
MemberEvent = Union[MemberAdded, MemberRemoved, MemberPaused, AgentLoggedIn]
CallCenterEvent = Union[CallEvent, MemberEvent, Ignored]

UNANSWERED_KINDS = frozenset(UnansweredKind) - {UnansweredKind.WITHDRAW}  # counted in the windows
