"""Stream time for the stateful stages, and this worker's input lag.

Tables may only be written from their own stream, so window closing and the staleness
sweep run inside the stage loops, woken by `StreamMark`s (app/streamtime.py)
that the owner of each input partition sends down the topology once per tick.
"""

from __future__ import annotations

import logging
import time

from agents.common import consumed_topics, consumer_backlog
from app import metrics
from app.codec import pack
from app.main import app, settings
from app.state import StateTable
from app.streamtime import PartitionProgress, StreamMark, input_lag_s, source_mark
from tables.callcenter.store import input_tracker, topics

__all__ = ["SOURCE", "forget_cached_states", "forget_revoked_progress", "send_stream_marks"]

log = logging.getLogger(__name__)
SOURCE = -1  # `via` of a mark sent straight from the input partition


def owned(topic_name: str):
    return sorted((tp for tp in app.assignor.assigned_actives() if tp.topic == topic_name), key=lambda tp: tp.partition)


@app.timer(settings.tick_interval_s)
async def send_stream_marks() -> None:
    now = time.time()
    lags = []
    marks = []
    for tp in owned(topics.qapp_events.get_topic_name()):
        progress = input_tracker.partitions.get(tp.partition)
        fully_read = await input_tracker.fully_read(app, tp)
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
            await topics.cc_events.send(value=value, partition=partition)
    input_tracker.lag_s = max(lags) if lags else None
    metrics.stage_rates.refresh(now)
    # the input may be read while later stages still work through a backlog: stale too
    input_tracker.backlog = consumer_backlog(app, consumed_topics(app))
    input_tracker.stale = (input_tracker.lag_s is not None and input_tracker.lag_s > settings.stale_after_s) or (
        input_tracker.backlog > settings.stale_backlog_records
    )


@app.on_partitions_revoked.connect
async def forget_revoked_progress(sender, revoked, **kwargs) -> None:
    """A partition coming back later is replayed from its commit: old progress would lie;
    and recovery may rewrite tables underneath their caches."""
    for table in StateTable.instances:
        table.forget()
    for tp in revoked:
        if tp.topic == topics.qapp_events.get_topic_name():
            input_tracker.partitions.pop(tp.partition, None)


@app.on_partitions_assigned.connect
async def forget_cached_states(sender, assigned, **kwargs) -> None:
    for table in StateTable.instances:
        table.forget()
