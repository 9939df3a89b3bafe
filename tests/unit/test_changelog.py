"""app/changelog.py: table writes straight to RocksDB, changelog records in Kafka batches."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from app.batching import in_partition_of
from app.changelog import ChangelogWriter
from app.delivery import Deliveries


class FakeDB(dict):
    def put(self, key, value):
        self[key] = value

    def delete(self, key):
        self.pop(key, None)


class Event:
    """A stream event of `partition` (the partition a table write goes to)."""

    def __init__(self, partition):
        self.message = SimpleNamespace(partition=partition)


def write(writer, table, partition, key, value):
    with in_partition_of(Event(partition)):
        writer.write(table, key, value)


class FakeStore:
    """The part of Faust's RocksDB store the writer touches."""

    def __init__(self):
        self._dbs = {}
        self._key_index = {}
        self.persisted = {}

    def _db_for_partition(self, partition):
        return self._dbs.setdefault(partition, FakeDB())

    def _get(self, key):  # Faust's lookup without a current event: whichever partition has it
        partition = self._key_index.get(key)
        return None if partition is None else self._dbs[partition].get(key)

    def set_persisted_offset(self, tp, offset):
        self.persisted[tp.partition] = offset


class FakeTable:
    def __init__(self, name="t-calls"):
        self.name = name
        self.data = FakeStore()
        self.changelog_topic = type("Topic", (), {"get_topic_name": lambda _self: f"{name}-changelog"})()


class FakeKafka:
    """aiokafka's batch API: `create_batch` (real builders), `send_batch` (futures the test resolves)."""

    def __init__(self, batch_size=16384):
        self.batch_size = batch_size
        self.sent = []  # (topic, partition, [(key, value)], future)

    def create_batch(self):
        return BatchBuilder(self.batch_size, 0)

    async def send_batch(self, batch, topic, *, partition):
        records = [(r.key, r.value) for r in DefaultRecordBatch(bytes(batch._build()))]
        future = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, records, future))
        return future


class FakeProducer:
    def __init__(self, kafka):
        self.kafka = kafka
        self.failures = []
        self.deliveries = Deliveries(on_failure=self.failures.append)

    def _ensure_producer(self):
        return self.kafka


def _writer(batch_size=16384):
    writer = ChangelogWriter()
    kafka = FakeKafka(batch_size)
    writer.producer = FakeProducer(kafka)
    return writer, kafka


def test_a_write_outside_an_event_is_refused():
    writer, _ = _writer()
    with pytest.raises(RuntimeError, match="outside of a stream's event"):
        writer.write(FakeTable(), b"k", b"v")


def test_a_write_is_in_the_store_of_its_event_partition_at_once():
    async def run():
        writer, _ = _writer()
        table = FakeTable()
        write(writer, table, 2, b"k1", b"v1")
        assert table.data._dbs[2][b"k1"] == b"v1"
        assert writer.read(table, b"k1") == b"v1"
        assert table.data._key_index[b"k1"] == 2
    asyncio.run(run())


def test_flush_sends_one_batch_per_table_and_partition_in_write_order():
    async def run():
        writer, kafka = _writer()
        calls, queues = FakeTable("t-calls"), FakeTable("t-queues")
        write(writer, calls, 0, b"a", b"1")
        write(writer, queues, 0, b"q", b"x")
        write(writer, calls, 0, b"a", b"2")
        write(writer, calls, 3, b"b", b"3")
        assert await writer.flush() == 4
        sent = {(topic, partition): records for topic, partition, records, _ in kafka.sent}
        assert sent == {("t-calls-changelog", 0): [(b"a", b"1"), (b"a", b"2")],
                        ("t-queues-changelog", 0): [(b"q", b"x")],
                        ("t-calls-changelog", 3): [(b"b", b"3")]}
        assert await writer.flush() == 0 and len(kafka.sent) == 3  # nothing twice
    asyncio.run(run())


def test_a_delete_is_a_tombstone_and_leaves_the_store():
    async def run():
        writer, kafka = _writer()
        table = FakeTable()
        write(writer, table, 1, b"k", b"v")
        assert writer.read(table, b"k") == b"v"
        write(writer, table, 1, b"k", None)
        assert writer.read(table, b"k") is None and b"k" not in table.data._key_index
        await writer.flush()
        assert kafka.sent[0][2] == [(b"k", b"v"), (b"k", None)]
    asyncio.run(run())


def test_a_full_batch_is_sent_and_the_rest_goes_in_another():
    async def run():
        writer, kafka = _writer(batch_size=200)
        table = FakeTable()
        for i in range(10):
            write(writer, table, 0, f"key-{i}".encode(), b"x" * 60)
        assert await writer.flush() == 10
        assert len(kafka.sent) > 1
        keys = [key for _, _, records, _ in kafka.sent for key, _ in records]
        assert keys == [f"key-{i}".encode() for i in range(10)]  # every record, in order
    asyncio.run(run())


def test_the_persisted_offset_is_the_batch_last_record_once_kafka_has_it():
    async def run():
        writer, kafka = _writer()
        table = FakeTable()
        for i in range(3):
            write(writer, table, 2, f"k{i}".encode(), b"v")
        await writer.flush()
        (_, _, _, future), = kafka.sent
        assert table.data.persisted == {}  # not before the acknowledgement
        future.set_result(type("Meta", (), {"offset": 40})())
        await asyncio.sleep(0)
        assert table.data.persisted == {2: 42}
    asyncio.run(run())


def test_a_refused_batch_moves_no_offset_and_is_a_delivery_failure():
    async def run():
        writer, kafka = _writer()
        table = FakeTable()
        write(writer, table, 0, b"k", b"v")
        await writer.flush()
        kafka.sent[0][3].set_exception(RuntimeError("refused"))
        await asyncio.sleep(0)
        assert table.data.persisted == {}
        assert writer.producer.deliveries.failed == 1 and len(writer.producer.failures) == 1
    asyncio.run(run())


def test_a_write_outside_a_stage_is_sent_without_an_explicit_flush():
    async def run():
        writer, kafka = _writer()
        write(writer, FakeTable(), 0, b"k", b"v")
        for _ in range(3):
            await asyncio.sleep(0)
        assert [records for _, _, records, _ in kafka.sent] == [[(b"k", b"v")]]
    asyncio.run(run())


def test_a_record_larger_than_a_batch_goes_in_a_batch_of_its_own():
    async def run():
        writer, kafka = _writer(batch_size=100)
        table = FakeTable()
        write(writer, table, 0, b"first", b"small")
        write(writer, table, 0, b"big", b"x" * 5000)  # Kafka's limit, not the batch's, decides its fate
        write(writer, table, 0, b"last", b"small")
        assert await writer.flush() == 3
        assert [[key for key, _ in records] for _, _, records, _ in kafka.sent] == [[b"first"], [b"big"], [b"last"]]
    asyncio.run(run())
