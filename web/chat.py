"""Support chat's edges (seed 004; SPEC.md "HTTP API", support chat), prefix /api/v1/chat.

Writes become commands: each goes to the desk's partition of chat-work at once, and its
record to the seed's topic (chat_events, support_queue, operator_events, admin_actions),
marked so that the route does not apply it again; both are sent once Kafka has them. The
desk (agents/chat.py) decides, and its notices come back on chat-outbox, which every
worker follows from its end and hands to its own WebSockets (`Switchboard`): a client and an operator on two workers hear the same
things in the same order. A REST command waits for the desk's answer to it (its
`request_id`) up to CHAT_OUTCOME_WAIT_S: an error notice is a 4xx, no answer in time a 202.

Reads come from the worker owning the desk (`ask_owner`), filtered here by who asks: a
client sees its own chats, an operator the queue and their chats, a lawyer their chats,
admins everything.

- WebSocket `/ws/chat?token=&chat_id=&since=`: in `message`, `accept_chat`,
  `transfer_chat`, `assign_lawyer`, `close_chat`, `set_status`, `ping`; out `connected`,
  `new_chat_available`, `chat_taken`, `chat_assigned`, `chat_transferred`,
  `lawyer_assigned`, `message`, `chat_closed`, `queue_updated`, `operator_status`,
  `error`, `pong`. `since`: the last message id seen; what came after it is sent first.
- `POST /chats`, `GET /chats`, `GET /chats/{id}/messages?after=&limit=`,
  `GET /chats/queue|operators|stats`
- admin: `POST /admin/transfer-chat|assign-lawyer|update-operator-status|close-chat|
  update-queue-priority`, `GET /admin/queue|operators|stats`
- pages: `/chat/operator` (console), `/chat/client`
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from functools import partial
from typing import Annotated, Any, Awaitable, Callable, Literal, Optional, TypeVar, cast
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web as aioweb
from faust import web
from mode import Service
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, ValidationError

from app import codec
from app.feeds import TopicFollower
from app.main import app, settings
from tables.chat.commands import Actor, OperatorStatus, checked_command
from tables.chat.desk import (
    Chat,
    ChatState,
    Desk,
    Posted,
    assigned_payload,
    available_payload,
    may_see,
    message_payload,
    operator_view,
    queue_stats,
    waiting,
)
from tables.chat.store import (
    APPLIED,
    DESK,
    archive_table,
    chat,
    counters,
    desk_partition,
    desk_table,
    message_key,
    messages_table,
    seed_topic_name,
    topics,
)
from web.common import (
    WORKER,
    ApiError,
    ApiView,
    Recovering,
    answer_here,
    ask_owner,
    identify,
    opened_socket,
    send_command,
)
from web.operations import STATIC
from web.params import Body, Identifier, Query, body, identifier, query

__all__ = ["Switchboard", "board"]

log = logging.getLogger(__name__)

PREFIX = "/api/v1/chat"
APPLIED_BY_US = settings.app_id.encode()
EVERYONE = ("client", "operator", "lawyer", "admin")
QUEUE_READERS = ("operator", "admin", "manager")
ADMINS = ("admin",)
MAX_CLIENT_BACKLOG = 2000  # notices a slow socket may have queued before it is closed
MAX_FRAME = 64 * 1024  # a frame's most bytes: a larger one gets an `error` frame `too_large`, the socket stays
MAX_WIRE_FRAME = 1024 * 1024  # beyond this aiohttp closes the socket at once (1009 message too big)
GREETING_PATIENCE_S = 10.0  # a socket's greeting waits this long for a desk being recovered, then it says so
T = TypeVar("T")
ERROR_STATUS = {"unknown_chat": 404, "not_participant": 403, "not_allowed": 403}  # the other refusals: 409
Priority = Annotated[int, Field(strict=True, ge=0, le=chat.chat_max_priority)]
Capacity = Annotated[int, Field(strict=True, ge=1, le=100)]  # chats an operator takes at once
Text = Annotated[str, StringConstraints(min_length=1, max_length=chat.chat_max_text)]
Reason = Annotated[str, StringConstraints(max_length=500)]
QueueName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


# --- delivery: the desk's notices to this worker's sockets ---------------------------------------


class Connection:
    """One WebSocket: whose it is, the addresses it hears, what it has yet to send."""

    def __init__(self, role: str, user: str, chat_id: Optional[str], bucket: str = "") -> None:
        self.role, self.user, self.chat_id = role, user, chat_id
        self.bucket = bucket or f"{role}:{user}"  # whose rate limit its frames spend (`Who.bucket`)
        self.id = uuid.uuid4().hex
        self.queue: asyncio.Queue[Optional[dict[str, Any]]] = asyncio.Queue(MAX_CLIENT_BACKLOG)
        self.addresses = {f"{role}:{user}"} | ({"role:operator"} if role == "operator" else set()) | (
            {"role:admin"} if role == "admin" else set())
        self.sent: dict[str, int] = {}  # chat -> the last message id sent: history and live never repeat

    def hears(self, notice: dict[str, Any]) -> bool:
        if self.chat_id is None or self.role in ("operator", "admin"):
            return True
        chat_id = notice["payload"].get("chat_id")  # a client's or lawyer's socket of one chat
        return chat_id is None or chat_id == self.chat_id or notice["type"] == "lawyer_assigned"

    def fresh(self, notice: dict[str, Any]) -> bool:
        """Not a message this socket has sent already (from the history, or twice)."""
        if notice["type"] != "message":
            return True
        payload = notice["payload"]
        if payload["message_id"] <= self.sent.get(payload["chat_id"], 0):
            return False
        self.sent[payload["chat_id"]] = payload["message_id"]
        return True


class Switchboard(Service):
    """Follows chat-outbox from its end; each notice goes to the sockets of its addresses
    on this worker, and answers the REST command waiting for its request id."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.by_address: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.follower = TopicFollower(lambda: topics.chat_outbox.get_topic_name(), settings.kafka_bootstrap,
                                      self.on_record, from_end=True, fetch_max_wait_ms=chat.chat_push_fetch_wait_ms,
                                      only_key=DESK)  # the desk writes every notice under its key

    def on_init_dependencies(self) -> list[Any]:
        return [self.follower]

    def connect(self, conn: Connection) -> None:
        self.connections.add(conn)
        for address in conn.addresses:
            self.by_address.setdefault(address, set()).add(conn)
        counters.sockets.labels(conn.role).inc()

    def disconnect(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        for address in conn.addresses:
            self.by_address.get(address, set()).discard(conn)
        counters.sockets.labels(conn.role).dec()

    def on_record(self, record: Any) -> None:
        if record.value is None:
            return
        for notice in orjson.loads(record.value):
            self.deliver(notice)

    def deliver(self, notice: dict[str, Any]) -> None:
        request_id = notice.get("request_id")
        if request_id is not None:
            future = self.waiting.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(notice)
        heard: set[Connection] = set()
        for address in notice["to"]:
            heard |= self.by_address.get(address, set())
        for conn in heard:
            if not conn.hears(notice):
                continue
            try:
                conn.queue.put_nowait(notice)
            except asyncio.QueueFull:  # closed, never the feed slowed
                self.disconnect(conn)
                conn.queue.get_nowait()
                conn.queue.put_nowait(None)
                log.warning("A chat socket fell %d notices behind; closing it", MAX_CLIENT_BACKLOG)

    def expect(self, request_id: str) -> "asyncio.Future[dict[str, Any]]":
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = future
        return future

    @Service.timer(chat.chat_presence_interval_s)
    async def _still_here(self) -> None:
        """The desk hears every staff socket of this worker again (its lease: a worker that
        dies without a word lets its operators' connections expire)."""
        for conn in list(self.connections):
            if conn.role in ("operator", "lawyer"):
                await _presence("operator_seen", conn)


board = Switchboard()
app.service(cast(Any, board))


class RateLimit:
    """Per bucket (a user; a token naming none: the token) and worker: `chat_rate_per_s`
    sustained, `chat_rate_burst` at once."""

    def __init__(self) -> None:
        self.buckets: dict[str, tuple[float, float]] = {}  # bucket -> (tokens, when)

    def allow(self, bucket: str, now: float) -> bool:
        tokens, when = self.buckets.get(bucket, (float(chat.chat_rate_burst), now))
        tokens = min(float(chat.chat_rate_burst), tokens + (now - when) * chat.chat_rate_per_s)
        if tokens < 1.0:
            self.buckets[bucket] = (tokens, now)
            return False
        self.buckets[bucket] = (tokens - 1.0, now)
        if len(self.buckets) > 100_000:  # forget the quiet ones
            self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 60}
        return True


limits = RateLimit()


def _limited(bucket: str) -> None:
    if not limits.allow(bucket, time.monotonic()):
        counters.refused.labels("rate_limited").inc()
        raise ApiError(429, "rate_limited", f"more than {chat.chat_rate_per_s:g} requests/s (burst "
                                            f"{chat.chat_rate_burst}); slow down")


# --- commands ----------------------------------------------------------------------------------


def _actor(role: str) -> Actor:
    return Actor(role)


async def _command(topic: Any, key: str, kind: str, **fields: Any) -> None:
    """A command to the desk, at once (its partition of chat-work), and its record to the
    seed's `topic` for everyone else, marked so that the route does not apply it again."""
    try:
        value, command = checked_command(seed_topic_name(topic), kind, at=time.time(), **fields)
    except ValueError as exc:
        counters.refused.labels("invalid").inc()
        raise ApiError(400, "bad_request", str(exc)) from None
    await asyncio.gather(send_command(topics.chat_work, None, codec.pack([command]), kind, partition=desk_partition()),
                         send_command(topic, key.encode(), value, kind, headers=[(APPLIED, APPLIED_BY_US)]))


async def _presence(kind: str, conn: Connection) -> None:
    try:
        await _command(topics.operator_events, conn.user, kind, operator_id=conn.user, lawyer=conn.role == "lawyer",
                       connection=conn.id)
    except ApiError as exc:
        log.warning("presence of %s not sent: %s", conn.user, exc.message)


async def _decided(topic: Any, key: str, kind: str, **fields: Any) -> tuple[int, dict[str, Any]]:
    """Send a command and wait for the desk's answer: (status, body)."""
    request_id = uuid.uuid4().hex
    if not board.follower.caught_up.is_set():  # it knows where the desk's answers start only then
        try:
            await asyncio.wait_for(board.follower.caught_up.wait(), chat.chat_outcome_wait_s)
        except asyncio.TimeoutError:
            raise Recovering("this worker is not yet following the desk's answers (it is starting)") from None
    future = board.expect(request_id)
    try:
        await _command(topic, key, kind, request_id=request_id, **fields)
        notice = await asyncio.wait_for(future, chat.chat_outcome_wait_s)
    except asyncio.TimeoutError:
        return 202, {"request_id": request_id, "outcome": None,
                     "message": "sent; the desk did not answer in time: watch the WebSocket"}
    finally:
        board.waiting.pop(request_id, None)
    if notice["type"] == "error":
        payload = notice["payload"]
        raise ApiError(ERROR_STATUS.get(payload["code"], 409), payload["code"], payload["message"])
    return 200, {"request_id": request_id, "outcome": notice["type"], **notice["payload"]}


# --- reads from the desk's owner ---------------------------------------------------------------


async def _local_desk() -> Desk:
    return desk_table.get(DESK) or Desk()


async def _desk(request: web.Request) -> Desk:
    """The desk: this worker's own state if it owns it (no JSON round trip), else its owner's answer."""
    answer = await ask_owner(desk_table, DESK, f"{PREFIX}/internal/desk", _local_desk, request)
    return answer if isinstance(answer, Desk) else Desk.from_json(answer)


async def _local_chat(chat_id: str, after: int, limit: int) -> dict[str, Any]:
    """A chat (open or closed; None if unknown) and its messages after `after`, from this worker's tables."""
    desk = desk_table.get(DESK) or Desk()
    found = desk.chats.get(chat_id) or archive_table.get(chat_id)
    messages = []
    for seq in range(after + 1, min(found.last_seq, after + limit) + 1) if found is not None else ():
        posted = messages_table.get(message_key(chat_id, seq))
        if posted is not None:
            messages.append(posted)
    return {"chat": found, "messages": messages}


async def _chat(request: web.Request, chat_id: str, role: str, user: str, after: int = 0,
                limit: Optional[int] = None) -> tuple[Chat, list[Posted]]:
    """A chat and its messages after `after`, if `user` may see it (else 404/403)."""
    limit = limit or chat.chat_history_page
    path = f"{PREFIX}/internal/chats/{quote(chat_id, safe='')}?after={after}&limit={limit}"
    answer = await ask_owner(desk_table, DESK, path, partial(_local_chat, chat_id, after, limit), request)
    if answer["chat"] is None:
        raise ApiError(404, "unknown_chat", f"no chat {chat_id}")
    found = answer["chat"] if isinstance(answer["chat"], Chat) else Chat.from_json(answer["chat"])
    if not may_see(found, role, user) or (role == "operator" and found.state is ChatState.CLOSED
                                          and found.operator_id != user):
        raise ApiError(403, "forbidden", f"chat {chat_id} is not yours")
    return found, [m if isinstance(m, Posted) else Posted.from_json(m) for m in answer["messages"]]


class AfterQuery(Query):
    after: int = Field(0, ge=0)
    limit: int = Field(chat.chat_history_page, ge=1, le=chat.chat_history_page)


@app.page(PREFIX + "/internal/desk")
class InternalDesk(ApiView):
    roles = (WORKER,)

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(await answer_here(desk_table, DESK, _local_desk))


@app.page(PREFIX + "/internal/chats/{chat_id}")
class InternalChat(ApiView):
    roles = (WORKER,)

    async def get(self, request: web.Request, chat_id: str) -> web.Response:
        asked = query(request, AfterQuery)
        local = partial(_local_chat, identifier(chat_id, "chat_id"), asked.after, asked.limit)
        return self.ok(await answer_here(desk_table, DESK, local))


# --- views -------------------------------------------------------------------------------------


def chat_view(c: Chat, now: float) -> dict[str, Any]:
    return {"chat_id": c.chat_id, "client_id": c.client_id, "kind": c.kind.value, "queue": c.queue,
            "priority": c.priority, "state": c.state.value, "operator_id": c.operator_id,
            "created_at": c.created_at, "waiting_s": round(now - c.queued_at, 3) if c.state is ChatState.QUEUED
            else None, "assigned_at": c.assigned_at, "closed_at": c.closed_at, "last_message_id": c.last_seq,
            "support_chat_id": c.parent_id}


def _queue_answer(desk: Desk, now: float, detailed: bool) -> dict[str, Any]:
    stats = queue_stats(desk, now)
    queues = []
    for name, numbers in stats.items():
        entry = {"queue": name, "waiting": numbers["waiting"], "longest_wait_s": numbers["longest_wait_s"],
                 "chats": [chat_view(c, now) for c in waiting(desk, name)]}
        if detailed:
            entry["assigned"] = [chat_view(c, now) for c in sorted(desk.chats.values(), key=lambda c: c.created_at)
                                 if c.queue == name and c.state is ChatState.ASSIGNED]
        queues.append(entry)
    return {"generated_at": now, "queues": queues}


def _operators_answer(desk: Desk, detailed: bool) -> dict[str, Any]:
    answer = []
    for op in sorted(desk.operators.values(), key=lambda o: o.operator_id):
        view = operator_view(op)
        if detailed:
            view.update(chats=list(op.chats), connections=len(op.connections), away_since=op.away_since)
        answer.append(view)
    return {"operators": answer}


def _stats_answer(desk: Desk, now: float) -> dict[str, Any]:
    queues = list(queue_stats(desk, now).values())
    totals = {k: sum(q[k] for q in queues) for k in ("waiting", "assigned", "created", "accepted", "closed",
                                                      "transferred", "requeued")}
    ops = desk.operators.values()
    totals.update(operators_online=sum(1 for o in ops if not o.lawyer and o.status is OperatorStatus.ONLINE),
                  operators_connected=sum(1 for o in ops if o.connections),
                  lawyer_chats=sum(1 for c in desk.chats.values() if c.kind.value == "lawyer"))
    return {"generated_at": now, "queues": queues, "totals": totals}


class NewChatBody(Body):
    text: Optional[Text] = None
    queue: QueueName = chat.chat_default_queue
    priority: Optional[Priority] = None  # admins only
    client_id: Optional[Identifier] = None  # admins only: a chat on a client's behalf
    chat_id: Optional[Identifier] = None  # the client's own id for it: sent twice, one chat


@app.page(PREFIX + "/chats")
class Chats(ApiView):
    roles = EVERYONE

    async def post(self, request: web.Request) -> web.Response:
        who = identify(request, ("client", "admin"))
        role, user = who
        asked = await body(request, NewChatBody)
        if role == "client" and (asked.priority is not None or asked.client_id is not None):
            raise ApiError(403, "forbidden", "only admins set a chat's priority or open one for a client")
        _limited(who.bucket)
        client = asked.client_id or user
        chat_id = asked.chat_id or f"{int(time.time() * 1000):x}{secrets.token_hex(4)}"
        fields: dict[str, Any] = {"chat_id": chat_id, "client_id": client, "queue": asked.queue,
                                  "priority": asked.priority or 0}
        if asked.text is not None:
            fields.update(text=asked.text, message_id=f"{chat_id}:first")
        status, answer = await _decided(topics.chat_events, chat_id, "chat_created", **fields)
        return self.ok({"chat_id": chat_id, "client_id": client, "queue": asked.queue, **answer},
                       status=201 if status == 200 else status)

    async def get(self, request: web.Request) -> web.Response:
        role, user = identify(request, self.roles)
        desk, now = await _desk(request), time.time()
        mine = [chat_view(c, now) for c in sorted(desk.chats.values(), key=lambda c: c.created_at)
                if may_see(c, role, user) and not (role == "operator" and c.state is ChatState.QUEUED)]
        return self.ok({"chats": mine})


@app.page(PREFIX + "/chats/{chat_id}/messages")
class ChatMessages(ApiView):
    roles = EVERYONE

    async def get(self, request: web.Request, chat_id: str) -> web.Response:
        role, user = identify(request, self.roles)
        asked = query(request, AfterQuery)
        found, messages = await _chat(request, identifier(chat_id, "chat_id"), role, user, asked.after, asked.limit)
        last = messages[-1].seq if messages else asked.after
        return self.ok({"chat": chat_view(found, time.time()), "messages": [message_payload(m) for m in messages],
                        "more": last < found.last_seq})


@app.page(PREFIX + "/chats/queue")
class QueueView(ApiView):
    roles = QUEUE_READERS

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(_queue_answer(await _desk(request), time.time(), detailed=False))


@app.page(PREFIX + "/chats/operators")
class OperatorsView(ApiView):
    roles = QUEUE_READERS

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(_operators_answer(await _desk(request), detailed=False))


@app.page(PREFIX + "/chats/stats")
class StatsView(ApiView):
    roles = QUEUE_READERS

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(_stats_answer(await _desk(request), time.time()))


@app.page(PREFIX + "/admin/queue")
class AdminQueue(ApiView):
    roles = ADMINS

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(_queue_answer(await _desk(request), time.time(), detailed=True))


@app.page(PREFIX + "/admin/operators")
class AdminOperators(ApiView):
    roles = ADMINS

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(_operators_answer(await _desk(request), detailed=True))


@app.page(PREFIX + "/admin/stats")
class AdminStats(ApiView):
    roles = ADMINS

    async def get(self, request: web.Request) -> web.Response:
        answer = _stats_answer(await _desk(request), time.time())
        answer["sockets_here"] = len(board.connections)
        return self.ok(answer)


class TransferBody(Body):
    chat_id: Identifier
    target_operator_id: Optional[Identifier] = None  # None: back to the front of the queue
    reason: Reason = ""


class LawyerBody(Body):
    chat_id: Identifier
    lawyer_id: Identifier
    client_id: Optional[Identifier] = None  # checked against the chat's client, if given


class OperatorStatusBody(Body):
    operator_id: Identifier
    status: OperatorStatus
    capacity: Optional[Capacity] = None
    lawyer: StrictBool = False


class CloseBody(Body):
    chat_id: Identifier
    reason: Reason = ""


class PriorityBody(Body):
    chat_id: Identifier
    priority: Priority


class AdminAction(ApiView):
    roles = ADMINS

    async def act(self, request: web.Request, key: str, kind: str, **fields: Any) -> web.Response:
        who = identify(request, self.roles)
        role, user = who
        _limited(who.bucket)
        status, answer = await _decided(topics.admin_actions, key, kind, by_id=user, by_role=role, **fields)
        return self.ok(answer, status=status)


@app.page(PREFIX + "/admin/transfer-chat")
class AdminTransfer(AdminAction):
    async def post(self, request: web.Request) -> web.Response:
        asked = await body(request, TransferBody)
        return await self.act(request, asked.chat_id, "transfer_chat", chat_id=asked.chat_id,
                              target_operator_id=asked.target_operator_id, reason=asked.reason)


@app.page(PREFIX + "/admin/assign-lawyer")
class AdminAssignLawyer(AdminAction):
    async def post(self, request: web.Request) -> web.Response:
        asked = await body(request, LawyerBody)
        return await self.act(request, asked.chat_id, "assign_lawyer", chat_id=asked.chat_id, lawyer_id=asked.lawyer_id)


@app.page(PREFIX + "/admin/update-operator-status")
class AdminOperatorStatus(AdminAction):
    async def post(self, request: web.Request) -> web.Response:
        asked = await body(request, OperatorStatusBody)
        return await self.act(request, asked.operator_id, "update_operator_status", operator_id=asked.operator_id,
                              status=asked.status, capacity=asked.capacity, lawyer=asked.lawyer)


@app.page(PREFIX + "/admin/close-chat")
class AdminClose(AdminAction):
    async def post(self, request: web.Request) -> web.Response:
        asked = await body(request, CloseBody)
        return await self.act(request, asked.chat_id, "close_chat", chat_id=asked.chat_id, reason=asked.reason)


@app.page(PREFIX + "/admin/update-queue-priority")
class AdminPriority(AdminAction):
    async def post(self, request: web.Request) -> web.Response:
        asked = await body(request, PriorityBody)
        return await self.act(request, asked.chat_id, "update_queue_priority", chat_id=asked.chat_id,
                              priority=asked.priority)


# --- the WebSocket -----------------------------------------------------------------------------


class Frame(BaseModel):
    """What a socket sends: {"type", "payload", "request_id"?}."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["message", "accept_chat", "transfer_chat", "assign_lawyer", "close_chat", "set_status", "ping"]
    payload: dict[str, Any] = Field(default_factory=dict)
    request_id: Optional[Identifier] = None


class MessagePayload(Body):
    text: Text
    chat_id: Optional[Identifier] = None
    client_message_id: Optional[Identifier] = None  # the sender's id: a retry is kept once


class AcceptPayload(Body):
    chat_id: Identifier
    client_id: Optional[Identifier] = None


class TransferPayload(Body):
    chat_id: Identifier
    target_operator_id: Optional[Identifier] = None
    reason: Reason = ""


class LawyerPayload(Body):
    lawyer_id: Identifier
    chat_id: Optional[Identifier] = None
    client_id: Optional[Identifier] = None


class ClosePayload(Body):
    chat_id: Optional[Identifier] = None
    reason: Reason = ""


class StatusPayload(Body):
    status: OperatorStatus
    capacity: Optional[Capacity] = None


FRAME_ROLES = {"message": EVERYONE, "accept_chat": ("operator",), "transfer_chat": ("operator", "admin"),
               "assign_lawyer": ("operator", "admin"), "close_chat": EVERYONE, "set_status": ("operator", "lawyer"),
               "ping": EVERYONE}


class SocketQuery(Query):
    token: Optional[str] = None
    chat_id: Optional[Identifier] = None
    since: Optional[int] = Field(None, ge=0)  # the last message id the client has of `chat_id`


@app.page(PREFIX + "/ws/chat")
class ChatSocket(ApiView):
    roles = EVERYONE
    public = True  # the token may come in the query string (browsers cannot set headers on a WebSocket)

    async def get(self, request: web.Request) -> Any:
        asked = query(request, SocketQuery)
        who = identify(request, self.roles, token=asked.token)
        role, user = who
        if asked.chat_id is not None:  # theirs to see, before anything is said on it
            await _chat(request, asked.chat_id, role, user, 0, 1)
        elif role == "client" and asked.since is not None:
            raise ApiError(400, "bad_request", "since needs a chat_id")
        socket = opened_socket(aioweb.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_WIRE_FRAME))
        if not socket.can_prepare(cast(Any, request)).ok:
            raise ApiError(400, "bad_request", "this is a WebSocket: send the upgrade headers")
        await socket.prepare(cast(Any, request))
        conn = Connection(role, user, asked.chat_id, who.bucket)
        board.connect(conn)  # first: whatever is said from now on reaches it
        sender: Optional[asyncio.Future[None]] = None
        try:
            await asyncio.wait_for(board.follower.caught_up.wait(), 30)
            await _send(socket, _frame("connected", {"user_id": user, "chat_id": asked.chat_id, "role": role}))
            if role in ("operator", "lawyer"):
                await _presence("operator_connected", conn)
            try:
                await _greet(socket, request, conn, asked)
            except ApiError as exc:  # the desk cannot be read now (moving, its owner away): say so; it reconnects
                await _send(socket, _frame("error", {"code": exc.code, "message": exc.message}))
                await socket.close(code=aiohttp.WSCloseCode.TRY_AGAIN_LATER, message=b"try again")
                return socket
            sender = asyncio.ensure_future(_send_notices(socket, conn))
            async for message in socket:
                if message.type == aiohttp.WSMsgType.TEXT and len(message.data.encode()) > MAX_FRAME:
                    counters.refused.labels("too_large").inc()
                    await _send(socket, _frame("error", {"code": "too_large",
                                                         "message": f"a frame is at most {MAX_FRAME} bytes"}))
                elif message.type == aiohttp.WSMsgType.TEXT:
                    await _received(socket, conn, message.data)
                elif message.type == aiohttp.WSMsgType.ERROR:
                    break
                else:
                    await _send(socket, _frame("error", {"code": "bad_request", "message": "send JSON text frames"}))
        finally:
            board.disconnect(conn)
            if sender is not None:
                sender.cancel()
            if role in ("operator", "lawyer"):
                await _presence("operator_disconnected", conn)
        return socket


def _frame(kind: str, payload: dict[str, Any], request_id: Optional[str] = None) -> bytes:
    frame: dict[str, Any] = {"type": kind, "payload": payload}
    if request_id is not None:
        frame["request_id"] = request_id
    return orjson.dumps(frame)


async def _send(socket: aioweb.WebSocketResponse, data: bytes) -> None:
    await socket.send_str(data.decode())


async def _greet(socket: aioweb.WebSocketResponse, request: web.Request, conn: Connection,
                 asked: SocketQuery) -> None:
    """What a socket should know at once: the queue and their chats (staff), and the
    messages of its chat after `since`."""
    if conn.role in ("operator", "admin", "lawyer") and asked.chat_id is None:
        desk = await _patiently(partial(_desk, request))
        if conn.role != "lawyer":
            for c in waiting(desk):
                await _send(socket, _frame("new_chat_available", available_payload(c)))
        for c in sorted(desk.chats.values(), key=lambda c: c.created_at):
            if c.state is ChatState.ASSIGNED and (c.operator_id == conn.user or conn.role == "admin") and may_see(
                    c, conn.role, conn.user):
                await _send(socket, _frame("chat_assigned", assigned_payload(c, "connected")))
    if asked.chat_id is not None and asked.since is not None:
        after = asked.since
        while True:
            found, messages = await _patiently(partial(_chat, request, asked.chat_id, conn.role, conn.user, after))
            for posted in messages:
                await _send(socket, _frame("message", message_payload(posted)))
                after = posted.seq
            conn.sent[asked.chat_id] = max(conn.sent.get(asked.chat_id, 0), after)
            if not messages or after >= found.last_seq:
                return


async def _patiently(read: Callable[[], Awaitable[T]], patience_s: float = GREETING_PATIENCE_S) -> T:
    """`read()`, asked again after each `503 recovering`'s Retry-After for up to `patience_s`: a
    socket's greeting waits out the desk's partition moving rather than greeting with nothing."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return await read()
        except Recovering as exc:
            wait = exc.retry_after_s or 1
            if time.monotonic() + wait > deadline:
                raise
            await asyncio.sleep(wait)


async def _send_notices(socket: aioweb.WebSocketResponse, conn: Connection) -> None:
    while True:
        notice = await conn.queue.get()
        if notice is None:
            await socket.close(code=aiohttp.WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
            return
        if conn.fresh(notice):
            await _send(socket, _frame(notice["type"], notice["payload"], notice.get("request_id")))


async def _received(socket: aioweb.WebSocketResponse, conn: Connection, data: str) -> None:
    request_id: Optional[str] = None
    try:
        try:
            frame = Frame.model_validate(orjson.loads(data))
        except orjson.JSONDecodeError:
            raise ApiError(400, "bad_request", "not JSON") from None
        request_id = frame.request_id
        if conn.role not in FRAME_ROLES[frame.type]:
            raise ApiError(403, "forbidden", f"a {conn.role} may not send {frame.type}")
        if frame.type == "ping":
            await _send(socket, _frame("pong", {}, request_id))
            return
        _limited(conn.bucket)
        await _act(conn, frame, request_id or uuid.uuid4().hex)
    except ValidationError as exc:
        counters.refused.labels("invalid").inc()
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        await _send(socket, _frame("error", {"code": "bad_request", "message": f"{where}: {first['msg']}"[:300]},
                                   request_id))
    except ApiError as exc:
        await _send(socket, _frame("error", {"code": exc.code, "message": exc.message}, request_id))


def _chat_of(conn: Connection, chat_id: Optional[str]) -> str:
    chosen = chat_id or conn.chat_id
    if chosen is None:
        raise ApiError(400, "bad_request", "payload.chat_id: needed (this socket is of no chat)")
    if conn.role in ("client", "lawyer") and conn.chat_id is not None and chosen != conn.chat_id:
        raise ApiError(403, "forbidden", f"this socket is of chat {conn.chat_id}")
    return chosen


async def _act(conn: Connection, frame: Frame, request_id: str) -> None:
    role, user = conn.role, conn.user
    if frame.type == "message":
        m = MessagePayload.model_validate(frame.payload)
        chat_id = _chat_of(conn, m.chat_id)
        await _command(topics.chat_events, chat_id, "message_sent", chat_id=chat_id, sender_id=user,
                       sender_role=_actor(role), text=m.text, message_id=m.client_message_id or uuid.uuid4().hex,
                       request_id=request_id)
    elif frame.type == "accept_chat":
        a = AcceptPayload.model_validate(frame.payload)
        await _command(topics.support_queue, a.chat_id, "operator_accept_chat", chat_id=a.chat_id, operator_id=user,
                       request_id=request_id)
    elif frame.type == "transfer_chat":
        t = TransferPayload.model_validate(frame.payload)
        topic = topics.admin_actions if role == "admin" else topics.support_queue
        await _command(topic, t.chat_id, "transfer_chat", chat_id=t.chat_id, by_id=user, by_role=_actor(role),
                       target_operator_id=t.target_operator_id, reason=t.reason, request_id=request_id)
    elif frame.type == "assign_lawyer":
        lawyer = LawyerPayload.model_validate(frame.payload)
        chat_id = _chat_of(conn, lawyer.chat_id)
        kind, topic = ("assign_lawyer", topics.admin_actions) if role == "admin" else ("lawyer_assigned",
                                                                                       topics.support_queue)
        await _command(topic, chat_id, kind, chat_id=chat_id, by_id=user, by_role=_actor(role),
                       lawyer_id=lawyer.lawyer_id, request_id=request_id)
    elif frame.type == "close_chat":
        c = ClosePayload.model_validate(frame.payload)
        chat_id = _chat_of(conn, c.chat_id)
        await _command(topics.chat_events, chat_id, "chat_closed", chat_id=chat_id, by_id=user, by_role=_actor(role),
                       reason=c.reason, request_id=request_id)
    elif frame.type == "set_status":
        s = StatusPayload.model_validate(frame.payload)
        await _command(topics.operator_events, user, "operator_status", operator_id=user, lawyer=role == "lawyer",
                       status=s.status, capacity=s.capacity, by_id=user, by_role=_actor(role), request_id=request_id)


# --- the pages ---------------------------------------------------------------------------------


@app.page("/chat/operator")
class OperatorConsole(ApiView):
    public = True

    async def get(self, request: web.Request) -> web.Response:
        return self.html((STATIC / "chat-operator.html").read_text())


@app.page("/chat/client")
class ClientPage(ApiView):
    public = True

    async def get(self, request: web.Request) -> web.Response:
        return self.html((STATIC / "chat-client.html").read_text())
