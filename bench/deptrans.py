"""Driver status → KRT's part of `make bench` (issue 9's figures), sized from the seed's numbers
(1,100 status events/s in, 220/s of them for Moscow; 1,000,000 profiles):

- the `contractor-status` path: profiles, a position and a status per driver produced first,
  a worker started after; events/s until its stage has taken them all (no KRT: the stream
  alone), beside the bare Faust agent of the throughput rows;
- status -> KRT latency at the seed's load (1,100 statuses/s, a fifth of the drivers in
  Moscow) with the sandbox answering in 50 ms: from a status's time (it is produced at once)
  to the sandbox receiving it, p50/p99;
- an outage: KRT down for `outage_s` at the seed's load, then up; how long until the newest
  status of every driver that changed meanwhile was sent (only those: latest-only);
- profiles: `profiles` of them read by a worker started after; its RSS, and the time a
  restart (same data directory) takes to be ready.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import orjson
from aiokafka import AIOKafkaProducer

from bench.pipeline import _rss_mb, _wait, percentile
from dev.personal import license_for
from tests.harness import ROOT, Broker, Deployment, Worker, free_port, http_get, http_request, produce, wait_until

__all__ = ["krt_latency", "krt_outage", "profiles_memory", "status_path"]

MOSCOW = (55.7520, 37.6175)
ELSEWHERE = (59.9343, 30.3351)


def _key(n: int) -> bytes:
    return f"park{n % 50}_driver{n}".encode()


def _profile(n: int) -> tuple[bytes, bytes]:
    return _key(n), orjson.dumps({"park_id": f"park{n % 50}", "driver_id": f"driver{n}",
                                  "driver_license_pd_id": f"pd-{n}", "categories": ["econom"]})


def _position(n: int, at: float, moscow: bool) -> tuple[bytes, bytes]:
    lat, lon = MOSCOW if moscow else ELSEWHERE
    return _key(n), orjson.dumps({"park_id": f"park{n % 50}", "driver_id": f"driver{n}", "lat": lat, "lon": lon,
                                  "time": at})


def _status(n: int, status: str, at: float) -> tuple[bytes, bytes]:
    return _key(n), orjson.dumps({"park_id": f"park{n % 50}", "driver_id": f"driver{n}", "status": status, "time": at})


def _metric(worker: Worker, name: str, labels: str = "") -> float:
    text = str(http_get(worker.url + "/metrics", timeout=5)[1])
    if labels:
        pattern = rf"^{re.escape(name)}\{{[^}}]*{re.escape(labels)}[^}}]*\}} (\S+)$"
    else:
        pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$"
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def _taken(worker: Worker) -> float:
    return _metric(worker, "switchboard_events_in_total", "dt-events")


def status_path(broker: Broker, workdir: Path, drivers: int, env: dict) -> dict:
    """events/s of the stream path (routes + stage, no KRT) over a backlog."""
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    now = time.time()
    produce(broker.bootstrap, deployment.topic("driver-profiles"), [_profile(n) for n in range(drivers)])
    produce(broker.bootstrap, deployment.topic("driver-positions"),
            [_position(n, now - 10, n % 5 == 0) for n in range(drivers)])
    statuses = [_status(n, ("online", "offline")[k % 2], now + k) for k in range(4) for n in range(drivers)]
    produce(broker.bootstrap, deployment.topic("contractor-status"), statuses)
    total = 2 * drivers + len(statuses)
    worker = Worker(deployment, 1).start()
    try:
        _wait(lambda: http_get(worker.url + "/ready", timeout=2)[0] == 200, 120, "the worker to be ready", worker, 0.05)
        started = time.perf_counter()
        first = _taken(worker)
        _wait(lambda: _taken(worker) >= total, 900, "the stage to take every driver record", worker, 0.1)
        seconds = time.perf_counter() - started
        rss = _rss_mb(worker.process.pid)
    finally:
        worker.stop()
    return {"records": total, "taken_before_clock": int(first), "seconds": round(seconds, 2),
            "events_per_s": round((total - first) / seconds), "rss_mb": rss}


class _Doubles:
    """The KRT sandbox and `personal`, as processes (dev/)."""

    def __init__(self, workdir: Path) -> None:
        self.krt_port, self.control_port, self.personal_port = free_port(), free_port(), free_port()
        self.logs = [(workdir / "krt-sandbox.log").open("w"), (workdir / "personal.log").open("w")]
        self.processes = [
            subprocess.Popen([sys.executable, "-m", "dev.krt_sandbox", "--port", str(self.krt_port), "--control-port",
                              str(self.control_port)], cwd=ROOT, stdout=self.logs[0], stderr=subprocess.STDOUT),
            subprocess.Popen([sys.executable, "-m", "dev.personal", "--port", str(self.personal_port)], cwd=ROOT,
                             stdout=self.logs[1], stderr=subprocess.STDOUT),
        ]
        wait_until(lambda: http_get(self.control + "/state")[0] == 200, 30, 0.2, "the KRT sandbox")
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.personal_port}/stats")[0] == 200, 30, 0.2, "personal")

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def env(self) -> dict:
        return {"KRT_URL": f"http://switchboard:switchboard@127.0.0.1:{self.krt_port}",
                "PERSONAL_URL": f"http://127.0.0.1:{self.personal_port}"}

    def tell(self, path: str, body: Any) -> None:
        status, answer = http_request("POST", self.control + path, body)
        assert status == 200, answer

    def statuses(self) -> list[dict]:
        return [r for r in http_get(self.control + "/requests", timeout=60)[1]
                if r["endpoint"] == "status" and r["status"] == 200]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.wait(10)


async def _paced(bootstrap: str, topic: str, per_s: float, seconds: float, drivers: int, moscow_share: float,
                 sent: list[tuple[int, str, float]]) -> None:
    """Statuses at `per_s` for `seconds`, each stamped with the time it is produced; drivers in
    turn, each going online and offline alternately; `sent` gets (driver, status, at)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    moscow_every = max(1, round(1 / moscow_share))
    state: dict[int, str] = {}
    try:
        began = time.monotonic()
        count = 0
        while time.monotonic() - began < seconds:
            due = int((time.monotonic() - began) * per_s) - count
            for _ in range(max(0, due)):
                n = count % drivers
                status = "offline" if state.get(n) == "online" else "online"
                state[n] = status
                at = time.time()
                key, value = _status(n, status, at)
                await producer.send(topic, value=value, key=key)
                if n % moscow_every == 0:
                    sent.append((n, status, at))
                count += 1
            await asyncio.sleep(0.005)
        await producer.flush()
    finally:
        await producer.stop()


def _prepare(broker: Broker, deployment: Deployment, drivers: int, moscow_share: float) -> None:
    moscow_every = max(1, round(1 / moscow_share))
    produce(broker.bootstrap, deployment.topic("driver-profiles"), [_profile(n) for n in range(drivers)])
    produce(broker.bootstrap, deployment.topic("driver-positions"),
            [_position(n, time.time(), n % moscow_every == 0) for n in range(drivers)])  # valid 600 s: the run


@contextmanager
def _krt_worker(broker: Broker, workdir: Path, env: dict, drivers: int) -> Iterator[tuple[Deployment, Worker, _Doubles]]:
    """A worker with the KRT sandbox (answering statuses in 50 ms) and `personal`, every
    driver's profile and position read (a fifth of the drivers in Moscow)."""
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    doubles = _Doubles(workdir)
    _prepare(broker, deployment, drivers, 0.2)
    worker = Worker(deployment, 1, **doubles.env()).start()
    try:
        worker.wait_ready(120)
        _wait(lambda: _taken(worker) >= 2 * drivers, 300, "the profiles and positions", worker, 0.2)
        doubles.tell("/delay", {"delay_s": 0.05, "endpoint": "status"})
        yield deployment, worker, doubles
    finally:
        worker.stop()
        doubles.stop()


def krt_latency(broker: Broker, workdir: Path, per_s: float, seconds: float, env: dict, drivers: int = 20_000) -> dict:
    with _krt_worker(broker, workdir, env, drivers) as (deployment, worker, doubles):
        sent: list[tuple[int, str, float]] = []
        asyncio.run(_paced(broker.bootstrap, deployment.topic("contractor-status"), per_s, seconds, drivers, 0.2, sent))
        time.sleep(3.0)
        got = {(r["body"]["license_number"], r["body"]["at"]): r["at"] for r in doubles.statuses()}
        latencies = [1000 * (got[(license_for(f"pd-{n}"), at)] - at) for n, _, at in sent
                     if (license_for(f"pd-{n}"), at) in got]
    return {"statuses_per_s": per_s, "moscow_sent": len(sent), "at_krt": len(latencies),
            "p50_ms": round(percentile(latencies, 50) or 0, 1), "p99_ms": round(percentile(latencies, 99) or 0, 1),
            "krt_delay_ms": 50}


def krt_outage(broker: Broker, workdir: Path, per_s: float, outage_s: float, env: dict, drivers: int = 20_000) -> dict:
    with _krt_worker(broker, workdir, env, drivers) as (deployment, worker, doubles):
        doubles.tell("/down", {"down": True})
        sent: list[tuple[int, str, float]] = []
        asyncio.run(_paced(broker.bootstrap, deployment.topic("contractor-status"), per_s, outage_s, drivers, 0.2, sent))
        newest = {}
        for n, status, at in sent:
            newest[n] = (status, at)
        doubles.tell("/down", {"down": False})
        up = time.perf_counter()

        def drained() -> bool:
            got = {(r["body"]["license_number"], r["body"]["at"]) for r in doubles.statuses()}
            return all((license_for(f"pd-{n}"), at) in got for n, (_, at) in newest.items())

        _wait(drained, 900, "the newest status of every driver at KRT", worker, 1.0)
        seconds = time.perf_counter() - up
        total = len(doubles.statuses())
    return {"statuses_per_s": per_s, "outage_s": outage_s, "moscow_statuses_during": len(sent),
            "drivers_waiting": len(newest), "drained_s": round(seconds, 1), "sent_after": total}


def profiles_memory(broker: Broker, workdir: Path, profiles: int, env: dict) -> dict:
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    empty = Worker(deployment, 9).start()
    try:
        empty.wait_ready(120)
        baseline = _rss_mb(empty.process.pid)
    finally:
        empty.stop()
    produce(broker.bootstrap, deployment.topic("driver-profiles"), [_profile(n) for n in range(profiles)])
    worker = Worker(deployment, 1).start()
    try:
        worker.wait_ready(120)
        started = time.perf_counter()
        _wait(lambda: _taken(worker) >= profiles, 900, "every profile in the table", worker, 0.5)
        read_s = time.perf_counter() - started
        rss = _rss_mb(worker.process.pid)
    finally:
        worker.stop()
    restarted = time.perf_counter()
    worker.start()
    try:
        worker.wait_ready(300)
        ready_s = time.perf_counter() - restarted
    finally:
        worker.stop()
    per_million: Optional[float] = None
    if rss is not None and baseline is not None:
        per_million = round((rss - baseline) * 1_000_000 / profiles)
    return {"profiles": profiles, "read_s": round(read_s, 1), "rss_mb": rss, "empty_worker_rss_mb": baseline,
            "mb_per_million_profiles": per_million, "restart_to_ready_s": round(ready_s, 1)}
