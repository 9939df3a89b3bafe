"""Per-call state: what each queue_log call event does to one call.

`apply_call_event(call, event)` is the whole rule. Events of one call arrive in order
but may be lost, duplicated or replayed after a crash, so an event older than what the
call has already seen (by time, then by its place in a call's life) changes nothing;
it still re-announces the call's current view, which is idempotent downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Optional

from tables.callcenter.events import (
    UNANSWERED_KINDS,
    CallCompleted,
    CallConnected,
    CallEntered,
    CallEvent,
    CallLeftUnanswered,
    CallRingNoAnswer,
    CallTransferred,
    UnansweredKind,
)
from tables.callcenter.windows import ANSWERED, COMPLETED, ENTERED, UNANSWERED, WindowFact

__all__ = [
    "ABANDONED", "CLOSED", "COMPLETED_STATUS", "CONNECT_LOST", "CallEndInferred", "CallOutcome", "CallState",
    "CallStatus", "CallSwept", "END_LOST", "EXITED", "EndEvidence", "LOST", "OPEN_STATUSES", "TALKING",
    "TRANSFERRED", "WAITING", "WaitingChange", "apply_call_event", "past_retention",
]


class CallStatus(StrEnum):
    """A call's state in `call-status` (SPEC.md)."""

    WAITING = "waiting"
    TALKING = "talking"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    EXITED = "exited"
    TRANSFERRED = "transferred"
    LOST = "lost"  # waited longer than CALL_WAIT_TIMEOUT_S
    CLOSED = "closed"  # talked longer than CALL_TALK_TIMEOUT_S


WAITING, TALKING, COMPLETED_STATUS, ABANDONED, EXITED, TRANSFERRED, LOST, CLOSED = CallStatus
OPEN_STATUSES = (WAITING, TALKING)


@dataclass(frozen=True, slots=True)
class CallState:
    callid: str
    queue: str
    status: CallStatus
    entered_at: Optional[float] = None
    answered_at: Optional[float] = None
    ended_at: Optional[float] = None
    callerid: str = ""
    position: Optional[int] = None
    agent: Optional[str] = None
    holdtime_s: Optional[float] = None
    calltime_s: Optional[float] = None
    rings: int = 0
    end_reason: Optional[str] = None
    last_time: float = 0.0
    last_rank: int = -1

    def to_json(self) -> dict:
        # every field is a plain value: no need of asdict's deep copies (a hot path: call-status)
        return {name: getattr(self, name) for name in _CALL_FIELDS}

    @classmethod
    def from_json(cls, d: dict) -> "CallState":
        return cls(**{**d, "status": CallStatus(d["status"])})


_CALL_FIELDS = tuple(f.name for f in fields(CallState))


@dataclass(frozen=True, slots=True)
class WaitingChange:
    """Whether a call waits in a queue, as of `time`; the queue stage keeps the set."""

    queue: str
    callid: str
    time: float
    waiting_since: Optional[float]  # None: not (or no longer) waiting


@dataclass(frozen=True, slots=True)
class CallSwept:
    """The staleness sweep's verdict on a call nobody heard of for too long."""

    time: float
    callid: str
    queue: str
    status: CallStatus  # LOST (waited too long) | CLOSED (talked too long)


class EndEvidence(StrEnum):
    """What proved a talking call over though its end was lost (the metric's `kind`)."""

    SUPERSEDED = "call_superseded"  # its operator answered another call (one call at a time)
    OPERATOR_LEFT = "call_operator_left"  # its operator left every queue, or logged off


@dataclass(frozen=True, slots=True)
class CallEndInferred:
    """A later event proves a talking call over, its own end lost: the call closes with an
    unknown end (no window fact is invented) unless its own end arrives after all."""

    time: float  # of the evidence
    callid: str
    queue: str
    evidence: EndEvidence
    detail: str  # what the evidence was, for `end_reason`


@dataclass(frozen=True, slots=True)
class CallOutcome:
    call: Optional[CallState]  # the state to store (and publish on `call-status`)
    waiting: tuple[WaitingChange, ...] = ()
    facts: tuple[WindowFact, ...] = ()
    changed: bool = True
    healed: str = ""  # the lost event this one proves (a `switchboard_staleness_resets_total` kind), if any


# The place of each event in a call's life: breaks ties between events of one second.
_RANK = {CallEntered: 0, CallRingNoAnswer: 1, CallConnected: 2}
_TERMINAL_RANK = 3


def apply_call_event(call: Optional[CallState], event: CallEvent | CallSwept | CallEndInferred) -> CallOutcome:
    if isinstance(event, CallSwept):
        return _swept(call, event)
    if isinstance(event, CallEndInferred):
        return _end_inferred(call, event)
    fact = _fact(event)
    facts = (fact,) if fact is not None else ()
    rank = _RANK.get(type(event), _TERMINAL_RANK)
    if call is not None and _already_seen(call, event, rank):
        return CallOutcome(call, _announce(call), facts, changed=False)
    return replace(_apply(call, event, rank), facts=facts, healed=_healed(call, event))


CONNECT_LOST = "call_connect_lost"  # an end for a call still waiting: its CONNECT was lost
END_LOST = "call_end_lost"  # a call talking enters a queue again: its end (or transfer) was lost


def _healed(call: Optional[CallState], event: CallEvent) -> str:
    """What lost event `event` (not seen before) proves, given the call as it was."""
    if call is None:
        return ""  # nothing known before: a log that starts mid-call, not a loss
    if isinstance(event, (CallCompleted, CallTransferred)) and call.status == WAITING:
        return CONNECT_LOST
    if isinstance(event, CallEntered) and call.status == TALKING:
        return END_LOST
    return ""


def _already_seen(call: CallState, event: CallEvent, rank: int) -> bool:
    """Older than (or the same as) what the call has seen. An ENTERQUEUE in the second a
    call left a queue is its next life (dialplan failover, a transfer into a queue)."""
    if isinstance(event, CallEntered) and event.time >= call.last_time:
        if call.queue != event.queue:
            return False
        if call.status == TALKING and event.time > call.last_time:
            return False  # in the queue again after its answer: the talk's end was lost
        if call.status in OPEN_STATUSES:
            return True  # it is waiting or talking here already
        if event.time > call.last_time:
            return False
    return (event.time, rank) <= (call.last_time, call.last_rank)


def _apply(call: Optional[CallState], event: CallEvent, rank: int) -> CallOutcome:
    if isinstance(event, CallEntered):
        new = CallState(
            callid=event.callid,
            queue=event.queue,
            status=WAITING,
            entered_at=event.time,
            callerid=event.callerid,
            position=event.position,
        )
    elif isinstance(event, CallRingNoAnswer):
        base = call or _unseen(event.callid, event.queue, WAITING)
        new = replace(base, rings=base.rings + 1)
    elif isinstance(event, CallConnected):
        base = call or _unseen(event.callid, event.queue, WAITING, entered_at=event.time - event.holdtime_s)
        new = replace(
            base,
            queue=event.queue,
            status=TALKING,
            answered_at=event.time,
            agent=event.agent,
            holdtime_s=event.holdtime_s,
        )
    elif isinstance(event, CallCompleted):
        base = call or _unseen(event.callid, event.queue, TALKING, answered_at=event.time - event.calltime_s)
        new = replace(
            base,
            status=COMPLETED_STATUS,
            agent=event.agent,
            ended_at=event.time,
            holdtime_s=event.holdtime_s,
            calltime_s=event.calltime_s,
            end_reason="COMPLETEAGENT" if event.by_agent else "COMPLETECALLER",
        )
    elif isinstance(event, CallTransferred):
        base = call or _unseen(event.callid, event.queue, TALKING, answered_at=event.time - event.calltime_s)
        new = replace(
            base,
            status=TRANSFERRED,
            agent=event.agent,
            ended_at=event.time,
            holdtime_s=event.holdtime_s,
            calltime_s=event.calltime_s,
            end_reason=f"{event.kind} {event.target}".strip(),
        )
    elif isinstance(event, CallLeftUnanswered):
        base = call or _unseen(
            event.callid,
            event.queue,
            WAITING,
            entered_at=None if event.waittime_s is None else event.time - event.waittime_s,
        )
        new = replace(
            base,
            status=ABANDONED if event.kind == UnansweredKind.ABANDON else EXITED,
            ended_at=event.time,
            holdtime_s=event.waittime_s,
            end_reason=event.kind if event.key is None else f"{event.kind} {event.key}",
        )
    else:  # pragma: no cover - the union is exhaustive
        raise TypeError(f"not a call event: {event!r}")
    # the event's queue is where the call is now, even if what moved it there was lost
    new = replace(new, queue=event.queue, last_time=event.time, last_rank=rank)
    waiting = _announce(new)
    if call is not None and call.queue != new.queue and call.status == WAITING:
        waiting = (WaitingChange(call.queue, call.callid, event.time, None), *waiting)
    return CallOutcome(new, waiting)


def _swept(call: Optional[CallState], sweep: CallSwept) -> CallOutcome:
    expected = WAITING if sweep.status == LOST else TALKING
    if call is None or call.status != expected or (sweep.status == LOST and call.queue != sweep.queue):
        return CallOutcome(call, changed=False)
    new = replace(
        call,
        status=sweep.status,
        ended_at=sweep.time,
        end_reason="staleness sweep",
        # the verdict ends this life: a replayed event of it must not bring the call back
        last_time=max(call.last_time, sweep.time),
        last_rank=_TERMINAL_RANK,
    )
    return CallOutcome(new, _announce(new))


def _end_inferred(call: Optional[CallState], inferred: CallEndInferred) -> CallOutcome:
    if call is None or call.status != TALKING or call.last_time > inferred.time:
        return CallOutcome(call, changed=False)  # ended already, or heard of since the evidence
    # last_time stays: the call's own end, should it arrive, still says how it really ended
    new = replace(call, status=CLOSED, ended_at=inferred.time, end_reason=f"unknown end: {inferred.detail}")
    return CallOutcome(new, _announce(new))


def _unseen(callid: str, queue: str, status: CallStatus, **fields) -> CallState:
    """A call whose earlier events were lost: start from what this event tells."""
    return CallState(callid=callid, queue=queue, status=status, **fields)


def _announce(call: CallState) -> tuple[WaitingChange, ...]:
    waiting_since = call.entered_at if call.status == WAITING else None
    if call.status == WAITING and waiting_since is None:
        waiting_since = call.last_time
    return (WaitingChange(call.queue, call.callid, call.last_time, waiting_since),)


def _fact(event: CallEvent) -> Optional[WindowFact]:
    fact_id = f"{type(event).__name__}:{event.callid}:{event.time}"
    if isinstance(event, CallEntered):
        return WindowFact(fact_id, event.queue, event.time, ENTERED)
    if isinstance(event, CallConnected):
        return WindowFact(fact_id, event.queue, event.time, ANSWERED, wait_s=event.holdtime_s)
    if isinstance(event, CallLeftUnanswered) and event.kind in UNANSWERED_KINDS:
        fact_id = f"{event.kind}:{event.callid}:{event.time}"
        return WindowFact(
            fact_id, event.queue, event.time, UNANSWERED, wait_s=event.waittime_s, abandoned=event.kind == UnansweredKind.ABANDON
        )
    if isinstance(event, CallCompleted):
        return WindowFact(fact_id, event.queue, event.time, COMPLETED, talk_s=event.calltime_s)
    return None


def past_retention(call: CallState, now: float, retention_s: float) -> bool:
    """An ended call nobody needs any more: its table entry and `call-status` key may go."""
    return call.status not in OPEN_STATUSES and call.ended_at is not None and now - call.ended_at > retention_s
