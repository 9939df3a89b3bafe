"""Support chat traffic for `python -m app simulate`: clients opening chats and talking with
bot operators, on the seed's topics (tables/chat/commands.py), so `make run`'s operator
console always has something moving.

Bot operators (`sim-op-N`) go online with a connection they keep alive (presence every
10 s), accept most chats after a short wait, talk with the client a few turns, and the
client closes. A share of the chats is left for people (`HUMAN_SHARE`): they wait in the
queue for an operator of the console, and a client who waits too long gives up (closes).
Pure given the clock: `due(now)` returns the records due by `now`.
"""

from __future__ import annotations

import heapq
import itertools
import random
from typing import Any

import orjson

__all__ = ["ChatTraffic"]

BOTS = 3
HUMAN_SHARE = 0.3  # chats no bot takes: the console's
GIVE_UP_S = (120.0, 300.0)  # a client nobody takes closes the chat after this long
PRESENCE_S = 10.0
LINES = ("My driver cannot find me", "I was charged twice", "The app shows the wrong address",
         "How do I change my payment card?", "I left my bag in the car", "The driver was rude")
ANSWERS = ("Let me check that for you", "Could you give me the order number?", "Thank you, one moment please",
           "I have fixed it; anything else?", "I am sorry for the trouble")


class ChatTraffic:
    def __init__(self, seed: int, chats_per_s: float, start: float, topics: dict[str, str], prefix: str = "sim") -> None:
        """`topics`: the names of chat_events, support_queue and operator_events."""
        self.rnd = random.Random(seed)
        self.chats_per_s = chats_per_s
        self.topics = topics
        self.prefix = prefix
        self.next_chat_at = start + self._gap()
        self.scheduled: list[tuple[float, int, str, str, dict[str, Any]]] = []
        self.ticket = itertools.count()
        self.chats = 0
        self.sent = 0
        self.bots = [f"{prefix}-op-{n}" for n in range(1, BOTS + 1)]
        self.next_presence_at = start
        for bot in self.bots:
            self._at(start, "operator_events", bot, {"type": "operator_status", "operator_id": bot, "status": "online",
                                                     "capacity": 5, "by_id": bot, "by_role": "operator"})

    def _gap(self) -> float:
        return self.rnd.expovariate(self.chats_per_s) if self.chats_per_s > 0 else float("inf")

    def due(self, now: float) -> list[tuple[str, bytes, bytes]]:
        """The (topic, key, value) records due by `now`, in time order."""
        while self.next_presence_at <= now:
            for bot in self.bots:
                self._at(self.next_presence_at, "operator_events", bot,
                         {"type": "operator_seen", "operator_id": bot, "connection": f"{bot}-bot"})
            self.next_presence_at += PRESENCE_S
        while self.next_chat_at <= now:
            self._chat(self.next_chat_at)
            self.next_chat_at += self._gap()
        out = []
        while self.scheduled and self.scheduled[0][0] <= now:
            at, _, topic, key, body = heapq.heappop(self.scheduled)
            out.append((self.topics[topic], key.encode(), orjson.dumps({**body, "at": at})))
        self.sent += len(out)
        return out

    def _chat(self, at: float) -> None:
        self.chats += 1
        chat_id = f"{self.prefix}-chat-{self.chats}"
        client = f"{self.prefix}-client-{self.rnd.randrange(10_000)}"
        self._at(at, "chat_events", chat_id, {"type": "chat_created", "chat_id": chat_id, "client_id": client,
                                              "priority": 1 if self.rnd.random() < 0.1 else 0,
                                              "text": self.rnd.choice(LINES), "message_id": f"{chat_id}:first"})
        if self.rnd.random() < HUMAN_SHARE:
            self._close(at + self.rnd.uniform(*GIVE_UP_S), chat_id, client, "client", "gave up waiting")
            return
        bot = self.rnd.choice(self.bots)
        t = at + self.rnd.uniform(2, 20)
        self._at(t, "support_queue", chat_id, {"type": "operator_accept_chat", "chat_id": chat_id, "operator_id": bot})
        for turn in range(self.rnd.randint(1, 4)):
            t += self.rnd.uniform(3, 15)
            self._say(t, chat_id, bot, "operator", self.rnd.choice(ANSWERS), turn)
            t += self.rnd.uniform(3, 20)
            self._say(t, chat_id, client, "client", self.rnd.choice(LINES), turn)
        self._close(t + self.rnd.uniform(2, 10), chat_id, client, "client", "thanks")

    def _say(self, at: float, chat_id: str, sender: str, role: str, text: str, turn: int) -> None:
        self._at(at, "chat_events", chat_id, {"type": "message_sent", "chat_id": chat_id, "sender_id": sender,
                                              "sender_role": role, "text": text,
                                              "message_id": f"{chat_id}:{role}:{turn}"})

    def _close(self, at: float, chat_id: str, by: str, role: str, reason: str) -> None:
        self._at(at, "chat_events", chat_id, {"type": "chat_closed", "chat_id": chat_id, "by_id": by, "by_role": role,
                                              "reason": reason})

    def _at(self, when: float, topic: str, key: str, body: dict[str, Any]) -> None:
        heapq.heappush(self.scheduled, (when, next(self.ticket), topic, key, body))
