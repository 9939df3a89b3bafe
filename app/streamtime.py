"""Stream time, for any domain: how far every input partition has been read, carried
down the domain's topology (the call center's `qapp-events` is the first user).

Each owner of an input partition sends a `StreamMark` into every partition of the
next stage: "everything I read up to event time T has been forwarded ahead of this mark".
A stage forwards marks behind its own output. A partition's low watermark is the least
mark over every path into it; windows end, and the staleness sweep judges, by that
clock, so a replay or a slow partition can never make a window final too early. A
partition that has read everything there is, and has had nothing new for a quiet
period, marks wall-clock time: live, stream time is now, and lateness is the grace
period's business. While records keep coming it marks the time of the last one, even
when it has momentarily caught up: a producer replaying old records (an ingest of
yesterday's queue_log) must not find every window it has yet to fill already final.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Optional

from app import metrics

__all__ = ["SOURCE", "Every", "InputTracker", "PartitionClock", "PartitionProgress", "StreamMark", "input_lag_s",
           "low_watermark", "source_mark"]

SOURCE = -1  # `via` of a mark sent straight from the input partition


@dataclass(frozen=True, slots=True)
class StreamMark:
    source: int  # the input partition (of the domain's input topic)
    via: int  # the intermediate partition it passed through (SOURCE: straight from the input)
    time: float


@dataclass(frozen=True, slots=True)
class PartitionProgress:
    """What the route stage knows of one input partition."""

    offset: int = -1  # last offset processed (its outputs sent)
    event_time: Optional[float] = None  # event time of that record
    delay_s: Optional[float] = None  # how late the record reached Kafka (append time minus event time)
    processed_at: Optional[float] = None  # wall time the last record was processed


def source_mark(progress: PartitionProgress, fully_read: bool, now: float, quiet_s: float) -> Optional[float]:
    """The mark a source partition may send: wall time when fully read and nothing came
    for `quiet_s`, else the event time of its last processed record (None if none)."""
    quiet = progress.processed_at is None or now - progress.processed_at >= quiet_s
    if fully_read and quiet:
        return now
    return progress.event_time


def low_watermark(marks: Mapping[tuple[int, int], float], sources: int, vias: tuple[int, ...]) -> Optional[float]:
    """The least mark over every (source, via) path; None until every path has spoken."""
    times = []
    for source in range(sources):
        for via in vias:
            time = marks.get((source, via))
            if time is None:
                return None
            times.append(time)
    return min(times) if times else None


def input_lag_s(progress: PartitionProgress, fully_read: bool, now: float) -> Optional[float]:
    """How far behind one input partition is: the delay of its last record if it is fully
    read (the upstream's own delay), else how old the last processed record is now."""
    if progress.event_time is None:
        return None
    if fully_read:
        return progress.delay_s
    return max(0.0, now - progress.event_time)


class PartitionClock:
    """The marks one stage has heard, per partition it owns (in memory: re-heard every tick).
    `sources()` says how many input partitions there are (the input may be made outside)."""

    def __init__(self, sources: Callable[[], int]) -> None:
        self.sources = sources
        self.marks: dict[int, dict[tuple[int, int], float]] = {}

    def hear(self, partition: int, mark: StreamMark, vias: tuple[int, ...]) -> float | None:
        """The stage partition's stream time after `mark` (None until every path has spoken)."""
        marks = self.marks.setdefault(partition, {})
        marks[(mark.source, mark.via)] = mark.time
        return low_watermark(marks, self.sources(), vias)


class InputTracker:
    """How far this worker has processed each partition of one input topic (its first stage)."""

    def __init__(self) -> None:
        self.partitions: dict[int, PartitionProgress] = {}
        self.lag_s: Optional[float] = None  # refreshed by the domain's housekeeping timer
        self.backlog = 0  # records this worker's stages have yet to read
        self.stale = False

    def processed(self, partition: int, offset: int, event_time: Optional[float], appended_at: Optional[float],
                  now: float) -> None:
        """A record's outputs are sent. Its delay is how late it reached Kafka (append time minus
        event time): the upstream's lag, the same however late or often we read it."""
        before = self.partitions.get(partition, PartitionProgress())
        if event_time is None:
            self.partitions[partition] = replace(before, offset=offset, processed_at=now)
            return
        delay = max(0.0, (appended_at or now) - event_time)
        self.partitions[partition] = PartitionProgress(offset, event_time, delay, now)
        metrics.event_delay_seconds.set(delay)

    def batch_processed(self, done: list[tuple[Any, Optional[float]]], now: float) -> None:
        """A route batch's outputs are sent: `done` is each message with its event time
        (None: it had none, a dead letter). Per partition its last timed record counts, then
        its last record if that one had no time."""
        timed: dict[int, tuple[Any, Optional[float]]] = {}
        untimed: dict[int, tuple[Any, Optional[float]]] = {}
        for message, event_time in done:
            if event_time is None:
                untimed[message.partition] = (message, None)
            else:
                timed[message.partition] = (message, event_time)
                untimed.pop(message.partition, None)
        for message, event_time in (*timed.values(), *untimed.values()):
            self.processed(message.partition, message.offset, event_time, message.timestamp, now)

    async def fully_read(self, app: Any, tp: Any) -> bool:
        """Every record of `tp` up to its end has been processed and forwarded.

        The end the fetcher last saw is only a first check: a partition whose fetching is
        paused (a full raw-input buffer) or a starved worker knows an old end, and a promise
        of wall-clock time made on it closes windows before records already in Kafka are
        counted (seen in CI under load: a window final with 12 of its 17 answers). Before
        saying yes, the broker is asked for the partition's end."""
        consumer = app.consumer
        try:
            end = consumer.highwater(tp)
        except Exception:  # not fetched yet
            return False
        if end is None:
            return False
        progress = self.partitions.get(tp.partition)
        processed_all = progress is not None and progress.offset + 1 >= end
        if not processed_all:
            # nothing processed here since the assignment: fully read if nothing is left to
            # fetch and nothing fetched is waiting in the stream's buffer
            if progress is not None or consumer._read_offset.get(tp) is not None:  # no public accessor
                return False
            position = await _position(consumer, tp)
            if position is None or position < end:
                return False
        try:
            end = (await consumer.highwaters(tp))[tp]
        except Exception:  # the broker did not answer: no promise
            return False
        if progress is not None:
            return progress.offset + 1 >= end
        position = await _position(consumer, tp)
        return position is not None and position >= end


async def _position(consumer: Any, tp: Any) -> Optional[int]:
    """The consumer's position in `tp`; None when it has none: the partition was revoked while
    the tick was on its way (a rebalance; aiokafka raises IllegalStateError), or no answer."""
    try:
        position: Optional[int] = await consumer.position(tp)
    except Exception:
        return None
    return position


class Every:
    """Says, per partition, whether `every_s` has passed since it last said yes (monotonic)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.acted_at: dict[int, float] = {}

    def due(self, partition: int) -> bool:
        now = time.monotonic()
        if now - self.acted_at.get(partition, float("-inf")) < self.every_s:
            return False
        self.acted_at[partition] = now
        return True
