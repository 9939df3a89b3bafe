"""Delivery futures watched: a record Kafka refused is counted, and no commit follows it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaTimeoutError
from faust.transport.drivers import aiokafka as faust_aiokafka

from app.delivery import Deliveries, GuardedConsumer, GuardedProducer


def test_deliveries_keep_the_first_failure_and_count_every_one():
    async def scenario():
        seen: list[BaseException] = []
        deliveries = Deliveries(on_failure=seen.append)
        loop = asyncio.get_running_loop()
        ok, refused, timed_out, pending = (loop.create_future() for _ in range(4))
        for future in (ok, refused, timed_out, pending):
            deliveries.watch(future)
        ok.set_result("metadata")
        await asyncio.sleep(0)
        assert deliveries.failure() is None
        refused.set_exception(ValueError("record too large"))
        timed_out.set_exception(TimeoutError("batch expired"))
        await asyncio.sleep(0)
        return deliveries, seen

    deliveries, seen = asyncio.run(scenario())
    assert deliveries.failed == 2 and [type(e) for e in seen] == [ValueError, TimeoutError]
    failure = deliveries.failure("of 4 lines sent were")
    assert str(failure) == "2 of 4 lines sent were not acknowledged by Kafka (first: ValueError: record too large)"


def test_a_cancelled_delivery_counts_as_not_delivered():
    async def scenario():
        deliveries = Deliveries()
        future = asyncio.get_running_loop().create_future()
        deliveries.watch(future)
        future.cancel()
        await asyncio.sleep(0)
        return deliveries

    assert asyncio.run(scenario()).failed == 1


class _CommitsRecorded(GuardedConsumer):
    """The guard above a stand-in for Faust's real commit (which needs a broker)."""

    def __init__(self, deliveries: Deliveries) -> None:  # no Faust consumer behind it
        self.app = SimpleNamespace(producer=SimpleNamespace(deliveries=deliveries), consumer_generation_id=3)
        self.committed: list[dict] = []


async def _record(self, offsets):
    self.committed.append(offsets)
    return True


def test_no_commit_after_an_output_was_refused(monkeypatch):
    monkeypatch.setattr(GuardedConsumer.__mro__[1], "_commit", _record)  # faust's aiokafka Consumer

    async def scenario():
        deliveries = Deliveries()
        consumer = _CommitsRecorded(deliveries)
        assert await consumer._commit({"tp": 10}) is True
        refused = asyncio.get_running_loop().create_future()
        deliveries.watch(refused)
        refused.set_exception(ValueError("refused"))
        await asyncio.sleep(0)
        assert await consumer._commit({"tp": 20}) is False
        return consumer.committed

    assert asyncio.run(scenario()) == [{"tp": 10}]


class _GivingUpBuffer:
    """Faust's ProducerBuffer as a starved worker sees it: records queued, and a `flush`
    that gives up (its 0.1 s without a send passed) with them still there."""

    def __init__(self, queued) -> None:
        self.pending = asyncio.Queue()
        for fut in queued:
            self.pending.put_nowait(fut)

    async def flush(self) -> None:
        return None


def _producer(queued) -> GuardedProducer:
    producer = object.__new__(GuardedProducer)  # no service machinery: only what flush reads
    producer.buffer = _GivingUpBuffer(queued)
    producer._producer = None
    producer._transaction_producers = {}
    return producer


def test_flush_waits_for_every_changelog_write_queued_before_it():
    async def scenario():
        queued = [asyncio.get_running_loop().create_future() for _ in range(3)]
        producer = _producer(queued)
        plain = asyncio.ensure_future(faust_aiokafka.Producer.flush(producer))
        flush = asyncio.ensure_future(producer.flush())
        for _ in range(5):
            await asyncio.sleep(0)
        assert plain.done()  # Faust's flush: returned with the writes still queued
        assert not flush.done()
        for fut in queued:
            fut.set_result(None)  # Kafka acknowledged them
        await asyncio.wait_for(flush, 1)

    asyncio.run(scenario())


def test_flush_raises_when_a_queued_write_is_refused():
    async def scenario():
        refused = asyncio.get_running_loop().create_future()
        refused.set_exception(KafkaTimeoutError())
        with pytest.raises(KafkaTimeoutError):
            await _producer([refused]).flush()

    asyncio.run(scenario())


def test_a_record_no_stream_took_is_never_acknowledged(monkeypatch):
    """Faust's stream acknowledges the records it skips while a rebalance stops the flow:
    counted as processed, the commit would cover them (a broker's loss lost a call's facts)."""
    acked = []
    monkeypatch.setattr(faust_aiokafka.Consumer, "ack", lambda self, message: acked.append(message.offset) or True)
    consumer = _CommitsRecorded(Deliveries())
    skipped = SimpleNamespace(tracked=False, offset=7, generation_id=3)
    taken = SimpleNamespace(tracked=True, offset=8, generation_id=3)
    before_the_rebalance = SimpleNamespace(tracked=True, offset=9, generation_id=2)
    assert consumer.ack(skipped) is False
    assert consumer.ack(taken) is True
    assert consumer.ack(before_the_rebalance) is False  # read again from the commit: not this generation's
    assert acked == [8]
