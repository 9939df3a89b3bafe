"""What the chat's topics admit (tables/chat/commands.py): each type on its topic, ids as
strings or numbers, and every way a record is refused, with the reason."""

from __future__ import annotations

import orjson
import pytest

from tables.chat.commands import (
    AcceptChat,
    Actor,
    AssignLawyer,
    ChatCreated,
    CloseChat,
    MalformedCommand,
    MessageSent,
    OperatorConnected,
    OperatorDisconnected,
    OperatorSeen,
    OperatorStatus,
    SetOperatorStatus,
    SetPriority,
    TransferChat,
    parse_command,
)

AT = 1_700_000_000.0


def parse(topic: str, **fields) -> object:
    return parse_command(orjson.dumps({"at": AT, **fields}), topic)


@pytest.mark.parametrize("topic, fields, expected", [
    ("chat_events", {"type": "chat_created", "chat_id": 456, "client_id": 123},
     ChatCreated("456", "123", "general", 0, None, None, None, AT)),
    ("chat_events", {"type": "message_sent", "chat_id": "c", "sender_id": "u", "sender_role": "client", "text": "hi",
                     "message_id": "m"}, MessageSent("c", "u", Actor.CLIENT, "hi", "m", None, AT)),
    ("chat_events", {"type": "chat_closed", "chat_id": "c", "by_id": "u", "by_role": "client"},
     CloseChat("c", "u", Actor.CLIENT, "", None, AT)),
    ("support_queue", {"type": "operator_accept_chat", "chat_id": "c", "operator_id": 7, "request_id": "r"},
     AcceptChat("c", "7", "r", AT)),
    ("support_queue", {"type": "transfer_chat", "chat_id": "c", "by_id": "o", "by_role": "operator",
                       "target_operator_id": 789, "reason": "Специализация"},
     TransferChat("c", "o", Actor.OPERATOR, "789", "Специализация", None, AT)),
    ("support_queue", {"type": "lawyer_assigned", "chat_id": "c", "by_id": "o", "by_role": "operator",
                       "lawyer_id": "l"}, AssignLawyer("c", "o", Actor.OPERATOR, "l", None, AT)),
    ("operator_events", {"type": "operator_status", "operator_id": "o", "status": "busy"},
     SetOperatorStatus("o", False, OperatorStatus.BUSY, None, "o", Actor.SERVICE, None, AT)),
    ("operator_events", {"type": "operator_connected", "operator_id": "o", "connection": "w"},
     OperatorConnected("o", False, "w", AT)),
    ("operator_events", {"type": "operator_seen", "operator_id": "o", "connection": "w", "lawyer": True},
     OperatorSeen("o", True, "w", AT)),
    ("operator_events", {"type": "operator_disconnected", "operator_id": "o", "connection": "w"},
     OperatorDisconnected("o", False, "w", AT)),
    ("admin_actions", {"type": "update_queue_priority", "chat_id": "c", "priority": 5, "by_id": "a",
                       "by_role": "admin"}, SetPriority("c", 5, "a", None, AT)),
    ("admin_actions", {"type": "update_operator_status", "operator_id": "o", "status": "offline", "capacity": 4,
                       "by_id": "a", "by_role": "admin"},
     SetOperatorStatus("o", False, OperatorStatus.OFFLINE, 4, "a", Actor.ADMIN, None, AT)),
], ids=lambda v: v if isinstance(v, str) else None)
def test_each_type_on_its_topic(topic, fields, expected):
    assert parse(topic, **fields) == expected


@pytest.mark.parametrize("raw, topic, reason", [
    (None, "chat_events", "empty record"),
    (b"{", "chat_events", "not JSON"),
    (b"[]", "chat_events", "not a JSON object"),
    (orjson.dumps({"type": "operator_accept_chat", "chat_id": "c", "operator_id": "o", "at": AT}), "chat_events",
     "is not one of"),
    (orjson.dumps({"type": "chat_created", "chat_id": "c", "client_id": "u", "at": AT, "extra": 1}), "chat_events",
     "extra"),
    (orjson.dumps({"type": "chat_created", "chat_id": "", "client_id": "u", "at": AT}), "chat_events", "chat_id"),
    (orjson.dumps({"type": "chat_created", "chat_id": True, "client_id": "u", "at": AT}), "chat_events", "chat_id"),
    (orjson.dumps({"type": "chat_created", "chat_id": "c", "client_id": "u", "at": 5}), "chat_events", "at"),
    (orjson.dumps({"type": "message_sent", "chat_id": "c", "sender_id": "u", "sender_role": "pirate", "text": "x",
                   "message_id": "m", "at": AT}), "chat_events", "sender_role"),
    (orjson.dumps({"type": "close_chat", "chat_id": "c", "by_id": "u", "by_role": "operator", "at": AT}),
     "admin_actions", "admin action by 'operator'"),
], ids=["none", "not-json", "array", "wrong-topic", "extra-field", "empty-id", "bool-id", "old-time", "bad-role",
        "admin-by-operator"])
def test_what_a_topic_refuses_says_why(raw, topic, reason):
    with pytest.raises(MalformedCommand, match=reason):
        parse_command(raw, topic)
