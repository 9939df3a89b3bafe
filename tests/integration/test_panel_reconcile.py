"""The panel reconciled against Asterisk's QueueStatus (SPEC.md "Staleness"), on the real broker.

A worker with AMI_URL pointing at the AMI double (dev/ami_double.py, a subprocess speaking
AMI over TCP); queue_log lines go in on `qapp-events`. Where queue_log lost a line, the
double says otherwise, and the panel follows it after two answers (AMI_RECONCILE_S=1 here):
a member the log never added, one it never removed, a pause it lost, a call waiting that it
never logged, one that left without a word. Each repair is counted and visible.
"""

from __future__ import annotations

import re
import time
from typing import Optional
from urllib.parse import quote

import pytest

from app.ingest import record_key
from tests.harness import MANAGER, AmiDouble, Worker, http_get, http_request, produce, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(deployment):
    double = AmiDouble(deployment.workdir)
    worker = Worker(deployment, 1, AMI_URL=double.ami_url, AMI_RECONCILE_S="1").start().wait_ready()
    try:
        yield deployment, worker, double
    finally:
        worker.stop()
        double.stop()


def queue_log(deployment, *lines: str, ago: float = 0.0) -> None:
    now = time.time() - ago
    stamped = [f"{now + i * 0.001:.3f}|{line}" for i, line in enumerate(lines)]
    produce(deployment.broker.bootstrap, deployment.topic("qapp-events"), [(record_key(s), s.encode()) for s in stamped])


def queue(worker: Worker, name: str) -> Optional[dict]:
    status, body = http_get(f"{worker.url}/queues/{quote(name, safe='')}/status", MANAGER)
    return body if status == 200 else None


def operator(worker: Worker, name: str) -> Optional[dict]:
    status, body = http_get(f"{worker.url}/operators/{quote(name, safe='')}", MANAGER)
    return body if status == 200 else None


def repairs(worker: Worker, kind: str) -> float:
    _, text = http_get(worker.url + "/metrics")
    found = re.search(rf'^switchboard_staleness_resets_total\{{kind="{kind}"\}} (\S+)$', str(text), re.M)
    return float(found.group(1)) if found else 0.0


def test_a_member_the_log_never_added_is_added_as_asterisk_has_it_and_counted(stack):
    deployment, worker, double = stack
    before = repairs(worker, "ami_member_added")
    double.control("/members", {"queue": "recon-a", "interface": "PJSIP/2101", "name": "Dora"})
    view = wait_until(lambda: (o := operator(worker, "Dora")) and o["queues"] == ["recon-a"] and o, 30, 0.3,
                      "Dora in recon-a on the panel")
    assert (view["state"], view["paused"]) == ("available", False)
    assert repairs(worker, "ami_member_added") == before + 1
    wait_until(lambda: (operator(worker, "Dora") or {}).get("crm_status") == "ONLINE", 30, 0.3,
               "Dora signed in, as the call center tells the CRM")
    assert wait_until(lambda: (queue(worker, "recon-a") or {}).get("operators", {}).get("logged_in") == 1, 30, 0.3,
                      "the queue counting her")
    assert (operator(worker, "PJSIP/2101") or {}).get("id") == "Dora"  # who is who, from the same answer


def test_a_member_asterisk_no_longer_has_is_removed(stack):
    deployment, worker, double = stack
    double.control("/members", {"queue": "recon-b", "interface": "SIP/2102"})
    queue_log(deployment, "NONE|recon-b|SIP/2102|ADDMEMBER|", "NONE|recon-b|SIP/2103|ADDMEMBER|")
    wait_until(lambda: (queue(worker, "recon-b") or {}).get("operators", {}).get("logged_in") == 1, 30, 0.3,
               "SIP/2103 removed (Asterisk never had it), SIP/2102 kept")
    assert (operator(worker, "SIP/2103") or {})["queues"] == []
    assert (operator(worker, "SIP/2102") or {})["queues"] == ["recon-b"]
    assert repairs(worker, "ami_member_removed") >= 1


def test_a_pause_the_log_lost_is_taken_from_asterisk(stack):
    deployment, worker, double = stack
    double.control("/members", {"queue": "recon-c", "interface": "SIP/2104"})
    queue_log(deployment, "NONE|recon-c|SIP/2104|ADDMEMBER|")
    wait_until(lambda: (operator(worker, "SIP/2104") or {}).get("crm_status") == "ONLINE", 30, 0.3, "SIP/2104 online")
    status, answer = http_request("POST", f"{worker.url}/operators/SIP%2F2104/status",
                                  {"status": "TRAINING", "reason": "training"}, token=MANAGER)
    assert status == 202, answer
    wait_until(lambda: double.member("SIP/2104", "recon-c")["paused"], 30, 0.3, "the CRM to pause SIP/2104 in Asterisk")
    # queue_log's PAUSE line of it is lost: the panel takes the pause from Asterisk
    view = wait_until(lambda: (o := operator(worker, "SIP/2104")) and o["paused"] and o, 30, 0.3, "SIP/2104 paused")
    assert view["pause_reason"] == "training"
    assert repairs(worker, "ami_pause_set") >= 1


def test_a_call_waiting_that_the_log_never_had_waits_on_the_panel_and_counts_as_entered(stack):
    deployment, worker, double = stack
    double.control("/entries", {"queue": "recon-d", "uniqueid": "1800000000.4242", "callerid": "+79990002424",
                                "wait_s": 40})
    status = wait_until(lambda: (q := queue(worker, "recon-d")) and q["calls_waiting"] == 1 and q, 30, 0.3,
                        "the call waiting in recon-d")
    assert status["longest_wait_s"] >= 40
    assert status["last_15m"]["entered"] == 1  # it did enter: the log lost it
    assert repairs(worker, "ami_call_found") >= 1
    double.control("/entries", {"queue": "recon-d", "uniqueid": "1800000000.4242"}, method="DELETE")
    wait_until(lambda: (queue(worker, "recon-d") or {}).get("calls_waiting") == 0, 30, 0.3, "the call gone")
    after = queue(worker, "recon-d")
    assert after is not None and after["last_15m"]["abandoned"] == 0 and after["last_15m"]["answered"] == 0
    assert repairs(worker, "ami_call_gone") >= 1


def test_a_call_the_log_has_waiting_and_asterisk_not_is_lost_without_a_window_fact(stack):
    deployment, worker, double = stack
    double.control("/members", {"queue": "recon-e", "interface": "SIP/2105"})
    queue_log(deployment, "1800000000.5151|recon-e|NONE|ENTERQUEUE||+79990005151|1")  # its end lost
    wait_until(lambda: (queue(worker, "recon-e") or {}).get("calls_waiting") == 0, 30, 0.3, "the call lost")
    status = queue(worker, "recon-e")
    assert status is not None and (status["last_15m"]["entered"], status["last_15m"]["unanswered"]) == (1, 0)


def test_what_agrees_is_left_alone(stack):
    deployment, worker, double = stack
    double.control("/members", {"queue": "recon-f", "interface": "SIP/2106"})
    queue_log(deployment, "NONE|recon-f|SIP/2106|ADDMEMBER|")
    wait_until(lambda: (queue(worker, "recon-f") or {}).get("operators", {}).get("logged_in") == 1, 30, 0.3,
               "SIP/2106 in recon-f")
    kinds = ("ami_member_added", "ami_member_removed", "ami_pause_set", "ami_call_found", "ami_call_gone")
    before = [repairs(worker, k) for k in kinds]
    time.sleep(3.5)  # three answers
    assert [repairs(worker, k) for k in kinds] == before
