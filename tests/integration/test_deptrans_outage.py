"""A KRT outage of a minute at a steady trickle of statuses: the worker keeps only each
driver's newest, its token expires meanwhile and sends left in flight are given up
(`KRT_LEASE_S`); when KRT is back, each driver's newest status goes, once, and nothing older."""

from __future__ import annotations

import time

import pytest

from dev.personal import license_for
from tests.harness import Worker, free_port, http_get, wait_until
from tests.integration.test_deptrans import KREMLIN, Double, Sandbox, driver, metric, status

pytestmark = pytest.mark.integration

OUTAGE_S = 60.0  # the token (30 s) dies within it; two minutes cost the suite a minute more
DRIVERS = ("o1", "o2", "o3")
WORKER_ENV = {"KRT_RETRY_FIRST_S": 0.5, "KRT_RETRY_MAX_S": 5, "KRT_BREAKER_FAILURES": 3, "KRT_BREAKER_MAX_S": 10,
              "KRT_TIMEOUT_S": 2, "KRT_LEASE_S": 10}


def test_a_two_minute_outage_is_survived_and_only_each_drivers_newest_status_is_sent_after_it(deployment):
    sandbox = Sandbox(deployment.workdir)
    personal_port = free_port()
    personal = Double(deployment.workdir, "personal", "dev.personal", "--port", str(personal_port))
    wait_until(lambda: http_get(f"http://127.0.0.1:{personal_port}/stats")[0] == 200, 30, 0.2, "personal to listen")
    sandbox.tell("/tokens/ttl", {"ttl_s": 30})  # the token dies during the outage
    worker = Worker(deployment, 1, KRT_URL=f"http://switchboard:switchboard@127.0.0.1:{sandbox.port}",
                    PERSONAL_URL=f"http://127.0.0.1:{personal_port}").start().wait_ready()
    try:
        now = time.time()
        for park in DRIVERS:
            driver(deployment, park, f"pd-{park}", ["econom"], KREMLIN, now)  # fresh throughout (600 s)
        time.sleep(1.0)
        status(deployment, "o1", "online", now)
        wait_until(lambda: sandbox.statuses(license_for("pd-o1")), 30, 0.2, "a first status before the outage")
        sandbox.tell("/delay", {"delay_s": 5.0, "endpoint": "status"})  # the next send hangs until the cut
        status(deployment, "o1", "offline", now + 1)
        time.sleep(1.0)
        sandbox.tell("/down", {"down": True})
        sandbox.tell("/delay", {"delay_s": 0.0, "endpoint": "status"})
        newest: dict[str, tuple[str, float]] = {}
        began = time.monotonic()
        step = 0
        while time.monotonic() - began < OUTAGE_S:  # every driver changes every few seconds meanwhile
            for park in DRIVERS:
                value = ("online", "offline")[step % 2]
                at = now + 10 + step
                status(deployment, park, value, at)
                newest[park] = (value, at)
            step += 1
            time.sleep(4.0)
        assert metric(worker, "switchboard_deptrans_krt_breaker_open") == 1
        failed = metric(worker, 'switchboard_deptrans_sends_total{outcome="failed"}')
        sandbox.tell("/down", {"down": False})

        def all_newest_sent() -> bool:
            return all(any(s["at"] == pytest.approx(at) for s in sandbox.statuses(license_for(f"pd-{park}")))
                       for park, (_, at) in newest.items())

        wait_until(all_newest_sent, 60, 0.5, "each driver's newest status at KRT")
        time.sleep(5.0)  # nothing else follows
        for park, (value, at) in newest.items():
            after = [s for s in sandbox.statuses(license_for(f"pd-{park}")) if s["at"] > now + 1]
            assert [(s["status"], s["at"]) for s in after] == [(value, pytest.approx(at))], park
        assert failed >= 3  # it did try, and backed off (a handful of tries in a minute, not hundreds)
        assert failed < 200
        tokens = http_get(sandbox.control + "/state")[1]["tokens_issued"]
        assert tokens >= 2  # a new token after the outage: the old one had expired
    finally:
        worker.stop()
        personal.stop()
        sandbox.stop()
