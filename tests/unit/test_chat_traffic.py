"""The simulator's support chats (dev/chat_traffic.py): every record it writes is one the
chat's routes accept, bots go online first, and chats flow from creation to close."""

from __future__ import annotations

import orjson

from dev.chat_traffic import ChatTraffic
from tables.chat.commands import TOPIC_TYPES, ChatCreated, CloseChat, parse_command

T0 = 1_700_000_000.0
TOPICS = {"chat_events": "chat_events", "support_queue": "support_queue", "operator_events": "operator_events"}


def test_every_record_is_one_the_routes_accept_and_chats_end_closed():
    traffic = ChatTraffic(7, chats_per_s=2.0, start=T0, topics=TOPICS)
    records = traffic.due(T0 + 1200)
    commands = [parse_command(value, topic) for topic, _, value in records]
    assert records[0][0] == "operator_events" and orjson.loads(records[0][2])["type"] == "operator_status"
    created = {c.chat_id for c in commands if isinstance(c, ChatCreated)}
    closed = {c.chat_id for c in commands if isinstance(c, CloseChat)}
    assert len(created) > 1000 and len(closed) > 0.9 * len(created)
    assert [c.at for c in commands] == sorted(c.at for c in commands)
    assert {topic for topic, _, _ in records} == set(TOPIC_TYPES) - {"admin_actions"}


def test_the_same_seed_gives_the_same_records():
    one = ChatTraffic(3, 1.0, T0, TOPICS).due(T0 + 300)
    two = ChatTraffic(3, 1.0, T0, TOPICS).due(T0 + 300)
    assert one == two
