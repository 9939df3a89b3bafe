"""`take_ready` lets a batch held for more go when the consumer waits for acknowledgements:
a rebalance clears the stream's queue, so the records Kafka promised never come."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from app.batching import WAKE_UP, take_ready, wake_stages


class _Stream:
    """What take_ready reads of a Faust stream: its queue, values, current event, manual acks."""

    def __init__(self, highwater: int) -> None:
        self.channel = SimpleNamespace(queue=asyncio.Queue())
        self.app = SimpleNamespace(consumer=SimpleNamespace(highwater=lambda tp: highwater))
        self.current_event = None
        self.acked: list[int] = []

    def noack(self) -> "_Stream":
        return self

    def __aiter__(self):
        return self

    async def __anext__(self):
        value = await self.channel.queue.get()
        self.current_event = None if value is WAKE_UP else value
        return value

    async def ack(self, event) -> None:
        self.acked.append(event.message.offset)


def _event(offset: int):
    return SimpleNamespace(message=SimpleNamespace(tp=("cc-queues", 0), offset=offset), value=b"")


def test_a_batch_held_for_records_kafka_promised_goes_on_when_the_stages_are_woken():
    async def scenario():
        stream = _Stream(highwater=100)  # Kafka says records up to 99 exist
        batches: list[list[int]] = []

        async def run():
            async for batch in take_ready(stream, 64):
                batches.append([e.message.offset for e in batch])

        task = asyncio.ensure_future(run())
        for offset in (10, 11):
            stream.channel.queue.put_nowait(_event(offset))
        await asyncio.sleep(0.05)
        held = list(batches)  # waiting for 12..99, which a rebalance will never deliver
        wake_stages()
        await asyncio.sleep(0.05)
        task.cancel()
        return held, batches, stream.acked

    held, batches, acked = asyncio.run(scenario())
    assert held == []
    assert batches == [[10, 11]] and acked == [10, 11]


def test_a_wake_up_with_nothing_held_yields_no_empty_batch():
    async def scenario():
        stream = _Stream(highwater=0)
        batches: list[list[int]] = []

        async def run():
            async for batch in take_ready(stream, 64):
                batches.append([e.message.offset for e in batch])

        task = asyncio.ensure_future(run())
        await asyncio.sleep(0)
        wake_stages()
        stream.channel.queue.put_nowait(_event(5))  # live: Kafka holds nothing more, it goes at once
        await asyncio.sleep(0.05)
        task.cancel()
        return batches

    assert asyncio.run(scenario()) == [[5]]
