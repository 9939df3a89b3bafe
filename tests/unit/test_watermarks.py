"""Stream time: marks, low watermarks and input lag (app/streamtime.py)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.partitioner import key_partitioner, partition_of
from app.records import ahead_of_now
from app.streamtime import InputTracker, PartitionProgress, input_lag_s, low_watermark, source_mark
from tables.callcenter.events import CallConnected, CallEntered, MemberPaused
from tables.callcenter.routing import AGENTS, CALLS, destinations

NOW = 1_700_000_000.0


def test_a_fully_read_quiet_partition_marks_wall_clock_time() -> None:
    assert source_mark(PartitionProgress(10, NOW - 500, 1.0, NOW - 2), fully_read=True, now=NOW, quiet_s=2) == NOW
    assert source_mark(PartitionProgress(), fully_read=True, now=NOW, quiet_s=2) == NOW


def test_a_partition_that_caught_up_with_a_replay_still_in_flow_marks_its_last_record() -> None:
    """An ingest of old lines, read as fast as it is written: caught up for a moment, it
    must not promise wall-clock time, or every window the replay has yet to fill is final."""
    assert source_mark(PartitionProgress(10, NOW - 500, 1.0, NOW - 0.1), fully_read=True, now=NOW, quiet_s=2) == NOW - 500


def test_a_partition_behind_marks_the_time_of_its_last_processed_record() -> None:
    assert source_mark(PartitionProgress(10, NOW - 500, 1.0, NOW - 60), fully_read=False, now=NOW, quiet_s=2) == NOW - 500


def test_a_partition_with_nothing_processed_and_more_to_read_makes_no_promise() -> None:
    assert source_mark(PartitionProgress(), fully_read=False, now=NOW, quiet_s=2) is None


def test_low_watermark_waits_until_every_path_has_spoken() -> None:
    marks = {(0, 0): NOW, (0, 1): NOW - 5}
    assert low_watermark(marks, sources=2, vias=(0, 1)) is None
    marks.update({(1, 0): NOW - 30, (1, 1): NOW})
    assert low_watermark(marks, sources=2, vias=(0, 1)) == NOW - 30


@given(st.dictionaries(st.tuples(st.integers(0, 2), st.integers(0, 2)), st.floats(0, 1e10), min_size=9, max_size=9))
def test_low_watermark_is_the_least_mark_over_all_paths(marks) -> None:
    assert low_watermark(marks, sources=3, vias=(0, 1, 2)) == min(marks.values())


def test_input_lag_is_the_upstream_delay_when_caught_up_and_the_age_when_behind() -> None:
    progress = PartitionProgress(offset=9, event_time=NOW - 600, delay_s=2.5)
    assert input_lag_s(progress, fully_read=True, now=NOW) == 2.5  # a quiet night is not lag
    assert input_lag_s(progress, fully_read=False, now=NOW) == 600
    assert input_lag_s(PartitionProgress(), fully_read=False, now=NOW) is None


def test_call_events_go_to_the_call_stage_and_what_an_operator_does_to_the_operator_stage() -> None:
    assert destinations(CallEntered(NOW, "c1", "support", "+7916", 1)) == [(CALLS, "c1")]
    assert destinations(CallConnected(NOW, "c1", "support", "SIP/1", 3.0, 1.0)) == [(CALLS, "c1"), (AGENTS, "SIP/1")]
    assert destinations(MemberPaused(NOW, None, "SIP/1", True, "lunch")) == [(AGENTS, "SIP/1")]


def test_partition_of_matches_kafkas_default_partitioner() -> None:
    # murmur2 as the Java client (and aiokafka) compute it: values pinned from aiokafka's partitioner
    from aiokafka.partitioner import DefaultPartitioner

    for key in ("support", "PJSIP/1001", "1700000000.42"):
        for partitions in (1, 3, 4, 12):
            everyone = list(range(partitions))
            kafka = DefaultPartitioner()(key.encode(), everyone, everyone)
            assert partition_of(key, partitions) == kafka
            assert key_partitioner(key.encode(), everyone, everyone) == kafka


def test_a_record_from_the_future_is_implausible_but_a_little_skew_is_fine() -> None:
    assert ahead_of_now(NOW + 10, NOW, 300) is None
    reason = ahead_of_now(NOW + 3600, NOW, 300)
    assert reason is not None and "future" in reason


class _Consumer:
    """The parts of Faust's consumer `InputTracker.fully_read` reads: the end its fetcher last
    saw (`highwater`), the broker's end now (`highwaters`), the fetch position."""

    def __init__(self, fetched_end: int, broker_end: int, position: int = 0, read: bool = True) -> None:
        self.fetched_end, self.broker_end, self._position = fetched_end, broker_end, position
        self._read_offset = {TP: 0} if read else {}

    def highwater(self, tp):
        return self.fetched_end

    async def highwaters(self, *tps):
        return {tp: self.broker_end for tp in tps}

    async def position(self, tp):
        return self._position


class _App:
    def __init__(self, consumer: _Consumer) -> None:
        self.consumer = consumer


TP = ("qapp-events", 0)


def _tracker(processed_offset: int | None) -> InputTracker:
    tracker = InputTracker()
    if processed_offset is not None:
        tracker.partitions[0] = PartitionProgress(processed_offset, NOW - 5, 0.1, NOW - 10)
    return tracker


class _Tp(tuple):
    partition = 0


@pytest.mark.parametrize("processed, fetched_end, broker_end, read, position, fully", [
    (99, 100, 100, True, 0, True),
    (99, 100, 250, True, 0, False),  # the fetcher's end is old (paused, starved): the broker says more
    (49, 100, 100, True, 0, False),
    (None, 100, 100, False, 100, True),  # nothing processed since the assignment, nothing left
    (None, 100, 180, False, 100, False),
    (None, 100, 100, True, 100, False),  # fetched records wait in the stream's buffer
], ids=["read to the end", "an old fetched end", "behind", "nothing to read", "nothing read, more came",
        "fetched, not processed"])
def test_a_partition_is_fully_read_only_up_to_the_brokers_end(processed, fetched_end, broker_end, read, position,
                                                               fully) -> None:
    consumer = _Consumer(fetched_end, broker_end, position, read)
    tp = _Tp(TP)
    assert asyncio.run(_tracker(processed).fully_read(_App(consumer), tp)) is fully


class _Revoked(_Consumer):
    async def position(self, tp):
        from aiokafka.errors import IllegalStateError
        raise IllegalStateError(f"Partition {tp} is not assigned")


def test_a_partition_revoked_while_the_tick_asks_is_not_fully_read_and_nothing_raises() -> None:
    """A rebalance between the tick's list of owned partitions and its question: aiokafka
    raises for a partition no longer assigned; that crashed the worker (a two-worker test)."""
    consumer = _Revoked(100, 100, 100, read=False)
    assert asyncio.run(_tracker(None).fully_read(_App(consumer), _Tp(TP))) is False


def test_a_batch_taken_in_while_the_end_is_checked_keeps_the_mark_at_event_time(monkeypatch) -> None:
    """The tick checks "fully read" (a broker round trip); if the route takes in a batch
    meanwhile, "quiet" must be judged on that batch: a wall-clock mark then would close
    windows while the upstream is still sending (seen in CI under load)."""
    import orjson

    from app import housekeeping

    tracker = InputTracker()
    tracker.partitions[0] = PartitionProgress(99, NOW - 300, 0.1, NOW - 60)  # quiet for a minute

    async def fully_read(app, tp) -> bool:
        tracker.partitions[0] = PartitionProgress(199, NOW - 200, 0.1, NOW)  # a batch, just now
        return True

    sent: list[bytes] = []

    class Stage:
        async def send(self, value: bytes, partition: int) -> None:
            sent.append(value)

    class Topic:
        def get_topic_name(self) -> str:
            return "qapp-events"

    class _TP(tuple):
        partition = 0
        topic = "qapp-events"

    monkeypatch.setattr(tracker, "fully_read", fully_read)
    monkeypatch.setattr(housekeeping, "_owned", lambda name: [_TP(("qapp-events", 0))])
    asyncio.run(housekeeping._mark(housekeeping.TimedInput(Topic(), tracker, Stage()), NOW, 0))  # type: ignore[arg-type]
    assert sent and {fields["time"] for _, fields in orjson.loads(sent[0])} == {NOW - 200}
