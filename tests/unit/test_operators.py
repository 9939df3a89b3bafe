"""One operator's telephony state: `apply_operator_event` over memberships, pauses and calls.

Scenarios are written as queue_log lines; a time column `+N` means N seconds after `T0`.
"""

from __future__ import annotations

import itertools
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.callcenter.calls import CLOSED, CallEndInferred, CallSwept, EndEvidence
from tables.callcenter.events import MemberPaused
from tables.callcenter.operators import (
    AVAILABLE,
    OFFLINE,
    ON_CALL,
    PAUSED,
    STATES,
    CurrentCall,
    MemberChange,
    Membership,
    OperatorOutcome,
    OperatorState,
    OperatorSwept,
    apply_operator_event,
    day_of,
    member_views,
    needs_sweep,
    telephony_state,
    time_in_state_today,
)
from tables.callcenter.queue_log import interpret, parse_line
from tables.callcenter.queues import QueueState, apply_member
from tables.callcenter.views import operator_view

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
MIDNIGHT = T0 + 6400  # 2023-11-15 00:00:00 UTC
HOUR = 3600.0
IDLE_S, TALK_S = 12 * HOUR, 4 * HOUR
AGENT = "SIP/100"


def event(line: str):
    """The typed event of one queue_log line; `+N` in the time column is T0 + N."""
    when, rest = line.split("|", 1)
    if when.startswith("+"):
        when = repr(T0 + float(when[1:]))
    return interpret(parse_line(f"{when}|{rest}"))


def play(*lines: str | OperatorSwept, op: Optional[OperatorState] = None) -> list[OperatorOutcome]:
    outcomes = []
    for line in lines:
        outcome = apply_operator_event(op, event(line) if isinstance(line, str) else line)
        outcomes.append(outcome)
        op = outcome.operator
    return outcomes


def final(*lines: str | OperatorSwept, op: Optional[OperatorState] = None) -> OperatorState:
    return play(*lines, op=op)[-1].operator


def sweep(after_s: float) -> OperatorSwept:
    return OperatorSwept(T0 + after_s, IDLE_S, TALK_S)


def seen(changes) -> dict[str, tuple[bool, bool, bool]]:
    """queue -> (logged_in, paused, on_call) as these member changes tell it."""
    return {c.queue: (c.logged_in, c.paused, c.on_call) for c in changes}


def queues_told(outcomes: list[OperatorOutcome]) -> dict[str, QueueState]:
    """The queue stage after it counted every member change of these outcomes."""
    queues: dict[str, QueueState] = {}
    for outcome in outcomes:
        for change in outcome.members:
            queues[change.queue] = apply_member(queues.get(change.queue) or QueueState(change.queue), change)
    return queues


def members_counted(queues: dict[str, QueueState]) -> dict[str, dict[str, tuple[bool, bool]]]:
    return {q: {a: (m.paused, m.on_call) for a, m in s.members.items()} for q, s in queues.items() if s.members}


def members_true(op: OperatorState) -> dict[str, dict[str, tuple[bool, bool]]]:
    return {v.queue: {v.agent: (v.paused, v.on_call)} for v in member_views(op) if v.logged_in}


ADD = "+0|MANAGER|support|SIP/100|ADDMEMBER|"
ADD_SALES = "+0|MANAGER|sales|SIP/100|ADDMEMBER|"
PAUSE = "+10|NONE|support|SIP/100|PAUSE|lunch"
UNPAUSE = "+20|NONE|support|SIP/100|UNPAUSE|"
CONNECT = "+30|c1|support|SIP/100|CONNECT|12|1700000030.5|3"
COMPLETE = "+330|c1|support|SIP/100|COMPLETEAGENT|12|300|1"
REMOVE = "+400|MANAGER|support|SIP/100|REMOVEMEMBER|"


# --- memberships -------------------------------------------------------------------------


def test_operator_added_to_a_queue_is_available_there() -> None:
    [outcome] = play(ADD)
    op = outcome.operator
    assert op.queues == {"support": Membership(False, "", T0)}
    assert (op.state, op.state_since, op.last_time, telephony_state(op)) == (AVAILABLE, T0, T0, AVAILABLE)
    assert outcome.members == (MemberChange("support", AGENT, T0, logged_in=True, paused=False, on_call=False),)


def test_operator_added_paused_starts_paused() -> None:
    [outcome] = play("+0|MANAGER|support|SIP/100|ADDMEMBER|PAUSED")
    assert outcome.operator.state == PAUSED
    assert seen(outcome.members) == {"support": (True, True, False)}


def test_operator_removed_from_its_only_queue_goes_offline() -> None:
    outcome = play(ADD, REMOVE)[-1]
    assert (outcome.operator.queues, outcome.operator.state) == ({}, OFFLINE)
    assert outcome.members == (MemberChange("support", AGENT, T0 + 400, logged_in=False, paused=False, on_call=False),)


def test_operator_removed_from_one_of_two_queues_stays_in_the_other() -> None:
    outcome = play(ADD, ADD_SALES, REMOVE)[-1]
    assert (sorted(outcome.operator.queues), outcome.operator.state) == (["sales"], AVAILABLE)
    assert seen(outcome.members) == {"support": (False, False, False)}


def test_removal_older_than_the_membership_is_ignored() -> None:
    op = final("+100|MANAGER|support|SIP/100|ADDMEMBER|", "+50|MANAGER|support|SIP/100|REMOVEMEMBER|")
    assert "support" in op.queues


def test_addmember_older_than_a_known_pause_does_not_unpause() -> None:
    op = final(PAUSE, ADD)  # ADD (+0) arrives after PAUSE (+10)
    assert op.queues["support"].paused


# --- pauses ------------------------------------------------------------------------------


def test_operator_pausing_its_only_queue_is_paused_with_the_reason() -> None:
    outcome = play(ADD, PAUSE)[-1]
    op = outcome.operator
    assert op.queues["support"] == Membership(True, "lunch", T0 + 10)
    assert (op.state, op.state_since) == (PAUSED, T0 + 10)
    assert seen(outcome.members) == {"support": (True, True, False)}


def test_operator_paused_in_one_of_two_queues_is_still_available() -> None:
    outcome = play(ADD, ADD_SALES, PAUSE)[-1]
    assert outcome.operator.state == AVAILABLE
    assert seen(outcome.members) == {"support": (True, True, False)}  # sales' view did not change


def test_unpause_ends_the_pause_and_forgets_its_reason() -> None:
    outcome = play(ADD, PAUSE, UNPAUSE)[-1]
    assert outcome.operator.queues["support"] == Membership(False, "", T0 + 20)
    assert outcome.operator.state == AVAILABLE
    assert seen(outcome.members) == {"support": (True, False, False)}


def test_pause_for_a_queue_whose_addmember_was_lost_makes_the_operator_a_paused_member() -> None:
    outcome = play(PAUSE)[-1]
    assert outcome.operator.queues == {"support": Membership(True, "lunch", T0 + 10)}
    assert outcome.operator.state == PAUSED
    assert seen(outcome.members) == {"support": (True, True, False)}


def test_unpause_for_a_queue_whose_addmember_was_lost_makes_the_operator_an_available_member() -> None:
    outcome = play(UNPAUSE)[-1]
    assert outcome.operator.state == AVAILABLE
    assert seen(outcome.members) == {"support": (True, False, False)}


def test_pause_older_than_the_membership_is_ignored() -> None:
    op = final("+100|MANAGER|support|SIP/100|ADDMEMBER|", "+50|NONE|support|SIP/100|PAUSE|lunch")
    assert not op.queues["support"].paused


def test_pauseall_pauses_every_queue_of_the_operator() -> None:
    outcome = play(ADD, ADD_SALES, "+10|NONE|NONE|SIP/100|PAUSEALL|break")[-1]
    op = outcome.operator
    assert {q: (m.paused, m.reason) for q, m in op.queues.items()} == {"support": (True, "break"), "sales": (True, "break")}
    assert op.state == PAUSED
    assert seen(outcome.members) == {"support": (True, True, False), "sales": (True, True, False)}


def test_unpauseall_unpauses_every_queue_of_the_operator() -> None:
    outcome = play(
        ADD,
        ADD_SALES,
        "+10|NONE|NONE|SIP/100|PAUSEALL|break",
        "+20|NONE|NONE|SIP/100|UNPAUSEALL|",
    )[-1]
    assert not any(m.paused for m in outcome.operator.queues.values())
    assert outcome.operator.state == AVAILABLE
    assert seen(outcome.members) == {"support": (True, False, False), "sales": (True, False, False)}


def test_unpauseall_also_ends_a_single_queue_pause() -> None:
    op = final(ADD, ADD_SALES, PAUSE, "+20|NONE|NONE|SIP/100|UNPAUSEALL|")
    assert not op.queues["support"].paused


def test_pauseall_of_an_operator_with_no_known_queue_makes_it_a_member_of_none() -> None:
    outcome = play("+10|NONE|NONE|SIP/100|PAUSEALL|break")[-1]
    assert (outcome.operator.queues, outcome.operator.state, outcome.members) == ({}, OFFLINE, ())


def test_pauseall_leaves_a_queue_whose_newer_membership_is_known() -> None:
    op = final("+0|MANAGER|support|SIP/100|ADDMEMBER|", "+50|MANAGER|sales|SIP/100|ADDMEMBER|")
    op = apply_operator_event(op, MemberPaused(T0 + 40, None, AGENT, True, "late")).operator
    assert (op.queues["support"].paused, op.queues["sales"].paused) == (True, False)


# --- chan_agent login ----------------------------------------------------------------------


def test_agent_logoff_takes_the_operator_out_of_every_queue_view() -> None:
    outcome = play(ADD, ADD_SALES, "+50|NONE|NONE|SIP/100|AGENTLOGOFF|SIP/100-1|50")[-1]
    op = outcome.operator
    assert (op.agent_logged_in, op.state) == (False, OFFLINE)
    assert sorted(op.queues) == ["sales", "support"]  # the memberships themselves are kept
    assert seen(outcome.members) == {"support": (False, False, False), "sales": (False, False, False)}


def test_agent_login_again_brings_the_memberships_back() -> None:
    outcome = play(
        ADD,
        PAUSE,
        "+50|NONE|NONE|SIP/100|AGENTLOGOFF|SIP/100-1|50",
        "+60|NONE|NONE|SIP/100|AGENTLOGIN|SIP/100-2",
    )[-1]
    assert outcome.operator.state == PAUSED
    assert seen(outcome.members) == {"support": (True, True, False)}


def test_agent_login_without_membership_is_still_offline() -> None:
    outcome = play("+0|NONE|NONE|SIP/100|AGENTLOGIN|SIP/100-1")[-1]
    assert (outcome.operator.state, outcome.members) == (OFFLINE, ())


def test_logged_off_agent_talking_is_on_call_but_counted_in_no_queue() -> None:
    outcome = play(ADD, "+50|NONE|NONE|SIP/100|AGENTLOGOFF|SIP/100-1|50", "+60|c1|support|SIP/100|CONNECT|5|x|1")[-1]
    assert outcome.operator.state == ON_CALL
    assert members_true(outcome.operator) == {}


# --- calls -------------------------------------------------------------------------------


def test_answering_a_call_puts_the_operator_on_call_in_every_queue() -> None:
    outcome = play(ADD, ADD_SALES, CONNECT)[-1]
    op = outcome.operator
    assert op.calls == {"c1": CurrentCall("c1", "support", T0 + 30)}
    assert (op.state, op.state_since) == (ON_CALL, T0 + 30)
    assert seen(outcome.members) == {"support": (True, False, True), "sales": (True, False, True)}


def test_answering_in_a_queue_whose_addmember_was_lost_makes_the_operator_a_member() -> None:
    outcome = play(ADD_SALES, CONNECT)[-1]
    assert sorted(outcome.operator.queues) == ["sales", "support"]
    assert seen(outcome.members) == {"support": (True, False, True), "sales": (True, False, True)}


# A CONNECT proves a membership whose own events may come later (they can reach the worker from
# another input partition): whatever the arrival order, the pause state is the one in time order.
PAUSED_THEN_CONNECT = ("+0|MANAGER|support|SIP/100|ADDMEMBER|PAUSED", "+10|NONE|support|SIP/100|UNPAUSE|",
                       "+20|NONE|support|SIP/100|PAUSE|lunch", CONNECT)
REMOVED_WHILE_RINGING = ("+0|MANAGER|support|SIP/100|ADDMEMBER|PAUSED", "+10|MANAGER|support|SIP/100|REMOVEMEMBER|",
                         CONNECT)  # the call rang when the member was removed, and connected after


@pytest.mark.parametrize("order", list(itertools.permutations(PAUSED_THEN_CONNECT)), ids=str)
def test_membership_events_older_than_a_connect_set_its_pause_state_in_any_arrival_order(order) -> None:
    op = final(*order)
    assert op.queues["support"].paused and op.queues["support"].reason == "lunch"
    assert members_true(op) == {"support": {AGENT: (True, True)}} == members_counted(queues_told(play(*order)))


@pytest.mark.parametrize("order", list(itertools.permutations(REMOVED_WHILE_RINGING)), ids=str)
def test_a_removal_holds_when_a_call_ringing_then_connects_in_any_arrival_order(order) -> None:
    op = final(*order)
    assert "support" not in op.queues and op.calls  # on the call, a member of no queue
    assert members_true(op) == {} == members_counted(queues_told(play(*order)))


def test_only_an_addmember_makes_a_removed_operator_a_member_again() -> None:
    removed = (*REMOVED_WHILE_RINGING, COMPLETE, "+400|NONE|support|SIP/100|PAUSE|lunch")
    assert "support" not in final(*removed).queues
    again = final(*removed, "+500|MANAGER|support|SIP/100|ADDMEMBER|")
    assert not again.queues["support"].paused and members_true(again) == {"support": {AGENT: (False, False)}}


def test_a_static_member_never_added_or_removed_is_proven_by_its_activity() -> None:
    on_call = final(CONNECT)  # queues.conf members log no ADDMEMBER
    assert sorted(on_call.queues) == ["support"] and members_true(on_call) == {"support": {AGENT: (False, True)}}
    paused = final(CONNECT, COMPLETE, "+400|NONE|support|SIP/100|PAUSE|lunch")
    assert paused.queues["support"].paused and paused.queues["support"].reason == "lunch"


def test_a_removal_after_the_connect_still_removes_the_membership() -> None:
    op = final(CONNECT, "+40|MANAGER|support|SIP/100|REMOVEMEMBER|", ADD)
    assert "support" not in op.queues


def test_completing_the_call_counts_it_and_makes_the_operator_available() -> None:
    outcome = play(ADD, CONNECT, COMPLETE)[-1]
    op = outcome.operator
    assert (op.calls, op.state, op.calls_today, op.talk_time_today_s) == ({}, AVAILABLE, 1, 300.0)
    assert [c for c, _ in op.ended_calls] == ["c1"]
    assert seen(outcome.members) == {"support": (True, False, False)}


def test_caller_hanging_up_ends_the_call_as_well() -> None:
    op = final(ADD, CONNECT, "+330|c1|support|SIP/100|COMPLETECALLER|12|300|1")
    assert (op.calls, op.calls_today) == ({}, 1)


@pytest.mark.parametrize(
    "line",
    [
        "+130|c1|support|SIP/100|TRANSFER|200|from-internal|12|100|1",
        "+130|c1|support|SIP/100|BLINDTRANSFER|200|from-internal|12|100|1",
        "+130|c1|support|SIP/100|ATTENDEDTRANSFER|BRIDGE|b-1|12|100|1",
    ],
    ids=["transfer", "blind", "attended"],
)
def test_transferring_the_call_ends_it_for_the_operator(line: str) -> None:
    outcome = play(ADD, CONNECT, line)[-1]
    assert (outcome.operator.calls, outcome.operator.state, outcome.operator.calls_today) == ({}, AVAILABLE, 1)
    assert outcome.operator.talk_time_today_s == 100.0
    assert seen(outcome.members) == {"support": (True, False, False)}


def test_complete_before_its_connect_counts_once_and_leaves_the_operator_off_the_call() -> None:
    outcomes = play(ADD, COMPLETE, CONNECT)
    op = outcomes[-1].operator
    assert (op.calls, op.state, op.calls_today) == ({}, AVAILABLE, 1)
    assert members_counted(queues_told(outcomes)) == {"support": {AGENT: (False, False)}}


def test_operator_with_two_calls_is_on_call_until_both_end() -> None:
    op = final(ADD, CONNECT, "+40|c2|support|SIP/100|CONNECT|3|x|1", COMPLETE)
    assert (sorted(op.calls), op.state) == (["c2"], ON_CALL)
    op = final("+400|c2|support|SIP/100|COMPLETEAGENT|3|360|1", op=op)
    assert (op.calls, op.state, op.calls_today) == ({}, AVAILABLE, 2)


def test_paused_operator_answering_is_paused_and_on_call_in_the_queue() -> None:
    outcome = play(ADD, PAUSE, "+15|c1|support|SIP/100|CONNECT|5|x|1")[-1]
    assert outcome.operator.state == ON_CALL
    assert seen(outcome.members) == {"support": (True, True, True)}


def test_removed_from_every_queue_while_talking_proves_the_call_over() -> None:
    outcome = play(ADD, CONNECT, "+60|MANAGER|support|SIP/100|REMOVEMEMBER|")[-1]
    assert (outcome.operator.state, outcome.operator.queues, outcome.operator.calls) == (OFFLINE, {}, {})
    assert seen(outcome.members) == {"support": (False, False, False)}
    assert outcome.inferred_ends == (
        CallEndInferred(T0 + 60, "c1", "support", EndEvidence.OPERATOR_LEFT, "its operator left every queue"),
    )


# --- duplicates and replays --------------------------------------------------------------

STEPS = {
    "addmember": (ADD,),
    "pause": (ADD, PAUSE),
    "unpause": (ADD, PAUSE, UNPAUSE),
    "pauseall": (ADD, ADD_SALES, "+10|NONE|NONE|SIP/100|PAUSEALL|break"),
    "unpauseall": (ADD, "+10|NONE|NONE|SIP/100|PAUSEALL|", "+20|NONE|NONE|SIP/100|UNPAUSEALL|"),
    "agentlogoff": (ADD, "+50|NONE|NONE|SIP/100|AGENTLOGOFF|SIP/100-1|50"),
    "connect": (ADD, CONNECT),
    "complete": (ADD, CONNECT, COMPLETE),
    "transfer": (ADD, CONNECT, "+130|c1|support|SIP/100|BLINDTRANSFER|200|from-internal|12|100|1"),
    "removemember": (ADD, REMOVE),
}


@pytest.mark.parametrize("name", list(STEPS))
def test_the_same_event_twice_changes_nothing_and_reannounces_the_current_views(name: str) -> None:
    *before, last = STEPS[name]
    first = play(*before, last)[-1]
    again = apply_operator_event(first.operator, event(last))
    assert again.operator == first.operator
    assert not again.changed
    assert again.members == member_views(first.operator)  # idempotent for the queue stage
    assert again.swept_calls == ()


def test_the_same_complete_twice_counts_one_call() -> None:
    op = final(ADD, CONNECT, COMPLETE, COMPLETE)
    assert (op.calls_today, op.talk_time_today_s) == (1, 300.0)


def test_replaying_an_old_prefix_after_a_crash_changes_nothing() -> None:
    life = (ADD, PAUSE, UNPAUSE, CONNECT, COMPLETE, "+500|NONE|support|SIP/100|PAUSE|coffee")
    done = final(*life)
    replay = play(*life[:-1], op=done)
    assert all(outcome.operator == done and not outcome.changed for outcome in replay)
    assert members_counted(queues_told(replay)) == {"support": {AGENT: (True, False)}}


def test_replayed_addmember_after_removemember_does_not_bring_the_operator_back() -> None:
    op = final(ADD, REMOVE, ADD)
    assert (op.queues, op.state) == ({}, OFFLINE)


def test_replayed_agentlogin_after_agentlogoff_does_not_log_the_agent_back_in() -> None:
    op = final(
        "+0|NONE|NONE|SIP/100|AGENTLOGIN|SIP/100-1",
        ADD,
        "+50|NONE|NONE|SIP/100|AGENTLOGOFF|SIP/100-1|50",
        "+0|NONE|NONE|SIP/100|AGENTLOGIN|SIP/100-1",
    )
    assert (op.agent_logged_in, op.state) == (False, OFFLINE)


def test_duplicate_addmember_after_a_pause_of_the_same_second_keeps_the_pause() -> None:
    op = final(ADD, "+0|NONE|support|SIP/100|PAUSE|login", ADD)
    assert op.queues["support"].paused


def _day_of_calls(count: int, start: float = 0.0, prefix: str = "c") -> list[str]:
    lines = []
    for i in range(count):
        t = start + 60 + i * 120
        callid = f"{prefix}{i}"
        lines += [f"+{t}|{callid}|support|SIP/100|CONNECT|5|x|1", f"+{t + 100}|{callid}|support|SIP/100|COMPLETEAGENT|5|100|1"]
    return lines


def test_replaying_a_short_prefix_of_calls_counts_nothing_twice() -> None:
    day = [ADD, *_day_of_calls(10)]
    done = final(*day)
    replay = play(*day, op=done)
    assert replay[-1].operator.calls_today == 10
    assert all(not outcome.operator.calls for outcome in replay)


def test_replaying_a_long_prefix_of_calls_counts_nothing_twice() -> None:
    day = [ADD, *_day_of_calls(20)]
    done = final(*day)
    replay = play(*day, op=done)
    assert replay[-1].operator.calls_today == 20
    assert all(not outcome.operator.calls for outcome in replay)  # never a ghost call on the way


@settings(max_examples=50, deadline=None)
@given(st.permutations(range(40)), st.permutations(range(40)))
def test_a_day_of_many_calls_replayed_in_any_order_of_its_calls_counts_nothing_twice(first, again) -> None:
    # call ids key queue_log's input partitions: a backlog or a replay takes the calls of one
    # partition, then another's, each call's own lines in order; the first pass in any order too
    calls = [_day_of_calls(1, start=i * 120, prefix=f"c{i}-") for i in range(40)]
    op = final(ADD, *[line for i in first for line in calls[i]])
    assert op.calls_today == 40
    op = final(*[line for i in again for line in calls[i]], op=op)
    assert (op.calls_today, op.calls) == (40, {})


def test_replayed_call_of_yesterday_does_not_roll_todays_tallies_back() -> None:
    yesterday = [ADD, *_day_of_calls(17)]  # before MIDNIGHT (T0 + 6400)
    today = _day_of_calls(2, start=MIDNIGHT - T0, prefix="d")
    op = final(*yesterday, *today)
    now = MIDNIGHT + 3600
    assert operator_view(op, now)["calls_today"] == 2
    op = final(yesterday[2], op=op)  # c0's COMPLETE again
    assert operator_view(op, now)["calls_today"] == 2


# --- staleness sweep ---------------------------------------------------------------------


def test_operator_with_no_event_for_12_hours_goes_offline_and_it_is_counted() -> None:
    outcome = play(ADD, ADD_SALES, PAUSE, sweep(10 + IDLE_S + 1))[-1]
    op = outcome.operator
    assert (op.queues, op.state, op.state_since, op.idle_resets) == ({}, OFFLINE, T0 + 10 + IDLE_S + 1, 1)
    assert outcome.changed
    assert seen(outcome.members) == {"support": (False, False, False), "sales": (False, False, False)}


def test_operator_idle_exactly_12_hours_is_left_alone() -> None:
    before = final(ADD, PAUSE)
    outcome = apply_operator_event(before, sweep(10 + IDLE_S))
    assert (outcome.operator, outcome.changed, outcome.members) == (before, False, ())


def test_idle_reset_closes_the_calls_the_operator_was_on() -> None:
    outcome = play(ADD, CONNECT, sweep(30 + IDLE_S + 1))[-1]
    assert outcome.swept_calls == (CallSwept(T0 + 30 + IDLE_S + 1, "c1", "support", CLOSED),)
    assert (outcome.operator.calls, outcome.operator.state, outcome.operator.idle_resets) == ({}, OFFLINE, 1)


def test_operator_already_offline_is_not_reset_again() -> None:
    op = final(ADD, sweep(IDLE_S + 1))
    outcome = apply_operator_event(op, sweep(3 * IDLE_S))
    assert (outcome.changed, outcome.operator.idle_resets) == (False, 1)


def test_operator_reset_by_the_sweep_comes_back_with_its_next_event() -> None:
    op = final(ADD, sweep(IDLE_S + 1), f"+{IDLE_S + 100}|MANAGER|support|SIP/100|ADDMEMBER|")
    assert (op.state, op.idle_resets) == (AVAILABLE, 1)


def test_call_talking_longer_than_4_hours_is_closed_by_the_sweep() -> None:
    # an event within 12 h keeps the operator alive; the call itself is stale
    op = final(ADD, CONNECT, f"+{TALK_S}|NONE|sales|SIP/100|PAUSE|")
    outcome = apply_operator_event(op, sweep(30 + TALK_S + 1))
    assert outcome.swept_calls == (CallSwept(T0 + 30 + TALK_S + 1, "c1", "support", CLOSED),)
    assert (outcome.operator.calls, outcome.operator.state, outcome.operator.idle_resets) == ({}, AVAILABLE, 0)
    assert "c1" in [c for c, _ in outcome.operator.ended_calls]  # a late CONNECT of it is not a new call
    assert seen(outcome.members) == {"support": (True, False, False), "sales": (True, True, False)}


def test_call_talking_exactly_4_hours_is_left_alone() -> None:
    op = final(ADD, CONNECT)
    outcome = apply_operator_event(op, sweep(30 + TALK_S))
    assert (outcome.changed, outcome.swept_calls, outcome.operator.calls.keys()) == (False, (), {"c1"})


def test_queue_keeps_following_the_operator_after_a_sweep_closed_its_call_while_input_lags() -> None:
    op_events = [ADD, CONNECT, f"+{TALK_S}|NONE|sales|SIP/100|PAUSE|"]
    swept_at = 30 + TALK_S + 10
    outcomes = play(*op_events, sweep(swept_at), f"+{swept_at - 5}|NONE|support|SIP/100|PAUSE|lunch")
    assert members_counted(queues_told(outcomes)) == members_true(outcomes[-1].operator)


# --- time in state, tallies of the day ----------------------------------------------------


def test_time_in_each_state_today_includes_the_current_one() -> None:
    op = final(
        ADD,
        "+100|NONE|support|SIP/100|PAUSE|",
        "+160|NONE|support|SIP/100|UNPAUSE|",
        "+170|c1|support|SIP/100|CONNECT|1|x|1",
    )
    assert time_in_state_today(op, T0 + 200) == {OFFLINE: 0.0, AVAILABLE: 110.0, PAUSED: 60.0, ON_CALL: 30.0}


def test_time_in_state_counts_only_since_midnight() -> None:
    op = final(ADD)
    assert time_in_state_today(op, MIDNIGHT + 3600) == {OFFLINE: 0.0, AVAILABLE: 3600.0, PAUSED: 0.0, ON_CALL: 0.0}


def test_time_in_state_banked_yesterday_is_not_today() -> None:
    op = final(ADD, "+100|NONE|support|SIP/100|PAUSE|", f"+{6400 + 600}|NONE|support|SIP/100|UNPAUSE|")
    assert time_in_state_today(op, MIDNIGHT + 900) == {OFFLINE: 0.0, AVAILABLE: 300.0, PAUSED: 600.0, ON_CALL: 0.0}


def test_calls_today_start_again_after_midnight() -> None:
    op = final(
        ADD,
        CONNECT,
        COMPLETE,
        f"+{6400 + 60}|c2|support|SIP/100|CONNECT|1|x|1",
        f"+{6400 + 120}|c2|support|SIP/100|COMPLETEAGENT|1|60|1",
    )
    assert (op.day, op.calls_today, op.talk_time_today_s) == ("2023-11-15", 1, 60.0)


def test_state_since_moves_only_when_the_state_changes() -> None:
    op = final(ADD, ADD_SALES, "+50|NONE|sales|SIP/100|PAUSE|")
    assert (op.state, op.state_since) == (AVAILABLE, T0)


# --- properties --------------------------------------------------------------------------

QUEUES = ("support", "sales")


@st.composite
def operator_lives(draw: st.DrawFn) -> list[str | OperatorSwept]:
    """What queue_log says of one operator over up to two days, in order, with duplicates and
    sweeps; calls may be missing their CONNECT or COMPLETE, or see them the wrong way round."""
    items: list[str | OperatorSwept] = []
    t = 0
    calls = 0
    open_calls: list[tuple[str, str]] = []
    ended: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 30))):
        t += draw(st.sampled_from((0, 0, 1, 20, 600, 3 * 3600, 5 * 3600, 13 * 3600)))
        q = draw(st.sampled_from(QUEUES))
        kind = draw(
            st.sampled_from(
                ("add", "add-paused", "remove", "pause", "unpause", "pauseall", "unpauseall", "login", "logoff",
                 "connect", "connect", "end", "end", "late-connect", "sweep")  # fmt: skip
            )
        )
        item: str | OperatorSwept
        if kind == "add":
            item = f"+{t}|MANAGER|{q}|SIP/100|ADDMEMBER|"
        elif kind == "add-paused":
            item = f"+{t}|MANAGER|{q}|SIP/100|ADDMEMBER|PAUSED"
        elif kind == "remove":
            item = f"+{t}|MANAGER|{q}|SIP/100|REMOVEMEMBER|"
        elif kind in ("pause", "unpause"):
            item = f"+{t}|NONE|{q}|SIP/100|{kind.upper()}|r"
        elif kind in ("pauseall", "unpauseall"):
            item = f"+{t}|NONE|NONE|SIP/100|{kind.upper()}|r"
        elif kind == "login":
            item = f"+{t}|NONE|NONE|SIP/100|AGENTLOGIN|SIP/100-1"
        elif kind == "logoff":
            item = f"+{t}|NONE|NONE|SIP/100|AGENTLOGOFF|SIP/100-1|10"
        elif kind == "connect":
            calls += 1
            open_calls.append((f"c{calls}", q))
            item = f"+{t}|c{calls}|{q}|SIP/100|CONNECT|3|x|1"
        elif kind == "end":
            if open_calls and draw(st.booleans()):
                callid, q = open_calls.pop(draw(st.integers(0, len(open_calls) - 1)))
            else:  # its CONNECT is lost, or comes later
                calls += 1
                callid = f"c{calls}"
            ended.append((callid, q))
            verb = draw(st.sampled_from(("COMPLETEAGENT|3|{d}|1", "COMPLETECALLER|3|{d}|1", "BLINDTRANSFER|200|ctx|3|{d}|1")))
            item = f"+{t}|{callid}|{q}|SIP/100|" + verb.format(d=draw(st.integers(0, 600)))
        elif kind == "late-connect" and ended:
            callid, q = draw(st.sampled_from(ended))
            item = f"+{t}|{callid}|{q}|SIP/100|CONNECT|3|x|1"
        else:
            item = OperatorSwept(T0 + t, IDLE_S, TALK_S)
        items.append(item)
        if draw(st.integers(0, 4)) == 0:
            items.append(item)  # a duplicate
    return items


def _time(item: str | OperatorSwept) -> float:
    return item.time if isinstance(item, OperatorSwept) else event(item).time


@settings(max_examples=400, deadline=None)
@given(operator_lives())
def test_member_views_say_on_call_exactly_when_the_operator_has_calls(life: list) -> None:
    for outcome in play(*life):
        op = outcome.operator
        assert (telephony_state(op) == ON_CALL) == bool(op.calls)
        assert all(view.on_call == (view.logged_in and bool(op.calls)) for view in member_views(op))
        assert all(change.on_call == (change.logged_in and bool(op.calls)) for change in outcome.members)
        assert not set(op.calls) & {c for c, _ in op.ended_calls}


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(operator_lives())
def test_queues_count_the_operator_as_its_state_says(life: list) -> None:
    outcomes = play(*life)
    for i in range(1, len(outcomes) + 1):
        assert members_counted(queues_told(outcomes[:i])) == members_true(outcomes[i - 1].operator)


@settings(max_examples=400, deadline=None)
@given(operator_lives())
def test_calls_today_never_decrease_within_a_day(life: list) -> None:
    now, last_day, last_count = 0.0, "", 0
    for item, outcome in zip(life, play(*life)):
        now = max(now, _time(item))
        count = operator_view(outcome.operator, now)["calls_today"]
        if day_of(now) == last_day:
            assert count >= last_count
        last_day, last_count = day_of(now), count


@settings(max_examples=400, deadline=None)
@given(operator_lives())
def test_time_in_states_today_never_exceeds_the_time_since_midnight(life: list) -> None:
    now = 0.0
    for item, outcome in zip(life, play(*life)):
        now = max(now, _time(item))
        spent = time_in_state_today(outcome.operator, now)
        assert set(spent) == set(STATES)
        assert all(v >= 0 for v in spent.values())
        assert sum(spent.values()) <= now - (now // 86400) * 86400 + 0.01


@settings(max_examples=300, deadline=None)
@given(operator_lives())
def test_the_same_event_again_changes_nothing(life: list) -> None:
    outcomes = play(*life)
    last = life[-1]
    again = apply_operator_event(outcomes[-1].operator, event(last) if isinstance(last, str) else last)
    assert again.operator == outcomes[-1].operator
    assert not again.changed



def test_late_end_of_a_current_call_ends_it_even_after_many_newer_calls() -> None:
    # a worker died between CONNECT and COMPLETE; the replayed COMPLETE arrives after the
    # operator already finished 20 newer calls routed through other partitions
    late_connect = "+0|old|support|SIP/100|CONNECT|1|old.1|1"
    newer = [
        line
        for i in range(20)
        for line in (f"+{100 + 10 * i}|n{i}|support|SIP/100|CONNECT|1|n{i}.1|1",
                     f"+{105 + 10 * i}|n{i}|support|SIP/100|COMPLETEAGENT|1|5|1")
    ]
    op = final(ADD, late_connect, *newer, "+3|old|support|SIP/100|COMPLETECALLER|1|3|1")
    assert op.calls == {}
    assert op.calls_today == 21


def test_operator_state_survives_how_the_table_stores_it() -> None:
    import orjson

    op = final(ADD, "+1|NONE|support|SIP/100|PAUSE|lunch", "+5|c1|support|SIP/100|CONNECT|1|c1.1|1",
               "+9|c1|support|SIP/100|COMPLETEAGENT|1|4|1", "+10|NONE|sales|SIP/100|ADDMEMBER|")
    assert OperatorState.from_json(orjson.loads(orjson.dumps(op))) == op


@pytest.mark.parametrize(
    ("lines", "after_s"),
    [
        ((ADD, PAUSE), 10 + IDLE_S + 1),
        ((ADD, PAUSE), 10 + IDLE_S),
        ((ADD, CONNECT), 30 + IDLE_S + 1),
        ((ADD, CONNECT, f"+{TALK_S}|NONE|sales|SIP/100|PAUSE|"), 30 + TALK_S + 1),
        ((ADD, CONNECT, f"+{TALK_S}|NONE|sales|SIP/100|PAUSE|"), 30 + TALK_S),
        ((ADD, sweep(IDLE_S + 1)), 3 * IDLE_S),
        ((ADD,), 60),
    ],
    ids=["idle", "idle-exactly", "idle-on-a-call", "long-call", "long-call-exactly", "already-offline", "fresh"],
)
def test_the_sweep_skips_exactly_the_operators_it_would_not_change(lines, after_s) -> None:
    op = final(*lines)
    assert needs_sweep(op, sweep(after_s)) == apply_operator_event(op, sweep(after_s)).changed


# --- a later event proves a call over (its end was lost) ------------------------------------

CONNECT_2 = "+400|c2|support|SIP/100|CONNECT|5|1700000400.5|1"
COMPLETE_2 = "+500|c2|support|SIP/100|COMPLETEAGENT|5|100|1"


def test_a_new_call_ends_the_call_whose_end_was_lost() -> None:
    outcome = play(ADD, CONNECT, CONNECT_2)[-1]
    assert outcome.operator.calls.keys() == {"c2"}
    assert outcome.inferred_ends == (
        CallEndInferred(T0 + 400, "c1", "support", EndEvidence.SUPERSEDED, "its operator answered call c2"),
    )
    assert (outcome.operator.calls_today, outcome.operator.talk_time_today_s) == (0, 0.0)  # nothing invented


def test_once_the_new_call_ends_the_operator_is_available_again() -> None:
    op = final(ADD, CONNECT, CONNECT_2, COMPLETE_2)
    assert (op.state, op.calls, op.calls_today) == (AVAILABLE, {}, 1)


def test_the_lost_end_arriving_after_all_still_counts_today() -> None:
    op = final(ADD, CONNECT, CONNECT_2, COMPLETE)
    assert op.calls.keys() == {"c2"} and op.unconfirmed_ends == ()
    assert (op.calls_today, op.talk_time_today_s) == (1, 300.0)
    again = apply_operator_event(op, event(COMPLETE))
    assert again.changed is False and again.operator.calls_today == 1  # counted once


def test_a_late_connect_of_an_older_call_is_over_at_once() -> None:
    outcome = play(ADD, CONNECT_2, CONNECT)[-1]
    assert outcome.operator.calls.keys() == {"c2"}
    assert [(e.callid, e.time) for e in outcome.inferred_ends] == [("c1", T0 + 400)]


def test_a_replayed_connect_proves_nothing_again() -> None:
    outcomes = play(ADD, CONNECT, CONNECT_2, CONNECT, CONNECT_2)
    assert [len(o.inferred_ends) for o in outcomes] == [0, 0, 1, 0, 0]
    assert outcomes[-1].operator == outcomes[2].operator


def test_with_ringinuse_an_operator_takes_several_calls_and_the_oldest_ends_beyond_them() -> None:
    op: Optional[OperatorState] = None
    inferred = []
    for line in (ADD, CONNECT, CONNECT_2, "+450|c3|support|SIP/100|CONNECT|2|1700000450.5|1"):
        outcome = apply_operator_event(op, event(line), max_calls=2)
        op, inferred = outcome.operator, [*inferred, *outcome.inferred_ends]
    assert op is not None and op.calls.keys() == {"c2", "c3"}
    assert [(e.callid, e.detail) for e in inferred] == [("c1", "its operator answered call c3")]


def test_logging_off_while_talking_proves_the_call_over() -> None:
    outcome = play("+0|MANAGER|support|Agent/100|ADDMEMBER|", "+5|NONE|NONE|Agent/100|AGENTLOGIN|SIP/100",
                   "+30|c1|support|Agent/100|CONNECT|12|x|3", "+60|NONE|NONE|Agent/100|AGENTLOGOFF|SIP/100|55")[-1]
    assert outcome.inferred_ends == (
        CallEndInferred(T0 + 60, "c1", "support", EndEvidence.OPERATOR_LEFT, "its operator logged off"),
    )
    assert (outcome.operator.state, outcome.operator.calls) == (OFFLINE, {})
