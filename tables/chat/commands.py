"""What the chat's input topics carry (SPEC.md "Topics", seed 004), and the typed
messages they become.

Every record is a JSON object with a `type` (the seed's event names) and `at`, when it was
accepted (epoch seconds). The WebSocket and REST edges write them (web/chat.py) and any
other service may too, so the route checks every record the same way (`parse_command`);
each topic admits its own types (`TOPIC_TYPES`). What fails is a `MalformedCommand`: a
dead letter with its reason. Ids may be JSON strings or integers (the seed's are numbers);
inside they are strings.

    chat_events      chat_created, message_sent, chat_closed
    support_queue    operator_accept_chat, transfer_chat, lawyer_assigned, chat_closed
    operator_events  operator_status, operator_connected, operator_seen, operator_disconnected
    admin_actions    transfer_chat, assign_lawyer, update_operator_status, close_chat,
                     update_queue_priority
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Literal, Optional, Union

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

__all__ = [
    "AcceptChat", "Actor", "AssignLawyer", "ChatCommand", "ChatCreated", "CloseChat", "DeskTick", "MalformedCommand",
    "MessageSent", "OperatorConnected", "OperatorDisconnected", "OperatorSeen", "OperatorStatus", "SetOperatorStatus",
    "SetPriority", "TOPIC_TYPES", "TransferChat", "checked_command", "parse_command",
]

EPOCH_MIN, EPOCH_MAX = 946_684_800.0, 4_102_444_800.0  # 2000..2100
MAX_TEXT = 100_000  # the topic's own bound; the edges hold messages to CHAT_MAX_TEXT


class MalformedCommand(ValueError):
    """A record of a chat topic no rule can apply; the message says why."""


class Actor(str, Enum):
    """Who did it: the role of the token at the edge (service: another system, as an admin)."""

    CLIENT = "client"
    OPERATOR = "operator"
    LAWYER = "lawyer"
    ADMIN = "admin"
    SERVICE = "service"


class OperatorStatus(str, Enum):
    ONLINE = "online"  # takes chats
    BUSY = "busy"  # keeps their chats, takes no new ones
    OFFLINE = "offline"  # their chats go to others


# --- the typed messages (frozen, flat: they travel in envelopes, app/codec.py) ------------------


@dataclass(frozen=True, slots=True)
class ChatCreated:
    chat_id: str
    client_id: str
    queue: str
    priority: int
    text: Optional[str]  # the first message, if the client wrote one
    message_id: Optional[str]
    request_id: Optional[str]
    at: float


@dataclass(frozen=True, slots=True)
class MessageSent:
    chat_id: str
    sender_id: str
    sender_role: Actor
    text: str
    message_id: str  # the edge's id of it: a message sent twice is kept once
    request_id: Optional[str]
    at: float


@dataclass(frozen=True, slots=True)
class AcceptChat:
    chat_id: str
    operator_id: str
    request_id: Optional[str]
    at: float


@dataclass(frozen=True, slots=True)
class TransferChat:
    chat_id: str
    by_id: str
    by_role: Actor
    target_operator_id: Optional[str]  # None: back to the front of the queue
    reason: str
    request_id: Optional[str]
    at: float


@dataclass(frozen=True, slots=True)
class AssignLawyer:
    chat_id: str  # the support chat the lawyer is assigned from
    by_id: str
    by_role: Actor
    lawyer_id: str
    request_id: Optional[str]
    at: float


@dataclass(frozen=True, slots=True)
class CloseChat:
    chat_id: str
    by_id: str
    by_role: Actor
    reason: str
    request_id: Optional[str]
    at: float


@dataclass(frozen=True, slots=True)
class SetOperatorStatus:
    operator_id: str
    lawyer: bool  # a lawyer's presence (they take no queue chats)
    status: OperatorStatus
    capacity: Optional[int]  # None: as it was (CHAT_OPERATOR_CAPACITY for a new one)
    by_id: str
    by_role: Actor
    request_id: Optional[str]
    at: float


@dataclass(frozen=True, slots=True)
class SetPriority:
    chat_id: str
    priority: int
    by_id: str
    request_id: Optional[str]
    at: float


@dataclass(frozen=True, slots=True)
class OperatorConnected:
    operator_id: str
    lawyer: bool
    connection: str  # one WebSocket of theirs, on some worker
    at: float


@dataclass(frozen=True, slots=True)
class OperatorSeen:
    """A connection still open (each worker says so every CHAT_PRESENCE_INTERVAL_S)."""

    operator_id: str
    lawyer: bool
    connection: str
    at: float


@dataclass(frozen=True, slots=True)
class OperatorDisconnected:
    operator_id: str
    lawyer: bool
    connection: str
    at: float


@dataclass(frozen=True, slots=True)
class DeskTick:
    """Time passes at the desk (sent by the worker owning it, every CHAT_TICK_S)."""

    at: float


ChatCommand = Union[ChatCreated, MessageSent, AcceptChat, TransferChat, AssignLawyer, CloseChat, SetOperatorStatus,
                    SetPriority, OperatorConnected, OperatorSeen, OperatorDisconnected, DeskTick]


# --- the records on the topics ----------------------------------------------------------------


def _id_text(value: object) -> object:
    if isinstance(value, bool):
        return value  # refused below: true is no id
    return str(value) if isinstance(value, int) else value


Id = Annotated[str, BeforeValidator(_id_text),
               StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Epoch = Annotated[float, Field(ge=EPOCH_MIN, le=EPOCH_MAX, allow_inf_nan=False)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Reason = Annotated[str, StringConstraints(max_length=500)]
Queue = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Priority = Annotated[int, Field(ge=0, le=1000)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    at: Epoch
    request_id: Optional[Id] = None


class _ByRecord(_Record):
    by_id: Id
    by_role: Actor


class ChatCreatedRecord(_Record):
    type: Literal["chat_created"]
    chat_id: Id
    client_id: Id
    queue: Queue = "general"
    priority: Priority = 0
    text: Optional[Text] = None
    message_id: Optional[Id] = None


class MessageSentRecord(_Record):
    type: Literal["message_sent"]
    chat_id: Id
    sender_id: Id
    sender_role: Actor
    text: Text
    message_id: Id


class ChatClosedRecord(_ByRecord):
    type: Literal["chat_closed", "close_chat"]
    chat_id: Id
    reason: Reason = ""


class AcceptRecord(_Record):
    type: Literal["operator_accept_chat"]
    chat_id: Id
    operator_id: Id


class TransferRecord(_ByRecord):
    type: Literal["transfer_chat"]
    chat_id: Id
    target_operator_id: Optional[Id] = None
    reason: Reason = ""


class LawyerRecord(_ByRecord):
    type: Literal["lawyer_assigned", "assign_lawyer"]
    chat_id: Id
    lawyer_id: Id


class OperatorStatusRecord(_Record):
    type: Literal["operator_status", "update_operator_status"]
    operator_id: Id
    lawyer: bool = False
    status: OperatorStatus
    capacity: Optional[Annotated[int, Field(ge=1, le=100)]] = None
    by_id: Optional[Id] = None
    by_role: Actor = Actor.SERVICE


class PriorityRecord(_ByRecord):
    type: Literal["update_queue_priority"]
    chat_id: Id
    priority: Priority


class PresenceRecord(_Record):
    type: Literal["operator_connected", "operator_seen", "operator_disconnected"]
    operator_id: Id
    lawyer: bool = False
    connection: Id


AnyRecord = Annotated[Union[ChatCreatedRecord, MessageSentRecord, ChatClosedRecord, AcceptRecord, TransferRecord,
                            LawyerRecord, OperatorStatusRecord, PriorityRecord, PresenceRecord],
                      Field(discriminator="type")]
_RECORD: TypeAdapter[AnyRecord] = TypeAdapter(AnyRecord)

TOPIC_TYPES: dict[str, frozenset[str]] = {
    "chat_events": frozenset({"chat_created", "message_sent", "chat_closed"}),
    "support_queue": frozenset({"operator_accept_chat", "transfer_chat", "lawyer_assigned", "chat_closed"}),
    "operator_events": frozenset({"operator_status", "operator_connected", "operator_seen", "operator_disconnected"}),
    "admin_actions": frozenset({"transfer_chat", "assign_lawyer", "update_operator_status", "close_chat",
                                "update_queue_priority"}),
}
ADMIN_ROLES = frozenset({Actor.ADMIN, Actor.SERVICE})


def parse_command(raw: Optional[bytes], topic: str) -> ChatCommand:
    """The command a record of `topic` (a key of TOPIC_TYPES) holds, if its type is one
    that topic admits; `admin_actions` takes actions by admins (or services) only."""
    admitted = TOPIC_TYPES[topic]
    if raw is None:
        raise MalformedCommand("empty record (no value)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedCommand(f"not JSON: {exc}"[:200]) from None
    if not isinstance(data, dict):
        raise MalformedCommand("not a JSON object")
    kind = data.get("type")
    if kind not in admitted:
        raise MalformedCommand(f"type: {kind!r} is not one of {', '.join(sorted(admitted))}"[:200])
    try:
        record = _RECORD.validate_python(data)
    except ValidationError as exc:
        raise MalformedCommand(describe(exc)) from None
    _check_actor(topic, record, data, MalformedCommand)
    return typed(record)


def _check_actor(topic: str, record: BaseModel, data: dict[str, Any], error: type[ValueError]) -> None:
    """`admin_actions` carries what admins (or services) do, nobody else."""
    if topic == "admin_actions" and getattr(record, "by_role", Actor.SERVICE) not in ADMIN_ROLES:
        raise error(f"by_role: an admin action by {data.get('by_role')!r}")


def describe(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = first.get("msg", "is invalid").removeprefix("Value error, ")
    return f"{where}: {message}"[:200] if where else message[:200]


def typed(record: BaseModel) -> ChatCommand:
    r: Any = record
    at, request_id = r.at, r.request_id
    if isinstance(record, ChatCreatedRecord):
        return ChatCreated(r.chat_id, r.client_id, r.queue, r.priority, r.text, r.message_id, request_id, at)
    if isinstance(record, MessageSentRecord):
        return MessageSent(r.chat_id, r.sender_id, r.sender_role, r.text, r.message_id, request_id, at)
    if isinstance(record, ChatClosedRecord):
        return CloseChat(r.chat_id, r.by_id, r.by_role, r.reason, request_id, at)
    if isinstance(record, AcceptRecord):
        return AcceptChat(r.chat_id, r.operator_id, request_id, at)
    if isinstance(record, TransferRecord):
        return TransferChat(r.chat_id, r.by_id, r.by_role, r.target_operator_id, r.reason, request_id, at)
    if isinstance(record, LawyerRecord):
        return AssignLawyer(r.chat_id, r.by_id, r.by_role, r.lawyer_id, request_id, at)
    if isinstance(record, OperatorStatusRecord):
        return SetOperatorStatus(r.operator_id, r.lawyer, r.status, r.capacity, r.by_id or r.operator_id, r.by_role,
                                 request_id, at)
    if isinstance(record, PriorityRecord):
        return SetPriority(r.chat_id, r.priority, r.by_id, request_id, at)
    if r.type == "operator_connected":
        return OperatorConnected(r.operator_id, r.lawyer, r.connection, at)
    if r.type == "operator_seen":
        return OperatorSeen(r.operator_id, r.lawyer, r.connection, at)
    return OperatorDisconnected(r.operator_id, r.lawyer, r.connection, at)


def checked_command(topic: str, kind: str, **fields: object) -> tuple[bytes, ChatCommand]:
    """A command of type `kind` for `topic` as the edges make it: its JSON record and the
    typed message the route would make of it (checked once; a ValueError says what is wrong)."""
    data = {"type": kind, **{k: (v.value if isinstance(v, Enum) else v) for k, v in fields.items()}}
    if kind not in TOPIC_TYPES[topic]:
        raise ValueError(f"type: {kind!r} does not go on {topic}")
    try:
        record = _RECORD.validate_python(data)
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
    _check_actor(topic, record, data, ValueError)
    return orjson.dumps(data), typed(record)
