"""Seed 003's live push across workers: a status change applied by one worker reaches the
WebSocket clients of every worker, and `GET /operators` on either shows the CRM status of
operators whose partitions the other owns."""

from __future__ import annotations

import json
import signal
import time
from urllib.parse import quote

import pytest

from tests.harness import MANAGER, Pushes, http_get, http_request, produce, wait_until

pytestmark = pytest.mark.integration

OPERATORS = [f"PJSIP/{n}" for n in range(2001, 2013)]  # enough for both workers' partitions


def test_every_change_reaches_the_clients_of_every_worker(deployment, workers):
    first, second = workers
    clients = [Pushes(w.url.replace("http://", "ws://") + f"/ws/operators?token={MANAGER}") for w in workers]
    for n, operator in enumerate(OPERATORS):
        asked = http_request("POST", f"{first.url}/operators/{quote(operator, safe='')}/status",
                             {"status": "TRAINING", "reason": f"group {n}"}, token=MANAGER)
        assert asked[0] == 202, asked
    value = {"operator": OPERATORS[0], "registered": False, "time": time.time() + 1}
    produce(deployment.broker.bootstrap, deployment.topic("sip-registrations"),
            [(OPERATORS[0].encode(), json.dumps(value).encode())])
    for client in clients:
        wait_until(lambda c=client: all("TRAINING" in c.statuses(o) for o in OPERATORS), 30, 0.3,
                   "a push of every operator's change on both workers")
        wait_until(lambda c=client: "OFFLINE" in c.statuses(OPERATORS[0]), 30, 0.3, "the endpoint's push too")

    def listed() -> dict:
        status, body = http_get(second.url + "/operators", MANAGER)
        return {o["id"]: o.get("crm_status") for o in body["operators"]} if status == 200 else {}

    wait_until(lambda: all(listed().get(o) in ("TRAINING", "OFFLINE") for o in OPERATORS), 30, 0.3,
               "GET /operators on one worker to list the CRM status of all")
    owners = {http_get(f"{w.url}/operators/{quote(o, safe='')}", MANAGER)[0] for w in workers for o in OPERATORS}
    assert owners == {200}


def test_a_stopping_worker_closes_its_sockets_going_away_and_stops_by_itself(workers):
    _, second = workers
    client = Pushes(second.url.replace("http://", "ws://") + f"/ws/operators?token={MANAGER}")
    second.process.send_signal(signal.SIGTERM)  # a client still connected must not hold the stop
    wait_until(lambda: client.close_code is not None, 30, 0.2, "the socket closed by the stopping worker")
    assert client.close_code == 1001  # going away: a client reconnects to another worker
    assert second.process.wait(30) is not None
