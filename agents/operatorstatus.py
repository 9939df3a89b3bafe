"""Operator status stream (seed 003): CRM statuses, the Asterisk pause they imply, SIP endpoints.

    operator-commands, sip-registrations, operator-activity (the call center's account of
    what each operator did: signed in or out, calls answered and ended)
        --route_*--> os-events (each input in its operator's partition)
    os-events --track_operator_status--> table os-crm;
                                         operator-crm-status (compacted: the CRM status)
    after each batch's outputs are sent: the pause each change implies --> AsteriskSync (AMI)

Each route checks its records (a bad one is a dead letter with its reason); the stage applies
the pure rules of tables/operatorstatus in the batch pattern of app/batching.py. The CRM
status is stored and published first; Asterisk is told afterwards, best-effort, by
`AsteriskSync` (only the newest pause per operator waits; retried with backoff; a periodic
`QueueStatus` repairs drift either way; AMI endpoint events become `sip-registrations`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import replace
from typing import Any, Callable, Optional, cast

import faust
from mode import Service

from app import codec, metrics
from app.ami import AmiClient, AmiError, AmiRefused
from app.batching import BatchedTable, Outbox
from app.main import app
from app.stages import checked_route, key_partition, owned_partitions, process_envelopes
from tables.operatorstatus.identity import member_added
from tables.operatorstatus.records import (
    MalformedRecord,
    parse_activity,
    parse_command,
    parse_registration,
    registration_record,
)
from tables.operatorstatus.status import (
    CallAnswered,
    CallFinished,
    EndpointRegistered,
    EndpointUnregistered,
    LoggedIn,
    LoggedOut,
    OperatorCrm,
    OperatorInput,
    PauseRequest,
    StatusRequested,
    apply_operator_input,
)
from tables.operatorstatus.store import counters, crm_table, identities, operator_status, topics
from tables.operatorstatus.sync import MemberPause, endpoint_registration, pause_repairs
from tables.operatorstatus.views import crm_record

__all__ = ["AsteriskSync", "OperatorStatusStage", "asterisk_sync", "track_operator_status"]

log = logging.getLogger(__name__)
ROUTE_BATCH = 1000


# --- routes: each input checked and sent to its operator's partition ---------------------------

def _route(topic: faust.TopicT, parse: Callable[[Optional[bytes]], Any], name: str) -> None:
    checked_route(topic, name, lambda message: parse(message.value), (MalformedRecord,), topics.os_events,
                  lambda checked: checked.operator, ROUTE_BATCH)


def _by_name(parse: Callable[[Optional[bytes]], Any]) -> Callable[[Optional[bytes]], Any]:
    """Inputs written by others may name the operator by its interface: the operator's id is its member name."""
    def parsed(value: Optional[bytes]) -> Any:
        event = parse(value)
        operator = identities.operator_of(event.operator)
        return event if operator == event.operator else replace(event, operator=operator)
    return parsed


_route(topics.operator_commands, _by_name(parse_command), operator_status.topic_operator_commands)
_route(topics.sip_registrations, _by_name(parse_registration), operator_status.topic_sip_registrations)
_route(topics.operator_activity, parse_activity, operator_status.topic_operator_activity)  # by name already


# --- the stage -------------------------------------------------------------------------------------

_CAUSES = {StatusRequested: "manual", EndpointRegistered: "endpoint", EndpointUnregistered: "endpoint",
           CallAnswered: "telephony", CallFinished: "telephony", LoggedIn: "telephony", LoggedOut: "telephony"}


class _OutboxThenPauses(Outbox):
    """The batch's outputs, then (once they are handed to Kafka) its pauses to Asterisk:
    the CRM status goes first."""

    def __init__(self, app: faust.App, pauses: Callable[[list[PauseRequest]], None]) -> None:
        super().__init__(app)
        self.pauses: list[PauseRequest] = []
        self.tell = pauses

    async def flush(self) -> None:
        await super().flush()
        if self.pauses:
            self.tell(self.pauses)
            self.pauses = []


class OperatorStatusStage:
    """One envelope of partition `partition` of os-events: its inputs applied to the CRM states
    of that partition; the operators they concern published on operator-crm-status."""

    def __init__(self, partition: int, crm: Any = crm_table, outbox: Optional[Outbox] = None,
                 pauses: Optional[Callable[[list[PauseRequest]], None]] = None) -> None:
        """The table, the outbox and the pause sink are the worker's; tests pass their own."""
        self.partition = partition
        self.crm: BatchedTable[OperatorCrm] = BatchedTable(crm)
        self.outbox = outbox or _OutboxThenPauses(app, pauses or asterisk_sync.tell)
        self.to_publish: set[str] = set()
        self.pauses: dict[str, PauseRequest] = {}  # the newest per operator

    def apply_all(self, messages: list[Any]) -> None:
        for message in messages:
            self.apply(message)

    def apply(self, message: Any) -> None:
        cause = _CAUSES.get(type(message))
        if cause is None:  # pragma: no cover - the codec admits only the registered types
            raise TypeError(f"not an operator-status message: {message!r}")
        self._apply(message, cause)

    def _apply(self, event: OperatorInput, cause: str) -> None:
        before = self.crm.get(event.operator)
        outcome = apply_operator_input(before, event)
        after = outcome.operator
        if after != before:
            self.crm.put(event.operator, after)
        if outcome.changed:
            counters.changes.labels(str(after.status), cause).inc()
        if outcome.changed or event.at >= after.last_time:
            # published again even unchanged when it is the newest input: a replay after a
            # refused output (app/delivery.py) finds its state stored but its record never sent
            self.to_publish.add(event.operator)
        if outcome.pause is not None:
            self.pauses[event.operator] = outcome.pause

    def store(self) -> None:
        now = time.time()
        for operator in self.to_publish:
            op = self.crm.get(operator)
            if op is not None:
                self.outbox.latest(topics.operator_crm_status, operator, codec.dumps(crm_record(op, now)))
        self.to_publish.clear()
        if self.pauses:
            if isinstance(self.outbox, _OutboxThenPauses):
                self.outbox.pauses.extend(self.pauses.values())
            self.pauses.clear()
        self.crm.flush()


@app.agent(topics.os_events, concurrency=1)
async def track_operator_status(stream):
    await process_envelopes(stream, "os-events", OperatorStatusStage)


# --- Asterisk: pauses, reconciliation, endpoint events ----------------------------------------------

class AsteriskSync(Service):
    """Tells Asterisk the pause each CRM status implies, best-effort (AMI `QueuePause`).

    Only the newest pause per operator waits; one Asterisk refuses (an interface that is no
    member) is counted and dropped; one that fails for want of Asterisk (down, timeout) is
    retried with backoff up to `AMI_RETRY_MAX_S`, unless a newer one replaced it. Every
    `AMI_RECONCILE_S`, Asterisk's `QueueStatus` is compared with the CRM states this worker
    owns and drift is repaired either way. Without `AMI_URL` it only counts what it drops."""

    def __init__(self, url: Optional[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.url = url
        self.client: Optional[AmiClient] = None
        if url:
            self.client = AmiClient(url, on_event=self._heard, action_timeout_s=operator_status.ami_action_timeout_s)
        self.pending: dict[tuple[str, Optional[str]], PauseRequest] = {}  # (operator, queue or None)
        self.attempts: dict[tuple[str, Optional[str]], int] = {}
        self.wake = asyncio.Event()

    def tell(self, pauses: list[PauseRequest]) -> None:
        """Queue these pauses (the newest per operator wins); never blocks."""
        if self.client is None:
            counters.pause_syncs.labels("no_ami").inc(len(pauses))
            return
        for pause in pauses:
            for key in [key for key in self.pending if key[0] == pause.operator]:  # a newer status: theirs is moot
                del self.pending[key]
                self.attempts.pop(key, None)
            self.pending[(pause.operator, pause.queue)] = pause
        counters.pending_pauses.set(len(self.pending))
        self.wake.set()

    async def on_start(self) -> None:
        if self.client is not None:
            await self.add_runtime_dependency(self.client)

    @Service.task
    async def _send_pauses(self) -> None:
        retry_in: Optional[float] = None
        while not self.should_stop:
            if not self.pending or retry_in is not None:
                try:  # a new pause, or the time to retry
                    await asyncio.wait_for(self.wake.wait(), retry_in)
                except asyncio.TimeoutError:
                    pass
            self.wake.clear()
            retry_in = None
            if self.client is None:
                continue
            for key, pause in list(self.pending.items()):
                delay = await self._send(key, pause)
                if delay is not None:
                    retry_in = delay if retry_in is None else min(retry_in, delay)
            counters.pending_pauses.set(len(self.pending))

    async def _send(self, key: tuple[str, Optional[str]], pause: PauseRequest) -> Optional[float]:
        """Send one pause; None when done with it, else the wait before trying again."""
        assert self.client is not None
        interface = identities.interface_of(pause.operator)
        operator = pause.operator if interface == pause.operator else f"{pause.operator} ({interface})"
        operator = operator if pause.queue is None else f"{operator} in {pause.queue}"
        try:
            await self.client.queue_pause(interface, pause.paused, pause.queue, pause.reason)
        except AmiRefused as exc:
            counters.pause_syncs.labels("refused").inc()
            log.warning("Asterisk refused to %s %s: %s", "pause" if pause.paused else "unpause", operator, exc)
        except AmiError as exc:
            attempt = self.attempts.get(key, 0) + 1
            self.attempts[key] = attempt
            counters.pause_syncs.labels("retried").inc()
            if attempt == 1:
                log.warning("Failed to sync the pause of %s with Asterisk (%s); retrying with backoff",
                            operator, type(exc).__name__)
            return min(operator_status.ami_retry_max_s, 0.5 * 2 ** (attempt - 1)) * (0.8 + 0.4 * random.random())
        else:
            counters.pause_syncs.labels("ok").inc()
            log.debug("Asterisk queue member %s %s", operator, "paused" if pause.paused else "unpaused")
        if self.pending.get(key) is pause:  # a newer one may have come meanwhile
            del self.pending[key]
            self.attempts.pop(key, None)
        return None

    @Service.task
    async def _reconcile(self) -> None:
        """QueueStatus as soon as Asterisk answers (who is who: the names' interfaces), then every AMI_RECONCILE_S."""
        while not self.should_stop:
            if self.client is None or not await self.client.wait_connected(operator_status.ami_reconcile_s):
                await self.sleep(1.0)
                continue
            try:
                await self.reconcile()
            except AmiError as exc:
                if not self.should_stop:  # stopping fails what is in flight: no news
                    log.warning("Reconciliation with Asterisk failed: %s", exc)
            await self.sleep(operator_status.ami_reconcile_s)

    async def reconcile(self) -> list[PauseRequest]:
        """Learn who is who from Asterisk's QueueStatus, and repair the drift between its
        pauses and the CRM states this worker owns."""
        assert self.client is not None
        answer = await self.client.queue_status()
        identities.learn((m.name, m.interface, m.state_interface) for m in answer)
        owned = owned_partitions(topics.os_events)
        members = [MemberPause(m.queue, m.name, m.paused) for m in answer if key_partition(m.name) in owned]
        repairs = pause_repairs(members, crm_table.get)
        for repair in repairs:
            counters.repairs.labels(str(repair.paused).lower()).inc()
            log.info("Asterisk drifted: %s in %s is %spaused; the CRM says otherwise", repair.operator, repair.queue,
                     "un" if repair.paused else "")
        if repairs:
            self.pending.update({(r.operator, r.queue): r for r in repairs})
            counters.pending_pauses.set(len(self.pending))
            self.wake.set()
        return repairs

    def _heard(self, event: dict[str, str]) -> None:
        """An AMI event: a member added tells who is who; an endpoint's registration becomes a
        `sip-registrations` record of its operator, sent by the worker that owns the operator
        (every worker hears every event)."""
        member = member_added(event)
        if member is not None:
            identities.learn((member,))
            return
        registration = endpoint_registration(event)
        if registration is None:
            return
        operator = identities.operator_of(registration.endpoint)
        if key_partition(operator) not in owned_partitions(topics.os_events):
            return
        counters.registrations_heard.labels(str(registration.registered).lower()).inc()
        value = registration_record(operator, registration.endpoint, registration.registered, time.time())
        asyncio.ensure_future(self._send_registration(operator, value))

    async def _send_registration(self, operator: str, value: bytes) -> None:
        try:
            await app.producer.send_answered(  # type: ignore[attr-defined]
                topics.sip_registrations.get_topic_name(), operator.encode(), value, 30.0)
        except Exception as exc:  # the next event, or the reconciliation, tells again
            log.warning("Could not record the registration event of %s: %s", operator, exc)


asterisk_sync = AsteriskSync(operator_status.ami_url)
metrics.declare_integration("ami", operator_status.ami_url is not None, "AMI_URL is not set: Asterisk's pauses are not "
                            "kept in step with the CRM status, nor repaired")
app.service(cast(Any, asterisk_sync))  # started with the app (Faust takes instances too)
