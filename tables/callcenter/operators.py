"""Per-operator telephony state: queue memberships, pauses, current calls, today's tallies.

`apply_operator_event(op, event)` is the rule for one operator. It answers with the
operator's new state and a `MemberChange` for every queue whose view of the operator
changed (logged in? paused? on a call?), which the queue stage counts.
Events of one operator are expected in order, but the rule tolerates reordering
between calls (a COMPLETE before its CONNECT) and loss (a PAUSE for a queue whose
ADDMEMBER was lost makes the operator a member).
"""

from __future__ import annotations

import time as _time
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from typing import Iterable, Optional

from tables.callcenter.calls import CLOSED, CallEndInferred, CallSwept, EndEvidence
from tables.callcenter.events import (
    AgentLoggedIn,
    CallCompleted,
    CallConnected,
    CallTransferred,
    MemberAdded,
    MemberPaused,
    MemberRemoved,
)

__all__ = [
    "AVAILABLE", "CurrentCall", "MemberChange", "Membership", "OFFLINE", "ON_CALL", "OperatorEvent",
    "OperatorOutcome", "OperatorState", "OperatorSwept", "PAUSED", "STATES", "TelephonyState",
    "apply_operator_event", "day_of", "member_views", "needs_sweep", "telephony_state", "time_in_state_today",
]


class TelephonyState(StrEnum):
    """What the queues see of an operator (SPEC.md `operator-status.state`)."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    PAUSED = "paused"
    ON_CALL = "on_call"


OFFLINE, AVAILABLE, PAUSED, ON_CALL = TelephonyState
STATES = tuple(TelephonyState)
_RECENT_ENDED = 16  # calls ended lately, so a late CONNECT of one is not taken for a new call

OperatorEvent = MemberAdded | MemberRemoved | MemberPaused | AgentLoggedIn | CallConnected | CallCompleted | CallTransferred


@dataclass(frozen=True, slots=True)
class OperatorSwept:
    """The staleness sweep asks an operator whether it is still alive at `time`."""

    time: float
    idle_timeout_s: float
    talk_timeout_s: float


@dataclass(frozen=True, slots=True)
class Membership:
    """One queue's membership: its pause state as of `since`, the time of the membership event
    that set it. A CONNECT proves the membership of a member never seen added or removed there
    (a static member of queues.conf, or one whose ADDMEMBER is lost) without telling its pause
    state: it sets `proven` (the latest such time) and leaves `since` alone (0.0 when no
    membership event is known), so any membership event, however late it arrives, still sets
    the pause state. An explicit REMOVEMEMBER holds until the next ADDMEMBER, whatever
    activity follows it (a call ringing when the member was removed may still connect)."""

    paused: bool = False
    reason: str = ""
    since: float = 0.0
    proven: float = 0.0


@dataclass(frozen=True, slots=True)
class CurrentCall:
    callid: str
    queue: str
    since: float


@dataclass(frozen=True, slots=True)
class OperatorState:
    agent: str
    queues: dict[str, Membership] = field(default_factory=dict)
    calls: dict[str, CurrentCall] = field(default_factory=dict)
    left: dict[str, float] = field(default_factory=dict)  # queue -> when the operator left it
    removed: dict[str, float] = field(default_factory=dict)  # queue -> its REMOVEMEMBER not yet undone by an ADDMEMBER
    agent_logged_in: bool = True  # chan_agent AGENTLOGOFF makes every membership idle
    agent_login_since: float = 0.0
    ended_calls: tuple[tuple[str, float], ...] = ()  # (call id, end time) of the latest calls
    # calls ended by evidence (`CallEndInferred`) whose own end has not arrived: when it does,
    # it still counts in today's tally
    unconfirmed_ends: tuple[str, ...] = ()
    state: TelephonyState = OFFLINE
    state_since: Optional[float] = None
    last_time: float = 0.0
    day: str = ""
    calls_today: int = 0
    talk_time_today_s: float = 0.0
    time_in_state_today_s: dict[str, float] = field(default_factory=dict)
    idle_resets: int = 0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "OperatorState":
        return cls(
            **{
                **d,
                "queues": {q: Membership(**m) for q, m in d["queues"].items()},
                "calls": {c: CurrentCall(**v) for c, v in d["calls"].items()},
                "ended_calls": tuple((c, t) for c, t in d["ended_calls"]),
                "unconfirmed_ends": tuple(d.get("unconfirmed_ends", ())),
                "state": TelephonyState(d["state"]),
            }
        )


@dataclass(frozen=True, slots=True)
class MemberChange:
    """How one queue sees one operator as of `time`; logged_in False removes it."""

    queue: str
    agent: str
    time: float
    logged_in: bool
    paused: bool
    on_call: bool


@dataclass(frozen=True, slots=True)
class OperatorOutcome:
    operator: OperatorState
    members: tuple[MemberChange, ...] = ()
    swept_calls: tuple[CallSwept, ...] = ()
    inferred_ends: tuple[CallEndInferred, ...] = ()  # calls this event proved over (their ends lost)
    changed: bool = True


def apply_operator_event(op: Optional[OperatorState], event: OperatorEvent | OperatorSwept,
                         max_calls: int = 1) -> OperatorOutcome:
    """`max_calls`: how many queue calls an operator can be on at once (Asterisk's
    `ringinuse=no`: one); a CONNECT beyond it proves the oldest current call over."""
    before = op or OperatorState(agent=getattr(event, "agent", ""))
    inferred: tuple[CallEndInferred, ...] = ()
    if isinstance(event, OperatorSwept):
        after, swept = _sweep(before, event)
    else:
        after, swept = _apply(before, event), ()
        after, inferred = _end_proven_calls(after, max_calls)
    now = max(event.time, before.last_time)
    after = _settle(before, replace(after, last_time=now) if not isinstance(event, OperatorSwept) else after, now)
    changes = _member_changes(before, after, now)
    if after == before and isinstance(event, OperatorSwept):
        return OperatorOutcome(after, changed=False)
    if after == before:
        # nothing new: a duplicate or replay. Say again what queues should know (idempotent).
        return OperatorOutcome(after, member_views(after), changed=False)
    return OperatorOutcome(after, changes, swept, inferred)


def _end_proven_calls(op: OperatorState, max_calls: int) -> tuple[OperatorState, tuple[CallEndInferred, ...]]:
    """End the current calls a later event proves over: those beyond `max_calls` (the
    oldest: a newer CONNECT), and those that began before the operator left every queue
    or logged off."""
    if not op.calls:
        return op, ()
    gone_at, how = None, ""
    if not op.agent_logged_in:
        gone_at, how = op.agent_login_since, "its operator logged off"
    elif not op.queues and op.left:
        gone_at, how = max(op.left.values()), "its operator left every queue"
    ended: list[CallEndInferred] = []
    current = sorted(op.calls.values(), key=lambda c: (c.since, c.callid))
    if gone_at is not None:
        ended += [CallEndInferred(gone_at, c.callid, c.queue, EndEvidence.OPERATOR_LEFT, how)
                  for c in current if c.since < gone_at]
        current = [c for c in current if c.since >= gone_at]
    if len(current) > max_calls:
        newest = current[-1]
        ended += [CallEndInferred(newest.since, c.callid, c.queue, EndEvidence.SUPERSEDED,
                                  f"its operator answered call {newest.callid}")
                  for c in current[: len(current) - max_calls]]
    if not ended:
        return op, ()
    gone = {e.callid for e in ended}
    return replace(
        op,
        calls={c: v for c, v in op.calls.items() if c not in gone},
        ended_calls=(*op.ended_calls, *((e.callid, e.time) for e in ended))[-_RECENT_ENDED:],
        unconfirmed_ends=(*op.unconfirmed_ends, *(e.callid for e in ended))[-_RECENT_ENDED:],
    ), tuple(ended)


def needs_sweep(op: OperatorState, sweep: OperatorSwept) -> bool:
    """Whether the sweep can change `op` at all (most operators, most of the time, not)."""
    if op.state != OFFLINE and sweep.time - op.last_time > sweep.idle_timeout_s:
        return True
    return any(sweep.time - c.since > sweep.talk_timeout_s for c in op.calls.values())


def member_views(op: OperatorState) -> tuple[MemberChange, ...]:
    return tuple(_view(op, q, op.last_time) for q in op.queues)


def telephony_state(op: OperatorState) -> TelephonyState:
    if op.calls:
        return ON_CALL
    if not op.queues or not op.agent_logged_in:
        return OFFLINE
    if all(m.paused for m in op.queues.values()):
        return PAUSED
    return AVAILABLE


def time_in_state_today(op: OperatorState, now: float) -> dict[str, float]:
    """Seconds in each telephony state since midnight (UTC) of `now`, the current state included."""
    totals = dict(op.time_in_state_today_s) if op.day == day_of(now) else {}
    if op.state_since is not None:
        start = max(op.state_since, _midnight(now))
        state = str(op.state)  # keys stay plain text in what is stored and sent
        totals[state] = totals.get(state, 0.0) + max(0.0, now - start)
    return {str(s): round(totals.get(s, 0.0), 3) for s in STATES}


def _apply(op: OperatorState, event: OperatorEvent) -> OperatorState:
    if isinstance(event, MemberAdded):
        current = op.queues.get(event.queue)
        if (current is not None and current.since >= event.time) or _left_after(op, event.queue, event.time):
            return op  # a duplicate, or older than what is known of this membership
        left = {q: t for q, t in op.left.items() if q != event.queue}
        removed = {q: t for q, t in op.removed.items() if q != event.queue}
        proven = 0.0 if current is None else current.proven
        return replace(op, queues={**op.queues, event.queue: Membership(event.paused, "", event.time, proven)},
                       left=left, removed=removed)
    if isinstance(event, MemberRemoved):
        current = op.queues.get(event.queue)
        if current is not None and current.since > event.time:
            return op
        left = {**op.left, event.queue: max(op.left.get(event.queue, 0.0), event.time)}
        removed = {**op.removed, event.queue: left[event.queue]}
        queues = {q: m for q, m in op.queues.items() if q != event.queue}
        return replace(op, queues=queues, left=left, removed=removed)
    if isinstance(event, MemberPaused):
        targets = [event.queue] if event.queue is not None else list(op.queues)
        queues = dict(op.queues)
        for q in targets:
            if q not in queues and _not_a_member(op, q, event.time):
                continue
            current = queues.get(q, Membership(since=event.time))  # a PAUSE proves a membership we missed
            if current.since <= event.time:
                queues[q] = Membership(event.paused, event.reason if event.paused else "", event.time, current.proven)
        return replace(op, queues=queues)
    if isinstance(event, AgentLoggedIn):
        if event.time < op.agent_login_since:
            return op
        return replace(op, agent_logged_in=event.logged_in, agent_login_since=event.time)
    if isinstance(event, CallConnected):
        if event.callid in op.calls or _ended_already(op, event.callid, event.time):
            return op
        queues, current = op.queues, op.queues.get(event.queue)
        if current is not None and current.proven < event.time:
            queues = {**queues, event.queue: replace(current, proven=event.time)}  # answered there: a member
        elif current is None and not _not_a_member(op, event.queue, event.time):
            queues = {**queues, event.queue: Membership(proven=event.time)}  # a static member, or its ADDMEMBER lost
        return replace(op, queues=queues, calls={**op.calls, event.callid: CurrentCall(event.callid, event.queue, event.time)})
    if isinstance(event, (CallCompleted, CallTransferred)):
        if event.callid in op.unconfirmed_ends:  # ended by evidence; its own end still counts
            op = replace(op, unconfirmed_ends=tuple(c for c in op.unconfirmed_ends if c != event.callid))
        elif event.callid not in op.calls and _ended_already(op, event.callid, event.time):
            return op  # a current call always ends, however late its end arrives
        calls = {c: v for c, v in op.calls.items() if c != event.callid}
        ended = op.ended_calls if any(c == event.callid for c, _ in op.ended_calls) else \
            (*op.ended_calls, (event.callid, event.time))[-_RECENT_ENDED:]
        if op.day and day_of(event.time) < op.day:
            return replace(op, calls=calls, ended_calls=ended)  # yesterday's call: not today's tally
        op = _roll_day(op, event.time)
        return replace(
            op,
            calls=calls,
            ended_calls=ended,
            calls_today=op.calls_today + 1,
            talk_time_today_s=op.talk_time_today_s + event.calltime_s,
        )
    raise TypeError(f"not an operator event: {event!r}")  # pragma: no cover


def _not_a_member(op: OperatorState, queue: str, time: float) -> bool:
    """Activity in `queue` at `time` proves no membership: an explicit REMOVEMEMBER holds
    until the next ADDMEMBER, and the operator left the queue at or after `time` (a late event)."""
    return queue in op.removed or _left_after(op, queue, time, inclusive=True)


def _left_after(op: OperatorState, queue: str, time: float, inclusive: bool = False) -> bool:
    """The operator left `queue` after `time` (or at it, when inclusive)."""
    left = op.left.get(queue)
    return left is not None and (left >= time if inclusive else left > time)


def _ended_already(op: OperatorState, callid: str, time: float) -> bool:
    """The call ended before, or is older than every call remembered as ended (a replay)."""
    if any(c == callid for c, _ in op.ended_calls):
        return True
    return len(op.ended_calls) >= _RECENT_ENDED and time < min(t for _, t in op.ended_calls)


def _sweep(op: OperatorState, sweep: OperatorSwept) -> tuple[OperatorState, tuple[CallSwept, ...]]:
    if op.state != OFFLINE and sweep.time - op.last_time > sweep.idle_timeout_s:
        swept = tuple(CallSwept(sweep.time, c.callid, c.queue, CLOSED) for c in op.calls.values())
        left = {**op.left, **{q: sweep.time for q in op.queues}}
        ended = (*op.ended_calls, *((c.callid, sweep.time) for c in op.calls.values()))[-_RECENT_ENDED:]
        return replace(op, queues={}, calls={}, left=left, ended_calls=ended, idle_resets=op.idle_resets + 1), swept
    stale = [c for c in op.calls.values() if sweep.time - c.since > sweep.talk_timeout_s]
    if not stale:
        return op, ()
    calls = {c: v for c, v in op.calls.items() if v not in stale}
    ended = (*op.ended_calls, *((c.callid, sweep.time) for c in stale))[-_RECENT_ENDED:]
    return replace(op, calls=calls, ended_calls=ended), tuple(CallSwept(sweep.time, c.callid, c.queue, CLOSED) for c in stale)


def _settle(before: OperatorState, after: OperatorState, now: float) -> OperatorState:
    """Derive the telephony state; on a change, bank the time spent in the old one."""
    state = telephony_state(after)
    if state == before.state and before.state_since is not None:
        return after
    after = _roll_day(after, now)
    totals = dict(after.time_in_state_today_s)
    if before.state_since is not None:
        start = max(before.state_since, _midnight(now))
        old = str(before.state)  # keys stay plain text in what is stored and sent
        totals[old] = totals.get(old, 0.0) + max(0.0, now - start)
    return replace(after, state=state, state_since=now, time_in_state_today_s=totals)


def _roll_day(op: OperatorState, now: float) -> OperatorState:
    day = day_of(now)
    if op.day >= day:
        return op  # days only move forward
    return replace(op, day=day, calls_today=0, talk_time_today_s=0.0, time_in_state_today_s={})


def _member_changes(before: OperatorState, after: OperatorState, now: float) -> tuple[MemberChange, ...]:
    queues: Iterable[str] = dict.fromkeys([*before.queues, *after.queues])
    changes = []
    for q in queues:
        flags = _flags(after, q)
        if _flags(before, q) != flags:
            changes.append(MemberChange(q, after.agent, now, *flags))
    return tuple(changes)


def _flags(op: OperatorState, queue: str) -> tuple[bool, bool, bool]:
    """How `queue` sees `op`: logged in, paused, on a call."""
    membership = op.queues.get(queue)
    logged_in = membership is not None and op.agent_logged_in
    paused = membership is not None and logged_in and membership.paused
    return logged_in, bool(paused), bool(logged_in and op.calls)


def _view(op: OperatorState, queue: str, now: float) -> MemberChange:
    return MemberChange(queue, op.agent, now, *_flags(op, queue))


def day_of(t: float) -> str:
    return _day_name(int(t // 86400))


@lru_cache(maxsize=64)
def _day_name(day: int) -> str:
    return _time.strftime("%Y-%m-%d", _time.gmtime(day * 86400))


def _midnight(t: float) -> float:
    return float(int(t // 86400) * 86400)
