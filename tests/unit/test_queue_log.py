"""Asterisk queue_log records: decoding both wire forms and what each layout means.

Sample lines follow the `ast_queue_log()` formats of apps/app_queue.c (and chan_agent.c up
to 11) on the asterisk/asterisk branches named in each test.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.callcenter.events import (
    AgentLoggedIn,
    CallCompleted,
    CallConnected,
    CallEntered,
    CallLeftUnanswered,
    CallRingNoAnswer,
    CallTransferred,
    Ignored,
    MalformedEvent,
    MemberAdded,
    MemberPaused,
    MemberRemoved,
    QueueLogRecord,
)
from tables.callcenter.queue_log import (
    KNOWN_STATE_FREE,
    decode,
    interpret,
    parse_line,
    to_json,
    to_line,
)

T = 1700000000.0
CALL = "1700000000.42"


def meaning(line: str) -> object:
    """What one raw queue_log line means, through the same path as a Kafka value."""
    return interpret(decode(line.encode()))


def malformed_reason(raw: bytes) -> str:
    with pytest.raises(MalformedEvent) as caught:
        interpret(decode(raw))
    return caught.value.reason


# --- the line form ---------------------------------------------------------------------


def test_line_columns_map_to_record_fields() -> None:
    assert parse_line(f"1700000000|{CALL}|support|SIP/100|CONNECT|12|1700000012.43|3") == QueueLogRecord(
        time=T, callid=CALL, queue="support", agent="SIP/100", event="CONNECT", data=("12", "1700000012.43", "3")
    )


def test_epoch_time_may_carry_a_fraction() -> None:
    assert parse_line("1700000000.123456|NONE|NONE|NONE|QUEUESTART|").time == 1700000000.123456


def test_realtime_datetime_time_is_read_as_utc() -> None:
    rec = parse_line("2023-11-14 22:13:20.250000|NONE|NONE|NONE|QUEUESTART|")
    assert rec.time == T + 0.25


def test_realtime_datetime_time_without_fraction() -> None:
    assert parse_line("2023-11-14 22:13:20|NONE|NONE|NONE|QUEUESTART|").time == T


def test_datetime_time_with_t_separator_is_accepted() -> None:
    assert parse_line("2023-11-14T22:13:20|NONE|NONE|NONE|QUEUESTART|").time == T


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r", "\n\n"], ids=["lf", "crlf", "cr", "blank-line"])
def test_line_end_is_not_part_of_the_last_field(ending: str) -> None:
    assert parse_line(f"1700000000|{CALL}|support|SIP/100|RINGNOANSWER|15000{ending}").data == ("15000",)


def test_event_without_data_keeps_the_empty_field_asterisk_writes() -> None:
    # logger.c always writes "EVENT|" before the (here empty) data
    assert parse_line("1700000000|MANAGER|support|SIP/100|REMOVEMEMBER|\n").data == ("",)


def test_five_column_line_has_no_data() -> None:
    assert parse_line("1700000000|NONE|NONE|NONE|QUEUESTART").data == ()


def test_event_name_is_upper_cased() -> None:
    assert parse_line("1700000000|NONE|NONE|NONE|queuestart|").event == "QUEUESTART"


def test_to_line_writes_the_asterisk_file_form() -> None:
    rec = QueueLogRecord(T, CALL, "support", "SIP/100", "COMPLETEAGENT", ("12", "300", "1"))
    assert to_line(rec) == f"1700000000|{CALL}|support|SIP/100|COMPLETEAGENT|12|300|1"


def test_to_line_spells_tiny_fractions_without_exponent() -> None:
    rec = QueueLogRecord(0.000001, "NONE", "NONE", "NONE", "QUEUESTART", ("",))
    assert to_line(rec) == "0.000001|NONE|NONE|NONE|QUEUESTART|"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "empty line"),
        ("\r\n", "empty line"),
        ("   ", "empty line"),
        ("1700000000|NONE|support|SIP/100", "4 column(s), need at least 5"),
        ("1700000000|NONE|support|SIP/100||", "empty event name"),
        ("1700000000|NONE|support|SIP/100| |", "empty event name"),
        ("abc|NONE|NONE|NONE|QUEUESTART|", "time 'abc' is not epoch seconds nor 'YYYY-MM-DD HH:MM:SS'"),
        ("|NONE|NONE|NONE|QUEUESTART|", "time '' is not epoch seconds"),
        ("-5|NONE|NONE|NONE|QUEUESTART|", "time '-5' is not epoch seconds"),
        ("1e9|NONE|NONE|NONE|QUEUESTART|", "time '1e9' is not epoch seconds"),
        ("2023-02-30 10:00:00|NONE|NONE|NONE|QUEUESTART|", "time '2023-02-30 10:00:00' is not a valid date"),
        ("1969-12-31 23:59:59|NONE|NONE|NONE|QUEUESTART|", "out of range"),
        ("123456789012|NONE|NONE|NONE|QUEUESTART|", "not epoch seconds"),
        ("1700000000|NONE|NONE|NONE|QUEUESTART|\n1700000001|NONE|NONE|NONE|CONFIGRELOAD|", "more than one line"),
    ],
    ids=[
        "empty",
        "only-line-end",
        "only-spaces",
        "four-columns",
        "empty-event",
        "blank-event",
        "word-time",
        "empty-time",
        "negative-time",
        "exponent-time",
        "impossible-date",
        "date-before-1970",
        "time-too-far-ahead",
        "two-lines",
    ],
)
def test_malformed_line_says_why(line: str, reason: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        parse_line(line)
    assert reason in caught.value.reason


def test_non_utf8_value_is_malformed() -> None:
    assert malformed_reason(b"1700000000|NONE|q\xff|NONE|QUEUESTART|") == "line is not UTF-8 (bad byte at 17)"


def test_empty_value_is_malformed() -> None:
    assert malformed_reason(b"") == "empty value"


def test_utf8_bom_before_the_first_line_is_skipped() -> None:
    assert decode(b"\xef\xbb\xbf1700000000|NONE|NONE|NONE|QUEUESTART|\n").time == T


def test_non_ascii_names_survive_decoding() -> None:
    rec = decode("1700000000|NONE|поддержка|Оператор 1|ADDMEMBER|".encode())
    assert (rec.queue, rec.agent) == ("поддержка", "Оператор 1")


# --- the JSON form ---------------------------------------------------------------------


def test_json_form_decodes_to_the_same_record_as_the_line() -> None:
    line = f"1700000000.123|{CALL}|support|SIP/100|CONNECT|12|1700000012.43|3"
    value = {"time": 1700000000.123, "callid": CALL, "queue": "support", "agent": "SIP/100",
             "event": "CONNECT", "data": ["12", "1700000012.43", "3"]}  # fmt: skip
    assert decode(orjson.dumps(value)) == decode(line.encode())


def test_to_json_round_trips_through_orjson() -> None:
    rec = QueueLogRecord(T + 0.5, CALL, "support", "SIP/100", "COMPLETECALLER", ("12", "300", "1"))
    assert to_json(rec) == {"time": T + 0.5, "callid": CALL, "queue": "support", "agent": "SIP/100",
                            "event": "COMPLETECALLER", "data": ["12", "300", "1"]}  # fmt: skip
    assert decode(orjson.dumps(to_json(rec))) == rec


def test_json_with_leading_whitespace_is_still_json() -> None:
    assert decode(b'  \n {"time": 1700000000, "event": "QUEUESTART"}').event == "QUEUESTART"


def test_json_missing_columns_default_to_none_and_data_to_empty() -> None:
    assert decode(b'{"time": 1700000000, "event": "queuestart"}') == QueueLogRecord(
        T, "NONE", "NONE", "NONE", "QUEUESTART", ()
    )


@pytest.mark.parametrize(
    "time",
    ["1700000000", "1700000000.0", "2023-11-14 22:13:20", 1700000000],
    ids=["str", "str-fraction", "datetime", "int"],
)
def test_json_time_is_a_number_or_numeric_string(time: object) -> None:
    assert decode(orjson.dumps({"time": time, "event": "QUEUESTART"})).time == T


def test_json_data_scalars_become_strings_in_their_json_spelling() -> None:
    value = {"time": T, "event": "X", "data": [12, 1.5, True, None, "a"]}
    assert decode(orjson.dumps(value)).data == ("12", "1.5", "true", "", "a")


def test_json_data_as_one_combined_string_is_split_like_the_legacy_data_column() -> None:
    value = {"time": T, "callid": CALL, "queue": "support", "agent": "SIP/100", "event": "CONNECT", "data": "12|u.1|3"}
    assert decode(orjson.dumps(value)).data == ("12", "u.1", "3")


def test_json_data_null_means_no_data() -> None:
    assert decode(orjson.dumps({"time": T, "event": "QUEUESTART", "data": None})).data == ()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{", "invalid JSON"),
        (b'{"time": 1700000000, "event": "X"', "invalid JSON"),
        (b'{"event": "X"}', "JSON record has no 'time'"),
        (b'{"time": 1700000000}', "JSON record has no 'event'"),
        (b'{"time": [1], "event": "X"}', "'time' must be a number or numeric string, got list"),
        (b'{"time": true, "event": "X"}', "'time' must be a number or numeric string, got bool"),
        (b'{"time": "soon", "event": "X"}', "time 'soon' is not epoch seconds"),
        (b'{"time": -1, "event": "X"}', "time -1 is out of range"),
        (b'{"time": 1e300, "event": "X"}', "is out of range"),
        (b'{"time": 1700000000, "event": 5}', "'event' must be a string, got int"),
        (b'{"time": 1700000000, "event": ""}', "empty event name"),
        (b'{"time": 1700000000, "event": "X", "queue": null}', "'queue' must be a string, got NoneType"),
        (b'{"time": 1700000000, "event": "X", "agent": "a|b"}', "'agent' contains '|' or a line break"),
        (b'{"time": 1700000000, "event": "X", "callid": "a\\nb"}', "'callid' contains '|' or a line break"),
        (b'{"time": 1700000000, "event": "X", "data": {"a": 1}}', "'data' must be a list, got dict"),
        (b'{"time": 1700000000, "event": "X", "data": [[1]]}', "'data[0]' must be a scalar, got list"),
        (b'{"time": 1700000000, "event": "X", "data": ["ok", "a\\rb"]}', "'data[1]' contains a line break"),
    ],
    ids=[
        "truncated",
        "unclosed",
        "no-time",
        "no-event",
        "time-list",
        "time-bool",
        "time-word",
        "time-negative",
        "time-huge",
        "event-number",
        "event-empty",
        "queue-null",
        "agent-pipe",
        "callid-newline",
        "data-object",
        "data-nested",
        "data-newline",
    ],
)
def test_malformed_json_says_why(value: bytes, reason: str) -> None:
    assert reason in malformed_reason(value)


# --- calls: ENTERQUEUE -----------------------------------------------------------------


def test_enterqueue_in_asterisk_1_4_has_no_position() -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|ENTERQUEUE||5551234") == CallEntered(
        T, CALL, "support", callerid="5551234", position=None
    )


def test_enterqueue_in_asterisk_1_8_to_22_carries_origposition() -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|ENTERQUEUE|http://crm/x|5551234|2") == CallEntered(
        T, CALL, "support", callerid="5551234", position=2
    )


def test_enterqueue_in_asterisk_22_with_caller_name_logged() -> None:
    # log-caller-id-name (20.14, 21.9, 22.4+) appends the caller name
    assert meaning(f"1700000000|{CALL}|support|NONE|ENTERQUEUE||5551234|1|Ivan Petrov") == CallEntered(
        T, CALL, "support", callerid="5551234", position=1
    )


def test_enterqueue_of_a_withheld_number_has_empty_callerid() -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|ENTERQUEUE|||1") == CallEntered(T, CALL, "support", "", 1)


# --- calls: CONNECT / COMPLETE* --------------------------------------------------------


def test_connect_in_asterisk_1_4_has_no_ringtime() -> None:
    assert meaning(f"1700000000|{CALL}|support|SIP/100|CONNECT|12|1700000012.43") == CallConnected(
        T, CALL, "support", "SIP/100", holdtime_s=12.0, ringtime_s=None
    )


def test_connect_in_asterisk_1_8_and_later_carries_ringtime_in_seconds() -> None:
    assert meaning(f"1700000000|{CALL}|support|PJSIP/100|CONNECT|12|1700000012.43|4") == CallConnected(
        T, CALL, "support", "PJSIP/100", holdtime_s=12.0, ringtime_s=4.0
    )


def test_connect_with_extra_trailing_fields_is_accepted() -> None:
    event = meaning(f"1700000000|{CALL}|support|SIP/100|CONNECT|12|u.1|4|future|fields")
    assert isinstance(event, CallConnected) and event.ringtime_s == 4.0


@pytest.mark.parametrize("version_data", ["12|300|1", "12|300|1|"], ids=["1.4-to-22", "with-trailing-empty"])
def test_completecaller_in_every_version(version_data: str) -> None:
    assert meaning(f"1700000000|{CALL}|support|SIP/100|COMPLETECALLER|{version_data}") == CallCompleted(
        T, CALL, "support", "SIP/100", holdtime_s=12.0, calltime_s=300.0, by_agent=False
    )


def test_completeagent_is_completed_by_the_agent() -> None:
    assert meaning(f"1700000000|{CALL}|support|Agent/1001|COMPLETEAGENT|5|61|3") == CallCompleted(
        T, CALL, "support", "Agent/1001", holdtime_s=5.0, calltime_s=61.0, by_agent=True
    )


# --- calls: leaving unanswered ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY"])
def test_call_leaves_unanswered_with_position_origposition_waittime(kind: str) -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|{kind}|1|3|45") == CallLeftUnanswered(
        T, CALL, "support", kind=kind, waittime_s=45.0, position=1
    )


def test_exitwithtimeout_in_asterisk_1_4_has_only_the_position() -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|EXITWITHTIMEOUT|2") == CallLeftUnanswered(
        T, CALL, "support", kind="EXITWITHTIMEOUT", waittime_s=None, position=2
    )


def test_abandon_just_before_connect_names_the_member() -> None:
    # app_queue logs this ABANDON with the member in the agent column; the agent is not needed
    assert meaning(f"1700000000|{CALL}|support|SIP/100|ABANDON|1|1|20") == CallLeftUnanswered(
        T, CALL, "support", "ABANDON", 20.0, 1
    )


def test_exitwithkey_in_asterisk_1_4_has_key_and_position_only() -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|EXITWITHKEY|5|2") == CallLeftUnanswered(
        T, CALL, "support", kind="EXITWITHKEY", waittime_s=None, position=2, key="5"
    )


def test_exitwithkey_in_asterisk_1_8_and_later_carries_waittime() -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|EXITWITHKEY|0|1|4|33") == CallLeftUnanswered(
        T, CALL, "support", kind="EXITWITHKEY", waittime_s=33.0, position=1, key="0"
    )


def test_withdraw_in_asterisk_16_25_and_later_leaves_the_queue_unanswered() -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|WITHDRAW|1|2|70|callback-requested") == CallLeftUnanswered(
        T, CALL, "support", kind="WITHDRAW", waittime_s=70.0, position=1
    )


# --- calls: ringing --------------------------------------------------------------------


def test_ringnoanswer_ringtime_is_milliseconds_in_every_version() -> None:
    assert meaning(f"1700000000|{CALL}|support|SIP/100|RINGNOANSWER|15000") == CallRingNoAnswer(
        T, CALL, "support", "SIP/100", ringtime_s=15.0
    )


def test_ringcanceled_in_asterisk_15_and_later_is_a_canceled_ring() -> None:
    assert meaning(f"1700000000|{CALL}|support|PJSIP/100|RINGCANCELED|2500") == CallRingNoAnswer(
        T, CALL, "support", "PJSIP/100", ringtime_s=2.5, canceled=True
    )


# --- calls: transfers ------------------------------------------------------------------


def test_transfer_in_asterisk_1_4_has_no_origposition() -> None:
    assert meaning(f"1700000000|{CALL}|support|SIP/100|TRANSFER|200|from-internal|12|60") == CallTransferred(
        T, CALL, "support", "SIP/100", kind="TRANSFER", target="200@from-internal", holdtime_s=12.0, calltime_s=60.0
    )


def test_transfer_in_asterisk_1_8_and_11_carries_origposition() -> None:
    assert meaning(f"1700000000|{CALL}|support|SIP/100|TRANSFER|200|from-internal|12|60|1") == CallTransferred(
        T, CALL, "support", "SIP/100", kind="TRANSFER", target="200@from-internal", holdtime_s=12.0, calltime_s=60.0
    )


def test_blindtransfer_in_asterisk_12_and_later() -> None:
    assert meaning(f"1700000000|{CALL}|support|PJSIP/100|BLINDTRANSFER|300|sales|8|95|2") == CallTransferred(
        T, CALL, "support", "PJSIP/100", kind="BLINDTRANSFER", target="300@sales", holdtime_s=8.0, calltime_s=95.0
    )


@pytest.mark.parametrize(
    ("method_data", "target"),
    [
        ("BRIDGE|7c1e9a44-2f", "BRIDGE|7c1e9a44-2f"),
        ("APP|Voicemail", "APP|Voicemail"),
        ("LINK|PJSIP/100-00000001|PJSIP/300-00000002", "LINK|PJSIP/100-00000001|PJSIP/300-00000002"),
    ],
    ids=["bridge-merge", "app", "link-two-fields"],
)
def test_attendedtransfer_in_asterisk_12_and_later_reads_numbers_from_the_end(method_data: str, target: str) -> None:
    assert meaning(f"1700000000|{CALL}|support|PJSIP/100|ATTENDEDTRANSFER|{method_data}|9|120|1") == CallTransferred(
        T, CALL, "support", "PJSIP/100", kind="ATTENDEDTRANSFER", target=target, holdtime_s=9.0, calltime_s=120.0
    )


# --- members ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["REALTIME", "MANAGER", "CLI", CALL, "NONE"])
def test_addmember_from_any_source_needs_no_call_id(source: str) -> None:
    assert meaning(f"1700000000|{source}|support|PJSIP/100|ADDMEMBER|") == MemberAdded(
        T, "support", "PJSIP/100", paused=False
    )


def test_addmember_paused() -> None:
    assert meaning("1700000000|MANAGER|support|SIP/100|ADDMEMBER|PAUSED") == MemberAdded(
        T, "support", "SIP/100", paused=True
    )


def test_addmember_without_any_data_field_is_not_paused() -> None:
    assert meaning("1700000000|MANAGER|support|SIP/100|ADDMEMBER") == MemberAdded(T, "support", "SIP/100", False)


def test_removemember() -> None:
    assert meaning("1700000000|CLI|support|SIP/100|REMOVEMEMBER|") == MemberRemoved(T, "support", "SIP/100")


def test_pause_in_asterisk_1_4_has_no_reason() -> None:
    assert meaning("1700000000|NONE|support|SIP/100|PAUSE|") == MemberPaused(
        T, "support", "SIP/100", paused=True, reason=""
    )


def test_pause_in_asterisk_1_8_and_later_carries_the_reason() -> None:
    assert meaning("1700000000|NONE|support|SIP/100|PAUSE|Lunch") == MemberPaused(
        T, "support", "SIP/100", paused=True, reason="Lunch"
    )


def test_pause_reason_with_a_pipe_is_joined_back() -> None:
    assert meaning("1700000000|NONE|support|SIP/100|PAUSE|Break|15 min") == MemberPaused(
        T, "support", "SIP/100", paused=True, reason="Break|15 min"
    )


def test_unpause_in_asterisk_22_auto_unpause() -> None:
    assert meaning("1700000000|NONE|support|PJSIP/100|UNPAUSE|Auto-Unpause") == MemberPaused(
        T, "support", "PJSIP/100", paused=False, reason="Auto-Unpause"
    )


def test_pauseall_up_to_asterisk_13_applies_to_every_queue_without_reason() -> None:
    assert meaning("1700000000|NONE|NONE|SIP/100|PAUSEALL|") == MemberPaused(
        T, None, "SIP/100", paused=True, reason=""
    )


def test_unpauseall_in_asterisk_16_and_later_carries_the_reason() -> None:
    assert meaning("1700000000|NONE|NONE|PJSIP/100|UNPAUSEALL|back") == MemberPaused(
        T, None, "PJSIP/100", paused=False, reason="back"
    )


# --- agents (chan_agent up to 11, app_agent_pool from 12) -------------------------------


def test_agentlogin_records_the_channel() -> None:
    assert meaning(f"1700000000|{CALL}|NONE|Agent/1001|AGENTLOGIN|SIP/1001-0a1b2c3d") == AgentLoggedIn(
        T, "Agent/1001", logged_in=True, channel="SIP/1001-0a1b2c3d"
    )


def test_agentlogoff_records_channel_and_ignores_logintime() -> None:
    assert meaning(f"1700000000|{CALL}|NONE|1001|AGENTLOGOFF|PJSIP/1001-00000007|3600") == AgentLoggedIn(
        T, "1001", logged_in=False, channel="PJSIP/1001-00000007"
    )


def test_agentcallbacklogin_in_asterisk_1_4() -> None:
    assert meaning("1700000000|NONE|NONE|Agent/1001|AGENTCALLBACKLOGIN|1001@default") == AgentLoggedIn(
        T, "Agent/1001", logged_in=True, channel="1001@default"
    )


def test_agentcallbacklogoff_in_asterisk_1_4_with_reason() -> None:
    assert meaning("1700000000|NONE|NONE|Agent/1001|AGENTCALLBACKLOGOFF|1001@default|3600|Autologoff") == AgentLoggedIn(
        T, "Agent/1001", logged_in=False, channel="1001@default"
    )


# --- events that change no state -------------------------------------------------------


@pytest.mark.parametrize("event", sorted(KNOWN_STATE_FREE))
def test_known_state_free_events_are_ignored_but_known(event: str) -> None:
    assert meaning(f"1700000000|{CALL}|support|SIP/100|{event}|x|y") == Ignored(T, event, known=True)


def test_queuestart_from_logger_is_known() -> None:
    assert meaning("1700000000|NONE|NONE|NONE|QUEUESTART|") == Ignored(T, "QUEUESTART", known=True)


@pytest.mark.parametrize("event", ["JOINEMPTY", "MYCUSTOMEVENT", "CONNECT2"])
def test_unknown_events_are_ignored_as_unknown(event: str) -> None:
    assert meaning(f"1700000000|{CALL}|support|NONE|{event}|1") == Ignored(T, event, known=False)


def test_lower_case_event_name_means_the_same_as_upper_case() -> None:
    assert isinstance(meaning(f"1700000000|{CALL}|support|SIP/100|connect|12|u.1|3"), CallConnected)


# --- known events that make no sense ---------------------------------------------------


_SENSELESS = [
    (f"1|{CALL}|support|SIP/100|CONNECT|x|u.1|3", "CONNECT holdtime 'x' is not a number"),
    (f"1|{CALL}|support|SIP/100|CONNECT||u.1|3", "CONNECT has no holdtime"),
    (f"1|{CALL}|support|SIP/100|CONNECT", "CONNECT has no holdtime"),
    (f"1|{CALL}|support|SIP/100|CONNECT|12|u.1|soon", "CONNECT ringtime 'soon' is not a number"),
    (f"1|{CALL}|support|SIP/100|CONNECT|nan|u.1|3", "CONNECT holdtime 'nan' is not a number"),
    (f"1|{CALL}|support|SIP/100|COMPLETEAGENT|12", "COMPLETEAGENT has no calltime"),
    (f"1|{CALL}|support|SIP/100|COMPLETECALLER|12|1e3|1", "COMPLETECALLER calltime '1e3' is not a number"),
    (f"1|{CALL}|support|NONE|ENTERQUEUE||555|first", "ENTERQUEUE origposition 'first' is not a whole number"),
    (f"1|{CALL}|support|NONE|ABANDON|1|1|long", "ABANDON waittime 'long' is not a number"),
    (f"1|{CALL}|support|NONE|EXITEMPTY|1.5|1|3", "EXITEMPTY position '1.5' is not a whole number"),
    (f"1|{CALL}|support|SIP/100|RINGNOANSWER|", "RINGNOANSWER has no ringtime"),
    (f"1|{CALL}|support|SIP/100|TRANSFER|200|ctx", "TRANSFER has no holdtime"),
    (f"1|{CALL}|support|SIP/100|BLINDTRANSFER|200|ctx|8|x|1", "BLINDTRANSFER calltime 'x' is not a number"),
    (
        f"1|{CALL}|support|SIP/100|ATTENDEDTRANSFER|APP|1",
        "ATTENDEDTRANSFER has 2 data field(s), need method, holdtime, calltime, origposition",
    ),
    (f"1|{CALL}|support|SIP/100|ATTENDEDTRANSFER|APP|x|y|1", "ATTENDEDTRANSFER holdtime 'x' is not a number"),
    ("1|NONE|support|NONE|ENTERQUEUE||555|1", "ENTERQUEUE has no call id"),
    ("1||support|SIP/100|CONNECT|12|u.1|3", "CONNECT has no call id"),
    (f"1|{CALL}|NONE|NONE|ABANDON|1|1|20", "ABANDON has no queue"),
    (f"1|{CALL}||NONE|ENTERQUEUE||555|1", "ENTERQUEUE has no queue"),
    (f"1|{CALL}|support|NONE|CONNECT|12|u.1|3", "CONNECT has no agent"),
    (f"1|{CALL}|support|NONE|RINGCANCELED|100", "RINGCANCELED has no agent"),
    ("1|MANAGER|support|NONE|ADDMEMBER|", "ADDMEMBER has no agent"),
    ("1|MANAGER|support| |REMOVEMEMBER|", "REMOVEMEMBER has no agent"),
    ("1|MANAGER|NONE|SIP/100|ADDMEMBER|", "ADDMEMBER has no queue"),
    ("1|NONE|NONE|SIP/100|PAUSE|Lunch", "PAUSE has no queue"),
    ("1|NONE|NONE|NONE|PAUSEALL|", "PAUSEALL has no agent"),
    ("1|NONE|NONE|NONE|AGENTLOGIN|SIP/1", "AGENTLOGIN has no agent"),
]


@pytest.mark.parametrize(("line", "reason"), [pytest.param(line, reason, id=reason) for line, reason in _SENSELESS])
def test_known_event_with_senseless_fields_is_malformed(line: str, reason: str) -> None:
    assert malformed_reason(line.encode()) == reason


def test_huge_numeric_field_is_malformed_not_a_crash() -> None:
    reason = malformed_reason(f"1|{CALL}|support|SIP/100|CONNECT|{'9' * 5000}|u|1".encode())
    assert reason.startswith("CONNECT holdtime '999")


# --- properties --------------------------------------------------------------------------

_SAFE_TEXT = st.text(st.characters(blacklist_characters="|\r\n", blacklist_categories=("Cs",)), max_size=12)
_EVENT_NAMES = st.one_of(
    st.sampled_from(
        sorted(KNOWN_STATE_FREE)
        + ["ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "COMPLETECALLER", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY",
           "EXITWITHKEY", "WITHDRAW", "RINGNOANSWER", "RINGCANCELED", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER",
           "ADDMEMBER", "REMOVEMEMBER", "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL", "AGENTLOGIN", "AGENTLOGOFF",
           "AGENTCALLBACKLOGIN", "AGENTCALLBACKLOGOFF"]  # fmt: skip
    ),
    _SAFE_TEXT.map(lambda name: name.strip().upper()).filter(lambda name: name and name == name.strip().upper()),
)
_TIMES = st.one_of(
    st.integers(min_value=0, max_value=99_999_999_999).map(float),
    st.floats(min_value=0, max_value=99_999_999_999.0, allow_nan=False, allow_infinity=False),
    st.builds(lambda s, us: s + us / 1_000_000, st.integers(1_000_000_000, 2_000_000_000), st.integers(0, 999_999)),
)
_FIELD_TEXT = st.one_of(
    _SAFE_TEXT,
    st.sampled_from(["", "NONE", "PAUSED", "-1", "0", "12", "15000", "3.5", "x", " 7 ", "1e3", "nan", "९"]),
    st.integers(-10, 10**6).map(str),
)
_RECORDS = st.builds(
    QueueLogRecord,
    time=_TIMES,
    callid=st.one_of(st.just("NONE"), st.just(""), _SAFE_TEXT),
    queue=st.one_of(st.just("NONE"), st.just(""), _SAFE_TEXT),
    agent=st.one_of(st.just("NONE"), st.just(""), _SAFE_TEXT),
    event=_EVENT_NAMES,
    data=st.lists(_FIELD_TEXT, max_size=7).map(tuple),
)
_JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
_JSON_VALUES = st.recursive(
    _JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)),
    max_leaves=12,
)  # fmt: skip
_JSON_RECORD_LIKE = st.dictionaries(
    st.sampled_from(["time", "callid", "queue", "agent", "event", "data", "extra"]),
    st.one_of(_JSON_VALUES, _TIMES, _EVENT_NAMES, st.lists(_FIELD_TEXT, max_size=5)),
)


@settings(max_examples=400)
@given(_RECORDS)
def test_any_record_survives_both_wire_forms(rec: QueueLogRecord) -> None:
    assert decode(to_line(rec).encode()) == rec
    assert decode((to_line(rec) + "\r\n").encode()) == rec
    assert decode(orjson.dumps(to_json(rec))) == rec


def _decodes_or_rejects(raw: bytes) -> None:
    try:
        rec = decode(raw)
    except MalformedEvent as exc:
        assert exc.reason
        return
    # whatever decodes has a line form that decodes back to it
    assert decode(to_line(rec).encode()) == rec


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_decode_only_ever_rejects_arbitrary_bytes_as_malformed(raw: bytes) -> None:
    _decodes_or_rejects(raw)


@settings(max_examples=300)
@given(st.lists(st.one_of(_FIELD_TEXT, st.text(max_size=8)), max_size=9))
def test_decode_only_ever_rejects_pipe_joined_text_as_malformed(columns: list[str]) -> None:
    _decodes_or_rejects("|".join(columns).encode())


@settings(max_examples=300)
@given(st.one_of(_JSON_RECORD_LIKE, _JSON_VALUES.filter(lambda v: isinstance(v, dict))))
def test_decode_only_ever_rejects_json_objects_as_malformed(value: dict[str, Any]) -> None:
    try:
        raw = orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):  # ints beyond 64 bits cannot be sent anyway
        return
    _decodes_or_rejects(raw)


@settings(max_examples=600)
@given(_RECORDS)
def test_interpret_only_ever_rejects_a_record_as_malformed(rec: QueueLogRecord) -> None:
    try:
        event = interpret(rec)
    except MalformedEvent as exc:
        assert exc.reason.startswith(rec.event.upper())
        return
    assert event.time == rec.time
