"""Tumbling, event-time windows of queue metrics (SPEC.md "Call-center metrics").

A `WindowAgg` holds sums, not averages, so windows merge (last 15 minutes = sum of
windows) and every derived figure is computed in one place, `metrics_view`. Each fact
carries a stable id; a fact seen twice (a replay after a crash, a duplicated input
line) is counted once: the ids already counted live in a ledger beside the window,
split into `LEDGER_BUCKETS` small pieces, so counting a fact rewrites a few hundred
bytes, not every id the window has ever seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Optional

ENTERED, ANSWERED, UNANSWERED, COMPLETED = "entered", "answered", "unanswered", "completed"


@dataclass(frozen=True, slots=True)
class WindowFact:
    """One call event's contribution to its queue's window."""

    fact_id: str  # event:callid:time, stable across replays
    queue: str
    time: float
    kind: str  # entered | answered | unanswered | completed
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
    agg = WindowAgg(**{name: getattr(agg, name) for name in agg.__slots__})
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
    return agg


# --- the ledger of counted facts ---------------------------------------------------------

LEDGER_BUCKETS = 32


def fact_digest(fact_id: str) -> int:
    """48 bits of the fact id: collisions within one window are ~1e-7 likely at 10^4 facts."""
    return int.from_bytes(hashlib.blake2b(fact_id.encode(), digest_size=6).digest(), "big")


def ledger_key(queue: str, start: float, digest: int) -> str:
    return f"{window_key(queue, start)}|{digest % LEDGER_BUCKETS:02d}"


def ledger_keys(queue: str, start: float) -> list[str]:
    return [f"{window_key(queue, start)}|{b:02d}" for b in range(LEDGER_BUCKETS)]


def note_fact(ledger: Optional[tuple[int, ...]], digest: int) -> Optional[tuple[int, ...]]:
    """The ledger bucket with `digest` added; None when it was counted before."""
    ledger = ledger or ()
    if digest in ledger:
        return None
    return (*ledger, digest)


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
