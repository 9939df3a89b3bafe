"""The chat's edge commands (tables/chat/commands.checked_command) and the mark that keeps
the route from applying a command the edge gave the desk itself (tables/chat/store.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.main import settings
from tables.chat.commands import Actor, MessageSent, checked_command, parse_command
from tables.chat.store import APPLIED, applied_elsewhere

AT = 1_700_000_000.0


def test_the_edge_makes_the_record_the_route_would_read_and_the_same_typed_command():
    raw, command = checked_command("chat_events", "message_sent", chat_id="c", sender_id="u",
                                   sender_role=Actor.CLIENT, text="hi", message_id="m", at=AT)
    assert command == MessageSent("c", "u", Actor.CLIENT, "hi", "m", None, AT)
    assert parse_command(raw, "chat_events") == command


@pytest.mark.parametrize("topic, kind, fields, reason", [
    ("chat_events", "operator_accept_chat", {"chat_id": "c", "operator_id": "o"}, "does not go on chat_events"),
    ("admin_actions", "close_chat", {"chat_id": "c", "by_id": "o", "by_role": Actor.OPERATOR}, "admin action"),
    ("chat_events", "message_sent", {"chat_id": "c", "sender_id": "u", "sender_role": Actor.CLIENT, "text": "",
                                     "message_id": "m"}, "text"),
], ids=["wrong-topic", "admin-by-operator", "empty-text"])
def test_what_the_edge_refuses(topic, kind, fields, reason):
    with pytest.raises(ValueError, match=reason):
        checked_command(topic, kind, at=AT, **fields)


@pytest.mark.parametrize("headers, applied", [
    (None, False), ((), False), (((APPLIED, settings.app_id.encode()),), True),
    (((APPLIED, b"another-deployment"),), False), ({APPLIED: settings.app_id.encode()}, True),
    ((("other", b"x"),), False),
], ids=["none", "empty", "ours", "another-deployment", "as-a-dict", "other-header"])
def test_the_route_passes_by_only_what_this_deployments_edge_applied(headers, applied):
    assert applied_elsewhere(SimpleNamespace(headers=headers)) is applied
