"""The loop every stage runs over envelopes of an internal topic (app/batching.py): take what
is ready, apply each partition's messages to one batch, write what changed once, send once.

A domain's stage is a class made per partition with `apply_all(messages)`, `store()` and an
`outbox` (for example `agents/callcenter.CallsAndOperators`); its agent is one line:
`await process_envelopes(stream, "<topic>", StageClass)`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import lru_cache
from typing import Any, Awaitable, Callable, Optional

import faust

from app import codec, metrics
from app.batching import Outbox, in_partition_of, take_ready
from app.changelog import changelogs
from app.deadletters import dead_letter, dead_letter_body, dead_letter_key
from app.main import app, dead_letters, settings
from app.partitioner import partition_of
from app.rawinput import RawInput
from app.records import ahead_of_now, oversized
from app.streamtime import InputTracker

__all__ = ["STAGE_ENVELOPES", "StageMeter", "checked_route", "crash_on_defect", "key_partition", "owned_partitions",
           "process_envelopes", "topic_partitions"]

log = logging.getLogger(__name__)

STAGE_ENVELOPES = 64  # envelopes a stage takes at most at once (it takes what is ready)


@lru_cache(maxsize=1 << 17)
def key_partition(key: str) -> int:
    """The partition of `key` in the topics and tables the service makes (`PARTITIONS` of
    them), cached: stages ask it for every message."""
    return partition_of(key, settings.partitions)


def owned_partitions(topic: faust.TopicT) -> set[int]:
    """The partitions of `topic` this worker owns (actively) now."""
    name = topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name}


def topic_partitions(topic: faust.TopicT) -> int:
    """Partitions of an input topic as the cluster has it (it may be made outside)."""
    count = app.consumer.topic_partitions(topic.get_topic_name()) if app.consumer else None
    return count or settings.partitions


class StageMeter:
    """Counts of one stage, with the Prometheus children looked up once."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.counter = metrics.events_in.labels(stage)
        self.seconds = metrics.processing_seconds.labels(stage)

    def took_in(self, n: int) -> None:
        self.counter.inc(n)
        metrics.stage_rates.count(self.stage, n)


async def process_envelopes(stream: Any, stage: str, batch_of: Callable[[int], Any]) -> None:
    """The loop of a stage over envelopes. It takes what is ready (up to STAGE_ENVELOPES),
    and per partition applies every envelope's messages in order to one `batch_of(partition)`
    (`apply_all`), writes what changed once (`store`) and sends its `outbox`: the more a
    backlog gathers, the fewer writes per message. A record that is no envelope is
    dead-lettered."""
    meter = StageMeter(stage)
    async for events in take_ready(stream, STAGE_ENVELOPES):
        started = time.perf_counter()
        by_partition: dict[int, list[tuple[Any, list[Any]]]] = {}
        generation = app.consumer_generation_id
        for event in events:
            if event.message.generation_id != generation:
                # taken before a rebalance: its partition is read again from the commit by
                # its owner now; applied here, its writes would land in the changelog after
                # the owner's, and the next recovery would take them for the latest
                metrics.stale_events_dropped.labels(stage).inc()
                continue
            try:
                messages = codec.unpack(event.value)
            except codec.UndecodableMessage as exc:
                meter.took_in(1)
                await dead_letter(dead_letters, event.message, exc.args[0])
                continue
            meter.took_in(len(messages))
            by_partition.setdefault(event.message.partition, []).append((event, messages))
        for partition, envelopes in by_partition.items():
            batch = batch_of(partition)
            with in_partition_of(envelopes[-1][0]):
                for _, messages in envelopes:
                    batch.apply_all(messages)
                batch.store()
            await batch.outbox.flush()
        await changelogs.flush()  # every partition's table writes, one batch per table partition
        meter.seconds.observe(time.perf_counter() - started)


async def crash_on_defect(what: str, body: Awaitable[None]) -> None:
    """Run a task's loop (a route over a raw input). Bad input never raises (it is a dead
    letter); what raises is a defect, and stops the worker: nothing of the batch it was in
    is acknowledged, so whoever owns the partitions next reads those records again."""
    try:
        await body
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("%s failed; stopping the worker", what)
        await app.crash(exc)


def checked_route(topic: faust.TopicT, name: str, parse: Callable[[Any], Any], rejects: tuple[type[Exception], ...],
                  to: faust.TopicT, key_of: Callable[[Any], str], batch: int = 1000,
                  tracker: Optional[InputTracker] = None, time_of: Optional[Callable[[Any], float]] = None,
                  skip: Optional[Callable[[Any], bool]] = None) -> None:
    """A domain's route, as a task of the app: the raw records of `topic` in batches, each
    checked by `parse` (it takes the Kafka message; one of `rejects` raised is a dead letter
    with that reason; so is a record over MAX_RECORD_BYTES, before it is parsed, and one
    whose checked event is timed (`at`: every timed event of every domain names its time so)
    more than MAX_FUTURE_SKEW_S ahead of now) and sent, in envelopes, to the partition of
    `to` its `key_of` names.
    With a `tracker`, the batch's progress (and each record's `time_of`) is given to it after
    the outputs are sent (stream time, app/housekeeping.py)."""
    raw = RawInput(app, topic, batch)

    async def loop() -> None:
        meter = StageMeter(name)
        async for messages in raw.batches():
            started = time.perf_counter()
            outbox = Outbox(app)
            done: list[tuple[Any, Optional[float]]] = []
            now = time.time()
            for message in messages:
                if skip is not None and skip(message):
                    done.append((message, None))
                    continue
                refused = oversized(message.value)
                if refused is None:
                    try:
                        checked = parse(message)
                    except rejects as exc:
                        refused = str(exc)
                    else:
                        if hasattr(checked, "at"):
                            refused = ahead_of_now(checked.at, now, settings.max_future_skew_s)
                if refused is not None:
                    outbox.record(dead_letters, dead_letter_key(message), dead_letter_body(message, refused))
                    done.append((message, None))
                    continue
                outbox.to_partition(to, key_partition(key_of(checked)), checked)
                done.append((message, None if time_of is None else time_of(checked)))
            meter.took_in(len(messages))
            await outbox.flush()
            if tracker is not None:  # after its outputs are sent: a stream mark may vouch for them
                tracker.batch_processed(done, time.time())
            meter.seconds.observe(time.perf_counter() - started)

    async def route() -> None:
        await crash_on_defect(f"routing {name}", loop())

    route.__name__ = route.__qualname__ = f"route_{name.replace('-', '_')}"
    app.task(route)
