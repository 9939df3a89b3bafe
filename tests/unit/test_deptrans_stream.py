"""agents/deptrans.py's stage over in-memory tables: what goes into the KRT queue, and what not."""

from __future__ import annotations

from agents.deptrans import DeptransStage
from app import codec
from app.batching import Outbox
from tables.deptrans.drivers import DriverStatus, PositionReported, Profile, ProfileChanged, StatusChanged
from tables.deptrans.store import ProfileSeen, counters
from tests.unit.panel import MemoryTable

KREMLIN = (55.7520, 37.6175)
PETERSBURG = (59.9343, 30.3351)
T0 = 1_800_000_000.0


class NoApp:
    producer = None


class World:
    def __init__(self) -> None:
        self.drivers, self.queue = MemoryTable(), MemoryTable()
        self.woken: list[set[str]] = []

    def feed(self, *messages) -> "World":
        stage = DeptransStage(0, self.drivers, self.queue, Outbox(NoApp()), self.woken.append)
        stage.apply_all(list(messages))
        stage.store()
        return self


def profile(pd_id="pd-1", categories=("econom",), park="p1", driver="d1"):
    return ProfileSeen.of(ProfileChanged(park, driver, Profile(pd_id, tuple(categories))))


def where(lat_lon, at, park="p1", driver="d1"):
    return PositionReported(park, driver, lat_lon[0], lat_lon[1], at)


def status(value, at, park="p1", driver="d1"):
    return StatusChanged(park, driver, DriverStatus(value), at)


def _not_reported(reason: str) -> float:
    return counters.not_reported.labels(reason)._value.get()


def test_a_driver_in_moscow_working_econom_going_online_is_queued_and_the_sender_woken():
    world = World().feed(profile(), where(KREMLIN, T0), status("online", T0 + 1))
    entry = world.queue["p1_d1"]
    assert entry.pending.status == DriverStatus.ONLINE and entry.pending.pd_id == "pd-1"
    assert world.woken == [{"p1_d1"}]


def test_a_driver_outside_every_region_is_not_queued_and_the_reason_is_counted():
    before = _not_reported("outside_region")
    world = World().feed(profile(), where(PETERSBURG, T0), status("online", T0 + 1))
    assert "p1_d1" not in world.queue and world.woken == []
    assert _not_reported("outside_region") == before + 1


def test_a_driver_of_no_configured_category_is_not_queued():
    world = World().feed(profile(categories=("cargo",)), where(KREMLIN, T0), status("online", T0 + 1))
    assert "p1_d1" not in world.queue


def test_only_the_newest_status_waits_while_none_was_sent():
    world = World().feed(profile(), where(KREMLIN, T0), status("online", T0 + 1))
    world.feed(status("offline", T0 + 5))
    entry = world.queue["p1_d1"]
    assert entry.pending.status == DriverStatus.OFFLINE and entry.pending.at == T0 + 5


def test_a_status_older_than_the_one_waiting_changes_nothing():
    world = World().feed(profile(), where(KREMLIN, T0), status("online", T0 + 10))
    world.feed(status("offline", T0 + 5))
    assert world.queue["p1_d1"].pending.at == T0 + 10


def test_a_profile_that_comes_after_the_status_lets_it_go():
    world = World().feed(where(KREMLIN, T0), status("online", T0 + 1))
    assert "p1_d1" not in world.queue
    world.feed(profile())
    assert world.queue["p1_d1"].pending.status == DriverStatus.ONLINE


def test_a_removed_profile_crosses_the_internal_topic_and_is_applied():
    removed = ProfileSeen.of(ProfileChanged("p1", "d1", None))
    (back,) = codec.unpack(codec.pack([removed]))
    assert back == removed and back.event == ProfileChanged("p1", "d1", None)
    world = World().feed(profile(), back)
    assert world.drivers["p1_d1"].profile is None


def test_a_profile_crosses_the_internal_topic_unchanged():
    seen = profile(categories=("comfort_plus", "econom"))
    (back,) = codec.unpack(codec.pack([seen]))
    assert back.event.profile == Profile("pd-1", ("comfort_plus", "econom"))
    assert back.key == "p1_d1"


def test_the_sweep_forgets_old_positions_and_answered_entries_but_not_a_driver_krt_thinks_online():
    import asyncio

    from agents.deptrans import KrtSender
    from tables.deptrans.queue import QueueEntry

    day = 86400.0
    world = World().feed(profile(), where(KREMLIN, T0), status("online", T0 + 1))  # reported online
    world.feed(profile(park="p2", pd_id="pd-2"), where(PETERSBURG, T0, park="p2"), status("online", T0 + 1, park="p2"))
    world.queue["p1_d1"] = QueueEntry("p1_d1", last_accepted_at=T0 + 1)  # KRT took it
    world.queue["p3_d1"] = QueueEntry("p3_d1", last_accepted_at=T0 + 2 * day)  # answered recently

    async def run():
        sender = KrtSender(None, None)
        return sum([await sender.sweep(p, T0 + 1.5 * day, world.drivers, world.queue, chunk=1) for p in range(4)])

    changed = asyncio.run(run())
    assert world.drivers["p1_d1"].position is None and world.drivers["p1_d1"].status is not None  # still on the line
    assert world.drivers["p2_d1"].status is None and world.drivers["p2_d1"].profile is not None  # never reported
    assert "p1_d1" not in world.queue and "p3_d1" in world.queue
    assert changed == 3
