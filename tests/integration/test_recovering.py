"""No confident wrong answer while a partition cannot be answered, and readiness that keeps a
Service alive (issue 23, items 4 and 5).

- A worker restarted on its own data (SIGKILL, then SIGTERM) never answers a default for a key
  it holds while its tables are still recovering: every one-key read answers right or `503
  recovering` with `Retry-After`, from the moment its port answers until it is ready.
- A third worker joining two (3 workers on 4 partitions: the sticky assignor leaves it no
  active partition, or hardly any) becomes ready, the two stay ready throughout the
  rebalance, and every read on any of them meanwhile is right or `503 recovering`.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from urllib.parse import quote

import orjson
import pytest

from tests.harness import MANAGER, SERVICE, Worker, http_request, wait_until

pytestmark = pytest.mark.integration
WORKER_ENV = {"TICK_INTERVAL_S": 0.2}
PHONE, ORDER, NUMBER = "+79165550001", "order-restart", "+74955550001"
OPERATOR = "SIP/9777"
POLL_S = 0.05


def _get(url: str, token: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, orjson.loads(resp.read()), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read() or b"null"), dict(err.headers)


READS = {
    "routing": (f"/routing?phone={quote(PHONE)}", SERVICE, lambda b: b["target"] == "ivr" and b["order_id"] == ORDER),
    "make_call": (f"/make_call?order_id={ORDER}", SERVICE, lambda b: b["source"] == "binding"
                  and b["caller_number"] == NUMBER),
    "operator": (f"/operators/{quote(OPERATOR, safe='')}", MANAGER, lambda b: b.get("crm_status") == "BREAK"),
}


def _hold_bind_and_pause(worker: Worker) -> None:
    """An IVR hold for PHONE, ORDER bound to NUMBER, OPERATOR on a BREAK: each read answers them."""
    assert http_request("POST", worker.url + "/routetoivr", {"phone": PHONE, "order_id": ORDER, "ttl_s": 3600},
                        SERVICE)[0] == 200
    assert http_request("POST", worker.url + "/tel/inbound_number",
                        {"order_id": ORDER, "inbound_number": NUMBER, "ttl_s": 3600}, SERVICE)[0] == 200
    assert http_request("POST", f"{worker.url}/operators/{quote(OPERATOR, safe='')}/status",
                        {"status": "BREAK", "reason": "lunch"}, "test-operator-token")[0] == 202
    for name, (path, token, right) in READS.items():
        wait_until(lambda: (a := _get(worker.url + path, token))[0] == 200 and right(a[1]), 30, 0.2, name)


def _read_all(worker: Worker, seen: dict[str, list]) -> None:
    """Each read once on `worker`, its answer kept in `seen` (a port not answering: nothing kept)."""
    for name, (path, token, _) in READS.items():
        try:
            seen.setdefault(name, []).append(_get(worker.url + path, token))
        except OSError:
            pass


def _wrong(seen: dict[str, list]) -> dict[str, list]:
    """The answers that are neither right nor `503 recovering` with `Retry-After`, by read."""
    wrong = {}
    for name, (_, _, right) in READS.items():
        bad = [(status, body) for status, body, headers in seen.get(name, [])
               if not (status == 200 and right(body))
               and not (status == 503 and body["error"]["code"] == "recovering" and headers.get("Retry-After"))]
        if bad:
            wrong[name] = bad[:3]
    return wrong


def _recovering(seen: dict[str, list]) -> dict[str, int]:
    """How many `503 recovering` answers each read had (for the log)."""
    return {name: sum(status == 503 for status, _, _ in answers) for name, answers in seen.items()}


def _ready(worker: Worker) -> tuple[int, dict]:
    status, body, _ = _get(worker.url + "/ready", MANAGER)
    return status, body


def _answers_until_ready(worker: Worker, timeout: float = 120) -> dict[str, list]:
    """Every answer of each read, polled from the moment the port answers until /ready is 200."""
    seen: dict[str, list] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ready = _ready(worker)[0] == 200
        except OSError:
            time.sleep(POLL_S)
            continue  # not listening yet
        _read_all(worker, seen)
        if ready:
            return seen
        time.sleep(POLL_S)
    raise AssertionError(f"{worker.url} not ready within {timeout} s")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_restarted_worker_answers_right_or_503_recovering_never_a_default(deployment, how):
    worker = Worker(deployment, 1).start().wait_ready()
    try:
        _hold_bind_and_pause(worker)
        worker.kill(how)
        worker = Worker(deployment, 1).start()  # the same DATA_DIR and APP_ID
        seen = _answers_until_ready(worker)
        assert not _wrong(seen), f"answers neither right nor 503 recovering: {_wrong(seen)}"
        for name in READS:
            assert seen.get(name), f"{name}: never answered before ready"
        print(f"{how.name}: before ready, {_recovering(seen)} of {({n: len(a) for n, a in seen.items()})} "
              "answers were 503 recovering, the rest right")
        ready: dict[str, list] = {}
        _read_all(worker, ready)  # ready: every answer right
        assert all(status == 200 for answers in ready.values() for status, _, _ in answers), ready
        assert not _wrong(ready), ready
    finally:
        worker.stop()


def test_a_third_worker_joining_two_becomes_ready_and_the_two_stay_ready_throughout(deployment):
    pair = [Worker(deployment, 1).start(), Worker(deployment, 2).start()]
    third = Worker(deployment, 3)
    try:
        for w in pair:
            w.wait_ready()
        _hold_bind_and_pause(pair[0])
        wait_until(lambda: not _wrong(reads := _reads_on(pair)) and reads, 30, 0.2, "both to answer right")
        third.start()
        watch = _Watch(pair)
        watch.until(lambda: _status(third) == 200, 60, "the third worker to be ready")
        ready_after_s = watch.elapsed()
        watch.until(lambda: not any(_ready(w)[1]["rebalancing"] for w in [*pair, third]), 60, "the rebalance to end")
        not_one = [(when, codes) for when, codes in watch.readiness if 200 not in codes]
        assert not not_one, f"neither of the two was ready at {not_one[:5]}"
        dropped = [(when, codes) for when, codes in watch.readiness if codes != [200, 200]]
        assert not dropped, f"one of the two turned unready during the rebalance: {dropped[:5]}"
        assert not _wrong(watch.seen), f"answers neither right nor 503 recovering: {_wrong(watch.seen)}"
        after = _reads_on([third])  # the third answers every read: itself, from a standby, or by forwarding
        assert not _wrong(after) and all(s == 200 for a in after.values() for s, _, _ in a), after
        print(f"third ready after {ready_after_s:.1f} s ({_ready(third)[1]}); {len(watch.readiness)} polls of the "
              f"pair, 503 recovering answers: {_recovering(watch.seen)}")
    finally:
        for w in [*pair, third]:
            w.stop()


class _Watch:
    """The pair's /ready and every read on each, polled every POLL_S."""

    def __init__(self, pair: list[Worker]) -> None:
        self.pair = pair
        self.started = time.monotonic()
        self.readiness: list[tuple[float, list[int]]] = []  # (seconds since the start, the pair's /ready statuses)
        self.seen: dict[str, list] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def until(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
            self.readiness.append((round(self.elapsed(), 2), [_ready(w)[0] for w in self.pair]))
            for w in self.pair:
                _read_all(w, self.seen)
            time.sleep(POLL_S)


def _reads_on(workers: list[Worker]) -> dict[str, list]:
    seen: dict[str, list] = {}
    for w in workers:
        _read_all(w, seen)
    return seen


def _status(worker: Worker) -> int:
    """`/ready`'s status, 0 while the port does not answer."""
    try:
        return _ready(worker)[0]
    except OSError:
        return 0
