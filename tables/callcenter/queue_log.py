"""Decode Asterisk queue_log records (the `qapp-events` value) and say what they mean.

Pure functions, no Kafka, no clock:

- `decode(raw)`: a Kafka value, either a raw queue_log line or its JSON form, to a
  `QueueLogRecord`; `parse_line(line)` does the raw line alone.
- `to_line(rec)` / `to_json(rec)`: the two wire forms back (`decode` inverts both).
- `interpret(rec)`: a `QueueLogRecord` to a typed `CallCenterEvent`.

Anything that is not a record, or a known event whose fields make no sense, raises
`MalformedEvent(reason)`; the reason ends up in `dead-letters`.

Layouts, as written by `ast_queue_log()` calls in apps/app_queue.c (and channels/chan_agent.c
up to 11), checked on the asterisk/asterisk branches 1.2, 1.4, 1.6.2, 1.8, 11, 12, 13, 16,
18, 20 and 22, and doc/queuelog.txt of 1.4:

- File form (main/logger.c, every version): `%ld|callid|queue|agent|EVENT|` + data, one
  line each, so data is never absent: an event without data ends in an empty field.
  Realtime storage (1.8+) writes the time as "%F %T.%6q" ("YYYY-MM-DD HH:MM:SS.ffffff",
  local time unless queue_log_realtime_use_gmt); exports of that are read here as UTC.
  Non-adaptive realtime keeps all data in one "data" column, still pipe-joined.
- ENTERQUEUE: url|callerid up to 1.6.2; url|callerid|origposition from 1.8; with
  log-caller-id-name (20.14, 21.9, 22.4+) a fourth field, the caller name ('|' escaped).
- CONNECT: holdtime|bridged uniqueid in 1.4; |ringtime (seconds) from 1.6. 1.2: holdtime only.
- EXITWITHTIMEOUT: position only in 1.4 and on some paths of 1.6-1.8 and 12;
  position|origposition|waittime elsewhere. ABANDON, EXITEMPTY: always the three.
- EXITWITHKEY: key|position in 1.4 and 1.6.2; key|position|origposition|waittime from 1.8.
- WITHDRAW (16.25, 18.11, 19.3, 20+; AMI QueueWithdrawCaller): position|origposition|
  waittime|info. The caller leaves the queue unanswered: a `CallLeftUnanswered`.
- RINGNOANSWER: ringtime in ms, every version. RINGCANCELED (15+): the same, when the
  caller hangs up while a member rings.
- TRANSFER: exten|context|holdtime|calltime in 1.4; |origposition from 1.6; gone in 12+,
  replaced by BLINDTRANSFER (same layout) and ATTENDEDTRANSFER: method|method data|
  holdtime|calltime|origposition, method data one field (BRIDGE|id, APP|name) or two
  (LINK|chan1|chan2).
- PAUSE/UNPAUSE: reason empty in 1.4, the pause reason from 1.8. PAUSEALL/UNPAUSEALL:
  queue NONE, reason empty up to 13, given from 16.
- AGENTLOGIN (channel) / AGENTLOGOFF (channel|logintime): chan_agent.c up to 11, app_queue.c
  (app_agent_pool) from 12; AGENTCALLBACKLOGIN (exten@context) / AGENTCALLBACKLOGOFF
  (exten@context|logintime|reason): callback agents of 1.4 only.
- ADDMEMBER "PAUSED" or "", REMOVEMEMBER "": callid is REALTIME, MANAGER, CLI or a channel
  uniqueid, so member events never need a call id.
"""

from __future__ import annotations

import codecs
import math
import re
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

import orjson

from app.records import oversized
from tables.callcenter.events import (
    NONE,
    AgentLoggedIn,
    CallCenterEvent,
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
    TransferKind,
    UnansweredKind,
)

__all__ = ["decode", "interpret", "parse_line", "to_json", "to_line"]

# Events that exist (app_queue.c, logger.c, FreePBX dialplan) but change no state we keep.
KNOWN_STATE_FREE = frozenset(
    {
        "QUEUESTART",  # logger.c, once per Asterisk start
        "CONFIGRELOAD",  # logger.c, on reload
        "SYSCOMPAT",  # answered, then dropped: channels not compatible; the caller waits on
        "AGENTDUMP",  # member hung up during the announcement; the caller waits on
        "PENALTY",  # member penalty changed (1.8+)
        "RINGINUSE",  # member ringinuse changed (11+)
        "OUTCALL",  # QueueUpdate() of an outbound call (15+), not a queued call
        "DID",  # FreePBX QueueLog(): dialled number of the next ENTERQUEUE
        "INFO",  # FreePBX QueueLog(): free-form notes
    }
)

# Epoch seconds up to year 5138; bounds keep float() exact enough and int() away from huge
# digit strings. A time beyond them is a producer bug, not a date.
_MAX_EPOCH = 10**11
_EPOCH_RE = re.compile(r"[0-9]{1,11}(?:\.[0-9]+)?", re.ASCII)
_DATETIME_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[ T]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?",
    re.ASCII,
)
# Asterisk writes %d / %ld; a fraction is tolerated for hand-written records.
_SECONDS_RE = re.compile(r"[+-]?[0-9]{1,12}(?:\.[0-9]{1,9})?", re.ASCII)
_INT_RE = re.compile(r"[+-]?[0-9]{1,12}", re.ASCII)
_LINE_BREAKS = ("\r", "\n")


# --- wire forms ------------------------------------------------------------------------


def decode(raw: bytes) -> QueueLogRecord:
    """A `qapp-events` value: JSON object if its first non-space byte is `{`, else a line."""
    if not raw:
        raise MalformedEvent("empty value")
    too_big = oversized(raw)  # an Asterisk queue_log line is a few hundred bytes
    if too_big is not None:
        raise MalformedEvent(too_big)
    body = bytes(raw).removeprefix(codecs.BOM_UTF8)  # files saved by Windows editors carry one
    if body.lstrip()[:1] == b"{":
        return _record_from_json(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"line is not UTF-8 (bad byte at {exc.start})") from None
    return parse_line(text)


def parse_line(line: str) -> QueueLogRecord:
    """One queue_log line `time|callid|queuename|agent|event|data1|...` (line end optional)."""
    text = line.rstrip("\r\n")
    if not text.strip():
        raise MalformedEvent("empty line")
    if any(brk in text for brk in _LINE_BREAKS):
        raise MalformedEvent("more than one line in one record")
    columns = text.split("|")
    if len(columns) < 5:
        raise MalformedEvent(f"{len(columns)} column(s), need at least 5: time|callid|queue|agent|event")
    time_text, callid, queue, agent, event, *data = columns
    return QueueLogRecord(
        time=_parse_time(time_text),
        callid=callid,
        queue=queue,
        agent=agent,
        event=_event_name(event),
        data=tuple(data),
    )


def to_line(rec: QueueLogRecord) -> str:
    """The queue_log line of `rec`, without line end; `parse_line` reads it back equal."""
    return "|".join((_format_time(rec.time), rec.callid, rec.queue, rec.agent, rec.event, *rec.data))


def to_json(rec: QueueLogRecord) -> dict[str, Any]:
    """The JSON form of `rec`; `decode(orjson.dumps(to_json(rec))) == rec`."""
    return {
        "time": rec.time,
        "callid": rec.callid,
        "queue": rec.queue,
        "agent": rec.agent,
        "event": rec.event,
        "data": list(rec.data),
    }


def _parse_time(text: str) -> float:
    value = text.strip()
    if _EPOCH_RE.fullmatch(value):
        return _checked_time(float(value), text)
    match = _DATETIME_RE.fullmatch(value)
    if match is None:
        raise MalformedEvent(f"time {text!r} is not epoch seconds nor 'YYYY-MM-DD HH:MM:SS'")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    micros = int((match.group(7) or "0").ljust(6, "0"))
    try:
        moment = datetime(year, month, day, hour, minute, second, micros, tzinfo=timezone.utc)
    except ValueError:
        raise MalformedEvent(f"time {text!r} is not a valid date") from None
    return _checked_time(moment.timestamp(), text)


def _checked_time(seconds: float, shown: object) -> float:
    if not (math.isfinite(seconds) and 0 <= seconds < _MAX_EPOCH):
        raise MalformedEvent(f"time {shown!r} is out of range (epoch 0 to 1e11 s)")
    return float(seconds)


def _format_time(seconds: float) -> str:
    if seconds.is_integer():
        return str(int(seconds))
    # Decimal(repr()) is the shortest exact spelling; format "f" avoids exponents like 1e-06.
    return format(Decimal(repr(seconds)), "f")


def _event_name(text: str) -> str:
    name = text.strip().upper()
    if not name:
        raise MalformedEvent("empty event name")
    return name


# --- JSON form -------------------------------------------------------------------------


def _record_from_json(body: bytes) -> QueueLogRecord:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedEvent("JSON value is not an object")
    for required in ("time", "event"):
        if required not in obj:
            raise MalformedEvent(f"JSON record has no {required!r}")
    return QueueLogRecord(
        time=_json_time(obj["time"]),
        callid=_json_column(obj, "callid"),
        queue=_json_column(obj, "queue"),
        agent=_json_column(obj, "agent"),
        event=_event_name(_json_text(obj["event"], "event")),
        data=_json_data(obj.get("data")),
    )


def _json_time(value: object) -> float:
    if isinstance(value, bool):  # bool is an int to Python, never a time to us
        raise MalformedEvent("'time' must be a number or numeric string, got bool")
    if isinstance(value, int):
        if not 0 <= value < _MAX_EPOCH:  # before float(): huge ints overflow it
            raise MalformedEvent(f"time {value!r} is out of range (epoch 0 to 1e11 s)")
        return float(value)
    if isinstance(value, float):
        return _checked_time(value, value)
    if isinstance(value, str):
        return _parse_time(value)
    raise MalformedEvent(f"'time' must be a number or numeric string, got {type(value).__name__}")


def _json_column(obj: dict[str, Any], name: str) -> str:
    return _json_text(obj.get(name, NONE), name)


def _json_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise MalformedEvent(f"{name!r} must be a string, got {type(value).__name__}")
    # Every record must also have a line form, where '|' and line breaks cannot appear.
    if "|" in value or any(brk in value for brk in _LINE_BREAKS):
        raise MalformedEvent(f"{name!r} contains '|' or a line break")
    return value


def _json_data(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    # A string is the legacy single combined data column; list items may be combined too.
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise MalformedEvent(f"'data' must be a list, got {type(value).__name__}")
    fields: list[str] = []
    for index, item in enumerate(items):
        text = _json_scalar(item, index)
        if any(brk in text for brk in _LINE_BREAKS):
            raise MalformedEvent(f"'data[{index}]' contains a line break")
        fields.extend(text.split("|"))
    return tuple(fields)


def _json_scalar(item: object, index: int) -> str:
    if isinstance(item, str):
        return item
    if item is None:
        return ""
    if isinstance(item, (bool, int, float)):
        return orjson.dumps(item).decode()  # the JSON spelling: 5, 1.5, true
    raise MalformedEvent(f"'data[{index}]' must be a scalar, got {type(item).__name__}")


# --- meaning -----------------------------------------------------------------------------


def interpret(rec: QueueLogRecord) -> CallCenterEvent:
    """The typed event `rec` stands for; `Ignored` for events that change no state."""
    event = rec.event.upper()
    rule = _RULES.get(event)
    if rule is None:
        return Ignored(time=rec.time, event=event, known=event in KNOWN_STATE_FREE)
    return rule(_Fields(rec, event))


class _Fields:
    """Typed access to one record's columns; errors name the event and the field."""

    def __init__(self, rec: QueueLogRecord, event: str) -> None:
        self.rec = rec
        self.event = event
        self.time = rec.time

    def text(self, index: int) -> str:
        return self.rec.data[index] if index < len(self.rec.data) else ""

    def seconds(self, index: int, name: str) -> float:
        value = self.optional_seconds(index, name)
        if value is None:
            raise MalformedEvent(f"{self.event} has no {name}")
        return value

    def optional_seconds(self, index: int, name: str) -> Optional[float]:
        raw = self._present(index)
        if raw is None:
            return None
        if not _SECONDS_RE.fullmatch(raw):
            raise MalformedEvent(f"{self.event} {name} {raw!r} is not a number")
        return float(raw)

    def optional_int(self, index: int, name: str) -> Optional[int]:
        raw = self._present(index)
        if raw is None:
            return None
        if not _INT_RE.fullmatch(raw):
            raise MalformedEvent(f"{self.event} {name} {raw!r} is not a whole number")
        return int(raw)

    def callid(self) -> str:
        return self._named(self.rec.callid, "call id")

    def queue(self) -> str:
        return self._named(self.rec.queue, "queue")

    def agent(self) -> str:
        return self._named(self.rec.agent, "agent")

    def _present(self, index: int) -> Optional[str]:
        # Older layouts end early and empty fields mean "not given": both are None.
        raw = self.text(index).strip()
        return raw or None

    def _named(self, value: str, what: str) -> str:
        if value.strip() in ("", NONE):
            raise MalformedEvent(f"{self.event} has no {what}")
        return value


def _call_entered(f: _Fields) -> CallEntered:
    # url|callerid[|origposition[|callername]]
    return CallEntered(
        time=f.time,
        callid=f.callid(),
        queue=f.queue(),
        callerid=f.text(1),
        position=f.optional_int(2, "origposition"),
    )


def _call_connected(f: _Fields) -> CallConnected:
    # holdtime|bridged uniqueid[|ringtime]
    return CallConnected(
        time=f.time,
        callid=f.callid(),
        queue=f.queue(),
        agent=f.agent(),
        holdtime_s=f.seconds(0, "holdtime"),
        ringtime_s=f.optional_seconds(2, "ringtime"),
    )


def _call_completed(f: _Fields) -> CallCompleted:
    # holdtime|calltime|origposition
    return CallCompleted(
        time=f.time,
        callid=f.callid(),
        queue=f.queue(),
        agent=f.agent(),
        holdtime_s=f.seconds(0, "holdtime"),
        calltime_s=f.seconds(1, "calltime"),
        by_agent=f.event == "COMPLETEAGENT",
    )


def _call_left(f: _Fields) -> CallLeftUnanswered:
    # position|origposition|waittime (WITHDRAW adds |info; 1.4 EXITWITHTIMEOUT: position)
    return CallLeftUnanswered(
        time=f.time,
        callid=f.callid(),
        queue=f.queue(),
        kind=UnansweredKind(f.event),
        waittime_s=f.optional_seconds(2, "waittime"),
        position=f.optional_int(0, "position"),
    )


def _call_left_with_key(f: _Fields) -> CallLeftUnanswered:
    # key|position|origposition|waittime (1.4: key|position)
    return CallLeftUnanswered(
        time=f.time,
        callid=f.callid(),
        queue=f.queue(),
        kind=UnansweredKind(f.event),
        waittime_s=f.optional_seconds(3, "waittime"),
        position=f.optional_int(1, "position"),
        key=f.text(0),
    )


def _ring_ended(f: _Fields) -> CallRingNoAnswer:
    # ringtime in milliseconds
    return CallRingNoAnswer(
        time=f.time,
        callid=f.callid(),
        queue=f.queue(),
        agent=f.agent(),
        ringtime_s=f.seconds(0, "ringtime") / 1000,
        canceled=f.event == "RINGCANCELED",
    )


def _call_transferred_to_extension(f: _Fields) -> CallTransferred:
    # exten|context|holdtime|calltime[|origposition]
    return CallTransferred(
        time=f.time,
        callid=f.callid(),
        queue=f.queue(),
        agent=f.agent(),
        kind=TransferKind(f.event),
        target=f"{f.text(0)}@{f.text(1)}",
        holdtime_s=f.seconds(2, "holdtime"),
        calltime_s=f.seconds(3, "calltime"),
    )


def _call_transferred_attended(f: _Fields) -> CallTransferred:
    # method|method data (1 or 2 fields)|holdtime|calltime|origposition; the method data has
    # no fixed width, so the three numbers are found counting from the end.
    data = f.rec.data
    if len(data) < 4:
        raise MalformedEvent(
            f"ATTENDEDTRANSFER has {len(data)} data field(s), need method, holdtime, calltime, origposition"
        )
    first_number = len(data) - 3
    return CallTransferred(
        time=f.time,
        callid=f.callid(),
        queue=f.queue(),
        agent=f.agent(),
        kind=TransferKind(f.event),
        target="|".join(data[:first_number]),
        holdtime_s=f.seconds(first_number, "holdtime"),
        calltime_s=f.seconds(first_number + 1, "calltime"),
    )


def _member_added(f: _Fields) -> MemberAdded:
    return MemberAdded(time=f.time, queue=f.queue(), agent=f.agent(), paused=f.text(0).strip().upper() == "PAUSED")


def _member_removed(f: _Fields) -> MemberRemoved:
    return MemberRemoved(time=f.time, queue=f.queue(), agent=f.agent())


def _member_paused(f: _Fields) -> MemberPaused:
    # A reason holding '|' was split by the line format; join it back.
    return MemberPaused(
        time=f.time,
        queue=f.queue(),
        agent=f.agent(),
        paused=f.event == "PAUSE",
        reason="|".join(f.rec.data),
    )


def _member_paused_everywhere(f: _Fields) -> MemberPaused:
    # *ALL applies to every queue of the member whatever the queue column says (always NONE).
    return MemberPaused(
        time=f.time,
        queue=None,
        agent=f.agent(),
        paused=f.event == "PAUSEALL",
        reason="|".join(f.rec.data),
    )


def _agent_logged(f: _Fields) -> AgentLoggedIn:
    # channel (callback agents: exten@context) first; logintime and reason are not kept.
    return AgentLoggedIn(
        time=f.time,
        agent=f.agent(),
        logged_in=f.event in ("AGENTLOGIN", "AGENTCALLBACKLOGIN"),
        channel=f.text(0),
    )


_RULES: dict[str, Callable[[_Fields], CallCenterEvent]] = {
    "ENTERQUEUE": _call_entered,
    "CONNECT": _call_connected,
    "COMPLETEAGENT": _call_completed,
    "COMPLETECALLER": _call_completed,
    "ABANDON": _call_left,
    "EXITWITHTIMEOUT": _call_left,
    "EXITEMPTY": _call_left,
    "WITHDRAW": _call_left,
    "EXITWITHKEY": _call_left_with_key,
    "RINGNOANSWER": _ring_ended,
    "RINGCANCELED": _ring_ended,
    "TRANSFER": _call_transferred_to_extension,
    "BLINDTRANSFER": _call_transferred_to_extension,
    "ATTENDEDTRANSFER": _call_transferred_attended,
    "ADDMEMBER": _member_added,
    "REMOVEMEMBER": _member_removed,
    "PAUSE": _member_paused,
    "UNPAUSE": _member_paused,
    "PAUSEALL": _member_paused_everywhere,
    "UNPAUSEALL": _member_paused_everywhere,
    "AGENTLOGIN": _agent_logged,
    "AGENTLOGOFF": _agent_logged,
    "AGENTCALLBACKLOGIN": _agent_logged,
    "AGENTCALLBACKLOGOFF": _agent_logged,
}
