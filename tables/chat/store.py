"""Support chat's declaration: its topics, tables and message types. Its agents and views
import from here and from the rules beside it; `app/` knows nothing of it.

The desk (tables/chat/desk.py) is one key, `DESK`, in one partition of `chat-work`: every
decision has one writer. Messages and closed chats are kept beside it, in the same
partition (a table's keys live in the partition of the stream that writes them).
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from prometheus_client import Counter, Gauge

from app.codec import register_types
from app.main import app, dead_letters, settings, state_table
from app.metrics import REGISTRY
from app.partitioner import partition_of
from app.topics import WEEK_S, declare_topic
from tables.chat.commands import (
    AcceptChat,
    AssignLawyer,
    ChatCreated,
    CloseChat,
    DeskTick,
    MessageSent,
    OperatorConnected,
    OperatorDisconnected,
    OperatorSeen,
    SetOperatorStatus,
    SetPriority,
    TransferChat,
)
from tables.chat.desk import Chat, Desk, Policy, Posted
from tables.chat.settings import chat_settings

__all__ = ["APPLIED", "ChatCounters", "ChatTopics", "DESK", "applied_elsewhere", "archive_table", "chat", "counters",
           "desk_partition", "desk_table", "message_key", "messages_table", "policy", "seed_topic_name", "topics"]

chat = chat_settings()
DESK = "desk"
DAY_S = 86400.0


def desk_partition() -> int:
    return partition_of(DESK, settings.partitions)


def message_key(chat_id: str, seq: int) -> str:
    return f"{chat_id}/{seq}"


policy = Policy(auto_queues=chat.auto_assign_queues, capacity=chat.chat_operator_capacity,
                grace_s=chat.chat_operator_grace_s, lease_s=chat.chat_presence_lease_s)


@dataclass(frozen=True)
class ChatTopics:
    chat_events: faust.TopicT  # input: clients' chats and everyone's messages, JSON
    support_queue: faust.TopicT  # input: operators' accepts, transfers, lawyers
    operator_events: faust.TopicT  # input: operators' statuses and connections
    admin_actions: faust.TopicT  # input: what admins do
    chat_assignments: faust.TopicT  # compacted, by chat id: who has the chat now
    chat_work: faust.TopicT  # internal: checked commands, to the desk's partition
    chat_outbox: faust.TopicT  # internal: the desk's notices, read by every worker for its WebSockets
    dead_letters: faust.TopicT


def _declare() -> ChatTopics:
    return ChatTopics(
        chat_events=declare_topic(app, settings, chat.topic_chat_events, retention_s=WEEK_S),
        support_queue=declare_topic(app, settings, chat.topic_support_queue, retention_s=WEEK_S),
        operator_events=declare_topic(app, settings, chat.topic_operator_events, retention_s=WEEK_S),
        admin_actions=declare_topic(app, settings, chat.topic_admin_actions, retention_s=WEEK_S),
        chat_assignments=declare_topic(app, settings, chat.topic_chat_assignments, compacted=True),
        chat_work=declare_topic(app, settings, settings.internal_topic("chat-work")),
        chat_outbox=declare_topic(app, settings, settings.internal_topic("chat-outbox"), retention_s=DAY_S),
        dead_letters=dead_letters,
    )


topics = _declare()
_SEED_NAMES = {topics.chat_events.get_topic_name(): "chat_events",
               topics.support_queue.get_topic_name(): "support_queue",
               topics.operator_events.get_topic_name(): "operator_events",
               topics.admin_actions.get_topic_name(): "admin_actions"}

# The edges hand their commands to the desk directly (one hop less than through the route)
# and write the record to its seed topic with this header: the route passes such records by.
APPLIED = "switchboard-desk"
_APPLIED_BY_US = settings.app_id.encode()


def seed_topic_name(topic: faust.TopicT) -> str:
    """The key of TOPIC_TYPES (tables/chat/commands.py) of one of the four input topics."""
    return _SEED_NAMES[topic.get_topic_name()]


def applied_elsewhere(message: object) -> bool:
    """A record of an input topic whose command this deployment's edge gave the desk itself."""
    headers = getattr(message, "headers", None)
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, dict) else headers
    return any(name == APPLIED and value == _APPLIED_BY_US for name, value in pairs)
register_types((ChatCreated, MessageSent, AcceptChat, TransferChat, AssignLawyer, CloseChat, SetOperatorStatus,
                SetPriority, OperatorConnected, OperatorSeen, OperatorDisconnected, DeskTick))

desk_table = state_table("chat-desk", Desk.from_json, cache_keys=4)
archive_table = state_table("chat-archive", Chat.from_json, cache_keys=10_000)  # closed chats, by id
messages_table = state_table("chat-messages", Posted.from_json)  # by `message_key`


@dataclass(frozen=True)
class ChatCounters:
    commands: Counter
    notices: Counter
    sockets: Gauge
    refused: Counter
    forgotten: Counter


counters = ChatCounters(
    commands=Counter("switchboard_chat_commands_total", "Commands the desk applied, per type", ["type"],
                     registry=REGISTRY),
    notices=Counter("switchboard_chat_notices_total", "Notices the desk sent, per type (errors: per code)",
                    ["type"], registry=REGISTRY),
    sockets=Gauge("switchboard_chat_sockets", "Chat WebSockets open on this worker, per role", ["role"],
                  registry=REGISTRY),
    refused=Counter("switchboard_chat_refused_total",
                    "Chat requests refused at the edge (rate limit, size, validation), per reason", ["reason"],
                    registry=REGISTRY),
    forgotten=Counter("switchboard_chat_forgotten_total",
                      "Closed chats deleted with their messages after CHAT_KEEP_CLOSED_S", registry=REGISTRY),
)
