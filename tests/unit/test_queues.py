"""Per-queue live state: who waits, who is a member, which windows are open, what is lost.

Most scenarios drive the worker's own stages (agents/callcenter.py: the route, the call and
operator stage, the queue stage) over in-memory tables; a time column `+N` in a queue_log
line means N seconds after `T0`.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.callcenter.calls import CLOSED, LOST, TALKING, WAITING, CallSwept, WaitingChange
from tables.callcenter.operators import MemberChange
from tables.callcenter.queue_log import interpret, parse_line
from tables.callcenter.queues import (
    MAX_EXPIRED_SLOTS,
    Member,
    QueueState,
    WindowSchedule,
    apply_member,
    apply_waiting,
    close_windows,
    live_view,
    place_fact,
    place_facts,
    sweep_lost_calls,
)
from tables.callcenter.store import topics
from tables.callcenter.windows import window_start
from tests.unit.panel import Panel as StagesInMemory

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC; T0 // 60 * 60 = T0 - 20
W0 = T0 - 20  # the minute window T0 falls in
HOUR = 3600.0
WAIT_S, TALK_S, IDLE_S = 1 * HOUR, 4 * HOUR, 12 * HOUR
SCHED = WindowSchedule(window_s=60, grace_s=30.0, kept_s=24 * HOUR)


def event(line: str):
    when, rest = line.split("|", 1)
    if when.startswith("+"):
        when = repr(T0 + float(when[1:]))
    return interpret(parse_line(f"{when}|{rest}"))


class Panel(StagesInMemory):
    """The worker's own call, operator and queue stages over in-memory tables (tests/unit/panel.py)."""

    def __init__(self) -> None:
        super().__init__(T0)


def counts(logged_in: int = 0, paused: int = 0, on_call: int = 0, available: int = 0) -> dict:
    return {"logged_in": logged_in, "paused": paused, "on_call": on_call, "available": available}


def member(
    q: QueueState, agent: str, time: float, *, logged_in: bool = True, paused: bool = False, on_call: bool = False
) -> QueueState:
    return apply_member(q, MemberChange(q.queue, agent, time, logged_in, paused, on_call))


# --- who waits ---------------------------------------------------------------------------


def test_empty_queue_has_nobody_waiting_and_no_longest_wait() -> None:
    assert live_view(QueueState("support"), T0) == {
        "queue": "support",
        "calls_waiting": 0,
        "longest_wait_s": None,
        "operators": counts(),
        "lost_calls": 0,
        "late_events": 0,
    }


def test_call_starting_to_wait_is_counted_from_its_enter_time() -> None:
    q = apply_waiting(QueueState("support"), WaitingChange("support", "c1", T0 + 5, T0))
    assert (q.waiting, q.watermark) == ({"c1": T0}, T0 + 5)
    assert live_view(q, T0 + 30)["calls_waiting"] == 1


def test_longest_wait_is_that_of_the_oldest_waiting_call() -> None:
    q = QueueState("support")
    for callid, since in (("c1", T0 + 10), ("c2", T0), ("c3", T0 + 20)):
        q = apply_waiting(q, WaitingChange("support", callid, since, since))
    view = live_view(q, T0 + 45.5)
    assert (view["calls_waiting"], view["longest_wait_s"]) == (3, 45.5)


def test_longest_wait_is_never_negative_when_the_clock_is_behind_the_events() -> None:
    q = apply_waiting(QueueState("support"), WaitingChange("support", "c1", T0, T0))
    assert live_view(q, T0 - 3)["longest_wait_s"] == 0.0


def test_call_no_longer_waiting_leaves_the_count() -> None:
    q = apply_waiting(QueueState("support"), WaitingChange("support", "c1", T0, T0))
    q = apply_waiting(q, WaitingChange("support", "c1", T0 + 9, None))
    assert (q.waiting, live_view(q, T0 + 10)["longest_wait_s"]) == ({}, None)


def test_end_of_a_call_the_queue_never_saw_waiting_is_harmless() -> None:
    q = apply_waiting(QueueState("support"), WaitingChange("support", "c9", T0, None))
    assert (q.waiting, q.watermark) == ({}, T0)


def test_panel_counts_a_call_waiting_until_it_is_answered() -> None:
    panel = Panel().feed("+0|c1|support|NONE|ENTERQUEUE||+7916|1", "+0|c2|support|NONE|ENTERQUEUE||+7917|2")
    assert panel.view("support", 20)["calls_waiting"] == 2
    panel.feed("+12|c1|support|SIP/100|CONNECT|12|x|1")
    assert (panel.view("support", 20)["calls_waiting"], panel.view("support", 20)["longest_wait_s"]) == (1, 20.0)


@pytest.mark.parametrize(
    "ending",
    [
        "+40|c1|support|NONE|ABANDON|1|1|40",
        "+40|c1|support|NONE|EXITWITHTIMEOUT|1|1|40",
        "+40|c1|support|NONE|EXITEMPTY|1|1|40",
        "+40|c1|support|NONE|EXITWITHKEY|5|1|1|40",
        "+40|c1|support|NONE|WITHDRAW|1|1|40|x",
        "+40|c1|support|SIP/100|COMPLETECALLER|40|0|1",
    ],
    ids=["abandon", "timeout", "empty", "key", "withdraw", "complete-without-connect"],
)
def test_call_leaving_unanswered_stops_waiting(ending: str) -> None:
    panel = Panel().feed("+0|c1|support|NONE|ENTERQUEUE||+7916|1", ending)
    assert panel.view("support", 50)["calls_waiting"] == 0


def test_call_reentering_another_queue_waits_there_and_not_here() -> None:
    panel = Panel().feed("+0|c1|support|NONE|ENTERQUEUE||+7916|1", "+30|c1|sales|NONE|ENTERQUEUE||+7916|1")
    assert (panel.view("support", 40)["calls_waiting"], panel.view("sales", 40)["longest_wait_s"]) == (0, 10.0)


def test_each_line_twice_gives_the_same_panel() -> None:
    lines = (
        "+0|MANAGER|support|SIP/100|ADDMEMBER|",
        "+1|c1|support|NONE|ENTERQUEUE||+7916|1",
        "+2|c2|support|NONE|ENTERQUEUE||+7917|2",
        "+5|NONE|support|SIP/100|PAUSE|x",
        "+8|NONE|support|SIP/100|UNPAUSE|",
        "+12|c1|support|SIP/100|CONNECT|11|x|1",
    )
    once = Panel().feed(*lines)
    twice = Panel().feed(*(line for line in lines for _ in range(2)))
    assert twice.view("support", 30) == once.view("support", 30)
    assert once.view("support", 30)["calls_waiting"] == 1
    assert once.counts("support") == counts(logged_in=1, on_call=1)


# --- operator counts ---------------------------------------------------------------------


def test_operator_counts_follow_spec_set_difference() -> None:
    q = QueueState("support")
    q = member(q, "A", T0)  # available
    q = member(q, "B", T0, paused=True)
    q = member(q, "C", T0, on_call=True)
    q = member(q, "D", T0, paused=True, on_call=True)  # SPEC: in paused and on_call, not available
    assert live_view(q, T0)["operators"] == counts(logged_in=4, paused=2, on_call=2, available=1)


def test_member_logging_out_leaves_the_counts() -> None:
    q = member(member(QueueState("support"), "A", T0), "A", T0 + 5, logged_in=False)
    assert q.members == {}


def test_latest_view_of_a_member_wins_whatever_its_time() -> None:
    # views of one operator come from one partition in order; the time is informative only
    q = member(QueueState("support"), "A", T0 + 10, paused=True)
    q = member(q, "A", T0 + 5)
    assert q.members == {"A": Member(paused=False, on_call=False, time=T0 + 5)}


def test_view_of_the_same_second_arriving_later_wins() -> None:
    q = member(QueueState("support"), "A", T0, paused=True)
    q = member(q, "A", T0)
    assert q.members["A"].paused is False


def test_panel_counts_added_paused_and_removed_members() -> None:
    panel = Panel().feed(
        "+0|MANAGER|support|SIP/100|ADDMEMBER|",
        "+0|MANAGER|support|SIP/101|ADDMEMBER|PAUSED",
        "+0|MANAGER|support|SIP/102|ADDMEMBER|",
    )
    assert panel.counts("support") == counts(logged_in=3, paused=1, available=2)
    panel.feed("+10|MANAGER|support|SIP/102|REMOVEMEMBER|")
    assert panel.counts("support") == counts(logged_in=2, paused=1, available=1)


def test_operator_on_a_call_from_another_queue_is_on_call_here_too() -> None:
    panel = Panel().feed(
        "+0|MANAGER|support|SIP/100|ADDMEMBER|",
        "+0|MANAGER|sales|SIP/100|ADDMEMBER|",
        "+5|c1|sales|SIP/100|CONNECT|5|x|1",
    )
    assert panel.counts("support") == counts(logged_in=1, on_call=1)
    panel.feed("+65|c1|sales|SIP/100|COMPLETEAGENT|5|60|1")
    assert panel.counts("support") == counts(logged_in=1, available=1)


def test_pause_for_a_queue_whose_addmember_was_lost_counts_a_paused_member() -> None:
    panel = Panel().feed("+10|NONE|support|SIP/100|PAUSE|lunch")
    assert panel.counts("support") == counts(logged_in=1, paused=1)


def test_pauseall_and_unpauseall_change_the_counts_of_every_queue() -> None:
    panel = Panel().feed(
        "+0|MANAGER|support|SIP/100|ADDMEMBER|",
        "+0|MANAGER|sales|SIP/100|ADDMEMBER|",
        "+0|MANAGER|sales|SIP/101|ADDMEMBER|",
        "+10|NONE|NONE|SIP/100|PAUSEALL|break",
    )
    assert (panel.counts("support"), panel.counts("sales")) == (
        counts(logged_in=1, paused=1),
        counts(logged_in=2, paused=1, available=1),
    )
    panel.feed("+20|NONE|NONE|SIP/100|UNPAUSEALL|")
    assert panel.counts("support") == counts(logged_in=1, available=1)
    assert panel.counts("sales") == counts(logged_in=2, available=2)


def test_paused_operator_taking_a_call_counts_in_neither_available() -> None:
    panel = Panel().feed(
        "+0|MANAGER|support|SIP/100|ADDMEMBER|",
        "+5|NONE|support|SIP/100|PAUSE|",
        "+6|c1|support|SIP/100|CONNECT|1|x|1",
    )
    assert panel.counts("support") == counts(logged_in=1, paused=1, on_call=1, available=0)


def test_agent_logoff_takes_the_operator_out_of_every_count() -> None:
    panel = Panel().feed(
        "+0|MANAGER|support|Agent/1|ADDMEMBER|",
        "+0|MANAGER|sales|Agent/1|ADDMEMBER|",
        "+50|NONE|NONE|Agent/1|AGENTLOGOFF|SIP/1-1|50",
    )
    assert (panel.counts("support"), panel.counts("sales")) == (counts(), counts())
    panel.feed("+60|NONE|NONE|Agent/1|AGENTLOGIN|SIP/1-2")
    assert panel.counts("support") == counts(logged_in=1, available=1)


# --- staleness sweeps --------------------------------------------------------------------


def test_call_waiting_more_than_an_hour_is_lost_and_counted() -> None:
    q = QueueState("support", waiting={"c1": T0, "c2": T0 + 100})
    q, lost = sweep_lost_calls(q, T0 + HOUR + 1, WAIT_S)
    assert lost == (CallSwept(T0 + HOUR + 1, "c1", "support", LOST),)
    assert (q.waiting, q.lost_calls) == ({"c2": T0 + 100}, 1)
    assert live_view(q, T0 + HOUR + 1)["lost_calls"] == 1


def test_call_waiting_exactly_an_hour_is_not_lost_yet() -> None:
    q = QueueState("support", waiting={"c1": T0})
    assert sweep_lost_calls(q, T0 + HOUR, WAIT_S) == (q, ())


def test_every_lost_call_is_counted_across_sweeps() -> None:
    q = QueueState("support", waiting={"c1": T0, "c2": T0 + 10})
    q, first = sweep_lost_calls(q, T0 + HOUR + 5, WAIT_S)
    q, second = sweep_lost_calls(q, T0 + HOUR + 15, WAIT_S)
    q, third = sweep_lost_calls(q, T0 + HOUR + 25, WAIT_S)
    assert ([len(first), len(second), len(third)], q.lost_calls, q.waiting) == ([1, 1, 0], 2, {})


def test_panel_marks_the_forgotten_call_lost_and_stops_counting_it() -> None:
    panel = Panel().feed("+0|c1|support|NONE|ENTERQUEUE||+7916|1").sweep(HOUR + 1)
    assert panel.calls["c1"].status == LOST
    view = panel.view("support", HOUR + 1)
    assert (view["calls_waiting"], view["lost_calls"]) == (0, 1)


def test_panel_closes_a_call_talking_more_than_four_hours() -> None:
    panel = Panel().feed(
        "+0|MANAGER|support|SIP/100|ADDMEMBER|",
        "+0|c1|support|NONE|ENTERQUEUE||+7916|1",
        "+5|c1|support|SIP/100|CONNECT|5|x|1",
        f"+{TALK_S}|NONE|sales|SIP/100|PAUSE|",  # the operator is alive; only the call is stale
    )
    panel.sweep(5 + TALK_S - 1)
    assert (panel.calls["c1"].status, panel.counts("support")) == (TALKING, counts(logged_in=1, on_call=1))
    panel.sweep(5 + TALK_S + 1)
    assert (panel.calls["c1"].status, panel.counts("support")) == (CLOSED, counts(logged_in=1, available=1))


def test_panel_takes_an_operator_silent_for_12_hours_offline() -> None:
    panel = Panel().feed("+0|MANAGER|support|SIP/100|ADDMEMBER|", "+0|MANAGER|support|SIP/101|ADDMEMBER|")
    panel.feed(f"+{IDLE_S}|NONE|support|SIP/101|PAUSE|")
    panel.sweep(IDLE_S + 1)
    assert panel.counts("support") == counts(logged_in=1, paused=1)
    assert (panel.operators["SIP/100"].idle_resets, panel.operators["SIP/101"].idle_resets) == (1, 0)


def test_panel_closes_the_call_of_an_operator_gone_offline() -> None:
    panel = Panel().feed("+0|c1|support|NONE|ENTERQUEUE||+7916|1", "+5|c1|support|SIP/100|CONNECT|5|x|1")
    panel.sweep(5 + IDLE_S + 1)
    assert (panel.calls["c1"].status, panel.counts("support")) == (CLOSED, counts())


# --- windows: placement, closing, retention -----------------------------------------------


def test_fact_opens_the_window_of_its_event_time() -> None:
    q, on_time = place_fact(QueueState("support"), T0 + 5, SCHED)
    assert on_time
    assert (q.open_windows, q.first_window, q.watermark) == ((W0,), W0, T0 + 5)


def test_facts_of_one_window_open_it_once_and_windows_stay_sorted() -> None:
    q = QueueState("support")
    for t in (T0 + 70, T0, T0 + 1, T0 + 39.999):
        q, _ = place_fact(q, t, SCHED)
    assert (q.open_windows, q.first_window) == ((W0, W0 + 60), W0)


def test_window_is_not_final_before_its_end_plus_grace() -> None:
    q, _ = place_fact(QueueState("support"), T0, SCHED)
    q, final, expired = close_windows(q, W0 + 60 + 30 - 0.001, SCHED)
    assert (final, expired, q.open_windows, q.closed_until) == ((), (), (W0,), 0.0)


def test_window_is_final_once_its_end_plus_grace_has_come() -> None:
    q, _ = place_fact(QueueState("support"), T0, SCHED)
    q, final, _ = close_windows(q, W0 + 90, SCHED)
    assert (final, q.open_windows, q.closed_until) == ((W0,), (), W0 + 60)


def test_windows_become_final_oldest_first_and_once() -> None:
    q = QueueState("support")
    for t in (W0 + 125, W0 + 5, W0 + 65):
        q, _ = place_fact(q, t, SCHED)
    q, final, _ = close_windows(q, W0 + 120 + 30, SCHED)
    assert (final, q.closed_until) == ((W0, W0 + 60), W0 + 120)
    q, again, _ = close_windows(q, W0 + 151, SCHED)
    assert (again, q.open_windows) == ((), (W0 + 120,))


def test_fact_after_its_window_ended_but_within_grace_is_on_time() -> None:
    q, _ = place_fact(QueueState("support"), T0 + 50, SCHED)  # watermark past W0's end
    q, _, _ = close_windows(q, W0 + 80, SCHED)
    q, on_time = place_fact(q, T0 + 1, SCHED)
    assert (on_time, q.late_facts) == (True, 0)


def test_fact_arriving_after_its_window_is_final_is_counted_late() -> None:
    q, _ = place_fact(QueueState("support"), T0, SCHED)
    q, _, _ = close_windows(q, W0 + 90, SCHED)
    q, on_time = place_fact(q, T0 + 30, SCHED)
    assert (on_time, q.late_facts, q.open_windows) == (False, 1, ())  # not reopened
    assert live_view(q, W0 + 90)["late_events"] == 1


def test_fact_for_an_empty_window_older_than_a_final_one_is_late() -> None:
    q, _ = place_fact(QueueState("support"), T0 + 60, SCHED)
    q, _, _ = close_windows(q, W0 + 150, SCHED)
    q, on_time = place_fact(q, T0 - 30, SCHED)
    assert (on_time, q.late_facts) == (False, 1)


def test_windows_past_retention_are_deleted_every_slot_once() -> None:
    sched = WindowSchedule(window_s=60, grace_s=30.0, kept_s=300)
    q = QueueState("support")
    q, _ = place_fact(q, T0, sched)
    q, _ = place_fact(q, T0 + 120, sched)
    q, final, expired = close_windows(q, T0 + 120, sched)
    assert (final, expired) == ((W0,), ())  # watermark T0 + 120: the horizon is before W0
    q, _ = place_fact(q, T0 + 430, sched)
    q, final, expired = close_windows(q, T0 + 430, sched)
    assert final == (W0 + 120,)
    assert expired == (W0, W0 + 60)  # horizon = start of (T0 + 430 - 300) = W0 + 120
    assert q.first_window == W0 + 120
    q, _, again = close_windows(q, T0 + 431, sched)
    assert again == ()


def test_retention_follows_event_time_not_the_clock() -> None:
    sched = WindowSchedule(window_s=60, grace_s=30.0, kept_s=300)
    q, _ = place_fact(QueueState("support"), T0, sched)
    q, final, expired = close_windows(q, T0 + 10 * HOUR, sched)  # the clock ran, no new events
    assert (final, expired) == ((W0,), ())


def test_retention_after_a_far_past_fact_is_spread_over_bounded_steps() -> None:
    # one bogus old time must not make a single close delete millions of slots
    q, _ = place_fact(QueueState("support"), T0 - 30 * 24 * HOUR, SCHED)
    q, _ = place_fact(q, T0, SCHED)
    horizon = window_start(T0 - SCHED.kept_s, SCHED.window_s)
    steps = 0
    while q.first_window < horizon:
        q, _, expired = close_windows(q, T0, SCHED)
        assert 0 < len(expired) <= MAX_EXPIRED_SLOTS
        steps += 1
    assert q.first_window == horizon and steps > 1


def test_events_that_change_no_state_leave_the_panel_alone() -> None:
    panel = Panel().feed("+0|MANAGER|support|SIP/100|ADDMEMBER|", "+1|c1|support|NONE|ENTERQUEUE||+7916|1")
    before = (dict(panel.queues), dict(panel.calls), dict(panel.operators))
    panel.feed(
        "+2|NONE|NONE|NONE|QUEUESTART|",
        "+3|NONE|NONE|NONE|CONFIGRELOAD|",
        "+4|c1|support|SIP/100|SYSCOMPAT|",
        "+5|c1|support|NONE|SOMETHINGNEW|a|b",
    )
    assert (panel.queues, panel.calls, panel.operators) == before


# --- properties --------------------------------------------------------------------------

AGENTS = ("A", "B", "C", "D")

member_changes = st.builds(
    lambda agent, dt, logged_in, paused, on_call: (agent, dt, logged_in, paused, on_call),
    st.sampled_from(AGENTS),
    st.integers(-5, 20),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
waiting_changes = st.builds(
    lambda callid, dt, waiting: (callid, dt, waiting),
    st.sampled_from(("c1", "c2", "c3")),
    st.integers(0, 20),
    st.booleans(),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(member_changes, waiting_changes), max_size=30), st.integers(0, 100))
def test_live_counts_are_consistent_whatever_the_changes(changes: list[tuple], later: int) -> None:
    q = QueueState("support")
    t = T0
    for change in changes:
        if len(change) == 5:
            agent, dt, logged_in, paused, on_call = change
            q = member(q, agent, t + dt, logged_in=logged_in, paused=paused, on_call=on_call)  # dt < 0: an older view
        else:
            callid, dt, waiting = change
            t += dt
            q = apply_waiting(q, WaitingChange("support", callid, t, t if waiting else None))
    view = live_view(q, t + later)
    ops = view["operators"]
    assert ops["logged_in"] >= max(ops["available"], ops["paused"], ops["on_call"])
    both = sum(1 for m in q.members.values() if m.paused and m.on_call)
    assert ops["available"] == ops["logged_in"] - (ops["paused"] + ops["on_call"] - both)
    assert view["calls_waiting"] == len(q.waiting)
    assert view["longest_wait_s"] is None or view["longest_wait_s"] >= 0


@st.composite
def queue_logs(draw: st.DrawFn) -> list[str]:
    """Calls and operators of two queues in time order, with lost and duplicated lines."""
    lines = []
    t = 0
    for _ in range(draw(st.integers(1, 40))):
        t += draw(st.sampled_from((0, 1, 5, 30, 300)))
        q = draw(st.sampled_from(("support", "sales")))
        c = draw(st.sampled_from(("c1", "c2", "c3", "c4")))
        a = draw(st.sampled_from(("SIP/1", "SIP/2", "SIP/3")))
        line = draw(
            st.sampled_from(
                (
                    f"+{t}|{c}|{q}|NONE|ENTERQUEUE||+7916|1",
                    f"+{t}|{c}|{q}|{a}|RINGNOANSWER|1000",
                    f"+{t}|{c}|{q}|{a}|CONNECT|3|x|1",
                    f"+{t}|{c}|{q}|{a}|COMPLETEAGENT|3|30|1",
                    f"+{t}|{c}|{q}|{a}|BLINDTRANSFER|200|ctx|3|30|1",
                    f"+{t}|{c}|{q}|NONE|ABANDON|1|1|5",
                    f"+{t}|{c}|{q}|NONE|EXITWITHKEY|1|1|1|5",
                    f"+{t}|MANAGER|{q}|{a}|ADDMEMBER|",
                    f"+{t}|MANAGER|{q}|{a}|ADDMEMBER|PAUSED",
                    f"+{t}|MANAGER|{q}|{a}|REMOVEMEMBER|",
                    f"+{t}|NONE|{q}|{a}|PAUSE|x",
                    f"+{t}|NONE|{q}|{a}|UNPAUSE|",
                    f"+{t}|NONE|NONE|{a}|PAUSEALL|",
                    f"+{t}|NONE|NONE|{a}|UNPAUSEALL|",
                    f"+{t}|NONE|NONE|{a}|AGENTLOGOFF|x|1",
                    f"+{t}|NONE|NONE|{a}|AGENTLOGIN|x",
                )
            )
        )
        lines += [line] * draw(st.sampled_from((0, 1, 1, 1, 2)))  # lost, once, or twice
    return lines


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(queue_logs(), st.sampled_from((0.0, HOUR + 1, IDLE_S + 1)))
def test_panel_counts_match_the_calls_and_operators_behind_them(lines: list[str], sweep_after: float) -> None:
    panel = Panel().feed(*lines)
    last = max((event(line).time for line in lines), default=T0) - T0
    if sweep_after:
        panel.sweep(last + sweep_after)
    for name in ("support", "sales"):
        view = panel.view(name, last + sweep_after)
        ops = view["operators"]
        assert ops["logged_in"] >= max(ops["available"], ops["paused"], ops["on_call"])
        waiting = {c.callid for c in panel.calls.values() if c.status == WAITING and c.queue == name}
        assert set(panel.queue(name).waiting) == waiting
        members = {
            (op.agent, bool(op.queues[name].paused), bool(op.calls))
            for op in panel.operators.values()
            if name in op.queues and op.agent_logged_in
        }
        assert {(a, m.paused, m.on_call) for a, m in panel.queue(name).members.items()} == members


def test_a_replayed_line_publishes_its_call_and_operator_again() -> None:
    """After a refused output the worker reads its inputs again over state already stored
    (app/delivery.py): the stages must send the views again, though nothing changed."""
    lines = ("+0|MANAGER|support|SIP/100|ADDMEMBER|", "+1|c1|support|NONE|ENTERQUEUE||+7916|1",
             "+12|c1|support|SIP/100|CONNECT|11|x|1")
    panel = Panel().feed(*lines)
    first = dict(panel.published)
    panel.published.clear()
    panel.feed(lines[-1])
    call_status = topics.call_status.get_topic_name()
    operator_status = topics.operator_status.get_topic_name()
    assert panel.published[(call_status, "c1")] == first[(call_status, "c1")]
    assert panel.published[(operator_status, "SIP/100")]["state"] == first[(operator_status, "SIP/100")]["state"]


def _resets(kind: str) -> float:
    from app.metrics import REGISTRY

    return REGISTRY.get_sample_value("switchboard_staleness_resets_total", {"kind": kind}) or 0.0


def test_a_lost_complete_no_longer_keeps_its_operator_on_call() -> None:
    """The shift replayed with a COMPLETE lost: the operator's next call ends the old one,
    so once that call ends the operator is available, not on call for hours."""
    counted = _resets("call_superseded")
    panel = Panel().feed(
        "+0|MANAGER|support|SIP/100|ADDMEMBER|",
        "+1|c1|support|NONE|ENTERQUEUE||+7916|1",
        "+12|c1|support|SIP/100|CONNECT|11|x|1",
        # c1's COMPLETEAGENT at +300 was lost
        "+400|c2|support|NONE|ENTERQUEUE||+7917|1",
        "+405|c2|support|SIP/100|CONNECT|5|x|1",
    )
    assert panel.counts("support") == counts(logged_in=1, on_call=1)
    panel.feed("+500|c2|support|SIP/100|COMPLETEAGENT|5|95|1")
    assert panel.counts("support") == counts(logged_in=1, available=1)
    c1 = panel.published[(topics.call_status.get_topic_name(), "c1")]
    assert (c1["status"], c1["end_reason"]) == ("closed", "unknown end: its operator answered call c2")
    assert _resets("call_superseded") == counted + 1


def test_a_late_fact_still_opens_the_windows_a_queue_reports_from():
    """A queue whose first facts arrive after their window was final (behind a partition being
    taken over) still reports that window: it is counted there, and read from `first_window`."""
    sched = WindowSchedule(60, 5, 24 * 3600)
    q = QueueState(queue="lost-items", closed_until=960.0, first_window=900.0)
    q, on_time = place_facts(q, [(790.0, True)], sched)
    assert on_time == [False] and q.late_facts == 1
    assert q.first_window == 780.0
