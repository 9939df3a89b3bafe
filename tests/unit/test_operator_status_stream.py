"""Operator status as a stream (seed 003): the call center's account of what each operator
did (`operator-activity`, tables/callcenter/operators.py) as the CRM's inputs, the input
topics' records checked (records.py), Asterisk drift repairs and AMI endpoint events (sync.py), the shapes the CRM
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
from tables.callcenter.operators import Membership, OperatorState, OperatorSwept, apply_operator_event, day_of
from tables.callcenter.queue_log import interpret, parse_line
from tables.callcenter.views import activity_record, operator_view
from tables.operatorstatus.records import (
    EPOCH_MAX,
    EPOCH_MIN,
    MalformedRecord,
    command_record,
    parse_activity,
    parse_command,
    parse_registration,
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
    time_in_status_today,
)
from tables.operatorstatus.store import topics
from tables.operatorstatus.sync import MemberPause, Registration, endpoint_registration, pause_repairs
from tables.operatorstatus.views import crm_fields, crm_record
from tests.unit.panel import MemoryTable

MIDNIGHT = 1_800_057_600.0  # 2027-01-16 00:00 UTC
T0 = MIDNIGHT + 9 * 3600  # 09:00
NOW = T0 + 3600  # when the stage publishes (its wall clock, pinned)
OP = "SIP/1127"
OTHER = "SIP/1128"
ON_CALL, WRAP_UP, ONLINE, OFFLINE = CrmStatus.ON_CALL, CrmStatus.WRAP_UP, CrmStatus.ONLINE, CrmStatus.OFFLINE


def status(s: CrmStatus | str, at: float, reason: str = "", operator: str = OP) -> StatusRequested:
    return StatusRequested(operator, CrmStatus(s), reason, T0 + at, "operator")


def signed_in(at: float, operator: str = OP) -> LoggedIn:
    return LoggedIn(operator, T0 + at)


def answered(at: float, callid: str = "c1", operator: str = OP) -> CallAnswered:
    return CallAnswered(operator, callid, T0 + at)


def ended(at: float, talk: float, callid: str = "c1", confirmed: bool = True, operator: str = OP) -> CallFinished:
    return CallFinished(operator, callid, T0 + at, talk, confirmed)


def crm_after(*inputs) -> Optional[OperatorCrm]:
    op = None
    for event in inputs:
        op = apply_operator_input(op, event).operator
    return op


# --- the call center's account of an operator, as CRM inputs ------------------------------------------


class CallCenter:
    """The call center's operator rule over queue_log lines (`+N` is T0 + N), and what it
    tells the CRM: each `operator-activity` record it publishes, as the CRM's route reads it."""

    def __init__(self) -> None:
        self.ops: dict[str, OperatorState] = {}

    def hear(self, *lines: str) -> list:
        told = []
        for line in lines:
            when, rest = line.split("|", 1)
            told += self.apply(interpret(parse_line(f"{T0 + float(when[1:])!r}|{rest}")))
        return told

    def apply(self, event: Any, agent: str = "") -> list:
        agent = getattr(event, "agent", agent)
        outcome = apply_operator_event(self.ops.get(agent), event)
        self.ops[agent] = outcome.operator
        return [parse_activity(orjson.dumps(activity_record(fact))) for fact in outcome.activity]


ADD = "+0|MANAGER|support|SIP/100|ADDMEMBER|"
REMOVE = "+20|MANAGER|support|SIP/100|REMOVEMEMBER|"
CONNECT = "+30|c1|support|SIP/100|CONNECT|12|1800090030.5|3"
COMPLETE = "+330|c1|support|SIP/100|COMPLETEAGENT|12|300|1"
AGENT = "SIP/100"


def test_a_login_an_answer_and_an_end_are_three_events_with_their_own_times() -> None:
    assert CallCenter().hear(ADD, CONNECT, COMPLETE) == [
        LoggedIn(AGENT, T0), CallAnswered(AGENT, "c1", T0 + 30), CallFinished(AGENT, "c1", T0 + 330, 300.0, True)]


def test_answer_and_end_in_one_batch_pass_the_crm_through_on_call_to_a_counted_wrap_up() -> None:
    # one batch, one snapshot of the operator (the defect): the events are still three
    op = crm_after(*CallCenter().hear(ADD, CONNECT, COMPLETE))
    assert (op.status, op.reason, op.calls_today, op.talk_today_s, op.current_call) == (WRAP_UP, AFTER_CALL, 1, 300.0, None)
    assert time_in_status_today(op, T0 + 330)["ON_CALL"] == 300.0


def test_a_replay_of_the_lines_says_again_what_is_still_true_and_the_call_counts_once() -> None:
    center = CallCenter()
    first = center.hear(ADD, CONNECT, COMPLETE)
    again = center.hear(ADD, CONNECT, COMPLETE)  # a crash after the state was stored: the records may be lost
    assert again == [LoggedIn(AGENT, T0), CallFinished(AGENT, "c1", T0 + 330, 300.0, True)]
    assert crm_after(*again) == crm_after(*again, *again)
    op = crm_after(*first, *again, *first)
    assert (op.status, op.calls_today, op.talk_today_s) == (WRAP_UP, 1, 300.0)


def test_an_end_without_its_answer_counts() -> None:
    told = CallCenter().hear(ADD, COMPLETE)
    assert told[-1] == CallFinished(AGENT, "c1", T0 + 330, 300.0, True)
    op = crm_after(*told)
    assert (op.status, op.calls_today) == (WRAP_UP, 1)


def test_a_call_superseded_by_the_next_ends_unconfirmed_and_counts_when_its_own_end_comes() -> None:
    center = CallCenter()
    told = center.hear(ADD, CONNECT, "+100|c2|support|SIP/100|CONNECT|5|1800090100.5|2")
    assert told[-2:] == [CallFinished(AGENT, "c1", T0 + 100, 70.0, False), CallAnswered(AGENT, "c2", T0 + 100)]
    op = crm_after(*told)
    assert (op.status, op.current_call, op.calls_today) == (ON_CALL, "c2", 0)  # as the call center counts: 0
    late = center.hear("+90|c1|support|SIP/100|COMPLETECALLER|12|60|1")  # its own end, late
    assert late == [CallFinished(AGENT, "c1", T0 + 90, 60.0, True)]
    op = crm_after(*told, *late)
    assert (op.status, op.current_call, op.calls_today, op.talk_today_s) == (ON_CALL, "c2", 1, 60.0)
    assert center.ops[AGENT].calls_today == 1


def test_leaving_every_queue_during_a_call_ends_it_then_signs_out() -> None:
    told = CallCenter().hear(ADD, CONNECT, "+60|MANAGER|support|SIP/100|REMOVEMEMBER|")
    assert told[-2:] == [CallFinished(AGENT, "c1", T0 + 60, 30.0, False), LoggedOut(AGENT, T0 + 60)]
    op = crm_after(*told)
    assert (op.status, op.current_call, op.calls_today) == (OFFLINE, None, 0)


def test_the_staleness_sweep_ends_the_call_and_signs_the_operator_out() -> None:
    center = CallCenter()
    center.hear(ADD, CONNECT)
    told = center.apply(OperatorSwept(T0 + 13 * 3600, 12 * 3600, 4 * 3600), AGENT)
    assert told == [CallFinished(AGENT, "c1", T0 + 13 * 3600, 13 * 3600 - 30.0, False), LoggedOut(AGENT, T0 + 13 * 3600)]


def test_an_operator_added_to_a_queue_during_a_call_stays_on_call() -> None:
    # removed from the queue while a call rang, the call connects anyway, then added back mid-call
    op = crm_after(*CallCenter().hear(ADD, REMOVE, CONNECT, "+60|MANAGER|support|SIP/100|ADDMEMBER|"))
    assert (op.status, op.current_call) == (ON_CALL, "c1")


@st.composite
def operator_days(draw) -> list[str]:
    """queue_log lines of one operator's day, in time order, with losses, duplicates, late
    ends and replays: joins and leaves of two queues, pauses, calls answered (one at a time
    or superseded) and ended by their own COMPLETE* or TRANSFER or never."""
    lines, at, fresh, current, ended = [], 0, 0, None, []
    for _ in range(draw(st.integers(1, 40))):
        at += draw(st.integers(0, 300))
        kind = draw(st.sampled_from(["add", "remove", "pause", "connect", "connect", "complete", "complete",
                                     "transfer", "again", "late end"]))
        queue = draw(st.sampled_from(["support", "sales"]))
        if kind == "add":
            lines.append(f"+{at}|MANAGER|{queue}|SIP/100|ADDMEMBER|")
        elif kind == "remove":
            lines.append(f"+{at}|MANAGER|{queue}|SIP/100|REMOVEMEMBER|")
        elif kind == "pause":
            lines.append(f"+{at}|NONE|{queue}|SIP/100|PAUSE|lunch")
        elif kind == "connect":
            fresh += 1
            current = (f"c{fresh}", at, queue)
            lines.append(f"+{at}|c{fresh}|{queue}|SIP/100|CONNECT|3|1800090000.{fresh}|2")
        elif kind in ("complete", "transfer") and current is not None:
            callid, since, q = current
            end = "COMPLETEAGENT|3|{}|1" if kind == "complete" else "BLINDTRANSFER|200|ctx|3|{}|1"
            lines.append(f"+{at}|{callid}|{q}|SIP/100|{end.format(at - since)}")
            ended.append(lines[-1])
            current = None
        elif kind == "again" and lines:
            lines.append(draw(st.sampled_from(lines)))  # a duplicate or a replayed line, its own time kept
        elif kind == "late end" and ended:
            lines.append(draw(st.sampled_from(ended)))
    return lines


@settings(max_examples=300, deadline=None)
@given(operator_days(), st.integers(0, 40))
def test_the_crm_counts_every_call_the_call_center_counts_whatever_the_order_and_replays(lines, replay_from) -> None:
    center = CallCenter()
    told = center.hear(*lines)
    told += center.hear(*lines[replay_from:])  # a replay from some point: whatever was said again
    op = crm_after(*told) if told else None
    telephony = center.ops.get(AGENT)
    calls = telephony.calls_today if telephony else 0
    assert (op.calls_today if op else 0) == calls
    assert (op.talk_today_s if op else 0.0) == pytest.approx(telephony.talk_time_today_s if telephony else 0.0)
    current = sorted(telephony.calls.values(), key=lambda c: c.since) if telephony else []
    assert (op.current_call if op else None) == (current[-1].callid if current else None)
    if current and op is not None and op.status != ON_CALL:
        assert op.status == OFFLINE or op.last_time > current[-1].since  # an answer overtaken by a sign-out only


# --- the input topics' records ---------------------------------------------------------------------


COMMAND = {"operator": OP, "status": "BREAK", "reason": "coffee", "time": T0, "by": "operator"}
REGISTRATION = {"operator": OP, "endpoint": OP, "registered": False, "time": T0}
ACTIVITY = {"operator": OP, "event": "call_ended", "time": T0 + 5, "callid": "c1", "queue": "support", "talk_s": 310.5,
            "confirmed": True}
KIND = {parse_command: "operator-commands record: ", parse_registration: "sip-registrations record: ",
        parse_activity: "operator-activity record: "}


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


@pytest.mark.parametrize("fields, event", [
    pytest.param({"event": "signed_in", "callid": None, "queue": None, "talk_s": None, "confirmed": None},
                 LoggedIn(OP, T0 + 5), id="signed in"),
    pytest.param({"event": "signed_out", "callid": None, "queue": None, "talk_s": None, "confirmed": None},
                 LoggedOut(OP, T0 + 5), id="signed out"),
    pytest.param({"event": "call_answered", "talk_s": None, "confirmed": None}, CallAnswered(OP, "c1", T0 + 5),
                 id="a call answered"),
    pytest.param({}, CallFinished(OP, "c1", T0 + 5, 310.5, True), id="a call ended by its own end"),
    pytest.param({"confirmed": False}, CallFinished(OP, "c1", T0 + 5, 310.5, False), id="a call proven over"),
    pytest.param({"talk_s": None, "confirmed": None}, CallFinished(OP, "c1", T0 + 5, 0.0, False),
                 id="a call ended, no more said"),
    pytest.param({"agent_state": "on_call", "anything": {"a": 1}}, CallFinished(OP, "c1", T0 + 5, 310.5, True),
                 id="fields the call center may add are ignored"),
])
def test_an_operator_activity_record_is_the_crm_input_it_tells_of(fields, event) -> None:
    assert parse_activity(record(ACTIVITY, **fields)) == event


def test_what_the_call_center_publishes_on_operator_activity_reads_back() -> None:
    center = CallCenter()
    told = center.hear(ADD, CONNECT, COMPLETE)
    assert [type(event) for event in told] == [LoggedIn, CallAnswered, CallFinished]


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
    pytest.param(parse_activity, b"operator-activity", "not JSON", id="activity: not JSON"),
    pytest.param(parse_activity, b"[]", "value: Input should be a valid dictionary", id="activity: not an object"),
    pytest.param(parse_activity, record(ACTIVITY, time=None), "time: Field required", id="activity: no time"),
    pytest.param(parse_activity, record(ACTIVITY, event="call_rang"), "event: Input should be 'signed_in'",
                 id="activity: unknown event"),
    pytest.param(parse_activity, record(ACTIVITY, callid=None), "callid: a call_ended names its call",
                 id="activity: an end without its call"),
    pytest.param(parse_activity, record(ACTIVITY, event="call_answered", callid=""), "callid: String should have at least",
                 id="activity: an empty call id"),
    pytest.param(parse_activity, record(ACTIVITY, talk_s=-1), "talk_s: Input should be greater than or equal to 0",
                 id="activity: negative talk time"),
    pytest.param(parse_activity, record(ACTIVITY, talk_s="NaN"), "talk_s: Input should be a finite number",
                 id="activity: NaN talk time"),
    pytest.param(parse_activity, record(ACTIVITY, confirmed="yes"), "confirmed: Input should be a valid boolean",
                 id="activity: confirmed not a boolean"),
    pytest.param(parse_activity, record(ACTIVITY, operator="SIP/11\r27"), "operator: String should match pattern",
                 id="activity: control character in the operator"),
    pytest.param(parse_activity, None, "no value", id="activity: tombstone"),
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
        self.crm = MemoryTable()

    def batch(self, *messages: Any) -> Batch:
        outbox = _OutboxThenPauses(app, self._flushed)
        stage = OperatorStatusStage(key_partition(OP), self.crm, outbox)
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


def test_a_call_answered_is_on_call_published_without_a_pause(switchboard) -> None:
    assert switchboard.batch(signed_in(0)).pauses == [PauseRequest(OP, False, "logged in")]
    told = switchboard.batch(answered(10))
    assert (told.records[OP].status, told.records[OP].current_call) == ("ON_CALL", "c1")
    assert told.pauses == []


def test_the_calls_end_is_wrap_up_counted_once_without_a_pause(switchboard) -> None:
    switchboard.batch(signed_in(0), answered(10))
    told = switchboard.batch(ended(130, 120.0))
    shown = told.records[OP]
    assert (shown.status, shown.reason, shown.calls_today, shown.current_call) == ("WRAP_UP", AFTER_CALL, 1, None)
    assert told.pauses == []
    assert switchboard.crm[OP].talk_today_s == 120.0
    again = switchboard.batch(answered(10), ended(130, 120.0))
    assert again.pauses == [] and all(r == shown for r in again.records.values())  # a replay: the same record at most
    assert switchboard.crm[OP].calls_today == 1


def test_a_login_an_answer_and_an_end_in_one_batch_publish_a_counted_wrap_up_once(switchboard) -> None:
    told = switchboard.batch(signed_in(0), answered(10), ended(130, 120.0))
    shown = told.records[OP]
    assert (shown.status, shown.calls_today, shown.aht_s, shown.current_call) == ("WRAP_UP", 1, 120.0 + 3470.0, None)
    assert (shown.time_in_status_today_s["ONLINE"], shown.time_in_status_today_s["ON_CALL"]) == (10.0, 120.0)
    assert told.pauses == [PauseRequest(OP, False, "logged in")]


@pytest.mark.parametrize("late", [
    pytest.param(status("BREAK", 30, "coffee"), id="an older status a person asked for"),
    pytest.param(signed_in(-10), id="an older sign-in"),
    pytest.param(EndpointUnregistered(OP, T0 + 30), id="an older endpoint event"),
])
def test_a_replayed_older_input_changes_nothing_and_publishes_nothing(switchboard, late) -> None:
    switchboard.batch(signed_in(0), status("ONLINE", 60, "ready"))
    crm = dict(switchboard.crm)
    told = switchboard.batch(late)
    assert (told.records, told.pauses) == ({}, [])
    assert switchboard.crm == crm


def test_the_newest_status_applied_again_publishes_its_record_again(switchboard) -> None:
    # a replay after Kafka refused the record: the state was stored, the record never sent
    first = switchboard.batch(status("BREAK", 60, "coffee"))
    again = switchboard.batch(status("BREAK", 60, "coffee"))
    assert again.records == first.records and again.records[OP].status == "BREAK"
    assert again.pauses == []  # the reconciliation with QueueStatus repairs a pause lost with it


def test_the_newest_call_event_applied_again_publishes_its_record_again(switchboard) -> None:
    switchboard.batch(signed_in(0))
    first = switchboard.batch(answered(10))  # Kafka refuses its record: the state is stored, the record never sent
    again = switchboard.batch(answered(10))
    assert again.records == first.records


def test_a_calls_end_heard_after_a_later_status_is_still_counted(switchboard) -> None:
    switchboard.batch(signed_in(0), answered(10))
    switchboard.batch(status("ONLINE", 42, "ready"))  # the operator moves on at :42 ...
    switchboard.batch(ended(40, 30.0))  # ... before the call center's report of the end at :40 comes
    op = switchboard.crm[OP]
    assert (op.status, op.calls_today, op.talk_today_s, op.current_call) == (ONLINE, 1, 30.0, None)


def test_an_endpoint_that_unregisters_sets_the_operator_offline_and_paused(switchboard) -> None:
    switchboard.batch(signed_in(0))
    told = switchboard.batch(EndpointUnregistered(OP, T0 + 60))
    assert (told.records[OP].status, told.records[OP].reason) == ("OFFLINE", SIP_UNREGISTERED)
    assert told.pauses == [PauseRequest(OP, True, SIP_UNREGISTERED)]


def test_the_endpoint_registered_again_brings_the_operator_back_online_and_unpaused(switchboard) -> None:
    switchboard.batch(signed_in(0), EndpointUnregistered(OP, T0 + 60))
    told = switchboard.batch(EndpointRegistered(OP, T0 + 120))
    assert (told.records[OP].status, told.records[OP].reason, told.records[OP].since) == ("ONLINE", SIP_REGISTERED, T0 + 120)
    assert told.pauses == [PauseRequest(OP, False, SIP_REGISTERED)]


def test_a_registration_after_a_manual_offline_changes_nothing(switchboard) -> None:
    switchboard.batch(signed_in(0), status("OFFLINE", 30, "end of shift"))
    told = switchboard.batch(EndpointRegistered(OP, T0 + 60))
    assert (switchboard.crm[OP].status, switchboard.crm[OP].reason) == (OFFLINE, "end of shift")
    assert all((r.status, r.reason) == ("OFFLINE", "end of shift") for r in told.records.values())
    assert told.pauses == []
