"""One call's life as queue_log tells it: `apply_call_event` over every event and odd order.

Scenarios are written as queue_log lines; a time column `+N` means N seconds after `T0`.
"""

from __future__ import annotations

from itertools import permutations
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.callcenter.calls import (
    ABANDONED,
    CLOSED,
    COMPLETED_STATUS,
    CONNECT_LOST,
    END_LOST,
    EXITED,
    LOST,
    TALKING,
    TRANSFERRED,
    WAITING,
    CallEndInferred,
    CallOutcome,
    CallState,
    CallSwept,
    EndEvidence,
    WaitingChange,
    apply_call_event,
)
from tables.callcenter.events import CallEvent
from tables.callcenter.queue_log import interpret, parse_line
from tables.callcenter.windows import ANSWERED, COMPLETED, ENTERED, UNANSWERED, WindowFact

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def event(line: str) -> CallEvent:
    """The typed event of one queue_log line; `+N` in the time column is T0 + N."""
    when, rest = line.split("|", 1)
    if when.startswith("+"):
        when = repr(T0 + float(when[1:]))
    return interpret(parse_line(f"{when}|{rest}"))  # type: ignore[return-value]


def play(*lines: str | CallSwept | CallEndInferred, call: Optional[CallState] = None) -> list[CallOutcome]:
    """Apply each line (or sweep) in order; every outcome, the last one holds the state."""
    outcomes = []
    for line in lines:
        outcome = apply_call_event(call, event(line) if isinstance(line, str) else line)
        outcomes.append(outcome)
        call = outcome.call
    return outcomes


def final(*lines: str | CallSwept, call: Optional[CallState] = None) -> CallState:
    state = play(*lines, call=call)[-1].call
    assert state is not None
    return state


def waiting_sets(outcomes: list[CallOutcome]) -> dict[str, dict[str, float]]:
    """What the queue stage keeps (queue -> callid -> waiting since) after these outcomes."""
    queues: dict[str, dict[str, float]] = {}
    for outcome in outcomes:
        for change in outcome.waiting:
            waiting = queues.setdefault(change.queue, {})
            if change.waiting_since is None:
                waiting.pop(change.callid, None)
            else:
                waiting[change.callid] = change.waiting_since
    return {q: w for q, w in queues.items() if w}


ENTER = "+0|c1|support|NONE|ENTERQUEUE||+79161234567|1"
RING = "+5|c1|support|SIP/100|RINGNOANSWER|5000"
CONNECT = "+12|c1|support|SIP/101|CONNECT|12|1700000012.7|3"
COMPLETE = "+312|c1|support|SIP/101|COMPLETEAGENT|12|300|1"
ABANDON = "+40|c1|support|NONE|ABANDON|2|1|40"


# --- every event's effect ----------------------------------------------------------------


def test_call_entering_a_queue_waits_there() -> None:
    [outcome] = play(ENTER)
    assert outcome.call == CallState(
        callid="c1",
        queue="support",
        status=WAITING,
        entered_at=T0,
        callerid="+79161234567",
        position=1,
        last_time=T0,
        last_rank=0,
    )
    assert outcome.waiting == (WaitingChange("support", "c1", T0, T0),)
    assert outcome.facts == (WindowFact(f"CallEntered:c1:{T0}", "support", T0, ENTERED),)
    assert outcome.changed


def test_call_entering_in_asterisk_1_4_layout_has_no_position() -> None:
    call = final("+0|c1|support|NONE|ENTERQUEUE||+79161234567")
    assert (call.status, call.position, call.callerid) == (WAITING, None, "+79161234567")


@pytest.mark.parametrize("kind", ["RINGNOANSWER", "RINGCANCELED"])
def test_unanswered_ring_is_counted_and_the_call_keeps_waiting(kind: str) -> None:
    enter, ring = play(ENTER, f"+5|c1|support|SIP/100|{kind}|5000")
    assert ring.call is not None
    assert (ring.call.status, ring.call.rings, ring.call.entered_at) == (WAITING, 1, T0)
    assert ring.waiting == (WaitingChange("support", "c1", T0 + 5, T0),)
    assert ring.facts == ()


def test_every_unanswered_ring_adds_one() -> None:
    call = final(ENTER, "+5|c1|support|SIP/100|RINGNOANSWER|5000", "+10|c1|support|SIP/102|RINGNOANSWER|5000")
    assert call.rings == 2


def test_call_answered_talks_with_the_agent_and_stops_waiting() -> None:
    _, connect = play(ENTER, CONNECT)
    assert connect.call is not None
    call = connect.call
    assert (call.status, call.agent, call.answered_at, call.holdtime_s, call.entered_at) == (
        TALKING,
        "SIP/101",
        T0 + 12,
        12.0,
        T0,
    )
    assert connect.waiting == (WaitingChange("support", "c1", T0 + 12, None),)
    assert connect.facts == (WindowFact(f"CallConnected:c1:{T0 + 12}", "support", T0 + 12, ANSWERED, wait_s=12.0),)


@pytest.mark.parametrize(("kind", "by_agent"), [("COMPLETEAGENT", True), ("COMPLETECALLER", False)])
def test_call_completed_ends_with_its_talk_time(kind: str, by_agent: bool) -> None:
    outcome = play(ENTER, CONNECT, f"+312|c1|support|SIP/101|{kind}|12|300|1")[-1]
    call = outcome.call
    assert call is not None
    assert (call.status, call.ended_at, call.holdtime_s, call.calltime_s, call.end_reason) == (
        COMPLETED_STATUS,
        T0 + 312,
        12.0,
        300.0,
        kind,
    )
    assert outcome.waiting == (WaitingChange("support", "c1", T0 + 312, None),)
    assert outcome.facts == (WindowFact(f"CallCompleted:c1:{T0 + 312}", "support", T0 + 312, COMPLETED, talk_s=300.0),)


def test_call_abandoned_after_waiting_leaves_the_queue() -> None:
    outcome = play(ENTER, ABANDON)[-1]
    call = outcome.call
    assert call is not None
    assert (call.status, call.ended_at, call.holdtime_s, call.end_reason) == (ABANDONED, T0 + 40, 40.0, "ABANDON")
    assert outcome.waiting == (WaitingChange("support", "c1", T0 + 40, None),)
    assert outcome.facts == (
        WindowFact(f"ABANDON:c1:{T0 + 40}", "support", T0 + 40, UNANSWERED, wait_s=40.0, abandoned=True),
    )


@pytest.mark.parametrize("kind", ["EXITWITHTIMEOUT", "EXITEMPTY"])
def test_call_leaving_on_timeout_or_empty_queue_exits_unanswered(kind: str) -> None:
    outcome = play(ENTER, f"+60|c1|support|NONE|{kind}|1|1|60")[-1]
    call = outcome.call
    assert call is not None
    assert (call.status, call.holdtime_s, call.end_reason) == (EXITED, 60.0, kind)
    assert waiting_sets([outcome]) == {}
    assert outcome.facts == (WindowFact(f"{kind}:c1:{T0 + 60}", "support", T0 + 60, UNANSWERED, wait_s=60.0),)


def test_call_leaving_with_a_key_exits_and_remembers_the_key() -> None:
    outcome = play(ENTER, "+25|c1|support|NONE|EXITWITHKEY|5|1|1|25")[-1]
    call = outcome.call
    assert call is not None
    assert (call.status, call.end_reason, call.holdtime_s) == (EXITED, "EXITWITHKEY 5", 25.0)
    assert [(f.kind, f.wait_s, f.abandoned) for f in outcome.facts] == [(UNANSWERED, 25.0, False)]


def test_exit_without_waittime_in_asterisk_1_4_keeps_the_enter_time() -> None:
    call = final(ENTER, "+60|c1|support|NONE|EXITWITHTIMEOUT|1")
    assert (call.status, call.entered_at, call.holdtime_s) == (EXITED, T0, None)


def test_withdrawn_call_leaves_the_queue_but_is_not_an_unanswered_fact() -> None:
    outcome = play(ENTER, "+30|c1|support|NONE|WITHDRAW|1|1|30|moved")[-1]
    assert outcome.call is not None and outcome.call.status == EXITED
    assert outcome.waiting == (WaitingChange("support", "c1", T0 + 30, None),)
    assert outcome.facts == ()  # SPEC: unanswered = ABANDON + EXITWITHTIMEOUT + EXITEMPTY + EXITWITHKEY


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("+100|c1|support|SIP/101|TRANSFER|200|from-internal|12|88|1", "TRANSFER 200@from-internal"),
        ("+100|c1|support|SIP/101|BLINDTRANSFER|200|from-internal|12|88|1", "BLINDTRANSFER 200@from-internal"),
        ("+100|c1|support|SIP/101|ATTENDEDTRANSFER|BRIDGE|b-42|12|88|1", "ATTENDEDTRANSFER BRIDGE|b-42"),
        (
            "+100|c1|support|SIP/101|ATTENDEDTRANSFER|LINK|SIP/101-1|SIP/200-2|12|88|1",
            "ATTENDEDTRANSFER LINK|SIP/101-1|SIP/200-2",
        ),
    ],
    ids=["transfer-1.4", "blind", "attended-bridge", "attended-link"],
)
def test_transferred_call_ends_here_with_its_target(line: str, reason: str) -> None:
    outcome = play(ENTER, CONNECT, line)[-1]
    call = outcome.call
    assert call is not None
    assert (call.status, call.ended_at, call.calltime_s, call.end_reason) == (TRANSFERRED, T0 + 100, 88.0, reason)
    assert outcome.facts == ()  # SPEC: completed counts COMPLETE* only
    assert waiting_sets([outcome]) == {}


# --- lost events -----------------------------------------------------------------------


def test_connect_without_enterqueue_starts_the_call_holdtime_before() -> None:
    outcome = play(CONNECT)[-1]
    call = outcome.call
    assert call is not None
    assert (call.status, call.entered_at, call.answered_at, call.agent) == (TALKING, T0, T0 + 12, "SIP/101")
    assert waiting_sets([outcome]) == {}
    assert [f.kind for f in outcome.facts] == [ANSWERED]


def test_complete_without_connect_still_ends_the_waiting_call() -> None:
    outcomes = play(ENTER, COMPLETE)
    call = outcomes[-1].call
    assert call is not None
    assert (call.status, call.entered_at, call.agent, call.calltime_s) == (COMPLETED_STATUS, T0, "SIP/101", 300.0)
    assert waiting_sets(outcomes) == {}


def test_complete_of_a_call_never_seen_is_a_completed_call() -> None:
    call = final(COMPLETE)
    assert (call.status, call.answered_at, call.ended_at, call.queue) == (COMPLETED_STATUS, T0 + 12, T0 + 312, "support")


def test_transfer_of_a_call_never_seen_is_a_transferred_call() -> None:
    call = final("+100|c1|support|SIP/101|BLINDTRANSFER|200|from-internal|12|88|1")
    assert (call.status, call.answered_at) == (TRANSFERRED, T0 + 12)


def test_abandon_of_a_call_never_seen_waited_its_waittime() -> None:
    outcome = play(ABANDON)[-1]
    assert outcome.call is not None
    assert (outcome.call.status, outcome.call.entered_at) == (ABANDONED, T0)
    assert waiting_sets([outcome]) == {}


def test_exit_of_a_call_never_seen_without_waittime_has_no_enter_time() -> None:
    call = final("+60|c1|support|NONE|EXITWITHTIMEOUT|1")
    assert (call.status, call.entered_at) == (EXITED, None)


def test_ring_of_a_call_whose_enterqueue_was_lost_waits_since_the_ring() -> None:
    outcome = play(RING)[-1]
    assert outcome.call is not None
    assert (outcome.call.status, outcome.call.entered_at, outcome.call.rings) == (WAITING, None, 1)
    assert outcome.waiting == (WaitingChange("support", "c1", T0 + 5, T0 + 5),)


def test_call_whose_exit_was_lost_keeps_waiting_until_the_sweep() -> None:
    outcomes = play(ENTER, RING)
    assert waiting_sets(outcomes) == {"support": {"c1": T0}}
    outcomes += play(CallSwept(T0 + 3601, "c1", "support", LOST), call=outcomes[-1].call)
    assert outcomes[-1].call is not None and outcomes[-1].call.status == LOST
    assert waiting_sets(outcomes) == {}


# --- odd orders --------------------------------------------------------------------------


def test_complete_arriving_before_its_connect_keeps_the_call_completed() -> None:
    outcomes = play(ENTER, COMPLETE, CONNECT)
    late_connect = outcomes[-1]
    assert late_connect.call == outcomes[1].call
    assert not late_connect.changed
    assert waiting_sets(outcomes) == {}
    # the answer still happened: its fact is counted in its own window
    assert [f.kind for f in late_connect.facts] == [ANSWERED]


def test_enterqueue_arriving_after_the_abandon_does_not_reopen_the_call() -> None:
    outcomes = play(ABANDON, ENTER)
    assert outcomes[-1].call is not None and outcomes[-1].call.status == ABANDONED
    assert not outcomes[-1].changed
    assert waiting_sets(outcomes) == {}


def test_late_ring_after_connect_changes_nothing() -> None:
    outcomes = play(ENTER, CONNECT, RING)
    assert outcomes[-1].call == outcomes[1].call
    assert outcomes[-1].call is not None and outcomes[-1].call.rings == 0


@pytest.mark.parametrize(
    "order",
    list(permutations(range(3))),
    ids=lambda order: "-".join(("enter", "connect", "complete")[i] for i in order),
)
def test_events_of_one_second_end_completed_in_any_arrival_order(order: tuple[int, ...]) -> None:
    same_second = (
        "+0|c1|support|NONE|ENTERQUEUE||+79161234567|1",
        "+0|c1|support|SIP/101|CONNECT|0|1700000000.7|1",
        "+0|c1|support|SIP/101|COMPLETECALLER|0|0|1",
    )
    outcomes = play(*(same_second[i] for i in order))
    assert outcomes[-1].call is not None and outcomes[-1].call.status == COMPLETED_STATUS
    assert waiting_sets(outcomes) == {}


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["enter-connect", "connect-enter"])
def test_enter_and_connect_of_one_second_end_talking_in_either_order(order: tuple[int, ...]) -> None:
    same_second = ("+0|c1|support|NONE|ENTERQUEUE||+79161234567|1", "+0|c1|support|SIP/101|CONNECT|0|x|1")
    outcomes = play(*(same_second[i] for i in order))
    call = outcomes[-1].call
    assert call is not None and (call.status, call.agent) == (TALKING, "SIP/101")
    assert waiting_sets(outcomes) == {}


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["enter-abandon", "abandon-enter"])
def test_enter_and_abandon_of_one_second_end_abandoned_in_either_order(order: tuple[int, ...]) -> None:
    same_second = ("+0|c1|support|NONE|ENTERQUEUE||+79161234567|1", "+0|c1|support|NONE|ABANDON|1|1|0")
    outcomes = play(*(same_second[i] for i in order))
    assert outcomes[-1].call is not None and outcomes[-1].call.status == ABANDONED
    assert waiting_sets(outcomes) == {}


def test_ring_and_connect_of_one_second_end_talking_in_either_order() -> None:
    ring = "+12|c1|support|SIP/100|RINGNOANSWER|5000"
    for lines in ((ENTER, ring, CONNECT), (ENTER, CONNECT, ring)):
        outcomes = play(*lines)
        assert outcomes[-1].call is not None and outcomes[-1].call.status == TALKING
        assert waiting_sets(outcomes) == {}


# --- re-entering, transfers --------------------------------------------------------------


def test_call_entering_another_queue_while_waiting_moves_there() -> None:
    outcomes = play(ENTER, "+30|c1|sales|NONE|ENTERQUEUE||+79161234567|1")
    moved = outcomes[-1]
    assert moved.call is not None
    assert (moved.call.queue, moved.call.status, moved.call.entered_at) == ("sales", WAITING, T0 + 30)
    assert moved.waiting == (
        WaitingChange("support", "c1", T0 + 30, None),
        WaitingChange("sales", "c1", T0 + 30, T0 + 30),
    )
    assert [(f.queue, f.kind) for f in moved.facts] == [("sales", ENTERED)]
    assert waiting_sets(outcomes) == {"sales": {"c1": T0 + 30}}


def test_call_answered_in_another_queue_leaves_the_one_it_waited_in() -> None:
    outcomes = play(ENTER, "+30|c1|sales|SIP/300|CONNECT|30|x|2")
    call = outcomes[-1].call
    assert call is not None and (call.queue, call.status) == ("sales", TALKING)
    assert waiting_sets(outcomes) == {}


def test_call_reentering_another_queue_after_its_exit_waits_there_afresh() -> None:
    outcomes = play(ENTER, "+60|c1|support|NONE|EXITWITHTIMEOUT|1|1|60", "+61|c1|sales|NONE|ENTERQUEUE||+79161234567|1")
    call = outcomes[-1].call
    assert call is not None
    assert (call.queue, call.status, call.entered_at, call.end_reason) == ("sales", WAITING, T0 + 61, None)
    assert waiting_sets(outcomes) == {"sales": {"c1": T0 + 61}}


def test_transferred_call_entering_another_queue_later_waits_there() -> None:
    outcomes = play(
        ENTER,
        CONNECT,
        "+100|c1|support|SIP/101|BLINDTRANSFER|700|queues|12|88|1",
        "+101|c1|sales|NONE|ENTERQUEUE||+79161234567|1",
        "+110|c1|sales|SIP/300|CONNECT|9|x|2",
    )
    call = outcomes[-1].call
    assert call is not None
    assert (call.queue, call.status, call.agent) == ("sales", TALKING, "SIP/300")
    assert (call.entered_at, call.holdtime_s) == (T0 + 101, 9.0)
    assert waiting_sets(outcomes[:-1]) == {"sales": {"c1": T0 + 101}}
    assert waiting_sets(outcomes) == {}


def test_call_timing_out_into_the_next_queue_in_the_same_second_waits_there() -> None:
    # Queue(support,,,,60) then Queue(sales) in the dialplan: both lines carry the same second
    outcomes = play(ENTER, "+60|c1|support|NONE|EXITWITHTIMEOUT|1|1|60", "+60|c1|sales|NONE|ENTERQUEUE||+79161234567|1")
    call = outcomes[-1].call
    assert call is not None and (call.queue, call.status) == ("sales", WAITING)
    assert waiting_sets(outcomes) == {"sales": {"c1": T0 + 60}}


def test_call_blind_transferred_to_another_queue_in_the_same_second_waits_there() -> None:
    outcomes = play(
        ENTER,
        CONNECT,
        "+100|c1|support|SIP/101|BLINDTRANSFER|700|queues|12|88|1",
        "+100|c1|sales|NONE|ENTERQUEUE||+79161234567|1",
    )
    call = outcomes[-1].call
    assert call is not None and (call.queue, call.status) == ("sales", WAITING)
    assert waiting_sets(outcomes) == {"sales": {"c1": T0 + 100}}


def test_call_abandoning_another_queue_after_lost_events_names_that_queue() -> None:
    # support's EXITWITHKEY and sales' ENTERQUEUE were lost
    call = final(ENTER, "+90|c1|sales|NONE|ABANDON|1|1|20")
    assert (call.queue, call.status) == ("sales", ABANDONED)


# --- duplicates and replays --------------------------------------------------------------

LIFE = {
    "enter": ENTER,
    "connect": CONNECT,
    "complete": COMPLETE,
    "abandon": ABANDON,
    "exit-timeout": "+60|c1|support|NONE|EXITWITHTIMEOUT|1|1|60",
    "exit-key": "+25|c1|support|NONE|EXITWITHKEY|5|1|1|25",
    "transfer": "+100|c1|support|SIP/101|BLINDTRANSFER|200|from-internal|12|88|1",
}
BEFORE = {
    "enter": (),
    "connect": (ENTER,),
    "complete": (ENTER, CONNECT),
    "abandon": (ENTER,),
    "exit-timeout": (ENTER,),
    "exit-key": (ENTER,),
    "transfer": (ENTER, CONNECT),
}


@pytest.mark.parametrize("name", list(LIFE))
def test_the_same_event_twice_changes_nothing_and_reannounces_the_same_view(name: str) -> None:
    first, again = play(*BEFORE[name], LIFE[name], LIFE[name])[-2:]
    assert again.call == first.call
    assert again.waiting == first.waiting  # idempotent for the queue stage
    assert again.facts == first.facts  # same fact id: windows count it once


def test_the_same_enterqueue_twice_is_not_a_change() -> None:
    first, again = play(ENTER, ENTER)
    assert not again.changed
    assert again.waiting == first.waiting


def test_the_same_ring_twice_counts_once() -> None:
    assert final(ENTER, RING, RING).rings == 1


def test_replaying_an_old_prefix_after_a_crash_changes_nothing() -> None:
    done = final(ENTER, RING, CONNECT, COMPLETE)
    replay = play(ENTER, RING, CONNECT, call=done)
    assert all(outcome.call == done and not outcome.changed for outcome in replay)
    # each replayed event re-announces the current view (not waiting), never the old one
    assert {change for outcome in replay for change in outcome.waiting} == {WaitingChange("support", "c1", T0 + 312, None)}


def test_replaying_the_whole_life_after_a_crash_ends_in_the_same_state() -> None:
    life = (ENTER, RING, CONNECT, COMPLETE)
    assert final(*life, *life) == final(*life)


def test_replayed_events_carry_the_same_fact_ids() -> None:
    first = play(ENTER, CONNECT, COMPLETE)
    again = play(ENTER, CONNECT, COMPLETE, call=first[-1].call)
    assert [o.facts for o in again] == [o.facts for o in first]


def test_duplicate_enterqueue_after_the_call_was_swept_lost_does_not_revive_it() -> None:
    outcomes = play(ENTER, CallSwept(T0 + 3601, "c1", "support", LOST), ENTER)
    assert outcomes[-1].call is not None and outcomes[-1].call.status == LOST
    assert waiting_sets(outcomes) == {}


def test_duplicate_connect_after_the_call_was_closed_does_not_reopen_it() -> None:
    call = final(ENTER, CONNECT, CallSwept(T0 + 4 * 3600 + 13, "c1", "support", CLOSED), CONNECT)
    assert call.status == CLOSED


# --- staleness sweeps --------------------------------------------------------------------


def test_call_waiting_too_long_is_marked_lost_by_the_sweep() -> None:
    outcome = play(ENTER, CallSwept(T0 + 3601, "c1", "support", LOST))[-1]
    call = outcome.call
    assert call is not None
    assert (call.status, call.ended_at, call.end_reason) == (LOST, T0 + 3601, "staleness sweep")
    assert outcome.changed
    assert outcome.waiting == (WaitingChange("support", "c1", T0 + 3601, None),)  # as of the verdict
    assert outcome.facts == ()  # SPEC: a lost call is none of the windowed kinds


def test_call_talking_too_long_is_closed_by_the_sweep() -> None:
    outcome = play(ENTER, CONNECT, CallSwept(T0 + 4 * 3600 + 13, "c1", "support", CLOSED))[-1]
    call = outcome.call
    assert call is not None
    assert (call.status, call.ended_at, call.end_reason) == (CLOSED, T0 + 4 * 3600 + 13, "staleness sweep")
    assert waiting_sets([outcome]) == {}


def test_lost_verdict_for_a_call_answered_meanwhile_changes_nothing() -> None:
    talking = final(ENTER, CONNECT)
    outcome = apply_call_event(talking, CallSwept(T0 + 3601, "c1", "support", LOST))
    assert (outcome.call, outcome.changed, outcome.waiting) == (talking, False, ())


def test_close_verdict_for_a_call_still_waiting_changes_nothing() -> None:
    waiting = final(ENTER)
    outcome = apply_call_event(waiting, CallSwept(T0 + 4 * 3600, "c1", "support", CLOSED))
    assert (outcome.call, outcome.changed) == (waiting, False)


def test_sweep_verdict_for_an_ended_call_changes_nothing() -> None:
    done = final(ENTER, CONNECT, COMPLETE)
    for status in (LOST, CLOSED):
        outcome = apply_call_event(done, CallSwept(T0 + 5 * 3600, "c1", "support", status))
        assert (outcome.call, outcome.changed) == (done, False)


def test_sweep_verdict_for_an_unknown_call_stores_nothing() -> None:
    outcome = apply_call_event(None, CallSwept(T0, "c9", "support", LOST))
    assert (outcome.call, outcome.changed) == (None, False)


def test_call_ending_after_the_lost_verdict_takes_its_real_end() -> None:
    call = final(ENTER, CallSwept(T0 + 3601, "c1", "support", LOST), "+3700|c1|support|NONE|ABANDON|1|1|3700")
    assert call.status == ABANDONED


def test_lost_verdict_from_the_queue_a_call_left_does_not_touch_it_in_its_new_queue() -> None:
    moved = final(ENTER, "+3600|c1|sales|NONE|ENTERQUEUE||+79161234567|1")
    outcome = apply_call_event(moved, CallSwept(T0 + 3601, "c1", "support", LOST))
    assert outcome.call is not None and (outcome.call.queue, outcome.call.status) == ("sales", WAITING)


# --- properties --------------------------------------------------------------------------

QUEUES = ("support", "sales")


def _time_of(item: str | CallSwept) -> float:
    return item.time - T0 if isinstance(item, CallSwept) else float(item.split("|", 1)[0][1:])


@st.composite
def call_lines(draw: st.DrawFn, rings: bool = True) -> str:
    """Any one call event of call c1, at any of a few seconds, in either queue."""
    t = draw(st.integers(0, 6)) * 10
    q = draw(st.sampled_from(QUEUES))
    hold = draw(st.integers(0, 30))
    kinds = [
        f"+{t}|c1|{q}|NONE|ENTERQUEUE||+7916|1",
        f"+{t}|c1|{q}|SIP/1|CONNECT|{hold}|x|2",
        f"+{t}|c1|{q}|SIP/1|COMPLETEAGENT|{hold}|{t}|1",
        f"+{t}|c1|{q}|SIP/1|COMPLETECALLER|{hold}|{t}|1",
        f"+{t}|c1|{q}|SIP/1|BLINDTRANSFER|200|ctx|{hold}|{t}|1",
        f"+{t}|c1|{q}|NONE|ABANDON|1|1|{hold}",
        f"+{t}|c1|{q}|NONE|EXITWITHTIMEOUT|1|1|{hold}",
        f"+{t}|c1|{q}|NONE|EXITWITHKEY|3|1|1|{hold}",
        f"+{t}|c1|{q}|NONE|WITHDRAW|1|1|{hold}|x",
    ]
    if rings:
        kinds.append(f"+{t}|c1|{q}|SIP/2|RINGNOANSWER|{hold * 1000}")
    return draw(st.sampled_from(kinds))


sweeps = st.builds(
    lambda t, q, status: CallSwept(T0 + t, "c1", q, status),
    st.integers(0, 70),
    st.sampled_from(QUEUES),
    st.sampled_from((LOST, CLOSED)),
)


@st.composite
def call_lives(draw: st.DrawFn, rings: bool = True) -> list[str | CallSwept]:
    """What queue_log can say of call c1: one or two queue visits in time order, each entered,
    maybe rung, then answered and ended, or left unanswered; the last visit may still be open.
    Any event may be lost, any may arrive twice, and a sweep verdict may come an hour later."""
    lines: list[str | CallSwept] = []
    t = 0
    visits = draw(st.integers(1, 2))
    for visit in range(visits):
        q = draw(st.sampled_from(QUEUES))
        entered = t
        lines.append(f"+{t}|c1|{q}|NONE|ENTERQUEUE||+7916|1")
        for _ in range(draw(st.integers(0, 2)) if rings else 0):
            t += draw(st.integers(0, 10))
            lines.append(f"+{t}|c1|{q}|SIP/2|RINGNOANSWER|5000")
        endings = ["talk", "abandon", "timeout", "key", "withdraw", "transfer"]
        if visit == visits - 1:
            endings += ["open-waiting", "open-talking"]
        ending = draw(st.sampled_from(endings))
        t += draw(st.integers(0, 20))
        hold = t - entered
        if ending in ("talk", "transfer", "open-talking"):
            lines.append(f"+{t}|c1|{q}|SIP/1|CONNECT|{hold}|x|2")
            answered, t = t, t + draw(st.integers(0, 20))
            if ending == "talk":
                lines.append(f"+{t}|c1|{q}|SIP/1|COMPLETEAGENT|{hold}|{t - answered}|1")
            elif ending == "transfer":
                lines.append(f"+{t}|c1|{q}|SIP/1|BLINDTRANSFER|700|queues|{hold}|{t - answered}|1")
        elif ending == "abandon":
            lines.append(f"+{t}|c1|{q}|NONE|ABANDON|1|1|{hold}")
        elif ending == "timeout":
            lines.append(f"+{t}|c1|{q}|NONE|EXITWITHTIMEOUT|1|1|{hold}")
        elif ending == "key":
            lines.append(f"+{t}|c1|{q}|NONE|EXITWITHKEY|3|1|1|{hold}")
        elif ending == "withdraw":
            lines.append(f"+{t}|c1|{q}|NONE|WITHDRAW|1|1|{hold}|x")
        t += 1  # the next visit starts a second later (same second: see the tests above)
    if draw(st.booleans()):
        lines.append(CallSwept(T0 + t + 4 * 3600, "c1", draw(st.sampled_from(QUEUES)), draw(st.sampled_from((LOST, CLOSED)))))
    kept = [line for line in lines if draw(st.booleans()) or draw(st.booleans())]  # about a quarter lost
    arriving: list[str | CallSwept] = []
    for line in kept:
        arriving += [line] * draw(st.sampled_from((1, 1, 1, 2)))
    return arriving or lines[:1]


@settings(max_examples=500, deadline=None)
@given(call_lives(rings=False))
def test_replaying_any_life_in_full_ends_in_the_same_call_state(sequence: list) -> None:
    # RINGNOANSWER is left out: a duplicate of it counts twice (see test_the_same_ring_twice_counts_once)
    assert play(*sequence, *sequence)[-1].call == play(*sequence)[-1].call


@settings(max_examples=500, deadline=None)
@given(call_lives(rings=False), st.data())
def test_replaying_a_prefix_of_a_life_leaves_an_ended_call_as_it_is(sequence: list, data: st.DataObject) -> None:
    # RINGNOANSWER is left out: a duplicate of it counts twice (see test_the_same_ring_twice_counts_once)
    state = play(*sequence)[-1].call
    prefix = [item for item in sequence[: data.draw(st.integers(1, len(sequence)))] if isinstance(item, str)]
    if state is None or state.status in (WAITING, TALKING, LOST, CLOSED) or not prefix:
        return  # open calls move on with a replay; swept calls: see the tests above
    assert play(*prefix, call=state)[-1].call == state


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(call_lines(), sweeps), min_size=1, max_size=10))
def test_queues_see_the_call_waiting_exactly_where_its_state_says(sequence: list) -> None:
    # any arrival order at all, lost and duplicated events included
    outcomes = play(*sequence)
    call = outcomes[-1].call
    expected = {call.queue: {call.callid}} if call is not None and call.status == WAITING else {}
    assert {q: set(w) for q, w in waiting_sets(outcomes).items()} == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(call_lines(), min_size=1, max_size=10))
def test_every_event_offers_one_fact_at_most_and_it_is_of_its_own_queue_and_time(sequence: list[str]) -> None:
    for line, outcome in zip(sequence, play(*sequence)):
        source = event(line)
        assert len(outcome.facts) <= 1
        for fact in outcome.facts:
            assert (fact.queue, fact.time) == (source.queue, source.time)


def test_only_ended_calls_past_retention_are_forgotten() -> None:
    from tables.callcenter.calls import past_retention

    ended = final(ENTER, "+10|c1|support|NONE|ABANDON|1|1|10")
    waiting = final(ENTER)
    assert past_retention(ended, T0 + 10 + 86401, 86400)
    assert not past_retention(ended, T0 + 10 + 86399, 86400)
    assert not past_retention(waiting, T0 + 10 * 86400, 86400)  # open calls are the sweep's business


def test_a_calls_json_is_its_fields_as_asdict_would_give_them() -> None:
    import dataclasses

    full = CallState("c1", "support", COMPLETED_STATUS, entered_at=1.0, answered_at=2.0, ended_at=3.0,
                     callerid="+7900", position=2, agent="PJSIP/1", holdtime_s=1.0, calltime_s=1.0, rings=1,
                     end_reason="COMPLETEAGENT", last_time=3.0, last_rank=3)
    for call in (full, CallState("c2", "sales", WAITING)):
        assert call.to_json() == dataclasses.asdict(call)
        assert CallState.from_json(call.to_json()) == call


# --- ends proven by later events (their own were lost) ------------------------------------


def superseded(after_s: float, callid: str = "c1") -> CallEndInferred:
    return CallEndInferred(T0 + after_s, callid, "support", EndEvidence.SUPERSEDED, "its operator answered call c9")


def test_an_inferred_end_closes_a_talking_call_with_an_unknown_end_and_no_fact() -> None:
    outcome = play(ENTER, CONNECT, superseded(400))[-1]
    assert outcome.call is not None
    assert (outcome.call.status, outcome.call.ended_at) == (CLOSED, T0 + 400)
    assert outcome.call.end_reason == "unknown end: its operator answered call c9"
    assert outcome.facts == ()  # no completed call, no talk time invented


def test_the_calls_own_end_after_an_inferred_one_says_how_it_really_ended() -> None:
    call = final(ENTER, CONNECT, superseded(400), COMPLETE)
    assert (call.status, call.ended_at, call.calltime_s) == (COMPLETED_STATUS, T0 + 312, 300.0)


@pytest.mark.parametrize("before", [(ENTER,), (ENTER, CONNECT, COMPLETE), (ENTER, ABANDON)])
def test_an_inferred_end_changes_only_a_talking_call(before: tuple[str, ...]) -> None:
    outcomes = play(*before, superseded(400))
    assert outcomes[-1].changed is False and outcomes[-1].call == outcomes[-2].call


def test_an_inferred_end_older_than_what_the_call_heard_since_is_ignored() -> None:
    outcome = play(ENTER, CONNECT, superseded(5))[-1]
    assert (outcome.changed, outcome.call.status if outcome.call else None) == (False, TALKING)


def test_an_end_for_a_call_still_waiting_heals_its_lost_connect() -> None:
    outcome = play(ENTER, COMPLETE)[-1]
    assert outcome.call is not None and outcome.call.status == COMPLETED_STATUS
    assert outcome.healed == CONNECT_LOST
    assert outcome.waiting == (WaitingChange("support", "c1", T0 + 312, None),)  # it waits no more


def test_a_talking_call_entering_its_queue_again_waits_again() -> None:
    outcome = play(ENTER, CONNECT, "+500|c1|support|NONE|ENTERQUEUE||+79161234567|1")[-1]
    assert outcome.call is not None and (outcome.call.status, outcome.call.entered_at) == (WAITING, T0 + 500)
    assert outcome.healed == END_LOST
    assert [f.kind for f in outcome.facts] == [ENTERED]


def test_a_duplicate_enterqueue_of_a_talking_call_changes_nothing() -> None:
    outcome = play(ENTER, CONNECT, "+12|c1|support|NONE|ENTERQUEUE||+79161234567|1")[-1]
    assert (outcome.changed, outcome.healed) == (False, "")
    assert outcome.call is not None and outcome.call.status == TALKING


def test_an_ordinary_life_heals_nothing() -> None:
    assert [o.healed for o in play(ENTER, RING, CONNECT, COMPLETE)] == ["", "", "", ""]
    assert play(COMPLETE)[-1].healed == ""  # a log that starts mid-call is no loss
