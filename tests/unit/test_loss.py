"""A simulated shift replayed with a few percent of its lines lost, through the worker's own
stages (tests/unit/panel.py), against an expectation computed here from the lines that
remain (sharing no code with tables/):

- every window counts exactly the remaining lines (tests/integration/expectations.py);
- each queue's operators (logged in, paused, on call, available) are what the evidence
  shows (`Expected.operators`): an operator is on call exactly when its latest CONNECT
  has no later end of that call, and it has neither left every queue nor logged off since
  (README, "Order, loss, duplicates").
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dev.simulate import CallCenterSimulation
from tables.callcenter.queue_log import to_line
from tables.callcenter.windows import WindowAgg, metrics_view
from tests.integration.expectations import expect
from tests.unit.panel import Panel

START = 1_700_000_000.0


def shift(minutes: float, seed: int) -> list[str]:
    simulation = CallCenterSimulation(seed=seed, start=START, rate=4.0)
    return [to_line(r) for r in simulation.advance(START + minutes * 60)]


def lose(lines: list[str], share: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [line for line in lines if rng.random() >= share]


def replay(lines: list[str]) -> Panel:
    return Panel(START).feed(*lines)


def windows_of(panel: Panel, queue: str) -> list[dict]:
    found = [(key, w) for key, w in panel.windows.items() if isinstance(w, WindowAgg) and key.rsplit("|", 1)[0] == queue]
    return [metrics_view(w) for _, w in sorted(found)]


def check(remaining: list[str]) -> None:
    panel = replay(remaining)
    reference = expect(remaining)
    for queue in sorted(reference.queues):
        assert windows_of(panel, queue) == reference.window_views(queue), queue
        assert panel.counts(queue) == reference.operators(queue), queue


@pytest.mark.slow
def test_a_shift_with_3_percent_of_its_lines_lost_shows_the_operators_the_evidence_shows():
    lines = shift(60, seed=20261129)
    remaining = lose(lines, 0.03, seed=1)
    assert len(lines) - len(remaining) > 100  # enough lost to matter
    check(remaining)


def test_the_same_shift_whole_gives_the_same_answers_as_without_the_rules():
    check(shift(30, seed=7))


@pytest.mark.slow
@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**16), st.floats(0.005, 0.08), st.integers(0, 2**16))
def test_any_few_percent_lost_keep_windows_and_on_call_operators_exact(shift_seed, share, loss_seed):
    check(lose(shift(20, seed=shift_seed), share, seed=loss_seed))
