"""Stage rates: the events/s of each stage that /metrics shows."""

from __future__ import annotations

import pytest

from app.metrics import REGISTRY, StageRates


def test_the_first_refresh_only_starts_the_clock() -> None:
    rates = StageRates()
    rates.count("cc-events", 500)
    assert rates.refresh(100.0) == {}


def test_a_rate_is_what_came_in_since_the_last_refresh_per_second() -> None:
    rates = StageRates()
    rates.refresh(100.0)
    rates.count("cc-events", 300)
    rates.count("cc-events", 200)
    rates.count("cc-queues", 50)
    assert rates.refresh(102.0) == {"cc-events": 250.0, "cc-queues": 25.0}
    assert REGISTRY.get_sample_value("switchboard_stage_events_per_second", {"stage": "cc-events"}) == 250.0


def test_a_stage_that_took_nothing_since_shows_zero() -> None:
    rates = StageRates()
    rates.refresh(100.0)
    rates.count("cc-queues-idle", 10)
    rates.refresh(101.0)
    assert rates.refresh(102.0) == {"cc-queues-idle": 0.0}
    assert REGISTRY.get_sample_value("switchboard_stage_events_per_second", {"stage": "cc-queues-idle"}) == 0.0


@pytest.mark.parametrize("now", [100.0, 99.0], ids=["same-instant", "clock-went-back"])
def test_no_rate_without_time_passing(now: float) -> None:
    rates = StageRates()
    rates.refresh(100.0)
    rates.count("cc-events", 5)
    assert rates.refresh(now) == {}
