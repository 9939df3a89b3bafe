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


def test_internal_endpoints_are_for_services_only(worker):
    assert http_get(worker.url + "/internal/cc/queues", MANAGER)[0] == 403
    assert http_get(worker.url + "/internal/cc/queues", SERVICE)[0] == 200


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


def test_dashboard_and_its_static_files_are_served_without_a_token(worker):
    with urllib.request.urlopen(worker.url + "/") as resp:
        assert resp.status == 200 and b"/static/dashboard.js" in resp.read()
    with urllib.request.urlopen(worker.url + "/static/dashboard.js") as resp:
        assert resp.status == 200 and len(resp.read()) > 1000


def test_ended_calls_past_retention_leave_a_tombstone_on_call_status(deployment, worker):
    def tombstone():
        records = consume_all(deployment.broker.bootstrap, deployment.topic("call-status"), idle_s=1.0)
        c2 = [value for key, value in records if key == b"c-2"]
        assert c2 and c2[0] is not None and c2[-1] is None, c2  # its status first, then the tombstone
        assert any(key == b"c-1" and value is not None for key, value in records)  # still waiting: kept
        return True

    wait_until(tombstone, 60, 1.0, "the abandoned call's tombstone")
