"""A worker restarted on its own data (SIGKILL, then SIGTERM) never answers a default for a key
it holds while its tables are still recovering: every one-key read answers right or `503
recovering` with `Retry-After`, from the moment its port answers until it is ready."""

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


def _answers_until_ready(worker: Worker, timeout: float = 120) -> dict[str, list]:
    """Every answer of each read, polled from the moment the port answers until /ready is 200."""
    seen: dict[str, list] = {name: [] for name in READS}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            ready = _get(worker.url + "/ready", MANAGER)[0] == 200
        except OSError:
            time.sleep(0.05)
            continue  # not listening yet
        for name, (path, token, _) in READS.items():
            try:
                seen[name].append(_get(worker.url + path, token))
            except OSError:
                pass
        if ready:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{worker.url} not ready within {timeout} s")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_restarted_worker_answers_right_or_503_recovering_never_a_default(deployment, how):
    worker = Worker(deployment, 1).start().wait_ready()
    try:
        assert http_request("POST", worker.url + "/routetoivr", {"phone": PHONE, "order_id": ORDER, "ttl_s": 3600},
                            SERVICE)[0] == 200
        assert http_request("POST", worker.url + "/tel/inbound_number",
                            {"order_id": ORDER, "inbound_number": NUMBER, "ttl_s": 3600}, SERVICE)[0] == 200
        assert http_request("POST", f"{worker.url}/operators/{quote(OPERATOR, safe='')}/status",
                            {"status": "BREAK", "reason": "lunch"}, "test-operator-token")[0] == 202
        for name, (path, token, right) in READS.items():
            wait_until(lambda: (a := _get(worker.url + path, token))[0] == 200 and right(a[1]), 30, 0.2, name)
        worker.kill(how)
        worker = Worker(deployment, 1).start()  # the same DATA_DIR and APP_ID
        seen = _answers_until_ready(worker)
        for name, (path, token, right) in READS.items():
            wrong = [(status, body) for status, body, headers in seen[name]
                     if not (status == 200 and right(body))
                     and not (status == 503 and body["error"]["code"] == "recovering" and headers.get("Retry-After"))]
            assert not wrong, f"{name}: answers neither right nor 503 recovering: {wrong[:3]}"
            assert seen[name], f"{name}: never answered before ready"
        for name, (path, token, right) in READS.items():  # ready: every answer right
            status, body, _ = _get(worker.url + path, token)
            assert status == 200 and right(body), (name, status, body)
    finally:
        worker.stop()
