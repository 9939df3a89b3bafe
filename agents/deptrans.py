"""Driver status → AIS "KRT" (seed 002): the stream that decides what KRT hears, and the sender.

    contractor-status, driver-positions, driver-profiles
        --route_*--> dt-events (each input in its driver's partition)
    dt-events --track_drivers--> tables dt-drivers (profile, position, last status, last reported),
                                 dt-queue (per driver: the newest status to send; what is in flight)
    KrtSender (the worker owning the partition): dt-queue --KRT--> dt-queue (accepted, retried,
                                 dropped), dt-sessions and deptrans-session-statuses (KRT's answer)

The stage applies the pure rules of tables/deptrans (filtering by region and category, only
line changes, latest-only queue) in the batch pattern of app/batching.py. The sender drains
the queue of the partitions this worker owns with bounded concurrency; a driver has one send
in flight at a time; a failure waits its backoff (per driver) and, repeated, opens a circuit
breaker that gives KRT a rest (`switchboard_deptrans_krt_breaker_open`); statuses keep
arriving meanwhile, and only each driver's newest waits. The licence number a send needs
comes from `personal` (app/personal.py) and goes nowhere but the request to KRT.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Optional, cast

import faust
from mode import Service

from app import codec, metrics
from app.batching import BatchedTable, Outbox, in_partition
from app.breaker import BreakerState, CircuitBreaker
from app.krt import KrtClient, KrtRefused, KrtUnavailable
from app.krt import SessionState as KrtShift
from app.main import app
from app.personal import PersonalClient, PersonalNotFound, PersonalUnavailable
from app.stages import checked_route, key_partition, owned_partitions, process_envelopes
from tables.deptrans.drivers import DriverState, PositionReported, StatusChanged, apply_driver_event, expire_driver
from tables.deptrans.queue import (
    InFlight,
    QueueEntry,
    accepted,
    enqueue,
    failed,
    forgettable,
    ready,
    rejected,
    retry_delay_s,
    take,
)
from tables.deptrans.records import MalformedRecord, parse_contractor_status, parse_position, parse_profile
from tables.deptrans.sessions import KrtAnswer, SessionState, apply_krt_answer, session_record
from tables.deptrans.store import ProfileSeen, counters, deptrans, drivers_table, queue_table, sessions_table, topics

__all__ = ["DeptransStage", "KrtSender", "krt_sender", "track_drivers"]

log = logging.getLogger(__name__)
ROUTE_BATCH = 1000


# --- routes: each input checked and sent to its driver's partition ------------------------------

def _route(topic: faust.TopicT, parse: Callable[[Any], Any], name: str) -> None:
    checked_route(topic, name, parse, (MalformedRecord,), topics.dt_events, lambda checked: checked.key, ROUTE_BATCH)


_route(topics.contractor_status, lambda m: parse_contractor_status(m.value), deptrans.topic_contractor_status)
_route(topics.driver_positions, lambda m: parse_position(m.value), deptrans.topic_driver_positions)
_route(topics.driver_profiles, lambda m: ProfileSeen.of(parse_profile(m.key, m.value)), deptrans.topic_driver_profiles)


# --- the stage -------------------------------------------------------------------------------------

class DeptransStage:
    """The envelopes of one partition of dt-events: drivers' states, and the statuses that go
    to KRT put in the queue (a driver's newest replaces one not sent yet)."""

    def __init__(self, partition: int, drivers: Any = drivers_table, queue: Any = queue_table,
                 outbox: Optional[Outbox] = None, wake: Optional[Callable[[set[str]], None]] = None) -> None:
        """The tables, the outbox and the sender's wake-up are the worker's; tests pass their own."""
        self.partition = partition
        self.drivers: BatchedTable[DriverState] = BatchedTable(drivers)
        self.queue: BatchedTable[QueueEntry] = BatchedTable(queue)
        self.outbox = outbox or Outbox(app)
        self.wake = wake or krt_sender.enqueued
        self.enqueued: set[str] = set()
        self.policy = deptrans.report_policy

    def apply_all(self, messages: list[Any]) -> None:
        for message in messages:
            self.apply(message)

    def apply(self, message: Any) -> None:
        if isinstance(message, ProfileSeen):
            event: Any = message.event
        elif isinstance(message, (StatusChanged, PositionReported)):
            event = message
        else:  # pragma: no cover - the codec admits only the registered types
            raise TypeError(f"not a driver message: {message!r}")
        key = event.key
        before = self.drivers.get(key)
        outcome = apply_driver_event(before, event, self.policy)
        if outcome.changed:
            self.drivers.put(key, outcome.state)
        if outcome.not_reported is not None:
            counters.not_reported.labels(str(outcome.not_reported)).inc()
        if outcome.report is not None:
            entry = self.queue.get(key)
            after = enqueue(entry, outcome.report)
            if after is not entry:
                self.queue.put(key, after)
                self.enqueued.add(key)
                counters.enqueued.inc()

    def store(self) -> None:
        self.drivers.flush()
        self.queue.flush()
        if self.enqueued:
            self.wake(self.enqueued)
            self.enqueued = set()


@app.agent(topics.dt_events, concurrency=1)
async def track_drivers(stream):
    await process_envelopes(stream, "dt-events", DeptransStage)


# --- the sender ------------------------------------------------------------------------------------

_SHIFTS = {KrtShift.OPEN: SessionState.ACTIVE, KrtShift.CLOSED: SessionState.CLOSED, KrtShift.NONE: SessionState.CLOSED}


class KrtSender(Service):
    """Sends the queued statuses of this worker's partitions to KRT (see the module docstring).

    Which drivers may have something to send is kept in memory (`due`), filled by the stage
    and, after every rebalance, by one scan of the queue's partitions this worker owns; the
    queue table itself stays the truth (a send is marked in flight there before it goes,
    and its outcome written there after)."""

    def __init__(self, krt: Optional[KrtClient], personal: Optional[PersonalClient], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.krt = krt
        self.personal = personal
        self.breaker = CircuitBreaker(deptrans.krt_breaker_failures, 1.0, max(1.0, deptrans.krt_breaker_max_s))
        self.wake = asyncio.Event()
        self.due: set[str] = set()  # drivers whose entry may have a status to send
        self.sending: set[str] = set()  # drivers with a send in flight from here
        self.generation = -1  # queue_table's, when `due` was last rebuilt

    def enqueued(self, keys: set[str]) -> None:
        self.due |= keys
        self.wake.set()

    async def on_start(self) -> None:
        if self.krt is not None:
            await self.add_runtime_dependency(self.krt)

    async def on_stop(self) -> None:
        if self.personal is not None:
            await self.personal.close()

    @Service.task
    async def _drain(self) -> None:
        if self.krt is None or self.personal is None:
            log.warning("KRT_URL or PERSONAL_URL is not set: driver statuses wait in the queue, none is sent")
            return
        wait: Optional[float] = 0.5
        while not self.should_stop:
            try:
                await asyncio.wait_for(self.wake.wait(), wait)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()
            wait = self._send_what_is_due(time.time())

    @Service.task
    async def _sweep(self) -> None:
        """Every DEPTRANS_SWEEP_S: forget positions and statuses older than DEPTRANS_DRIVER_KEPT_S
        (a status KRT was told is on the line stays: its going off must still be sent), and
        queue entries with nothing to send whose last answer is that old."""
        while not self.should_stop:
            await self.sleep(deptrans.deptrans_sweep_s)
            for partition in owned_partitions(topics.dt_events):
                forgotten = await self.sweep(partition, time.time())
                if forgotten:
                    log.info("Forgot %d drivers' old data in partition %d", forgotten, partition)

    async def sweep(self, partition: int, now: float, drivers: Any = drivers_table, queue: Any = queue_table,
                    chunk: int = 1000) -> int:
        """One partition's sweep; how many keys changed. Yields to the loop every `chunk` keys
        (each key is read and written without a pause: never across a stage's batch)."""
        kept = deptrans.deptrans_driver_kept_s
        changed = 0
        for table, forget in ((drivers, _expired_driver), (queue, _forgotten_entry)):
            with in_partition(partition):
                keys = [key for key, _ in table.items_in(partition)]
            for start in range(0, len(keys), chunk):
                with in_partition(partition):
                    for key in keys[start:start + chunk]:
                        before = table.get(key)
                        if before is None:
                            continue
                        after = forget(before, now, kept)
                        if after is before:
                            continue
                        changed += 1
                        if after is None:
                            table.delete(key)
                        else:
                            table.put(key, after)
                await asyncio.sleep(0)
        return changed

    def _send_what_is_due(self, now: float) -> float:
        """Start the sends that may go now; how long to wait before looking again."""
        owned = owned_partitions(topics.dt_events)
        if queue_table.generation != self.generation:  # a rebalance: what is due here is read again
            self.generation = queue_table.generation
            self.due = set()
            for partition in owned:
                with in_partition(partition):
                    self.due |= {key for key, entry in queue_table.items_in(partition) if entry.pending or entry.in_flight}
        counters.breaker_open.set(1 if self.breaker.state is BreakerState.OPEN else 0)
        next_at = now + 1.0
        free = deptrans.krt_concurrency - len(self.sending)
        for key in list(self.due):
            if free <= 0:
                break
            if key in self.sending:
                continue
            partition = key_partition(key)
            if partition not in owned:
                self.due.discard(key)
                continue
            with in_partition(partition):
                entry = queue_table.get(key)
                if entry is None or (entry.pending is None and entry.in_flight is None):
                    self.due.discard(key)
                    continue
                if not ready(entry, now, deptrans.krt_lease_s):
                    next_at = min(next_at, max(entry.retry_at, now + 0.05))
                    continue
                if not self.breaker.allow(now):
                    retry_at = self.breaker.retry_at
                    return max(0.05, (retry_at or now + 1.0) - now)
                entry, send = take(entry, now, deptrans.krt_lease_s)
                assert send is not None
                queue_table.put(key, entry)
            self.sending.add(key)
            free -= 1
            asyncio.ensure_future(self._send(partition, key, send, self.generation))
            if self.breaker.state is BreakerState.HALF_OPEN:
                break  # that send is the probe: the rest wait for its answer
        counters.waiting.set(len(self.due))
        return max(0.05, next_at - now)

    async def _send(self, partition: int, key: str, send: InFlight, generation: int) -> None:
        assert self.krt is not None and self.personal is not None
        report = send.report
        answer: Optional[KrtAnswer] = None
        outcome = "accepted"
        try:
            licence = await self.personal.license_number(report.pd_id)
            shift = await self.krt.report_status(licence, None, str(report.status), report.at)
            answer = KrtAnswer(_SHIFTS[shift.status], shift.ends_at)
        except (KrtRefused, PersonalNotFound) as exc:
            outcome = "rejected"
            log.warning("A driver status was refused for good and dropped: %s", exc)
        except (KrtUnavailable, PersonalUnavailable) as exc:
            outcome = "failed"
            if self.breaker.consecutive_failures == 0:
                log.warning("Sending driver statuses to KRT failed (%s); retrying with backoff", exc)
        except Exception:  # a defect: the entry waits for its lease, the worker goes on
            log.exception("Sending a driver status to KRT failed unexpectedly")
            outcome = "failed"
        finally:
            self.sending.discard(key)
        now = time.time()
        if outcome == "failed":
            self.breaker.failed(now)
        else:
            self.breaker.succeeded(now)
        counters.sends.labels(outcome).inc()
        if queue_table.generation != generation or partition not in owned_partitions(topics.dt_events):
            return  # the partition moved meanwhile: its new owner's lease sends it again
        session = None
        with in_partition(partition):
            entry = queue_table.get(key)
            if entry is not None:
                if outcome == "accepted":
                    entry = accepted(entry, send)
                elif outcome == "rejected":
                    entry = rejected(entry, send)
                else:
                    entry = failed(entry, send, now, retry_delay_s(entry.failures + 1, deptrans.krt_retry_first_s,
                                                                   deptrans.krt_retry_max_s))
                queue_table.put(key, entry)
                if entry.pending is not None or entry.in_flight is not None:
                    self.due.add(key)
            if answer is not None:
                result = apply_krt_answer(sessions_table.get(report.pd_id), report, answer, now)
                if result.changed:
                    sessions_table.put(report.pd_id, result.session)
                    session = result.session
        self.wake.set()
        if session is not None:
            outbox = Outbox(app)
            outbox.latest(topics.deptrans_session_statuses, report.pd_id, codec.dumps(session_record(session)))
            await outbox.flush()


def _expired_driver(state: DriverState, now: float, kept_s: float) -> Optional[DriverState]:
    return expire_driver(state, now, kept_s)


def _forgotten_entry(entry: QueueEntry, now: float, kept_s: float) -> Optional[QueueEntry]:
    return None if forgettable(entry, now, kept_s) else entry


def _sender() -> KrtSender:
    krt = None if deptrans.krt is None else KrtClient(deptrans.krt, timeout_s=deptrans.krt_timeout_s)
    personal = PersonalClient(deptrans.personal_url, deptrans.personal_timeout_s) if deptrans.personal_url else None
    metrics.declare_integration("krt", krt is not None, "KRT_URL is not set: driver statuses wait in the queue, "
                                "KRT ID checks answer 503")
    metrics.declare_integration("personal", personal is not None, "PERSONAL_URL is not set: no licence number, so "
                                "nothing can be sent to KRT")
    return KrtSender(krt, personal)


krt_sender = _sender()
app.service(cast(Any, krt_sender))  # started with the app (Faust takes instances too)
