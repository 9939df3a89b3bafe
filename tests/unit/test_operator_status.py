"""The CRM status rules of seed 003 (tables/operatorstatus/status.py): nine statuses, the
Asterisk pause each implies, automatic transitions, SIP endpoint tracking, time in status,
calls today and average handle time, replays."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.codec import dumps
from tables.operatorstatus.status import (
    SIP_REGISTERED,
    SIP_UNREGISTERED,
    CallAnswered,
    CallFinished,
    CrmStatus,
    EndpointRegistered,
    EndpointUnregistered,
    LoggedIn,
    LoggedOut,
    OperatorCrm,
    PauseRequest,
    StatusRequested,
    apply_operator_input,
    asterisk_paused,
    average_handle_time_s,
    time_in_status_today,
)

MIDNIGHT = 1_800_057_600.0  # 2027-01-16 00:00 UTC
T0 = MIDNIGHT + 9 * 3600  # 09:00
OP = "SIP/1127"


def status(s: CrmStatus | str, at: float, reason: str = "") -> StatusRequested:
    return StatusRequested(OP, CrmStatus(s), reason, T0 + at, "operator")


def play(*events, op: OperatorCrm | None = None):
    outcomes = []
    for event in events:
        outcome = apply_operator_input(op, event)
        outcomes.append(outcome)
        op = outcome.operator
    return outcomes


def final(*events) -> OperatorCrm:
    return play(*events)[-1].operator


@pytest.mark.parametrize("crm, paused", [
    ("ONLINE", False), ("OFFLINE", True), ("PAUSE", True), ("BREAK", True), ("TRAINING", True), ("MEETING", True),
    ("WRAP_UP", True), ("DO_NOT_DISTURB", True), ("ON_CALL", None),
])
def test_the_seeds_mapping_only_online_unpauses_and_on_call_is_local(crm, paused) -> None:
    assert asterisk_paused(CrmStatus(crm)) is paused


def test_there_are_nine_statuses() -> None:
    assert len(CrmStatus) == 9


def test_an_operator_first_heard_of_is_offline_from_then() -> None:
    outcome = play(EndpointUnregistered(OP, T0))[-1]
    assert (outcome.operator.status, outcome.operator.since, outcome.changed) == (CrmStatus.OFFLINE, T0, True)


def test_a_softphone_first_registering_logs_the_operator_in_online_and_unpaused() -> None:
    outcome = play(EndpointRegistered(OP, T0))[-1]
    op = outcome.operator
    assert (op.status, op.reason, op.since, outcome.changed) == (CrmStatus.ONLINE, SIP_REGISTERED, T0, True)
    assert outcome.pause == PauseRequest(OP, False, SIP_REGISTERED)


def test_registering_again_after_a_logout_changes_nothing() -> None:
    outcome = play(EndpointRegistered(OP, T0), LoggedOut(OP, T0 + 10), EndpointRegistered(OP, T0 + 20))[-1]
    assert (outcome.operator.status, outcome.changed, outcome.pause) == (CrmStatus.OFFLINE, False, None)


@pytest.mark.parametrize("crm", [s for s in CrmStatus if s != CrmStatus.ON_CALL])
def test_a_person_setting_a_status_stores_it_first_and_asks_asterisk_to_follow(crm) -> None:
    outcome = play(status(crm, 0, "lunch"))[-1]
    op = outcome.operator
    assert (op.status, op.reason, op.since) == (crm, "lunch", T0)
    assert outcome.pause == PauseRequest(OP, crm != CrmStatus.ONLINE, "lunch")


def test_a_status_without_a_reason_gives_its_name_as_the_reason() -> None:
    assert final(status("BREAK", 0)).reason == "BREAK"


def test_the_same_status_again_changes_nothing_and_asks_asterisk_nothing() -> None:
    outcomes = play(status("BREAK", 0, "coffee"), status("BREAK", 60, "coffee"))
    assert (outcomes[-1].changed, outcomes[-1].pause) == (False, None)
    assert outcomes[-1].operator.since == T0  # the status began at the first


def test_a_call_answered_is_on_call_in_the_crm_only() -> None:
    outcome = play(LoggedIn(OP, T0), CallAnswered(OP, "c1", T0 + 10))[-1]
    assert (outcome.operator.status, outcome.operator.current_call, outcome.pause) == (CrmStatus.ON_CALL, "c1", None)


def test_a_call_ended_is_wrap_up_and_counted_and_asterisk_does_its_own_wrap_up() -> None:
    outcome = play(LoggedIn(OP, T0), CallAnswered(OP, "c1", T0 + 10), CallFinished(OP, "c1", T0 + 130, 120))[-1]
    op = outcome.operator
    assert (op.status, op.calls_today, op.talk_today_s, op.current_call, outcome.pause) == (
        CrmStatus.WRAP_UP, 1, 120, None, None)


def test_wrap_up_lasts_until_the_operator_changes_it() -> None:
    op = final(LoggedIn(OP, T0), CallAnswered(OP, "c1", T0 + 10), CallFinished(OP, "c1", T0 + 130, 120))
    assert time_in_status_today(op, T0 + 730)["WRAP_UP"] == 600


def test_login_is_online_and_unpaused_logout_offline_and_paused() -> None:
    login, logout = play(LoggedIn(OP, T0), LoggedOut(OP, T0 + 60))
    assert (login.operator.status, login.pause) == (CrmStatus.ONLINE, PauseRequest(OP, False, "logged in"))
    assert (logout.operator.status, logout.pause) == (CrmStatus.OFFLINE, PauseRequest(OP, True, "offline"))


def test_an_endpoint_that_unregisters_sets_the_operator_offline_automatically() -> None:
    outcome = play(LoggedIn(OP, T0), EndpointUnregistered(OP, T0 + 60))[-1]
    assert (outcome.operator.status, outcome.operator.reason) == (CrmStatus.OFFLINE, SIP_UNREGISTERED)
    assert outcome.pause == PauseRequest(OP, True, SIP_UNREGISTERED)


def test_an_endpoint_registered_again_brings_back_an_operator_set_offline_automatically() -> None:
    outcome = play(LoggedIn(OP, T0), EndpointUnregistered(OP, T0 + 60), EndpointRegistered(OP, T0 + 120))[-1]
    assert (outcome.operator.status, outcome.operator.reason) == (CrmStatus.ONLINE, SIP_REGISTERED)
    assert outcome.pause == PauseRequest(OP, False, SIP_REGISTERED)


@pytest.mark.parametrize("manual", ["OFFLINE", "BREAK", "PAUSE"])
def test_an_endpoint_registered_again_never_overrides_a_manual_status(manual) -> None:
    events = [LoggedIn(OP, T0), EndpointUnregistered(OP, T0 + 60), status(manual, 90, "gone home"),
              EndpointRegistered(OP, T0 + 120)]
    outcome = play(*events)[-1]
    assert (outcome.operator.status, outcome.changed, outcome.pause) == (CrmStatus(manual), False, None)


def test_an_operator_offline_by_hand_is_not_brought_online_by_a_registration() -> None:
    outcome = play(status("OFFLINE", 0, "end of shift"), EndpointUnregistered(OP, T0 + 5), EndpointRegistered(OP, T0 + 9))
    assert outcome[-1].operator.reason == "end of shift" and outcome[-1].operator.status == CrmStatus.OFFLINE


def test_time_in_each_status_today_includes_the_current_one() -> None:
    op = final(status("ONLINE", 0), status("BREAK", 600), status("ONLINE", 900))
    spent = time_in_status_today(op, T0 + 1000)
    assert (spent["ONLINE"], spent["BREAK"], spent["OFFLINE"]) == (700, 300, 0)
    assert set(spent) == {str(s) for s in CrmStatus}


def test_a_new_day_starts_the_tallies_again() -> None:
    op = final(status("ONLINE", 0), LoggedIn(OP, T0 + 1), CallAnswered(OP, "c1", T0 + 10), CallFinished(OP, "c1", T0 + 70, 60))
    next_day = MIDNIGHT + 86400 + 3600
    op = apply_operator_input(op, status("ONLINE", next_day - T0)).operator
    spent = time_in_status_today(op, next_day + 60)
    assert spent["WRAP_UP"] == 3600 and spent["ONLINE"] == 60  # from midnight, then since the change
    assert op.calls_today == 0 and average_handle_time_s(op, next_day + 60) is None


def test_average_handle_time_is_talk_plus_wrap_up_per_call() -> None:
    op = final(LoggedIn(OP, T0),
               CallAnswered(OP, "c1", T0 + 10), CallFinished(OP, "c1", T0 + 130, 120), status("ONLINE", 160),
               CallAnswered(OP, "c2", T0 + 200), CallFinished(OP, "c2", T0 + 260, 60), status("ONLINE", 280))
    assert average_handle_time_s(op, T0 + 300) == ((120 + 30) + (60 + 20)) / 2


def test_a_replayed_or_late_input_changes_nothing() -> None:
    events = [LoggedIn(OP, T0), CallAnswered(OP, "c1", T0 + 10), CallFinished(OP, "c1", T0 + 130, 120)]
    op = final(*events)
    for event in events:
        outcome = apply_operator_input(op, event)
        assert (outcome.changed, outcome.pause, outcome.operator.calls_today) == (False, None, 1)
    assert apply_operator_input(op, status("BREAK", 5)).changed is False  # older than what is known


def test_the_state_round_trips_through_its_stored_form() -> None:
    op = final(LoggedIn(OP, T0), CallAnswered(OP, "c1", T0 + 10), CallFinished(OP, "c1", T0 + 130, 120))
    assert OperatorCrm.from_json(orjson.loads(dumps(op))) == op


inputs = st.one_of(
    st.builds(lambda s, at: status(s, at), st.sampled_from(list(CrmStatus)), st.integers(0, 5000)),
    st.builds(lambda n, at: CallAnswered(OP, f"c{n}", T0 + at), st.integers(0, 5), st.integers(0, 5000)),
    st.builds(lambda n, at, talk: CallFinished(OP, f"c{n}", T0 + at, talk), st.integers(0, 5), st.integers(0, 5000),
              st.integers(0, 600)),
    st.builds(lambda at: LoggedIn(OP, T0 + at), st.integers(0, 5000)),
    st.builds(lambda at: LoggedOut(OP, T0 + at), st.integers(0, 5000)),
    st.builds(lambda at: EndpointRegistered(OP, T0 + at), st.integers(0, 5000)),
    st.builds(lambda at: EndpointUnregistered(OP, T0 + at), st.integers(0, 5000)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(inputs, max_size=25))
def test_time_in_status_adds_up_to_the_time_since_the_first_input_and_calls_count_once(events) -> None:
    events = sorted(events, key=lambda e: e.at)
    if not events:
        return
    op = final(*events, *events[len(events) // 2:])  # a replayed tail changes nothing
    now = events[-1].at + 100
    spent = time_in_status_today(op, now)
    assert sum(spent.values()) == pytest.approx(now - events[0].at)
    assert op.calls_today == len({e.callid for e in events if isinstance(e, CallFinished)})
    assert all(v >= 0 for v in spent.values())
