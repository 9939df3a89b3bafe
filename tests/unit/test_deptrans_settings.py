"""The KRT domain's settings (tables/deptrans/settings.py): defaults, regions and categories
from the environment, and what is refused at start-up with the reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tables.deptrans.drivers import ReportPolicy
from tables.deptrans.settings import MOSCOW_MKAD, DeptransSettings

TRIANGLE = "[[[55.9, 37.3], [55.9, 37.9], [55.5, 37.9]]]"


def make(monkeypatch, **env: str) -> DeptransSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return DeptransSettings()


def test_the_defaults_report_moscow_drivers_of_three_categories(monkeypatch) -> None:
    settings = make(monkeypatch)
    assert settings.deptrans_regions == (MOSCOW_MKAD,)
    assert settings.deptrans_categories == ("comfort", "comfort_plus", "econom")
    assert settings.deptrans_max_position_age_s == 600.0
    assert settings.regions.contains(55.7520, 37.6175)
    policy = settings.report_policy
    assert policy == ReportPolicy(settings.regions, frozenset({"econom", "comfort", "comfort_plus"}), 600.0, True)
    assert settings.report_policy is policy  # built once: it runs for every status event
    assert (settings.topic_contractor_status, settings.topic_driver_positions, settings.topic_driver_profiles,
            settings.topic_deptrans_profiles, settings.topic_deptrans_session_statuses) == (
        "contractor-status", "driver-positions", "driver-profiles", "deptrans-profiles", "deptrans-session-statuses")


def test_regions_come_from_json_lists_of_lat_lon_points(monkeypatch) -> None:
    settings = make(monkeypatch, DEPTRANS_REGIONS=TRIANGLE[:-1] + ", [[1, 1], [1, 2], [2, 2], [1, 1]]]")
    assert settings.deptrans_regions == (((55.9, 37.3), (55.9, 37.9), (55.5, 37.9)), ((1.0, 1.0), (1.0, 2.0), (2.0, 2.0)))
    assert settings.regions.contains(55.8, 37.8) and settings.regions.contains(1.5, 1.7)
    assert not settings.regions.contains(55.7520, 37.3500)


@pytest.mark.parametrize("raw, why", [
    ("[]", "at least one polygon"),
    ("[[[55.9, 37.3], [55.9, 37.9]]]", "polygon 0: a polygon needs at least 3 distinct points"),
    ("[[[55.9, 37.3], [55.9, 37.9], [55.9, 37.3]]]", "at least 3 distinct points"),
    ("[[[95.9, 37.3], [55.9, 37.9], [55.5, 37.9]]]", "point 0: latitude 95.9"),
    (TRIANGLE[:-1] + ", [[0, 0], [0, 200], [1, 1]]]", "polygon 1: point 1: longitude 200"),
    ("[[[55.9, 37.3], [55.9], [55.5, 37.9]]]", "point 1: expected [lat, lon]"),
    ("[[55.9, 37.3]]", "polygon 0: point 0: expected [lat, lon], got 55.9"),
    ("[1]", "polygon 0: expected a list"),
    ("moscow", "not JSON"),
    ("[[[0, 0], [1, 1], [2, 2]]]", "one line"),
], ids=["none", "two-points", "closed-two", "latitude", "longitude-second-polygon", "short-point", "flat",
        "not-a-polygon", "not-json", "collinear"])
def test_a_bad_region_fails_the_start_with_the_reason(monkeypatch, raw, why) -> None:
    with pytest.raises(ValidationError, match=why.replace("[", r"\[").replace("]", r"\]")):
        make(monkeypatch, DEPTRANS_REGIONS=raw)


@pytest.mark.parametrize("raw, expected", [
    ("econom,comfort", ("comfort", "econom")),
    (" Econom , Comfort+ ,", ("comfort_plus", "econom")),
    ('["business", "Comfort Plus"]', ("business", "comfort_plus")),
    ("econom,econom", ("econom",)),
], ids=["comma-separated", "spelt-loosely", "json-list", "repeated"])
def test_categories_come_comma_separated_or_as_json_in_one_spelling(monkeypatch, raw, expected) -> None:
    assert make(monkeypatch, DEPTRANS_CATEGORIES=raw).deptrans_categories == expected


@pytest.mark.parametrize("env, why", [
    ({"DEPTRANS_CATEGORIES": " , "}, "at least one category"),
    ({"DEPTRANS_CATEGORIES": "[econom"}, "not a JSON list"),
    ({"DEPTRANS_MAX_POSITION_AGE_S": "0"}, "greater than 0"),
    ({"KRT_CONCURRENCY": "0"}, "greater than or equal to 1"),
    ({"KRT_RETRY_FIRST_S": "10", "KRT_RETRY_MAX_S": "5"}, "KRT_RETRY_MAX_S"),
    ({"KRT_TIMEOUT_S": "30", "KRT_LEASE_S": "30"}, "KRT_LEASE_S must exceed"),
], ids=["no-category", "broken-json", "no-position-age", "no-concurrency", "retry-max-below-first", "lease-within-timeout"])
def test_bad_numbers_and_lists_fail_the_start(monkeypatch, env, why) -> None:
    with pytest.raises(ValidationError, match=why):
        make(monkeypatch, **env)


def test_the_settings_are_frozen(monkeypatch) -> None:
    settings = make(monkeypatch)
    with pytest.raises(ValidationError):
        settings.krt_concurrency = 3  # type: ignore[misc]
