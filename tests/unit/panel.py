"""The call center's real stages (agents/callcenter.py) over in-memory tables.

`Panel.feed` routes each queue_log line as the worker's route does (`route_event`), then
hands every envelope to the stage class that would read it (`CallsAndOperators` for
cc-events, `Queues` for cc-queues), until nothing more flows: the code that ships, minus
Kafka and RocksDB. What the stages publish is kept per topic and key (`published`).
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from agents.callcenter import CallsAndOperators, Queues, route_event
from app.batching import Outbox
from app.main import app, settings
from app.partitioner import partition_of
from tables.callcenter.aliases import OperatorAliases
from tables.callcenter.queue_log import interpret, parse_line
from tables.callcenter.queues import QueueState, live_view
from tables.callcenter.store import operator_aliases, topics

__all__ = ["MemoryTable", "Panel"]


class MemoryTable(dict):
    """The part of a StateTable the stages use (`get`, `put`, `delete`, `items_in`), in a dict."""

    def put(self, key: str, state: Any) -> None:
        self[key] = state

    def delete(self, key: str) -> None:
        self.pop(key, None)

    def items_in(self, partition: int) -> Iterator[tuple[str, Any]]:
        return iter([(k, v) for k, v in self.items() if partition_of(k, settings.partitions) == partition])


class Panel:
    """The call, operator and queue stages in memory; `t0` is the time `+N` lines count from."""

    def __init__(self, t0: float, aliases: OperatorAliases = operator_aliases) -> None:
        self.t0 = t0
        self.aliases = aliases
        self.calls, self.operators, self.queues, self.windows = MemoryTable(), MemoryTable(), MemoryTable(), MemoryTable()
        self.published: dict[tuple[str, str], Any] = {}

    def feed(self, *lines: str) -> "Panel":
        for line in lines:
            outbox = Outbox(app)
            route_event(outbox, self.event(line), self.aliases)
            self._flow(outbox)
        return self

    def event(self, line: str):
        when, rest = line.split("|", 1)
        if when.startswith("+"):
            when = repr(self.t0 + float(when[1:]))
        return interpret(parse_line(f"{when}|{rest}"))

    def sweep(self, after_s: float) -> "Panel":
        """Stream time at t0 + after_s: every queue's time passes (lost calls, windows), then
        every operator's staleness sweep."""
        now = self.t0 + after_s
        outbox = Outbox(app)
        for partition in range(settings.partitions):
            stage = Queues(partition, self.queues, self.windows, outbox)
            for name, q in self.queues.items_in(partition):
                stage.time_passes(q, now)
            stage.store()
        self._flow(outbox)
        outbox = Outbox(app)
        for partition in range(settings.partitions):
            calls = CallsAndOperators(partition, self.calls, self.operators, outbox)
            calls.sweep_operators(now)
            calls.store()
        self._flow(outbox)
        return self

    def queue(self, name: str) -> QueueState:
        return self.queues.get(name) or QueueState(name)

    def view(self, queue: str, after_s: float) -> dict:
        return live_view(self.queue(queue), self.t0 + after_s)

    def counts(self, queue: str) -> dict:
        return self.view(queue, 0)["operators"]

    def _flow(self, outbox: Outbox) -> None:
        """Every envelope to its stage, breadth first, until the stages send no more."""
        while outbox.envelopes or outbox.latest_values:
            for (topic, key), value in outbox.latest_values.items():
                self.published[(topic, key)] = None if value is None else orjson.loads(value)
            envelopes, outbox.envelopes, outbox.latest_values = outbox.envelopes, {}, {}
            outbox.keyed.clear()
            following = Outbox(app)
            for (topic, partition), messages in envelopes.items():
                stage: Any
                if topic == topics.cc_events.get_topic_name():
                    stage = CallsAndOperators(partition, self.calls, self.operators, following)
                elif topic == topics.cc_queues.get_topic_name():
                    stage = Queues(partition, self.queues, self.windows, following)
                else:
                    raise AssertionError(f"an envelope for {topic}, which no stage reads")
                stage.apply_all(messages)
                stage.store()
            outbox = following
