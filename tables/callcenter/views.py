"""How states look to the outside: API answers and output-topic values (pure)."""

from __future__ import annotations

from typing import Iterable, Optional

from tables.callcenter.calls import CallState
from tables.callcenter.operators import OperatorActivity, OperatorState, day_of, telephony_state, time_in_state_today
from tables.callcenter.queues import QueueState, live_view
from tables.callcenter.windows import WindowAgg, merge, metrics_view, window_start

__all__ = [
    "LAST_MINUTES", "activity_record", "call_view", "operator_view", "queue_status_view", "recent_window_starts",
    "status_is_news", "window_summary",
]

LAST_MINUTES = 15


def status_is_news(last: Optional[tuple[QueueState, float, int, float]], q: QueueState, current_window: float,
                   windows_seen: int, now: float, heartbeat_s: float) -> bool:
    """Whether the queue stage publishes `q`'s status again. `last` is what it published
    last: (the state, the current window's start, the count of the queue's window writes
    seen, when). An idle queue's status changes with nothing but `generated_at`; it is sent
    again only as a heartbeat. A waiting call's wait grows every second: sent each tick."""
    if last is None or q.waiting:
        return True
    state, window, seen, at = last
    return state is not q or window != current_window or seen != windows_seen or now - at >= heartbeat_s


def call_view(call: CallState) -> dict:
    view = call.to_json()
    del view["last_rank"]
    return view


def activity_record(fact: OperatorActivity) -> dict:
    """A record of `operator-activity` (keyed by the operator id)."""
    return {"operator": fact.agent, "event": str(fact.kind), "time": fact.time, "callid": fact.callid,
            "queue": fact.queue, "talk_s": fact.talk_s, "confirmed": fact.confirmed}


def operator_view(op: OperatorState, now: float) -> dict:
    calls = sorted(op.calls.values(), key=lambda c: c.since)
    current = calls[-1] if calls else None
    paused_in = [q for q, m in op.queues.items() if m.paused]
    reasons = sorted({m.reason for m in op.queues.values() if m.paused and m.reason})
    today = op.day == day_of(now)
    calls_today = op.calls_today if today else 0
    talk_today = op.talk_time_today_s if today else 0.0
    return {
        "id": op.agent,
        "name": None,
        "state": telephony_state(op),
        "since": op.state_since,
        "paused": bool(op.queues) and len(paused_in) == len(op.queues),
        "paused_queues": sorted(paused_in),
        "pause_reason": reasons[0] if reasons else None,
        "queues": sorted(op.queues),
        "current_call": None if current is None else {"callid": current.callid, "queue": current.queue, "since": current.since},
        "calls_today": calls_today,
        "talk_time_today_s": round(talk_today, 3),
        "aht_s": round(talk_today / calls_today, 3) if calls_today else None,
        "time_in_state_today_s": time_in_state_today(op, now),
        "last_event_at": op.last_time,
        "idle_resets": op.idle_resets,
    }


def queue_status_view(q: QueueState, windows: Iterable[WindowAgg], now: float, window_s: int) -> dict:
    """One element of `GET /queues/status`: live counts, the current window, the last 15 min."""
    return {**live_view(q, now), **window_summary(windows, now, window_s)}


def window_summary(windows: Iterable[WindowAgg], now: float, window_s: int) -> dict:
    """`current_window` and `last_15m` of a queue as of `now`, from its recent windows."""
    starts = recent_window_starts(now, window_s)
    current_start, recent_start = starts[-1], starts[0]
    recent = [w for w in windows if recent_start <= w.start <= current_start]
    current = next((w for w in recent if w.start == current_start), None)
    return {
        "current_window": metrics_view(current or WindowAgg(current_start, current_start + window_s)),
        "last_15m": metrics_view(merge(recent, recent_start, current_start + window_s)),
    }


def recent_window_starts(now: float, window_s: int) -> list[float]:
    current_start = window_start(now, window_s)
    count = max(1, LAST_MINUTES * 60 // window_s)
    return [current_start - i * window_s for i in range(count - 1, -1, -1)]
