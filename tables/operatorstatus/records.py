"""What the operator-status domain's input topics carry (SPEC.md "Topics"), checked, as the
typed messages its rules take. Bad records are `MalformedRecord`s (dead letters, with why).

    operator-commands  {"operator", "status", "reason"?, "time", "by"?}
                       a person set the CRM status (POST /operators/{id}/status writes them)
    sip-registrations  {"operator", "endpoint"?, "registered", "time"}
                       the operator's SIP endpoint registered, or went away
    operator-activity  {"operator", "event", "time", "callid"?, "queue"?, "talk_s"?, "confirmed"?}
                       what an operator did as the call center saw it (signed in or out,
                       a call answered or ended), one record per event, in order

Each is keyed by the operator id; the route sends it on in that key's partition.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, model_validator

from app.records import record_model
from tables.operatorstatus.status import (
    CallAnswered,
    CallFinished,
    CrmStatus,
    EndpointRegistered,
    EndpointUnregistered,
    LoggedIn,
    LoggedOut,
    StatusRequested,
    TelephonyInput,
)

__all__ = [
    "CommandRecord", "MalformedRecord", "OperatorId", "Reason", "RegistrationRecord", "command_record",
    "parse_activity", "parse_command", "parse_registration", "registration_record",
]

EPOCH_MIN, EPOCH_MAX = 946_684_800.0, 4_102_444_800.0  # 2000..2100
Epoch = Annotated[float, Field(ge=EPOCH_MIN, le=EPOCH_MAX, allow_inf_nan=False)]
OperatorId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Reason = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


class MalformedRecord(ValueError):
    """A record no rule can apply; the message says why."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandRecord(_Record):
    operator: OperatorId
    status: CrmStatus
    reason: Reason = ""
    time: Epoch
    by: Annotated[str, StringConstraints(max_length=128)] = ""


class RegistrationRecord(_Record):
    operator: OperatorId
    endpoint: Optional[Annotated[str, StringConstraints(max_length=128)]] = None
    registered: bool
    time: Epoch


CallId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
_CALL_EVENTS = ("call_answered", "call_ended")


class _Activity(BaseModel):
    """A record of the call center's `operator-activity` (fields it may add are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    operator: OperatorId
    event: Literal["signed_in", "signed_out", "call_answered", "call_ended"]
    time: Epoch
    callid: Optional[CallId] = None
    queue: Optional[str] = None
    talk_s: Optional[Annotated[float, Field(ge=0, le=7 * 86400, allow_inf_nan=False)]] = None
    confirmed: StrictBool = False

    @model_validator(mode="after")
    def _a_call_event_names_its_call(self) -> "_Activity":
        if self.event in _CALL_EVENTS and self.callid is None:
            raise ValueError(f"callid: a {self.event} names its call")
        return self


def parse_command(value: Optional[bytes]) -> StatusRequested:
    record = record_model(CommandRecord, value, "operator-commands record", MalformedRecord)
    return StatusRequested(record.operator, record.status, record.reason, record.time, record.by)


def parse_registration(value: Optional[bytes]) -> Union[EndpointRegistered, EndpointUnregistered]:
    record = record_model(RegistrationRecord, value, "sip-registrations record", MalformedRecord)
    kind = EndpointRegistered if record.registered else EndpointUnregistered
    return kind(record.operator, record.time)


def parse_activity(value: Optional[bytes]) -> TelephonyInput:
    """The event, as the CRM's input. A tombstone is malformed: the topic holds events."""
    record = record_model(_Activity, value, "operator-activity record", MalformedRecord)
    if record.event == "signed_in":
        return LoggedIn(record.operator, record.time)
    if record.event == "signed_out":
        return LoggedOut(record.operator, record.time)
    assert record.callid is not None  # the validator's
    if record.event == "call_answered":
        return CallAnswered(record.operator, record.callid, record.time)
    return CallFinished(record.operator, record.callid, record.time, record.talk_s or 0.0, record.confirmed)


def command_record(operator: str, status: CrmStatus, reason: str, at: float, by: str) -> bytes:
    return orjson.dumps(CommandRecord(operator=operator, status=status, reason=reason, time=at, by=by).model_dump(mode="json"))


def registration_record(operator: str, endpoint: str, registered: bool, at: float) -> bytes:
    return orjson.dumps(RegistrationRecord(operator=operator, endpoint=endpoint, registered=registered,
                                           time=at).model_dump(mode="json"))
