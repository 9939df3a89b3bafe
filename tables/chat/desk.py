"""The support desk's rules (seed 004): chats, the queue, operators and lawyers.

Every decision of the chat is taken here, by one writer: the desk is one piece of state in
one partition (agents/chat.py), so two operators accepting one chat are two commands in
one order, and the second finds it taken (`already_assigned`). The rules are pure:
`apply_command(desk, command, archived, policy) -> DeskOutcome`, time coming in as the
command's `at`.

    created --> queued --accept / auto--> assigned --close--> closed
                  ^                          |
                  +--- transfer to queue, ---+---transfer--> assigned (another operator)
                       operator away         +---operator away--> another operator, or queued

A chat keeps its place in the queue (`queued_at`) when it comes back: it goes to the
front of its priority. A lawyer chat is a separate chat between the client and a lawyer,
assigned from the start, open until one of them (or an admin) closes it.

Notices say who hears what (`Notice.to`: "client:<id>", "operator:<id>", "lawyer:<id>",
"admin:<id>", "role:operator", "role:admin"); the edges deliver them to the WebSockets of
those users on every worker (web/chat.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Callable, Iterable, Optional

from tables.chat.commands import (
    AcceptChat,
    Actor,
    AssignLawyer,
    ChatCommand,
    ChatCreated,
    CloseChat,
    DeskTick,
    MessageSent,
    OperatorConnected,
    OperatorDisconnected,
    OperatorSeen,
    OperatorStatus,
    SetOperatorStatus,
    SetPriority,
    TransferChat,
)

__all__ = [
    "Chat", "ChatKind", "ChatState", "Desk", "DeskOutcome", "Notice", "Operator", "Policy", "Posted", "QueueStats",
    "apply_command", "assigned_payload", "available_payload", "iso_time", "lawyer_chat_id", "may_see",
    "message_payload", "operator_view", "queue_order", "queue_stats", "waiting",
]

ROLE_OPERATORS, ROLE_ADMINS = "role:operator", "role:admin"
QUEUE_WATCHERS = (ROLE_OPERATORS, ROLE_ADMINS)


class ChatKind(str, Enum):
    SUPPORT = "support"
    LAWYER = "lawyer"


class ChatState(str, Enum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Chat:
    chat_id: str
    client_id: str
    kind: ChatKind
    queue: str
    priority: int
    state: ChatState
    created_at: float
    queued_at: float  # its place in the queue, kept when it comes back (the front of its priority)
    operator_id: Optional[str] = None  # the operator (support) or the lawyer (lawyer chat)
    assigned_at: Optional[float] = None
    closed_at: Optional[float] = None
    last_seq: int = 0  # its messages are numbered 1, 2, ... (`message_id` to clients)
    parent_id: Optional[str] = None  # a lawyer chat: the support chat it was assigned from
    recent: tuple[str, ...] = ()  # the edge ids of its last messages: one sent twice is kept once

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Chat":
        return cls(**{**data, "kind": ChatKind(data["kind"]), "state": ChatState(data["state"]),
                      "recent": tuple(data.get("recent", ()))})

    def address_of(self, person: str) -> str:
        return f"{'lawyer' if self.kind is ChatKind.LAWYER else 'operator'}:{person}"

    @property
    def participants(self) -> tuple[str, ...]:
        client = f"client:{self.client_id}"
        return (client,) if self.operator_id is None else (client, self.address_of(self.operator_id))


@dataclass(frozen=True, slots=True)
class Operator:
    operator_id: str
    lawyer: bool
    status: OperatorStatus
    capacity: int
    chats: tuple[str, ...] = ()  # open chats assigned to them
    connections: dict[str, float] = field(default_factory=dict)  # connection -> last heard (never mutated)
    away_since: Optional[float] = None  # every connection gone since then
    last_assigned_at: float = 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Operator":
        return cls(**{**data, "status": OperatorStatus(data["status"]), "chats": tuple(data["chats"])})

    @property
    def address(self) -> str:
        return f"{'lawyer' if self.lawyer else 'operator'}:{self.operator_id}"


@dataclass(frozen=True, slots=True)
class QueueStats:
    created: int = 0
    accepted: int = 0  # assignments out of the queue (accepted, automatic, or by an admin)
    accept_wait_s: float = 0.0  # their waits, summed
    closed: int = 0
    transferred: int = 0
    requeued: int = 0


@dataclass(frozen=True)
class Desk:
    chats: dict[str, Chat] = field(default_factory=dict)  # open chats (never mutated: rules copy)
    operators: dict[str, Operator] = field(default_factory=dict)
    stats: dict[str, QueueStats] = field(default_factory=dict)
    clock: float = 0.0  # the latest `at` applied

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Desk":
        return cls({k: Chat.from_json(v) for k, v in data["chats"].items()},
                   {k: Operator.from_json(v) for k, v in data["operators"].items()},
                   {k: QueueStats(**v) for k, v in data["stats"].items()}, data["clock"])


@dataclass(frozen=True)
class Policy:
    auto_queues: frozenset[str] = frozenset()  # "*": every queue
    capacity: int = 3
    grace_s: float = 60.0
    lease_s: float = 35.0
    recent_ids: int = 64

    def auto(self, queue: str) -> bool:
        return queue in self.auto_queues or "*" in self.auto_queues


@dataclass(frozen=True)
class Notice:
    to: tuple[str, ...]
    type: str
    payload: dict[str, Any]
    request_id: Optional[str] = None


@dataclass(frozen=True, slots=True)
class Posted:
    chat_id: str
    seq: int
    message_id: str
    sender_id: str
    sender_role: str
    text: str
    at: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Posted":
        return cls(**data)


@dataclass(frozen=True)
class DeskOutcome:
    desk: Desk
    notices: tuple[Notice, ...] = ()
    posted: tuple[Posted, ...] = ()
    closed: tuple[Chat, ...] = ()  # chats that left the desk (kept in the archive)
    changed: frozenset[str] = frozenset()  # chats whose assignment record changed


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lawyer_chat_id(support_chat_id: str, lawyer_id: str) -> str:
    return f"{support_chat_id}~{lawyer_id}"[:128]


def queue_order(chat: Chat) -> tuple[int, float, str]:
    """Higher priority first, then the longest waiting."""
    return (-chat.priority, chat.queued_at, chat.chat_id)


def waiting(desk: Desk, queue: Optional[str] = None) -> list[Chat]:
    chats = (c for c in desk.chats.values() if c.state is ChatState.QUEUED and (queue is None or c.queue == queue))
    return sorted(chats, key=queue_order)


def may_see(chat: Chat, role: str, user: str) -> bool:
    """Whether `user` (of `role`) may read `chat`: its client, its operator or lawyer, admins."""
    if role in ("admin", "service"):
        return True
    if role == "client":
        return chat.client_id == user
    if role == "lawyer":
        return chat.kind is ChatKind.LAWYER and chat.operator_id == user
    if role == "operator":
        return chat.kind is ChatKind.SUPPORT and (chat.operator_id == user or chat.state is ChatState.QUEUED)
    return False


def queue_stats(desk: Desk, now: float) -> dict[str, dict[str, Any]]:
    """Per queue: waiting, longest wait, assigned now, and the counts since the start."""
    queues = set(desk.stats) | {c.queue for c in desk.chats.values()}
    answer: dict[str, dict[str, Any]] = {}
    for queue in sorted(queues):
        counts = desk.stats.get(queue, QueueStats())
        open_chats = [c for c in desk.chats.values() if c.queue == queue and c.kind is ChatKind.SUPPORT]
        queued = [c for c in open_chats if c.state is ChatState.QUEUED]
        answer[queue] = {
            "queue": queue,
            "waiting": len(queued),
            "longest_wait_s": round(max((now - c.queued_at for c in queued), default=0.0), 3),
            "assigned": sum(1 for c in open_chats if c.state is ChatState.ASSIGNED),
            "created": counts.created,
            "accepted": counts.accepted,
            "closed": counts.closed,
            "transferred": counts.transferred,
            "requeued": counts.requeued,
            "avg_time_to_accept_s": round(counts.accept_wait_s / counts.accepted, 3) if counts.accepted else None,
        }
    return answer


# --- the rules ----------------------------------------------------------------------------------


class _Step:
    """One command applied: working copies of the desk's maps, and what it says and posts."""

    def __init__(self, desk: Desk, policy: Policy, at: float) -> None:
        self.chats = dict(desk.chats)
        self.operators = dict(desk.operators)
        self.stats = dict(desk.stats)
        self.clock = max(desk.clock, at)
        self.policy = policy
        self.at = at
        self.notices: list[Notice] = []
        self.posted: list[Posted] = []
        self.closed: list[Chat] = []
        self.changed: set[str] = set()

    def outcome(self) -> DeskOutcome:
        desk = Desk(self.chats, self.operators, self.stats, self.clock)
        return DeskOutcome(desk, tuple(self.notices), tuple(self.posted), tuple(self.closed), frozenset(self.changed))

    # -- saying things

    def say(self, to: Iterable[str], kind: str, payload: dict[str, Any], request_id: Optional[str] = None) -> None:
        self.notices.append(Notice(tuple(dict.fromkeys(to)), kind, payload, request_id))

    def refuse(self, to: str, code: str, message: str, request_id: Optional[str], chat_id: Optional[str] = None,
               **extra: Any) -> None:
        payload: dict[str, Any] = {"code": code, "message": message, "chat_id": chat_id, **extra}
        self.say((to,), "error", payload, request_id)

    def missing(self, chat_id: str, archived: Optional[Chat], to: str, request_id: Optional[str]) -> None:
        if archived is not None:
            self.refuse(to, "chat_closed", f"chat {chat_id} is closed", request_id, chat_id)
        else:
            self.refuse(to, "unknown_chat", f"no chat {chat_id}", request_id, chat_id)

    # -- state

    def count(self, queue: str, **deltas: float) -> None:
        before = self.stats.get(queue, QueueStats())
        self.stats[queue] = replace(before, **{k: getattr(before, k) + v for k, v in deltas.items()})

    def operator(self, operator_id: str, lawyer: bool) -> Operator:
        found = self.operators.get(operator_id)
        return found if found is not None else Operator(operator_id, lawyer, OperatorStatus.ONLINE, self.policy.capacity)

    def set_chat(self, chat: Chat) -> None:
        self.chats[chat.chat_id] = chat
        self.changed.add(chat.chat_id)

    def take_from(self, operator_id: Optional[str], chat_id: str) -> None:
        op = self.operators.get(operator_id) if operator_id is not None else None
        if op is not None and chat_id in op.chats:
            self.operators[op.operator_id] = replace(op, chats=tuple(c for c in op.chats if c != chat_id))

    def give_to(self, op: Operator, chat_id: str) -> None:
        chats = op.chats if chat_id in op.chats else (*op.chats, chat_id)
        self.operators[op.operator_id] = replace(op, chats=chats, last_assigned_at=self.at)

    def eligible(self, exclude: Optional[str] = None) -> Optional[Operator]:
        """The fairest operator to take a chat now: online, connected, under capacity, with
        the fewest open chats, then the longest since their last one."""
        best: Optional[Operator] = None
        for op in self.operators.values():
            if (op.lawyer or op.operator_id == exclude or op.status is not OperatorStatus.ONLINE
                    or not op.connections or len(op.chats) >= op.capacity):
                continue
            if best is None or (len(op.chats), op.last_assigned_at, op.operator_id) < (
                    len(best.chats), best.last_assigned_at, best.operator_id):
                best = op
        return best

    def assign(self, chat: Chat, op: Operator, how: str, request_id: Optional[str] = None,
               reason: str = "") -> None:
        """`chat` (queued, or another's) goes to `op`."""
        was = chat.operator_id
        if chat.state is ChatState.QUEUED:
            self.count(chat.queue, accepted=1, accept_wait_s=max(0.0, self.at - chat.queued_at))
            self.say(QUEUE_WATCHERS, "chat_taken", {"chat_id": chat.chat_id, "operator_id": op.operator_id})
        else:
            self.take_from(was, chat.chat_id)
            self.count(chat.queue, transferred=1)
        assigned = replace(chat, state=ChatState.ASSIGNED, operator_id=op.operator_id, assigned_at=self.at)
        self.set_chat(assigned)
        self.give_to(self.operators.get(op.operator_id, op), chat.chat_id)
        payload = assigned_payload(assigned, how)
        if was is not None and was != op.operator_id:
            payload["from_operator_id"] = was
            if reason:
                payload["reason"] = reason
            self.say((chat.address_of(was), ROLE_ADMINS), "chat_transferred",
                     {"chat_id": chat.chat_id, "from_operator_id": was, "to_operator_id": op.operator_id,
                      "reason": reason})
        self.say((op.address, f"client:{chat.client_id}"), "chat_assigned", payload, request_id)

    def requeue(self, chat: Chat, reason: str) -> None:
        """Back to the queue, at the front of its priority (it keeps its `queued_at`)."""
        was = chat.operator_id
        self.take_from(was, chat.chat_id)
        queued = replace(chat, state=ChatState.QUEUED, operator_id=None, assigned_at=None)
        self.set_chat(queued)
        self.count(chat.queue, requeued=1)
        self.say((f"client:{chat.client_id}", *((chat.address_of(was),) if was else ()), ROLE_ADMINS),
                 "chat_transferred", {"chat_id": chat.chat_id, "from_operator_id": was, "to_operator_id": None,
                                      "reason": reason})
        self.announce(queued)

    def announce(self, chat: Chat) -> None:
        self.say(QUEUE_WATCHERS, "new_chat_available", available_payload(chat))

    def hand_on(self, op: Operator, reason: str) -> None:
        """`op` went away: each of their support chats to the fairest other operator, or to
        the front of the queue."""
        for chat_id in op.chats:
            chat = self.chats.get(chat_id)
            if chat is None or chat.kind is not ChatKind.SUPPORT:
                continue
            target = self.eligible(exclude=op.operator_id)
            if target is not None:
                self.assign(chat, target, "reassigned", reason=reason)
            else:
                self.requeue(chat, reason)

    def auto_assign(self) -> None:
        if not self.policy.auto_queues:
            return
        for chat in waiting(Desk(self.chats)):
            if not self.policy.auto(chat.queue):
                continue
            target = self.eligible()
            if target is None:
                return
            self.assign(chat, target, "auto")

    def post(self, chat: Chat, message_id: str, sender_id: str, sender_role: str, text: str,
             request_id: Optional[str]) -> Chat:
        if message_id in chat.recent:
            return chat  # sent twice (a retry, or a replay): kept once
        seq = chat.last_seq + 1
        recent = (*chat.recent, message_id)[-self.policy.recent_ids:]
        posted = Posted(chat.chat_id, seq, message_id, sender_id, sender_role, text, self.at)
        self.posted.append(posted)
        after = replace(chat, last_seq=seq, recent=recent)
        self.chats[chat.chat_id] = after
        self.say(chat.participants, "message", message_payload(posted), request_id)
        return after


def assigned_payload(chat: Chat, how: str) -> dict[str, Any]:
    """What `chat_assigned` says of an assigned chat (`how`: accepted, auto, transferred, ...)."""
    return {"chat_id": chat.chat_id, "client_id": chat.client_id,
            "role": "lawyer" if chat.kind is ChatKind.LAWYER else "operator", "operator_id": chat.operator_id,
            "queue": chat.queue, "how": how}


def available_payload(chat: Chat) -> dict[str, Any]:
    """What `new_chat_available` says of a queued chat."""
    return {"chat_id": chat.chat_id, "client_id": chat.client_id, "queue": chat.queue, "priority": chat.priority,
            "waiting_since": iso_time(chat.queued_at)}


def message_payload(posted: Posted) -> dict[str, Any]:
    return {"chat_id": posted.chat_id, "message_id": posted.seq, "client_message_id": posted.message_id,
            "sender_id": posted.sender_id, "sender_role": posted.sender_role, "message": posted.text,
            "timestamp": iso_time(posted.at)}


def _actor(role: Actor, user: str) -> str:
    return f"{'admin' if role is Actor.SERVICE else role.value}:{user}"


def _is_admin(role: Actor) -> bool:
    return role in (Actor.ADMIN, Actor.SERVICE)


def _runs(chat: Chat, role: Actor, user: str) -> bool:
    """Whether `user` may act on `chat` as one of its staff: its operator (or lawyer), or an admin."""
    if _is_admin(role):
        return True
    staff = Actor.LAWYER if chat.kind is ChatKind.LAWYER else Actor.OPERATOR
    return role is staff and chat.operator_id == user


def _created(step: _Step, c: ChatCreated, archived: Optional[Chat]) -> None:
    known = step.chats.get(c.chat_id) or archived
    client = f"client:{c.client_id}"
    if known is not None:
        if known.client_id != c.client_id:
            step.refuse(client, "chat_exists", f"chat {c.chat_id} exists", c.request_id, c.chat_id)
        else:  # sent twice: the same answer again
            step.say((client,), "chat_created", {"chat_id": c.chat_id, "queue": known.queue,
                                                 "state": known.state.value}, c.request_id)
        return
    chat = Chat(c.chat_id, c.client_id, ChatKind.SUPPORT, c.queue, c.priority, ChatState.QUEUED, c.at, c.at)
    step.set_chat(chat)
    step.count(c.queue, created=1)
    step.say((client,), "chat_created", {"chat_id": c.chat_id, "queue": c.queue, "state": "queued"}, c.request_id)
    if c.text is not None:
        step.post(chat, c.message_id or f"{c.chat_id}:first", c.client_id, "client", c.text, None)
    step.announce(chat)


def _message(step: _Step, m: MessageSent, archived: Optional[Chat]) -> None:
    sender = _actor(m.sender_role, m.sender_id)
    chat = step.chats.get(m.chat_id)
    if chat is None:
        step.missing(m.chat_id, archived, sender, m.request_id)
        return
    if not (_is_admin(m.sender_role) or (m.sender_role is Actor.CLIENT and chat.client_id == m.sender_id)
            or _runs(chat, m.sender_role, m.sender_id)):
        step.refuse(sender, "not_participant", f"you are not in chat {m.chat_id}", m.request_id, m.chat_id)
        return
    step.post(chat, m.message_id, m.sender_id, m.sender_role.value, m.text, m.request_id)


def _accept(step: _Step, a: AcceptChat, archived: Optional[Chat]) -> None:
    who = f"operator:{a.operator_id}"
    chat = step.chats.get(a.chat_id)
    if chat is None:
        step.missing(a.chat_id, archived, who, a.request_id)
        return
    if chat.kind is not ChatKind.SUPPORT:
        step.refuse(who, "not_allowed", f"chat {a.chat_id} is a lawyer's chat", a.request_id, a.chat_id)
        return
    if chat.state is ChatState.ASSIGNED:
        if chat.operator_id == a.operator_id:  # accepted twice: the same answer again
            step.say((who,), "chat_assigned", assigned_payload(chat, "accepted"), a.request_id)
        else:
            step.refuse(who, "already_assigned", f"chat {a.chat_id} is taken", a.request_id, a.chat_id,
                        operator_id=chat.operator_id)
        return
    op = step.operator(a.operator_id, lawyer=False)
    if op.lawyer:
        step.refuse(who, "not_allowed", "a lawyer takes no queue chats", a.request_id, a.chat_id)
    elif op.status is OperatorStatus.OFFLINE:
        step.refuse(who, "operator_offline", "you are offline: go online to take chats", a.request_id, a.chat_id)
    elif len(op.chats) >= op.capacity:
        step.refuse(who, "at_capacity", f"you have {len(op.chats)} open chats, your capacity", a.request_id,
                    a.chat_id)
    else:
        step.operators[op.operator_id] = op
        step.assign(chat, op, "accepted", a.request_id)


def _transfer(step: _Step, t: TransferChat, archived: Optional[Chat]) -> None:
    who = _actor(t.by_role, t.by_id)
    chat = step.chats.get(t.chat_id)
    if chat is None:
        step.missing(t.chat_id, archived, who, t.request_id)
        return
    if chat.kind is not ChatKind.SUPPORT or not _runs(chat, t.by_role, t.by_id):
        step.refuse(who, "not_allowed", f"you may not transfer chat {t.chat_id}", t.request_id, t.chat_id)
        return
    if t.target_operator_id is None:
        if chat.state is ChatState.QUEUED:
            step.refuse(who, "not_assigned", f"chat {t.chat_id} is in the queue already", t.request_id, t.chat_id)
        else:
            step.requeue(chat, t.reason or "transferred to the queue")
            step.say((who,), "transfer_done", {"chat_id": chat.chat_id, "to_operator_id": None}, t.request_id)
        return
    target = step.operators.get(t.target_operator_id)
    forced = _is_admin(t.by_role)  # an admin may hand a chat to a busy or full operator
    if target is None or target.lawyer or target.status is OperatorStatus.OFFLINE or not target.connections or (
            not forced and (target.status is not OperatorStatus.ONLINE or len(target.chats) >= target.capacity)):
        step.refuse(who, "target_unavailable", f"operator {t.target_operator_id} cannot take chats now",
                    t.request_id, t.chat_id)
        return
    if chat.operator_id == target.operator_id:
        step.say((who,), "transfer_done", {"chat_id": chat.chat_id, "to_operator_id": target.operator_id},
                 t.request_id)
        return
    step.assign(chat, target, "transferred", reason=t.reason)
    step.say((who,), "transfer_done", {"chat_id": chat.chat_id, "to_operator_id": target.operator_id}, t.request_id)


def _lawyer(step: _Step, a: AssignLawyer, archived: Optional[Chat]) -> None:
    who = _actor(a.by_role, a.by_id)
    chat = step.chats.get(a.chat_id)
    if chat is None:
        step.missing(a.chat_id, archived, who, a.request_id)
        return
    if chat.kind is not ChatKind.SUPPORT or not _runs(chat, a.by_role, a.by_id):
        step.refuse(who, "not_allowed", f"you may not assign a lawyer to chat {a.chat_id}", a.request_id, a.chat_id)
        return
    lawyer = step.operator(a.lawyer_id, lawyer=True)
    if not lawyer.lawyer:
        step.refuse(who, "not_a_lawyer", f"{a.lawyer_id} is a support operator", a.request_id, a.chat_id)
        return
    chat_id = lawyer_chat_id(chat.chat_id, a.lawyer_id)
    payload = {"chat_id": chat_id, "support_chat_id": chat.chat_id, "client_id": chat.client_id,
               "lawyer_id": a.lawyer_id}
    to = (f"client:{chat.client_id}", lawyer.address, who)
    if step.chats.get(chat_id) is None:
        opened = Chat(chat_id, chat.client_id, ChatKind.LAWYER, chat.queue, chat.priority, ChatState.ASSIGNED, a.at,
                      a.at, operator_id=a.lawyer_id, assigned_at=a.at, parent_id=chat.chat_id)
        step.set_chat(opened)
        step.give_to(lawyer, chat_id)
        step.say((lawyer.address,), "chat_assigned", assigned_payload(opened, "lawyer"))
    step.say(to, "lawyer_assigned", payload, a.request_id)


def _close(step: _Step, c: CloseChat, archived: Optional[Chat]) -> None:
    who = _actor(c.by_role, c.by_id)
    chat = step.chats.get(c.chat_id)
    if chat is None:
        if archived is not None:  # closed twice: the same answer again
            step.say((who,), "chat_closed", {"chat_id": c.chat_id, "reason": c.reason, "by_role": c.by_role.value},
                     c.request_id)
        else:
            step.missing(c.chat_id, None, who, c.request_id)
        return
    if not ((c.by_role is Actor.CLIENT and chat.client_id == c.by_id) or _runs(chat, c.by_role, c.by_id)):
        step.refuse(who, "not_participant", f"you are not in chat {c.chat_id}", c.request_id, c.chat_id)
        return
    step.take_from(chat.operator_id, chat.chat_id)
    del step.chats[chat.chat_id]
    step.changed.add(chat.chat_id)
    step.closed.append(replace(chat, state=ChatState.CLOSED, closed_at=c.at))
    if chat.kind is ChatKind.SUPPORT:
        step.count(chat.queue, closed=1)
    watchers = QUEUE_WATCHERS if chat.state is ChatState.QUEUED else (ROLE_ADMINS,)
    step.say((*chat.participants, *watchers, who), "chat_closed",
             {"chat_id": chat.chat_id, "reason": c.reason, "by_role": c.by_role.value}, c.request_id)


def _status(step: _Step, s: SetOperatorStatus) -> None:
    who = _actor(s.by_role, s.by_id)
    if not (_is_admin(s.by_role) or (s.by_id == s.operator_id and s.by_role in (Actor.OPERATOR, Actor.LAWYER))):
        step.refuse(who, "not_allowed", f"you may not set the status of {s.operator_id}", s.request_id)
        return
    before = step.operator(s.operator_id, s.lawyer)
    op = replace(before, status=s.status, capacity=s.capacity or before.capacity)
    step.operators[op.operator_id] = op
    if s.status is OperatorStatus.OFFLINE and op.chats and not op.lawyer:
        step.hand_on(op, "operator offline")
        op = step.operators[op.operator_id]
    step.say((op.address, *QUEUE_WATCHERS, who), "operator_status", operator_view(op), s.request_id)


def _presence(step: _Step, p: OperatorConnected | OperatorSeen | OperatorDisconnected) -> None:
    op = step.operator(p.operator_id, p.lawyer)
    connections = dict(op.connections)
    if isinstance(p, OperatorDisconnected):
        connections.pop(p.connection, None)
    else:
        connections[p.connection] = max(p.at, connections.get(p.connection, p.at))
    away = None if connections else (op.away_since if op.away_since is not None and not op.connections else p.at)
    step.operators[op.operator_id] = replace(op, connections=connections, away_since=away)


def _tick(step: _Step, t: DeskTick) -> None:
    """Connections not heard of within the lease are gone; an operator away past the grace
    period has their chats handed on (after every lease is judged: never to one just gone)."""
    for op in list(step.operators.values()):
        connections = {c: seen for c, seen in op.connections.items() if t.at - seen < step.policy.lease_s}
        away = max(op.connections.values()) if op.connections and not connections else op.away_since
        if connections != op.connections or away != op.away_since:
            step.operators[op.operator_id] = replace(op, connections=connections, away_since=away)
    for operator_id in list(step.operators):
        op = step.operators[operator_id]
        if op.away_since is not None and op.chats and not op.lawyer and t.at - op.away_since >= step.policy.grace_s:
            step.hand_on(op, "operator disconnected")


def _priority(step: _Step, p: SetPriority, archived: Optional[Chat]) -> None:
    who = f"admin:{p.by_id}"
    chat = step.chats.get(p.chat_id)
    if chat is None:
        step.missing(p.chat_id, archived, who, p.request_id)
    elif chat.state is not ChatState.QUEUED:
        step.refuse(who, "not_queued", f"chat {p.chat_id} is not in the queue", p.request_id, p.chat_id)
    else:
        step.set_chat(replace(chat, priority=p.priority))
        step.say((*QUEUE_WATCHERS, who), "queue_updated", {"chat_id": p.chat_id, "priority": p.priority},
                 p.request_id)


def operator_view(op: Operator) -> dict[str, Any]:
    return {"operator_id": op.operator_id, "role": "lawyer" if op.lawyer else "operator", "status": op.status.value,
            "capacity": op.capacity, "open_chats": len(op.chats), "connected": bool(op.connections)}


_RULES: dict[type, Callable[..., None]] = {
    ChatCreated: _created, MessageSent: _message, AcceptChat: _accept, TransferChat: _transfer,
    AssignLawyer: _lawyer, CloseChat: _close, SetPriority: _priority,
}


def apply_command(desk: Desk, command: ChatCommand, archived: Optional[Chat], policy: Policy) -> DeskOutcome:
    """`command` applied to `desk`. `archived` is the closed chat of the command's id, if
    there is one (the desk keeps open chats only)."""
    step = _Step(desk, policy, command.at)
    rule = _RULES.get(type(command))
    if rule is not None:
        rule(step, command, archived)
    elif isinstance(command, SetOperatorStatus):
        _status(step, command)
    elif isinstance(command, (OperatorConnected, OperatorSeen, OperatorDisconnected)):
        _presence(step, command)
    elif isinstance(command, DeskTick):
        _tick(step, command)
    else:  # pragma: no cover - the codec admits only the registered types
        raise TypeError(f"not a chat command: {command!r}")
    step.auto_assign()
    return step.outcome()
