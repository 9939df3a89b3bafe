"""Per-driver state joined from the three inputs, and which status changes go to KRT.

A driver is (park_id, driver_id), keyed `driver_key(park_id, driver_id)`. Its state joins
the latest profile (`driver-profiles`: licence pd id and tariff categories), the latest
position (`driver-positions`) and the latest status (`contractor-status`), plus what was
last handed to the KRT queue. `apply_driver_event(state, event, policy)` is the whole rule.

A status goes to KRT (a `StatusToReport`) when the driver has a profile with a licence pd
id, works at least one configured category, and was last seen, not longer than the policy's
`max_position_age_s` before the status, inside a configured region; otherwise the outcome
says why not (`NotReported`, counted by the agent). Besides:

- KRT wants the moments a driver goes on and off the line (seed 002), so with
  `line_changes_only` (the default) a status that keeps the driver on (online <-> busy) or
  off the line is not sent again (`LINE_UNCHANGED`); nothing reported yet counts as off;
- going off the line after an on-line report is reported wherever the driver is and
  whatever the profile says now (with the pd id of that report): KRT must close what it
  was told was open;
- data that arrives after the status it explains (a position or a profile late on its
  topic) lets the latest status, not reported yet, be reported then, at its own time.

Out of order: a status or position not newer than the one known changes nothing (of two
with the same time, the first heard wins). Profiles come from a compacted topic, in order
per driver, so the latest one heard is the profile. Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Optional, Union

from tables.deptrans.regions import Regions

__all__ = [
    "DriverEvent", "DriverOutcome", "DriverState", "DriverStatus", "LastStatus", "NotReported", "ON_LINE", "Position",
    "PositionReported", "Profile", "ProfileChanged", "ReportPolicy", "Reported", "StatusChanged", "StatusToReport",
    "apply_driver_event", "driver_key", "expire_driver", "normalise_category", "split_driver_key",
]


class DriverStatus(StrEnum):
    """A contractor's status as `contractor-status` carries it (normalised by the records parser)."""

    ONLINE = "online"  # on the line, free for orders
    BUSY = "busy"  # on the line, on an order (or otherwise not free)
    OFFLINE = "offline"  # off the line


ON_LINE = frozenset({DriverStatus.ONLINE, DriverStatus.BUSY})


class NotReported(StrEnum):
    """Why a status event is not sent to KRT (a metric's `reason`)."""

    NO_PROFILE = "no_profile"  # no profile, or one without a licence pd id
    NO_CATEGORY = "no_category"  # works none of the configured categories
    NO_POSITION = "no_position"
    STALE_POSITION = "stale_position"  # the latest position is older than the policy allows
    OUTSIDE_REGION = "outside_region"
    LINE_UNCHANGED = "line_unchanged"  # on (or off) the line already, as KRT was last told


def driver_key(park_id: str, driver_id: str) -> str:
    """The key of a driver's state and queue entry; park ids hold no "_" (records.py checks)."""
    return f"{park_id}_{driver_id}"


def split_driver_key(key: str) -> tuple[str, str]:
    park_id, sep, driver_id = key.partition("_")
    if not sep or not park_id or not driver_id:
        raise ValueError(f"not a driver key (park_id_driver_id): {key!r}")
    return park_id, driver_id


_CATEGORY_SEPARATORS = re.compile(r"[\s\-]+")


def normalise_category(name: str) -> str:
    """One spelling of a tariff category: "Comfort+", "comfort plus", "comfort-plus" -> "comfort_plus"."""
    name = name.strip().lower().replace("+", " plus")
    return _CATEGORY_SEPARATORS.sub("_", name.strip())


# --- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    pd_id: Optional[str]  # the driver licence's id in `personal`; None: not filled in
    categories: tuple[str, ...]  # normalised, sorted, unique

    @classmethod
    def from_json(cls, d: dict) -> "Profile":
        return cls(d["pd_id"], tuple(d["categories"]))


@dataclass(frozen=True, slots=True)
class StatusChanged:
    park_id: str
    driver_id: str
    status: DriverStatus
    at: float

    @property
    def key(self) -> str:
        return driver_key(self.park_id, self.driver_id)


@dataclass(frozen=True, slots=True)
class PositionReported:
    park_id: str
    driver_id: str
    lat: float
    lon: float
    at: float

    @property
    def key(self) -> str:
        return driver_key(self.park_id, self.driver_id)


@dataclass(frozen=True, slots=True)
class ProfileChanged:
    park_id: str
    driver_id: str
    profile: Optional[Profile]  # None: removed (a tombstone on driver-profiles)

    @property
    def key(self) -> str:
        return driver_key(self.park_id, self.driver_id)


DriverEvent = Union[StatusChanged, PositionReported, ProfileChanged]


# --- state ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    lat: float
    lon: float
    at: float


@dataclass(frozen=True, slots=True)
class LastStatus:
    status: DriverStatus
    at: float


@dataclass(frozen=True, slots=True)
class Reported:
    """The latest status handed to the KRT queue."""

    pd_id: str
    status: DriverStatus
    at: float


@dataclass(frozen=True, slots=True)
class DriverState:
    park_id: str
    driver_id: str
    profile: Optional[Profile] = None
    position: Optional[Position] = None
    status: Optional[LastStatus] = None
    reported: Optional[Reported] = None

    @property
    def key(self) -> str:
        return driver_key(self.park_id, self.driver_id)

    @property
    def on_line_reported(self) -> bool:
        """KRT was last told the driver is on the line."""
        return self.reported is not None and self.reported.status in ON_LINE

    @classmethod
    def from_json(cls, d: dict) -> "DriverState":
        """From its stored form: the dataclass as orjson writes it."""
        profile, position, status, reported = d.get("profile"), d.get("position"), d.get("status"), d.get("reported")
        return cls(
            d["park_id"], d["driver_id"],
            None if profile is None else Profile.from_json(profile),
            None if position is None else Position(**position),
            None if status is None else LastStatus(DriverStatus(status["status"]), status["at"]),
            None if reported is None else Reported(reported["pd_id"], DriverStatus(reported["status"]), reported["at"]),
        )


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    """Which statuses go to KRT (DeptransSettings.report_policy builds it from the settings)."""

    regions: Regions
    categories: frozenset[str]  # normalised
    max_position_age_s: float
    line_changes_only: bool = True


@dataclass(frozen=True, slots=True)
class StatusToReport:
    """A status for the KRT queue: the driver's, at its own time."""

    park_id: str
    driver_id: str
    pd_id: str
    status: DriverStatus
    at: float

    @property
    def key(self) -> str:
        return driver_key(self.park_id, self.driver_id)

    @classmethod
    def from_json(cls, d: dict) -> "StatusToReport":
        return cls(d["park_id"], d["driver_id"], d["pd_id"], DriverStatus(d["status"]), d["at"])


@dataclass(frozen=True, slots=True)
class DriverOutcome:
    state: DriverState  # to store
    changed: bool = True
    report: Optional[StatusToReport] = None  # to enqueue for KRT
    not_reported: Optional[NotReported] = None  # a status event that is not reported, and why


# --- the rule -------------------------------------------------------------------------------------


def apply_driver_event(state: Optional[DriverState], event: DriverEvent, policy: ReportPolicy) -> DriverOutcome:
    """The driver's state after `event`, and the status to report to KRT, if any."""
    known = state or DriverState(event.park_id, event.driver_id)
    if isinstance(event, StatusChanged):
        return _status(known, event, policy)
    if isinstance(event, PositionReported):
        if known.position is not None and event.at <= known.position.at:
            return DriverOutcome(known, changed=False)
        return _reconsider(replace(known, position=Position(event.lat, event.lon, event.at)), policy)
    if isinstance(event, ProfileChanged):
        if event.profile == known.profile:
            return DriverOutcome(known, changed=False)  # the same again, or a tombstone for a driver unknown here
        return _reconsider(replace(known, profile=event.profile), policy)
    raise TypeError(f"not a driver event: {event!r}")  # pragma: no cover - the union is exhaustive


def _status(state: DriverState, event: StatusChanged, policy: ReportPolicy) -> DriverOutcome:
    if state.status is not None and event.at <= state.status.at:
        return DriverOutcome(state, changed=False)  # a replay, or overtaken by a newer status
    after = replace(state, status=LastStatus(event.status, event.at))
    report, why = _verdict(after, policy)
    if report is None:
        return DriverOutcome(after, not_reported=why)
    return _reported(after, report)


def _reconsider(state: DriverState, policy: ReportPolicy) -> DriverOutcome:
    """New data for the latest status, if that is not reported yet: it may be now."""
    status = state.status
    if status is None or (state.reported is not None and state.reported.at >= status.at):
        return DriverOutcome(state)
    report, _ = _verdict(state, policy)
    return DriverOutcome(state) if report is None else _reported(state, report)


def _reported(state: DriverState, report: StatusToReport) -> DriverOutcome:
    return DriverOutcome(replace(state, reported=Reported(report.pd_id, report.status, report.at)), report=report)


def _verdict(state: DriverState, policy: ReportPolicy) -> tuple[Optional[StatusToReport], Optional[NotReported]]:
    """Whether the state's latest status goes to KRT: the report, or why not."""
    status = state.status
    assert status is not None
    on_line = status.status in ON_LINE
    if not on_line and state.reported is not None and state.on_line_reported:
        # off the line after KRT was told on: wherever the driver is, with the pd id KRT knows
        return StatusToReport(state.park_id, state.driver_id, state.reported.pd_id, status.status, status.at), None
    if policy.line_changes_only and on_line == state.on_line_reported:
        return None, NotReported.LINE_UNCHANGED
    profile, position = state.profile, state.position
    if profile is None or not profile.pd_id:
        return None, NotReported.NO_PROFILE
    if policy.categories.isdisjoint(profile.categories):
        return None, NotReported.NO_CATEGORY
    if position is None:
        return None, NotReported.NO_POSITION
    # a position after the status counts: the status held then (it is the latest)
    if position.at < status.at - policy.max_position_age_s:
        return None, NotReported.STALE_POSITION
    if not policy.regions.contains(position.lat, position.lon):
        return None, NotReported.OUTSIDE_REGION
    return StatusToReport(state.park_id, state.driver_id, profile.pd_id, status.status, status.at), None


def expire_driver(state: DriverState, now: float, kept_s: float) -> Optional[DriverState]:
    """The state at `now` without what is older than `kept_s` (None: nothing left to keep).
    A position goes; a status goes unless KRT was last told the driver is on the line (its
    going off must still be reported); the profile stays (its topic is read once)."""
    position = state.position if state.position is not None and now - state.position.at <= kept_s else None
    status, reported = state.status, state.reported
    if status is not None and now - status.at > kept_s and not state.on_line_reported:
        status, reported = None, None
    if state.profile is None and position is None and status is None and reported is None:
        return None
    if (position, status, reported) == (state.position, state.status, state.reported):
        return state
    return replace(state, position=position, status=status, reported=reported)
