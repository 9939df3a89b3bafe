"""The HTTP edge: tokens and roles, the one error shape, bad parameters, operations endpoints."""

from __future__ import annotations

import time
import urllib.request

import orjson
import pytest

from tests.harness import MANAGER, SERVICE, consume_all, http_get, produce, wait_until

pytestmark = pytest.mark.integration
OPERATOR = "test-operator-token"
WORKER_ENV = {"CALL_RETENTION_S": 2, "CALL_RETENTION_SWEEP_S": 1}


@pytest.fixture(scope="module", autouse=True)
def seeded(deployment, worker):
    now = time.time()
    # the JSON form of qapp-events, as a push client would send it
    records = [
        {"time": now - 5, "callid": "NONE", "queue": "support", "agent": "SIP/7", "event": "ADDMEMBER", "data": [""]},
        {"time": now - 4, "callid": "c-1", "queue": "support", "agent": "NONE", "event": "ENTERQUEUE",
         "data": ["", "+79160000000", 1]},
        {"time": now - 4, "callid": "c-2", "queue": "support", "agent": "NONE", "event": "ENTERQUEUE",
         "data": ["", "+79160000001", 2]},
        {"time": now - 3, "callid": "c-2", "queue": "support", "agent": "NONE", "event": "ABANDON",
         "data": [2, 2, 1]},
    ]
    produce(deployment.broker.bootstrap, deployment.topic("qapp-events"), [(None, orjson.dumps(r)) for r in records])
    wait_until(lambda: http_get(worker.url + "/queues/support/status", MANAGER)[0] == 200, 60, 0.5, "queue support")


def test_operations_endpoints_need_no_token(worker):
    status, health = http_get(worker.url + "/health")
    assert status == 200 and health["status"] == "ok"
    status, ready = http_get(worker.url + "/ready")
    assert status == 200 and ready["ready"] is True
    status, text = http_get(worker.url + "/metrics")
    assert status == 200 and "switchboard_events_in_total" in text


def test_no_token_is_401_in_the_error_shape(worker):
    status, body = http_get(worker.url + "/queues/status")
    assert status == 401
    assert set(body) == {"error"} and body["error"]["code"] == "unauthorized" and body["error"]["message"]


def test_unknown_token_is_401(worker):
    status, body = http_get(worker.url + "/queues/status", "not-a-token")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


def test_wrong_role_is_403(worker):
    status, body = http_get(worker.url + "/queues/status", OPERATOR)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    assert "manager" in body["error"]["message"]


def test_internal_endpoints_are_for_the_workers_only(worker, deployment):
    assert http_get(worker.url + "/internal/cc/queues", MANAGER)[0] == 403
    assert http_get(worker.url + "/internal/cc/queues", SERVICE)[0] == 403  # a client service is no worker
    assert http_get(worker.url + "/internal/cc/queues", deployment.worker_token)[0] == 200


def test_json_form_of_qapp_events_is_accepted(worker):
    # the records went to any partition: the queue may show before every one of them landed
    def complete():
        status, body = http_get(worker.url + "/queues/support/status", MANAGER)
        assert status == 200
        assert body["calls_waiting"] == 1 and body["operators"]["logged_in"] == 1
        return body

    body = wait_until(complete, 30, 0.2, "the JSON records in the queue's status")
    assert body["current_window"]["entered"] + body["last_15m"]["entered"] >= 1


def test_unknown_queue_is_404(worker):
    status, body = http_get(worker.url + "/queues/no-such-queue/status", MANAGER)
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_bad_range_parameters_are_400(worker):
    status, body = http_get(worker.url + "/queues/support/metrics?since=yesterday", MANAGER)
    assert (status, body["error"]["code"]) == (400, "bad_request") and "since" in body["error"]["message"]
    status, body = http_get(worker.url + "/queues/support/metrics?since=200&until=100", MANAGER)
    assert status == 400


@pytest.mark.parametrize("query", [
    "since=1795342520000000000&until=1795342520000000000",  # nanoseconds: once froze the worker
    "since=NaN", "until=NaN", "since=1e309&until=1e309", "since=-inf", "since=0&until=10",
    f"since={time.time() - 40 * 86400:.0f}",  # more than 31 days
])
def test_out_of_range_and_non_finite_times_are_400_naming_the_parameter(worker, query):
    started = time.monotonic()
    status, body = http_get(f"{worker.url}/queues/support/metrics?{query}", MANAGER, timeout=5)
    assert (status, body["error"]["code"]) == (400, "bad_request"), body
    assert "since" in body["error"]["message"] or "until" in body["error"]["message"]
    assert time.monotonic() - started < 2
    assert http_get(worker.url + "/health", timeout=2)[0] == 200


def raw_http(worker, request: bytes) -> tuple[int, dict, bytes]:
    """Send bytes as they are (what urllib would refuse to send); status, headers, body."""
    import socket

    host, port = worker.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),  # a 10 kB path
    (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000 + b"\r\nConnection: close\r\n\r\n", 400),
    ("GET /очередь HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(), 400),  # raw UTF-8 request line
    (b"POST /queues/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 405),
    (b"DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405),
    (b"GET /queues//status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
    (b"GET /queues/status/extra HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
    (b"GET /static/no-such-file.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
])
def test_errors_aiohttp_raises_before_our_views_have_the_error_shape(worker, request_bytes, status):
    got, headers, body = raw_http(worker, request_bytes)
    assert got == status, body[:300]
    assert headers.get("content-type", "").startswith("application/json"), headers
    error = orjson.loads(body)["error"]
    assert error["code"] and error["message"]
    assert http_get(worker.url + "/health", timeout=2)[0] == 200


def test_a_huge_and_a_null_record_get_dead_letters_that_fit(deployment, worker):
    big = b"1700000000|c-big|support|NONE|ENTERQUEUE||" + b"9" * 1_000_000
    produce(deployment.broker.bootstrap, deployment.topic("qapp-events"), [(b"big", big), (b"null", None)])

    def letters():
        got = [orjson.loads(v) for _, v in consume_all(deployment.broker.bootstrap, deployment.topic("dead-letters"))]
        mine = {letter["key"]: letter for letter in got if letter["key"] in ("big", "null")}
        return len(mine) == 2 and mine

    mine = wait_until(letters, 30, 0.5, "dead letters of the huge and the null record")
    huge = mine["big"]
    assert huge["reason"].startswith("oversized record") and huge["value_size"] == len(big) and huge["value_truncated"]
    assert len(huge["value_b64"]) < 32_000 and huge["value_sha256"]
    null = mine["null"]
    assert null["reason"] == "empty value" and null["value"] is None and null["value_b64"] is None


def test_dashboard_and_its_static_files_are_served_without_a_token(worker):
    with urllib.request.urlopen(worker.url + "/") as resp:
        assert resp.status == 200 and b'<script type="module" src="/static/main.js">' in resp.read()
    for module in ("main", "config", "dom", "state", "poll", "queues", "operators", "charts", "health"):
        with urllib.request.urlopen(f"{worker.url}/static/{module}.js") as resp:  # a module needs a JS type
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/javascript")
            assert len(resp.read()) > 300


def test_queues_status_says_the_limits_behind_its_figures(worker):
    status, body = http_get(worker.url + "/queues/status", MANAGER)
    assert status == 200 and body["limits"] == {"sl_threshold_s": 20.0, "stale_after_s": 30.0, "window_s": 60}


def test_ended_calls_past_retention_leave_a_tombstone_on_call_status(deployment, worker):
    def tombstone():
        records = consume_all(deployment.broker.bootstrap, deployment.topic("call-status"), idle_s=1.0)
        c2 = [value for key, value in records if key == b"c-2"]
        assert c2 and c2[0] is not None and c2[-1] is None, c2  # its status first, then the tombstone
        assert any(key == b"c-1" and value is not None for key, value in records)  # still waiting: kept
        return True

    wait_until(tombstone, 60, 1.0, "the abandoned call's tombstone")
