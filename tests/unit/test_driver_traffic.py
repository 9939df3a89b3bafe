"""dev/driver_traffic.py: the simulator's drivers, read back with the service's own parsers."""

from __future__ import annotations

from collections import Counter

from dev.driver_traffic import NEXT, DriverTraffic
from tables.deptrans.drivers import DriverStatus
from tables.deptrans.records import parse_contractor_status, parse_position, parse_profile

T0 = 1_800_000_000.0


def _records(traffic: DriverTraffic, seconds: float):
    return traffic.due(T0 + seconds)


def test_every_profile_comes_first_and_parses():
    traffic = DriverTraffic(seed=1, statuses_per_s=5, start=T0)
    records = _records(traffic, 0)
    assert len(records) == traffic.drivers and {kind for kind, _, _ in records} == {"profiles"}
    profiles = [parse_profile(key, value) for _, key, value in records]
    with_licence = [p for p in profiles if p.profile.pd_id]
    assert len(with_licence) >= 0.9 * len(profiles)
    assert any("cargo" in p.profile.categories for p in profiles)


def test_statuses_come_at_the_rate_each_after_a_position_of_its_driver():
    traffic = DriverTraffic(seed=2, statuses_per_s=20, start=T0)
    _records(traffic, 0)
    records = _records(traffic, 300)
    kinds = Counter(kind for kind, _, _ in records)
    assert 0.85 * 6000 <= kinds["statuses"] <= 1.15 * 6000
    assert kinds["positions"] == kinds["statuses"]
    last_position = {}
    for kind, key, value in records:
        if kind == "positions":
            last_position[key] = parse_position(value)
        else:
            status = parse_contractor_status(value)
            assert last_position[key].at <= status.at


def test_a_drivers_statuses_follow_a_working_day():
    traffic = DriverTraffic(seed=3, statuses_per_s=50, start=T0, drivers=20)
    _records(traffic, 0)
    seen: dict[bytes, DriverStatus] = {}
    for kind, key, value in _records(traffic, 200):
        if kind != "statuses":
            continue
        status = parse_contractor_status(value).status
        before = seen.get(key, DriverStatus.OFFLINE)
        assert status in {s for s, _ in NEXT[before]}
        seen[key] = status


def test_the_same_seed_makes_the_same_traffic():
    a, b = DriverTraffic(seed=9, statuses_per_s=3, start=T0), DriverTraffic(seed=9, statuses_per_s=3, start=T0)
    assert _records(a, 100) == _records(b, 100)
