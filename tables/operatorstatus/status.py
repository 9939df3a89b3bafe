"""Operator status (seed 003): the CRM status people see, and the Asterisk pause it implies.

Two levels. The CRM status is the source of truth: nine statuses, each with a reason and
a since, time spent in each today, calls taken and average handle time. The Asterisk
queue pause decides whether calls reach the operator; only ONLINE unpauses, ON_CALL is
CRM-only (the operator is already on a call), everything else pauses. A status change is
applied here first; syncing the pause over AMI is best-effort and never blocks it
(`OperatorOutcome.pause` says what Asterisk should be told, if anything).

What changes the status:
- a person (`StatusRequested`: the operator or a manager);
- telephony, the call center's `operator-activity` events (`CallAnswered` -> ON_CALL, CRM
  only; `CallFinished` -> WRAP_UP, counted when `confirmed` (its own COMPLETE* or
  TRANSFER), as the call center counts it; `LoggedIn` -> ONLINE and unpaused;
  `LoggedOut` -> OFFLINE and paused);
- the SIP endpoint (`EndpointUnregistered` -> OFFLINE, reason `Auto: SIP not registered`;
  `EndpointRegistered` -> ONLINE for an operator first heard of (the softphone's login) or
  set offline automatically, never after a manual status).

Every input carries its time; one older than what the operator's state has seen changes
nothing (a replay, a late duplicate), except a call's answer or end not yet counted: a
person's status can overtake the call center's report of a call, and the call still counts
(the later status stays). Each call counts once a day, by its id, however often its end is
told (a replay of the whole day included); the end of a call other than the current one
counts and leaves the status alone. Being added to a queue during a call leaves the
operator ON_CALL. Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import StrEnum
from typing import Optional, Union

__all__ = [
    "AFTER_CALL", "AUTO_PREFIX", "CALLS_REMEMBERED", "SIP_REGISTERED", "SIP_UNREGISTERED", "CallAnswered",
    "CallFinished", "CrmStatus", "EndpointRegistered", "EndpointUnregistered", "LoggedIn", "LoggedOut", "OperatorCrm",
    "OperatorInput", "OperatorOutcome", "PauseRequest", "StatusRequested", "TelephonyInput", "apply_operator_input",
    "asterisk_paused", "average_handle_time_s", "calls_taken_today", "desired_pause", "time_in_status_today",
]


class CrmStatus(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    PAUSE = "PAUSE"
    BREAK = "BREAK"
    TRAINING = "TRAINING"
    MEETING = "MEETING"
    WRAP_UP = "WRAP_UP"
    DO_NOT_DISTURB = "DO_NOT_DISTURB"
    ON_CALL = "ON_CALL"


AUTO_PREFIX = "Auto:"  # reasons the service set by itself
SIP_UNREGISTERED = "Auto: SIP not registered"
SIP_REGISTERED = "Auto: SIP registered"
AFTER_CALL = "after call"  # the reason of the WRAP_UP a call's end sets


def asterisk_paused(status: CrmStatus) -> Optional[bool]:
    """The seed's mapping: whether Asterisk should pause the operator in its queues; None
    for ON_CALL (local: Asterisk knows the operator is on a call)."""
    if status == CrmStatus.ON_CALL:
        return None
    return status != CrmStatus.ONLINE


def desired_pause(op: "OperatorCrm") -> Optional[bool]:
    """The pause Asterisk should hold for `op` as reconciliation sees it: the status's mapping,
    except for the WRAP_UP a call's end set (Asterisk's own wrapuptime runs it, then makes
    the member available while the CRM keeps WRAP_UP until the operator moves on)."""
    if op.status == CrmStatus.WRAP_UP and op.reason == AFTER_CALL:
        return None
    return asterisk_paused(op.status)


# --- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusRequested:
    """A person set the status (POST /operators/{id}/status)."""

    operator: str
    status: CrmStatus
    reason: str
    at: float
    by: str  # who asked (role or user), for the record


@dataclass(frozen=True, slots=True)
class CallAnswered:
    operator: str
    callid: str
    at: float


@dataclass(frozen=True, slots=True)
class CallFinished:
    operator: str
    callid: str
    at: float
    talk_s: float
    confirmed: bool = True  # its own end event; else proven over by other evidence: not counted


@dataclass(frozen=True, slots=True)
class LoggedIn:
    operator: str
    at: float


@dataclass(frozen=True, slots=True)
class LoggedOut:
    operator: str
    at: float


@dataclass(frozen=True, slots=True)
class EndpointRegistered:
    operator: str
    at: float


@dataclass(frozen=True, slots=True)
class EndpointUnregistered:
    operator: str
    at: float


TelephonyInput = Union[CallAnswered, CallFinished, LoggedIn, LoggedOut]
OperatorInput = Union[StatusRequested, CallAnswered, CallFinished, LoggedIn, LoggedOut, EndpointRegistered,
                      EndpointUnregistered]


# --- state ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorCrm:
    operator: str
    status: CrmStatus = CrmStatus.OFFLINE
    reason: str = ""
    since: Optional[float] = None  # when the current status began; None: never heard of
    last_time: float = 0.0  # the latest input applied
    day: str = ""  # the UTC day the tallies below are of
    counted_until: float = 0.0  # time in the current status is in the tallies up to here
    time_in_status_today_s: dict[str, float] = field(default_factory=dict)
    calls_today: int = 0
    talk_today_s: float = 0.0
    wrap_up_today_s: float = 0.0  # closed WRAP_UP stretches
    current_call: Optional[str] = None
    counted_calls: tuple[str, ...] = ()  # the calls counted on `day` (a replayed end counts once)

    @classmethod
    def from_json(cls, d: dict) -> "OperatorCrm":
        return cls(**{**d, "status": CrmStatus(d["status"]), "counted_calls": tuple(d["counted_calls"])})


@dataclass(frozen=True, slots=True)
class PauseRequest:
    """What Asterisk should be told (AMI `QueuePause`): best-effort, after the status is stored."""

    operator: str
    paused: bool
    reason: str
    queue: Optional[str] = None  # None: every queue the operator is a member of


@dataclass(frozen=True, slots=True)
class OperatorOutcome:
    operator: OperatorCrm
    changed: bool = True
    pause: Optional[PauseRequest] = None


CALLS_REMEMBERED = 1000  # calls an operator's day remembers as counted (one every 86 s, all day)


def apply_operator_input(op: Optional[OperatorCrm], event: OperatorInput) -> OperatorOutcome:
    """The operator's CRM state after `event`, and the Asterisk pause it implies (if any).
    An operator first heard of is OFFLINE from then on, whatever the event then does."""
    if op is None or op.since is None:
        known = OperatorCrm(event.operator, since=event.at, last_time=event.at, day=_day(event.at), counted_until=event.at)
        return replace(_apply(known, event), changed=True)
    return _apply(op, event)


def _apply(op: OperatorCrm, event: OperatorInput) -> OperatorOutcome:
    if event.at < op.last_time:
        if isinstance(event, (CallAnswered, CallFinished)):
            return _late_call(op, event)
        return OperatorOutcome(op, changed=False)  # older than what is known: a replay
    if isinstance(event, StatusRequested):
        return _set(op, event.at, event.status, event.reason or str(event.status))
    if isinstance(event, CallAnswered):
        if op.current_call == event.callid or event.callid in op.counted_calls:
            return OperatorOutcome(op, changed=False)
        after = _set(op, event.at, CrmStatus.ON_CALL, "call", pause=False)
        return replace(after, operator=replace(after.operator, current_call=event.callid))
    if isinstance(event, CallFinished):
        if event.callid in op.counted_calls:
            return OperatorOutcome(op, changed=False)
        if op.current_call not in (None, event.callid):  # another call is on: this one's end counts, no more
            return _late_call(op, event)
        if not event.confirmed and op.current_call != event.callid:
            return OperatorOutcome(op, changed=False)  # nothing to end, nothing to count
        after = _set(op, event.at, CrmStatus.WRAP_UP, AFTER_CALL, pause=False)  # Asterisk's wrapuptime does its own
        ended = replace(after.operator, current_call=None)
        return replace(after, operator=_counted(ended, event) if event.confirmed else ended)
    if isinstance(event, LoggedIn):
        if op.current_call is not None:  # added to a queue during a call: on it still
            return OperatorOutcome(replace(op, last_time=event.at), changed=False)
        return _set(op, event.at, CrmStatus.ONLINE, "logged in")
    if isinstance(event, LoggedOut):
        return _set(op, event.at, CrmStatus.OFFLINE, "offline")
    if isinstance(event, EndpointUnregistered):
        if op.status == CrmStatus.OFFLINE:
            return OperatorOutcome(replace(op, last_time=event.at), changed=False)  # offline already, whatever the reason
        return _set(op, event.at, CrmStatus.OFFLINE, SIP_UNREGISTERED)
    if isinstance(event, EndpointRegistered):
        # a softphone's first login, or back after the service set it offline; never after a person's status
        if op.status == CrmStatus.OFFLINE and (op.reason.startswith(AUTO_PREFIX) or not op.reason):
            return _set(op, event.at, CrmStatus.ONLINE, SIP_REGISTERED)
        return OperatorOutcome(replace(op, last_time=event.at), changed=False)  # a manual status stays
    raise TypeError(f"not an operator input: {event!r}")  # pragma: no cover


def _late_call(op: OperatorCrm, event: Union[CallAnswered, CallFinished]) -> OperatorOutcome:
    """A call's answer or end heard after a later input (a person's status takes a shorter
    path than the call center's view): the call still counts, the later status stays."""
    if event.callid in op.counted_calls:
        return OperatorOutcome(op, changed=False)
    today = _day(event.at) == op.day  # yesterday's call is not today's tally
    if isinstance(event, CallAnswered):
        if op.current_call is not None or not today:
            return OperatorOutcome(op, changed=False)
        return OperatorOutcome(replace(op, current_call=event.callid), changed=True)
    ended = replace(op, current_call=None if op.current_call == event.callid else op.current_call)
    if not event.confirmed or not today:
        return OperatorOutcome(ended, changed=ended != op)
    return OperatorOutcome(_counted(ended, event), changed=True)


def _counted(op: OperatorCrm, event: CallFinished) -> OperatorCrm:
    """`op` with the call `event` ended counted in today's tallies."""
    return replace(op, calls_today=op.calls_today + 1, talk_today_s=op.talk_today_s + max(0.0, event.talk_s),
                   counted_calls=(*op.counted_calls, event.callid)[-CALLS_REMEMBERED:])


def _set(op: OperatorCrm, at: float, status: CrmStatus, reason: str, pause: bool = True) -> OperatorOutcome:
    """`op` in `status` from `at`; `pause`: tell Asterisk what the status implies."""
    changed = (status, reason) != (op.status, op.reason)
    op = _count_until(op, at)
    since = at if status != op.status else op.since
    after = replace(op, status=status, reason=reason, since=since, last_time=at)
    paused = asterisk_paused(status)
    request = PauseRequest(op.operator, paused, reason) if pause and changed and paused is not None else None
    return OperatorOutcome(after, changed=changed, pause=request)


def _count_until(op: OperatorCrm, at: float) -> OperatorCrm:
    """Today's tallies with the time in the current status up to `at` added (a new UTC day
    starts them again)."""
    day = _day(at)
    if op.since is None:
        return replace(op, day=day, counted_until=at)
    if op.day != day:
        op = replace(op, day=day, time_in_status_today_s={}, calls_today=0, talk_today_s=0.0, wrap_up_today_s=0.0,
                     counted_calls=(), counted_until=max(op.counted_until, _midnight(at)))
    spent = max(0.0, at - op.counted_until)
    if not spent:
        return op
    totals = dict(op.time_in_status_today_s)
    totals[str(op.status)] = totals.get(str(op.status), 0.0) + spent
    wrap_up = op.wrap_up_today_s + (spent if op.status == CrmStatus.WRAP_UP else 0.0)
    return replace(op, time_in_status_today_s=totals, wrap_up_today_s=wrap_up, counted_until=at)


def time_in_status_today(op: OperatorCrm, now: float) -> dict[str, float]:
    """Seconds in each of the nine statuses since midnight (UTC) of `now`, the current one included."""
    counted = _count_until(op, max(now, op.counted_until))
    totals = counted.time_in_status_today_s if counted.day == _day(now) else {}
    return {str(s): round(totals.get(str(s), 0.0), 3) for s in CrmStatus}


def calls_taken_today(op: OperatorCrm, now: float) -> int:
    """Calls the operator finished since midnight (UTC) of `now`."""
    counted = _count_until(op, max(now, op.counted_until))
    return counted.calls_today if counted.day == _day(now) else 0


def average_handle_time_s(op: OperatorCrm, now: float) -> Optional[float]:
    """(talk + wrap-up) per call taken today; None before the first call."""
    counted = _count_until(op, max(now, op.counted_until))
    if counted.day != _day(now) or counted.calls_today == 0:
        return None
    return round((counted.talk_today_s + counted.wrap_up_today_s) / counted.calls_today, 3)


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d")


def _midnight(t: float) -> float:
    return t - t % 86400
