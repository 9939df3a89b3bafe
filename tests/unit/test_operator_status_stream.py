"""Operator status as a stream (seed 003): the call center's operator view turned into the
CRM's inputs (tables/operatorstatus/telephony.py), the input topics' records checked
(records.py), Asterisk drift repairs and AMI endpoint events (sync.py), the shapes the CRM
status is shown in (views.py), and the stage that applies it all
(agents/operatorstatus.OperatorStatusStage) over in-memory tables.

The pure CRM rules themselves are pinned in test_operator_status.py."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Optional

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import agents.operatorstatus as operatorstatus_agent
from agents.operatorstatus import OperatorStatusStage, _OutboxThenPauses
from app.main import app
from app.models import OperatorAnswer, OperatorCrmStatus
from app.stages import key_partition
from tables.callcenter.operators import CurrentCall, Membership, OperatorState, apply_operator_event, day_of
from tables.callcenter.queue_log import interpret, parse_line
from tables.callcenter.views import operator_view
from tables.operatorstatus.records import (
    EPOCH_MAX,
    EPOCH_MIN,
    MalformedRecord,
    command_record,
    parse_command,
    parse_registration,
    parse_telephony,
    registration_record,
)
from tables.operatorstatus.status import (
    AFTER_CALL,
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
)
from tables.operatorstatus.store import topics
from tables.operatorstatus.sync import MemberPause, Registration, endpoint_registration, pause_repairs
from tables.operatorstatus.telephony import TelephonyObserved, TelephonySeen, telephony_inputs
from tables.operatorstatus.views import crm_fields, crm_record
from tests.unit.panel import MemoryTable

MIDNIGHT = 1_800_057_600.0  # 2027-01-16 00:00 UTC
T0 = MIDNIGHT + 9 * 3600  # 09:00
NOW = T0 + 3600  # when the stage publishes (its wall clock, pinned)
OP = "SIP/1127"
OTHER = "SIP/1128"
ON_CALL, WRAP_UP, ONLINE, OFFLINE = CrmStatus.ON_CALL, CrmStatus.WRAP_UP, CrmStatus.ONLINE, CrmStatus.OFFLINE


def view(at: float, call: Optional[str] = None, since: Optional[float] = None, calls: int = 0, talk: float = 0.0,
         logged_in: bool = True, operator: str = OP) -> TelephonyObserved:
    """The call center's view of `operator` at T0 + `at`: on `call` since T0 + `since` (by
    default since this view), `calls` and `talk` seconds counted today."""
    call_since = None if call is None else T0 + (at if since is None else since)
    return TelephonyObserved(operator, T0 + at, logged_in, call, call_since, calls, talk)


def status(s: CrmStatus | str, at: float, reason: str = "", operator: str = OP) -> StatusRequested:
    return StatusRequested(operator, CrmStatus(s), reason, T0 + at, "operator")


def derive(*views: TelephonyObserved) -> list[tuple]:
    """The CRM inputs each view stands for, the views seen in this order."""
    seen: Optional[TelephonySeen] = None
    told = []
    for v in views:
        seen, inputs = telephony_inputs(seen, v)
        told.append(inputs)
    return told


def crm_after(*inputs) -> Optional[OperatorCrm]:
    op = None
    for event in inputs:
        op = apply_operator_input(op, event).operator
    return op


# --- the call center's view as CRM inputs ------------------------------------------------------------


def test_the_first_view_of_an_operator_in_a_queue_logs_them_in() -> None:
    assert derive(view(0)) == [(LoggedIn(OP, T0),)]


def test_the_first_view_of_an_operator_on_a_call_logs_them_in_then_answers_it() -> None:
    assert derive(view(0, "c1", since=-20)) == [(LoggedIn(OP, T0), CallAnswered(OP, "c1", T0))]


def test_the_first_view_of_an_operator_in_no_queue_and_on_no_call_says_nothing() -> None:
    assert derive(view(0, logged_in=False)) == [()]


def test_a_call_appearing_in_the_view_is_a_call_answered() -> None:
    assert derive(view(0), view(10, "c1"))[-1] == (CallAnswered(OP, "c1", T0 + 10),)


@pytest.mark.parametrize("calls_after, talk_after, talk_s", [
    pytest.param(3, 195.5, 95.5, id="the call center counted just that call: its talk time"),
    pytest.param(2, 100.0, 120.0, id="not counted yet: since its answer"),
    pytest.param(4, 300.0, 120.0, id="two calls counted at once: since its answer"),
    pytest.param(3, 90.0, 120.0, id="one counted but the talk time shrank: since its answer"),
])
def test_a_call_gone_from_the_view_is_a_call_finished_with_its_talk_time(calls_after, talk_after, talk_s) -> None:
    told = derive(view(10, "c1", calls=2, talk=100.0), view(130, calls=calls_after, talk=talk_after))
    assert told[-1] == (CallFinished(OP, "c1", T0 + 130, talk_s),)


def test_a_call_replaced_by_another_in_one_view_is_finished_then_the_other_answered() -> None:
    told = derive(view(0, "c1"), view(60, "c2", calls=1, talk=55.0))
    assert told[-1] == (CallFinished(OP, "c1", T0 + 60, 55.0), CallAnswered(OP, "c2", T0 + 60))


def test_a_logout_during_a_call_finishes_the_call_then_logs_out() -> None:
    told = derive(view(0, "c1"), view(90, logged_in=False, calls=1, talk=80.0))
    assert told[-1] == (CallFinished(OP, "c1", T0 + 90, 80.0), LoggedOut(OP, T0 + 90))
    assert crm_after(*told[0], *told[1]).status == OFFLINE


def test_a_login_between_two_calls_comes_before_the_calls() -> None:
    told = derive(view(0, "c1", logged_in=False), view(60, "c2", calls=1, talk=50.0))
    assert told[-1] == (LoggedIn(OP, T0 + 60), CallFinished(OP, "c1", T0 + 60, 50.0), CallAnswered(OP, "c2", T0 + 60))


@pytest.mark.parametrize("late", [
    pytest.param(view(30, "c9"), id="older, with a call"),
    pytest.param(view(59.999, logged_in=False), id="older by a millisecond, logged out"),
])
def test_an_older_view_changes_nothing(late) -> None:
    seen, _ = telephony_inputs(None, view(60, "c1"))
    assert telephony_inputs(seen, late) == (seen, ())


def test_the_same_view_twice_says_nothing_the_second_time() -> None:
    seen, first = telephony_inputs(None, view(10, "c1"))
    again, second = telephony_inputs(seen, view(10, "c1"))
    assert first and second == () and again == seen


def test_a_view_as_old_as_the_last_one_but_different_is_still_news() -> None:
    told = derive(view(10, "c1"), view(10, calls=1, talk=0.0))  # two batches of events of one second
    assert told[-1] == (CallFinished(OP, "c1", T0 + 10, 0.0),)


def test_a_new_day_resets_the_call_centers_tallies_and_the_talk_time_is_since_the_answer() -> None:
    before_midnight = TelephonyObserved(OP, MIDNIGHT + 86400 - 120, True, "c7", MIDNIGHT + 86400 - 120, 5, 900.0)
    after_midnight = TelephonyObserved(OP, MIDNIGHT + 86400 + 60, True, None, None, 0, 0.0)
    told = derive(before_midnight, after_midnight)
    assert told[-1] == (CallFinished(OP, "c7", MIDNIGHT + 86400 + 60, 180.0),)
    op = crm_after(*told[0], *told[1])
    assert (op.status, op.calls_today, op.talk_today_s) == (WRAP_UP, 1, 180.0)  # counted on the day it ended


def call_center(*lines: str) -> list[TelephonyObserved]:
    """The `operator-status` record the call center publishes after each queue_log line
    (`+N` is T0 + N), as the CRM's route reads it."""
    op: Optional[OperatorState] = None
    views = []
    for line in lines:
        when, rest = line.split("|", 1)
        op = apply_operator_event(op, interpret(parse_line(f"{T0 + float(when[1:])!r}|{rest}"))).operator
        parsed = parse_telephony(orjson.dumps(operator_view(op, op.last_time)))
        assert parsed is not None
        views.append(parsed)
    return views


ADD = "+0|MANAGER|support|SIP/100|ADDMEMBER|"
REMOVE = "+20|MANAGER|support|SIP/100|REMOVEMEMBER|"
CONNECT = "+30|c1|support|SIP/100|CONNECT|12|1800090030.5|3"
COMPLETE = "+330|c1|support|SIP/100|COMPLETEAGENT|12|300|1"


def test_the_call_centers_own_views_become_a_login_an_answer_and_a_finish_with_its_talk_time() -> None:
    told = derive(*call_center(ADD, CONNECT, COMPLETE))
    assert told == [(LoggedIn("SIP/100", T0),), (CallAnswered("SIP/100", "c1", T0 + 30),),
                    (CallFinished("SIP/100", "c1", T0 + 330, 300.0),)]


def test_an_operator_added_to_a_queue_during_a_call_stays_on_call() -> None:
    # removed from the queue while a call rang, the call connects anyway, then added back mid-call
    told = derive(*call_center(ADD, REMOVE, CONNECT, "+60|MANAGER|support|SIP/100|ADDMEMBER|"))
    op = crm_after(*[event for inputs in told for event in inputs])
    assert (op.status, op.current_call) == (ON_CALL, "c1")


@st.composite
def call_center_views(draw) -> list[TelephonyObserved]:
    """The call center's views of one operator in time order, within one day: each may log in
    or out, end the current call (counted by the call center or not yet) and answer a new
    one. Call ids are never reused."""
    views, at, fresh, call, since, calls, talk = [], 0.0, 0, None, 0.0, 0, 0.0
    for _ in range(draw(st.integers(1, 20))):
        at += draw(st.integers(0, 600))
        logged_in = draw(st.booleans())
        change = draw(st.sampled_from(["keep", "end", "answer", "replace"]))
        if call is not None and change in ("end", "replace"):
            if draw(st.booleans()):
                calls, talk = calls + 1, talk + at - since
            call = None
        if call is None and change in ("answer", "replace"):
            fresh += 1
            call, since = f"c{fresh}", at
        views.append(TelephonyObserved(OP, T0 + at, logged_in, call, None if call is None else T0 + since, calls, talk))
    return views


@settings(max_examples=300, deadline=None)
@given(call_center_views())
def test_the_crm_follows_any_sequence_of_call_center_views(views) -> None:
    seen: Optional[TelephonySeen] = None
    op: Optional[OperatorCrm] = None
    before: Optional[TelephonyObserved] = None
    finished, talked, steady = 0, 0.0, True  # steady: no login or logout since the current call's answer
    for v in views:
        seen, inputs = telephony_inputs(seen, v)
        for event in inputs:
            op = apply_operator_input(op, event).operator  # never raises
            talked += event.talk_s if isinstance(event, CallFinished) else 0.0
        assert telephony_inputs(seen, v) == (seen, ())  # the same view again: nothing more
        call_before = before.callid if before else None
        in_before = before.logged_in if before else False
        logged_out = in_before and not v.logged_in
        moved = logged_out or (v.logged_in and not in_before)
        finished += call_before is not None and call_before != v.callid
        crm_status = op.status if op else None
        assert (op.current_call if op else None) == v.callid
        assert (op.calls_today if op else 0) == finished
        assert (op.talk_today_s if op else 0.0) == pytest.approx(talked)
        if v.callid is None:
            assert crm_status != ON_CALL
            if call_before is not None:
                assert crm_status == (OFFLINE if logged_out else WRAP_UP)
        elif v.callid != call_before:
            assert crm_status == (OFFLINE if logged_out else ON_CALL)
            steady = not logged_out
        else:
            steady = steady and not moved
            if steady:
                assert crm_status == ON_CALL
        before = v


# --- the input topics' records ---------------------------------------------------------------------


COMMAND = {"operator": OP, "status": "BREAK", "reason": "coffee", "time": T0, "by": "operator"}
REGISTRATION = {"operator": OP, "endpoint": OP, "registered": False, "time": T0}
TELEPHONY = {"id": OP, "queues": ["support"], "current_call": {"callid": "c1", "queue": "support", "since": T0},
             "calls_today": 2, "talk_time_today_s": 310.5, "last_event_at": T0 + 5}
KIND = {parse_command: "operator-commands record: ", parse_registration: "sip-registrations record: ",
        parse_telephony: "operator-status record: "}


def record(fields: dict, **changes: Any) -> bytes:
    """`fields` as JSON, with `changes` (a change to None drops the field)."""
    return orjson.dumps({k: v for k, v in {**fields, **changes}.items() if v is not None})


def test_a_command_record_is_the_status_a_person_asked_for() -> None:
    assert parse_command(record(COMMAND)) == StatusRequested(OP, CrmStatus.BREAK, "coffee", T0, "operator")


def test_a_command_record_needs_no_reason_nor_author() -> None:
    assert parse_command(record(COMMAND, reason=None, by=None)) == StatusRequested(OP, CrmStatus.BREAK, "", T0, "")


@pytest.mark.parametrize("registered, kind", [
    pytest.param(True, EndpointRegistered, id="registered"),
    pytest.param(False, EndpointUnregistered, id="gone"),
])
def test_a_registration_record_is_the_endpoint_registered_or_gone(registered, kind) -> None:
    assert parse_registration(record(REGISTRATION, registered=registered)) == kind(OP, T0)
    assert parse_registration(record(REGISTRATION, registered=registered, endpoint=None)) == kind(OP, T0)


def test_an_operator_status_record_is_the_telephony_view_the_crm_reads() -> None:
    assert parse_telephony(record(TELEPHONY)) == TelephonyObserved(OP, T0 + 5, True, "c1", T0, 2, 310.5)


def test_an_operator_in_no_queue_and_on_no_call_is_logged_out() -> None:
    parsed = parse_telephony(orjson.dumps({**TELEPHONY, "queues": [], "current_call": None}))
    assert parsed == TelephonyObserved(OP, T0 + 5, False, None, None, 2, 310.5)


def test_the_rest_of_the_call_centers_view_is_ignored() -> None:
    extra = record(TELEPHONY, name="Ann", state="on_call", paused=False, aht_s=155.25, idle_resets=0, anything={"a": 1})
    assert parse_telephony(extra) == parse_telephony(record(TELEPHONY))


def test_an_operator_status_tombstone_is_malformed_the_call_center_never_deletes_an_operator() -> None:
    with pytest.raises(MalformedRecord, match="operator-status record: no value"):
        parse_telephony(None)


MALFORMED = [
    pytest.param(parse_command, b'{"operator": "SIP/1127", ', "not JSON", id="command: not JSON"),
    pytest.param(parse_command, b'["SIP/1127", "BREAK"]', "value: Input should be a valid dictionary",
                 id="command: not an object"),
    pytest.param(parse_command, record(COMMAND, time=None), "time: Field required", id="command: no time"),
    pytest.param(parse_command, record(COMMAND, status=None), "status: Field required", id="command: no status"),
    pytest.param(parse_command, record(COMMAND, status="LUNCH"), "status: Input should be 'ONLINE'",
                 id="command: unknown status"),
    pytest.param(parse_command, record(COMMAND, status="online"), "status: Input should be 'ONLINE'",
                 id="command: status in lower case"),
    pytest.param(parse_command, record(COMMAND, priority=1), "priority: Extra inputs are not permitted",
                 id="command: unknown field"),
    pytest.param(parse_command, record(COMMAND, time=1.0), "time: Input should be greater than or equal to",
                 id="command: time before 2000 (seconds, not ms, expected)"),
    pytest.param(parse_command, record(COMMAND, time=T0 * 1000), "time: Input should be less than or equal to",
                 id="command: time in ms"),
    pytest.param(parse_command, record(COMMAND, time="NaN"), "time: Input should be a finite number",
                 id="command: NaN time"),
    pytest.param(parse_command, record(COMMAND, time=0).replace(b'"time":0', b'"time":NaN'), "not JSON",
                 id="command: a bare NaN is not JSON"),
    pytest.param(parse_command, record(COMMAND, time=0).replace(b'"time":0', b'"time":1e400'), "not JSON",
                 id="command: an infinite time is not JSON"),
    pytest.param(parse_command, record(COMMAND, operator="SIP/11\n27"), "operator: String should match pattern",
                 id="command: control character in the operator"),
    pytest.param(parse_command, record(COMMAND, operator="SIP/11\x7f27"), "operator: String should match pattern",
                 id="command: DEL in the operator"),
    pytest.param(parse_command, record(COMMAND, operator=""), "operator: String should have at least 1 character",
                 id="command: empty operator"),
    pytest.param(parse_command, record(COMMAND, operator="S" * 129), "operator: String should have at most 128",
                 id="command: operator too long"),
    pytest.param(parse_command, record(COMMAND, reason="x" * 201), "reason: String should have at most 200 characters",
                 id="command: reason too long"),
    pytest.param(parse_command, record(COMMAND, reason="a\tb"), "reason: String should match pattern",
                 id="command: control character in the reason"),
    pytest.param(parse_command, None, "no value", id="command: tombstone"),
    pytest.param(parse_registration, b"\xff\xfe", "not JSON", id="registration: not JSON"),
    pytest.param(parse_registration, b'"SIP/1127"', "value: Input should be a valid dictionary",
                 id="registration: not an object"),
    pytest.param(parse_registration, record(REGISTRATION, registered=None), "registered: Field required",
                 id="registration: no registered"),
    pytest.param(parse_registration, record(REGISTRATION, registered="maybe"), "registered: Input should be a valid boolean",
                 id="registration: registered not a boolean"),
    pytest.param(parse_registration, record(REGISTRATION, contact="sip:1127@10.0.0.5"), "contact: Extra inputs",
                 id="registration: unknown field"),
    pytest.param(parse_registration, record(REGISTRATION, time=EPOCH_MAX + 1), "time: Input should be less than",
                 id="registration: time after 2100"),
    pytest.param(parse_registration, record(REGISTRATION, operator="SIP/\x001127"), "operator: String should match",
                 id="registration: control character in the operator"),
    pytest.param(parse_registration, None, "no value", id="registration: tombstone"),
    pytest.param(parse_telephony, b"operator-status", "not JSON", id="telephony: not JSON"),
    pytest.param(parse_telephony, b"[]", "value: Input should be a valid dictionary", id="telephony: not an object"),
    pytest.param(parse_telephony, record(TELEPHONY, last_event_at=None), "last_event_at: Field required",
                 id="telephony: no time"),
    pytest.param(parse_telephony, record(TELEPHONY, calls_today=-1), "calls_today: Input should be greater than",
                 id="telephony: negative calls today"),
    pytest.param(parse_telephony, record(TELEPHONY, talk_time_today_s="NaN"), "talk_time_today_s: Input should be a finite",
                 id="telephony: NaN talk time"),
    pytest.param(parse_telephony, record(TELEPHONY, current_call={"queue": "support", "since": T0}),
                 "current_call.callid: Field required", id="telephony: a call without its id"),
    pytest.param(parse_telephony, record(TELEPHONY, id="SIP/11\r27"), "id: String should match pattern",
                 id="telephony: control character in the operator"),
]


@pytest.mark.parametrize("parse, value, why", MALFORMED)
def test_a_malformed_record_is_a_dead_letter_saying_why(parse: Callable, value: Optional[bytes], why: str) -> None:
    with pytest.raises(MalformedRecord) as caught:
        parse(value)
    assert str(caught.value).startswith(KIND[parse]) and why in str(caught.value)


def test_a_command_record_written_by_the_service_reads_back() -> None:
    value = command_record(OP, CrmStatus.DO_NOT_DISTURB, "focus", T0, "manager:ann")
    assert parse_command(value) == StatusRequested(OP, CrmStatus.DO_NOT_DISTURB, "focus", T0, "manager:ann")


@pytest.mark.parametrize("registered, kind", [
    pytest.param(True, EndpointRegistered, id="registered"),
    pytest.param(False, EndpointUnregistered, id="gone"),
])
def test_a_registration_record_written_by_the_service_reads_back(registered, kind) -> None:
    assert parse_registration(registration_record("PJSIP/1127", "PJSIP/1127", registered, T0)) == kind("PJSIP/1127", T0)


printable = st.characters(blacklist_categories=("Cc", "Cs"))


@settings(max_examples=100, deadline=None)
@given(st.text(printable, min_size=1, max_size=128), st.sampled_from(list(CrmStatus)), st.text(printable, max_size=200),
       st.floats(EPOCH_MIN, EPOCH_MAX), st.text(printable, max_size=128))
def test_any_command_the_service_writes_reads_back_as_it_was_asked(operator, crm, reason, at, by) -> None:
    assert parse_command(command_record(operator, crm, reason, at, by)) == StatusRequested(operator, crm, reason, at, by)


def test_a_real_call_center_view_of_an_operator_on_a_call_parses() -> None:
    op = OperatorState("SIP/1", queues={"support": Membership(), "sales": Membership(True, "lunch", T0)},
                       calls={"c1": CurrentCall("c1", "support", T0 + 30)}, last_time=T0 + 30, day=day_of(T0),
                       calls_today=4, talk_time_today_s=612.25)
    parsed = parse_telephony(orjson.dumps(operator_view(op, T0 + 40)))
    assert parsed == TelephonyObserved("SIP/1", T0 + 30, True, "c1", T0 + 30, 4, 612.25)


def test_a_call_center_view_of_an_operator_never_seen_parses_as_logged_out() -> None:
    parsed = parse_telephony(orjson.dumps(operator_view(OperatorState("SIP/1"), T0)))
    assert parsed == TelephonyObserved("SIP/1", 0.0, False, None, None, 0, 0.0)


# --- Asterisk: drift repairs and endpoint events ----------------------------------------------------


CRM_STATES = {
    "online": [LoggedIn(OP, T0)],
    "on a break": [status("BREAK", 0, "coffee")],
    "logged out": [LoggedIn(OP, T0), LoggedOut(OP, T0 + 10)],
    "on a call": [LoggedIn(OP, T0), CallAnswered(OP, "c1", T0 + 10)],
    "in the wrap-up a call's end set": [LoggedIn(OP, T0), CallAnswered(OP, "c1", T0 + 10), CallFinished(OP, "c1", T0 + 70, 60)],
    "in a wrap-up a person set": [LoggedIn(OP, T0), status("WRAP_UP", 10)],
    "unknown to the CRM": [],
}


@pytest.mark.parametrize("state, paused_in_asterisk, repair", [
    pytest.param("online", True, PauseRequest(OP, False, "logged in", "support"), id="online but paused: unpaused"),
    pytest.param("on a break", False, PauseRequest(OP, True, "coffee", "support"), id="on a break but unpaused: paused"),
    pytest.param("logged out", False, PauseRequest(OP, True, "offline", "support"), id="offline but unpaused: paused"),
    pytest.param("in a wrap-up a person set", False, PauseRequest(OP, True, "WRAP_UP", "support"),
                 id="person's wrap-up but unpaused: paused"),
    pytest.param("online", False, None, id="online and unpaused: agreed"),
    pytest.param("on a break", True, None, id="on a break and paused: agreed"),
    pytest.param("in a wrap-up a person set", True, None, id="person's wrap-up and paused: agreed"),
    pytest.param("on a call", True, None, id="on a call, paused: left alone"),
    pytest.param("on a call", False, None, id="on a call, unpaused: left alone"),
    pytest.param("in the wrap-up a call's end set", False, None, id="after-call wrap-up, unpaused: Asterisk's wrapuptime"),
    pytest.param("in the wrap-up a call's end set", True, None, id="after-call wrap-up, paused: left alone"),
    pytest.param("unknown to the CRM", True, None, id="unknown operator, paused: left alone"),
    pytest.param("unknown to the CRM", False, None, id="unknown operator, unpaused: left alone"),
])
def test_asterisks_pause_is_repaired_when_it_drifted_from_the_crm_status(state, paused_in_asterisk, repair) -> None:
    crm = {OP: crm_after(*CRM_STATES[state])} if CRM_STATES[state] else {}
    repairs = pause_repairs([MemberPause("support", OP, paused_in_asterisk)], crm.get)
    assert repairs == ([] if repair is None else [repair])


def test_a_repair_names_the_queue_where_the_member_drifted() -> None:
    crm = {OP: crm_after(LoggedIn(OP, T0)), OTHER: crm_after(status("BREAK", 0, "lunch", operator=OTHER))}
    members = [MemberPause("support", OP, False), MemberPause("sales", OP, True),
               MemberPause("support", OTHER, False), MemberPause("sales", OTHER, True)]
    assert pause_repairs(members, crm.get) == [PauseRequest(OP, False, "logged in", "sales"),
                                               PauseRequest(OTHER, True, "lunch", "support")]


def peer(status: Optional[str], name: Optional[str] = "SIP/1127") -> dict[str, str]:
    event = {"Event": "PeerStatus", "ChannelType": "SIP", "Peer": name, "PeerStatus": status}
    return {k: v for k, v in event.items() if v is not None}


def contact(status: Optional[str], endpoint: Optional[str] = "1127", aor: Optional[str] = None) -> dict[str, str]:
    event = {"Event": "ContactStatus", "URI": "sip:1127@10.0.0.5:5060", "ContactStatus": status, "AOR": aor,
             "EndpointName": endpoint}
    return {k: v for k, v in event.items() if v is not None}


SIP_UP, SIP_DOWN = Registration("SIP/1127", "SIP/1127", True), Registration("SIP/1127", "SIP/1127", False)
PJSIP_UP, PJSIP_DOWN = Registration("PJSIP/1127", "PJSIP/1127", True), Registration("PJSIP/1127", "PJSIP/1127", False)


@pytest.mark.parametrize("event, registration", [
    pytest.param(peer("Registered"), SIP_UP, id="PeerStatus Registered"),
    pytest.param(peer("Reachable"), SIP_UP, id="PeerStatus Reachable"),
    pytest.param(peer("REGISTERED"), SIP_UP, id="PeerStatus in another case"),
    pytest.param(peer("Unregistered"), SIP_DOWN, id="PeerStatus Unregistered"),
    pytest.param(peer("Unreachable"), SIP_DOWN, id="PeerStatus Unreachable"),
    pytest.param(peer("Rejected"), SIP_DOWN, id="PeerStatus Rejected"),
    pytest.param(peer("Lagged"), None, id="PeerStatus Lagged: says nothing"),
    pytest.param(peer("Unknown"), None, id="PeerStatus unknown: says nothing"),
    pytest.param(peer(None), None, id="PeerStatus without its status"),
    pytest.param(peer("Registered", name=None), None, id="PeerStatus without its peer"),
    pytest.param(peer("Registered", name=""), None, id="PeerStatus with an empty peer"),
    pytest.param(contact("Created"), PJSIP_UP, id="ContactStatus Created"),
    pytest.param(contact("Reachable"), PJSIP_UP, id="ContactStatus Reachable"),
    pytest.param(contact("Removed"), PJSIP_DOWN, id="ContactStatus Removed"),
    pytest.param(contact("Unreachable"), PJSIP_DOWN, id="ContactStatus Unreachable"),
    pytest.param(contact("Created", endpoint=None, aor="1127"), PJSIP_UP, id="ContactStatus with its AOR only"),
    pytest.param(contact("Removed", endpoint="", aor="1127"), PJSIP_DOWN, id="ContactStatus with an empty endpoint, an AOR"),
    pytest.param(contact("NonQualified"), None, id="ContactStatus NonQualified: says nothing"),
    pytest.param(contact("Updated"), None, id="ContactStatus Updated: says nothing"),
    pytest.param(contact(None), None, id="ContactStatus without its status"),
    pytest.param(contact("Created", endpoint=None), None, id="ContactStatus without endpoint nor AOR"),
    pytest.param({"Event": "Newchannel", "Channel": "SIP/1127-0001", "ChannelState": "4"}, None, id="another event"),
    pytest.param({"Peer": "SIP/1127", "PeerStatus": "Registered"}, None, id="no event name"),
])
def test_an_ami_endpoint_event_is_a_registration_change_or_nothing(event, registration) -> None:
    assert endpoint_registration(event) == registration


# --- how the CRM status is shown ------------------------------------------------------------------


def test_the_published_crm_record_is_an_operator_crm_status() -> None:
    op = crm_after(LoggedIn(OP, T0), CallAnswered(OP, "c1", T0 + 10), CallFinished(OP, "c1", T0 + 130, 120.0))
    shown = OperatorCrmStatus.model_validate(orjson.loads(orjson.dumps(crm_record(op, T0 + 160))))
    assert (shown.id, shown.status, shown.reason, shown.since, shown.calls_today, shown.aht_s, shown.current_call,
            shown.changed_at) == (OP, "WRAP_UP", AFTER_CALL, T0 + 130, 1, 150.0, None, T0 + 130)
    assert shown.time_in_status_today_s == {**{str(s): 0.0 for s in CrmStatus}, "ONLINE": 10.0, "ON_CALL": 120.0,
                                            "WRAP_UP": 30.0}


def test_the_crm_fields_complete_the_call_centers_operator_answer() -> None:
    op = crm_after(LoggedIn(OP, T0), status("BREAK", 60, "coffee"))
    telephony = OperatorState(OP, queues={"support": Membership(True, "coffee", T0 + 60)}, last_time=T0 + 60,
                              day=day_of(T0))
    fields = crm_fields(op, T0 + 120)
    assert set(fields) == {name for name in OperatorAnswer.model_fields if name.startswith("crm_")}
    answer = OperatorAnswer.model_validate(orjson.loads(orjson.dumps({**operator_view(telephony, T0 + 120), **fields})))
    assert (answer.crm_status, answer.crm_reason, answer.crm_since, answer.crm_calls_today, answer.crm_aht_s) == (
        "BREAK", "coffee", T0 + 60, 0, None)
    assert answer.crm_time_in_status_today_s is not None and answer.crm_time_in_status_today_s["BREAK"] == 60.0


# --- the stage over in-memory tables ------------------------------------------------------------------


@dataclass
class Batch:
    records: dict[str, OperatorCrmStatus]  # what the batch publishes on operator-crm-status, by operator
    pauses: list[PauseRequest]  # what it then asks of Asterisk


class Switchboard:
    """OperatorStatusStage over in-memory tables: each `batch` is one envelope of os-events,
    applied and stored. Its outbox is never flushed: what it would publish, and then ask of
    Asterisk, is read from it."""

    def __init__(self) -> None:
        self.crm, self.telephony = MemoryTable(), MemoryTable()

    def batch(self, *messages: Any) -> Batch:
        outbox = _OutboxThenPauses(app, self._flushed)
        stage = OperatorStatusStage(key_partition(OP), self.crm, self.telephony, outbox)
        stage.apply_all(list(messages))
        stage.store()
        topic = topics.operator_crm_status.get_topic_name()
        assert {name for name, _ in outbox.latest_values} <= {topic}
        assert not outbox.envelopes and not outbox.records
        records = {key: OperatorCrmStatus.model_validate(orjson.loads(value)) for (_, key), value in outbox.latest_values.items()}
        return Batch(records, list(outbox.pauses))

    @staticmethod
    def _flushed(pauses: list[PauseRequest]) -> None:
        raise AssertionError(f"the outbox was flushed: {pauses}")


@pytest.fixture
def switchboard(monkeypatch) -> Switchboard:
    # the stage dates what it publishes by the wall clock; the scenarios' day is pinned
    monkeypatch.setattr(operatorstatus_agent, "time", SimpleNamespace(time=lambda: NOW, perf_counter=time.perf_counter))
    return Switchboard()


def test_a_status_a_person_asked_for_is_stored_published_then_asked_of_asterisk(switchboard) -> None:
    told = switchboard.batch(status("BREAK", 0, "coffee"))
    assert (switchboard.crm[OP].status, switchboard.crm[OP].reason) == (CrmStatus.BREAK, "coffee")
    assert list(told.records) == [OP]
    shown = told.records[OP]
    assert (shown.status, shown.reason, shown.since, shown.changed_at) == ("BREAK", "coffee", T0, T0)
    assert told.pauses == [PauseRequest(OP, True, "coffee")]


def test_several_inputs_in_one_batch_publish_the_latest_status_once_and_ask_asterisk_once(switchboard) -> None:
    told = switchboard.batch(status("BREAK", 0, "coffee"), status("MEETING", 10, "standup"),
                             status("BREAK", 5, "lunch", operator=OTHER), status("ONLINE", 20, "back"))
    assert set(told.records) == {OP, OTHER}
    shown = told.records[OP]
    assert (shown.status, shown.reason, shown.since) == ("ONLINE", "back", T0 + 20)
    assert (shown.time_in_status_today_s["BREAK"], shown.time_in_status_today_s["MEETING"]) == (10.0, 10.0)
    assert sorted(told.pauses, key=lambda p: p.operator) == [PauseRequest(OP, False, "back"),
                                                             PauseRequest(OTHER, True, "lunch")]


def test_a_new_call_in_the_call_centers_view_is_on_call_published_without_a_pause(switchboard) -> None:
    assert switchboard.batch(view(0)).pauses == [PauseRequest(OP, False, "logged in")]
    told = switchboard.batch(view(10, "c1"))
    assert (told.records[OP].status, told.records[OP].current_call) == ("ON_CALL", "c1")
    assert told.pauses == []


def test_the_calls_end_is_wrap_up_counted_once_without_a_pause(switchboard) -> None:
    switchboard.batch(view(0), view(10, "c1"))
    told = switchboard.batch(view(130, calls=1, talk=120.0))
    shown = told.records[OP]
    assert (shown.status, shown.reason, shown.calls_today, shown.current_call) == ("WRAP_UP", AFTER_CALL, 1, None)
    assert told.pauses == []
    assert switchboard.crm[OP].talk_today_s == 120.0
    again = switchboard.batch(view(130, calls=1, talk=120.0), view(131, calls=1, talk=120.0))
    assert again.pauses == [] and all(r == shown for r in again.records.values())  # a replay: the same record at most
    assert switchboard.crm[OP].calls_today == 1


@pytest.mark.parametrize("late", [
    pytest.param(status("BREAK", 30, "coffee"), id="an older status a person asked for"),
    pytest.param(view(-10, "c9"), id="an older call-center view"),
    pytest.param(EndpointUnregistered(OP, T0 + 30), id="an older endpoint event"),
])
def test_a_replayed_older_input_changes_nothing_and_publishes_nothing(switchboard, late) -> None:
    switchboard.batch(view(0), status("ONLINE", 60, "ready"))
    crm, telephony = dict(switchboard.crm), dict(switchboard.telephony)
    told = switchboard.batch(late)
    assert (told.records, told.pauses) == ({}, [])
    assert (switchboard.crm, switchboard.telephony) == (crm, telephony)


def test_the_newest_status_applied_again_publishes_its_record_again(switchboard) -> None:
    # a replay after Kafka refused the record: the state was stored, the record never sent
    first = switchboard.batch(status("BREAK", 60, "coffee"))
    again = switchboard.batch(status("BREAK", 60, "coffee"))
    assert again.records == first.records and again.records[OP].status == "BREAK"
    assert again.pauses == []  # the reconciliation with QueueStatus repairs a pause lost with it


def test_the_newest_call_center_view_applied_again_publishes_its_record_again(switchboard) -> None:
    switchboard.batch(view(0))
    first = switchboard.batch(view(10, "c1"))  # Kafka refuses its record: the state is stored, the record never sent
    again = switchboard.batch(view(10, "c1"))
    assert again.records == first.records


def test_a_calls_end_heard_after_a_later_status_is_still_counted(switchboard) -> None:
    switchboard.batch(view(0), view(10, "c1"))
    switchboard.batch(status("ONLINE", 42, "ready"))  # the operator moves on at :42 ...
    switchboard.batch(view(40, calls=1, talk=30.0))  # ... before the call center's view of the end at :40 comes
    op = switchboard.crm[OP]
    assert (op.status, op.calls_today, op.talk_today_s, op.current_call) == (ONLINE, 1, 30.0, None)


def test_an_endpoint_that_unregisters_sets_the_operator_offline_and_paused(switchboard) -> None:
    switchboard.batch(view(0))
    told = switchboard.batch(EndpointUnregistered(OP, T0 + 60))
    assert (told.records[OP].status, told.records[OP].reason) == ("OFFLINE", SIP_UNREGISTERED)
    assert told.pauses == [PauseRequest(OP, True, SIP_UNREGISTERED)]


def test_the_endpoint_registered_again_brings_the_operator_back_online_and_unpaused(switchboard) -> None:
    switchboard.batch(view(0), EndpointUnregistered(OP, T0 + 60))
    told = switchboard.batch(EndpointRegistered(OP, T0 + 120))
    assert (told.records[OP].status, told.records[OP].reason, told.records[OP].since) == ("ONLINE", SIP_REGISTERED, T0 + 120)
    assert told.pauses == [PauseRequest(OP, False, SIP_REGISTERED)]


def test_a_registration_after_a_manual_offline_changes_nothing(switchboard) -> None:
    switchboard.batch(view(0), status("OFFLINE", 30, "end of shift"))
    told = switchboard.batch(EndpointRegistered(OP, T0 + 60))
    assert (switchboard.crm[OP].status, switchboard.crm[OP].reason) == (OFFLINE, "end of shift")
    assert all((r.status, r.reason) == ("OFFLINE", "end of shift") for r in told.records.values())
    assert told.pauses == []
