"""An input topic read as batches of raw Kafka messages instead of one Faust event each.

Faust hands every record to its agents one by one: the conductor's callback decodes key
and value, builds an `Event`, puts it on the stream's queue; the stream takes it out,
calls the sensors, sets the current event, yields it and acknowledges it. That is the
whole cost of a bare Faust agent (bench/README.md), paid per record of a busy input
before any work is done. A stage that decodes raw bytes itself and writes no table in
the input's partitions (a router) needs none of it.

`RawInput` keeps everything of Faust that matters to delivery — the consumer, group
membership, the fetcher, offsets, gaps, commits, flow control during rebalances — and
replaces only the hand-over: the conductor's callback for the topic's partitions
(`RawInputConductor`) appends the message to a buffer, and `batches()` yields what has
gathered. A batch's messages are tracked as Faust's streams track theirs, so a
rebalance or a shutdown waits until the loop body has run, and acknowledged after it
ran to its end, so a commit never covers a message whose outputs were not handed to
the producer.
A rebalance clears the buffer (`app.flow_control` manages it like a stream's queue):
the consumer reads those records again from the committed offsets. A buffer past its
high-water mark pauses fetching of its partitions, as a full stream buffer does.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Optional

import faust
from faust.transport.conductor import Conductor
from faust.types import TP, Message

from app.batching import more_in_kafka

__all__ = ["RawInput", "RawInputConductor", "raw_inputs"]

GATHER_S = 0.05  # behind (Kafka holds more), wait at most this long for the next record


def raw_inputs(app: Any) -> dict[str, "RawInput"]:
    """The raw inputs of `app`, by topic name."""
    found = getattr(app, "_raw_inputs", None)
    if found is None:
        found = {}
        app._raw_inputs = found
    return found


class RawInput:
    """Batches of raw messages of `topic` (see the module's doc). One reader per topic."""

    def __init__(self, app: faust.App, topic: faust.TopicT, max_batch: int, high_water: Optional[int] = None) -> None:
        self.app = app
        self.topic = topic
        self.name = topic.get_topic_name()
        self.max_batch = max_batch
        self.high_water = high_water or 2 * max_batch
        self.buffer: list[Message] = []
        self.want = 1  # the buffer size that wakes the reader
        self.ready = asyncio.Event()
        self.paused: set[TP] = set()
        self.delivered: dict[TP, int] = {}  # the last offset delivered, per partition
        registry = raw_inputs(app)
        if self.name in registry:
            raise ValueError(f"topic {self.name} already has a raw input")
        registry[self.name] = self
        app.topics.add(topic)  # the conductor subscribes to it
        app.flow_control.manage_queue(self)  # type: ignore[arg-type]  # cleared like a stream's queue

    # --- the consumer's side ---

    def deliver(self, message: Message) -> None:
        """Called for every fetched message of the topic; never blocks."""
        buffer = self.buffer
        buffer.append(message)
        self.delivered[message.tp] = message.offset
        size = len(buffer)
        if size >= self.want:
            self.ready.set()
        if size >= self.high_water and message.tp not in self.paused:
            self.paused.add(message.tp)
            self.app.consumer.on_buffer_full(message.tp)

    def clear(self) -> None:
        """A rebalance: forget what was not taken yet (it is read again after it)."""
        self.buffer = []
        self.delivered = {}
        self.want = 1
        self.ready.clear()
        self._resume_fetching()

    def _resume_fetching(self) -> None:
        for tp in self.paused:
            self.app.consumer.on_buffer_drop(tp)
        self.paused.clear()

    # --- the reader's side ---

    async def batches(self) -> AsyncIterator[list[Message]]:
        """Batches of up to `max_batch` messages in fetch order. A batch goes on as soon as
        something is buffered, unless Kafka holds more for its partitions (a backlog):
        then it takes in what the fetcher delivers as long as more keeps coming within
        GATHER_S, up to a full batch. Acknowledged after the loop body."""
        app = self.app
        consumer = app.consumer
        flow = app.flow_control
        while True:
            await flow.acquire()
            if not self.buffer:
                await self._wait_for(1, None)
                continue
            while len(self.buffer) < self.max_batch and self._more_in_kafka():
                if not await self._wait_for(len(self.buffer) + 1, GATHER_S):
                    break  # Kafka said more, but nothing came: go with what is here
            taken = self.buffer[: self.max_batch]
            del self.buffer[: self.max_batch]
            if len(self.buffer) < self.high_water // 2:
                self._resume_fetching()
            if not flow.is_active():
                continue  # a rebalance began: these are read again after it
            generation = app.consumer_generation_id
            batch = [message for message in taken if message.generation_id == generation]
            if not batch:
                continue
            for message in batch:
                message.tracked = True
                consumer.track_message(message)
            yield batch
            # only once the loop body ran to its end: a body that raised acknowledges
            # nothing, and its messages are read again by whoever owns the partition next
            for message in batch:
                consumer.ack(message)

    async def _wait_for(self, size: int, timeout: Optional[float]) -> bool:
        """Until the buffer holds `size` messages (True) or `timeout` passed (False)."""
        self.want = size
        self.ready.clear()
        try:
            if timeout is None:
                await self.ready.wait()
            else:
                await asyncio.wait_for(self.ready.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return len(self.buffer) >= size
        finally:
            self.want = 1

    def _more_in_kafka(self) -> bool:
        """Kafka has records of an unpaused partition past the last one delivered."""
        unpaused = {tp: offset for tp, offset in self.delivered.items() if tp not in self.paused}
        return more_in_kafka(self.app.consumer, unpaused)


class RawInputConductor(Conductor):
    """Faust's conductor; a raw input's partitions get `RawInput.deliver` as their callback.
    It also keeps `stream_queues`, the queues of the streams it delivers to, for the
    per-record check of app/fastdrain.py (rebuilt whenever its callbacks are)."""

    stream_queues: Optional[tuple[Any, ...]] = None

    def _update_callback_map(self) -> None:
        super()._update_callback_map()
        raw = raw_inputs(self.app)
        self.stream_queues = tuple(
            channel.queue
            for name, channels in self._topic_name_index.items() if name not in raw
            for channel in channels
        )

    def _build_handler(self, tp: TP, channels: Any) -> Any:
        raw = raw_inputs(self.app).get(tp.topic)
        if raw is None:
            return super()._build_handler(tp, channels)
        if len(channels) != 1:
            raise RuntimeError(f"topic {tp.topic} is a raw input and has other readers: {channels!r}")
        deliver = raw.deliver

        async def on_raw_message(message: Message) -> None:
            deliver(message)

        return on_raw_message
