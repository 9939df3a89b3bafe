"""Operator status's endpoints (SPEC.md "HTTP API", call center).

- `POST /operators/{id}/status` {status, reason?} (operator or manager): a command on
  `operator-commands`, answered once Kafka has it; the CRM status changes when the stream
  applies it (and Asterisk is told after that, best-effort).
- `GET /ws/operators` (WebSocket; `?token=` or the Authorization header; manager or
  operator): every CRM status change, whichever worker applied it: each worker reads
  `operator-crm-status` from its end (no consumer group: every worker reads everything)
  and pushes each record to its own clients as `{"type": "operator_status", "operator": {…}}`.
- `GET /operators…` (web/callcenter.py) shows the CRM fields beside the telephony state:
  this module registers the facet that reads them (app/facets.py), and the resolver that
  takes an operator's Asterisk interface for its name (tables/operatorstatus/identity.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Iterable, Optional, cast

import aiohttp
from aiohttp import web as aioweb
from faust import web
from mode import Service

from app.facets import register_operator_facet, register_operator_names
from app.feeds import partitions_of
from app.main import app, settings
from tables.operatorstatus.records import Reason, command_record
from tables.operatorstatus.status import CrmStatus
from tables.operatorstatus.store import crm_table, identities, topics
from tables.operatorstatus.views import crm_fields
from web.common import ApiError, ApiView, authorize, opened_socket, send_command
from web.params import Body, body, identifier

__all__ = ["CrmFacet", "CrmPushFeed", "OperatorStatusView", "OperatorsSocket", "push_feed"]

log = logging.getLogger(__name__)

ROLES = ("manager", "operator")
MAX_CLIENT_BACKLOG = 1000  # pushes a slow client may have queued before it is dropped


class StatusBody(Body):
    status: CrmStatus
    reason: Reason = ""


@app.page("/operators/{operator_id}/status")
class OperatorStatusView(ApiView):
    roles = ROLES

    async def post(self, request: web.Request, operator_id: str) -> web.Response:
        operator = identities.operator_of(identifier(operator_id, "operator_id"))  # its name or its interface
        asked = await body(request, StatusBody)
        role = authorize(request, self.roles)
        now = time.time()
        try:
            value = command_record(operator, asked.status, asked.reason, now, role)
        except ValueError as exc:  # the path's id is more than a record allows
            raise ApiError(400, "bad_request", str(exc)) from None
        await send_command(topics.operator_commands, operator.encode(), value, "status")
        return self.ok({"operator": operator, "status": str(asked.status), "reason": asked.reason, "at": now},
                       status=202)


# --- the facet: CRM fields beside the telephony state ------------------------------------------------

class CrmFacet:
    def fields(self, operator: str, now: float) -> Optional[dict[str, Any]]:
        op = crm_table.get(operator)
        return None if op is None or op.since is None else crm_fields(op, now)

    def operators(self) -> Iterable[str]:
        return (operator for operator, _ in crm_table.items())


register_operator_facet(CrmFacet())
register_operator_names(identities.operator_of)  # GET /operators/{id} takes an operator's interface too


# --- the push ------------------------------------------------------------------------------------------

class CrmPushFeed(Service):
    """Reads `operator-crm-status` from its end, every partition, and hands each record to
    every WebSocket client of this worker (each has a bounded queue: a client that cannot
    keep up is closed, never the feed slowed)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clients: set[asyncio.Queue[bytes]] = set()
        self.positioned = asyncio.Event()  # reading from known offsets: every later change is pushed

    def subscribe(self) -> "asyncio.Queue[bytes]":
        queue: asyncio.Queue[bytes] = asyncio.Queue(MAX_CLIENT_BACKLOG)
        self.clients.add(queue)
        return queue

    def unsubscribe(self, queue: "asyncio.Queue[bytes]") -> None:
        self.clients.discard(queue)

    def publish(self, value: bytes) -> None:
        message = b'{"type":"operator_status","operator":' + value + b"}"
        for queue in list(self.clients):
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:  # its oldest push makes room for the end of its stream
                self.clients.discard(queue)
                queue.get_nowait()
                queue.put_nowait(b"")
                log.warning("A /ws/operators client fell %d pushes behind; closing it", MAX_CLIENT_BACKLOG)

    @Service.task
    async def _feed(self) -> None:
        from aiokafka import AIOKafkaConsumer

        topic = topics.operator_crm_status.get_topic_name()
        while not self.should_stop:
            consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                        enable_auto_commit=False, auto_offset_reset="latest",
                                        fetch_max_wait_ms=50)
            try:
                await consumer.start()
                partitions = await partitions_of(consumer, topic)
                consumer.assign(partitions)
                # from the ends as they are now (a lazy seek_to_end would skip what comes before
                # the first fetch): a client told "connected" gets every change after that
                for tp, end in (await consumer.end_offsets(partitions)).items():
                    consumer.seek(tp, end)
                self.positioned.set()
                async for record in consumer:
                    if record.value is not None:
                        self.publish(record.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker away: read again from the end once it is back
                self.positioned.clear()
                log.warning("The operator status push feed stopped (%s); starting again", exc)
                await self.sleep(1.0)
            finally:
                await consumer.stop()


push_feed = CrmPushFeed()
app.service(cast(Any, push_feed))


@app.page("/ws/operators")
class OperatorsSocket(ApiView):
    roles = ROLES
    public = True  # the token may come in the query string (browsers cannot set headers on a WebSocket)

    async def get(self, request: web.Request) -> Any:
        request = cast(Any, request)
        token = request.query.get("token")
        if token and "Authorization" not in request.headers:
            request = request.clone(headers={**request.headers, "Authorization": f"Bearer {token}"})
        authorize(request, self.roles)
        socket = opened_socket(aioweb.WebSocketResponse(heartbeat=30.0))
        if not socket.can_prepare(request).ok:
            raise ApiError(400, "bad_request", "GET /ws/operators is a WebSocket: send the upgrade headers")
        await socket.prepare(request)
        pushes = push_feed.subscribe()
        await push_feed.positioned.wait()
        await socket.send_str('{"type":"connected"}')
        sender = asyncio.ensure_future(_send_pushes(socket, pushes))
        try:
            async for message in socket:  # clients say nothing; reading notices them leaving
                if message.type == aiohttp.WSMsgType.ERROR:
                    break
        finally:
            push_feed.unsubscribe(pushes)
            sender.cancel()
        return socket


async def _send_pushes(socket: aioweb.WebSocketResponse, pushes: "asyncio.Queue[bytes]") -> None:
    while True:
        message = await pushes.get()
        if not message:
            await socket.close(code=aiohttp.WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
            return
        await socket.send_str(message.decode())

