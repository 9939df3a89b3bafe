"""Input records of other services: JSON values checked against a pydantic model.

Every domain that reads a topic others write turns a bad record into its own
`MalformedRecord` (a dead letter with the reason); the reading and the reason's wording
are the same everywhere, so they live here.
"""

from __future__ import annotations

from typing import Optional, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

__all__ = ["MAX_RECORD_BYTES", "ahead_of_now", "oversized", "record_model"]

M = TypeVar("M", bound=BaseModel)
MAX_RECORD_BYTES = 8192  # every input record alike: the largest any upstream sends is a few hundred bytes


def ahead_of_now(at: float, now: float, max_ahead_s: float) -> Optional[str]:
    """Why a record's time cannot be believed, or None: a clock far ahead would pin state (a
    status, a hold, a window's end) until that time comes, so such records are refused."""
    if at > now + max_ahead_s:
        return f"time {at:.3f} is {at - now:.0f} s in the future (more than MAX_FUTURE_SKEW_S, {max_ahead_s:.0f} s, ahead)"
    return None


def oversized(value: Optional[bytes]) -> Optional[str]:
    """Why an input record is refused for its size alone (a dead letter's reason), or None."""
    if value is not None and len(value) > MAX_RECORD_BYTES:
        return f"oversized record: {len(value)} bytes, at most {MAX_RECORD_BYTES}"
    return None


def record_model(kind: type[M], value: Optional[bytes], what: str, malformed: type[ValueError]) -> M:
    """`value` as a `kind`, or `malformed` saying why: no value, not JSON, or up to five
    field problems ("<field>: <problem>"), prefixed with `what` (e.g. the topic's record)."""
    if value is None:
        raise malformed(f"{what}: no value")
    try:
        return kind.model_validate(orjson.loads(value))
    except orjson.JSONDecodeError as exc:
        raise malformed(f"{what}: not JSON ({exc})") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
        raise malformed(f"{what}: {problems}"[:500]) from None
