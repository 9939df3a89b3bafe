"""Test traffic: simulated queue_log lines ending at `now`, written the way Asterisk writes them."""

from __future__ import annotations

import time

from dev.simulate import CallCenterSimulation
from tables.callcenter.queue_log import to_line


def queue_log_lines(minutes: float, rate: float, seed: int, end: float | None = None) -> list[str]:
    end = time.time() if end is None else end
    sim = CallCenterSimulation(seed=seed, start=end - minutes * 60, rate=rate)
    return [to_line(r) for r in sim.advance(end)]
