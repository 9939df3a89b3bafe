"""Call-center stream: qapp-events -> calls, operators, queues (SPEC.md "Call-center").

    qapp-events --route--> cc-calls (by call id)  --track_calls-->     call-status, cc-queues
                       \\-> cc-agents (by agent)   --track_operators--> operator-status, cc-queues, cc-calls
    cc-queues (by queue) --track_queues--> queue-status, queue-metrics

Each loop decodes, calls the pure rule from tables/callcenter, stores and forwards.
`StreamMark`s travel the same paths and tell the stages what time it is in the stream.
"""

from __future__ import annotations

import time
from typing import Iterator

from app import codec, metrics
from app.main import app, calls_table, ledger_table, operators_table, queues_table, settings, topics, windows_table
from agents.common import dead_letter, input_tracker, items_in_partition
from agents.housekeeping import SOURCE, input_partitions
from tables.callcenter import queue_log
from tables.callcenter.calls import WaitingChange, apply_call_event, past_retention
from tables.callcenter.events import Ignored, MalformedEvent
from tables.callcenter.operators import MemberChange, OperatorState, OperatorSwept, apply_operator_event
from tables.callcenter.queues import (
    QueueState,
    WindowSchedule,
    apply_member,
    apply_waiting,
    close_windows,
    place_fact,
    sweep_lost_calls,
)
from tables.callcenter.routing import AGENTS, CALLS, destinations, implausible_time, partition_of
from tables.callcenter.views import call_view, operator_view, queue_status_view, recent_window_starts
from tables.callcenter.watermarks import StreamMark, low_watermark
from tables.callcenter.windows import (
    WindowAgg,
    WindowFact,
    add_fact,
    fact_digest,
    ledger_key,
    ledger_keys,
    metrics_view,
    note_fact,
    window_key,
    window_start,
)

SCHEDULE = WindowSchedule(settings.window_s, settings.window_grace_s, settings.windows_kept_s)
OPERATOR_SWEEP_EVERY_S = 5.0
QUEUE_STATUS_EVERY_S = 1.0
_stage_topics = {CALLS: topics.cc_calls, AGENTS: topics.cc_agents}


async def messages(stream, stage: str):
    """(event, message) of an internal stream; what cannot be decoded is dead-lettered."""
    async for event in stream.events():
        metrics.events_in.labels(stage).inc()
        try:
            yield event, codec.decode(event.value)
        except codec.UndecodableMessage as exc:
            await dead_letter(topics.dead_letters, event.message, exc.args[0])


async def send(topic, key: str, value: bytes | None) -> None:
    """Produce and count; a None value is a tombstone on a compacted topic."""
    metrics.events_out.labels(topic.get_topic_name()).inc()
    await topic.send(key=key.encode(), value=value)


@app.agent(topics.qapp_events, concurrency=1)
async def route_qapp_events(stream):
    """Decode queue_log records; route each to the stages it concerns; reject the bad."""
    source = settings.topic_qapp_events
    async for event in stream.events():
        message = event.message
        metrics.events_in.labels(source).inc()
        event_time = None
        try:
            parsed = queue_log.interpret(queue_log.decode(event.value))
            suspicious = implausible_time(parsed.time, time.time(), settings.max_future_skew_s)
            if suspicious:
                raise MalformedEvent(suspicious)
        except MalformedEvent as exc:
            await dead_letter(topics.dead_letters, message, exc.reason)
        else:
            event_time = parsed.time
            if isinstance(parsed, Ignored):
                metrics.events_ignored.labels(parsed.event, str(parsed.known).lower()).inc()
            else:
                body = codec.encode(parsed)
                for stage, key in destinations(parsed):
                    await send(_stage_topics[stage], key, body)
        # only after its outputs are sent: a stream mark may now vouch for this record
        input_tracker.processed(message.partition, message.offset, event_time, message.timestamp, time.time())


@app.agent(topics.cc_calls, concurrency=1)
async def track_calls(stream):
    async for event, message in messages(stream, "cc-calls"):
        if isinstance(message, StreamMark):
            partition = event.message.partition
            forwarded = codec.encode(StreamMark(message.source, partition, message.time))
            for target in range(settings.partitions):
                await topics.cc_queues.send(value=forwarded, partition=target)
            now = call_clock.hear(partition, message, (SOURCE,))
            if now is not None and call_clock.due(partition, settings.call_retention_sweep_s):
                await _forget_old_calls(partition, now)
            continue
        with metrics.processing_seconds.labels("calls").time():
            outcome = apply_call_event(calls_table.get(message.callid), message)
            if outcome.changed and outcome.call is not None:
                calls_table.put(message.callid, outcome.call)
                await send(topics.call_status, message.callid, codec.dumps(call_view(outcome.call)))
            for output in (*outcome.waiting, *outcome.facts):
                await send(topics.cc_queues, output.queue, codec.encode(output))


async def _forget_old_calls(partition: int, now: float) -> None:
    """Ended calls past retention leave the table; `call-status` gets their tombstone."""
    for callid, call in items_in_partition(calls_table, partition, _partition_of):
        if past_retention(call, now, settings.call_retention_s):
            calls_table.delete(callid)
            await send(topics.call_status, callid, None)


class PartitionClock:
    """Marks heard by one stage, per partition it owns; in memory (re-heard within a tick)."""

    def __init__(self) -> None:
        self.marks: dict[int, dict[tuple[int, int], float]] = {}
        self.acted_at: dict[int, float] = {}

    def hear(self, partition: int, mark: StreamMark, vias: tuple[int, ...]) -> float | None:
        marks = self.marks.setdefault(partition, {})
        marks[(mark.source, mark.via)] = mark.time
        return low_watermark(marks, input_partitions(), vias)

    def due(self, partition: int, every_s: float) -> bool:
        now = time.monotonic()
        if now - self.acted_at.get(partition, 0.0) < every_s:
            return False
        self.acted_at[partition] = now
        return True


call_clock = PartitionClock()
operator_clock = PartitionClock()
queue_clock = PartitionClock()
ALL_CALL_PARTITIONS = tuple(range(settings.partitions))


@app.agent(topics.cc_agents, concurrency=1)
async def track_operators(stream):
    async for event, message in messages(stream, "cc-agents"):
        partition = event.message.partition
        with metrics.processing_seconds.labels("operators").time():
            if isinstance(message, StreamMark):
                now = operator_clock.hear(partition, message, (SOURCE,))
                if now is not None and operator_clock.due(partition, OPERATOR_SWEEP_EVERY_S):
                    sweep = OperatorSwept(now, settings.operator_idle_timeout_s, settings.call_talk_timeout_s)
                    for agent, op in items_in_partition(operators_table, partition, _partition_of):
                        await _operator_step(agent, op, sweep)
                continue
            await _operator_step(message.agent, operators_table.get(message.agent), message)


async def _operator_step(agent: str, before: OperatorState | None, message) -> None:
    outcome = apply_operator_event(before, message)
    if outcome.changed:
        operators_table.put(agent, outcome.operator)
        view = operator_view(outcome.operator, max(time.time(), outcome.operator.last_time))
        await send(topics.operator_status, agent, codec.dumps(view))
        if isinstance(message, OperatorSwept) and before is not None and outcome.operator.idle_resets > before.idle_resets:
            metrics.staleness_resets.labels("operator_offline").inc()
    for change in outcome.members:
        await send(topics.cc_queues, change.queue, codec.encode(change))
    for swept in outcome.swept_calls:
        metrics.staleness_resets.labels("call_closed").inc()
        await send(topics.cc_calls, swept.callid, codec.encode(swept))


@app.agent(topics.cc_queues, concurrency=1)
async def track_queues(stream):
    async for event, message in messages(stream, "cc-queues"):
        partition = event.message.partition
        with metrics.processing_seconds.labels("queues").time():
            if isinstance(message, StreamMark):
                now = queue_clock.hear(partition, message, ALL_CALL_PARTITIONS)
                if now is not None and queue_clock.due(partition, QUEUE_STATUS_EVERY_S):
                    for _, q in items_in_partition(queues_table, partition, _partition_of):
                        await _queue_time_passes(q, now)
                continue
            q = queues_table.get(message.queue) or QueueState(queue=message.queue)
            if isinstance(message, WaitingChange):
                q = apply_waiting(q, message)
            elif isinstance(message, MemberChange):
                q = apply_member(q, message)
            elif isinstance(message, WindowFact):
                q = _count_fact(q, message)
            queues_table.put(message.queue, q)


def _count_fact(q: QueueState, fact: WindowFact) -> QueueState:
    start = window_start(fact.time, settings.window_s)
    digest = fact_digest(fact.fact_id)
    bucket = ledger_key(q.queue, start, digest)
    noted = note_fact(ledger_table.get(bucket), digest)
    if noted is None:
        return q  # counted before: a replay or a duplicated input line
    ledger_table.put(bucket, noted)
    q, on_time = place_fact(q, fact.time, SCHEDULE)
    if not on_time:
        metrics.late_events.inc()  # still counted in its window: the API stays exact
    key = window_key(q.queue, start)
    windows_table.put(key, add_fact(windows_table.get(key), fact, settings.window_s, settings.sl_threshold_s))
    return q


async def _queue_time_passes(q: QueueState, stream_now: float) -> None:
    """Stream time reached `stream_now`: sweep lost calls, finalise windows, publish status."""
    before = q
    q, lost = sweep_lost_calls(q, stream_now, settings.call_wait_timeout_s)
    for swept in lost:
        metrics.staleness_resets.labels("call_lost").inc()
        await send(topics.cc_calls, swept.callid, codec.encode(swept))
    q, final, expired = close_windows(q, stream_now, SCHEDULE)
    for start in final:
        window = windows_table.get(window_key(q.queue, start))
        if window is not None:
            record = {"queue": q.queue, "window_s": settings.window_s, "final": True, **metrics_view(window)}
            await send(topics.queue_metrics, f"{q.queue}|{int(start)}", codec.dumps(record))
    for start in expired:
        windows_table.delete(window_key(q.queue, start))
        for bucket in ledger_keys(q.queue, start):
            ledger_table.delete(bucket)
    if q != before:
        queues_table.put(q.queue, q)
    now = time.time()
    status = queue_status_view(q, local_windows(q.queue, now), now, settings.window_s)
    await send(topics.queue_status, q.queue, codec.dumps({"generated_at": now, **status}))


def local_windows(queue: str, now: float) -> Iterator[WindowAgg]:
    """This worker's windows of `queue` for the last 15 minutes (the queue must be local)."""
    for start in recent_window_starts(now, settings.window_s):
        window = windows_table.get(window_key(queue, start))
        if window is not None:
            yield window


def _partition_of(key: str) -> int:
    return partition_of(key, settings.partitions)
