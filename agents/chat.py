"""Support chat stream: four input topics -> the desk -> assignments and notices (seed 004).

    chat_events, support_queue, operator_events, admin_actions
        --route_*--> chat-work (every command to the desk's partition)
    chat-work --run_desk--> tables chat-desk, chat-messages, chat-archive;
                            chat_assignments (compacted, by chat);
                            chat-outbox (the notices, in order: every worker's WebSockets)

Each route checks its topic's records (a bad one is a dead letter with its reason) and
passes by those this deployment's edges gave the desk themselves (web/chat.py). One
stage owns the desk: exclusive assignment is the order of one partition. The worker owning
it sends a `DeskTick` every CHAT_TICK_S (grace periods and presence leases).
"""

from __future__ import annotations

import time
from typing import Any, Optional

import orjson

from app import codec
from app.batching import BatchedTable, Outbox
from app.main import app
from app.stages import checked_route, process_envelopes
from app.streamtime import Every
from tables.chat.commands import DeskTick, MalformedCommand, parse_command
from tables.chat.desk import Chat, Desk, Notice, apply_command
from tables.chat.store import (
    DESK,
    applied_elsewhere,
    archive_table,
    chat,
    counters,
    desk_partition,
    desk_table,
    message_key,
    messages_table,
    policy,
    topics,
)

__all__ = ["DeskStage", "run_desk", "tick_desk"]

ROUTE_BATCH = 1000
archive_sweep = Every(chat.chat_sweep_s)

for _public, _topic in (("chat_events", topics.chat_events), ("support_queue", topics.support_queue),
                        ("operator_events", topics.operator_events), ("admin_actions", topics.admin_actions)):
    checked_route(_topic, _topic.get_topic_name(),
                  lambda message, public=_public: parse_command(message.value, public),
                  (MalformedCommand,), topics.chat_work, lambda _command: DESK, ROUTE_BATCH, skip=applied_elsewhere)


def assignment_record(chat: Chat, at: float) -> bytes:
    return orjson.dumps({"chat_id": chat.chat_id, "client_id": chat.client_id, "kind": chat.kind, "queue": chat.queue,
                         "priority": chat.priority, "state": chat.state, "operator_id": chat.operator_id,
                         "assigned_at": chat.assigned_at, "closed_at": chat.closed_at, "parent_id": chat.parent_id,
                         "at": at})


def notice_record(notice: Notice) -> dict[str, Any]:
    return {"to": notice.to, "type": notice.type, "payload": notice.payload, "request_id": notice.request_id}


class DeskStage:
    """One batch of chat-work: every command applied to the desk in order, what changed
    written once, the notices sent as one record."""

    def __init__(self, partition: int, desk: Any = desk_table, archive: Any = archive_table,
                 messages: Any = messages_table, outbox: Optional[Outbox] = None) -> None:
        """The tables and the outbox are the worker's; tests pass in-memory ones."""
        self.partition = partition
        self.desks: BatchedTable[Desk] = BatchedTable(desk)
        self.archive: BatchedTable[Chat] = BatchedTable(archive)
        self.messages: BatchedTable[Any] = BatchedTable(messages)
        self.outbox = outbox or Outbox(app)
        self.notices: list[dict[str, Any]] = []
        self.changed: dict[str, Chat] = {}
        self.now = 0.0

    def apply_all(self, messages: list[Any]) -> None:
        desk = self.desks.get(DESK) or Desk()
        before = desk
        for command in messages:
            if isinstance(command, DeskTick) and archive_sweep.due(self.partition):
                self.forget_closed(command.at - chat.chat_keep_closed_s)
            chat_id = getattr(command, "chat_id", None)
            archived = self.archive.get(chat_id) if chat_id is not None and chat_id not in desk.chats else None
            outcome = apply_command(desk, command, archived, policy)
            desk = outcome.desk
            self.now = max(self.now, command.at)
            counters.commands.labels(type(command).__name__).inc()
            for posted in outcome.posted:
                self.messages.put(message_key(posted.chat_id, posted.seq), posted)
            for closed in outcome.closed:
                self.archive.put(closed.chat_id, closed)
                self.changed[closed.chat_id] = closed
            for chat_id in outcome.changed:
                if chat_id in desk.chats:
                    self.changed[chat_id] = desk.chats[chat_id]
            for notice in outcome.notices:
                counters.notices.labels(notice.payload["code"] if notice.type == "error" else notice.type).inc()
                self.notices.append(notice_record(notice))
        if (desk.chats, desk.operators, desk.stats) != (before.chats, before.operators, before.stats):
            self.desks.put(DESK, desk)  # a tick that changed nothing writes nothing

    def forget_closed(self, before: float) -> None:
        """Closed chats (and their messages) closed before `before` are deleted."""
        for chat_id, closed in list(self.archive.table.items()):
            if closed.closed_at is not None and closed.closed_at < before:
                for seq in range(1, closed.last_seq + 1):
                    self.messages.delete(message_key(chat_id, seq))
                self.archive.delete(chat_id)
                counters.forgotten.inc()

    def store(self) -> None:
        self.desks.flush()
        self.archive.flush()
        self.messages.flush()
        for chat_id, chat_now in self.changed.items():
            self.outbox.latest(topics.chat_assignments, chat_id, assignment_record(chat_now, self.now))
        self.changed.clear()
        if self.notices:  # in order, one partition: every worker reads them as they were said
            self.outbox.record(topics.chat_outbox, DESK.encode(), codec.dumps(self.notices))
            self.notices = []


@app.agent(topics.chat_work, concurrency=1)
async def run_desk(stream):
    await process_envelopes(stream, "chat-work", DeskStage)


@app.timer(chat.chat_tick_s)
async def tick_desk() -> None:
    """Time reaches the desk, from the worker that owns its partition."""
    partition = desk_partition()
    name = topics.chat_work.get_topic_name()
    if any(tp.topic == name and tp.partition == partition for tp in app.assignor.assigned_actives()):
        await topics.chat_work.send(value=codec.pack([DeskTick(time.time())]), partition=partition)
