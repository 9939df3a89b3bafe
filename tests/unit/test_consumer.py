"""The consumer's seek to the committed offsets at the end of a rebalance (app/consumer.py)."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

from faust.tables.recovery import Recovery
from faust.transport.utils import DefaultSchedulingStrategy
from faust.types import TP

from app.consumer import TunedConsumer

INPUT = TP("qapp-events", 2)
COMMITTED = 129


def _consumer(fetched: list[int], broker_answers: asyncio.Event) -> TunedConsumer:
    """Faust's own `getmany` and `perform_seek` over one fetch that returned `fetched`
    (offsets of INPUT), without a broker: the seek waits until `broker_answers` is set."""
    consumer = object.__new__(TunedConsumer)  # no Faust service machinery
    consumer.app = SimpleNamespace(consumer_generation_id=2, monitor=SimpleNamespace(track_tp_end_offset=lambda tp, end: None),
                                   tables=SimpleNamespace(recovery=SimpleNamespace(standby_offsets={}, standby_tps=set())))
    consumer._stopped, consumer._crashed = asyncio.Event(), asyncio.Event()
    consumer.can_resume_flow, consumer.suspend_flow = asyncio.Event(), asyncio.Event()
    consumer.resume_flow()  # recovery turned the flow on to read the changelogs
    consumer.scheduler = DefaultSchedulingStrategy()
    consumer._buffered_partitions = set()
    consumer._read_offset, consumer._committed_offset = {}, {}
    consumer.highwater = lambda tp: 10_000
    consumer._to_message = lambda tp, offset: SimpleNamespace(offset=offset)

    async def wait_next_records(timeout):
        return {INPUT: fetched}, {INPUT}

    async def seek_to_committed():
        await broker_answers.wait()
        return {INPUT: COMMITTED}

    consumer._wait_next_records = wait_next_records
    consumer.seek_to_committed = seek_to_committed
    return consumer


def test_no_record_fetched_before_the_seek_is_handed_over_after_it():
    """A takeover: Faust resumed the partition, a fetch from the committed offset came back,
    and the records are being handed to the raw input when recovery seeks to the committed
    offsets. Handed over after the seek, a record past the read offset the seek set back
    would look like a gap Faust counts as processed, while the records before it sit in a
    buffer the end of the rebalance clears."""

    async def scenario():
        broker_answers = asyncio.Event()
        consumer = _consumer(list(range(COMMITTED, COMMITTED + 1000)), broker_answers)
        handed: list[tuple[int, bool]] = []  # (offset, handed after the seek began)
        seek = None
        async for _, message in consumer.getmany(timeout=1.0):
            handed.append((message.offset, seek is not None))
            if len(handed) == 100:  # Faust's drain loop lets other tasks run every 100 records
                seek = asyncio.ensure_future(consumer.perform_seek())
                await asyncio.sleep(0)
                broker_answers.set()
            await asyncio.sleep(0)
        assert seek is not None
        await seek
        return consumer, handed

    consumer, handed = asyncio.run(scenario())
    assert [offset for offset, after_seek in handed if after_seek] == []
    assert consumer._read_offset == {INPUT: COMMITTED}  # the next record handed over: the committed one
    assert consumer.flow_active is False  # until Faust resumes it, after clearing the buffers


def test_faust_resumes_the_flow_after_the_seek():
    """`perform_seek` leaves the flow stopped: Faust must resume it after the seek (and clear
    the buffers before that), or the worker would stop reading. A Faust upgrade that
    changes the end of its rebalance fails here."""
    for step in (Recovery.on_recovery_completed, Recovery._resume_streams):
        source = inspect.getsource(step)
        seek = source.index("perform_seek()")
        assert source.index("flow_control.resume()", seek) > seek, step.__name__
        assert source.index("resume_flow()", seek) > seek, step.__name__


def test_standby_partitions_are_read_again_from_just_after_what_recovery_took():
    """Faust ends a recovery by clearing the queue of changelog records its standbys were
    already being fed: they are read again from after the last one taken, not lost."""
    consumer = object.__new__(TunedConsumer)
    taken_up_to, never_taken, empty = TP("t-ivr-rules-changelog", 1), TP("t-os-crm-changelog", 1), TP("t-x", 0)
    consumer.app = SimpleNamespace(tables=SimpleNamespace(recovery=SimpleNamespace(
        standby_tps={taken_up_to, never_taken, empty}, standby_offsets={taken_up_to: 11, never_taken: -1})))
    sought = {}

    async def seek_wait(partitions):
        sought.update(partitions)

    consumer.seek_wait = seek_wait
    asyncio.run(consumer._reseek_standbys())
    assert sought == {taken_up_to: 12, never_taken: 0, empty: 0}
