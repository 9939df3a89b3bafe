"""The CRM counts every call (seed 003 beside the call center), on the real broker.

The CRM takes calls as the call center's events (`operator-activity`: signed in or out, a
call answered, a call ended), never from snapshots of the operator: a call answered and
ended in one batch, a worker killed between a call's answer and its end, and a whole
day's file replayed all leave the CRM's calls and handle time equal to the telephony's.
Each line goes in through the real `python -m app ingest queue-log`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import pytest

from tests.harness import MANAGER, ROOT, Worker, http_get, wait_until
from tests.integration.traffic import queue_log_lines

pytestmark = pytest.mark.integration
WORKER_ENV = {"TICK_INTERVAL_S": 0.5, "OPERATOR_INTERFACES": '{"Bob": "PJSIP/7202"}'}
ENDS = ("COMPLETEAGENT", "COMPLETECALLER", "TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER")


def ingest(deployment, path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "app", "ingest", "queue-log", str(path)], cwd=ROOT,
                          env=deployment.env(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]


def operator(worker: Worker, name: str) -> Optional[dict]:
    status, body = http_get(f"{worker.url}/operators/{quote(name, safe='')}", MANAGER)
    return body if status == 200 else None


def operators(worker: Worker) -> dict[str, dict]:
    status, body = http_get(f"{worker.url}/operators", MANAGER)
    assert status == 200, body
    return {o["id"]: o for o in body["operators"]}


def counted(worker: Worker, name: str, calls: int) -> dict:
    def done() -> Optional[dict]:
        view = operator(worker, name)
        return view if view and view.get("crm_calls_today") == calls else None
    return wait_until(done, 60, 0.2, f"{name}'s CRM to count {calls} calls; last: {operator(worker, name)}")


def one_call(agent: str, callid: str, now: float, talk: float = 15.0) -> list[str]:
    """A member added, a call entering, answered and ended: four lines, read in one batch."""
    return [f"{now - talk - 30:.3f}|MANAGER|support|{agent}|ADDMEMBER|",
            f"{now - talk - 25:.3f}|{callid}|support|NONE|ENTERQUEUE||+79990007131|1",
            f"{now - talk:.3f}|{callid}|support|{agent}|CONNECT|25|u-{callid}|2",
            f"{now:.3f}|{callid}|support|{agent}|COMPLETECALLER|25|{talk:g}|1"]


def test_a_call_answered_and_ended_in_one_batch_counts_and_lands_in_wrap_up(deployment, worker, tmp_path):
    end = time.time() - 5
    ingest(deployment, tmp_path / "queue_log", one_call("SIP/7131", "c-7131", end))
    view = counted(worker, "SIP/7131", 1)
    assert view["calls_today"] == 1  # the telephony's, side by side
    assert (view["crm_status"], view["crm_reason"]) == ("WRAP_UP", "after call")
    assert 15.0 <= view["crm_aht_s"] <= 15.0 + time.time() - end  # its talk, and the wrap-up so far
    assert view["crm_time_in_status_today_s"]["ON_CALL"] == pytest.approx(15.0, abs=0.01)  # passed through ON_CALL


def test_without_ami_the_configured_interface_finds_the_operator(deployment, worker, tmp_path):
    ingest(deployment, tmp_path / "queue_log", one_call("Bob", "c-7202", time.time() - 5))
    counted(worker, "Bob", 1)
    view = operator(worker, "PJSIP/7202")  # OPERATOR_INTERFACES: {"Bob": "PJSIP/7202"}
    assert view is not None and (view["id"], view["calls_today"], view["crm_calls_today"]) == ("Bob", 1, 1)


def test_a_worker_killed_between_a_calls_answer_and_its_end_counts_the_call(deployment, worker, tmp_path):
    now = time.time() - 5
    answer = one_call("SIP/7132", "c-7132", now, talk=40.0)
    ingest(deployment, tmp_path / "answer", answer[:3])
    wait_until(lambda: (operator(worker, "SIP/7132") or {}).get("crm_status") == "ON_CALL", 60, 0.2,
               "SIP/7132 on the call in the CRM")
    worker.kill()  # SIGKILL: whatever it had not committed is read again
    ingest(deployment, tmp_path / "end", answer[3:])
    worker.start().wait_ready()
    view = counted(worker, "SIP/7132", 1)
    assert (view["calls_today"], view["crm_status"]) == (1, "WRAP_UP")
    assert 40.0 <= view["crm_aht_s"] <= 40.0 + time.time() - now


def metric_total(worker: Worker, name: str, topic_part: str) -> float:
    _, text = http_get(worker.url + "/metrics")
    pattern = re.compile(rf'^{name}\{{[^}}]*topic="[^"]*{re.escape(topic_part)}"[^}}]*\}} (\S+)$', re.M)
    return sum(float(v) for v in pattern.findall(str(text)))


def settled(worker: Worker) -> None:
    """Wait until the worker has consumed everything and taken in nothing for a second."""
    def taken() -> tuple[float, ...]:
        return tuple(metric_total(worker, "switchboard_events_in_total", topic)
                     for topic in ("qapp-events", "operator-activity", "os-events"))

    def quiet() -> bool:  # (stream marks keep flowing on cc-events: time passes)
        before = taken()
        time.sleep(1.0)
        return metric_total(worker, "switchboard_consumer_lag_records", "") == 0 and taken() == before
    wait_until(quiet, 90, 0.2, f"the worker to take in everything; {worker.progress()}")


def test_a_whole_day_replayed_counts_every_call_once_as_the_telephony_does(deployment, worker, tmp_path):
    # short calls, ingested as fast as possible: answers and ends share batches all along
    lines = queue_log_lines(minutes=90, rate=6, seed=20261207, end=time.time() - 2)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    ends: dict[str, int] = {}
    for line in lines:
        when, _, _, agent, event = line.split("|")[:5]
        if event in ENDS and agent != "NONE" and time.strftime("%Y-%m-%d", time.gmtime(float(when))) == today:
            ends[agent] = ends.get(agent, 0) + 1
    assert sum(ends.values()) > 300, "a day worth replaying"
    ingest(deployment, tmp_path / "day", lines)

    def agree() -> dict[str, dict]:
        shown = operators(worker)
        telephony = {name: o["calls_today"] for name, o in shown.items() if name in ends}
        crm = {name: o.get("crm_calls_today") for name, o in shown.items() if name in ends}
        wrong = {name: (ends[name], telephony.get(name), crm.get(name)) for name in ends
                 if not ends[name] == telephony.get(name) == crm.get(name)}
        assert not wrong, f"(file, telephony, CRM) calls today: {wrong}"
        return shown
    first = wait_until(agree, 120, 1.0, "every operator's CRM calls to equal the telephony's and the file's")
    settled(worker)
    told_before = metric_total(worker, "switchboard_events_out_total", "operator-activity")

    ingest(deployment, tmp_path / "day-again", lines)  # the whole day again: every call told again
    settled(worker)
    assert metric_total(worker, "switchboard_events_out_total", "operator-activity") > told_before
    again = agree()
    steady = [name for name in ends if "WRAP_UP" not in (first[name]["crm_status"], again[name]["crm_status"])]
    assert steady, "operators whose handle time stands still (a wrap-up's grows)"
    for name in steady:
        assert again[name]["crm_aht_s"] == pytest.approx(first[name]["crm_aht_s"], abs=0.01), name
