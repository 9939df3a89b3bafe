"""Workers come and go under load on every domain, on the three-node cluster: 3 -> 4 -> 2 (one
added, one stopped, one SIGKILLed). Afterwards every count and window equals the reference,
every acknowledged command is reflected, nothing is counted twice, and every fleet-wide answer
is complete from every worker left."""

from __future__ import annotations

import signal
import time

import pytest

from app.ingest import record_key
from tests.cluster.load import Load, tables_agree
from tests.cluster.test_broker_loss import WORKER_ENV, _report  # noqa: F401  (the same settings)
from tests.harness import Worker, http_get, produce
from tests.integration.traffic import queue_log_lines

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


def test_three_workers_then_four_then_two_lose_nothing(cluster, krt, on_cluster):
    deployment = on_cluster
    workers = [Worker(deployment, n).start() for n in (1, 2, 3)]
    try:
        for w in workers:
            w.wait_ready(120)
        lines = queue_log_lines(minutes=20, rate=15, seed=300)
        first, rest = lines[: len(lines) // 2], lines[len(lines) // 2:]
        produce(cluster.bootstrap, deployment.topic("qapp-events"), [(record_key(x), x.encode()) for x in first])
        load = Load(deployment, lambda: workers, rest, sent_before=first, duration_s=30, krt=krt)
        load.prepare()
        time.sleep(1.0)
        load.start()
        time.sleep(5)
        joined = Worker(deployment, 4).start()
        workers.append(joined)
        started = time.monotonic()
        joined.wait_ready(120)  # a fourth worker becomes ready while the others keep working
        ready_after_s = time.monotonic() - started
        ready_during = [http_get(w.url + "/ready", timeout=5)[0] for w in workers[:3]]
        time.sleep(3)
        workers[0].stop()  # SIGTERM: a rolling restart's stop
        time.sleep(4)
        workers[1].kill(signal.SIGKILL)
        survivors = [workers[2], workers[3]]
        load.join()
        figures = load.check_all(survivors)
        _report("workers_3_4_2", {"fourth_ready_s": round(ready_after_s, 1), "ready_while_joining": ready_during,
                                  **figures})
        assert all(code == 200 for code in ready_during), f"a worker was not ready while the fourth joined: {ready_during}"
        for w in workers:
            w.stop()
        # the SIGKILLed one may hold writes Kafka never acknowledged: only the workers stopped
        assert tables_agree([w for w in workers if w is not workers[1]]) == []
    finally:
        for w in workers:
            w.stop()
