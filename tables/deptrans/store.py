"""Driver status → KRT's declaration: its topics, tables and message types. Its agents and
views import from here and from the rules beside it; `app/` knows nothing of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import faust
from prometheus_client import Counter, Gauge

from app.codec import register_types
from app.main import app, dead_letters, settings, state_table
from app.metrics import REGISTRY
from app.topics import WEEK_S, declare_topic
from tables.deptrans.drivers import (
    DriverState,
    PositionReported,
    Profile,
    ProfileChanged,
    StatusChanged,
    driver_key,
)
from tables.deptrans.queue import QueueEntry
from tables.deptrans.sessions import SessionStatus
from tables.deptrans.settings import deptrans_settings

__all__ = ["DeptransCounters", "DeptransTopics", "ProfileSeen", "counters", "deptrans", "drivers_table",
           "queue_table", "sessions_table", "topics"]

deptrans = deptrans_settings()


@dataclass(frozen=True)
class DeptransTopics:
    contractor_status: faust.TopicT  # input: drivers' statuses, JSON
    driver_positions: faust.TopicT  # input: drivers' latest positions (the trackstory stand-in), JSON
    driver_profiles: faust.TopicT  # input, compacted by "park_id_driver_id": licence pd id, categories
    deptrans_profiles: faust.TopicT  # compacted, by licence pd id: whether the driver has a KRT ID (has_id)
    deptrans_ids: faust.TopicT  # internal, compacted, by licence pd id: the KRT ID itself (a secret; tables/deptrans/ids.py)
    deptrans_session_statuses: faust.TopicT  # compacted, by licence pd id: KRT's answer about the shift
    dt_events: faust.TopicT  # internal: checked inputs in the partition of their driver
    dead_letters: faust.TopicT


def _declare() -> DeptransTopics:
    s = deptrans
    return DeptransTopics(
        contractor_status=declare_topic(app, settings, s.topic_contractor_status, retention_s=WEEK_S),
        driver_positions=declare_topic(app, settings, s.topic_driver_positions, retention_s=WEEK_S),
        driver_profiles=declare_topic(app, settings, s.topic_driver_profiles, compacted=True),
        deptrans_profiles=declare_topic(app, settings, s.topic_deptrans_profiles, compacted=True),
        deptrans_ids=declare_topic(app, settings, settings.internal_topic("deptrans-ids"), compacted=True),
        deptrans_session_statuses=declare_topic(app, settings, s.topic_deptrans_session_statuses, compacted=True),
        dt_events=declare_topic(app, settings, settings.internal_topic("dt-events")),
        dead_letters=dead_letters,
    )


@dataclass(frozen=True, slots=True)
class ProfileSeen:
    """A driver-profiles record on the internal topic (whose codec carries flat fields only)."""

    park_id: str
    driver_id: str
    removed: bool
    pd_id: Optional[str]
    categories: str  # normalised names, ","-joined

    @classmethod
    def of(cls, event: ProfileChanged) -> "ProfileSeen":
        profile = event.profile
        if profile is None:
            return cls(event.park_id, event.driver_id, True, None, "")
        return cls(event.park_id, event.driver_id, False, profile.pd_id, ",".join(profile.categories))

    @property
    def key(self) -> str:
        return driver_key(self.park_id, self.driver_id)

    @property
    def event(self) -> ProfileChanged:
        if self.removed:
            return ProfileChanged(self.park_id, self.driver_id, None)
        categories = tuple(c for c in self.categories.split(",") if c)
        return ProfileChanged(self.park_id, self.driver_id, Profile(self.pd_id, categories))


topics = _declare()
register_types((StatusChanged, PositionReported, ProfileSeen))

# by driver key ("park_id_driver_id"), in the partition of dt-events the driver's inputs go to
drivers_table = state_table("dt-drivers", DriverState.from_json, cache_keys=100_000)
queue_table = state_table("dt-queue", QueueEntry.from_json, cache_keys=100_000)
# by licence pd id, written in the partition of the driver whose send brought KRT's answer
sessions_table = state_table("dt-sessions", SessionStatus.from_json, cache_keys=100_000)


@dataclass(frozen=True)
class DeptransCounters:
    not_reported: Counter  # status events not sent to KRT, per reason
    enqueued: Counter  # statuses put in the KRT queue
    sends: Counter  # sends to KRT, per outcome
    waiting: Gauge  # drivers with a status waiting to be sent (this worker's partitions)
    breaker_open: Gauge  # 1 while KRT is given a rest


counters = DeptransCounters(
    not_reported=Counter("switchboard_deptrans_not_reported_total",
                         "Driver status events not reported to KRT, per reason", ["reason"], registry=REGISTRY),
    enqueued=Counter("switchboard_deptrans_enqueued_total", "Driver statuses put in the KRT queue",
                     registry=REGISTRY),
    sends=Counter("switchboard_deptrans_sends_total",
                  "Driver statuses sent to KRT, per outcome: accepted, failed (retried), rejected (dropped)",
                  ["outcome"], registry=REGISTRY),
    waiting=Gauge("switchboard_deptrans_queue_waiting", "Drivers whose status waits to be sent to KRT (this worker)",
                  registry=REGISTRY),
    breaker_open=Gauge("switchboard_deptrans_krt_breaker_open",
                       "1 while sends to KRT are paused after failures (the circuit breaker is open)",
                       registry=REGISTRY),
)
