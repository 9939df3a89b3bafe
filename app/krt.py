"""An asyncio client of the city's AIS "KRT" (taxi drivers' digital profiles), our own and small.

KRT is JSON over HTTPS with a bearer token; `dev/krt_sandbox.py` documents the API and
stands in for it. Three endpoints:

- `POST /api/v1/auth/token`: our credentials → a token and its lifetime;
- `POST /api/v1/drivers/verify`: does this KRT ID belong to the driver with this licence;
- `POST /api/v1/drivers/status`: a driver went online / busy / offline → the state of
  their shift (`open`, `closed`, `none`) and when it ends.

`KrtClient` is a mode `Service` that holds the HTTP transport and the token. It obtains a
token on the first call, reuses it, and gets a new one once `refresh_fraction` of its
lifetime has passed, before KRT would refuse it (should that renewal fail while the old
token is still valid, the old one serves). When KRT answers 401 all the same (it revoked
the token, it restarted), the client gets a new token and repeats the call once.
Concurrent calls share one token request.

Errors are `KrtError`s of two kinds, which tell a caller what to do with what it sent:

- `KrtUnavailable`: not this request's fault; keep it and try again later, with backoff.
  No connection (`KrtUnavailable` itself), no answer within `timeout_s` (`KrtTimeout`),
  a 5xx or 429 (`KrtServerError`), an answer that is not what the API promises
  (`KrtBadAnswer`), our credentials or a fresh token refused (`KrtAuthFailed`: the
  configuration needs fixing, and the records wait for it).
- `KrtRefused`: KRT answered 4xx to this very request; sending it again will not help.

Every HTTP exchange is counted in `switchboard_external_calls_total{system="krt", outcome}`
(`OUTCOMES`) and timed in `switchboard_krt_call_seconds{endpoint}`.

A licence number and a KRT ID are personal data. They travel in request bodies and
nowhere else: never in a URL, a log line, an exception message or a metric label. What
this module logs and raises names the endpoint, the HTTP status and KRT's error code.

The transport is a function `(KrtRequest) -> KrtResponse` (aiohttp's by default), so a
test can hand in its own. This module knows KRT's API, not our rules: which status to
send when, and what a shift means for a driver's orders, is decided in `tables/`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Awaitable, Callable, Optional, TypeVar, Union
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp
import orjson
from mode import Service
from mode.utils.types.trees import NodeT
from pydantic import BaseModel, ConfigDict, ValidationError

from app import metrics

__all__ = [
    "AiohttpTransport", "DriverStatus", "Endpoint", "KrtAuthFailed", "KrtBadAnswer", "KrtClient", "KrtError", "KrtRefused",
    "KrtRequest", "KrtResponse", "KrtServerError", "KrtSettings", "KrtTimeout", "KrtUnavailable", "OUTCOMES", "PATHS",
    "SessionState", "SessionStatus", "Transport", "parse_url",
]

log = logging.getLogger(__name__)

SYSTEM = "krt"  # the `system` label of metrics.external_calls

OUTCOMES = {  # the `outcome` label of metrics.external_calls{system="krt"}: one per HTTP exchange
    "ok": "a call answered 2xx",
    "token_issued": "a token obtained",
    "token_rejected": "a call answered 401: the token is renewed and the call repeated once",
    "auth_failed": "our credentials refused, or a token refused right after it was issued",
    "refused": "a call answered 4xx: this request will not succeed",
    "throttled": "answered 429: try later",
    "server_error": "answered 5xx",
    "bad_answer": "an answer that is not what the API promises (status or body)",
    "timeout": "no answer within the timeout",
    "unavailable": "no connection, or it broke before the answer",
}


class Endpoint(StrEnum):
    """KRT's endpoints, by the name they have in metrics and logs."""

    TOKEN = "token"
    VERIFY = "verify"
    STATUS = "status"


PATHS = {
    Endpoint.TOKEN: "/api/v1/auth/token",
    Endpoint.VERIFY: "/api/v1/drivers/verify",
    Endpoint.STATUS: "/api/v1/drivers/status",
}


class DriverStatus(StrEnum):
    """What a driver did, as KRT names it: came on the line, took an order, left the line."""

    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"


class SessionState(StrEnum):
    """The driver's shift as KRT sees it."""

    OPEN = "open"  # running until `ends_at`
    CLOSED = "closed"  # over (ended at `ends_at`); the driver may not work until KRT opens a new one
    NONE = "none"  # KRT knows no shift of this driver


@dataclass(frozen=True, slots=True)
class SessionStatus:
    """KRT's answer to a status report: the shift's state and its end (epoch seconds; None when unknown)."""

    status: SessionState
    ends_at: Optional[float]


# --- errors ------------------------------------------------------------------------------------

class KrtError(Exception):
    """KRT did not do what was asked."""


class KrtUnavailable(KrtError):
    """KRT could not be used right now (no connection, no answer, an error of its own): keep the request, retry later."""


class KrtTimeout(KrtUnavailable):
    """No answer within the timeout."""


class KrtServerError(KrtUnavailable):
    """KRT answered 5xx (or 429, too many requests)."""

    def __init__(self, endpoint: Endpoint, status: int, code: Optional[str]) -> None:
        super().__init__(f"{endpoint}: KRT answered {status}{_code_text(code)}")
        self.endpoint, self.status, self.code = endpoint, status, code


class KrtBadAnswer(KrtUnavailable):
    """An answer that is not what the API promises: an unexpected status or a body we cannot read."""


class KrtAuthFailed(KrtUnavailable):
    """KRT refused our credentials, or a token it had just issued: no request can go until that is fixed."""


class KrtRefused(KrtError):
    """KRT answered 4xx to this request (not 401, not 429): sending it again will not help."""

    def __init__(self, endpoint: Endpoint, status: int, code: Optional[str]) -> None:
        super().__init__(f"{endpoint}: KRT refused the request with {status}{_code_text(code)}")
        self.endpoint, self.status, self.code = endpoint, status, code


# KRT's error codes are words (`token_expired`); anything else, digits above all, could echo what we sent
_CODE = re.compile(r"(?=.{1,40}$)[a-z]+(?:_[a-z]+)*")


def _code_text(code: Optional[str]) -> str:
    return f" {code}" if code else ""


def _error_code(body: bytes) -> Optional[str]:
    """The `error` code of an error body, when it looks like a code and not like text (which might quote our data)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    code = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(code, dict):  # {"error": {"code": ...}} is common enough to read too
        code = code.get("code")
    return code if isinstance(code, str) and _CODE.fullmatch(code) else None


# --- settings and transport --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KrtSettings:
    """Where KRT is (`base_url`, no trailing slash) and who we are there."""

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)


def parse_url(url: str, client_id: Optional[str] = None, client_secret: Optional[str] = None) -> KrtSettings:
    """`http(s)://client_id:secret@host[:port][/prefix]`; credentials not in the URL come from the arguments."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises ValueError when not a number in range
    except ValueError as exc:
        raise ValueError(f"bad KRT URL {_redacted(url)!r}: {exc}") from None
    user = unquote(parts.username) if parts.username else client_id
    secret = unquote(parts.password) if parts.password is not None else client_secret
    problems = []
    if parts.scheme not in ("http", "https"):
        problems.append("the scheme must be http:// or https://")
    if not parts.hostname:
        problems.append("no host")
    if not user:
        problems.append("no client id")
    if secret is None:
        problems.append("no client secret")
    if parts.query or parts.fragment:
        problems.append("no query or fragment")
    if problems:
        raise ValueError(f"bad KRT URL {_redacted(url)!r} (expected http(s)://client_id:secret@host[:port]): "
                         + ", ".join(problems))
    assert parts.hostname and user and secret is not None  # checked above; for mypy
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{port}" if port is not None else host
    return KrtSettings(urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), user, secret)


def _redacted(url: str) -> str:
    """The URL without its secret, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{quote(unquote(credentials.split(':', 1)[0]), safe='')}:***@{host}"


@dataclass(frozen=True, slots=True)
class KrtRequest:
    """One HTTP request to KRT, as the transport sends it (the body holds personal data: kept out of reprs)."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)  # the bearer token
    body: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class KrtResponse:
    """KRT's answer: its status and body."""

    status: int
    body: bytes = field(repr=False)


Transport = Callable[[KrtRequest], Awaitable[KrtResponse]]
"""Sends a request and returns the answer, whatever its status. Raises OSError or
aiohttp.ClientError when there is no answer (TimeoutError when it gave up waiting)."""


class AiohttpTransport:
    """The default transport: an aiohttp session (opened on the first request) with a connect timeout."""

    def __init__(self, connect_timeout_s: float = 2.0, connections: int = 100) -> None:
        self.connect_timeout_s = connect_timeout_s
        self.connections = connections
        self._session: Optional[aiohttp.ClientSession] = None

    async def __call__(self, request: KrtRequest) -> KrtResponse:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_s),  # the client bounds the whole
            )
        async with self._session.request(request.method, request.url, data=request.body, headers=request.headers,
                                         allow_redirects=False) as response:
            return KrtResponse(response.status, await response.read())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# --- the answers, as the API promises them -----------------------------------------------------

class _Answer(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, allow_inf_nan=False, extra="ignore")


class _TokenAnswer(_Answer):
    access_token: str
    token_type: str
    expires_in: float


class _VerifyAnswer(_Answer):
    match: bool


class _StatusAnswer(_Answer):
    session_status: SessionState
    session_ends_at: Optional[float]


_A = TypeVar("_A", bound=_Answer)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str = field(repr=False)
    refresh_at: float  # client clock: from here on a new one is asked for
    expires_at: float  # client clock: KRT refuses it from here on


# --- the client --------------------------------------------------------------------------------

class KrtClient(Service):
    """KRT's API with the token handled: `verify_id` and `report_status`, each raising a KrtError when KRT cannot answer."""

    def __init__(
        self,
        settings: Union[str, KrtSettings],
        *,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
        refresh_fraction: float = 0.8,
        transport: Optional[Transport] = None,
        clock: Callable[[], float] = time.monotonic,
        beacon: Optional[NodeT] = None,
        loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> None:
        if not 0 < refresh_fraction <= 1:
            raise ValueError("refresh_fraction must be in (0, 1]")
        self.settings = parse_url(settings) if isinstance(settings, str) else settings
        self.timeout_s = timeout_s  # one HTTP exchange, connecting included
        self.refresh_fraction = refresh_fraction
        self._own_transport: Optional[AiohttpTransport] = None  # closed when the client stops
        if transport is None:
            transport = self._own_transport = AiohttpTransport(connect_timeout_s)
        self.transport: Transport = transport
        self.clock = clock
        self._token: Optional[_Token] = None
        self._token_lock = asyncio.Lock()  # concurrent callers share one token request
        self._warned: Optional[str] = None  # the last problem logged as a warning (repeats go to debug)
        self._warned_at = 0.0
        super().__init__(beacon=beacon, loop=loop)  # type: ignore[arg-type]  # mode types beacon without Optional

    # --- the API ---------------------------------------------------------------------------

    async def verify_id(self, deptrans_id: str, license_number: str) -> bool:
        """Whether KRT knows `deptrans_id` as the ID of the driver with `license_number`."""
        answer = await self._call(Endpoint.VERIFY, {"deptrans_id": deptrans_id, "license_number": license_number},
                                  _VerifyAnswer)
        return answer.match

    async def report_status(self, license_number: str, deptrans_id: Optional[str], status: Union[DriverStatus, str],
                            at: float) -> SessionStatus:
        """Tell KRT the driver's status changed at `at` (epoch seconds); KRT's view of their shift."""
        body: dict[str, Any] = {"license_number": license_number, "status": DriverStatus(status).value, "at": at}
        if deptrans_id is not None:
            body["deptrans_id"] = deptrans_id
        answer = await self._call(Endpoint.STATUS, body, _StatusAnswer)
        return SessionStatus(answer.session_status, answer.session_ends_at)

    @property
    def has_token(self) -> bool:
        """Whether a token is held (it may still be refused)."""
        return self._token is not None

    async def on_stop(self) -> None:
        self._token = None
        if self._own_transport is not None:
            await self._own_transport.close()

    # --- calls and the token ---------------------------------------------------------------

    async def _call(self, endpoint: Endpoint, body: dict[str, Any], model: type[_A]) -> _A:
        """POST `body` with a token; on a 401, once more with a new token."""
        data = orjson.dumps(body)
        for attempt in range(2):
            token = await self._valid_token()
            response = await self._exchange(endpoint, data, token)
            if response.status != 401:
                return self._answer(endpoint, response, model, "ok")
            if self._token is not None and self._token.value == token:
                self._token = None  # another caller may have renewed it meanwhile: then that one is kept
            if attempt == 0:
                self._count(endpoint, "token_rejected")
                log.info("KRT %s: the token was refused (%s); asking for a new one", endpoint,
                         _error_code(response.body) or "401")
        raise self._failed(endpoint, "auth_failed",
                           KrtAuthFailed(f"{endpoint}: KRT refused a token it had just issued"
                                         f"{_code_text(_error_code(response.body))}"))

    async def _valid_token(self) -> str:
        token = self._token
        if token is not None and self.clock() < token.refresh_at:
            return token.value
        async with self._token_lock:
            token, now = self._token, self.clock()
            if token is not None and now < token.refresh_at:
                return token.value  # renewed by the caller we waited for
            try:
                self._token = await self._new_token()
            except KrtUnavailable:
                if token is not None and self.clock() < token.expires_at:
                    log.debug("KRT token: renewal failed; the current token is valid for %.0f s more",
                              token.expires_at - self.clock())
                    return token.value
                raise
            return self._token.value

    async def _new_token(self) -> _Token:
        asked_at = self.clock()
        credentials = {"client_id": self.settings.client_id, "client_secret": self.settings.client_secret}
        response = await self._exchange(Endpoint.TOKEN, orjson.dumps(credentials), None)
        if 400 <= response.status < 500 and response.status != 429:
            # whatever the 4xx, without a token nothing can be sent: the records wait, nobody drops them
            raise self._failed(Endpoint.TOKEN, "auth_failed", KrtAuthFailed(
                f"token: KRT refused the credentials of client {self.settings.client_id!r} with {response.status}"
                f"{_code_text(_error_code(response.body))}"))
        answer = self._answer(Endpoint.TOKEN, response, _TokenAnswer, None)
        if answer.token_type.lower() != "bearer" or not answer.access_token or answer.expires_in <= 0:
            raise self._failed(Endpoint.TOKEN, "bad_answer", KrtBadAnswer(
                f"token: KRT issued no usable bearer token (type {answer.token_type[:20]!r}, "
                f"expires_in {answer.expires_in:g})"))
        self._count(Endpoint.TOKEN, "token_issued")
        self._recovered()
        log.info("KRT token: obtained for client %r, valid %g s", self.settings.client_id, answer.expires_in)
        # lifetimes count from when we asked: the answer took some of it already
        return _Token(answer.access_token, asked_at + answer.expires_in * self.refresh_fraction,
                      asked_at + answer.expires_in)

    # --- one exchange ----------------------------------------------------------------------

    async def _exchange(self, endpoint: Endpoint, data: bytes, token: Optional[str]) -> KrtResponse:
        """One HTTP exchange, timed; no answer raises KrtTimeout or KrtUnavailable (counted)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = KrtRequest("POST", self.settings.base_url + PATHS[endpoint], headers, data)
        started = time.perf_counter()
        error: KrtError
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self.transport(request)
        except TimeoutError:  # before OSError: it is one
            outcome, error = "timeout", KrtTimeout(f"{endpoint}: no answer from KRT within {self.timeout_s:g} s")
        except (OSError, aiohttp.ClientError) as exc:
            outcome, error = "unavailable", KrtUnavailable(f"{endpoint}: no answer from KRT ({_describe(exc)})")
        else:
            metrics.krt_call_seconds.labels(endpoint=endpoint.value).observe(time.perf_counter() - started)
            return response
        metrics.krt_call_seconds.labels(endpoint=endpoint.value).observe(time.perf_counter() - started)
        raise self._failed(endpoint, outcome, error)

    def _answer(self, endpoint: Endpoint, response: KrtResponse, model: type[_A], ok: Optional[str]) -> _A:
        """The answer's body when it is a 2xx the API promises (counted as `ok` unless None); else the error, counted."""
        status = response.status
        if 200 <= status < 300:
            try:
                answer = model.model_validate_json(response.body)
            except ValidationError as exc:
                fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
                raise self._failed(endpoint, "bad_answer", KrtBadAnswer(
                    f"{endpoint}: KRT answered {status} with a body we cannot read (at {', '.join(fields)[:200]})"))
            if ok is not None:
                self._count(endpoint, ok)
                self._recovered()
            return answer
        code = _error_code(response.body)
        if status == 429:
            raise self._failed(endpoint, "throttled", KrtServerError(endpoint, status, code))
        if 400 <= status < 500:
            raise self._failed(endpoint, "refused", KrtRefused(endpoint, status, code))
        if status >= 500:
            raise self._failed(endpoint, "server_error", KrtServerError(endpoint, status, code))
        raise self._failed(endpoint, "bad_answer", KrtBadAnswer(f"{endpoint}: KRT answered {status}, not a 2xx or an error"))

    # --- counting and telling --------------------------------------------------------------

    def _count(self, endpoint: Endpoint, outcome: str) -> None:
        metrics.external_calls.labels(system=SYSTEM, outcome=outcome).inc()
        log.debug("KRT %s: %s", endpoint, outcome)

    def _failed(self, endpoint: Endpoint, outcome: str, error: KrtError) -> KrtError:
        """Count `outcome`, tell about `error` (a warning when the problem changes), and return it to be raised."""
        self._count(endpoint, outcome)
        if isinstance(error, KrtRefused):
            log.info("KRT: %s", error)  # this request's problem, not KRT's: no alarm
            return error
        what = f"{endpoint} {outcome}"
        now = time.monotonic()
        if what != self._warned or now - self._warned_at >= 300.0:
            log.warning("KRT at %s: %s", self.settings.base_url, error)
            self._warned, self._warned_at = what, now
        else:
            log.debug("KRT at %s: %s", self.settings.base_url, error)
        return error

    def _recovered(self) -> None:
        if self._warned is not None:
            log.info("KRT at %s answers again", self.settings.base_url)
            self._warned = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
