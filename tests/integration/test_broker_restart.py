"""The Kafka broker stopped and started again while queue_log lines are being ingested.

A broker of its own (the session's broker serves every other module). An ingest whose
lines Kafka never acknowledged says so and exits with an error; the upstream then retries
its chunk, as a real one would, so some lines arrive twice: afterwards the answers must
still equal the reference computed from the input (nothing lost, nothing counted twice),
and `/ready` must come back by itself.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.harness import MANAGER, ROOT, Broker, Deployment, Worker, free_port, http_get, wait_until
from tests.integration.expectations import expect
from tests.integration.traffic import queue_log_lines

pytestmark = pytest.mark.integration
# an ingest gives up on a line Kafka has not acknowledged after 5 s (40 s by default)
WORKER_ENV = {"WINDOW_GRACE_S": 5, "TICK_INTERVAL_S": 0.5, "INGEST_DELIVERY_TIMEOUT_S": 5}


@pytest.fixture(scope="module")
def own_broker():
    b = Broker(port=free_port(), directory=Path(tempfile.mkdtemp(prefix="switchboard-restart-kafka-")))
    b.start()
    yield b
    b.stop()


def ingest_in_chunks(deployment: Deployment, lines: list[str], workdir: Path, attempts: list[int]) -> None:
    """Ingest `lines` a chunk at a time; a chunk that fails (no broker) is sent again."""
    size = max(1, len(lines) // 20)
    for n, first in enumerate(range(0, len(lines), size)):
        path = workdir / f"chunk-{n}"
        path.write_text("\n".join(lines[first : first + size]) + "\n")
        deadline = time.monotonic() + 180
        while True:
            attempts.append(n)
            done = subprocess.run([sys.executable, "-m", "app", "ingest", "queue-log", str(path)], cwd=ROOT,
                                  env=deployment.env(), capture_output=True, text=True, timeout=120)
            if done.returncode == 0:
                break
            assert time.monotonic() < deadline, done.stderr[-2000:]
            time.sleep(1.0)
        time.sleep(0.3)


def test_a_broker_restart_under_load_loses_nothing_and_counts_nothing_twice(own_broker, tmp_path):
    deployment = Deployment(broker=own_broker, workdir=tmp_path, extra_env=WORKER_ENV)
    worker = Worker(deployment, 1).start().wait_ready()
    try:
        lines = queue_log_lines(minutes=8, rate=8, seed=20261128)
        attempts: list[int] = []
        feeder = threading.Thread(target=ingest_in_chunks, args=(deployment, lines, tmp_path, attempts))
        feeder.start()
        time.sleep(3.0)  # some chunks are in
        own_broker.stop()
        # down until the upstream has been told a chunk failed and retries it: the
        # duplicates (and the chunk in flight when the broker went) this test is about
        wait_until(lambda: len(attempts) > len(set(attempts)), 120, 0.2, "the upstream to retry a chunk")
        own_broker.start()
        feeder.join(timeout=300)
        assert not feeder.is_alive()
        assert len(attempts) > len(set(attempts)), "the restart should have made the upstream retry a chunk"

        wait_until(lambda: http_get(worker.url + "/ready")[0] == 200, 120, 1.0, "/ready after the restart")
        expected = expect(lines)

        def live_counts_match():
            status, body = http_get(worker.url + "/queues/status", MANAGER)
            got = {q["queue"]: (q["calls_waiting"], q["operators"]) for q in body["queues"]}
            want = {q: (len(expected.waiting[q]), expected.operators(q)) for q in expected.queues}
            return status == 200 and got == want and body

        wait_until(live_counts_match, 120, 1.0, "live counts equal to the reference after the restart")
        since = float(lines[0].split("|")[0]) - 60
        for queue in sorted(expected.queues):
            want = expected.window_views(queue)

            def windows():
                status, body = http_get(f"{worker.url}/queues/{queue}/metrics?since={since}&until={time.time()}", MANAGER)
                return status == 200 and body["windows"] == want and body

            wait_until(windows, 60, 1.0, f"windows of {queue} equal to the reference (each fact once)")
    finally:
        worker.stop()


def test_an_ingest_whose_lines_kafka_never_acknowledged_fails_and_says_so(own_broker, tmp_path):
    deployment = Deployment(broker=own_broker, workdir=tmp_path, extra_env=WORKER_ENV)
    lines = queue_log_lines(minutes=2, rate=8, seed=7)
    path = tmp_path / "queue_log"
    path.write_text("\n".join(lines) + "\n")
    span = float(lines[-1].split("|")[0]) - float(lines[0].split("|")[0])
    ingest = subprocess.Popen(  # paced over ~10 s, so the broker goes away mid-file
        [sys.executable, "-m", "app", "ingest", "queue-log", str(path), "--speed", str(span / 10)],
        cwd=ROOT, env=deployment.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4.0)
        own_broker.stop()
        _, stderr = ingest.communicate(timeout=120)
    finally:
        if ingest.poll() is None:
            ingest.kill()
        own_broker.start()
    assert ingest.returncode == 1, stderr[-2000:]
    assert "not acknowledged by Kafka" in stderr or "send the file again" in stderr, stderr[-2000:]
