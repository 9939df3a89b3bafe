"""One validation path for what a request carries: query parameters, path ids, JSON bodies.

Every view reads its query through `query(request, Model)`: a pydantic model per
view, with bounds (finite numbers, epoch seconds within 2000..2100, a time range of
at most 31 days). A bad value is `ApiError(400, "bad_request")` naming the parameter,
so no view ever loops over, or stores, a value nobody checked.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Mapping, Optional, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from web.errors import ApiError

__all__ = ["Body", "BodyEpochSeconds", "Duration", "DurationOrZero", "EPOCH_MAX", "EPOCH_MIN", "Identifier", "MAX_BODY_BYTES",
           "MAX_DURATION_S", "MAX_RANGE_S", "Query", "TimeRange", "body", "describe", "identifier", "query"]

EPOCH_MIN = 946_684_800.0  # 2000-01-01T00:00:00Z
EPOCH_MAX = 4_102_444_800.0  # 2100-01-01T00:00:00Z
MAX_RANGE_S = 31 * 86400
MAX_ID_CHARS = 256
MAX_BODY_BYTES = 64 * 1024  # a command is a few hundred bytes

M = TypeVar("M", bound=BaseModel)


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


EpochSeconds = Annotated[float, Field(ge=EPOCH_MIN, le=EPOCH_MAX, allow_inf_nan=False), AfterValidator(_finite)]
# in a JSON body, numbers are JSON numbers: strict (a boolean, a string, are not numbers)
MAX_DURATION_S = 366 * 86400.0  # the longest duration a body may give (a year and a day)
BodyEpochSeconds = Annotated[float, Field(strict=True, ge=EPOCH_MIN, le=EPOCH_MAX, allow_inf_nan=False)]
Duration = Annotated[float, Field(strict=True, gt=0, le=MAX_DURATION_S, allow_inf_nan=False)]  # seconds, > 0
DurationOrZero = Annotated[float, Field(strict=True, ge=0, le=MAX_DURATION_S, allow_inf_nan=False)]


def _identifier(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_ID_CHARS:
        raise ValueError(f"must be at most {MAX_ID_CHARS} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]


class Query(BaseModel):
    """Base of every query model: unknown parameters are ignored, values are strings."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class TimeRange(Query):
    """`since`/`until` in epoch seconds, since <= until, at most 31 days apart."""

    since: EpochSeconds
    until: EpochSeconds

    @model_validator(mode="after")
    def _ordered(self) -> "TimeRange":
        if self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")
        if self.until - self.since > MAX_RANGE_S:
            raise ValueError(f"since and until are at most {MAX_RANGE_S} s (31 days) apart")
        return self


class Body(BaseModel):
    """Base of every request body model: unknown fields are refused (a misspelt field is
    an error, not a default silently used)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


async def body(request: Any, model: type[M]) -> M:
    """The request's JSON body parsed by `model`: 415 unless it is JSON, 413 over
    MAX_BODY_BYTES, 400 naming the field that is wrong."""
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "bad_request", f"the body is not JSON: {exc}"[:200]) from None
    if not isinstance(data, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return parse(model, data, "field")


def query(request: Any, model: type[M], defaults: Optional[Mapping[str, Any]] = None) -> M:
    """The request's query parsed by `model` (`defaults` fill parameters absent or empty)."""
    given = {name: value for name, value in request.query.items() if name in model.model_fields and value != ""}
    return parse(model, {**(defaults or {}), **given}, "query parameter")


def identifier(value: str, name: str) -> str:
    """A path id (queue, operator, ...): non-empty, bounded, printable."""
    try:
        return _identifier(value)
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"path parameter '{name}' {exc}") from None


def parse(model: type[M], values: Mapping[str, Any], what: str) -> M:
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        raise ApiError(400, "bad_request", describe(exc, what)) from None


def describe(exc: ValidationError, what: str) -> str:
    """A 400's message for pydantic's refusal: its first problem, naming `what` and where."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    message = first.get("msg", "is invalid").removeprefix("Value error, ")
    given = first.get("input")
    shown = f" (got {given!r})" if isinstance(given, (str, int, float)) and len(repr(given)) <= 80 else ""
    return f"{what} '{where}': {message}{shown}" if where else f"{what}s: {message}"
