"""What /metrics shows: the events/s of each stage, the consumer lag per partition."""

from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace
from typing import Optional

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


class _Consumer:
    def __init__(self, highwater: dict, read: dict, committed: dict) -> None:
        self._highwater, self._read_offset, self._committed_offset = highwater, read, committed

    def highwater(self, tp):
        return self._highwater[tp]


def _worker(assigned: list, highwater: dict, read: dict, committed: Optional[dict] = None):
    return SimpleNamespace(consumer=_Consumer(highwater, read, committed or {}),
                           assignor=SimpleNamespace(assigned_actives=lambda: set(assigned)))


def _lag(tp) -> Optional[float]:
    return REGISTRY.get_sample_value("switchboard_consumer_lag_records",
                                     {"topic": tp.topic, "partition": str(tp.partition)})


def test_consumer_lag_is_set_per_partition_and_dropped_when_a_partition_goes() -> None:
    from app.lag import consumer_backlog

    TP = namedtuple("TP", "topic partition")
    first, second, later, other = TP("lag-in", 0), TP("lag-in", 1), TP("lag-next", 3), TP("lag-other", 0)
    worker = _worker([first, second, later, other], {first: 100, second: 50, later: 10, other: 999},
                     read={first: 89, later: 9}, committed={second: 20})
    assert consumer_backlog(worker, ("lag-in", "lag-next")) == 10 + 30 + 0
    assert (_lag(first), _lag(second), _lag(later), _lag(other)) == (10.0, 30.0, 0.0, None)

    worker = _worker([first], {first: 100}, read={first: 94})  # the others went to another worker
    assert consumer_backlog(worker, ("lag-in", "lag-next")) == 5
    assert (_lag(first), _lag(second), _lag(later)) == (5.0, None, None)
