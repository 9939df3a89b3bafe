"""The error shape everywhere: `{"error": {"code", "message"}}`, whoever raised the error.

Our views answer errors in this shape themselves (`web.common.ApiView`). This module
covers the rest:

- `error_shape`, an aiohttp middleware: an unknown path (404), a method a route does not
  take (405), a body over the limit (413), a missing static file, or an exception no view
  caught (500, counted, its trace only in the log) gets the shape and its status;
- `json_parse_errors`: requests that aiohttp rejects while parsing them, before any
  middleware runs (a malformed request line, a header or URL too long: 400), get the
  shape too, and one warning line in the log (aiohttp's own is an error with a traceback,
  which reads like a crash). aiohttp builds those answers in `RequestHandler.handle_error`,
  which we wrap (aiohttp 3.x; `tests/unit/test_edges.py` holds the wrapper to its contract).
"""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web as aioweb
from aiohttp import web_protocol

from app import metrics

__all__ = ["ApiError", "CODES", "RETRY_AFTER_S", "Recovering", "code_of", "error_body", "error_shape", "install",
           "json_error", "json_parse_errors"]

log = logging.getLogger(__name__)
JSON = "application/json"

CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    408: "timeout", 413: "too_large", 414: "too_large", 415: "unsupported_media_type", 422: "unprocessable",
    429: "too_many_requests", 431: "too_large", 500: "internal", 502: "bad_gateway", 503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """An answer in the error shape: raised by views and validators, answered by ApiView."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.retry_after_s = retry_after_s  # a `Retry-After` header: ask again then (503 recovering)


RETRY_AFTER_S = 1  # what a `503 recovering` asks the caller to wait: a partition moves in a second or two


class Recovering(ApiError):
    """503 `recovering` with `Retry-After`: this worker cannot answer for that yet (its tables are
    being recovered, a rebalance is under way, or the key's owner says so); ask again, never a default."""

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(503, "recovering", message, retry_after_s)


def code_of(status: int) -> str:
    return CODES.get(status) or ("bad_request" if status < 500 else "internal")


def error_body(status: int, message: str, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code or code_of(status), "message": message}})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def json_error(status: int, message: str, code: str | None = None, headers: Any = None) -> aioweb.Response:
    return aioweb.Response(body=error_body(status, message, code), status=status, content_type=JSON, headers=headers)


@aioweb.middleware
async def error_shape(request: aioweb.Request, handler: Callable[[aioweb.Request], Awaitable[aioweb.StreamResponse]]):
    try:
        response = await handler(request)
    except aioweb.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like pass as they are
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        message = _message_of(exc, request)
        metrics.http_requests.labels("(unrouted)", str(exc.status)).inc()
        return json_error(exc.status, message, headers=headers)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        metrics.http_internal_errors.inc()
        return json_error(500, "internal error; see the worker log")
    if response.status >= 400 and response.content_type != JSON and not response.prepared:
        # an error answered, not raised (aiohttp's static files): our views only answer JSON
        metrics.http_requests.labels("(unrouted)", str(response.status)).inc()
        return json_error(response.status, f"{_phrase(response.status)}: {request.path[:200]}")
    return response  # our views shape (and count) their own errors


def _message_of(exc: aioweb.HTTPException, request: aioweb.Request) -> str:
    if exc.status == 404:
        return f"no such path: {request.path[:200]}"
    if exc.status == 405:
        return f"{request.method} is not allowed here; allowed: {exc.headers.get('Allow', 'none')}"
    text = exc.text or exc.reason or _phrase(exc.status)
    return text.removeprefix(f"{exc.status}: ")[:500]


_aiohttp_handle_error = web_protocol.RequestHandler.handle_error


def _handle_error_as_json(self: Any, request: Any, status: int = 500, exc: BaseException | None = None,
                          message: str | None = None) -> aioweb.StreamResponse:
    if status >= 500:  # a defect: aiohttp logs it with its trace (and raises if an answer was already sent)
        _aiohttp_handle_error(self, request, status, exc, message)
        metrics.http_internal_errors.inc()
        text = "internal error; see the worker log"
    else:  # a request that could not be parsed: the client's doing, one warning line, no trace
        if request.writer.output_size > 0:
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        log.warning("a request could not be parsed", extra={
            "status": status, "remote": getattr(request, "remote", None),
            "error": f"{type(exc).__name__ if exc else 'bad request'}: {str(exc or message or '')[:200]}"})
        metrics.http_requests.labels("(unparsed)", str(status)).inc()
        text = f"{_phrase(status)}: the request could not be parsed ({type(exc).__name__ if exc else 'bad request'})"
    shaped = json_error(status, text)
    shaped.force_close()
    return shaped


def json_parse_errors() -> None:
    """Make aiohttp answer the requests it cannot parse in the error shape (idempotent)."""
    web_protocol.RequestHandler.handle_error = _handle_error_as_json  # type: ignore[method-assign]


def install(web_app: aioweb.Application) -> None:
    if error_shape not in web_app.middlewares:
        web_app.middlewares.append(error_shape)
    json_parse_errors()
