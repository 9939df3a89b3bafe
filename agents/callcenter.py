"""Call-center stream: qapp-events -> calls and operators -> queues (SPEC.md "Call-center").

    qapp-events --route_qapp_events--> cc-events (call events in the call's partition,
                                                  operator events in the agent's)
    cc-events --track_calls_and_operators--> call-status, operator-status, operator-activity, cc-queues
    cc-queues (queue's partition) --track_queues--> queue-status, queue-metrics

Two hops, each carrying one envelope per batch and partition (app/batching.py). A stage
takes one envelope, applies the pure rules of tables/callcenter to every message in it
over a `BatchedTable` overlay, then writes each changed key once and sends its outputs
once. `StreamMark`s travel the same paths and tell the stages what time it is in the stream.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Optional, cast

from mode import Service

from app import codec, metrics
from app.ami import AmiClient, AmiError
from app.batching import BatchedTable, Outbox
from app.deadletters import dead_letter_body, dead_letter_key
from app.main import app, settings
from app.rawinput import RawInput
from app.records import ahead_of_now
from app.stages import StageMeter, crash_on_defect, key_partition, owned_partitions, process_envelopes
from app.state import items_in_partition
from app.streamtime import SOURCE, Every, PartitionClock, StreamMark
from tables.callcenter import queue_log
from tables.callcenter.aliases import OperatorAliases, canonical_agent
from tables.callcenter.calls import CallEndInferred, CallState, CallSwept, apply_call_event, past_retention
from tables.callcenter.events import Ignored, MalformedEvent
from tables.callcenter.operators import OperatorState, OperatorSwept, apply_operator_event, needs_sweep
from tables.callcenter.queues import QueueState, WindowSchedule, apply_changes, close_windows, place_facts, sweep_lost_calls
from tables.callcenter.reconcile import AsteriskEntry, AsteriskMember, Drift, DriftKind, PanelMember, confirmed, find_drift
from tables.callcenter.routing import destinations, is_call_event, is_operator_event
from tables.callcenter.store import (
    calls_table,
    cc_settings,
    input_partitions,
    input_tracker,
    local_windows,
    operator_aliases,
    operators_table,
    queues_table,
    recent_windows,
    topics,
    windows_table,
)
from tables.callcenter.views import activity_record, call_view, operator_view, queue_status_view, status_is_news
from tables.callcenter.windows import FactCounter, WindowAgg, WindowFact, ledger_keys, metrics_view, window_key, window_start

__all__ = [
    "CallsAndOperators", "PanelReconciler", "Queues", "panel_reconciler", "route_event", "route_qapp_events",
    "track_calls_and_operators", "track_queues",
]

log = logging.getLogger(__name__)
SCHEDULE = WindowSchedule(cc_settings.window_s, cc_settings.window_grace_s, cc_settings.windows_kept_s)
OPERATOR_SWEEP_EVERY_S = 5.0
QUEUE_STATUS_EVERY_S = 1.0
QUEUE_STATUS_HEARTBEAT_S = 30.0  # an idle queue's status is sent again this often
ROUTE_BATCH = 4000  # records a route batch takes at most (it takes what is ready)
PARTITIONS = settings.partitions
ALL_PARTITIONS = tuple(range(PARTITIONS))


# --- route: decode, reject, send each event where its state lives ------------------------------


qapp_input = RawInput(app, topics.qapp_events, ROUTE_BATCH)


@app.task
async def route_qapp_events() -> None:
    """Decode queue_log records; route each to the partitions it concerns; reject the bad.
    A batch that raises (a defect, not bad input) stops the worker: nothing of it is
    acknowledged, so the records are read again."""
    await crash_on_defect("routing qapp-events", _route(qapp_input))


async def _route(raw: RawInput) -> None:
    meter = StageMeter(settings.topic_qapp_events)
    async for messages in raw.batches():
        started = time.perf_counter()
        outbox = Outbox(app)
        done = []
        now = time.time()
        for message in messages:
            event_time = None
            try:
                parsed = queue_log.interpret(queue_log.decode(message.value))
                suspicious = ahead_of_now(parsed.time, now, settings.max_future_skew_s)
                if suspicious:
                    raise MalformedEvent(suspicious)
            except MalformedEvent as exc:
                outbox.record(topics.dead_letters, dead_letter_key(message), dead_letter_body(message, exc.reason))
            else:
                event_time = parsed.time
                if isinstance(parsed, Ignored):
                    metrics.events_ignored.labels(parsed.event, str(parsed.known).lower()).inc()
                else:
                    route_event(outbox, parsed)
            done.append((message, event_time))
        meter.took_in(len(messages))
        await outbox.flush()
        input_tracker.batch_processed(done, now)  # after its outputs are sent: a stream mark may vouch for them
        meter.seconds.observe(time.perf_counter() - started)


def route_event(outbox: Outbox, event: Any, aliases: OperatorAliases = operator_aliases) -> None:
    """`event`, its operator by its canonical name, to each partition of cc-events whose
    state it concerns (its call's, its operator's)."""
    event = canonical_agent(event, aliases)
    for partition in {key_partition(key) for _, key in destinations(event)}:
        outbox.to_partition(topics.cc_events, partition, event)


# --- calls and operators ---------------------------------------------------------------------


call_clock = PartitionClock(input_partitions)
queue_clock = PartitionClock(input_partitions)
operator_sweep = Every(OPERATOR_SWEEP_EVERY_S)
call_retention_sweep = Every(cc_settings.call_retention_sweep_s)
queue_status_tick = Every(QUEUE_STATUS_EVERY_S)


class CallsAndOperators:
    """One envelope of the call and operator stage: partition `partition` of cc-events."""

    def __init__(self, partition: int, calls: Any = calls_table, operators: Any = operators_table,
                 outbox: Optional[Outbox] = None) -> None:
        """The tables and the outbox are the worker's; tests pass in-memory ones (tests/unit/panel.py)."""
        self.partition = partition
        self.calls: BatchedTable[CallState] = BatchedTable(calls)
        self.operators: BatchedTable[OperatorState] = BatchedTable(operators)
        self.outbox = outbox or Outbox(app)
        self.calls_to_publish: set[str] = set()
        self.operators_to_publish: set[str] = set()

    def apply_all(self, messages: list[Any]) -> None:
        for message in messages:
            self.apply(message)

    def apply(self, message: Any) -> None:
        if isinstance(message, StreamMark):
            self._time_passes(message)
            return
        if isinstance(message, (CallSwept, CallEndInferred)):
            self._call(message)
            return
        if is_call_event(message) and key_partition(message.callid) == self.partition:
            self._call(message)
        if is_operator_event(message) and key_partition(message.agent) == self.partition:
            self._operator(message.agent, self.operators.get(message.agent), message)

    def _call(self, message) -> None:
        outcome = apply_call_event(self.calls.get(message.callid), message)
        if outcome.healed:
            metrics.staleness_resets.labels(outcome.healed).inc()
        if outcome.call is not None:
            if outcome.changed:
                self.calls.put(message.callid, outcome.call)
            # published again even unchanged: a replay after a refused output (app/delivery.py)
            # finds its state stored but its view never sent
            self.calls_to_publish.add(message.callid)
        for change in outcome.waiting:  # the queue keeps only a call's latest
            self.outbox.to_partition(topics.cc_queues, key_partition(change.queue), change, ("w", change.queue, change.callid))
        for fact in outcome.facts:
            self.outbox.to_partition(topics.cc_queues, key_partition(fact.queue), fact)

    def _operator(self, agent: str, before: Optional[OperatorState], message) -> None:
        outcome = apply_operator_event(before, message, cc_settings.max_calls_per_operator)
        if outcome.changed:
            self.operators.put(agent, outcome.operator)
            if isinstance(message, OperatorSwept) and before is not None and outcome.operator.idle_resets > before.idle_resets:
                metrics.staleness_resets.labels("operator_offline").inc()
        if outcome.changed or not isinstance(message, OperatorSwept):
            self.operators_to_publish.add(agent)  # published again even unchanged (see `_call`)
        if outcome.activity:
            key = agent.encode()
            for fact in outcome.activity:  # events, in order: each said again on a replay
                self.outbox.record(topics.operator_activity, key, codec.dumps(activity_record(fact)))
        for change in outcome.members:  # the queue keeps only an operator's latest view
            self.outbox.to_partition(topics.cc_queues, key_partition(change.queue), change, ("m", change.queue, change.agent))
        for swept in outcome.swept_calls:
            metrics.staleness_resets.labels("call_closed").inc()
            self._to_call(swept)
        for inferred in outcome.inferred_ends:  # only with a change: a replay proves nothing again
            metrics.staleness_resets.labels(inferred.evidence.value).inc()
            self._to_call(inferred)

    def _to_call(self, swept: CallSwept | CallEndInferred) -> None:
        target = key_partition(swept.callid)
        if target == self.partition:
            self._call(swept)
        else:
            self.outbox.to_partition(topics.cc_events, target, swept)

    def _time_passes(self, mark: StreamMark) -> None:
        # behind everything this partition sent so far: the queues may trust it
        forwarded = StreamMark(mark.source, self.partition, mark.time)
        self.outbox.to_every_partition(topics.cc_queues, PARTITIONS, forwarded)
        now = call_clock.hear(self.partition, mark, (SOURCE,))
        if now is None:
            return
        if operator_sweep.due(self.partition):
            self.sweep_operators(now)
        if call_retention_sweep.due(self.partition):
            self.forget_ended_calls(now)

    def sweep_operators(self, now: float) -> None:
        """The staleness sweep of this partition's operators at stream time `now`."""
        # with Asterisk answering, its QueueStatus says who is still there (PanelReconciler)
        idle_s = math.inf if panel_reconciler.vouches(time.time()) else cc_settings.operator_idle_timeout_s
        sweep = OperatorSwept(now, idle_s, cc_settings.call_talk_timeout_s)
        for agent, op in self.operators.table.items_in(self.partition):
            op = self.operators.get(agent) or op
            if needs_sweep(op, sweep):
                self._operator(agent, op, sweep)

    def forget_ended_calls(self, now: float) -> None:
        for callid, call in items_in_partition(self.calls.table, self.partition, key_partition):
            if past_retention(self.calls.get(callid) or call, now, cc_settings.call_retention_s):
                self.calls.delete(callid)
                self.calls_to_publish.discard(callid)
                self.outbox.latest(topics.call_status, callid, None)

    def store(self) -> None:
        """Write each changed state once; publish the view of every call and operator touched (the latest only)."""
        now = time.time()
        for callid in self.calls_to_publish:
            self.outbox.latest(topics.call_status, callid, codec.dumps(call_view(self.calls.get(callid))))
        for agent in self.operators_to_publish:
            op = self.operators.get(agent)
            self.outbox.latest(topics.operator_status, agent, codec.dumps(operator_view(op, max(now, op.last_time))))
        self.calls.flush()
        self.operators.flush()


@app.agent(topics.cc_events, concurrency=1)
async def track_calls_and_operators(stream):
    await process_envelopes(stream, "cc-events", CallsAndOperators)


# --- the panel against Asterisk's own word ---------------------------------------------------------


class PanelReconciler(Service):
    """Where AMI_URL is set: every AMI_RECONCILE_S, Asterisk's `QueueStatus` against the
    members and waiting calls of the operators and queues this worker owns; a drift two
    answers in a row show is repaired by the panel's own events (tables/callcenter/reconcile.py),
    counted in `switchboard_staleness_resets_total{kind="ami_…"}` and logged. While its
    answers come, the sweep's guesses (lost waiting calls, idle operators) wait."""

    def __init__(self, url: Optional[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client: Optional[AmiClient] = None
        if url and cc_settings.ami_reconcile_panel:
            self.client = AmiClient(url, action_timeout_s=cc_settings.ami_action_timeout_s)
        self.seen: set[Drift] = set()  # the drift of the last answer
        self.answered_at = 0.0  # when Asterisk last answered

    def vouches(self, now: float) -> bool:
        """Asterisk answers lately: its word, not the sweep's guesses, says who is there."""
        return self.client is not None and self.client.connected and now - self.answered_at < 3 * cc_settings.ami_reconcile_s

    async def on_start(self) -> None:
        if self.client is not None:
            await self.add_runtime_dependency(self.client)

    @Service.task
    async def _reconcile(self) -> None:
        while not self.should_stop:
            if self.client is None or not await self.client.wait_connected(cc_settings.ami_reconcile_s):
                self.seen = set()
                await self.sleep(1.0 if self.client is not None else 3600.0)
                continue
            try:
                await self.reconcile()
            except AmiError as exc:
                self.seen = set()
                if not self.should_stop:
                    log.warning("Reconciling the panel with Asterisk failed: %s", exc)
            await self.sleep(cc_settings.ami_reconcile_s)

    async def reconcile(self) -> list[Any]:
        """One answer compared; the repairs sent (those the answer before showed too)."""
        assert self.client is not None
        members, entries = await self.client.queue_snapshot()
        now = time.time()
        self.answered_at = now
        if input_tracker.stale:  # the panel is behind its input: differences are expected, not drift
            self.seen = set()
            return []
        agents, queues = owned_partitions(topics.cc_events), owned_partitions(topics.cc_queues)
        panel: list[PanelMember] = []
        logged_off: set[str] = set()  # chan_agent logged off: idle memberships, compared with nothing
        for p in agents:
            for agent, op in operators_table.items_in(p):
                if op.agent_logged_in:
                    panel += [PanelMember(queue, agent, membership.paused) for queue, membership in op.queues.items()]
                else:
                    logged_off.add(agent)
        asterisk = [AsteriskMember(m.queue, agent, m.paused, m.paused_reason) for m in members
                    if key_partition(agent := operator_aliases.canonical(m.name)) in agents and agent not in logged_off]
        waiting = {name: list(q.waiting) for p in queues for name, q in queues_table.items_in(p)}
        found = find_drift(asterisk, [AsteriskEntry(e.queue, e.uniqueid, e.wait_s, e.callerid, e.position)
                                      for e in entries if key_partition(e.queue) in queues], panel, waiting)
        repairs = confirmed(self.seen, found)
        self.seen = found - repairs
        if not repairs:
            return []
        outbox = Outbox(app)
        sent = []
        for drift in sorted(repairs, key=lambda d: (d.kind, d.queue, d.key)):
            for event in drift.repair(now):
                outbox.to_partition(topics.cc_events, key_partition(drift.key), event)
                sent.append(event)
            metrics.staleness_resets.labels(str(drift.kind)).inc()
            log.info("Asterisk says otherwise: %s %s in %s (%s)", drift.kind, drift.key, drift.queue,
                     "paused" if drift.paused else "not paused" if drift.kind != DriftKind.CALL_GONE else "gone")
        await outbox.flush()
        return sent


panel_reconciler = PanelReconciler(cc_settings.ami_url)
app.service(cast(Any, panel_reconciler))  # started with the app (Faust takes instances too)


# --- queues and their windows -------------------------------------------------------------------


class PublishedStatus:
    """What the queue stage last sent on queue-status per queue (see `status_is_news`), and
    how many window writes of each queue it has made; forgotten at every rebalance."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[QueueState, float, int, float]] = {}
        self.windows_written: dict[str, int] = {}

    def forget(self) -> None:
        self.last.clear()


published_status = PublishedStatus()


@app.on_partitions_assigned.connect
async def forget_published_status(sender, assigned, **kwargs) -> None:
    published_status.forget()  # a queue that comes back is published afresh


class Queues:
    """One envelope of the queue stage: partition `partition` of cc-queues."""

    def __init__(self, partition: int, queues: Any = queues_table, windows: Any = windows_table,
                 outbox: Optional[Outbox] = None) -> None:
        """The tables and the outbox are the worker's; tests pass in-memory ones (tests/unit/panel.py)."""
        self.partition = partition
        self.queues: BatchedTable[QueueState] = BatchedTable(queues)
        self.windows: BatchedTable[WindowAgg] = BatchedTable(windows)
        self.ledgers: BatchedTable[frozenset] = BatchedTable(windows)
        self.counter = FactCounter(self.windows, self.ledgers, cc_settings.window_s, cc_settings.sl_threshold_s)
        self.outbox = outbox or Outbox(app)

    def queue(self, name: str) -> QueueState:
        return self.queues.get(name) or QueueState(queue=name)

    def apply_all(self, messages: list[Any]) -> None:
        """Messages in order; each queue's changes and facts up to a stream mark at once."""
        changes: dict[str, list] = {}
        facts: dict[str, list[WindowFact]] = {}
        for message in messages:
            if isinstance(message, StreamMark):
                self._apply_grouped(changes, facts)
                changes, facts = {}, {}
                self._hear(message)
            elif isinstance(message, WindowFact):
                facts.setdefault(message.queue, []).append(message)
            else:
                changes.setdefault(message.queue, []).append(message)
        self._apply_grouped(changes, facts)

    def _apply_grouped(self, changes: dict[str, list], facts: dict[str, list[WindowFact]]) -> None:
        for name, queue_changes in changes.items():
            self.queues.put(name, apply_changes(self.queue(name), queue_changes))
        for name, queue_facts in facts.items():
            # placed even when counted before: a crash may have kept the count, not the placing
            placed = [(fact.time, self.counter.count(fact)) for fact in queue_facts]
            q, on_time = place_facts(self.queue(name), placed, SCHEDULE)
            late = sum(1 for (_, counted), in_time in zip(placed, on_time) if counted and not in_time)
            if late:
                metrics.late_events.inc(late)  # still counted in their windows: the API stays exact
            self.queues.put(name, q)

    def _hear(self, mark: StreamMark) -> None:
        now = queue_clock.hear(self.partition, mark, ALL_PARTITIONS)
        if now is not None and queue_status_tick.due(self.partition):
            for name, _ in self.queues.table.items_in(self.partition):
                self.time_passes(self.queue(name), now)

    def time_passes(self, q: QueueState, stream_now: float) -> None:
        """Stream time reached `stream_now`: sweep lost calls, finalise windows, publish status."""
        before = q
        wait_s = math.inf if panel_reconciler.vouches(time.time()) else cc_settings.call_wait_timeout_s
        q, lost = sweep_lost_calls(q, stream_now, wait_s)  # with Asterisk answering, its QueueEntry says
        for swept in lost:
            metrics.staleness_resets.labels("call_lost").inc()
            self.outbox.to_partition(topics.cc_events, key_partition(swept.callid), swept)
        q, final, expired = close_windows(q, stream_now, SCHEDULE)
        for start in final:
            window = self.windows.get(window_key(q.queue, start))
            if window is not None:
                record = {"queue": q.queue, "window_s": cc_settings.window_s, "final": True, **metrics_view(window)}
                self.outbox.latest(topics.queue_metrics, f"{q.queue}|{int(start)}", codec.dumps(record))
        for start in expired:
            key = window_key(q.queue, start)
            window = self.windows.get(key)
            if window is not None:
                self.windows.delete(key)  # the window before its ledger (see FactCounter)
                for bucket in ledger_keys(q.queue, start, window.buckets):
                    self.ledgers.delete(bucket)
        if q != before:
            self.queues.put(q.queue, q)
        now = time.time()
        current = window_start(now, cc_settings.window_s)
        seen = published_status.windows_written.get(q.queue, 0)
        if not status_is_news(published_status.last.get(q.queue), q, current, seen, now, QUEUE_STATUS_HEARTBEAT_S):
            return
        published_status.last[q.queue] = (q, current, seen, now)
        status = queue_status_view(q, local_windows(q.queue, now, self.windows), now, cc_settings.window_s)
        self.outbox.latest(topics.queue_status, q.queue, codec.dumps({"generated_at": now, **status}))

    def store(self) -> None:
        written = published_status.windows_written
        for key in self.windows.pending:
            queue = key.rsplit("|", 1)[0]
            recent_windows.changed(queue)
            written[queue] = written.get(queue, 0) + 1
        self.queues.flush()
        self.windows.flush()  # every window before any ledger bucket
        self.ledgers.flush()


@app.agent(topics.cc_queues, concurrency=1)
async def track_queues(stream):
    await process_envelopes(stream, "cc-queues", Queues)
