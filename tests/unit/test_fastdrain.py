"""app/fastdrain.py: Faust's per-record `wait_first`, skipped only when delivery cannot block."""

from __future__ import annotations

import asyncio
import inspect
import re
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from app import fastdrain
from app.fastdrain import FastDrainConsumer, delivery_cannot_block


def test_faust_still_delivers_each_record_through_wait_first_with_the_suspend_flow() -> None:
    """The shape FastDrainConsumer recognises; a Faust upgrade that changes it fails here."""
    source = inspect.getsource(Consumer._drain_messages)
    assert re.search(r"await self\.wait_first\(\s*callback\(message\), self\.suspend_flow\.wait\(\)\s*\)", source)
    assert isinstance(Consumer.__init__.__globals__["Event"](), asyncio.Event)  # suspend_flow's type


class Queue:
    def __init__(self, full: bool = False) -> None:
        self._full = full

    def full(self) -> bool:
        return self._full


def consumer(**change) -> SimpleNamespace:
    """A consumer whose delivery cannot block; `change` makes one thing otherwise."""
    state = {"stopping": False, "suspended": False, "flow": True, "control": True, "pending": 5, "locked": False,
             "full": False, **change}
    pending = SimpleNamespace(qsize=lambda: state["pending"])
    app = SimpleNamespace(
        flow_control=SimpleNamespace(is_active=lambda: state["control"]),
        producer=SimpleNamespace(buffer=SimpleNamespace(pending=pending, max_messages=100)),
        topics=SimpleNamespace(
            _tp_to_callback_lock=SimpleNamespace(locked=lambda: state["locked"]),
            _topic_name_index={"a": [SimpleNamespace(queue=Queue())],
                               "b": [SimpleNamespace(queue=Queue()), SimpleNamespace(queue=Queue(state["full"]))]},
        ),
    )
    return SimpleNamespace(app=app, should_stop=state["stopping"], flow_active=state["flow"],
                           suspend_flow=SimpleNamespace(is_set=lambda: state["suspended"]))


def test_delivery_cannot_block_when_everything_flows() -> None:
    assert delivery_cannot_block(consumer())


@pytest.mark.parametrize("change", [
    {"stopping": True}, {"suspended": True}, {"flow": False}, {"control": False},
    {"pending": 101}, {"locked": True}, {"full": True},
])
def test_any_reason_to_wait_takes_fausts_own_path(change) -> None:
    assert not delivery_cannot_block(consumer(**change))


class Recorder(FastDrainConsumer):
    """FastDrainConsumer without a running Faust app: the slow path is recorded, not run."""

    def __init__(self) -> None:  # noqa: D107  (no Faust service machinery needed)
        self.slow_calls = 0

    async def _faust_wait_first(self, *coros, timeout=None):
        self.slow_calls += 1
        for coro in coros:
            coro.close()
        return "slow"


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    monkeypatch.setattr(faust_aiokafka.Consumer, "wait_first", Recorder._faust_wait_first)
    return Recorder()


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_a_delivery_that_cannot_block_is_awaited_directly(recorder, monkeypatch) -> None:
    monkeypatch.setattr(fastdrain, "delivery_cannot_block", lambda c: True)
    delivered = []

    async def deliver():
        delivered.append(1)
        return "done"

    async def go():
        return await recorder.wait_first(deliver(), asyncio.Event().wait())

    result = run(go())
    assert delivered == [1] and result.results == ["done"] and not result.stopped and recorder.slow_calls == 0


def test_a_delivery_that_may_block_goes_through_faust(recorder, monkeypatch) -> None:
    monkeypatch.setattr(fastdrain, "delivery_cannot_block", lambda c: False)

    async def deliver():
        return "done"

    async def go():
        return await recorder.wait_first(deliver(), asyncio.Event().wait())

    assert run(go()) == "slow" and recorder.slow_calls == 1


def test_other_waits_go_through_faust(recorder, monkeypatch) -> None:
    monkeypatch.setattr(fastdrain, "delivery_cannot_block", lambda c: True)

    async def something():
        return 1

    async def go():
        first = await recorder.wait_first(something(), something())  # not the suspend-flow wait
        second = await recorder.wait_first(something(), asyncio.Event().wait(), timeout=1.0)
        return first, second

    assert run(go()) == ("slow", "slow") and recorder.slow_calls == 2


def test_the_queues_a_raw_input_conductor_keeps_are_the_ones_checked() -> None:
    full = consumer()
    full.app.topics.stream_queues = (Queue(), Queue(full=True))
    assert not delivery_cannot_block(full)
    full.app.topics.stream_queues = (Queue(),)
    assert delivery_cannot_block(full)
