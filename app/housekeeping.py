"""Stream time and freshness for every domain that declares a timed input.

Tables may only be written from their own stream, so window closing, staleness sweeps
and expiries run inside the stage loops, woken by `StreamMark`s (app/streamtime.py). A
domain declares its input once (`mark_stream_time(input, tracker, first_stage)`); once a
tick, the owner of each of its input partitions sends a mark into every partition of its
first stage, and the domain's tracker learns its lag, backlog and staleness for `lag_s`
and `stale` in its answers.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import faust

from app import metrics
from app.codec import pack
from app.lag import consumed_topics, consumer_backlog
from app.main import app, settings
from app.state import StateTable
from app.streamtime import SOURCE, InputTracker, PartitionProgress, StreamMark, input_lag_s, source_mark

__all__ = ["TimedInput", "forget_cached_states", "forget_revoked_progress", "forget_states_read_during_recovery",
           "mark_stream_time", "send_stream_marks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimedInput:
    topic: faust.TopicT  # the domain's input
    tracker: InputTracker  # how far its route has processed each partition
    first_stage: faust.TopicT  # the internal topic whose every partition gets the marks


_timed_inputs: list[TimedInput] = []


def mark_stream_time(topic: faust.TopicT, tracker: InputTracker, first_stage: faust.TopicT) -> None:
    """Declare a domain's input: its stream time goes down `first_stage` from now on."""
    _timed_inputs.append(TimedInput(topic, tracker, first_stage))


def _owned(topic_name: str):
    return sorted((tp for tp in app.assignor.assigned_actives() if tp.topic == topic_name), key=lambda tp: tp.partition)


@app.timer(settings.tick_interval_s)
async def send_stream_marks() -> None:
    now = time.time()
    # the input may be read while later stages still work through a backlog: stale too
    backlog = consumer_backlog(app, consumed_topics(app))
    for timed in _timed_inputs:
        await _mark(timed, now, backlog)
    metrics.stage_rates.refresh(now)


async def _mark(timed: TimedInput, now: float, backlog: int) -> None:
    tracker = timed.tracker
    lags = []
    marks = []
    for tp in _owned(timed.topic.get_topic_name()):
        fully_read = await tracker.fully_read(app, tp)
        # read after that await: the route may have taken in a batch meanwhile, and "quiet"
        # judged on the progress from before it would let a wall-clock mark out while an
        # upstream is still sending (its next lines then count as late)
        progress = tracker.partitions.get(tp.partition)
        if progress is not None:
            lag = input_lag_s(progress, fully_read, now)
            if lag is not None:
                lags.append(lag)
        mark = source_mark(progress or PartitionProgress(), fully_read, now, settings.source_quiet_s)
        if mark is None:
            continue  # nothing processed yet and more to read: no promise to make
        marks.append(StreamMark(tp.partition, SOURCE, mark))
    if marks:  # one envelope per partition with the marks of every input partition owned here
        value = pack(marks)
        for partition in range(settings.partitions):
            await timed.first_stage.send(value=value, partition=partition)
    tracker.lag_s = max(lags) if lags else None
    tracker.backlog = backlog
    tracker.stale = (tracker.lag_s is not None and tracker.lag_s > settings.stale_after_s) or (
        backlog > settings.stale_backlog_records
    )
    name = timed.topic.get_topic_name()
    metrics.answers_stale.labels(name).set(1 if tracker.stale else 0)
    if tracker.lag_s is not None:
        metrics.input_lag_seconds.labels(name).set(round(tracker.lag_s, 3))


@app.on_partitions_revoked.connect
async def forget_revoked_progress(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """A partition coming back later is replayed from its commit: old progress would lie;
    and recovery may rewrite tables underneath their caches."""
    revoked = args[0] if args else kwargs.get("revoked", ())
    _forget_table_caches()
    for timed in _timed_inputs:
        name = timed.topic.get_topic_name()
        for tp in revoked:
            if tp.topic == name:
                timed.tracker.partitions.pop(tp.partition, None)


@app.on_partitions_assigned.connect
async def forget_cached_states(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    _forget_table_caches()


@app.on_rebalance_complete.connect
async def forget_states_read_during_recovery(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    """Recovery rewrites the tables after the assignment: a view that read one meanwhile
    (a dashboard polling /queues/status) cached what was there, which a stage would then
    build on. Faust sends this signal once recovery is done, before the streams resume."""
    _forget_table_caches()


def _forget_table_caches() -> None:
    for table in StateTable.instances:
        table.forget()
