"""A stand-in of AIS "KRT" (the city's digital profiles of taxi drivers) for `make run` and the tests.

This docstring is the documentation of its API. The real KRT speaks HTTPS; the stand-in
speaks plain HTTP on 127.0.0.1 only.

Running it
----------
    python -m app krt-sandbox [--port P] [--control-port C] [--token-ttl S]
                              [--client-id ID --client-secret SECRET] [--shift-hours H] [--rest-hours H]

(`python -m dev.krt_sandbox` takes the same options.) Defaults: the API on port 8088, the
control API on 8089 (0: any free port), credentials `switchboard` / `switchboard`, tokens
valid 3600 s, shifts of 12 h followed by 8 h of rest. When both ports listen it prints one
line, `KRT sandbox listening on http://127.0.0.1:P (client ID), control on
http://127.0.0.1:C`; SIGINT or SIGTERM stop it (exit code 0). In a test:
`sandbox = await KrtSandbox(...).start()`, `sandbox.url`, the control methods named below,
`await sandbox.stop()`.

The API (port P)
----------------
Every body, asked and answered, is one JSON object. An error is answered as
`{"error": CODE, "message": TEXT}`; TEXT is for people and never repeats a licence number
or an ID. A request with a field the endpoint does not know, a missing field or a field of
the wrong type is answered 400 `bad_request` (stricter than it need be, so that a client's
typo shows). An unknown path answers 404 `not_found`, another method 405
`method_not_allowed`.

`POST /api/v1/auth/token`
    asks   `{"client_id": str, "client_secret": str}`
    200    `{"access_token": str, "token_type": "Bearer", "expires_in": number}` (seconds from now)
    401    `invalid_credentials`
    Each call issues a new token; the ones issued before stay valid until they expire.

The two endpoints below need `Authorization: Bearer <access_token>`. Without a token that
is valid they answer 401 with `{"error": "invalid_token"}` (no header, not `Bearer`, a
token never issued) or `{"error": "token_expired"}` (past its `expires_in`, or issued
before the control API expired all tokens).

`POST /api/v1/drivers/verify`
    asks   `{"deptrans_id": str, "license_number": str}` (neither empty)
    200    `{"match": bool}`: whether the ID belongs to the driver with this licence
    Licence numbers are compared normalised: upper case, without spaces and hyphens. An ID
    belongs to a licence when
    - it is `KRT` followed by the first 10 hex digits, upper case, of the SHA-256 of the
      normalised licence in UTF-8 (`sandbox_id_for(licence)` computes it), or
    - it was registered for that licence through the control API.
    Any other pair does not match (200 with `"match": false`, never 404).

`POST /api/v1/drivers/status`
    asks   `{"license_number": str, "deptrans_id": str (optional), "status": "online" | "busy" | "offline",
            "at": number}`; `at` is when the status changed, in epoch seconds
    200    `{"session_status": "open" | "closed" | "none", "session_ends_at": number | null}`
    422    `id_mismatch`: a `deptrans_id` was given and it does not belong to the licence (as in verify)
    The shift model, kept per licence and computed in the time of `at` (an `at` earlier
    than the driver's previous report counts as that report's time: a driver's clock never
    runs backwards):
    - a shift opened at T ends at T + shift hours, whatever the driver does meanwhile;
    - `online` or `busy` with no shift running opens one, unless the rest after the last
      shift (rest hours from its end) is not over yet: then no shift opens;
    - `offline` changes nothing: a shift running keeps running until its end;
    - the answer: `open` with the end of the shift running; `closed` with the end of the
      last shift once it is over; `none` with null for a driver who never had a shift.

Faults
------
Applied to every request of the API, in this order, before the token and the body are
looked at: down; delay; injected failure. Each request is recorded (`GET /requests`).
- down: the port is closed, so connecting is refused; a connection opened before is cut
  without an answer. When up again, the same port listens.
- delay: a request waits `delay_s` before anything else (per endpoint, or for all).
- fail: the next `count` requests (or all, until cleared), per endpoint or of all, are
  answered `status` (400-599, 500 by default) with `{"error": "injected_failure"}`.
- expire tokens: every token issued so far answers 401 `token_expired`; new ones work.
- token TTL: the `expires_in` of the tokens issued from now on.

The control API (port C)
------------------------
Bodies are JSON objects; an error is `{"error": {"code": str, "message": str}}` (400 for a
bad body). An endpoint is one of `"token"`, `"verify"`, `"status"`; null or absent: all.

    GET    /state          {"down", "delay_s": {endpoint or "*": s}, "failures": {endpoint or "*": {"status", "count"}},
                            "token_ttl_s", "tokens_issued", "registrations": [{"deptrans_id", "license_number"}],
                            "shifts": [{"license_number", "started_at", "ends_at", "last_status", "last_at"}]}
    POST   /down           {"down": bool}                                        set_down(down) (a coroutine)
    POST   /delay          {"delay_s": number, "endpoint": E}; 0 clears           slow_down(delay_s, endpoint)
    POST   /fail           {"status": int = 500, "count": int | null, "endpoint": E}; count 0 clears
                                                                                 fail(status, count, endpoint)
    POST   /tokens/expire  {}                                                    expire_tokens()
    POST   /tokens/ttl     {"ttl_s": number > 0}                                 set_token_ttl(ttl_s)
    POST   /registrations  {"deptrans_id": str, "license_number": str}           register(deptrans_id, license_number)
    GET    /requests       [{"endpoint", "method", "path", "status", "at", "body"}], oldest first: `endpoint` null
                           for an unknown path, `status` null when no answer was sent (down), `body` the JSON
                           received (null when none, a string when no JSON)      .requests
    DELETE /requests       forgets them                                          .requests.clear()
    POST   /reset          back to the start: up, no faults, no tokens, registrations, shifts or requests   reset()

Each answers `{"ok": true}` unless it says otherwise. `/requests` keeps the bodies as
received, licence numbers included: this is a test double. The service itself must never
log or count them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import logging
import math
import secrets
import signal
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Awaitable, Callable, Literal, Optional, Sequence

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dev.control import control_errors, read_body

__all__ = [
    "DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_CONTROL_PORT", "DEFAULT_PORT", "ENDPOINTS", "KrtSandbox",
    "ReceivedRequest", "Shift", "add_arguments", "control_app", "main", "normalise_license", "run", "sandbox_id_for",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8088  # docker-compose's KRT_URL
DEFAULT_CONTROL_PORT = 8089
DEFAULT_CLIENT_ID = "switchboard"
DEFAULT_CLIENT_SECRET = "switchboard"
ENDPOINTS = {"/api/v1/auth/token": "token", "/api/v1/drivers/verify": "verify", "/api/v1/drivers/status": "status"}
ALL = "*"  # the key of a fault that applies to every endpoint


def normalise_license(license_number: str) -> str:
    """A licence number as KRT compares it: upper case, without spaces and hyphens."""
    return "".join(c for c in license_number.upper() if c not in " -\t")


def sandbox_id_for(license_number: str) -> str:
    """The KRT ID the sandbox gives the driver with this licence (see the module docstring)."""
    return "KRT" + hashlib.sha256(normalise_license(license_number).encode()).hexdigest()[:10].upper()


@dataclass
class Shift:
    """What the sandbox knows of one driver's shifts: the last one, and the driver's last report."""

    license_number: str
    started_at: Optional[float] = None
    ends_at: Optional[float] = None
    last_status: Optional[str] = None
    last_at: Optional[float] = None


@dataclass
class ReceivedRequest:
    """One request to the API, as it came, and the status it was answered (None: no answer)."""

    endpoint: Optional[str]
    method: str
    path: str
    body: Any
    at: float  # wall clock
    status: Optional[int] = None


@dataclass
class _Failure:
    status: int
    remaining: Optional[int]  # None: every request until cleared


@dataclass(frozen=True)
class _Token:
    expires_at: float  # monotonic
    generation: int  # tokens of an earlier generation were expired by the control API


class _Refusal(Exception):
    """An answer in KRT's error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _krt_error(status: int, code: str, message: str) -> web.Response:
    return web.Response(body=orjson.dumps({"error": code, "message": message}), status=status,
                        content_type="application/json")


def _ok(answer: Any) -> web.Response:
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


# --- the API's bodies --------------------------------------------------------------------------

class _Asked(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _TokenAsked(_Asked):
    client_id: str
    client_secret: str


class _VerifyAsked(_Asked):
    deptrans_id: str = Field(min_length=1)
    license_number: str = Field(min_length=1)


class _StatusAsked(_Asked):
    license_number: str = Field(min_length=1)
    deptrans_id: Optional[str] = Field(default=None, min_length=1)
    status: Literal["online", "busy", "offline"]
    at: float = Field(gt=0)


def _validated(model: type[BaseModel], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        # the field and what is wrong with it, never its value
        raise _Refusal(400, "bad_request", "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())[:500]) from None


# --- the sandbox -------------------------------------------------------------------------------

class KrtSandbox:
    """KRT's API on localhost: tokens, IDs, shifts, a record of requests and fault injection."""

    def __init__(self, client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 token_ttl_s: float = 3600.0, shift_hours: float = 12.0, rest_hours: float = 8.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.initial_token_ttl_s = self.token_ttl_s = token_ttl_s
        self.shift_s, self.rest_s = shift_hours * 3600.0, rest_hours * 3600.0
        self.clock = clock  # token lifetimes only; shifts live in the time of the reports' `at`
        self.port = 0
        self.down = False
        self.requests: list[ReceivedRequest] = []
        self.registrations: set[tuple[str, str]] = set()  # (deptrans_id, normalised licence)
        self.shifts: dict[str, Shift] = {}  # by normalised licence
        self.tokens_issued = 0
        self._tokens: dict[str, _Token] = {}
        self._generation = 0
        self._delays: dict[str, float] = {}
        self._failures: dict[str, _Failure] = {}
        self._host = "127.0.0.1"
        self._stopping = False
        self._wake = asyncio.Event()  # set to end every delay at once (going down, stopping)
        self._runner: Optional[web.AppRunner] = None
        self._site: Optional[web.TCPSite] = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> "KrtSandbox":
        self._host, self._stopping = host, False
        self._runner = web.AppRunner(self.api_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen(port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            self._stopping = True
            self._end_delays()  # a delayed request ends unanswered now, not when its delay is over
            await self._runner.cleanup()
            self._runner = self._site = None

    async def _listen(self, port: int) -> None:
        assert self._runner is not None, "start() first"
        self._site = web.TCPSite(self._runner, self._host, port)
        await self._site.start()
        self.port = self._runner.addresses[-1][1]

    def _end_delays(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    def _cut_connections(self) -> None:
        assert self._runner is not None and self._runner.server is not None
        for connection in self._runner.server.connections:
            connection.force_close()

    # --- control ---------------------------------------------------------------------------

    async def set_down(self, down: bool) -> None:
        """Down: the port closed and every connection cut. Up: the same port listens again."""
        if down == self.down or self._runner is None:
            self.down = down
            return
        self.down = down
        if down:
            self._end_delays()
            if self._site is not None:
                await self._site.stop()
                self._site = None
            self._cut_connections()
        else:
            await self._listen(self.port)

    def slow_down(self, delay_s: float, endpoint: Optional[str] = None) -> None:
        """Each request (of `endpoint`, or all) waits `delay_s` first; 0 clears."""
        key = _endpoint_key(endpoint)
        if delay_s > 0:
            self._delays[key] = delay_s
        else:
            self._delays.pop(key, None)

    def fail(self, status: int = 500, count: Optional[int] = None, endpoint: Optional[str] = None) -> None:
        """Answer `status` to the next `count` requests (of `endpoint`, or all); None: until cleared; 0 clears."""
        if not 400 <= status <= 599:
            raise ValueError("an injected failure answers 400-599")
        key = _endpoint_key(endpoint)
        if count == 0:
            self._failures.pop(key, None)
        else:
            self._failures[key] = _Failure(status, count)

    def expire_tokens(self) -> None:
        """Every token issued so far answers 401 token_expired from now on."""
        self._generation += 1

    def set_token_ttl(self, ttl_s: float) -> None:
        if not ttl_s > 0:
            raise ValueError("a token lives a positive number of seconds")
        self.token_ttl_s = ttl_s

    def register(self, deptrans_id: str, license_number: str) -> None:
        """`deptrans_id` belongs to the driver with `license_number` (beside the ID the rule gives them)."""
        self.registrations.add((deptrans_id, normalise_license(license_number)))

    async def reset(self) -> None:
        """Back to the start: up, no faults, no tokens, no registrations, shifts or requests."""
        await self.set_down(False)
        self.token_ttl_s = self.initial_token_ttl_s
        for kept in (self.requests, self.registrations, self.shifts, self._tokens, self._delays, self._failures):
            kept.clear()
        self.tokens_issued = 0
        self._generation += 1

    def received(self, endpoint: str) -> list[ReceivedRequest]:
        """The requests to `endpoint` (token, verify, status), oldest first."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def matches(self, deptrans_id: str, license_number: str) -> bool:
        """Whether the ID belongs to the driver with this licence."""
        return (deptrans_id == sandbox_id_for(license_number)
                or (deptrans_id, normalise_license(license_number)) in self.registrations)

    def state(self) -> dict[str, Any]:
        return {
            "down": self.down,
            "delay_s": dict(self._delays),
            "failures": {k: {"status": f.status, "count": f.remaining} for k, f in self._failures.items()},
            "token_ttl_s": self.token_ttl_s,
            "tokens_issued": self.tokens_issued,
            "registrations": [{"deptrans_id": i, "license_number": n} for i, n in sorted(self.registrations)],
            "shifts": [asdict(s) for _, s in sorted(self.shifts.items())],
        }

    # --- the API ---------------------------------------------------------------------------

    def api_app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        app.router.add_post("/api/v1/auth/token", self._token)
        app.router.add_post("/api/v1/drivers/verify", self._verify)
        app.router.add_post("/api/v1/drivers/status", self._status)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        """Record the request, apply the faults, and answer errors in KRT's shape."""
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        endpoint = ENDPOINTS.get(request.path)
        record = ReceivedRequest(endpoint, request.method, request.path, body, time.time())
        self.requests.append(record)
        response = None if self.down else await self._answer(request, handler, endpoint)
        if response is None or self.down or self._stopping:
            # down (or stopping) before the answer: the connection is cut without one
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=503)  # never sent
        record.status = response.status
        return response

    async def _answer(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                      endpoint: Optional[str]) -> Optional[web.StreamResponse]:
        """The answer, or None when the sandbox went down (or stops) while the request waited."""
        if endpoint is not None:
            delay = self._delays.get(endpoint, self._delays.get(ALL, 0.0))
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                if self.down or self._stopping:
                    return None
            failure = self._take_failure(endpoint)
            if failure is not None:
                return _krt_error(failure, "injected_failure", f"the sandbox was told to answer {failure}")
        try:
            return await handler(request)
        except _Refusal as exc:
            return _krt_error(exc.status, exc.code, exc.message)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "bad_request")
            return _krt_error(exc.status, code, exc.reason)

    def _take_failure(self, endpoint: str) -> Optional[int]:
        for key in (endpoint, ALL):
            failure = self._failures.get(key)
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        del self._failures[key]
                return failure.status
        return None

    def _authorise(self, request: web.Request) -> None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            raise _Refusal(401, "invalid_token", "a Bearer token from /api/v1/auth/token is needed")
        if token.generation != self._generation or self.clock() >= token.expires_at:
            raise _Refusal(401, "token_expired", "the token has expired; ask for a new one")

    async def _token(self, request: web.Request) -> web.Response:
        asked: _TokenAsked = _validated(_TokenAsked, await request.read())
        if not (secrets.compare_digest(asked.client_id, self.client_id)
                and secrets.compare_digest(asked.client_secret, self.client_secret)):
            raise _Refusal(401, "invalid_credentials", "unknown client or wrong secret")
        token = secrets.token_urlsafe(24)
        self._tokens[token] = _Token(self.clock() + self.token_ttl_s, self._generation)
        self.tokens_issued += 1
        ttl: float = int(self.token_ttl_s) if float(self.token_ttl_s).is_integer() else self.token_ttl_s
        return _ok({"access_token": token, "token_type": "Bearer", "expires_in": ttl})

    async def _verify(self, request: web.Request) -> web.Response:
        self._authorise(request)
        asked: _VerifyAsked = _validated(_VerifyAsked, await request.read())
        return _ok({"match": self.matches(asked.deptrans_id, asked.license_number)})

    async def _status(self, request: web.Request) -> web.Response:
        self._authorise(request)
        asked: _StatusAsked = _validated(_StatusAsked, await request.read())
        if asked.deptrans_id is not None and not self.matches(asked.deptrans_id, asked.license_number):
            raise _Refusal(422, "id_mismatch", "the deptrans_id does not belong to this licence")
        status, ends_at = self.report(asked.license_number, asked.status, asked.at)
        return _ok({"session_status": status, "session_ends_at": ends_at})

    def report(self, license_number: str, status: str, at: float) -> tuple[str, Optional[float]]:
        """The shift model (see the module docstring): the driver's new status at `at` → (session_status, ends_at)."""
        key = normalise_license(license_number)
        shift = self.shifts.setdefault(key, Shift(key))
        now = at if shift.last_at is None else max(at, shift.last_at)
        shift.last_status, shift.last_at = status, now
        rested = shift.ends_at is None or now >= shift.ends_at + self.rest_s
        if status in ("online", "busy") and rested:
            shift.started_at, shift.ends_at = now, now + self.shift_s
        if shift.ends_at is None:
            return "none", None
        return ("open" if now < shift.ends_at else "closed"), shift.ends_at


def _endpoint_key(endpoint: Optional[str]) -> str:
    if endpoint is None or endpoint == ALL:
        return ALL
    if endpoint not in ENDPOINTS.values():
        raise ValueError(f"no such endpoint {endpoint!r}; one of {', '.join(sorted(ENDPOINTS.values()))}")
    return endpoint


# --- the HTTP control API of the process -------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class _DownBody(_Body):
    down: bool


class _DelayBody(_Body):
    delay_s: float = Field(ge=0)
    endpoint: Optional[Literal["token", "verify", "status"]] = None


class _FailBody(_Body):
    status: int = Field(500, ge=400, le=599)
    count: Optional[int] = Field(None, ge=0)
    endpoint: Optional[Literal["token", "verify", "status"]] = None


class _TtlBody(_Body):
    ttl_s: float = Field(gt=0)


class _RegistrationBody(_Body):
    deptrans_id: str = Field(min_length=1)
    license_number: str = Field(min_length=1)


def control_app(sandbox: KrtSandbox) -> web.Application:
    """The HTTP control of a sandbox: its state, what it was asked, its faults."""
    routes = web.RouteTableDef()
    ok = {"ok": True}

    @routes.get("/state")
    async def state(request: web.Request) -> web.Response:
        return web.json_response(sandbox.state())

    @routes.post("/down")
    async def down(request: web.Request) -> web.Response:
        body: _DownBody = await read_body(request, _DownBody, empty=b"{}")
        await sandbox.set_down(body.down)
        return web.json_response(ok)

    @routes.post("/delay")
    async def delay(request: web.Request) -> web.Response:
        body: _DelayBody = await read_body(request, _DelayBody, empty=b"{}")
        sandbox.slow_down(body.delay_s, body.endpoint)
        return web.json_response(ok)

    @routes.post("/fail")
    async def fail(request: web.Request) -> web.Response:
        body: _FailBody = await read_body(request, _FailBody, empty=b"{}")
        sandbox.fail(body.status, body.count, body.endpoint)
        return web.json_response(ok)

    @routes.post("/tokens/expire")
    async def expire(request: web.Request) -> web.Response:
        sandbox.expire_tokens()
        return web.json_response(ok)

    @routes.post("/tokens/ttl")
    async def ttl(request: web.Request) -> web.Response:
        body: _TtlBody = await read_body(request, _TtlBody, empty=b"{}")
        sandbox.set_token_ttl(body.ttl_s)
        return web.json_response(ok)

    @routes.post("/registrations")
    async def register(request: web.Request) -> web.Response:
        body: _RegistrationBody = await read_body(request, _RegistrationBody, empty=b"{}")
        sandbox.register(body.deptrans_id, body.license_number)
        return web.json_response(ok)

    @routes.get("/requests")
    async def requests(request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in sandbox.requests], dumps=lambda v: orjson.dumps(v).decode())

    @routes.delete("/requests")
    async def forget_requests(request: web.Request) -> web.Response:
        sandbox.requests.clear()
        return web.json_response(ok)

    @routes.post("/reset")
    async def reset(request: web.Request) -> web.Response:
        await sandbox.reset()
        return web.json_response(ok)

    app = web.Application(middlewares=[control_errors])
    app.add_routes(routes)
    return app


# --- the process -------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"API port (default {DEFAULT_PORT}; 0: any free one)")
    parser.add_argument("--control-port", type=int, default=DEFAULT_CONTROL_PORT,
                        help=f"HTTP control port (default {DEFAULT_CONTROL_PORT}; 0: any free one)")
    parser.add_argument("--token-ttl", type=_positive, default=3600.0, metavar="S", help="token lifetime, seconds (default 3600)")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help=f"the accepted client id (default {DEFAULT_CLIENT_ID})")
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET, help="the accepted client secret")
    parser.add_argument("--shift-hours", type=_positive, default=12.0, metavar="H", help="a shift's length (default 12)")
    parser.add_argument("--rest-hours", type=float, default=8.0, metavar="H", help="the rest after a shift (default 8)")


def _positive(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r}: a positive number is needed")
    return value


async def _serve(args: argparse.Namespace) -> None:
    sandbox = KrtSandbox(args.client_id, args.client_secret, args.token_ttl, args.shift_hours, max(0.0, args.rest_hours))
    await sandbox.start(args.host, args.port)
    runner = web.AppRunner(control_app(sandbox), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.control_port)
    await site.start()
    control_port = runner.addresses[0][1]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    print(f"KRT sandbox listening on {sandbox.url} (client {args.client_id}), control on http://{args.host}:{control_port}",
          flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()
        await sandbox.stop()


def main(args: argparse.Namespace, settings: Any = None) -> int:
    """`python -m app krt-sandbox`: serve until SIGINT or SIGTERM; exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


def run(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m dev.krt_sandbox`: the same, with its own argument parsing."""
    parser = argparse.ArgumentParser(prog="python -m dev.krt_sandbox", description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
