"""What every agent shares: dead-lettering, table key helpers, the worker's input lag."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import replace
from typing import Any, Iterator, Optional

import faust

from app import codec, metrics
from tables.callcenter.watermarks import PartitionProgress

log = logging.getLogger(__name__)


class InputTracker:
    """How far this worker has processed each of its input partitions (route stage)."""

    def __init__(self) -> None:
        self.partitions: dict[int, PartitionProgress] = {}
        self.lag_s: Optional[float] = None  # refreshed by the housekeeping timer
        self.backlog = 0  # records this worker's stages have yet to read
        self.stale = False

    def processed(self, partition: int, offset: int, event_time: Optional[float], appended_at: Optional[float],
                  now: float) -> None:
        """A record's outputs are sent. Its delay is how late it reached Kafka (append time minus
        event time): the upstream's lag, the same however late or often we read it."""
        before = self.partitions.get(partition, PartitionProgress())
        if event_time is None:
            self.partitions[partition] = replace(before, offset=offset, processed_at=now)
            return
        delay = max(0.0, (appended_at or now) - event_time)
        self.partitions[partition] = PartitionProgress(offset, event_time, delay, now)
        metrics.event_delay_seconds.set(delay)

    async def fully_read(self, app: faust.App, tp) -> bool:
        """Every record of `tp` up to its end has been processed and forwarded."""
        consumer = app.consumer
        try:
            end = consumer.highwater(tp)
        except Exception:  # not fetched yet
            return False
        if end is None:
            return False
        progress = self.partitions.get(tp.partition)
        if progress is not None and progress.offset + 1 >= end:
            return True
        # nothing processed here since the assignment: fully read if nothing is left to fetch
        # and nothing fetched is waiting in the stream's buffer
        if consumer._read_offset.get(tp) is not None:  # faust keeps no public accessor for this
            return False
        position = await consumer.position(tp)
        return position is not None and position >= end


input_tracker = InputTracker()


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
    await topic.send(key=message.key, value=dead_letter_body(message, reason))


def dead_letter_body(message: Any, reason: str) -> bytes:
    """The dead letter of `message` (its original bytes, where it came from, why); counted."""
    value = message.value if isinstance(message.value, (bytes, bytearray)) else bytes(str(message.value), "utf-8")
    try:
        text: Optional[str] = value.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    body = {
        "source_topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp": message.timestamp,
        "key": message.key.decode("utf-8", "replace") if isinstance(message.key, bytes) else message.key,
        "reason": reason,
        "value": text,
        "value_b64": base64.b64encode(value).decode(),
        "rejected_at": time.time(),
    }
    kind = reason.split(":", 1)[0][:40]
    metrics.events_rejected.labels(message.topic, kind).inc()
    log.warning("dead-lettered", extra={"topic": message.topic, "partition": message.partition, "offset": message.offset, "reason": reason})
    return codec.dumps(body)


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


def items_in_partition(table, partition: int, partition_of) -> Iterator[tuple[str, Any]]:
    """The (key, state) pairs of one partition of a StateTable (its keys were produced by key)."""
    for key, state in table.items():
        if partition_of(key) == partition:
            yield key, state
