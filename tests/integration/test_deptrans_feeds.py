"""The cache feeds across two workers and a restart: a consumer paging through
`/internal/v1/status/updates`, asking whichever worker, while changes keep arriving and one
worker is killed and started again, gets every change once, in order per key."""

from __future__ import annotations

import signal
import threading
import time

import orjson
import pytest

from tests.harness import SERVICE, http_get, produce

pytestmark = pytest.mark.integration

KEYS = 53
CHANGES = 1500


def _record(n: int) -> tuple[bytes, bytes]:
    pd_id = f"pd-{n % KEYS}"
    return pd_id.encode(), orjson.dumps({"driver_license_pd_id": pd_id, "session_status": "active", "ends_at": 2e9,
                                         "updated_at": 1.8e9 + n, "park_id": "p", "driver_id": "d",
                                         "status_at": None})


def _page(url: str, cursor, limit: int):
    """A page, or None when that worker does not answer (it is starting again)."""
    try:
        status, body = http_get(f"{url}/internal/v1/status/updates?limit={limit}" + (f"&cursor={cursor}" if cursor else ""),
                                SERVICE, timeout=5)
    except OSError:
        return None
    return body if status == 200 else None


def test_paging_across_workers_and_a_restart_never_misses_or_repeats_a_change(deployment, workers):
    first, second = workers
    topic = deployment.topic("deptrans-session-statuses")
    produce(deployment.broker.bootstrap, topic, [_record(n) for n in range(500)])

    def feed() -> None:
        for start in range(500, CHANGES, 50):
            produce(deployment.broker.bootstrap, topic, [_record(n) for n in range(start, start + 50)])
            time.sleep(0.1)

    feeder = threading.Thread(target=feed)
    feeder.start()
    seen: list[float] = []
    cursor = None
    pages = 0
    restarted = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        worker = (first, second)[pages % 2]  # whichever worker answers
        if worker is second and restarted is False and pages >= 20:
            second.kill(signal.SIGKILL)
            second.start()
            restarted = True
        body = _page(worker.url, cursor, 13)
        if body is None:  # a worker starting again: the consumer asks the other one
            body = _page(first.url, cursor, 13)
            assert body is not None
        pages += 1
        cursor = body["cursor"]
        seen += [item["updated_at"] for item in body["items"]]
        if not feeder.is_alive() and not body["more"] and len(seen) >= CHANGES:
            break
    feeder.join()
    assert restarted
    second.wait_ready()
    assert len(seen) == len(set(seen)) == CHANGES  # every change, none twice
    per_key: dict[int, list[float]] = {}
    for at in seen:
        per_key.setdefault(int(at - 1.8e9) % KEYS, []).append(at)
    assert all(times == sorted(times) for times in per_key.values())
    # the restarted worker, from the beginning, hands out the same changes (once it has read them)
    again: list[float] = []
    cursor = None
    deadline = time.monotonic() + 60
    while len(again) < CHANGES and time.monotonic() < deadline:
        body = _page(second.url, cursor, 500)
        if body is None:
            time.sleep(0.2)
            continue
        cursor = body["cursor"]
        again += [item["updated_at"] for item in body["items"]]
        if not body["items"]:
            time.sleep(0.2)
    assert sorted(again) == sorted(seen)
