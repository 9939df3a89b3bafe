"""The agent pattern: many messages in one Kafka record, table writes and outputs coalesced.

Faust pays a fixed price per Kafka record (consumer, conductor, stream, ack) and per
table write (RocksDB put plus a changelog record). So a stage never sends one record per
message to the next stage: it gathers the messages of a whole batch for each partition
of the next stage into one *envelope* (`codec.pack`/`codec.unpack`), keeps the states it changes in
a `BatchedTable` overlay and writes each key once at the end, and sends each keyed
output once, with its latest value (`Outbox`). A stage handles one envelope at a time,
so the event Faust considers current (the envelope's) is in the partition of every key
the envelope concerns: the partition a Faust RocksDB table takes a write's partition from.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, AsyncIterator, Generic, Iterator, Optional, TypeVar

import faust
import faust.streams

from app import metrics
from app.codec import pack

__all__ = ["BatchedTable", "Outbox", "WAKE_UP", "in_partition", "in_partition_of", "more_in_kafka", "take_ready",
           "wake_stages"]

T = TypeVar("T")
_DELETED = object()


MAX_ENVELOPE_MESSAGES = 2000  # keeps a record far below Kafka's 1 MB default limit
MAX_ENVELOPE_BYTES = 512 * 1024  # ... and so does this, whatever the messages hold


def envelopes_of(messages: list[Any]) -> list[bytes]:
    """`messages` packed in order into as few envelopes as keep each under
    MAX_ENVELOPE_BYTES (halving until they fit; one message always makes an envelope)."""
    value = pack(messages)
    if len(value) <= MAX_ENVELOPE_BYTES or len(messages) == 1:
        return [value]
    half = len(messages) // 2
    return envelopes_of(messages[:half]) + envelopes_of(messages[half:])


@contextmanager
def in_partition_of(event: faust.EventT) -> Iterator[None]:
    """Table reads and writes inside the block are in `event`'s partition.

    A Faust RocksDB table takes the partition of a read or a write from the event the
    stream last yielded (`faust.streams._current_event`, a private context variable: this
    is the one place that sets it), never from the key. A stage that applies several
    envelopes of different partitions at once names, for each partition, one of its
    events. `tests/unit/test_batching.py` pins the private API's shape."""
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


class _PartitionEvent:
    """What Faust's tables and `app/changelog.py` read of an event: its message's partition."""

    __slots__ = ("message", "__weakref__")

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition, topic=None)


@contextmanager
def in_partition(partition: int) -> Iterator[None]:
    """Table reads and writes inside the block are in `partition`, outside of any stream:
    for a task that owns the partition's state beside its stage (the KRT sender), between
    awaits (so never interleaved with the stage's own batch)."""
    event = _PartitionEvent(partition)
    with in_partition_of(event):  # type: ignore[arg-type]
        yield


class _WakeUp:
    """Put on a stage's stream queue when the consumer waits for every event taken to be
    acknowledged (a rebalance, a shutdown): a batch held for more to come goes on at once."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "WAKE_UP"


WAKE_UP = _WakeUp()
_stage_queues: "weakref.WeakSet[Any]" = weakref.WeakSet()  # the stream queues `take_ready` reads


def wake_stages() -> None:
    """Every batch `take_ready` holds goes on now (see `_WakeUp`)."""
    for queue in list(_stage_queues):
        queue.put_nowait(WAKE_UP)


async def take_ready(stream: Any, max_events: int) -> AsyncIterator[list[faust.EventT]]:
    """Batches of up to `max_events` events: a batch ends when it is full, or when the
    stream has nothing buffered and Kafka holds nothing more for the batch's partitions.

    Unlike `Stream.take_events(n, within)`, a batch never waits on a timer: live, a lone
    event goes on at once; behind (a backlog, a replay), batches grow to `max_events`.
    Events are acknowledged after the loop body has run, so a commit never covers an
    event whose outputs have not been handed to the producer.

    A batch held because Kafka said more was coming is let go by `wake_stages`: a rebalance
    clears the stream's queue and waits until every event taken is acknowledged, and the
    records Kafka promised never come (a broker lost, the flow stopped). Held, the batch
    would keep that wait, and the rebalance, going for ever (seen on a three-broker cluster:
    a worker stuck in `wait_empty`, never ready again).
    """
    manual = stream.noack()
    queue = manual.channel.queue
    _stage_queues.add(queue)
    buffered_nothing = queue.empty
    consumer = manual.app.consumer
    batch: list[faust.EventT] = []
    last: dict[Any, int] = {}  # partition -> offset of its last event in the batch
    async for _ in manual:  # values: an event's, or WAKE_UP (no event)
        event = manual.current_event
        if event is not None:
            batch.append(event)
            message = event.message
            last[message.tp] = message.offset
            if len(batch) < max_events and (not buffered_nothing() or more_in_kafka(consumer, last)):
                continue
        elif not batch:
            continue
        try:
            yield batch
        finally:
            for done in batch:
                await manual.ack(done)
            batch = []
            last.clear()


def more_in_kafka(consumer: Any, last: dict[Any, int]) -> bool:
    """Kafka has records past `last` that this consumer will deliver (its last fetch said so)."""
    for tp, offset in last.items():
        end = consumer.highwater(tp)
        if end is not None and end > offset + 1:
            return True
    return False


class BatchedTable(Generic[T]):
    """An overlay over a state table for one batch: reads see the batch's own writes, and
    `flush` writes each changed key once."""

    def __init__(self, table) -> None:
        self.table = table
        self.pending: dict[str, Any] = {}

    def get(self, key: str) -> Optional[T]:
        state = self.pending.get(key)
        if state is None:
            return self.table.get(key)
        return None if state is _DELETED else state

    def put(self, key: str, state: T) -> None:
        self.pending[key] = state

    def delete(self, key: str) -> None:
        self.pending[key] = _DELETED

    def flush(self) -> int:
        """Write the batch (the current event must be of the keys' partition); the number of writes."""
        for key, state in self.pending.items():
            if state is _DELETED:
                self.table.delete(key)
            else:
                self.table.put(key, state)
        written = len(self.pending)
        self.pending.clear()
        return written


class Outbox:
    """Everything one batch sends, sent at once by `flush`:

    - `to_partition`: messages for one partition of an internal topic, in envelopes; with a
      `key`, a message replaces the batch's earlier message of that key (only the latest counts);
    - `latest`: a keyed record of a compacted topic; only the last value per key is sent;
    - `record`: a record sent as it is (dead letters: each one counts).

    Records go straight to Faust's producer (the one it flushes before every commit):
    Faust's topic layer costs more per record than the producer itself.
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.envelopes: dict[tuple[str, int], list[Any]] = {}
        self.keyed: dict[tuple[str, int], dict[Any, int]] = {}  # where each key's message sits
        self.latest_values: dict[tuple[str, str], Optional[bytes]] = {}
        self.records: list[tuple[str, Optional[bytes], Optional[bytes]]] = []

    def to_partition(self, topic: faust.TopicT, partition: int, message: Any, key: Any = None) -> None:
        where = (topic.get_topic_name(), partition)
        envelope = self.envelopes.get(where)
        if envelope is None:
            envelope = self.envelopes[where] = []
        if key is None:
            envelope.append(message)
            return
        positions = self.keyed.get(where)
        if positions is None:
            positions = self.keyed[where] = {}
        at = positions.get(key)
        if at is None:
            positions[key] = len(envelope)
            envelope.append(message)
        else:
            envelope[at] = message

    def to_every_partition(self, topic: faust.TopicT, partitions: int, message: Any) -> None:
        for partition in range(partitions):
            self.to_partition(topic, partition, message)

    def latest(self, topic: faust.TopicT, key: str, value: Optional[bytes]) -> None:
        """`value` None is a tombstone."""
        self.latest_values[(topic.get_topic_name(), key)] = value

    def record(self, topic: faust.TopicT, key: Optional[bytes], value: Optional[bytes]) -> None:
        self.records.append((topic.get_topic_name(), key, value))

    async def flush(self) -> None:
        """Hand everything to the producer (buffered; Faust flushes it before committing)."""
        send = self.app.producer.send
        sent: dict[str, int] = {}
        for (topic, partition), messages in self.envelopes.items():
            for first in range(0, len(messages), MAX_ENVELOPE_MESSAGES):
                for value in envelopes_of(messages[first : first + MAX_ENVELOPE_MESSAGES]):
                    await send(topic, None, value, partition, None, None)
                    sent[topic] = sent.get(topic, 0) + 1
        for (topic, text_key), latest in self.latest_values.items():
            await send(topic, text_key.encode(), latest, None, None, None)  # partitioned by key
            sent[topic] = sent.get(topic, 0) + 1
        for topic, raw_key, raw_value in self.records:
            await send(topic, raw_key, raw_value, None, None, None)
            sent[topic] = sent.get(topic, 0) + 1
        for name, count in sent.items():
            metrics.events_out.labels(name).inc(count)
        self.envelopes.clear()
        self.keyed.clear()
        self.latest_values.clear()
        self.records.clear()
