"""Tumbling, event-time windows of queue metrics (SPEC.md "Call-center metrics").

A `WindowAgg` holds sums, not averages, so windows merge (last 15 minutes = sum of
windows) and every derived figure is computed in one place, `metrics_view`. Each fact
carries a stable id; a fact seen twice (a replay after a crash, a duplicated input
line) is counted once: the ids already counted live in a ledger beside the window,
split into `LEDGER_BUCKETS` small pieces, so counting a fact rewrites a few hundred
bytes, not every id the window has ever seen. `FactCounter` counts a batch of facts
and says in which order its writes must land to survive a crash between them.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import AbstractSet, Iterable, Optional, Protocol, Sequence, TypeVar

__all__ = [
    "ANSWERED", "COMPLETED", "ENTERED", "FactCounter", "FactKind", "LEDGER_BUCKETS", "Store", "UNANSWERED",
    "WindowAgg", "WindowFact", "add_fact", "fact_digest", "ledger_key", "ledger_keys", "merge", "metrics_view",
    "window_key", "window_start",
]


class FactKind(StrEnum):
    """What a call event adds to its queue's window."""

    ENTERED = "entered"
    ANSWERED = "answered"
    UNANSWERED = "unanswered"
    COMPLETED = "completed"


ENTERED, ANSWERED, UNANSWERED, COMPLETED = FactKind


@dataclass(frozen=True, slots=True)
class WindowFact:
    """One call event's contribution to its queue's window."""

    fact_id: str  # event:callid:time, stable across replays
    queue: str
    time: float
    kind: FactKind
    wait_s: Optional[float] = None  # CONNECT holdtime, or waittime of an unanswered call
    talk_s: Optional[float] = None  # COMPLETE* calltime
    abandoned: bool = False  # ABANDON among the unanswered kinds


@dataclass(slots=True)
class WindowAgg:
    start: float
    end: float
    entered: int = 0
    answered: int = 0
    abandoned: int = 0
    unanswered: int = 0
    completed: int = 0
    answered_within_sl: int = 0
    wait_sum_s: float = 0.0
    max_wait_s: Optional[float] = None
    talk_sum_s: float = 0.0
    talk_count: int = 0
    recent: Sequence[int] = ()  # digests of the facts counted by this record's last write
    buckets: int = 0  # bit i set: ledger bucket i of this window exists

    @classmethod
    def from_json(cls, d: dict) -> "WindowAgg":
        return cls(**d)


def window_start(time: float, window_s: int) -> float:
    return float(int(time // window_s) * window_s)


def window_key(queue: str, start: float) -> str:
    """Table key of one queue's window; zero-padded so keys of a queue sort by time."""
    return f"{queue}|{int(start):012d}"


def add_fact(agg: Optional[WindowAgg], fact: WindowFact, window_s: int, sl_threshold_s: float) -> WindowAgg:
    """The window with `fact` counted (whether it was counted before is the ledger's business)."""
    if agg is None:
        start = window_start(fact.time, window_s)
        agg = WindowAgg(start=start, end=start + window_s)
    else:
        agg = copy.copy(agg)
    _count_into(agg, fact, sl_threshold_s)
    return agg


def _count_into(agg: WindowAgg, fact: WindowFact, sl_threshold_s: float) -> None:
    if fact.kind == ENTERED:
        agg.entered += 1
    elif fact.kind == ANSWERED:
        agg.answered += 1
        wait = fact.wait_s or 0.0
        agg.wait_sum_s += wait
        agg.answered_within_sl += wait <= sl_threshold_s
        agg.max_wait_s = _max(agg.max_wait_s, wait)
    elif fact.kind == UNANSWERED:
        agg.unanswered += 1
        agg.abandoned += fact.abandoned
        agg.max_wait_s = _max(agg.max_wait_s, fact.wait_s)
    elif fact.kind == COMPLETED:
        agg.completed += 1
        if fact.talk_s is not None:
            agg.talk_sum_s += fact.talk_s
            agg.talk_count += 1


# --- the ledger of counted facts ---------------------------------------------------------

LEDGER_BUCKETS = 32
S = TypeVar("S")


def fact_digest(fact_id: str) -> int:
    """48 bits of the fact id: collisions within one window are ~1e-7 likely at 10^4 facts."""
    return int.from_bytes(hashlib.blake2b(fact_id.encode(), digest_size=6).digest(), "big")


def ledger_key(queue: str, start: float, digest: int) -> str:
    return f"{window_key(queue, start)}|{digest % LEDGER_BUCKETS:02d}"


def ledger_keys(queue: str, start: float, buckets: int = (1 << LEDGER_BUCKETS) - 1) -> list[str]:
    """Keys of the ledger buckets of a window; `buckets` is a window's mask of those it has."""
    return [f"{window_key(queue, start)}|{b:02d}" for b in range(LEDGER_BUCKETS) if buckets >> b & 1]


class Store(Protocol[S]):
    def get(self, key: str) -> Optional[S]: ...

    def put(self, key: str, state: S) -> None: ...


class FactCounter:
    """Counts one batch of facts into their windows, each fact once however often it comes.

    `windows` and `ledgers` are stores over one table, so their writes share one changelog
    partition and land in the order they are made: the caller writes every window of
    the batch before any ledger bucket. A window record names the digests its last write
    counted (`recent`); if a crash lands that write but not the ledger's, the next batch
    that touches the window puts them back into the ledger first. So a fact is never
    counted twice, and never marked counted without being counted.
    """

    def __init__(self, windows: Store[WindowAgg], ledgers: Store[AbstractSet[int]], window_s: int,
                 sl_threshold_s: float) -> None:
        self.windows = windows
        self.ledgers = ledgers
        self.window_s = window_s
        self.sl_threshold_s = sl_threshold_s
        self.fresh: dict[str, list[int]] = {}  # window key -> digests counted in this batch
        self.buckets: dict[str, set[int]] = {}  # ledger buckets this batch changes
        self.counted: dict[str, WindowAgg] = {}  # the batch's own copy of each window it counts into

    def count(self, fact: WindowFact) -> bool:
        """Count `fact` in its window; False when it was counted before (a replay, a duplicate)."""
        start = window_start(fact.time, self.window_s)
        key = window_key(fact.queue, start)
        window = self.windows.get(key)
        fresh = self.fresh.get(key)
        if fresh is None:
            fresh = self.fresh[key] = []
            for digest in window.recent if window is not None else ():
                self._note(key, digest)  # normally there already; after a crash, not
        digest = fact_digest(fact.fact_id)
        if not self._note(key, digest):
            return False
        fresh.append(digest)
        own = self.counted.get(key)
        if own is None:
            own = self.counted[key] = add_fact(window, fact, self.window_s, self.sl_threshold_s)
        else:
            _count_into(own, fact, self.sl_threshold_s)
        own.buckets |= 1 << (digest % LEDGER_BUCKETS)
        own.recent = fresh  # the batch's list itself: it grows with every fact counted
        self.windows.put(key, own)
        return True

    def _note(self, window: str, digest: int) -> bool:
        key = f"{window}|{digest % LEDGER_BUCKETS:02d}"
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = set(self.ledgers.get(key) or ())
        if digest in bucket:
            return False
        bucket.add(digest)
        self.ledgers.put(key, bucket)
        return True


def merge(windows: Iterable[WindowAgg], start: float, end: float) -> WindowAgg:
    """One aggregate spanning [start, end) from the windows inside it."""
    total = WindowAgg(start=start, end=end)
    for w in windows:
        total.entered += w.entered
        total.answered += w.answered
        total.abandoned += w.abandoned
        total.unanswered += w.unanswered
        total.completed += w.completed
        total.answered_within_sl += w.answered_within_sl
        total.wait_sum_s += w.wait_sum_s
        total.max_wait_s = _max(total.max_wait_s, w.max_wait_s)
        total.talk_sum_s += w.talk_sum_s
        total.talk_count += w.talk_count
    return total


def metrics_view(w: WindowAgg) -> dict:
    """The window as the API and `queue-metrics` show it; null where a denominator is 0."""
    offered = w.answered + w.unanswered
    return {
        "start": w.start,
        "end": w.end,
        "entered": w.entered,
        "answered": w.answered,
        "abandoned": w.abandoned,
        "unanswered": w.unanswered,
        "completed": w.completed,
        "answered_within_sl": w.answered_within_sl,
        "avg_wait_s": _ratio(w.wait_sum_s, w.answered),
        "max_wait_s": w.max_wait_s,
        "avg_talk_s": _ratio(w.talk_sum_s, w.talk_count),
        "service_level_pct": _pct(w.answered_within_sl, offered),
        "asterisk_sl_pct": _pct(w.answered_within_sl, w.answered),
        "abandon_rate_pct": _pct(w.abandoned, offered),
    }


def _max(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _ratio(num: float, den: int) -> Optional[float]:
    return round(num / den, 3) if den else None


def _pct(num: float, den: int) -> Optional[float]:
    return round(100.0 * num / den, 2) if den else None
