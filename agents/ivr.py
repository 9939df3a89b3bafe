"""IVR routing stream: ivr-commands -> rules and bindings -> ivr-routing-rules (SPEC.md "IVR").

    ivr-commands --route_ivr_commands--> ivr-events (each command in its key's partition:
                                                     the phone's, or the order's)
    ivr-events --track_ivr--> tables ivr-rules (by phone), ivr-bindings (by order id);
                              ivr-routing-rules (compacted: the rule, or a tombstone)

The route checks every record (a bad one is a dead letter with its reason); the stage
applies the pure rules of tables/ivr in the batch pattern of app/batching.py, and expires
rules and bindings by stream time, which `StreamMark`s bring down the same path.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from app import codec
from app.batching import BatchedTable, Outbox
from app.main import app
from app.stages import checked_route, process_envelopes, topic_partitions
from app.streamtime import SOURCE, Every, PartitionClock, StreamMark
from tables.ivr.commands import (
    BindInbound,
    IvrCommand,
    MalformedCommand,
    RouteToIvr,
    RouteToOperator,
    command_key,
    parse_command,
)
from tables.ivr.rules import Binding, RoutingRule, apply_binding, apply_rule_command, expire_binding, expire_rule, published_rule
from tables.ivr.store import bindings_table, counters, input_tracker, ivr, rules_table, topics

__all__ = ["IvrStage", "track_ivr"]

log = logging.getLogger(__name__)
ROUTE_BATCH = 1000


def _parse(message: Any) -> IvrCommand:
    return parse_command(message.value, ivr.ivr_default_region, ivr.ivr_binding_ttl_s, ivr.ivr_max_ttl_s)


# each command checked and sent to the partition of its key; the bad ones are dead letters
checked_route(topics.ivr_commands, ivr.topic_ivr_commands, _parse, (MalformedCommand,), topics.ivr_events, command_key,
              ROUTE_BATCH, tracker=input_tracker, time_of=lambda command: command.at)


# --- rules and bindings ------------------------------------------------------------------------

ivr_clock = PartitionClock(lambda: topic_partitions(topics.ivr_commands))
rule_sweep = Every(ivr.ivr_rule_sweep_s)
binding_sweep = Every(ivr.ivr_binding_sweep_s)


class IvrStage:
    """One envelope of partition `partition` of ivr-events: its commands applied to the
    rules and bindings of that partition, expiries by stream time, the touched rules published."""

    def __init__(self, partition: int, rules: Any = rules_table, bindings: Any = bindings_table,
                 outbox: Optional[Outbox] = None) -> None:
        """The tables and the outbox are the worker's; tests pass in-memory ones."""
        self.partition = partition
        self.rules: BatchedTable[RoutingRule] = BatchedTable(rules)
        self.bindings: BatchedTable[Binding] = BatchedTable(bindings)
        self.outbox = outbox or Outbox(app)
        self.now = 0.0  # stream time as this batch knows it
        self.to_publish: set[str] = set()

    def apply_all(self, messages: list[Any]) -> None:
        for message in messages:
            self.apply(message)

    def apply(self, message: Any) -> None:
        if isinstance(message, StreamMark):
            now = ivr_clock.hear(self.partition, message, (SOURCE,))
            if now is not None:
                self.time_passes(now, rules=rule_sweep.due(self.partition), bindings=binding_sweep.due(self.partition))
            return
        self.now = max(self.now, message.at)
        if isinstance(message, BindInbound):
            self.bindings.put(message.order_id, apply_binding(self.bindings.get(message.order_id), message))
        elif isinstance(message, (RouteToIvr, RouteToOperator)):
            after = apply_rule_command(self.rules.get(message.phone), message, ivr.ivr_margin_s)
            self._store_rule(message.phone, after)
            # published again even unchanged: a replay after a refused output (app/delivery.py)
            # finds its state stored but its record never sent
            self.to_publish.add(message.phone)
        else:  # pragma: no cover - the codec admits only the registered types
            raise TypeError(f"not an IVR message: {message!r}")

    def time_passes(self, now: float, rules: bool = True, bindings: bool = True) -> None:
        """Expire this partition's rules (their tombstones published) and bindings at stream time `now`."""
        self.now = max(self.now, now)
        if rules:
            for phone, rule in list(self.rules.table.items_in(self.partition)):
                rule = self.rules.get(phone) or rule
                after = expire_rule(rule, now)
                if after is not rule:
                    expired = len(rule.holds) - (len(after.holds) if after is not None else 0)
                    if expired:  # their removal never came: they ended by their TTL
                        counters.holds_expired.inc(expired)
                    self._store_rule(phone, after)
                    self.to_publish.add(phone)
        if bindings:
            for order_id, binding in list(self.bindings.table.items_in(self.partition)):
                if expire_binding(self.bindings.get(order_id) or binding, now) is None:
                    self.bindings.delete(order_id)
                    counters.bindings_expired.inc()

    def _store_rule(self, phone: str, rule: Optional[RoutingRule]) -> None:
        if rule is None:
            self.rules.delete(phone)
        else:
            self.rules.put(phone, rule)

    def store(self) -> None:
        for phone in self.to_publish:
            value = published_rule(self.rules.get(phone), self.now)
            self.outbox.latest(topics.ivr_routing_rules, phone, None if value is None else codec.dumps(value))
        self.to_publish.clear()
        self.rules.flush()
        self.bindings.flush()


@app.agent(topics.ivr_events, concurrency=1)
async def track_ivr(stream):
    await process_envelopes(stream, "ivr-events", IvrStage)
