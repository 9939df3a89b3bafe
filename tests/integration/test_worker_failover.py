"""Two workers, one killed with SIGKILL mid-stream: answers end complete, nothing counted twice."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from app.ingest import record_key
from tests.harness import MANAGER, http_get, produce, wait_until
from tests.integration.expectations import expect
from tests.integration.traffic import queue_log_lines

pytestmark = pytest.mark.integration
WORKER_ENV = {"WINDOW_GRACE_S": 5, "TICK_INTERVAL_S": 0.5}


def _records(lines):
    return [(record_key(line), line.encode()) for line in lines]


def _status(worker):
    status, body = http_get(worker.url + "/queues/status", MANAGER)
    assert status == 200, body
    return body


EARLIER = queue_log_lines(minutes=2, rate=5, seed=7, end=time.time() - 1200)


def test_every_worker_answers_for_all_queues(deployment, workers):
    lines = EARLIER
    produce(deployment.broker.bootstrap, deployment.topic("qapp-events"), _records(lines))
    queues = {line.split("|")[2] for line in lines if line.split("|")[4] == "ENTERQUEUE"}

    for worker in workers:
        body = wait_until(lambda: queues <= {q["queue"] for q in _status(worker)["queues"]} and _status(worker), 60)
        names = [q["queue"] for q in body["queues"]]
        assert len(names) == len(set(names)), "a queue answered twice"


def test_state_is_complete_after_a_worker_is_killed_mid_stream(deployment, workers):
    survivor, victim = workers
    lines = queue_log_lines(minutes=15, rate=15, seed=99)
    topic = deployment.topic("qapp-events")
    first, rest = lines[: len(lines) // 3], lines[len(lines) // 3 :]
    produce(deployment.broker.bootstrap, topic, _records(first))

    feeder = threading.Thread(target=produce, args=(deployment.broker.bootstrap, topic, _records(rest)))
    feeder.start()
    time.sleep(1.0)
    victim.kill(signal.SIGKILL)
    feeder.join(120)
    assert not feeder.is_alive()

    # the earlier test's traffic went into the same queues: the reference replays both
    expected = expect(EARLIER + lines)
    want = {q: (len(expected.waiting[q]), expected.operators(q)) for q in expected.queues}

    def complete(worker=survivor):
        body = _status(worker)
        assert {q["queue"]: (q["calls_waiting"], q["operators"]) for q in body["queues"]} == want
        assert body["stale"] is False, {k: v for k, v in body.items() if k != "queues"}
        return True

    wait_until(complete, 120, 1.0, "the survivor to answer completely")

    since = float(lines[0].split("|")[0]) - 60
    for queue in sorted(expected.queues):
        def windows():
            status, body = http_get(f"{survivor.url}/queues/{queue}/metrics?since={since}&until={time.time()}", MANAGER)
            assert status == 200, body
            want = [w for w in expected.window_views(queue) if w["end"] > since]
            got = body["windows"]
            assert [w["start"] for w in got] == [w["start"] for w in want]
            assert got == want
            return True

        wait_until(windows, 60, 1.0, f"windows of {queue}: exactly once")

    # the killed worker comes back and takes its share again; both answer the same, complete
    victim.start().wait_ready()
    wait_until(lambda: complete(victim) and complete(survivor), 120, 1.0, "answers after the restart")
