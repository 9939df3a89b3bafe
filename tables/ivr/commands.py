"""What `ivr-commands` carries (SPEC.md "Topics"), and the typed messages it becomes.

A command is a JSON object with a `kind`; the HTTP endpoints write them (web/ivr.py) and
any other service may too, so the route checks every record the same way (`parse_command`):
numbers are normalised to E.164, expiries must lie after the command and within
`IVR_MAX_TTL_S` of it. What fails is a `MalformedCommand` (a dead letter with its reason).

    {"kind": "bind_inbound", "order_id", "inbound_number", "gateway"?, "expires_at"?, "at"}
    {"kind": "route_to_ivr", "phone", "order_id", "expires_at", "at"}
    {"kind": "route_to_operator", "phone", "order_id"?, "at"}

`at` is when the command was accepted (epoch seconds): rules apply commands by it, so a
command that arrives late or twice changes nothing it should not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional, Union

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from tables.ivr.phones import InvalidPhone, normalise

__all__ = [
    "BindInbound", "Command", "CommandRecord", "IvrCommand", "MalformedCommand", "RouteToIvr", "RouteToOperator",
    "command_key", "command_record", "parse_command", "validated",
]

EPOCH_MIN, EPOCH_MAX = 946_684_800.0, 4_102_444_800.0  # 2000..2100
Epoch = Annotated[float, Field(ge=EPOCH_MIN, le=EPOCH_MAX, allow_inf_nan=False)]
OrderId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Gateway = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Phone = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class MalformedCommand(ValueError):
    """A record of ivr-commands no rule can apply; the message says why."""


# --- the typed messages (frozen, flat: they travel in envelopes, app/codec.py) ------------------


@dataclass(frozen=True, slots=True)
class BindInbound:
    """Order `order_id` was placed through the call center's `inbound_number` (via `gateway`)."""

    order_id: str
    inbound_number: str  # E.164
    gateway: Optional[str]  # None: the default gateway
    expires_at: float
    at: float


@dataclass(frozen=True, slots=True)
class RouteToIvr:
    """Calls from `phone` go to the IVR until `expires_at`, for order `order_id`."""

    phone: str  # E.164
    order_id: str
    expires_at: float
    at: float


@dataclass(frozen=True, slots=True)
class RouteToOperator:
    """Calls from `phone` go to an operator again: order `order_id` finished (None: every order)."""

    phone: str  # E.164
    order_id: Optional[str]
    at: float


IvrCommand = Union[BindInbound, RouteToIvr, RouteToOperator]


def command_key(command: IvrCommand) -> str:
    """The key of the state a command changes: its table's key, and its record's key."""
    return command.order_id if isinstance(command, BindInbound) else command.phone


# --- the record on the topic ------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at: Epoch


class BindInboundRecord(_Record):
    kind: Literal["bind_inbound"]
    order_id: OrderId
    inbound_number: Phone
    gateway: Optional[Gateway] = None
    expires_at: Optional[Epoch] = None  # None: IVR_BINDING_TTL_S after `at`


class RouteToIvrRecord(_Record):
    kind: Literal["route_to_ivr"]
    phone: Phone
    order_id: OrderId
    expires_at: Epoch


class RouteToOperatorRecord(_Record):
    kind: Literal["route_to_operator"]
    phone: Phone
    order_id: Optional[OrderId] = None


CommandRecord = Annotated[Union[BindInboundRecord, RouteToIvrRecord, RouteToOperatorRecord], Field(discriminator="kind")]
_RECORD: TypeAdapter[CommandRecord] = TypeAdapter(CommandRecord)
Command = Union[BindInboundRecord, RouteToIvrRecord, RouteToOperatorRecord]


def parse_command(raw: Optional[bytes], region: str, binding_ttl_s: float, max_ttl_s: float) -> IvrCommand:
    """The command a record of ivr-commands holds, checked and normalised (`validated`)."""
    if raw is None:
        raise MalformedCommand("empty record (no value)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedCommand(f"not JSON: {exc}"[:200]) from None
    try:
        record = _RECORD.validate_python(data)
    except ValidationError as exc:
        raise MalformedCommand(describe(exc)) from None
    return validated(record, region, binding_ttl_s, max_ttl_s)


def describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = first.get("msg", "is invalid").removeprefix("Value error, ")
    return f"{where}: {message}"[:200] if where else message[:200]


def validated(record: Command, region: str, binding_ttl_s: float, max_ttl_s: float) -> IvrCommand:
    """The typed command of `record`: numbers in E.164, expiry after `at` and at most
    `max_ttl_s` after it (a binding without one gets `binding_ttl_s`)."""
    try:
        if isinstance(record, BindInboundRecord):
            expires_at = record.expires_at if record.expires_at is not None else record.at + binding_ttl_s
            _check_expiry(expires_at, record.at, max_ttl_s)
            return BindInbound(record.order_id, _phone(record.inbound_number, region, "inbound_number"),
                               record.gateway, expires_at, record.at)
        if isinstance(record, RouteToIvrRecord):
            _check_expiry(record.expires_at, record.at, max_ttl_s)
            return RouteToIvr(_phone(record.phone, region, "phone"), record.order_id, record.expires_at, record.at)
        return RouteToOperator(_phone(record.phone, region, "phone"), record.order_id, record.at)
    except InvalidPhone as exc:
        raise MalformedCommand(str(exc)) from None


def _phone(raw: str, region: str, field: str) -> str:
    try:
        return normalise(raw, region)
    except InvalidPhone as exc:
        raise InvalidPhone(f"{field}: {exc}") from None


def _check_expiry(expires_at: float, at: float, max_ttl_s: float) -> None:
    if expires_at <= at:
        raise MalformedCommand(f"expires_at: {expires_at} is not after the command's time {at}")
    if expires_at - at > max_ttl_s:
        raise MalformedCommand(f"expires_at: {expires_at - at:.0f} s after the command, over IVR_MAX_TTL_S ({max_ttl_s:.0f} s)")


def command_record(command: IvrCommand) -> bytes:
    """The JSON record of a typed command (what web/ivr.py writes to ivr-commands)."""
    if isinstance(command, BindInbound):
        body: dict = {"kind": "bind_inbound", "order_id": command.order_id, "inbound_number": command.inbound_number,
                      "gateway": command.gateway, "expires_at": command.expires_at, "at": command.at}
    elif isinstance(command, RouteToIvr):
        body = {"kind": "route_to_ivr", "phone": command.phone, "order_id": command.order_id,
                "expires_at": command.expires_at, "at": command.at}
    else:
        body = {"kind": "route_to_operator", "phone": command.phone, "order_id": command.order_id, "at": command.at}
    return orjson.dumps(body)
