"""How call, operator and queue states look in the API and on the output topics."""

from __future__ import annotations

import pytest

from tables.callcenter.calls import TALKING, CallState
from tables.callcenter.operators import (
    AVAILABLE,
    OFFLINE,
    ON_CALL,
    PAUSED,
    CurrentCall,
    Membership,
    OperatorState,
)
from tables.callcenter.queues import Member, QueueState
from tables.callcenter.views import call_view, operator_view, queue_status_view, recent_window_starts
from tables.callcenter.windows import ANSWERED, COMPLETED, ENTERED, UNANSWERED, WindowAgg, WindowFact, add_fact

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
W0 = T0 - 20  # its 60 s window
MIDNIGHT = T0 + 6400  # 2023-11-15 00:00:00 UTC
WINDOW_FIELDS = {
    "start", "end", "entered", "answered", "abandoned", "unanswered", "completed", "answered_within_sl",
    "avg_wait_s", "max_wait_s", "avg_talk_s", "service_level_pct", "asterisk_sl_pct", "abandon_rate_pct",
}  # fmt: skip  (SPEC: GET /queues/{queue}/metrics)


def window(start: float, *facts: WindowFact, window_s: int = 60) -> WindowAgg:
    agg = WindowAgg(start, start + window_s)
    for fact in facts:
        agg = add_fact(agg, fact, window_s, 20.0)
    return agg


def answered(n: int, t: float, holdtime: float) -> WindowFact:
    return WindowFact(f"C:{n}", "support", t, ANSWERED, wait_s=holdtime)


# --- calls -------------------------------------------------------------------------------


def test_call_view_shows_the_call_without_its_ordering_bookkeeping() -> None:
    call = CallState("c1", "support", TALKING, entered_at=T0, answered_at=T0 + 12, agent="SIP/100", holdtime_s=12.0,
                     last_time=T0 + 12, last_rank=2)  # fmt: skip
    view = call_view(call)
    assert "last_rank" not in view
    assert view["callid"] == "c1" and view["status"] == TALKING and view["agent"] == "SIP/100"
    assert view["last_time"] == T0 + 12
    assert call.last_rank == 2  # the stored state is untouched


# --- operators ---------------------------------------------------------------------------


def _operator(**fields) -> OperatorState:
    defaults = dict(agent="SIP/100", state=AVAILABLE, state_since=T0, last_time=T0, day="2023-11-14")
    return OperatorState(**{**defaults, **fields})


def test_operator_view_shows_its_queues_pauses_and_the_latest_call() -> None:
    op = _operator(
        queues={"support": Membership(True, "lunch", T0), "sales": Membership(True, "break", T0)},
        calls={"c1": CurrentCall("c1", "support", T0 + 5), "c2": CurrentCall("c2", "sales", T0 + 9)},
        state=ON_CALL,
        state_since=T0 + 5,
        calls_today=4,
        talk_time_today_s=1000.0,
    )
    view = operator_view(op, T0 + 60)
    assert (view["id"], view["state"], view["since"]) == ("SIP/100", ON_CALL, T0 + 5)
    assert (view["paused"], view["paused_queues"], view["pause_reason"]) == (True, ["sales", "support"], "break")
    assert view["queues"] == ["sales", "support"]
    assert view["current_call"] == {"callid": "c2", "queue": "sales", "since": T0 + 9}
    assert (view["calls_today"], view["talk_time_today_s"], view["aht_s"]) == (4, 1000.0, 250.0)


def test_operator_paused_in_some_queues_only_is_not_paused() -> None:
    op = _operator(queues={"support": Membership(True, "", T0), "sales": Membership(False, "", T0)})
    view = operator_view(op, T0)
    assert (view["paused"], view["paused_queues"], view["pause_reason"]) == (False, ["support"], None)


def test_operator_without_queues_is_offline_and_not_paused() -> None:
    view = operator_view(OperatorState(agent="SIP/100"), T0)
    assert (view["state"], view["paused"], view["queues"], view["current_call"]) == (OFFLINE, False, [], None)


def test_operator_without_calls_today_has_no_aht() -> None:
    assert operator_view(_operator(), T0)["aht_s"] is None


def test_yesterdays_tallies_are_not_todays() -> None:
    op = _operator(calls_today=7, talk_time_today_s=700.0)  # day 2023-11-14
    view = operator_view(op, MIDNIGHT + 60)
    assert (view["calls_today"], view["talk_time_today_s"], view["aht_s"]) == (0, 0.0, None)


def test_operator_view_carries_time_in_every_state_today() -> None:
    op = _operator(state=PAUSED, state_since=T0 + 100, time_in_state_today_s={AVAILABLE: 100.0})
    assert operator_view(op, T0 + 160)["time_in_state_today_s"] == {OFFLINE: 0.0, AVAILABLE: 100.0, PAUSED: 60.0, ON_CALL: 0.0}


# --- queues ------------------------------------------------------------------------------


def test_queue_status_has_the_live_counts_the_current_window_and_the_last_15_minutes() -> None:
    q = QueueState(
        "support",
        waiting={"c7": T0 - 15},
        members={"A": Member(False, False, T0), "B": Member(True, True, T0)},
    )
    now = T0 + 30  # in the window W0
    windows = [
        window(W0, answered(1, T0, 10), WindowFact("E:1", "support", T0, ENTERED)),
        window(W0 - 60, answered(2, W0 - 30, 40), WindowFact("U:3", "support", W0 - 30, UNANSWERED, wait_s=70, abandoned=True)),
        window(W0 - 14 * 60, WindowFact("D:4", "support", W0 - 800, COMPLETED, talk_s=300)),  # oldest of the 15
        window(W0 - 15 * 60, answered(5, W0 - 880, 5)),  # 16 minutes ago: out
    ]
    view = queue_status_view(q, windows, now, 60)
    assert (view["queue"], view["calls_waiting"], view["longest_wait_s"]) == ("support", 1, 45.0)
    assert view["operators"] == {"logged_in": 2, "paused": 1, "on_call": 1, "available": 1}
    assert set(view["current_window"]) == WINDOW_FIELDS == set(view["last_15m"])
    current = view["current_window"]
    assert (current["start"], current["end"], current["entered"], current["answered"]) == (W0, W0 + 60, 1, 1)
    recent = view["last_15m"]
    assert (recent["start"], recent["end"]) == (W0 - 14 * 60, W0 + 60)
    assert (recent["answered"], recent["unanswered"], recent["completed"]) == (2, 1, 1)
    assert (recent["avg_wait_s"], recent["max_wait_s"], recent["avg_talk_s"]) == (25.0, 70.0, 300.0)
    assert (recent["service_level_pct"], recent["asterisk_sl_pct"], recent["abandon_rate_pct"]) == (33.33, 50.0, 33.33)


def test_queue_status_without_windows_has_empty_current_window_with_nulls() -> None:
    view = queue_status_view(QueueState("support"), [], T0, 60)
    assert view["current_window"]["start"] == W0
    assert view["current_window"]["answered"] == 0
    assert view["current_window"]["service_level_pct"] is None
    assert view["last_15m"]["avg_wait_s"] is None


def test_windows_from_the_future_are_not_in_the_status() -> None:
    view = queue_status_view(QueueState("support"), [window(W0 + 60, answered(1, W0 + 61, 1))], T0, 60)
    assert (view["current_window"]["answered"], view["last_15m"]["answered"]) == (0, 0)


@pytest.mark.parametrize("window_s", [60, 300, 900])
def test_last_15_minutes_span_whole_windows_ending_with_the_current_one(window_s: int) -> None:
    starts = recent_window_starts(T0, window_s)
    current = T0 // window_s * window_s
    assert starts[-1] == current
    assert starts == sorted(starts)
    assert len(starts) * window_s == 900
    view = queue_status_view(QueueState("support"), [], T0, window_s)
    assert (view["last_15m"]["start"], view["last_15m"]["end"]) == (starts[0], current + window_s)


def test_current_window_is_shown_whatever_the_window_size() -> None:
    start = T0 // 1800 * 1800
    agg = window(start, answered(1, T0, 10), window_s=1800)
    view = queue_status_view(QueueState("support"), [agg], T0, 1800)
    assert (view["current_window"]["answered"], view["last_15m"]["answered"]) == (1, 1)
