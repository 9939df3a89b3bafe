"""What the operator-status domain's input topics carry (SPEC.md "Topics"), checked, as the
typed messages its rules take. Bad records are `MalformedRecord`s (dead letters, with why).

    operator-commands  {"operator", "status", "reason"?, "time", "by"?}
                       a person set the CRM status (POST /operators/{id}/status writes them)
    sip-registrations  {"operator", "endpoint"?, "registered", "time"}
                       the operator's SIP endpoint registered, or went away
    operator-status    the call center's telephony view of an operator (its `id`,
                       `queues`, `current_call`, `calls_today`, `talk_time_today_s`,
                       `last_event_at`)

Each is keyed by the operator id; the route sends it on in that key's partition.
"""

from __future__ import annotations

from typing import Annotated, Optional, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.records import record_model
from tables.operatorstatus.status import CrmStatus, EndpointRegistered, EndpointUnregistered, StatusRequested
from tables.operatorstatus.telephony import TelephonyObserved

__all__ = [
    "CommandRecord", "MalformedRecord", "OperatorId", "Reason", "RegistrationRecord", "command_record",
    "parse_command", "parse_registration", "parse_telephony", "registration_record",
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


class _Call(BaseModel):
    model_config = ConfigDict(extra="ignore")
    callid: str
    since: float


class _TelephonyView(BaseModel):
    """The fields of the call center's operator view the CRM reads (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")
    id: OperatorId
    queues: list[str]
    current_call: Optional[_Call]
    calls_today: int = Field(ge=0)
    talk_time_today_s: float = Field(ge=0, allow_inf_nan=False)
    last_event_at: float = Field(ge=0, allow_inf_nan=False)


def parse_command(value: Optional[bytes]) -> StatusRequested:
    record = record_model(CommandRecord, value, "operator-commands record", MalformedRecord)
    return StatusRequested(record.operator, record.status, record.reason, record.time, record.by)


def parse_registration(value: Optional[bytes]) -> Union[EndpointRegistered, EndpointUnregistered]:
    record = record_model(RegistrationRecord, value, "sip-registrations record", MalformedRecord)
    kind = EndpointRegistered if record.registered else EndpointUnregistered
    return kind(record.operator, record.time)


def parse_telephony(value: Optional[bytes]) -> TelephonyObserved:
    """The view's transitions-relevant fields. A tombstone is malformed too: the call center
    never deletes an operator (a record without a value there is someone else's mistake)."""
    view = record_model(_TelephonyView, value, "operator-status record", MalformedRecord)
    call = view.current_call
    return TelephonyObserved(view.id, view.last_event_at, bool(view.queues), None if call is None else call.callid,
                             None if call is None else call.since, view.calls_today, view.talk_time_today_s)


def command_record(operator: str, status: CrmStatus, reason: str, at: float, by: str) -> bytes:
    return orjson.dumps(CommandRecord(operator=operator, status=status, reason=reason, time=at, by=by).model_dump(mode="json"))


def registration_record(operator: str, endpoint: str, registered: bool, at: float) -> bytes:
    return orjson.dumps(RegistrationRecord(operator=operator, endpoint=endpoint, registered=registered,
                                           time=at).model_dump(mode="json"))
