"""KRT's answer about a driver's shift (seed 002's `deptrans.session_statuses`), kept per
driver licence (`driver_license_pd_id`): the shift's status and when it ends.

Each accepted status send brings an answer; `apply_krt_answer` keeps the newest (one older
than what is stored, or as old, changes nothing: a replay, or a slow answer overtaken).
The stored session is published on `deptrans-session-statuses` (compacted, keyed by the pd
id: `session_record`, a tombstone once `past_retention`) and served from there by
`GET /internal/v1/status/updates` (`status_update`, one item per change).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, Optional

from tables.deptrans.drivers import StatusToReport

__all__ = [
    "KrtAnswer", "SessionOutcome", "SessionState", "SessionStatus", "apply_krt_answer", "past_retention",
    "session_active", "session_record", "status_update",
]


class SessionState(StrEnum):
    """A shift's status in KRT's answer (the KRT client maps KRT's own words to these)."""

    ACTIVE = "active"  # a shift is open: the driver may work until `ends_at`
    CLOSED = "closed"  # no shift is open (it ended at `ends_at`, if known)
    BLOCKED = "blocked"  # KRT forbids work (rest time, a licence problem) until `ends_at`, if known


@dataclass(frozen=True, slots=True)
class KrtAnswer:
    """What KRT answered to a status send."""

    session_status: SessionState
    ends_at: Optional[float]


@dataclass(frozen=True, slots=True)
class SessionStatus:
    pd_id: str
    session_status: SessionState
    ends_at: Optional[float]
    updated_at: float  # when KRT answered
    # the driver (profile) and status whose send brought the answer: one licence may drive for several parks
    park_id: str = ""
    driver_id: str = ""
    status_at: Optional[float] = None

    @classmethod
    def from_json(cls, d: dict) -> "SessionStatus":
        return cls(**{**d, "session_status": SessionState(d["session_status"])})


_SESSION_FIELDS = tuple(f.name for f in fields(SessionStatus))


@dataclass(frozen=True, slots=True)
class SessionOutcome:
    session: SessionStatus  # to store (and publish)
    changed: bool = True


def apply_krt_answer(previous: Optional[SessionStatus], sent: StatusToReport, answer: KrtAnswer,
                     at: float) -> SessionOutcome:
    """The licence's session after KRT answered `answer` to `sent` at `at`."""
    if previous is not None and at <= previous.updated_at:
        return SessionOutcome(previous, changed=False)
    return SessionOutcome(SessionStatus(sent.pd_id, answer.session_status, answer.ends_at, at, sent.park_id,
                                        sent.driver_id, sent.at))


def session_active(session: Optional[SessionStatus], now: float) -> bool:
    """The driver may work at `now` as KRT last said: a shift open and not past its end."""
    return (session is not None and session.session_status == SessionState.ACTIVE
            and (session.ends_at is None or session.ends_at > now))


def past_retention(session: SessionStatus, now: float, kept_s: float) -> bool:
    """Nobody needs it any more (the seed keeps 1 to 30 days): its table entry and key may go."""
    return now - max(session.updated_at, session.ends_at or 0.0) > kept_s


def session_record(session: SessionStatus) -> dict[str, Any]:
    """The value on `deptrans-session-statuses`, keyed by `pd_id`."""
    record = {name: getattr(session, name) for name in _SESSION_FIELDS}
    record["session_status"] = str(session.session_status)
    return record


def status_update(pd_id: str, record: Optional[dict[str, Any]]) -> dict[str, Any]:
    """An item of `GET /internal/v1/status/updates` from a record of `deptrans-session-statuses`
    (None: its tombstone): the cache drops the licence."""
    if record is None:
        return {"driver_license_pd_id": pd_id, "deleted": True}
    return {"driver_license_pd_id": pd_id, "session_status": record["session_status"], "ends_at": record["ends_at"],
            "updated_at": record["updated_at"], "park_id": record.get("park_id") or None,
            "driver_id": record.get("driver_id") or None, "deleted": False}
