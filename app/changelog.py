"""Table writes at the price of a RocksDB put and a record appended to a Kafka batch.

A write through Faust's `Table.__setitem__` costs far more than the state it stores: a
`FutureMessage` into the producer buffer, a task that publishes it alone (sensors, headers,
a producer call), a callback that writes the changelog offset to RocksDB for every record,
and, once more than `producer_buffer_max_messages` wait, every stream of the worker stopped
until nearly all of them are sent. Profiled on the throughput rows (2026-11-29): the worker
froze 2-5 s at a time, twice a run, its inputs idle while that buffer drained.

Here a `StateTable` write goes to the RocksDB database of its partition at once (the
current event's, as Faust's own write) and its changelog record into
one Kafka batch per changelog partition (`aiokafka`'s batch API), sent by `flush`: after
each stage batch, and before every commit (`GuardedProducer.flush` calls it first, so a
commit never covers an input whose changelog records were not handed to Kafka). The records
are byte for byte what Faust writes for our raw-serialized tables, so its recovery and
standby replicas read them as their own; the changelog offset Faust keeps per partition (to
recover from there) is written once per batch, when Kafka acknowledges it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from faust.streams import current_event
from faust.types import TP

__all__ = ["ChangelogWriter", "changelogs"]

log = logging.getLogger(__name__)


class ChangelogWriter:
    """Changelog records of every table, per (table, partition), until `flush` sends them."""

    def __init__(self) -> None:
        self.pending: dict[tuple[Any, int], list[tuple[bytes, Optional[bytes]]]] = {}
        self.producer: Any = None  # the worker's GuardedProducer (set when the app is made)
        self._lock: Optional[asyncio.Lock] = None
        self._scheduled = False
        self.sent = 0

    def read(self, table: Any, key: bytes) -> Optional[bytes]:
        """What the store holds for `key`, as Faust's `Table.get` finds it (in the current
        event's partition; without one, in whichever partition has it), in one RocksDB get
        where `Table.get` takes two."""
        return table.data._get(key)

    def write(self, table: Any, key: bytes, value: Optional[bytes]) -> None:
        """`value` for `key` in the store, and its changelog record queued (`None`: the key
        deleted, a tombstone). Like Faust's own write, it goes to the partition of the
        current event (`app.batching.in_partition_of` names it): a table's keys live in the
        partition of the stream that writes them, which need not be the key's own hash
        (a queue's windows live with the queue)."""
        event = current_event()
        if event is None:
            raise RuntimeError(f"a write to table {table.name} outside of a stream's event (no partition to write in)")
        partition = event.message.partition
        store = table.data
        db = store._db_for_partition(partition)
        if value is None:
            db.delete(key)
            store._key_index.pop(key, None)
        else:
            db.put(key, value)
            store._key_index[key] = partition
        records = self.pending.get((table, partition))
        if records is None:
            records = self.pending[(table, partition)] = []
        records.append((key, value))
        if not self._scheduled:  # writes outside a stage (a timer, a handler) go out too
            self._scheduled = True
            asyncio.get_event_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._scheduled = False
        if self.pending:
            asyncio.ensure_future(self.flush())

    async def flush(self) -> int:
        """Hand every queued record to the producer (in order per partition); how many.
        Their delivery is watched like every record the worker sends."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one flush at a time: records of a key stay in order
            pending, self.pending = self.pending, {}
            sent = 0
            for (table, partition), records in pending.items():
                sent += await self._send(table, partition, records)
            self.sent += sent
            return sent

    async def _send(self, table: Any, partition: int, records: list[tuple[bytes, Optional[bytes]]]) -> int:
        producer = self.producer._ensure_producer()  # aiokafka's, under Faust's
        topic = table.changelog_topic.get_topic_name()
        batch = producer.create_batch()
        count = 0
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start another
                await self._submit(producer, batch, table, topic, partition, count)
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any record
                count = 0
            count += 1
        if count:
            await self._submit(producer, batch, table, topic, partition, count)
        return len(records)

    async def _submit(self, producer: Any, batch: Any, table: Any, topic: str, partition: int, count: int) -> None:
        batch.close()
        delivery = await producer.send_batch(batch, topic, partition=partition)
        self.producer.deliveries.watch(delivery)
        delivery.add_done_callback(lambda done: _persisted(table, topic, partition, count, done))


def _persisted(table: Any, topic: str, partition: int, count: int, delivery: "asyncio.Future[Any]") -> None:
    """Faust's offset of what the store holds from the changelog (its recovery starts there):
    the batch's last record, once Kafka has it."""
    if delivery.cancelled() or delivery.exception() is not None:
        return  # GuardedProducer's watch stops the worker
    metadata = delivery.result()
    table.data.set_persisted_offset(TP(topic, partition), metadata.offset + count - 1)


changelogs = ChangelogWriter()
