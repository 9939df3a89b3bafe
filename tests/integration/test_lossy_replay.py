"""Seed 000's lost events, tried as a user would: an hour of a call center, 3% of its
queue_log lines dropped at random, replayed into a real worker. The live operator counts
of every queue must equal what the remaining lines prove (tests/integration/expectations.py,
`Expected.operators`); before the evidence rules, one or two operators per queue stayed
"on call" for hours."""

from __future__ import annotations

import random
import time

import pytest

from app.ingest import record_key
from tests.harness import MANAGER, Worker, http_get, produce, wait_until
from tests.integration.expectations import expect
from tests.integration.traffic import queue_log_lines

pytestmark = pytest.mark.integration
WORKER_ENV = {"WINDOW_GRACE_S": 5, "TICK_INTERVAL_S": 0.5}


def test_an_hour_with_3_percent_of_its_lines_lost_shows_the_operators_the_evidence_shows(deployment):
    lines = queue_log_lines(minutes=60, rate=4, seed=20261129, end=time.time() - 30)
    rng = random.Random(3)
    remaining = [line for line in lines if rng.random() >= 0.03]
    expected = expect(remaining)
    want = {queue: expected.operators(queue) for queue in expected.queues}
    worker = Worker(deployment, 1).start().wait_ready()
    try:
        produce(deployment.broker.bootstrap, deployment.topic("qapp-events"),
                [(record_key(line), line.encode()) for line in remaining])

        seen: list[dict] = []

        def counts_match() -> bool:
            status, body = http_get(worker.url + "/queues/status", MANAGER)
            seen[:] = [{q["queue"]: q["operators"] for q in body["queues"]}] if status == 200 else []
            return bool(seen) and seen[0] == want

        try:
            wait_until(counts_match, 120, 1.0, "operator counts equal to what the remaining lines prove")
        except AssertionError:
            assert seen and seen[0] == want  # the difference, queue by queue
    finally:
        worker.stop()
