"""The KRT status queue (seed 002's `deptrans.status_queue`) as pure rules: one entry per
driver, keeping only the latest status to send.

An entry holds at most one status in flight (sent, not answered) and at most one pending
(the newest not sent yet; while one is in flight, the next). What may happen to it:

- `enqueue`: a newer status replaces the pending one; one not newer than what is pending,
  in flight, or last accepted or refused for the driver is dropped: KRT never hears a
  driver's statuses out of order;
- `take`: the sender takes the pending status (marked in flight, with its attempt), one
  per driver at a time, not before `retry_at`; a send unanswered for `lease_s` (its worker
  died, its answer was lost) is presumed lost and the entry's newest status goes again;
- `accepted`: KRT took it: it is removed, `last_accepted_at` keeps its time, the next
  becomes sendable; `failed`: a transient error, back to pending unless a newer status
  replaced it, with `retry_at` set by the caller's backoff (`retry_delay_s`); `rejected`:
  KRT refused that status for good, it is dropped.

Answers name the `InFlight` they answer; one for a send the entry no longer holds
changes nothing but `last_accepted_at`. Pure: the time comes in as `now`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Optional

from tables.deptrans.drivers import StatusToReport

__all__ = [
    "EntryState", "InFlight", "QueueEntry", "accepted", "enqueue", "failed", "forgettable", "ready", "rejected",
    "retry_delay_s", "take",
]


class EntryState(StrEnum):
    IDLE = "idle"  # nothing to send; `last_accepted_at` is remembered
    PENDING = "pending"  # a status waits to be sent
    IN_FLIGHT = "in_flight"  # a status is sent, not answered (a newer one may wait as the next)


@dataclass(frozen=True, slots=True)
class InFlight:
    report: StatusToReport
    attempt: int  # 1: the first try since the driver's last answered send
    taken_at: float

    @classmethod
    def from_json(cls, d: dict) -> "InFlight":
        return cls(StatusToReport.from_json(d["report"]), d["attempt"], d["taken_at"])


@dataclass(frozen=True, slots=True)
class QueueEntry:
    driver: str  # drivers.driver_key
    pending: Optional[StatusToReport] = None
    in_flight: Optional[InFlight] = None
    failures: int = 0  # sends since the last answer that failed or were presumed lost (the backoff's count)
    retry_at: float = 0.0  # nothing is taken before this
    last_accepted_at: Optional[float] = None  # the time of the newest status KRT accepted
    last_rejected_at: Optional[float] = None  # ... and refused: nothing older is sent after it either

    @property
    def state(self) -> EntryState:
        if self.in_flight is not None:
            return EntryState.IN_FLIGHT
        return EntryState.IDLE if self.pending is None else EntryState.PENDING

    @classmethod
    def from_json(cls, d: dict) -> "QueueEntry":
        """From its stored form: the dataclass as orjson writes it."""
        pending, in_flight = d.get("pending"), d.get("in_flight")
        return cls(d["driver"], None if pending is None else StatusToReport.from_json(pending),
                   None if in_flight is None else InFlight.from_json(in_flight), d["failures"], d["retry_at"],
                   d["last_accepted_at"], d["last_rejected_at"])


def enqueue(entry: Optional[QueueEntry], report: StatusToReport) -> QueueEntry:
    """The entry with `report` waiting to be sent, unless a status as new is known already."""
    entry = entry or QueueEntry(report.key)
    known = (entry.last_accepted_at, entry.last_rejected_at, None if entry.pending is None else entry.pending.at,
             None if entry.in_flight is None else entry.in_flight.report.at)
    if any(at is not None and report.at <= at for at in known):
        return entry
    return replace(entry, pending=report)


def take(entry: QueueEntry, now: float, lease_s: float = math.inf) -> tuple[QueueEntry, Optional[InFlight]]:
    """The entry with its status to send marked in flight, and that send (None: nothing to send now)."""
    flight = entry.in_flight
    lease_over = flight is not None and now - flight.taken_at >= lease_s
    if (flight is not None and not lease_over) or now < entry.retry_at:
        return entry, None
    report = entry.pending if entry.pending is not None else None if flight is None else flight.report
    if report is None:
        return entry, None
    failures = entry.failures + 1 if lease_over else entry.failures  # no answer in time: a failure
    send = InFlight(report, failures + 1, now)
    return replace(entry, pending=None, in_flight=send, failures=failures), send


def ready(entry: QueueEntry, now: float, lease_s: float = math.inf) -> bool:
    """`take` would send something at `now` (the sender's scan)."""
    return take(entry, now, lease_s)[1] is not None


def accepted(entry: QueueEntry, sent: InFlight) -> QueueEntry:
    """KRT accepted `sent`: neither it nor anything older is sent any more."""
    at = sent.report.at
    last = at if entry.last_accepted_at is None else max(entry.last_accepted_at, at)
    flight = entry.in_flight if entry.in_flight is not None and entry.in_flight.report.at > last else None
    pending = entry.pending if entry.pending is not None and entry.pending.at > last else None
    return replace(entry, pending=pending, in_flight=flight, failures=0, retry_at=0.0, last_accepted_at=last)


def failed(entry: QueueEntry, sent: InFlight, now: float, retry_after_s: float = 0.0) -> QueueEntry:
    """`sent` failed (KRT away, a timeout, a 5xx): it is pending again, unless a newer status
    waits, which then goes instead; nothing is taken before `now + retry_after_s`."""
    if entry.in_flight != sent:
        return entry  # that send is over already (answered, or presumed lost and sent again)
    pending = entry.pending if entry.pending is not None else sent.report
    return replace(entry, pending=pending, in_flight=None, failures=entry.failures + 1, retry_at=now + retry_after_s)


def rejected(entry: QueueEntry, sent: InFlight) -> QueueEntry:
    """KRT refused `sent` for good (a 4xx about that status): it is dropped, not retried."""
    if entry.in_flight is None or entry.in_flight.report != sent.report:
        return entry
    return replace(entry, in_flight=None, failures=0, retry_at=0.0, last_rejected_at=sent.report.at)


def retry_delay_s(failures: int, first_s: float, max_s: float) -> float:
    """The wait after the `failures`-th failure in a row: doubling from `first_s`, at most `max_s`."""
    if failures <= 0:
        return 0.0
    return min(max_s, first_s * 2.0 ** min(failures - 1, 62))


def forgettable(entry: QueueEntry, now: float, kept_s: float) -> bool:
    """Nothing to send, and the last accepted status too old for an older one to still arrive:
    the entry may go."""
    last = max((at for at in (entry.last_accepted_at, entry.last_rejected_at) if at is not None), default=None)
    return entry.state == EntryState.IDLE and (last is None or now - last > kept_s)
