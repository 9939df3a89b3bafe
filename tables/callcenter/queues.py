"""Per-queue live state: who waits, who is a member, which windows are still open.

The queue stage learns about calls (`WaitingChange`), operators (`MemberChange`) and
window facts (`WindowFact`) from the call and operator stages, and about time from
stream marks (app/streamtime.py). Everything the dashboard shows "as of now" is derived from this state by
`live_view`; window contents live in their own table (see windows.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Iterable, Optional, Sequence

from tables.callcenter.calls import LOST, CallSwept, WaitingChange
from tables.callcenter.operators import MemberChange
from tables.callcenter.windows import window_start

__all__ = [
    "MAX_EXPIRED_SLOTS", "Member", "QueueState", "WindowSchedule", "apply_changes", "apply_member",
    "apply_waiting", "close_windows", "live_counts", "live_view", "oldest_waiting", "place_fact", "place_facts",
    "sweep_lost_calls", "with_longest_wait",
]

MAX_EXPIRED_SLOTS = 1440


@dataclass(frozen=True, slots=True)
class Member:
    paused: bool
    on_call: bool
    time: float


@dataclass(frozen=True, slots=True)
class QueueState:
    queue: str
    waiting: dict[str, float] = field(default_factory=dict)  # callid -> enter time
    members: dict[str, Member] = field(default_factory=dict)  # logged-in members only
    watermark: float = 0.0  # the latest event time this queue has seen
    open_windows: tuple[float, ...] = ()  # starts of windows not yet final, oldest first
    closed_until: float = 0.0  # every window ending at or before this is final
    first_window: Optional[float] = None  # oldest window still kept
    lost_calls: int = 0  # calls the sweep declared lost
    late_facts: int = 0  # facts that arrived after their window was final

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "QueueState":
        return cls(
            **{
                **d,
                "members": {a: Member(**m) for a, m in d["members"].items()},
                "open_windows": tuple(d["open_windows"]),
            }
        )


@dataclass(frozen=True, slots=True)
class WindowSchedule:
    window_s: int
    grace_s: float
    kept_s: float


def apply_waiting(q: QueueState, change: WaitingChange) -> QueueState:
    return apply_changes(q, (change,))


def apply_member(q: QueueState, change: MemberChange) -> QueueState:
    """The operator's latest view; views of one operator arrive in order (one partition)."""
    return apply_changes(q, (change,))


def apply_changes(q: QueueState, changes: Iterable[WaitingChange | MemberChange]) -> QueueState:
    """Waiting and member changes, in their order, at the cost of one copy of the state."""
    waiting: Optional[dict[str, float]] = None
    members: Optional[dict[str, Member]] = None
    watermark = q.watermark
    for change in changes:
        if isinstance(change, WaitingChange):
            if waiting is None:
                waiting = dict(q.waiting)
            if change.waiting_since is None:
                waiting.pop(change.callid, None)
            else:
                waiting[change.callid] = change.waiting_since
            watermark = max(watermark, change.time)
        else:
            if members is None:
                members = dict(q.members)
            if change.logged_in:
                members[change.agent] = Member(change.paused, change.on_call, change.time)
            else:
                members.pop(change.agent, None)
    return replace(
        q,
        waiting=q.waiting if waiting is None else waiting,
        members=q.members if members is None else members,
        watermark=watermark,
    )


def place_fact(q: QueueState, time: float, sched: WindowSchedule, counted: bool = True) -> tuple[QueueState, bool]:
    """Note that a fact lands in the window of `time`; False when that window is already final."""
    q, on_time = place_facts(q, ((time, counted),), sched)
    return q, on_time[0]


def place_facts(
    q: QueueState, facts: Sequence[tuple[float, bool]], sched: WindowSchedule
) -> tuple[QueueState, list[bool]]:
    """Open the windows of facts given as (time, counted now); a fact whose window is already
    final is late, and counted in `late_facts` unless it was counted before (a replay).
    Answers whether each fact was on time."""
    opened = set(q.open_windows)
    first, watermark, late = q.first_window, q.watermark, q.late_facts
    on_time = []
    for time, counted in facts:
        start = window_start(time, sched.window_s)
        watermark = max(watermark, time)
        # kept from its first fact, late or not: a late fact is still counted in its window,
        # which the metrics read from `first_window` on (a queue whose early facts all came
        # late, behind a partition taken over, lost those windows from its answers)
        first = start if first is None else min(first, start)
        if start + sched.window_s <= q.closed_until:
            late += counted
            on_time.append(False)
            continue
        opened.add(start)
        on_time.append(True)
    placed = replace(q, watermark=watermark, late_facts=late, first_window=first,
                     open_windows=q.open_windows if len(opened) == len(q.open_windows) else tuple(sorted(opened)))
    return placed, on_time


def close_windows(q: QueueState, clock: float, sched: WindowSchedule) -> tuple[QueueState, tuple[float, ...], tuple[float, ...]]:
    """Windows final by `clock` (their end + grace passed), and windows past retention.

    Returns the new state, the starts of windows now final (emit them), and the starts
    of kept windows that fell out of retention (delete them).
    """
    final = tuple(s for s in q.open_windows if s + sched.window_s + sched.grace_s <= clock)
    if final:
        q = replace(
            q,
            open_windows=tuple(s for s in q.open_windows if s not in final),
            closed_until=max(q.closed_until, final[-1] + sched.window_s),
        )
    expired: tuple[float, ...] = ()
    horizon = window_start(q.watermark - sched.kept_s, sched.window_s)
    if q.first_window is not None and q.first_window < horizon:
        # every slot between, present or not; at most a day of slots a call, so one odd
        # old timestamp costs a few calls, not millions of deletes at once
        until = min(horizon, q.first_window + MAX_EXPIRED_SLOTS * sched.window_s)
        expired = tuple(float(s) for s in range(int(q.first_window), int(until), sched.window_s))
        q = replace(q, first_window=until)
    return q, final, expired


def sweep_lost_calls(q: QueueState, now: float, wait_timeout_s: float) -> tuple[QueueState, tuple[CallSwept, ...]]:
    """Calls waiting longer than anyone waits: an exit event was lost."""
    lost = tuple(CallSwept(now, c, q.queue, LOST) for c, since in q.waiting.items() if now - since > wait_timeout_s)
    if not lost:
        return q, ()
    gone = {s.callid for s in lost}
    waiting = {c: t for c, t in q.waiting.items() if c not in gone}
    return replace(q, waiting=waiting, lost_calls=q.lost_calls + len(lost)), lost


def live_view(q: QueueState, now: float) -> dict:
    """`calls_waiting`, `longest_wait_s` and the operator counts of SPEC.md, as of `now`."""
    return with_longest_wait(live_counts(q), oldest_waiting(q), now)


def live_counts(q: QueueState) -> dict:
    """The live view but `longest_wait_s`: what only a change of the queue changes."""
    paused = on_call = available = 0
    for m in q.members.values():
        paused += m.paused
        on_call += m.on_call
        available += not m.paused and not m.on_call
    return {
        "queue": q.queue,
        "calls_waiting": len(q.waiting),
        "longest_wait_s": None,
        "operators": {"logged_in": len(q.members), "paused": paused, "on_call": on_call, "available": available},
        "lost_calls": q.lost_calls,
        "late_events": q.late_facts,
    }


def oldest_waiting(q: QueueState) -> Optional[float]:
    return min(q.waiting.values(), default=None)


def with_longest_wait(counts: dict, oldest: Optional[float], now: float) -> dict:
    return {**counts, "longest_wait_s": None if oldest is None else round(max(0.0, now - oldest), 3)}
