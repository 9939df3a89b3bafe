"""IVR routing's endpoints (SPEC.md "HTTP API", IVR). Writes become commands on
`ivr-commands`, answered once Kafka has them; reads come from the worker that owns the
phone's or the order's partition, or from a standby replica of it caught up with its
changelog (the telephony asks on every call: a forwarded request costs it a hop).

- `POST /tel/inbound_number` {order_id, inbound_number, gateway?, expires_at? | ttl_s?}
- `POST /routetoivr` {phone, order_id, order_time_s? | ttl_s?}: until now + order_time_s +
  IVR_MARGIN_S (or now + ttl_s)
- `POST /routetooperator` {phone, order_id?}
- `GET /routing?phone=` -> {target, order_id, expires_at, reason}
- `GET /make_call?order_id=` -> {caller_number, gateway, source, reason?}
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Optional
from urllib.parse import quote

from faust import web
from pydantic import StringConstraints, model_validator

from app.main import app
from tables.ivr.commands import (
    BindInbound,
    BindInboundRecord,
    Command,
    IvrCommand,
    MalformedCommand,
    RouteToIvr,
    RouteToIvrRecord,
    RouteToOperatorRecord,
    command_key,
    command_record,
    validated,
)
from tables.ivr.phones import MAX_INPUT_CHARS, InvalidPhone, normalise
from tables.ivr.rules import CallBack, Routing, call_back, routing_of
from tables.ivr.store import bindings_table, counters, ivr, rules_table, topics
from web.common import WORKER, ApiError, ApiView, ask_owner, send_command
from web.params import Body, BodyEpochSeconds, Duration, DurationOrZero, Identifier, Query, body, query

__all__ = ["InboundNumber", "MakeCall", "RouteToIvrView", "RouteToOperatorView", "RoutingView"]

ROLES = ("service",)  # integration-auth, processing, the notification queue, the telephony
READERS = (*ROLES, WORKER)  # and the reads ask_owner forwards to the key's owner
PhoneText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_INPUT_CHARS)]  # E.164 is checked later


class InboundNumberBody(Body):
    order_id: Identifier
    inbound_number: PhoneText
    gateway: Optional[Identifier] = None  # None: the default gateway (IVR_DEFAULT_GATEWAY)
    expires_at: Optional[BodyEpochSeconds] = None
    ttl_s: Optional[Duration] = None  # neither: IVR_BINDING_TTL_S

    @model_validator(mode="after")
    def _one_expiry(self) -> "InboundNumberBody":
        if self.expires_at is not None and self.ttl_s is not None:
            raise ValueError("give expires_at or ttl_s, not both")
        return self


class RouteToIvrBody(Body):
    phone: PhoneText
    order_id: Identifier
    order_time_s: Optional[DurationOrZero] = None  # the order's estimated time
    ttl_s: Optional[Duration] = None  # an explicit TTL instead of order_time_s + IVR_MARGIN_S

    @model_validator(mode="after")
    def _one_expiry(self) -> "RouteToIvrBody":
        if self.order_time_s is not None and self.ttl_s is not None:
            raise ValueError("give order_time_s or ttl_s, not both")
        return self


class RouteToOperatorBody(Body):
    phone: PhoneText
    order_id: Optional[Identifier] = None  # None: every order of the passenger


class PhoneQuery(Query):
    phone: str


class OrderQuery(Query):
    order_id: Identifier


async def _submit(record: Command) -> IvrCommand:
    """Check a command as the stream will, send it keyed by the state it changes, and
    wait until Kafka has it: 400 for what the stream would refuse, 503 when Kafka does not answer."""
    try:
        command = validated(record, ivr.ivr_default_region, ivr.ivr_binding_ttl_s, ivr.ivr_max_ttl_s)
    except MalformedCommand as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    await send_command(topics.ivr_commands, command_key(command).encode(), command_record(command))
    return command


@app.page("/tel/inbound_number")
class InboundNumber(ApiView):
    roles = ROLES

    async def post(self, request: web.Request) -> web.Response:
        asked = await body(request, InboundNumberBody)
        now = time.time()
        expires_at = asked.expires_at if asked.ttl_s is None else now + asked.ttl_s
        command = await _submit(BindInboundRecord(kind="bind_inbound", order_id=asked.order_id,
                                                  inbound_number=asked.inbound_number, gateway=asked.gateway,
                                                  expires_at=expires_at, at=now))
        assert isinstance(command, BindInbound)
        return self.ok({"order_id": command.order_id, "inbound_number": command.inbound_number,
                        "gateway": command.gateway, "expires_at": command.expires_at})


@app.page("/routetoivr")
class RouteToIvrView(ApiView):
    roles = ROLES

    async def post(self, request: web.Request) -> web.Response:
        asked = await body(request, RouteToIvrBody)
        now = time.time()
        ttl = asked.ttl_s if asked.ttl_s is not None else (asked.order_time_s or 0.0) + ivr.ivr_margin_s
        command = await _submit(RouteToIvrRecord(kind="route_to_ivr", phone=asked.phone, order_id=asked.order_id,
                                                 expires_at=now + ttl, at=now))
        assert isinstance(command, RouteToIvr)
        return self.ok({"phone": command.phone, "target": "ivr", "order_id": command.order_id,
                        "expires_at": command.expires_at})


@app.page("/routetooperator")
class RouteToOperatorView(ApiView):
    roles = ROLES

    async def post(self, request: web.Request) -> web.Response:
        asked = await body(request, RouteToOperatorBody)
        command = await _submit(RouteToOperatorRecord(kind="route_to_operator", phone=asked.phone,
                                                      order_id=asked.order_id, at=time.time()))
        return self.ok({"phone": command_key(command), "target": "operator", "order_id": asked.order_id})


def routing_view(routing: Routing) -> dict[str, Any]:
    return {"target": str(routing.target), "order_id": routing.order_id, "expires_at": routing.expires_at,
            "reason": str(routing.reason)}


def call_back_view(answer: CallBack) -> dict[str, Any]:
    view: dict[str, Any] = {"caller_number": answer.caller_number, "gateway": answer.gateway, "source": str(answer.source)}
    if answer.reason is not None:
        view["reason"] = answer.reason
    return view


@app.page("/routing")
class RoutingView(ApiView):
    roles = READERS

    async def get(self, request: web.Request) -> web.Response:
        raw = query(request, PhoneQuery).phone
        try:
            phone = normalise(raw, ivr.ivr_default_region)
        except InvalidPhone as exc:
            raise ApiError(400, "bad_request", f"query parameter 'phone': {exc}") from None

        async def local() -> dict[str, Any]:
            answer = routing_view(routing_of(rules_table.stored(phone), time.time()))
            counters.routing_answers.labels(answer["target"], answer["reason"]).inc()
            return answer

        path = f"/routing?phone={quote(phone, safe='')}"
        return self.ok(await ask_owner(rules_table, phone, path, local, request, standby_ok=True))


@app.page("/make_call")
class MakeCall(ApiView):
    roles = READERS

    async def get(self, request: web.Request) -> web.Response:
        order_id = query(request, OrderQuery).order_id

        async def local() -> dict[str, Any]:
            answer = call_back(bindings_table.stored(order_id), time.time(), ivr.ivr_default_caller_number,
                               ivr.ivr_default_gateway)
            return call_back_view(answer)

        path = f"/make_call?order_id={quote(order_id, safe='')}"
        return self.ok(await ask_owner(bindings_table, order_id, path, local, request, standby_ok=True))
