"""The one way to answer: auth, the error shape, JSON, and asking other workers.

- `ApiView` checks the bearer token and role, and turns `ApiError` into
  `{"error": {"code", "message"}}` with its status.
- `ask_all` is scatter-gather: every worker answers for its own partitions.
- `ask_owner` sends a read to the worker owning a key's partition.
"""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache
from typing import Any, Awaitable, Callable, Iterable, Optional

import aiohttp
import orjson
from faust import web
from faust.types import TP

from app import codec, metrics
from app.main import app, settings
from web import errors
from web.errors import ApiError

__all__ = ["ApiView", "FORWARDED", "RETRY_AFTER_S", "ask_all", "ask_owner", "authorize", "error_response", "fetch_json",
           "identify", "not_answerable_here", "send_command", "standby_caught_up", "worker_urls"]

log = logging.getLogger(__name__)
FORWARDED = "X-Switchboard-Forwarded"
_session: Optional[aiohttp.ClientSession] = None


errors.install(app.web.web_app)  # the error shape for what no view answers (404, 405, parse errors, ...)


RETRY_AFTER_S = 1  # what a `503 recovering` asks the caller to wait


def error_response(view: web.View, status: int, code: str, message: str,
                   retry_after_s: Optional[int] = None) -> web.Response:
    response = view.bytes(errors.error_body(status, message, code), content_type=errors.JSON, status=status)
    if retry_after_s is not None:
        response.headers["Retry-After"] = str(retry_after_s)
    return response


def authorize(request: web.Request, roles: Iterable[str]) -> str:
    """The caller's role, or ApiError 401 (no valid token) / 403 (wrong role)."""
    return identify(request, roles)[0]


def identify(request: web.Request, roles: Iterable[str], token: Optional[str] = None) -> tuple[str, str]:
    """The caller's (role, user) from the bearer token (or `token`, for a WebSocket's query
    string), or ApiError 401 (no valid token) / 403 (wrong role)."""
    if token is None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            token = ""
    if not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <token>'")
    who = _identities().get(token.strip())
    if who is None:
        raise ApiError(401, "unauthorized", "unknown token")
    roles = tuple(roles)
    if who[0] not in roles and who[0] != "service":
        raise ApiError(403, "forbidden", f"role '{who[0]}' may not do this; needs one of: {', '.join(roles)}")
    return who


@lru_cache(maxsize=1)
def _identities() -> dict[str, tuple[str, str]]:
    return settings.identities


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
        except Exception:  # one shape for the unexpected too; the log has the trace
            log.exception("request failed", extra={"path": request.path})
            metrics.http_internal_errors.inc()
            response = error_response(self, 500, "internal", "internal error; see the worker log")
        metrics.http_requests.labels(route, str(getattr(response, "status", 200))).inc()
        return response

    def ok(self, body: Any, status: int = 200) -> web.Response:
        return self.bytes(codec.dumps(body), content_type="application/json", status=status)


def _service_token() -> str:
    return next((t for t, role in settings.tokens.items() if role == "service"), "")


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
    session = await _client()
    headers = {"Authorization": f"Bearer {_service_token()}", FORWARDED: "1"}
    async with session.get(url, headers=headers) as resp:
        body = await resp.read()
        if resp.status == 503 and b'"recovering"' in body:  # the owner is not ready to answer yet: say so
            raise ApiError(503, "recovering", orjson.loads(body)["error"]["message"], RETRY_AFTER_S)
        if resp.status != 200:
            raise ApiError(502, "worker_unavailable", f"{url} answered {resp.status}: {body[:200]!r}")
        return orjson.loads(body)


async def ask_all(path: str, local: Callable[[], Awaitable[Any]]) -> tuple[list[Any], list[str]]:
    """Scatter-gather: the local answer plus every other worker's answer for `path`.

    A worker that does not answer (dead, until the group notices and rebalances) is
    left out and named in the second list: a partial answer beats no dashboard.
    """
    others = [u for u in worker_urls() if u != settings.canonical_url]
    results = await asyncio.gather(local(), *(fetch_json(u + path) for u in others), return_exceptions=True)
    if isinstance(results[0], BaseException):
        raise results[0]
    answers, missing = [results[0]], []
    for url, result in zip(others, results[1:]):
        if isinstance(result, BaseException):
            log.warning("worker did not answer", extra={"url": url, "error": str(result)})
            missing.append(url)
        else:
            answers.append(result)
    return answers, missing


async def ask_owner(table, key: str, path: str, local: Callable[[], Awaitable[Any]], request: web.Request,
                    standby_ok: bool = False) -> Any:
    """Answer from this worker if it owns `key`, else from the worker that does. With
    `standby_ok`, a worker that keeps the key's partition as a standby replica caught up
    with its changelog answers itself (`local` must then read past caches: `StateTable.stored`).

    Never a default for a partition nobody here can answer yet: while no assignment is known,
    or this worker owns the partition but is still recovering it (or rebalancing), the answer
    is `503 recovering` with `Retry-After` (`not_answerable_here`); a forwarded read whose
    owner says so passes that on."""
    forwarded = bool(request.headers.get(FORWARDED))
    owner = _owner_url(table, key)
    if forwarded or owner == settings.canonical_url:
        why = not_answerable_here(table, key)
        if why is None or (standby_ok and standby_caught_up(table, key)):
            return await local()
        raise ApiError(503, "recovering", f"this worker cannot answer for '{key[:100]}' yet: {why}", RETRY_AFTER_S)
    if owner is None:
        raise ApiError(503, "recovering", "no partition assignment is known yet (the workers are starting or "
                                          "rebalancing)", RETRY_AFTER_S)
    if standby_ok and standby_caught_up(table, key) and not_answerable_here(table, key, standby=True) is None:
        return await local()
    return await fetch_json(owner + path)


def not_answerable_here(table: Any, key: str, standby: bool = False) -> Optional[str]:
    """Why this worker cannot answer for `key` of `table` now (None: it can): the one rule of
    every one-key read. It can once its first recovery is done, no rebalance is under way,
    and it holds the key's partition as an active one (or, with `standby`, a standby)."""
    recovery = app.tables.recovery
    if not recovery.completed.is_set():
        return "its tables are being recovered after its start"
    if app.rebalancing or getattr(app, "in_recovery", False):
        return "a rebalance is under way"
    tp = TP(table.table.changelog_topic.get_topic_name(), table.partition_of(key))
    held = app.assignor.assigned_standbys() if standby else app.assignor.assigned_actives()
    if tp not in held:
        return f"partition {tp.partition} is not {'kept' if standby else 'owned'} here"
    return None


def _owner_url(table: Any, key: str) -> Optional[str]:
    """The URL of the worker that owns `key`'s partition of `table`, None before an assignment.

    Faust's `app.router.key_store` asks the producer for the partition, and the producer knows
    a topic's partitions only once it has sent to it: asked before this worker wrote its first
    changelog record of the table, it fails. The partition is ours to compute (`partition_of`,
    the same hash); the assignor's map from partition to worker is read directly (one place)."""
    tp = TP(table.table.changelog_topic.get_topic_name(), table.partition_of(key))
    url = app.assignor._tps_url.get(tp)  # type: ignore[attr-defined]
    return None if url is None else str(url).rstrip("/")


def standby_caught_up(table: Any, key: str) -> bool:
    """This worker keeps the partition of `key` as a standby replica and has applied its
    changelog up to the end Kafka last reported (one fetch behind at most)."""
    if table.table.standby_buffer_size != 1:
        return False  # its standbys apply the changelog 1,000 records at a time (`state_table(standby_reads=...)`)
    tp = TP(table.table.changelog_topic.get_topic_name(), table.partition_of(key))
    recovery = app.tables.recovery
    if tp not in recovery.standby_tps:
        return False
    end = app.consumer.highwater(tp) if app.consumer else None
    applied = recovery.standby_offsets.get(tp)
    return end is not None and applied is not None and applied >= end - 1
