"""agents/chat.py's stage over in-memory tables: what it stores, publishes and says."""

from __future__ import annotations

import orjson

from agents.chat import DeskStage, archive_sweep
from app.batching import Outbox
from tables.chat.commands import AcceptChat, Actor, ChatCreated, CloseChat, DeskTick, MessageSent
from tables.chat.store import DESK, chat, message_key
from tests.unit.panel import MemoryTable

T0 = 1_800_000_000.0


class NoApp:
    producer = None


class World:
    def __init__(self) -> None:
        self.desk, self.archive, self.messages = MemoryTable(), MemoryTable(), MemoryTable()
        self.outbox = Outbox(NoApp())

    def feed(self, *commands) -> "World":
        stage = DeskStage(0, self.desk, self.archive, self.messages, self.outbox)
        stage.apply_all(list(commands))
        stage.store()
        return self

    def notices(self) -> list[dict]:
        return [n for _, _, value in self.outbox.records for n in orjson.loads(value)]

    def assignments(self) -> dict:
        return {key: orjson.loads(value) for (_, key), value in self.outbox.latest_values.items()}


def test_a_batch_stores_the_desk_and_messages_and_sends_its_notices_as_one_record_in_order():
    world = World().feed(ChatCreated("ch1", "c1", "general", 0, "hello", "m0", "r0", T0),
                         AcceptChat("ch1", "op1", "r1", T0 + 1),
                         MessageSent("ch1", "op1", Actor.OPERATOR, "hi", "m1", None, T0 + 2))
    assert world.desk[DESK].chats["ch1"].operator_id == "op1"
    assert [world.messages[message_key("ch1", n)].text for n in (1, 2)] == ["hello", "hi"]
    assert len(world.outbox.records) == 1
    assert [n["type"] for n in world.notices()] == ["chat_created", "message", "new_chat_available", "chat_taken",
                                                    "chat_assigned", "message"]
    assignment = world.assignments()["ch1"]
    assert (assignment["state"], assignment["operator_id"], assignment["at"]) == ("assigned", "op1", T0 + 2)


def test_a_closed_chat_goes_to_the_archive_is_published_closed_and_later_forgotten():
    world = World().feed(ChatCreated("ch1", "c1", "general", 0, "hello", "m0", None, T0),
                         CloseChat("ch1", "c1", Actor.CLIENT, "", None, T0 + 5))
    assert "ch1" not in world.desk[DESK].chats and world.archive["ch1"].closed_at == T0 + 5
    assert world.assignments()["ch1"]["state"] == "closed"
    world.feed(MessageSent("ch1", "c1", Actor.CLIENT, "late", "m1", "r", T0 + 6))
    assert world.notices()[-1]["payload"]["code"] == "chat_closed"  # the archive answers for it
    archive_sweep.acted_at.clear()
    world.feed(DeskTick(T0 + 5 + chat.chat_keep_closed_s + 1))
    assert "ch1" not in world.archive and message_key("ch1", 1) not in world.messages


def test_a_tick_that_changes_nothing_writes_nothing():
    world = World().feed(ChatCreated("ch1", "c1", "general", 0, None, None, None, T0))
    stored = world.desk[DESK]
    world.feed(DeskTick(T0 + 1))
    assert world.desk[DESK] is stored
