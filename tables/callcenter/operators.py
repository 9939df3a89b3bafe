"""Per-operator telephony state: queue memberships, pauses, current calls, today's tallies.

`apply_operator_event(op, event)` is the rule for one operator. It answers with the
operator's new state and a `MemberChange` for every queue whose view of the operator
changed (logged in? paused? on a call?), which the queue stage counts.
Events of one operator are expected in order, but the rule tolerates reordering
between calls (a COMPLETE before its CONNECT) and loss (a PAUSE for a queue whose
ADDMEMBER was lost makes the operator a member).

It also says what the operator did, as events (`OperatorActivity`, on `operator-activity`):
signed in (a member of a queue) or out, a call answered, a call ended (by its own
COMPLETE* or TRANSFER: `confirmed`, counted in `calls_today`; or proven over by other
evidence). A snapshot of the operator may stand for several of them at once (a batch);
these events never do. An event the rule has seen already (a replay after a crash, a
duplicate) says again what it stood for, so that a consumer that missed it hears it; the
consumer takes each call once (by its id).
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
    "AVAILABLE", "Activity", "CurrentCall", "MemberChange", "Membership", "OFFLINE", "ON_CALL", "OperatorEvent",
    "OperatorActivity", "OperatorOutcome", "OperatorState", "OperatorSwept", "PAUSED", "STATES", "TelephonyState",
    "apply_operator_event", "day_of", "member_views", "signed_in", "needs_sweep", "telephony_state", "time_in_state_today",
]


class TelephonyState(StrEnum):
    """What the queues see of an operator (SPEC.md `operator-status.state`)."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    PAUSED = "paused"
    ON_CALL = "on_call"


OFFLINE, AVAILABLE, PAUSED, ON_CALL = TelephonyState
STATES = tuple(TelephonyState)
_RECENT_ENDED = 16  # calls ended lately, whatever their day, so a late CONNECT of one is not taken for a new call
ENDED_KEPT = 2000  # calls ended on the latest day are all remembered, up to this many

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
    ended_calls: tuple[tuple[str, float], ...] = ()  # (call id, end time): all of the latest day, a few more
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


class Activity(StrEnum):
    """What an operator did, as `operator-activity` says (its `event`)."""

    SIGNED_IN = "signed_in"  # a member of a queue (and logged in as an agent), where it was in none
    SIGNED_OUT = "signed_out"  # a member of no queue any more, or logged off
    CALL_ANSWERED = "call_answered"
    CALL_ENDED = "call_ended"


@dataclass(frozen=True, slots=True)
class OperatorActivity:
    """One thing an operator did, at `time` (the event's own time)."""

    agent: str
    kind: Activity
    time: float
    callid: Optional[str] = None
    queue: Optional[str] = None
    talk_s: Optional[float] = None  # a call's end: its talk time (COMPLETE*'s calltime, else since its answer)
    # a call's end: told by its own COMPLETE* or TRANSFER (counted in calls_today), not only
    # proven by other evidence (another call answered, the queues left, the sweep)
    confirmed: bool = False


@dataclass(frozen=True, slots=True)
class OperatorOutcome:
    operator: OperatorState
    members: tuple[MemberChange, ...] = ()
    swept_calls: tuple[CallSwept, ...] = ()
    inferred_ends: tuple[CallEndInferred, ...] = ()  # calls this event proved over (their ends lost)
    changed: bool = True
    activity: tuple[OperatorActivity, ...] = ()  # what the operator did, as events, in order


def apply_operator_event(op: Optional[OperatorState], event: OperatorEvent | OperatorSwept,
                         max_calls: int = 1) -> OperatorOutcome:
    """`max_calls`: how many queue calls an operator can be on at once (Asterisk's
    `ringinuse=no`: one); a CONNECT beyond it proves the oldest current call over."""
    before = op or OperatorState(agent=getattr(event, "agent", ""))
    inferred: tuple[CallEndInferred, ...] = ()
    if isinstance(event, OperatorSwept):
        after, swept = _sweep(before, event)
        applied = after is not before
    else:
        after, swept = _apply(before, event), ()
        applied = after is not before
        after, inferred = _end_proven_calls(after, max_calls)
    now = max(event.time, before.last_time)
    after = _settle(before, replace(after, last_time=now) if not isinstance(event, OperatorSwept) else after, now)
    changes = _member_changes(before, after, now)
    if after == before and isinstance(event, OperatorSwept):
        return OperatorOutcome(after, changed=False)
    if after == before or not applied and not inferred:
        # nothing new (a duplicate or replay; at most a later time): say again what queues,
        # and whoever follows the operator's activity, should know (idempotent)
        return OperatorOutcome(after, member_views(after) if after == before else changes, changed=after != before,
                               activity=_told_again(after, event))
    return OperatorOutcome(after, changes, swept, inferred, activity=_activity(before, after, event, swept, inferred, now))


def signed_in(op: OperatorState) -> bool:
    """A member of a queue, and logged in as an agent (where chan_agent is used)."""
    return bool(op.queues) and op.agent_logged_in


def _activity(before: OperatorState, after: OperatorState, event: OperatorEvent | OperatorSwept,
              swept: tuple[CallSwept, ...], inferred: tuple[CallEndInferred, ...], now: float) -> tuple[OperatorActivity, ...]:
    """What `event` (applied: the state changed) says the operator did: signed in first,
    then the calls' answers and ends in their time order (an end before an answer of the
    same second: the call superseded), signed out last."""
    agent = after.agent
    out: list[OperatorActivity] = []
    if signed_in(after) and not signed_in(before):
        out.append(OperatorActivity(agent, Activity.SIGNED_IN, now))
    calls: list[tuple[float, int, OperatorActivity]] = []
    if isinstance(event, CallConnected) and event.callid in after.calls:
        calls.append((event.time, 1, OperatorActivity(agent, Activity.CALL_ANSWERED, event.time, event.callid, event.queue)))
    elif isinstance(event, (CallCompleted, CallTransferred)):
        calls.append((event.time, 0, _ended(agent, event)))
    every_call = dict(before.calls)  # the calls that may have ended, with their answers
    if isinstance(event, CallConnected):
        every_call[event.callid] = CurrentCall(event.callid, event.queue, event.time)
    gone_calls: tuple[CallSwept | CallEndInferred, ...] = (*swept, *inferred)
    for gone in gone_calls:
        call = every_call.get(gone.callid)
        talk = None if call is None else round(max(0.0, gone.time - call.since), 3)
        calls.append((gone.time, 0, OperatorActivity(agent, Activity.CALL_ENDED, gone.time, gone.callid, gone.queue, talk)))
    out += [fact for _, _, fact in sorted(calls, key=lambda c: (c[0], c[1]))]
    if signed_in(before) and not signed_in(after):
        out.append(OperatorActivity(agent, Activity.SIGNED_OUT, now))
    return tuple(out)


def _ended(agent: str, event: CallCompleted | CallTransferred) -> OperatorActivity:
    return OperatorActivity(agent, Activity.CALL_ENDED, event.time, event.callid, event.queue, event.calltime_s,
                            confirmed=True)


def _told_again(op: OperatorState, event: OperatorEvent | OperatorSwept) -> tuple[OperatorActivity, ...]:
    """What an event the rule had seen already stood for, as far as it is still true (at the
    event's own time: a consumer that heard later news takes it for old)."""
    if isinstance(event, CallConnected) and event.callid in op.calls:
        return (OperatorActivity(op.agent, Activity.CALL_ANSWERED, event.time, event.callid, event.queue),)
    if isinstance(event, (CallCompleted, CallTransferred)) and event.callid not in op.unconfirmed_ends \
            and any(c == event.callid for c, _ in op.ended_calls):
        return (_ended(op.agent, event),)
    if isinstance(event, (MemberAdded, MemberRemoved, AgentLoggedIn)):
        joins = isinstance(event, MemberAdded) or (isinstance(event, AgentLoggedIn) and event.logged_in)
        if joins == signed_in(op):
            return (OperatorActivity(op.agent, Activity.SIGNED_IN if joins else Activity.SIGNED_OUT, event.time),)
    return ()


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
        ended_calls=_remembered((*op.ended_calls, *((e.callid, e.time) for e in ended))),
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
            _remembered((*op.ended_calls, (event.callid, event.time)))
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
    """The call ended before, or is of an earlier day and older than every call remembered as ended (a replay)."""
    if any(c == callid for c, _ in op.ended_calls):
        return True
    if len(op.ended_calls) < _RECENT_ENDED:
        return False
    # every call of the latest day is remembered: one of it not there is news, in whatever
    # order the day's calls come (their lines are keyed by call: a backlog mixes them)
    return time < _midnight(max(t for _, t in op.ended_calls)) and time < min(t for _, t in op.ended_calls)


def _remembered(ended: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    """The ended calls an operator remembers: every one of the latest day (a replay of the
    day, in whatever order its calls come, counts none again; a day's tally counts only
    that day's calls) and the latest few of any day (a late CONNECT around midnight)."""
    if len(ended) <= _RECENT_ENDED:
        return ended
    midnight = _midnight(max(t for _, t in ended))
    latest = len(ended) - _RECENT_ENDED
    return tuple(e for i, e in enumerate(ended) if i >= latest or e[1] >= midnight)[-ENDED_KEPT:]


def _sweep(op: OperatorState, sweep: OperatorSwept) -> tuple[OperatorState, tuple[CallSwept, ...]]:
    if op.state != OFFLINE and sweep.time - op.last_time > sweep.idle_timeout_s:
        swept = tuple(CallSwept(sweep.time, c.callid, c.queue, CLOSED) for c in op.calls.values())
        left = {**op.left, **{q: sweep.time for q in op.queues}}
        ended = _remembered((*op.ended_calls, *((c.callid, sweep.time) for c in op.calls.values())))
        return replace(op, queues={}, calls={}, left=left, ended_calls=ended, idle_resets=op.idle_resets + 1), swept
    stale = [c for c in op.calls.values() if sweep.time - c.since > sweep.talk_timeout_s]
    if not stale:
        return op, ()
    calls = {c: v for c, v in op.calls.items() if v not in stale}
    ended = _remembered((*op.ended_calls, *((c.callid, sweep.time) for c in stale)))
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
