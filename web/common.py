"""The one way to answer: auth, the error shape, JSON, and asking other workers.

- `ApiView` checks the bearer token and role, and turns `ApiError` into
  `{"error": {"code", "message"}}` with its status.
- `ask_all` is scatter-gather: every worker answers for its own partitions.
- `ask_owner` sends a read to the worker owning a key's partition.
- `not_answerable_here` is the one rule of whether this worker can answer a key of a table
  now; where it cannot, the read answers `503 recovering` with `Retry-After`, never a default.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import weakref
from functools import lru_cache
from typing import Any, Awaitable, Callable, Iterable, Optional

import aiohttp
import orjson
from aiohttp import web as aioweb
from faust import web
from faust.types import TP
from pydantic import ValidationError

from app import codec, metrics
from app.main import app, settings
from app.settings import WORKER
from web import errors
from web.errors import RETRY_AFTER_S, ApiError, Recovering
from web.params import describe

__all__ = ["ApiView", "FORWARDED", "RETRY_AFTER_S", "WORKER", "Recovering", "answer_here", "ask_all", "ask_owner", "authorize",
           "error_response", "fetch_json", "Who", "identify", "not_answerable_here", "opened_socket", "own_share", "send_command",
           "standby_caught_up", "tables_unreadable", "worker_urls"]

log = logging.getLogger(__name__)
FORWARDED = "X-Switchboard-Forwarded"
_session: Optional[aiohttp.ClientSession] = None


errors.install(app.web.web_app)  # the error shape for what no view answers (404, 405, parse errors, ...)

_open_sockets: "weakref.WeakSet[aioweb.WebSocketResponse]" = weakref.WeakSet()


def opened_socket(socket: aioweb.WebSocketResponse) -> aioweb.WebSocketResponse:
    """A WebSocket this worker serves: closed (1001, going away) when the worker stops, so
    that the stop does not wait for its clients to leave (aiohttp waits for every handler)."""
    _open_sockets.add(socket)
    return socket


async def _close_sockets(_: aioweb.Application) -> None:
    for socket in list(_open_sockets):
        with contextlib.suppress(Exception):  # a client gone already
            await socket.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"worker stopping")


app.web.web_app.on_shutdown.append(_close_sockets)


def error_response(view: web.View, status: int, code: str, message: str,
                   retry_after_s: Optional[int] = None) -> web.Response:
    response = view.bytes(errors.error_body(status, message, code), content_type=errors.JSON, status=status)
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


def authorize(request: web.Request, roles: Iterable[str]) -> str:
    """The caller's role, or ApiError 401 (no valid token) / 403 (wrong role)."""
    return identify(request, roles)[0]


class Who(tuple):
    """(role, user) of a token, and `bucket`: whose rate limit it spends (its user's; a token
    that names no user, its own: two such tokens of one role never share one)."""

    bucket: str

    @classmethod
    def of(cls, role: str, user: Optional[str], token_digest: bytes) -> "Who":
        who = cls((role, user or role))
        who.bucket = f"{role}:{user}" if user else f"token:{token_digest.hex()[:24]}"
        return who


def identify(request: web.Request, roles: Iterable[str], token: Optional[str] = None) -> Who:
    """The caller's (role, user) from the bearer token (or `token`, for a WebSocket's query
    string), or ApiError 401 (no valid token) / 403 (wrong role). Every role is only what it
    is: `service` passes the routes that name it, the workers' own credential (`WORKER`) those
    that name `WORKER` (the internal routes and the reads `ask_owner` forwards)."""
    if token is None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            token = ""
    if not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <token>'")
    who = _identify_token(token.strip())
    if who is None:
        raise ApiError(401, "unauthorized", "unknown token")
    roles = tuple(roles)
    if who[0] not in roles:
        named = ", ".join(r for r in roles if r != WORKER) or "the workers themselves (internal)"
        raise ApiError(403, "forbidden", f"role '{who[0]}' may not do this; needs one of: {named}")
    return who


def _identify_token(token: str) -> Optional[Who]:
    """(role, user) of `token`, compared in constant time with every known token (the
    workers' own as well): how long it takes says nothing of how much of a token matched."""
    presented = hashlib.sha256(token.encode()).digest()
    found = None
    for digest, who in _identities():
        if hmac.compare_digest(presented, digest):
            found = who
    return found


@lru_cache(maxsize=1)
def _identities() -> tuple[tuple[bytes, Who], ...]:
    known = {**settings.named_identities, settings.worker_token: (WORKER, WORKER)}
    digests = {token: hashlib.sha256(token.encode()).digest() for token in known}
    return tuple((digests[t], Who.of(role, user, digests[t])) for t, (role, user) in known.items())


class ApiView(web.View):
    """Base of every JSON view: `roles` may call it; handlers may raise ApiError."""

    roles: tuple[str, ...] = ("manager",)
    public = False

    async def dispatch(self, request: Any) -> Any:
        route = getattr(self, "view_path", request.path)
        try:
            if not self.public:
                authorize(request, self.roles)
            response = await super().dispatch(request)
        except ApiError as exc:
            response = error_response(self, exc.status, exc.code, exc.message, exc.retry_after_s)
        except ValidationError as exc:  # a request's value the edge let through and a record refused
            problem = describe(exc, "field")
            log.warning("a request's value refused past the edge", extra={"path": request.path, "problem": problem})
            response = error_response(self, 400, "bad_request", problem)
        except Exception:  # one shape for the unexpected too; the log has the trace
            log.exception("request failed", extra={"path": request.path})
            metrics.http_internal_errors.inc()
            response = error_response(self, 500, "internal", "internal error; see the worker log")
        metrics.http_requests.labels(route, str(getattr(response, "status", 200))).inc()
        return response

    def ok(self, body: Any, status: int = 200) -> web.Response:
        return self.bytes(codec.dumps(body), content_type="application/json", status=status)


async def _client() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        _session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
    return _session


def worker_urls() -> list[str]:
    """Every worker's URL, from the current partition assignment (this one included)."""
    urls = {str(url).rstrip("/") for url in app.assignor.tables_metadata()}
    urls.add(settings.canonical_url)
    return sorted(urls)


async def send_command(topic: Any, key: Optional[bytes], value: bytes, what: str = "command",
                       partition: Optional[int] = None, headers: Any = None) -> None:
    """A command a caller waits for, on `topic`, acknowledged by Kafka within
    COMMAND_ACK_TIMEOUT_S; else ApiError 503 (it may or may not be applied)."""
    try:
        await app.producer.send_answered(  # type: ignore[attr-defined]
            topic.get_topic_name(), key, value, settings.command_ack_timeout_s, partition, headers)
    except Exception as exc:
        raise ApiError(503, "unavailable", f"Kafka did not take the {what} ({type(exc).__name__}); "
                                           "it may or may not be applied: send it again") from None


async def fetch_json(url: str) -> Any:
    """Another worker's JSON answer; its `503 recovering` passes on as `Recovering` (with its
    `Retry-After`), any other failure is ApiError 502 `worker_unavailable`."""
    session = await _client()
    headers = {"Authorization": f"Bearer {settings.worker_token}", FORWARDED: "1"}
    async with session.get(url, headers=headers) as resp:
        body = await resp.read()
        if resp.status == 200:
            return orjson.loads(body)
        recovering = _recovering_of(resp.status, body, resp.headers.get("Retry-After"))
        if recovering is not None:
            raise recovering
        if resp.status == 401:
            log.error("another worker refused this worker's credential: INTERNAL_TOKEN (or, where it is "
                      "empty, AUTH_TOKENS or APP_ID) differs between the workers", extra={"url": url})
        raise ApiError(502, "worker_unavailable", f"{url} answered {resp.status}: {body[:200]!r}")


def _recovering_of(status: int, body: bytes, retry_after: Optional[str]) -> Optional[Recovering]:
    """The `Recovering` a worker's `503 recovering` answer stands for, else None."""
    if status != 503:
        return None
    try:
        error = orjson.loads(body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if not isinstance(error, dict) or error.get("code") != "recovering":
        return None
    wait = int(retry_after) if retry_after and retry_after.isdigit() else RETRY_AFTER_S
    return Recovering(str(error.get("message", "the owner is recovering")), wait)


async def ask_all(path: str, local: Callable[[], Awaitable[Any]]) -> tuple[list[Any], list[str]]:
    """Scatter-gather: the local answer plus every other worker's answer for `path`.

    A worker that does not answer (dead, until the group notices and rebalances) or cannot
    give its share yet (`503 recovering`: its first recovery, a rebalance; this worker too,
    `own_share`) is left out and named in the second list: a partial answer, said to be
    one, beats no dashboard. The peers' `path` answers with `own_share` as well.
    """
    me = settings.canonical_url
    others = [u for u in worker_urls() if u != me]
    results = await asyncio.gather(own_share(local), *(fetch_json(u + path) for u in others), return_exceptions=True)
    answers, missing = [], []
    for url, result in zip([me, *others], results):
        if not isinstance(result, BaseException):
            answers.append(result)
        elif url == me and not isinstance(result, Recovering):
            raise result  # this worker's own failure: its error, as any view's
        else:
            log.warning("worker did not answer", extra={"url": url, "error": str(result)})
            missing.append(url)
    return answers, missing


async def own_share(local: Callable[[], Awaitable[Any]]) -> Any:
    """This worker's share of a fleet-wide answer (the keys of its active partitions), or
    `Recovering` while its tables cannot be read (`tables_unreadable`): then its share would
    silently lack keys."""
    why = tables_unreadable()
    if why is not None:
        raise Recovering(f"this worker cannot give its share yet: {why}")
    return await local()


async def ask_owner(table: Any, key: str, path: str, local: Callable[[], Awaitable[Any]], request: web.Request,
                    standby_ok: bool = False) -> Any:
    """Answer from this worker if it owns `key`, else from the worker that does. With
    `standby_ok`, a worker that keeps the key's partition as a standby replica caught up
    with its changelog answers itself (`local` must then read past caches: `StateTable.stored`).

    Never a default for a partition nobody here can answer yet: while no assignment is known,
    or this worker owns the partition but is still recovering it (or rebalancing), the answer
    is `503 recovering` with `Retry-After` (`answer_here`); a forwarded read whose owner says
    so passes that on."""
    owner = _owner_url(table, key)
    if request.headers.get(FORWARDED) or owner == settings.canonical_url:
        return await answer_here(table, key, local, standby_ok)
    if owner is None:
        raise Recovering("no partition assignment is known yet (the workers are starting or rebalancing)")
    if standby_ok and standby_caught_up(table, key) and not_answerable_here(table, key, standby=True) is None:
        return await local()
    return await fetch_json(owner + path)


async def answer_here(table: Any, key: str, local: Callable[[], Awaitable[Any]], standby_ok: bool = False) -> Any:
    """This worker's own answer for `key` of `table` (`local`), or `Recovering` while it cannot
    give a right one (`not_answerable_here`). What a forwarded read, and every internal view
    another worker's `ask_owner` asks, answers with."""
    why = not_answerable_here(table, key)
    if why is None or (standby_ok and standby_caught_up(table, key)):
        return await local()
    raise Recovering(f"this worker cannot answer for '{key[:100]}' yet: {why}")


# --- can this worker answer partition P of table T now: the one rule of every read ------------------

def tables_unreadable() -> Optional[str]:
    """Why no table of this worker can be read now, whatever the key (None: they can).

    Faust reads a table partition being recovered, or one whose ownership a rebalance is
    moving, as empty: a read then would answer a confident default (`no_rule`, `source:
    default`). `recovery.completed` is set once the first recovery since the start is done
    (and never cleared); `app.rebalancing` from a rebalance's start to the end of its
    recovery; `app.in_recovery` while a recovery of active partitions runs."""
    if not app.tables.recovery.completed.is_set():  # TableManager.recovery: not on its type
        return "its tables are being recovered after its start"
    if app.rebalancing or app.in_recovery:
        return "a rebalance is under way"
    return None


def not_answerable_here(table: Any, key: str, standby: bool = False) -> Optional[str]:
    """Why this worker cannot answer for `key` of `table` now (None: it can): the one rule of
    every one-key read. It can once its tables are readable (`tables_unreadable`) and it holds
    the key's partition as an active one (or, with `standby`, a standby)."""
    why = tables_unreadable()
    if why is not None:
        return why
    tp = _partition_of(table, key)
    held = app.assignor.assigned_standbys() if standby else app.assignor.assigned_actives()
    if tp not in held:
        return f"partition {tp.partition} is not {'kept' if standby else 'owned'} here"
    return None


def standby_caught_up(table: Any, key: str) -> bool:
    """This worker keeps the partition of `key` as a standby replica and has applied its
    changelog up to the end Kafka last reported (one fetch behind at most)."""
    if table.table.standby_buffer_size != 1:
        return False  # its standbys apply the changelog 1,000 records at a time (`state_table(standby_reads=...)`)
    tp = _partition_of(table, key)
    recovery = app.tables.recovery
    if tp not in recovery.standby_tps:
        return False
    end = app.consumer.highwater(tp) if app.consumer else None
    applied = recovery.standby_offsets.get(tp)
    return end is not None and applied is not None and applied >= end - 1


def _partition_of(table: Any, key: str) -> TP:
    """The changelog partition of `table` that holds `key` (the partition Faust assigns)."""
    return TP(table.table.changelog_topic.get_topic_name(), table.partition_of(key))


def _owner_url(table: Any, key: str) -> Optional[str]:
    """The URL of the worker that owns `key`'s partition of `table`, None before an assignment.

    Faust's `app.router.key_store` asks the producer for the partition, and the producer knows
    a topic's partitions only once it has sent to it: asked before this worker wrote its first
    changelog record of the table, it fails. The partition is ours to compute (`partition_of`,
    the same hash); the assignor's map from partition to worker is read directly (one place)."""
    url = app.assignor._tps_url.get(_partition_of(table, key))  # type: ignore[attr-defined]
    return None if url is None else str(url).rstrip("/")
