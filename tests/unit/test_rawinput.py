"""app/rawinput.py and app/batching.in_partition_of: the two places the hot path leans on
Faust's internals, held to the shapes they rely on and to their own rules."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import weakref
from types import SimpleNamespace

import faust.streams
import pytest
from faust.stores import rocksdb
from faust.tables.base import Collection
from faust.transport.conductor import Conductor
from faust.types import TP
from mode.utils.queues import FlowControlEvent

from app.batching import in_partition_of
from app.rawinput import GATHER_S, RawInput, RawInputConductor, raw_inputs

TOPIC = "qapp-events"


class Thing:
    """Hashable and weakly referable, as Faust's events and topics are."""

    def get_topic_name(self) -> str:
        return TOPIC


# --- in_partition_of --------------------------------------------------------------------


def test_faust_tables_still_take_the_partition_from_the_current_event_variable() -> None:
    """The private API in_partition_of sets; a Faust upgrade that changes it fails here."""
    assert isinstance(faust.streams._current_event, contextvars.ContextVar)
    assert "current_event()" in inspect.getsource(Collection.partition_for_key)
    assert "current_event()" in inspect.getsource(rocksdb.Store._set)
    assert "eventref()" in inspect.getsource(faust.streams.current_event)


def test_in_partition_of_names_the_event_inside_the_block_and_restores_after() -> None:
    outer, inner = Thing(), Thing()
    token = faust.streams._current_event.set(weakref.ref(outer))
    try:
        with in_partition_of(inner):
            assert faust.streams.current_event() is inner
        assert faust.streams.current_event() is outer
        with pytest.raises(RuntimeError), in_partition_of(inner):
            raise RuntimeError("a failing block restores it too")
        assert faust.streams.current_event() is outer
    finally:
        faust.streams._current_event.reset(token)


# --- RawInput ---------------------------------------------------------------------------


def synchronously(test):
    """An async test run to its end in a loop of its own (no asyncio plugin here)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))
    return run


class Message:
    def __init__(self, partition: int, offset: int, generation: int = 1) -> None:
        self.topic = TOPIC
        self.partition = partition
        self.offset = offset
        self.tp = TP(TOPIC, partition)
        self.generation_id = generation
        self.tracked = False

    def __repr__(self) -> str:
        return f"M{self.partition}@{self.offset}"


class Consumer:
    def __init__(self) -> None:
        self.highwaters: dict[TP, int] = {}
        self.tracked: list[Message] = []
        self.acked: list[Message] = []
        self.full: list[TP] = []
        self.dropped: list[TP] = []

    def highwater(self, tp: TP) -> int:
        return self.highwaters.get(tp, 0)

    def track_message(self, message: Message) -> None:
        self.tracked.append(message)

    def ack(self, message: Message) -> None:
        self.acked.append(message)

    def on_buffer_full(self, tp: TP) -> None:
        self.full.append(tp)

    def on_buffer_drop(self, tp: TP) -> None:
        self.dropped.append(tp)


class App:
    def __init__(self) -> None:
        self.consumer = Consumer()
        self.flow_control = FlowControlEvent(initially_suspended=False)
        self.consumer_generation_id = 1
        self.topics = SimpleNamespace(added=[], add=lambda topic: self.topics.added.append(topic))


def raw_input(max_batch: int = 3, high_water: int | None = None) -> tuple[App, RawInput]:
    app = App()
    topic = Thing()
    return app, RawInput(app, topic, max_batch, high_water)  # type: ignore[arg-type]


async def next_batch(batches, timeout: float = 1.0) -> list:
    return await asyncio.wait_for(batches.__anext__(), timeout)


def test_a_raw_input_registers_itself_once_per_topic() -> None:
    app, raw = raw_input()
    assert raw_inputs(app) == {TOPIC: raw} and app.topics.added == [raw.topic]
    assert raw in app.flow_control._queues  # cleared with the streams' queues at a rebalance
    with pytest.raises(ValueError, match="already has a raw input"):
        RawInput(app, raw.topic, 3)  # type: ignore[arg-type]


@synchronously
async def test_batches_come_in_fetch_order_tracked_and_are_acked_after_the_body() -> None:
    app, raw = raw_input(max_batch=3)
    messages = [Message(p, o) for o, p in enumerate([0, 1, 0, 2, 1])]
    for m in messages:
        raw.deliver(m)
    batches = raw.batches()
    first = await next_batch(batches)
    assert first == messages[:3] and app.consumer.tracked == messages[:3] and all(m.tracked for m in first)
    assert app.consumer.acked == []  # not before the body ran
    second = await next_batch(batches)
    assert second == messages[3:] and app.consumer.acked == messages[:3]
    waiting = asyncio.ensure_future(next_batch(batches))
    await asyncio.sleep(0.01)
    assert app.consumer.acked == messages  # acked when the body came back for more
    late = Message(3, 9)
    raw.deliver(late)  # live: a lone record goes on at once
    assert await waiting == [late]


@synchronously
async def test_a_body_that_raises_acknowledges_nothing_of_its_batch() -> None:
    app, raw = raw_input()
    raw.deliver(Message(0, 0))

    async def body() -> None:
        async for _batch in raw.batches():
            raise RuntimeError("a defect")

    with pytest.raises(RuntimeError):
        await body()
    assert app.consumer.tracked and app.consumer.acked == []


@synchronously
async def test_a_backlog_gathers_a_full_batch_and_a_stalled_one_goes_on_after_gather_s() -> None:
    app, raw = raw_input(max_batch=3)
    first = Message(0, 0)
    app.consumer.highwaters[first.tp] = 10  # Kafka holds more of partition 0
    raw.deliver(first)
    batches = raw.batches()
    pending = asyncio.ensure_future(next_batch(batches))
    await asyncio.sleep(0)
    raw.deliver(Message(0, 1))
    await asyncio.sleep(0)
    assert not pending.done()
    raw.deliver(Message(0, 2))
    assert [m.offset for m in await pending] == [0, 1, 2]
    raw.deliver(Message(0, 3))  # more in Kafka, but nothing comes: it goes on anyway
    started = asyncio.get_running_loop().time()
    assert [m.offset for m in await next_batch(batches)] == [3]
    assert asyncio.get_running_loop().time() - started >= GATHER_S * 0.9


@synchronously
async def test_a_full_buffer_pauses_its_partitions_until_it_drains() -> None:
    app, raw = raw_input(max_batch=2, high_water=4)
    for offset in range(5):
        raw.deliver(Message(offset % 2, offset))
    assert app.consumer.full == [TP(TOPIC, 1), TP(TOPIC, 0)]  # each once, when past the mark
    batches = raw.batches()
    await next_batch(batches)
    assert app.consumer.dropped == []  # 3 left: not yet below half the mark
    await next_batch(batches)
    assert sorted(app.consumer.dropped) == [TP(TOPIC, 0), TP(TOPIC, 1)] and raw.paused == set()


@synchronously
async def test_a_rebalance_clears_the_buffer_and_stale_generations_are_never_yielded() -> None:
    app, raw = raw_input(max_batch=10, high_water=2)
    raw.deliver(Message(0, 0))
    raw.deliver(Message(0, 1))
    assert raw.paused
    app.flow_control.suspend()
    app.flow_control.clear()  # what Faust does when partitions are revoked
    assert raw.buffer == [] and raw.paused == set() and app.consumer.dropped == [TP(TOPIC, 0)]
    batches = raw.batches()
    pending = asyncio.ensure_future(next_batch(batches))
    raw.deliver(Message(0, 0, generation=1))  # fetched before the new assignment
    await asyncio.sleep(0.01)
    assert not pending.done()  # flow suspended: nothing is taken
    app.consumer_generation_id = 2
    app.flow_control.resume()  # clears again, then the new generation's records come
    fresh = Message(0, 0, generation=2)
    raw.deliver(Message(1, 5, generation=1))
    raw.deliver(fresh)
    assert await pending == [fresh]
    assert app.consumer.tracked == [fresh]


def test_the_conductor_hands_a_raw_inputs_partitions_to_deliver_and_no_other_reader() -> None:
    assert "_build_handler" in vars(Conductor)  # the method RawInputConductor overrides
    app, raw = raw_input()
    conductor = RawInputConductor.__new__(RawInputConductor)
    conductor.app = app  # type: ignore[assignment]
    handler = conductor._build_handler(TP(TOPIC, 0), {raw.topic})
    message = Message(0, 7)
    asyncio.run(handler(message))
    assert raw.buffer == [message]
    with pytest.raises(RuntimeError, match="other readers"):
        conductor._build_handler(TP(TOPIC, 0), {raw.topic, Thing()})


def test_the_conductor_keeps_the_queues_of_its_streams_not_of_raw_inputs() -> None:
    app, raw = raw_input()
    stream_channel = Thing()
    stream_channel.queue = "stream queue"  # type: ignore[attr-defined]
    conductor = RawInputConductor.__new__(RawInputConductor)
    conductor.app = app  # type: ignore[assignment]
    conductor._tp_index = {}  # type: ignore[assignment]
    conductor._tp_to_callback = {}  # type: ignore[assignment]
    conductor._topic_name_index = {TOPIC: {raw.topic}, "cc-events": {stream_channel}}  # type: ignore[assignment]
    conductor._update_callback_map()
    assert conductor.stream_queues == ("stream queue",)
