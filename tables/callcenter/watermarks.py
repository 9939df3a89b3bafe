"""Stream time: how far every input partition has been read, carried down the topology.

Each owner of a `qapp-events` partition sends a `StreamMark` into every partition of the
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

from dataclasses import dataclass
from typing import Mapping, Optional


@dataclass(frozen=True, slots=True)
class StreamMark:
    source: int  # the qapp-events partition
    via: int  # the intermediate partition it passed through (-1: straight from the source)
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
