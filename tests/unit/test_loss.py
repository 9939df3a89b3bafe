"""A simulated shift replayed with a few percent of its lines lost, through the worker's own
stages (tests/unit/panel.py), against an expectation computed here from the lines that
remain (sharing no code with tables/):

- every window counts exactly the remaining lines (tests/integration/expectations.py);
- an operator is on call exactly when its latest CONNECT has no later end of that call,
  and it has neither left every queue nor logged off since (README, "Order, loss,
  duplicates"); each queue's on-call and available counts follow.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dev.simulate import CallCenterSimulation
from tables.callcenter.queue_log import to_line
from tables.callcenter.windows import WindowAgg, metrics_view
from tests.integration.expectations import expect
from tests.unit.panel import Panel

START = 1_700_000_000.0
ENDS = {"COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"}


def shift(minutes: float, seed: int) -> list[str]:
    simulation = CallCenterSimulation(seed=seed, start=START, rate=4.0)
    return [to_line(r) for r in simulation.advance(START + minutes * 60)]


def lose(lines: list[str], share: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [line for line in lines if rng.random() >= share]


def expected_on_call(lines: list[str]) -> dict[str, bool]:
    """agent -> on a call at the end, by the rule above, replaying the lines naively."""
    current: dict[str, str | None] = {}
    queues: dict[str, set[str]] = {}
    for line in lines:
        _, callid, queue, agent, event = line.split("|")[:5]
        if event in ("ADDMEMBER", "CONNECT", "PAUSE", "UNPAUSE") and queue != "NONE":
            queues.setdefault(agent, set()).add(queue)  # what proves a membership
        if event == "CONNECT":
            current[agent] = callid
        elif event in ENDS and current.get(agent) == callid:
            current[agent] = None
        elif event == "REMOVEMEMBER":
            queues.setdefault(agent, set()).discard(queue)
            if not queues[agent]:
                current[agent] = None
        elif event == "AGENTLOGOFF":
            current[agent] = None
    return {agent: callid is not None for agent, callid in current.items()}


def replay(lines: list[str]) -> Panel:
    return Panel(START).feed(*lines)


def windows_of(panel: Panel, queue: str) -> list[dict]:
    found = [(key, w) for key, w in panel.windows.items() if isinstance(w, WindowAgg) and key.rsplit("|", 1)[0] == queue]
    return [metrics_view(w) for _, w in sorted(found)]


def check(remaining: list[str]) -> None:
    panel = replay(remaining)
    on_call = expected_on_call(remaining)
    for agent, talking in on_call.items():
        op = panel.operators.get(agent)
        assert op is not None and (op.state == "on_call") == talking, (agent, op and op.state, op and op.calls)
    reference = expect(remaining)
    for queue in sorted(reference.queues):
        assert windows_of(panel, queue) == reference.window_views(queue), queue
        counts = panel.counts(queue)
        members = [agent for agent, op in panel.operators.items() if queue in op.queues and op.agent_logged_in]
        talking = sum(1 for agent in members if on_call.get(agent))
        assert counts["on_call"] == talking, (queue, counts)
        assert counts["available"] == counts["logged_in"] - len(
            {a for a in members if not on_call.get(a) and all_paused(panel, a, queue)}) - talking, (queue, counts)


def all_paused(panel: Panel, agent: str, queue: str) -> bool:
    return panel.operators[agent].queues[queue].paused


def test_a_shift_with_3_percent_of_its_lines_lost_shows_the_operators_the_evidence_shows():
    lines = shift(60, seed=20261129)
    remaining = lose(lines, 0.03, seed=1)
    assert len(lines) - len(remaining) > 100  # enough lost to matter
    check(remaining)


def test_the_same_shift_whole_gives_the_same_answers_as_without_the_rules():
    check(shift(30, seed=7))


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**16), st.floats(0.005, 0.08), st.integers(0, 2**16))
def test_any_few_percent_lost_keep_windows_and_on_call_operators_exact(shift_seed, share, loss_seed):
    check(lose(shift(20, seed=shift_seed), share, seed=loss_seed))
