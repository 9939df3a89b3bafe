"""What every agent shares: dead-lettering, table key helpers, consumer lag of the consumed topics."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from typing import Any, Iterator, Optional

import faust

from app import codec, metrics
from app.rawinput import raw_inputs

__all__ = [
    "DEAD_LETTER_PREFIX_BYTES", "Every", "consumed_topics", "consumer_backlog", "dead_letter",
    "dead_letter_body", "dead_letter_key", "items_in_partition",
]

log = logging.getLogger(__name__)


class Every:
    """Says, per partition, whether `every_s` has passed since it last said yes (monotonic)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.acted_at: dict[int, float] = {}

    def due(self, partition: int) -> bool:
        now = time.monotonic()
        if now - self.acted_at.get(partition, float("-inf")) < self.every_s:
            return False
        self.acted_at[partition] = now
        return True


async def dead_letter(topic: faust.TopicT, message: Any, reason: str) -> None:
    """Send the original bytes and where they came from to `dead-letters`; count it."""
    metrics.events_out.labels(topic.get_topic_name()).inc()
    await topic.send(key=dead_letter_key(message), value=dead_letter_body(message, reason))


def dead_letter_key(message: Any) -> Optional[bytes]:
    """The key a dead letter is sent with: the record's own, at most 1 kB of it."""
    key = message.key
    if key is None:
        return None
    return (bytes(key) if isinstance(key, (bytes, bytearray, memoryview)) else str(key).encode("utf-8", "replace"))[:1024]


DEAD_LETTER_PREFIX_BYTES = 16 * 1024  # of the original value, in a dead letter (with its size and digest)


def dead_letter_body(message: Any, reason: str) -> bytes:
    """The dead letter of `message`: why, where it came from, its size and SHA-256, and its
    first `DEAD_LETTER_PREFIX_BYTES` (so a letter always fits where the record did); counted."""
    try:
        body = _letter(message, reason)
    except Exception as exc:  # the dead-letter path never stops a stream
        log.exception("dead letter of a record that resists description")
        body = {"source_topic": str(getattr(message, "topic", "")), "partition": getattr(message, "partition", None),
                "offset": getattr(message, "offset", None), "reason": reason, "note": f"letter incomplete: {exc!r}",
                "rejected_at": time.time()}
    topic = str(body.get("source_topic", ""))
    metrics.events_rejected.labels(topic, reason.split(":", 1)[0][:40]).inc()
    log.warning("dead-lettered", extra={"topic": topic, "partition": body.get("partition"),
                                         "offset": body.get("offset"), "reason": reason})
    return codec.dumps(body)


def _letter(message: Any, reason: str) -> dict:
    raw = message.value
    if raw is None:
        value: Optional[bytes] = None
    elif isinstance(raw, (bytes, bytearray, memoryview)):
        value = bytes(raw)
    else:
        value = str(raw).encode("utf-8", "replace")
    prefix = value[:DEAD_LETTER_PREFIX_BYTES] if value is not None else None
    text: Optional[str] = None
    if prefix is not None:
        try:
            text = prefix.decode("utf-8")
        except UnicodeDecodeError as exc:
            # a prefix cut inside a character is still text up to the cut
            text = prefix[: exc.start].decode("utf-8") if exc.start >= len(prefix) - 3 and len(value) > len(prefix) else None
    key = dead_letter_key(message)
    return {
        "source_topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp": message.timestamp,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "reason": reason,
        "value": text,
        "value_b64": base64.b64encode(prefix).decode() if prefix is not None else None,
        "value_size": len(value) if value is not None else None,
        "value_sha256": hashlib.sha256(value).hexdigest() if value is not None else None,
        "value_truncated": value is not None and len(value) > len(prefix),
        "rejected_at": time.time(),
    }


_lag_labels: set[tuple[str, str]] = set()


def consumer_backlog(app: faust.App, topic_names: tuple[str, ...]) -> int:
    """Records this worker has not yet read from its active partitions of `topic_names`;
    sets the lag gauge per topic and partition (and drops partitions no longer owned)."""
    consumer = app.consumer
    total = 0
    labels: set[tuple[str, str]] = set()
    for tp in app.assignor.assigned_actives():
        if tp.topic not in topic_names:
            continue
        try:
            end = consumer.highwater(tp)
        except Exception:  # no fetch yet: nothing known about this partition
            continue
        if end is None:
            continue
        read = consumer._read_offset.get(tp)  # faust keeps no public accessor for this
        position = read + 1 if read is not None else (consumer._committed_offset.get(tp) or 0)
        backlog = max(0, end - position)
        label = (tp.topic, str(tp.partition))
        metrics.consumer_lag.labels(*label).set(backlog)
        labels.add(label)
        total += backlog
    for gone in _lag_labels - labels:
        try:
            metrics.consumer_lag.remove(*gone)
        except KeyError:
            pass
    _lag_labels.clear()
    _lag_labels.update(labels)
    return total


def consumed_topics(app: faust.App) -> tuple[str, ...]:
    """Every topic this app reads: its agents' (each domain's inputs and internal topics)
    and its raw inputs' (app/rawinput.py)."""
    names = {name for agent in app.agents.values() for name in getattr(agent.channel, "topics", ())}
    return tuple(sorted(names | set(raw_inputs(app))))


def items_in_partition(table, partition: int, partition_of) -> Iterator[tuple[str, Any]]:
    """The (key, state) pairs of one partition of a StateTable (its keys were produced by key)."""
    for key, state in table.items():
        if partition_of(key) == partition:
            yield key, state
