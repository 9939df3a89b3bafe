"""Seed 003's scenarios on the real broker: a worker, the AMI double (dev/ami_double.py, a
subprocess speaking AMI over TCP), a WebSocket client on /ws/operators, the HTTP API.

Each test has its own operators; the double knows them as members of `support` (strict:
a QueuePause for anyone else is refused, as Asterisk would).
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional
from urllib.parse import quote

import pytest

from app.ingest import record_key
from tests.harness import MANAGER, AmiDouble, Pushes, Worker, http_get, http_request, produce, wait_until

pytestmark = pytest.mark.integration

OPERATOR = "test-operator-token"
MEMBERS = ",".join(f"support:SIP/{n}" for n in range(1001, 1013))


@pytest.fixture(scope="module")
def stack(deployment):
    double = AmiDouble(deployment.workdir, MEMBERS)
    # the panel's own reconciliation is tested in test_panel_reconcile.py: here the double's
    # members are the CRM's, never logged in queue_log
    worker = Worker(deployment, 1, AMI_URL=double.ami_url, AMI_RECONCILE_S="2", AMI_RETRY_MAX_S="1",
                    AMI_RECONCILE_PANEL="false").start().wait_ready()
    pushes = Pushes(worker.url.replace("http://", "ws://") + f"/ws/operators?token={MANAGER}")
    try:
        yield deployment, worker, double, pushes
    finally:
        worker.stop()
        double.stop()


def crm(worker: Worker, operator: str) -> Optional[dict]:
    status, body = http_get(f"{worker.url}/operators/{quote(operator, safe='')}", MANAGER)
    return body if status == 200 else None


def wait_crm(worker: Worker, operator: str, status: str, reason: Optional[str] = None) -> dict:
    def reached() -> Optional[dict]:
        view = crm(worker, operator)
        if view and view.get("crm_status") == status and (reason is None or view["crm_reason"] == reason):
            return view
        return None
    return wait_until(reached, 30, 0.2, f"{operator} to be {status} ({reason}) in the CRM; last: {crm(worker, operator)}")


def register(deployment, operator: str, registered: bool) -> None:
    value = {"operator": operator, "endpoint": operator, "registered": registered, "time": time.time()}
    produce(deployment.broker.bootstrap, deployment.topic("sip-registrations"), [(operator.encode(), json.dumps(value).encode())])


def queue_log(deployment, *lines: str) -> None:
    now = time.time()
    stamped = [f"{now + i * 0.001:.3f}|{line}" for i, line in enumerate(lines)]
    produce(deployment.broker.bootstrap, deployment.topic("qapp-events"), [(record_key(s), s.encode()) for s in stamped])


def set_status(worker: Worker, operator: str, status: str, reason: str = "", token: str = OPERATOR) -> tuple[int, Any]:
    return http_request("POST", f"{worker.url}/operators/{quote(operator, safe='')}/status",
                        {"status": status, "reason": reason}, token=token)


def test_sip_login_sets_the_operator_online_and_unpaused_in_asterisk(stack):
    deployment, worker, double, pushes = stack
    register(deployment, "SIP/1001", True)
    view = wait_crm(worker, "SIP/1001", "ONLINE", "Auto: SIP registered")
    assert view["state"] == "offline"  # telephony: no queue_log line of it yet, side by side
    wait_until(lambda: double.pauses("SIP/1001"), 20, 0.2, "Asterisk to be told")
    assert double.pauses("SIP/1001")[-1]["Paused"] == "false"
    wait_until(lambda: "ONLINE" in pushes.statuses("SIP/1001"), 20, 0.2, "the push of SIP/1001 going online")


def test_a_status_a_person_sets_is_stored_pushed_and_pauses_asterisk(stack):
    deployment, worker, double, pushes = stack
    status, answer = set_status(worker, "SIP/1002", "BREAK", "lunch")
    assert status == 202 and answer["status"] == "BREAK", answer
    wait_crm(worker, "SIP/1002", "BREAK", "lunch")
    wait_until(lambda: double.member("SIP/1002")["paused"], 20, 0.2, "Asterisk to pause SIP/1002")
    assert double.pauses("SIP/1002")[-1] == {"Interface": "SIP/1002", "Paused": "true", "Reason": "lunch"}
    wait_until(lambda: "BREAK" in pushes.statuses("SIP/1002"), 20, 0.2, "the push of the break")
    set_status(worker, "SIP/1002", "ONLINE", token=MANAGER)
    wait_until(lambda: not double.member("SIP/1002")["paused"], 20, 0.2, "only ONLINE unpauses")


def test_a_call_is_on_call_in_the_crm_only_and_its_end_is_wrap_up_then_logout_pauses(stack):
    deployment, worker, double, _ = stack
    queue_log(deployment, "MANAGER|support|SIP/1003|ADDMEMBER|")
    wait_crm(worker, "SIP/1003", "ONLINE", "logged in")
    wait_until(lambda: double.pauses("SIP/1003"), 20, 0.2, "the login's unpause")
    told = len(double.pauses("SIP/1003"))
    queue_log(deployment, "c-1003|support|NONE|ENTERQUEUE||+79990001003|1", "c-1003|support|SIP/1003|CONNECT|4|u1|2")
    on_call = wait_crm(worker, "SIP/1003", "ON_CALL")
    assert on_call["state"] == "on_call" and on_call["current_call"]["callid"] == "c-1003"  # both levels agree
    queue_log(deployment, "c-1003|support|SIP/1003|COMPLETEAGENT|4|95|1")
    wrap = wait_crm(worker, "SIP/1003", "WRAP_UP")
    assert wrap["crm_calls_today"] == 1 and wrap["calls_today"] == 1
    time.sleep(1.0)
    assert len(double.pauses("SIP/1003")) == told  # ON_CALL is local; Asterisk's wrapuptime does its own
    queue_log(deployment, "MANAGER|support|SIP/1003|REMOVEMEMBER|")
    wait_crm(worker, "SIP/1003", "OFFLINE", "offline")
    wait_until(lambda: len(double.pauses("SIP/1003")) > told, 20, 0.2, "the logout's pause")
    assert double.pauses("SIP/1003")[-1]["Paused"] == "true"


def known_interfaces(worker: Worker) -> float:
    _, text = http_get(worker.url + "/metrics")
    line = next((x for x in str(text).splitlines() if x.startswith("switchboard_ami_known_interfaces ")), "x 0")
    return float(line.split()[1])


def test_a_named_member_is_paused_at_its_interface_and_found_by_either_name(stack):
    deployment, worker, double, _ = stack
    known = known_interfaces(worker)
    double.control("/members", {"queue": "support", "interface": "PJSIP/1101", "name": "Alice"})
    # queue_log says "Alice"; Asterisk's QueueMemberAdded (and QueueStatus) say where she is
    wait_until(lambda: known_interfaces(worker) > known, 20, 0.2, "the worker to learn Alice's interface")
    queue_log(deployment, "MANAGER|support|Alice|ADDMEMBER|")
    wait_crm(worker, "Alice", "ONLINE", "logged in")
    wait_until(lambda: double.pauses("PJSIP/1101"), 20, 0.2, "the login's unpause at Alice's interface")
    assert double.pauses("Alice") == []  # never to the name: Asterisk refuses an interface it does not know
    status, answer = set_status(worker, "PJSIP/1101", "BREAK", "coffee")  # by its interface
    assert status == 202 and answer["operator"] == "Alice", answer
    wait_crm(worker, "Alice", "BREAK", "coffee")
    wait_until(lambda: double.member("PJSIP/1101")["paused"], 20, 0.2, "Asterisk to pause Alice at PJSIP/1101")
    view = crm(worker, "PJSIP/1101")
    assert view is not None and (view["id"], view["crm_status"], view["queues"]) == ("Alice", "BREAK", ["support"])
    register(deployment, "PJSIP/1101", False)  # an endpoint's news, by the interface
    wait_crm(worker, "Alice", "OFFLINE", "Auto: SIP not registered")


def test_an_endpoint_lost_sets_offline_automatically_and_its_return_sets_online(stack):
    deployment, worker, double, _ = stack
    register(deployment, "SIP/1004", True)
    wait_crm(worker, "SIP/1004", "ONLINE")
    register(deployment, "SIP/1004", False)
    wait_crm(worker, "SIP/1004", "OFFLINE", "Auto: SIP not registered")
    wait_until(lambda: double.member("SIP/1004")["paused"], 20, 0.2, "Asterisk to pause the lost endpoint")
    register(deployment, "SIP/1004", True)
    wait_crm(worker, "SIP/1004", "ONLINE", "Auto: SIP registered")
    wait_until(lambda: not double.member("SIP/1004")["paused"], 20, 0.2, "Asterisk to unpause it")


def test_an_endpoint_back_after_a_manual_status_leaves_that_status(stack):
    deployment, worker, _, _ = stack
    register(deployment, "SIP/1005", True)
    wait_crm(worker, "SIP/1005", "ONLINE")
    assert set_status(worker, "SIP/1005", "OFFLINE", "gone home")[0] == 202
    wait_crm(worker, "SIP/1005", "OFFLINE", "gone home")
    register(deployment, "SIP/1005", False)
    register(deployment, "SIP/1005", True)
    time.sleep(2.0)
    assert crm(worker, "SIP/1005")["crm_reason"] == "gone home"  # never back after a person's status


def test_ami_endpoint_events_drive_endpoint_tracking(stack):
    _, worker, double, _ = stack
    double.control("/events", {"Event": "PeerStatus", "Privilege": "system,all", "ChannelType": "SIP",
                               "Peer": "SIP/1006", "PeerStatus": "Registered"})
    wait_crm(worker, "SIP/1006", "ONLINE")
    double.control("/events", {"Event": "PeerStatus", "Privilege": "system,all", "ChannelType": "SIP",
                               "Peer": "SIP/1006", "PeerStatus": "Unregistered"})
    wait_crm(worker, "SIP/1006", "OFFLINE", "Auto: SIP not registered")


def test_ami_down_while_statuses_change_then_back(stack):
    deployment, worker, double, _ = stack
    register(deployment, "SIP/1007", True)
    wait_until(lambda: double.pauses("SIP/1007"), 20, 0.2, "the login's unpause")
    double.control("/down", {"down": True})
    double.control("/disconnect", {})
    for status in ("BREAK", "TRAINING", "MEETING"):
        assert set_status(worker, "SIP/1007", status, status.lower())[0] == 202
    wait_crm(worker, "SIP/1007", "MEETING", "meeting")  # the CRM never waits for Asterisk
    metrics = http_get(worker.url + "/metrics")[1]
    assert 'switchboard_ami_connected 0.0' in metrics
    told = len(double.pauses("SIP/1007"))
    double.control("/down", {"down": False})
    wait_until(lambda: double.member("SIP/1007")["paused"], 30, 0.3, "the newest pause once Asterisk is back")
    after = double.pauses("SIP/1007")[told:]
    assert after[0] == {"Interface": "SIP/1007", "Paused": "true", "Reason": "meeting"}  # only the newest waited
    assert 'switchboard_ami_pause_syncs_total{outcome="retried"}' in http_get(worker.url + "/metrics")[1]


def test_reconciliation_repairs_drift_either_way(stack):
    deployment, worker, double, _ = stack
    register(deployment, "SIP/1008", True)
    wait_until(lambda: double.pauses("SIP/1008"), 20, 0.2, "the login's unpause")
    set_status(worker, "SIP/1009", "BREAK", "coffee")
    wait_until(lambda: double.member("SIP/1009")["paused"], 20, 0.2, "the break's pause")
    double.control("/members", {"queue": "support", "interface": "SIP/1008", "paused": True, "reason": "drift"})
    double.control("/members", {"queue": "support", "interface": "SIP/1009", "paused": False, "reason": ""})
    wait_until(lambda: not double.member("SIP/1008")["paused"] and double.member("SIP/1009")["paused"], 30, 0.3,
               "QueueStatus to be read and the drift repaired")
    repaired = double.pauses("SIP/1009")[-1]
    assert repaired == {"Interface": "SIP/1009", "Paused": "true", "Queue": "support", "Reason": "coffee"}


def test_operators_list_shows_crm_and_telephony_side_by_side(stack):
    deployment, worker, _, _ = stack
    queue_log(deployment, "MANAGER|support|SIP/1010|ADDMEMBER|")
    wait_crm(worker, "SIP/1010", "ONLINE")
    status, body = http_get(worker.url + "/operators?queue=support", MANAGER)
    row = next(o for o in body["operators"] if o["id"] == "SIP/1010")
    assert (row["state"], row["queues"], row["crm_status"]) == ("available", ["support"], "ONLINE")
    assert set(row["crm_time_in_status_today_s"]) == {"ONLINE", "OFFLINE", "PAUSE", "BREAK", "TRAINING", "MEETING",
                                                      "WRAP_UP", "DO_NOT_DISTURB", "ON_CALL"}


@pytest.mark.parametrize("body, token, code", [
    ({"status": "LUNCH"}, OPERATOR, 400),
    ({"status": "BREAK", "reason": "x" * 201}, OPERATOR, 400),
    ({"status": "BREAK", "extra": 1}, OPERATOR, 400),
    ({"status": "BREAK"}, "test-driver-token", 403),
    ({"status": "BREAK"}, None, 401),
], ids=["unknown status", "reason too long", "unknown field", "wrong role", "no token"])
def test_a_bad_status_request_gets_a_clear_4xx(stack, body, token, code):
    _, worker, _, _ = stack
    status, answer = http_request("POST", f"{worker.url}/operators/SIP%2F1011/status", body, token=token)
    assert status == code and set(answer["error"]) == {"code", "message"}, answer


def test_the_push_needs_a_token(stack):
    _, worker, _, _ = stack
    status, answer = http_get(worker.url + "/ws/operators")
    assert status == 401 and answer["error"]["code"] == "unauthorized"
