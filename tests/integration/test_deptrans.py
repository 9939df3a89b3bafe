"""Driver status → KRT on the real broker: one worker, the KRT sandbox and the `personal`
stand-in as processes of their own (dev/krt_sandbox.py, dev/personal.py)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from dev.personal import license_for
from tests.harness import Worker, consume_all, free_port, http_get, http_request, produce, topics_of, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KREMLIN = (55.7520, 37.6175)
PETERSBURG = (59.9343, 30.3351)
WORKER_ENV = {"KRT_RETRY_FIRST_S": 0.2, "KRT_RETRY_MAX_S": 1, "KRT_BREAKER_FAILURES": 2, "KRT_BREAKER_MAX_S": 2,
              "KRT_TIMEOUT_S": 2, "KRT_LEASE_S": 10}


class Double:
    """A stand-in run as `python -m <module>` on free ports."""

    def __init__(self, workdir: Path, name: str, *args: str) -> None:
        self.log = workdir / f"{name}.log"
        self.process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=self.log.open("w"),
                                        stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Sandbox(Double):
    def __init__(self, workdir: Path) -> None:
        self.port, self.control_port = free_port(), free_port()
        super().__init__(workdir, "krt-sandbox", "dev.krt_sandbox", "--port", str(self.port),
                         "--control-port", str(self.control_port), "--token-ttl", "600")
        wait_until(lambda: http_get(self.control + "/state")[0] == 200, 30, 0.2, "the KRT sandbox to listen")

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def statuses(self, licence: str) -> list[dict]:
        """The status reports KRT took for this licence, in order."""
        return [r["body"] for r in http_get(self.control + "/requests")[1]
                if r["endpoint"] == "status" and r["status"] == 200 and r["body"]["license_number"] == licence]

    def tell(self, path: str, body: Any = None) -> None:
        status, answer = http_request("POST", self.control + path, body if body is not None else {})
        assert status == 200, answer


@pytest.fixture(scope="module")
def stack(deployment):
    sandbox = Sandbox(deployment.workdir)
    personal_port = free_port()
    personal = Double(deployment.workdir, "personal", "dev.personal", "--port", str(personal_port))
    wait_until(lambda: http_get(f"http://127.0.0.1:{personal_port}/stats")[0] == 200, 30, 0.2, "personal to listen")
    worker = Worker(deployment, 1, KRT_URL=f"http://switchboard:switchboard@127.0.0.1:{sandbox.port}",
                    PERSONAL_URL=f"http://127.0.0.1:{personal_port}").start().wait_ready()
    try:
        yield deployment, worker, sandbox
    finally:
        worker.stop()
        personal.stop()
        sandbox.stop()


def _send(deployment, topic: str, *records: tuple[bytes, Any]) -> None:
    produce(deployment.broker.bootstrap, deployment.topic(topic),
            [(key, None if value is None else orjson.dumps(value)) for key, value in records])


def driver(deployment, park: str, pd_id: str, categories: list[str], where: tuple[float, float], at: float) -> None:
    key = f"{park}_d".encode()
    _send(deployment, "driver-profiles",
          (key, {"park_id": park, "driver_id": "d", "driver_license_pd_id": pd_id, "categories": categories}))
    _send(deployment, "driver-positions", (key, {"park_id": park, "driver_id": "d", "lat": where[0], "lon": where[1],
                                                 "time": at}))


def status(deployment, park: str, value: str, at: float) -> None:
    _send(deployment, "contractor-status", (f"{park}_d".encode(), {"park_id": park, "driver_id": "d", "status": value,
                                                                   "time": at}))


def metric(worker: Worker, name: str) -> float:
    text = http_get(worker.url + "/metrics")[1]
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", str(text), re.M))


def test_only_drivers_in_the_region_working_a_category_reach_krt_and_its_answer_is_published(stack):
    deployment, worker, sandbox = stack
    now = time.time()
    driver(deployment, "moscow", "pd-moscow", ["econom"], KREMLIN, now - 5)
    driver(deployment, "cargo", "pd-cargo", ["cargo"], KREMLIN, now - 5)
    driver(deployment, "spb", "pd-spb", ["econom"], PETERSBURG, now - 5)
    time.sleep(1.0)  # the profiles first (a status before its profile waits for it, see the unit tests)
    for park in ("moscow", "cargo", "spb"):
        status(deployment, park, "online", now)
    sent = wait_until(lambda: sandbox.statuses(license_for("pd-moscow")), 30, 0.2, "the Moscow driver's status at KRT")
    assert [(s["status"], s["at"]) for s in sent] == [("online", pytest.approx(now))]
    assert "deptrans_id" not in sent[0]

    def published():
        records = {k: orjson.loads(v) for k, v in consume_all(deployment.broker.bootstrap,
                                                              deployment.topic("deptrans-session-statuses"), 1.0)}
        return records.get(b"pd-moscow")

    session = wait_until(published, 30, 0.5, "KRT's answer on deptrans-session-statuses")
    assert session["session_status"] == "active" and session["park_id"] == "moscow"
    assert session["ends_at"] > now
    time.sleep(1.0)
    assert sandbox.statuses(license_for("pd-cargo")) == [] and sandbox.statuses(license_for("pd-spb")) == []
    assert metric(worker, "switchboard_deptrans_not_reported_total") >= 2


def test_a_krt_outage_is_survived_and_only_the_newest_status_is_sent_after_it(stack):
    deployment, worker, sandbox = stack
    now = time.time()
    driver(deployment, "outage", "pd-outage", ["comfort"], KREMLIN, now - 5)
    time.sleep(1.0)
    licence = license_for("pd-outage")
    sandbox.tell("/down", {"down": True})
    try:
        status(deployment, "outage", "online", now)
        wait_until(lambda: metric(worker, 'switchboard_deptrans_sends_total{outcome="failed"}') >= 2, 30, 0.2,
                   "sends to fail while KRT is down")
        status(deployment, "outage", "offline", now + 1)
        status(deployment, "outage", "online", now + 2)
        wait_until(lambda: metric(worker, "switchboard_deptrans_krt_breaker_open") == 1, 30, 0.2, "the breaker to open")
        time.sleep(2.0)
    finally:
        sandbox.tell("/down", {"down": False})
    sent = wait_until(lambda: sandbox.statuses(licence), 30, 0.2, "the status after the outage")
    time.sleep(3.0)  # nothing else follows
    assert [(s["status"], s["at"]) for s in sandbox.statuses(licence)] == [("online", pytest.approx(now + 2))]
    assert sent
    wait_until(lambda: metric(worker, "switchboard_deptrans_krt_breaker_open") == 0, 10, 0.2, "the breaker to close")


def test_an_expired_token_is_renewed_and_the_status_goes_through(stack):
    deployment, worker, sandbox = stack
    now = time.time()
    driver(deployment, "token", "pd-token", ["econom"], KREMLIN, now - 5)
    time.sleep(1.0)
    sandbox.tell("/tokens/expire")
    status(deployment, "token", "online", now)
    sent = wait_until(lambda: sandbox.statuses(license_for("pd-token")), 30, 0.2, "the status with a new token")
    assert len(sent) == 1
    answers = [r["status"] for r in http_get(sandbox.control + "/requests")[1] if r["endpoint"] == "status"]
    assert 401 in answers  # the old token was tried, refused, and replaced


def test_no_licence_number_reaches_the_worker_log_or_any_topic_but_krt_requests(stack):
    deployment, worker, sandbox = stack
    licences = [license_for(pd) for pd in ("pd-moscow", "pd-cargo", "pd-spb", "pd-outage", "pd-token")]
    assert sandbox.statuses(licences[0])  # the earlier tests sent them: there is something to leak
    log = worker.log_path.read_text(errors="replace")
    assert not [licence for licence in licences if licence in log]
    for topic in ("deptrans-session-statuses", "dead-letters", "contractor-status", "driver-profiles"):
        records = consume_all(deployment.broker.bootstrap, deployment.topic(topic), 0.5)
        text = b"".join((k or b"") + (v or b"") for k, v in records)
        assert not [licence for licence in licences if licence.encode() in text], topic


DRIVER = "test-driver-token"


def driver_call(worker: Worker, method: str, park: str, body: Any = None, token: str = DRIVER) -> tuple[int, Any]:
    """The driver endpoint as Yandex.Pro calls it (the driver named in headers)."""
    import urllib.request

    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(worker.url + "/driver/v1/deptrans-status/v1/id", data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", "X-Park-Id": park,
                                              "X-Driver-Profile-Id": "d", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def test_a_driver_sets_a_krt_id_that_krt_confirms_and_never_gets_it_back(stack):
    from dev.krt_sandbox import sandbox_id_for

    deployment, worker, sandbox = stack
    driver(deployment, "idpark", "pd-id", ["econom"], KREMLIN, time.time())
    wait_until(lambda: driver_call(worker, "GET", "idpark")[0] == 200, 30, 0.2, "the driver's profile to be known")
    assert driver_call(worker, "GET", "idpark") == (200, {"has_id": False})
    good = sandbox_id_for(license_for("pd-id"))
    status, answer = driver_call(worker, "POST", "idpark", {"deptrans_id": "KRT0000000000"})
    assert (status, answer["error"]["code"]) == (409, "conflict")
    assert driver_call(worker, "POST", "idpark", {"deptrans_id": good}) == (200, {"has_id": True})
    assert wait_until(lambda: driver_call(worker, "GET", "idpark")[1]["has_id"], 10, 0.2, "has_id") is True
    public = dict(consume_all(deployment.broker.bootstrap, deployment.topic("deptrans-profiles"), 0.5))
    assert orjson.loads(public[b"pd-id"]) == {"driver_license_pd_id": "pd-id", "has_id": True,
                                             "updated_at": pytest.approx(time.time(), abs=60)}
    private = f"{deployment.name}-deptrans-ids"
    kept = dict(consume_all(deployment.broker.bootstrap, private, 0.5))
    assert orjson.loads(kept[b"pd-id"])["deptrans_id"] == good
    found_in = []
    for topic in topics_of(deployment):  # every topic, changelogs too: the ID only where only the service reads
        records = consume_all(deployment.broker.bootstrap, topic, 0.3)
        if any(good.encode() in (k or b"") + (v or b"") for k, v in records):
            found_in.append(topic)
    assert found_in == [private]
    assert good not in worker.log_path.read_text(errors="replace")


@pytest.mark.parametrize("park, body, token, status", [
    ("idpark", {"deptrans_id": "no spaces!"}, DRIVER, 400),
    ("idpark", {"id": "KRT1"}, DRIVER, 400),
    ("", {"deptrans_id": "KRT12345"}, DRIVER, 400),  # no X-Park-Id
    ("nobody", {"deptrans_id": "KRT12345"}, DRIVER, 404),
    ("idpark", {"deptrans_id": "KRT12345"}, "nonsense", 401),
    ("idpark", {"deptrans_id": "KRT12345"}, "test-operator-token", 403),
], ids=["malformed id", "no deptrans_id", "no park", "unknown driver", "no token", "wrong role"])
def test_a_bad_id_request_gets_a_clear_4xx(stack, park, body, token, status):
    deployment, worker, _ = stack
    got, answer = driver_call(worker, "POST", park, body, token)
    assert got == status and answer["error"]["code"] and answer["error"]["message"]


def test_krt_down_while_a_driver_sets_an_id_is_a_503(stack):
    deployment, worker, sandbox = stack
    driver(deployment, "downpark", "pd-down", ["econom"], KREMLIN, time.time())
    wait_until(lambda: driver_call(worker, "GET", "downpark")[0] == 200, 30, 0.2, "the driver's profile to be known")
    sandbox.tell("/down", {"down": True})
    try:
        status, answer = driver_call(worker, "POST", "downpark", {"deptrans_id": "KRT12345"})
    finally:
        sandbox.tell("/down", {"down": False})
    assert (status, answer["error"]["code"]) == (503, "unavailable")


def _page(worker: Worker, feed: str, cursor: str | None, limit: int) -> dict:
    from tests.harness import SERVICE

    url = f"{worker.url}/internal/v1/{feed}/updates?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
    status, body = http_get(url, SERVICE)
    assert status == 200, body
    return body


def test_paging_the_status_feed_while_it_changes_never_misses_or_repeats_a_change(stack):
    import threading

    deployment, worker, _ = stack
    topic = deployment.topic("deptrans-session-statuses")
    records = [(f"feed-{n % 37}".encode(), {"driver_license_pd_id": f"feed-{n % 37}", "session_status": "active",
                                            "ends_at": 2e9, "updated_at": 1.8e9 + n, "park_id": "p", "driver_id": "d",
                                            "status_at": None}) for n in range(600)]
    produce(deployment.broker.bootstrap, topic, [(k, orjson.dumps(v)) for k, v in records[:200]])
    feeder = threading.Thread(target=lambda: [produce(deployment.broker.bootstrap, topic, [(k, orjson.dumps(v))])
                                              for k, v in records[200:]])
    feeder.start()
    seen: list[tuple[str, float]] = []
    cursor = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = _page(worker, "status", cursor, 7)
        cursor = body["cursor"]
        seen += [(i["driver_license_pd_id"], i["updated_at"]) for i in body["items"]
                 if i["driver_license_pd_id"].startswith("feed-")]
        if not feeder.is_alive() and not body["more"] and len(seen) >= 600:
            break
    feeder.join()
    assert len(seen) == len(set(seen)) == 600  # every change once (no compaction ran meanwhile)
    for key in {k for k, _ in seen}:
        times = [t for k, t in seen if k == key]
        assert times == sorted(times)  # a key's changes in the order they were made
    assert _page(worker, "status", cursor, 100)["items"] == []  # nothing new: nothing again


@pytest.mark.parametrize("cursor", ["%%%", "eyJ2IjoxfQ", "A" * 20000])
def test_a_cursor_this_service_did_not_write_is_a_400(stack, cursor):
    from tests.harness import SERVICE

    deployment, worker, _ = stack
    status, body = http_get(f"{worker.url}/internal/v1/id/updates?cursor={cursor}", SERVICE)
    assert status == 400 and body["error"]["code"] == "bad_request"


def test_a_cursor_of_one_feed_is_refused_by_the_other(stack):
    from tests.harness import SERVICE

    deployment, worker, _ = stack
    cursor = _page(worker, "status", None, 1)["cursor"]
    status, body = http_get(f"{worker.url}/internal/v1/id/updates?cursor={cursor}", SERVICE)
    assert status == 400 and "another feed" in body["error"]["message"]
