"""`make bench`: the truth table of the hot path, measured side by side on one broker.

One run, one Apache Kafka broker (started here, on free ports), the same `qapp-events`
records (simulated queue_log lines of a busy call center) for every throughput row:

1. throughput, events/s and the ratio to a bare Faust agent:
   - a plain aiokafka consumer with the service's decoder (`queue_log.decode` + `interpret`);
   - a bare Faust agent that only counts (bench/baselines.py);
   - a Faust agent that updates one RocksDB table per record;
   - the pipeline with one worker and with two (done when the windows hold every fact);
2. end-to-end latency at the seed's load (300 events/s) and at ten times that: a probe
   record produced -> its effect visible in `GET /queues/status`, p50/p99;
3. `GET /queues/status` p50/p99 at 100 requests/s with 500 queues and 5,000 operators;
4. a backlog of 300,000 events drained by a worker started after they were produced,
   and the worker's memory (RSS) at the end;
5. IVR routing (bench/ivr.py): `GET /routing` and `GET /make_call` at 200 requests/s against
   one worker and across two, and `POST /routetoivr` -> the rule on `ivr-routing-rules`;
6. driver status -> KRT (bench/deptrans.py): the stream path's events/s, status -> KRT
   latency at the seed's load, the drain after a KRT outage, memory of the profiles and the
   restart of a worker holding them.

Writes bench/results/<date>.json and the tables in bench/README.md (each figure beside
its goal). `--quick` makes every part smaller (a smoke run, not a measurement).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Optional

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.ingest import record_key
from bench.load import lines_for
from tables.callcenter import queue_log
from tests.harness import MANAGER, ROOT, Broker, Deployment, Worker, free_port, http_get, produce

HERE = Path(__file__).parent
FACT_EVENTS = {"ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "COMPLETECALLER", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY",
               "EXITWITHKEY"}
BASELINE_EVENTS_PER_S = 269  # the pipeline before this table existed (2026-11-22, one worker)
GOALS = {
    "pipeline_ratio": ("pipeline ÷ bare Faust agent", 0.5, ">="),
    "two_workers_scale": ("two workers ÷ one worker", 1.6, ">="),
    "latency_300_p99_ms": ("p99 end-to-end at 300 ev/s, ms", 250, "<="),
    "latency_3000_p99_ms": ("p99 end-to-end at 3,000 ev/s, ms", 1000, "<="),
    "status_p99_ms": ("GET /queues/status p99 at 100 req/s, ms", 20, "<="),
    "backlog_seconds": ("300,000-event backlog drained, s", 90, "<="),
    "backlog_rss_mb": ("worker RSS after the backlog, MB", 500, "<="),
    "ivr_reads_1w_p99_ms": ("IVR GET /routing and /make_call p99 at 200 req/s, one worker, ms", 5, "<="),
    "ivr_reads_2w_p99_ms": ("IVR GET /routing and /make_call p99 at 200 req/s, two workers, ms", 5, "<="),
    "ivr_rule_p99_ms": ("IVR POST /routetoivr answered -> rule on ivr-routing-rules p99, ms", 200, "<="),
    "chat_message_p99_ms": ("chat message, client's WebSocket -> operator's on another worker, p99 at 200 msg/s, ms",
                            100, "<="),
    "chat_race_one_winner_pct": ("chat accept races with exactly one winner, %", 100, ">="),
    "deptrans_path_eps": ("driver records (contractor-status, positions, profiles) through the stage, events/s, one worker",
                          5000, ">="),
    "deptrans_krt_p99_ms": ("driver status -> KRT p99 at 1,100 statuses/s, KRT answering in 50 ms, ms", 1000, "<="),
    "deptrans_outage_drain_s": ("after a KRT outage at 1,100 statuses/s: newest statuses all sent, s", 120, "<="),
    "deptrans_restart_s": ("restart to ready of a worker holding the profiles, s", 30, "<="),
}
PROBE_QUEUE = "bench-probe"


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def facts_in(lines: list[str]) -> tuple[int, set[str]]:
    fields = [line.split("|") for line in lines]
    facts = sum(1 for f in fields if f[4] in FACT_EVENTS)
    return facts, {f[2] for f in fields if f[4] == "ENTERQUEUE"}


def as_records(lines: list[str]) -> list[tuple[Optional[bytes], bytes]]:
    return [(record_key(line), line.encode()) for line in lines]


def percentile(values: list[float], p: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- throughput ----------------------------------------------------------------------------


async def _raw_consumer(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=10000)
            if started is None and batch:
                started = time.perf_counter()
            for records in batch.values():
                for r in records:
                    queue_log.interpret(queue_log.decode(r.value))
                    seen += 1
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def raw_consumer(broker: Broker, workdir: Path, records) -> float:
    deployment = Deployment(broker=broker, workdir=workdir)
    produce(broker.bootstrap, deployment.topic("qapp-events"), records)
    return asyncio.run(_raw_consumer(broker.bootstrap, deployment.topic("qapp-events"), len(records)))


def faust_baseline(broker: Broker, workdir: Path, records, mode: str, env: dict) -> float:
    """events/s of a reference Faust agent, from its own clock (first to last record)."""
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    produce(broker.bootstrap, deployment.topic("qapp-events"), records)
    command = [sys.executable, "-m", "faust", "-A", "bench.baselines", "worker", "-l", "warn"]
    worker = Worker(deployment, 1, command=command, BENCH_MODE=mode).start()
    try:
        body = _wait(lambda: _count(worker, len(records)), 600, f"the {mode} agent to count every record", worker)
        return (body["count"] - 1) / (body["last_at"] - body["first_at"])
    finally:
        worker.stop()


def _count(worker: Worker, expected: int) -> Optional[dict]:
    status, body = http_get(worker.url + "/count", timeout=2)
    return body if status == 200 and body["count"] >= expected else None


def windows_total(worker: Worker, queues: set[str], since: float) -> int:
    total = 0
    for q in queues:
        status, body = http_get(f"{worker.url}/queues/{q}/metrics?since={since}&until={time.time() + 60}", MANAGER)
        if status != 200:
            return -1
        total += sum(w["entered"] + w["answered"] + w["unanswered"] + w["completed"] for w in body["windows"])
    return total


def pipeline(broker: Broker, workdir: Path, lines: list[str], workers: int, env: dict) -> float:
    """events/s of the pipeline: workers ready, then every record produced; done when the
    windows hold every fact."""
    facts, queues = facts_in(lines)
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    fleet = [Worker(deployment, i + 1).start() for i in range(workers)]
    try:
        for w in fleet:
            w.wait_ready(120)
        _settle(fleet)
        since = float(lines[0].split("|")[0]) - 120
        started = time.perf_counter()
        produce(broker.bootstrap, deployment.topic("qapp-events"), as_records(lines))
        _wait(lambda: windows_total(fleet[0], queues, since) >= facts, 600, "every fact in the windows", fleet[0], 0.1)
        return len(lines) / (time.perf_counter() - started)
    finally:
        for w in fleet:
            w.stop()


def _settle(fleet: list[Worker]) -> None:
    """Every worker ready and every partition of the input assigned (no rebalance pending)."""
    def settled() -> bool:
        return all(http_get(w.url + "/ready", timeout=2)[0] == 200 for w in fleet)
    _wait(settled, 120, "a settled group", fleet[0])
    time.sleep(2.0)
    _wait(settled, 120, "a settled group", fleet[0])


def _wait(predicate: Callable[[], Any], timeout: float, what: str, worker: Worker, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except Exception:
            result = None
        if result:
            return result
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited: {worker.log_tail()}")
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}; worker log: {worker.log_tail(15)}")


QUIX_PYTHON = ROOT / ".venv-quix" / "bin" / "python"  # `make bench-peer` makes it


def quix_peer(broker: Broker, workdir: Path, records, lines: list[str], bare: float) -> dict:
    """The same windowed work in Quix Streams (bench/quix_peer.py), when the optional peer
    is installed in its own virtualenv; else a row that says how to get it."""
    python = Path(os.environ.get("BENCH_QUIX_PYTHON", QUIX_PYTHON))
    if not python.exists():
        return {"status": "skipped", "why": "Quix Streams is not installed (`make bench-peer` installs it in .venv-quix)"}
    deployment = Deployment(broker=broker, workdir=workdir)
    produce(broker.bootstrap, deployment.topic("qapp-events"), records)
    done = subprocess.run(
        [str(python), str(HERE / "quix_peer.py"), "--bootstrap", broker.bootstrap, "--topic", deployment.topic("qapp-events"),
         "--events", str(len(records)), "--facts", str(facts_in(lines)[0])],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    out = done.stdout.strip().splitlines()
    got = json.loads(out[-1]) if out else {"error": done.stderr[-500:]}
    if done.returncode != 0 or "events_per_s" not in got:
        return {"status": "failed", "why": got.get("error", "no result")}
    version_of = subprocess.run([str(python), "-c", "import quixstreams; print(quixstreams.__version__)"],
                                capture_output=True, text=True).stdout.strip()
    return {"status": "measured", "version": version_of, "events_per_s": round(got["events_per_s"]),
            "ratio_to_bare": round(got["events_per_s"] / bare, 3)}


# --- latency ------------------------------------------------------------------------------------


async def _probe(bootstrap: str, topic: str, url: str, probes: int, gap_s: float) -> list[float]:
    """Send probe calls one by one into a queue of their own; each one's latency is the time
    until `GET /queues/status` counts it waiting."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {MANAGER}"}
    run = f"{time.time():.0f}"
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            for k in range(1, probes + 1):
                callid = f"probe-{run}-{k}"
                line = f"{time.time():.3f}|{callid}|{PROBE_QUEUE}|NONE|ENTERQUEUE||+70000000000|1"
                sent = time.perf_counter()
                await producer.send_and_wait(topic, line.encode(), key=callid.encode())
                while time.perf_counter() - sent < 30:
                    async with http.get(url + "/queues/status") as resp:
                        body = await resp.json()
                    waiting = next((q["calls_waiting"] for q in body["queues"] if q["queue"] == PROBE_QUEUE), 0)
                    if waiting >= k:
                        latencies.append(time.perf_counter() - sent)
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(gap_s)
    finally:
        await producer.stop()
    return latencies


def latency(broker: Broker, workdir: Path, rate: float, seconds: float, env: dict) -> dict:
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    worker = Worker(deployment, 1).start().wait_ready(120)
    topic = deployment.topic("qapp-events")
    load = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--bootstrap", broker.bootstrap, "--topic", topic,
         "--rate", str(rate), "--duration", str(seconds + 8)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert load.stdout.readline().strip() == "ready"
        time.sleep(5.0)  # the load runs before the first probe (the simulator sizes its call center first: ~2 s at 3,000/s)
        probes = max(20, int(seconds / 0.1))
        latencies = asyncio.run(_probe(broker.bootstrap, topic, worker.url, probes, 0.05))
        achieved = json.loads(load.communicate(timeout=120)[0].strip().splitlines()[-1])
    finally:
        if load.poll() is None:
            load.kill()
        worker.stop()
    ms = [1000 * x for x in latencies]
    return {"rate_asked": rate, "rate_sent": achieved["rate"], "probes": len(ms),
            "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1), "max_ms": round(max(ms), 1)}


# --- GET /queues/status under load ------------------------------------------------------------


def big_call_center(queues: int, operators: int, now: float) -> list[str]:
    """Every operator a member of two queues, and a few answered calls in every queue."""
    lines = []
    t = now - 600
    for i in range(operators):
        for q in {i % queues, (i * 7 + 3) % queues}:
            lines.append(f"{t:.3f}|MANAGER|q{q:03d}|PJSIP/op{i:04d}|ADDMEMBER|")
    for q in range(queues):
        for c in range(4):
            callid, agent, start = f"big-{q}-{c}", f"PJSIP/op{(q + c * queues) % operators:04d}", t + 60 + c * 30
            lines += [
                f"{start:.3f}|{callid}|q{q:03d}|NONE|ENTERQUEUE||+7900000{q:04d}|1",
                f"{start + 5:.3f}|{callid}|q{q:03d}|{agent}|CONNECT|5|{callid}.1|2",
                f"{start + 65:.3f}|{callid}|q{q:03d}|{agent}|COMPLETECALLER|5|60|1",
            ]
    return lines


async def hammer(url: str | Callable[[int], str], per_s: float, seconds: float,
                  token: str = MANAGER) -> tuple[list[float], int]:
    """Open loop: request n (at `url`, or `url(n)`) at n/per_s s whatever the answers do;
    their latencies and errors."""
    latencies: list[float] = []
    errors = 0
    url_of = url if callable(url) else (lambda n: url)

    async def one(http: aiohttp.ClientSession, target: str) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            async with http.get(target) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
                    return
        except aiohttp.ClientError:
            errors += 1
            return
        latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        loop = asyncio.get_running_loop()
        started, tasks = loop.time(), []
        for n in range(int(per_s * seconds)):
            await asyncio.sleep(max(0.0, started + n / per_s - loop.time()))
            tasks.append(asyncio.create_task(one(http, url_of(n))))
        await asyncio.gather(*tasks)
    return latencies, errors


def status_under_load(broker: Broker, workdir: Path, queues: int, operators: int, per_s: float, seconds: float,
                      env: dict) -> dict:
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    worker = Worker(deployment, 1).start().wait_ready(120)
    try:
        lines = big_call_center(queues, operators, time.time())
        produce(broker.bootstrap, deployment.topic("qapp-events"), as_records(lines))

        members = len({(line.split("|")[2], line.split("|")[3]) for line in lines if "|ADDMEMBER|" in line})
        completed = sum(1 for line in lines if "|COMPLETECALLER|" in line)

        def loaded() -> bool:  # every line applied: the load below meets a quiet stream
            status, body = http_get(worker.url + "/queues/status", MANAGER)
            return status == 200 and len(body["queues"]) >= queues and (
                sum(q["operators"]["logged_in"] for q in body["queues"]) == members
                and sum(q["last_15m"]["completed"] for q in body["queues"]) == completed
            )

        _wait(loaded, 300, f"{queues} queues in /queues/status", worker, 0.5)
        latencies, errors = asyncio.run(hammer(worker.url + "/queues/status", per_s, seconds))
        size = len(http_get(worker.url + "/queues/status", MANAGER, timeout=10)[1]["queues"])
    finally:
        worker.stop()
    ms = [1000 * x for x in latencies]
    return {"queues": size, "operators": operators, "requests": len(ms) + errors, "errors": errors,
            "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1)}


# --- backlog ----------------------------------------------------------------------------------


def backlog(broker: Broker, workdir: Path, events: int, env: dict) -> dict:
    lines = lines_for(events, seed=11)
    facts, queues = facts_in(lines)
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    say(f"  producing the backlog of {len(lines):,} events ...")
    produce(broker.bootstrap, deployment.topic("qapp-events"), as_records(lines))
    worker = Worker(deployment, 1).start()
    try:
        started = time.perf_counter()
        since = float(lines[0].split("|")[0]) - 120
        last = [0.0]

        def drained() -> bool:
            done = windows_total(worker, queues, since)
            if time.perf_counter() - last[0] > 15:
                say(f"  {max(done, 0):,}/{facts:,} facts in windows after {time.perf_counter() - started:.0f} s")
                last[0] = time.perf_counter()
            return done >= facts

        _wait(drained, 1800, "the backlog to drain", worker, 0.5)
        seconds = time.perf_counter() - started
        rss_mb = _rss_mb(worker.process.pid)
    finally:
        worker.stop()
    return {"events": len(lines), "seconds": round(seconds, 1), "events_per_s": round(len(lines) / seconds),
            "rss_mb": rss_mb}


def _rss_mb(pid: int) -> Optional[float]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return round(int(match.group(1)) / 1024, 1) if match else None


# --- the run ----------------------------------------------------------------------------------


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    return {
        "cores": os.cpu_count(), "cpu": cpu,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(), "java": java,
        "faust-streaming": version("faust-streaming"), "aiokafka": version("aiokafka"), "rocksdict": version("rocksdict"),
        "kafka": "4.1.1 (KRaft, single node)",
    }


PARTS = ("throughput", "latency", "status", "backlog", "ivr", "deptrans", "chat")


@dataclass
class Sizes:
    events: int = 17000
    latency_s: float = 20.0
    status_queues: int = 500
    status_operators: int = 5000
    status_s: float = 10.0
    backlog_events: int = 300_000
    ivr_s: float = 15.0
    deptrans_drivers: int = 20_000
    deptrans_latency_s: float = 15.0
    deptrans_outage_s: float = 30.0
    deptrans_profiles: int = 50_000
    chat_s: float = 20.0
    chat_races: int = 1000


QUICK = Sizes(events=3000, latency_s=4.0, status_queues=50, status_operators=500, status_s=3.0, backlog_events=5000,
              ivr_s=3.0, deptrans_drivers=2000, deptrans_latency_s=3.0, deptrans_outage_s=3.0, deptrans_profiles=2000,
              chat_s=3.0, chat_races=100)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, help="records of the throughput rows (default 17,000)")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="every part smaller: a smoke run, not a measurement")
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run only these parts (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra worker setting")
    parser.add_argument("--no-write", action="store_true", help="print the results; leave bench/ alone")
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    if args.events:
        sizes.events = args.events
    parts = set(args.only or PARTS)
    env = {"LOG_LEVEL": "warning", "PARTITIONS": args.partitions, **dict(e.split("=", 1) for e in args.env)}
    fast_env = {**env, "STALE_AFTER_S": 10**9}

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    broker = Broker(port=free_port(), directory=workdir / "kafka")
    broker.start()
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "partitions": args.partitions,
                              "machine": machine(), "quick": args.quick}
    began = time.monotonic()
    try:
        if "throughput" in parts:
            lines = lines_for(sizes.events, seed=1)
            records = as_records(lines)
            say(f"throughput: {len(lines):,} queue_log lines ({facts_in(lines)[0]:,} window facts), same for every row")
            rows = {}
            say("  raw aiokafka consumer + the service's decoder ...")
            rows["raw_consumer"] = raw_consumer(broker, workdir, records)
            for mode in ("bare", "table"):
                say(f"  Faust agent ({mode}) ...")
                rows[f"faust_{mode}"] = faust_baseline(broker, workdir, records, mode, fast_env)
            for workers in (1, 2):
                say(f"  pipeline, {workers} worker(s) ...")
                rows[f"pipeline_{workers}w"] = pipeline(broker, workdir, lines, workers, fast_env)
            bare = rows["faust_bare"]
            result["throughput"] = {
                "events": len(lines),
                "rows": {name: {"events_per_s": round(eps), "ratio_to_bare": round(eps / bare, 3)} for name, eps in rows.items()},
            }
            say("  Quix Streams peer ...")
            result["peer"] = quix_peer(broker, workdir, records, lines, bare)
            say(f"  peer: {result['peer']}")
            result["pipeline_ratio"] = round(rows["pipeline_1w"] / bare, 3)
            result["two_workers_scale"] = round(rows["pipeline_2w"] / rows["pipeline_1w"], 2)
            for name, eps in rows.items():
                say(f"  {name}: {eps:,.0f} events/s ({eps / bare:.2f} of the bare agent)")
        if "latency" in parts:
            result["latency"] = {}
            for rate in (300, 3000):
                say(f"latency at {rate} events/s ...")
                run = latency(broker, workdir, rate, sizes.latency_s, env)
                result["latency"][str(rate)] = run
                result[f"latency_{rate}_p99_ms"] = run["p99_ms"]
                say(f"  {run}")
        if "status" in parts:
            say(f"GET /queues/status at 100 requests/s, {sizes.status_queues} queues, {sizes.status_operators} operators ...")
            run = status_under_load(broker, workdir, sizes.status_queues, sizes.status_operators, 100, sizes.status_s, env)
            result["status"] = run
            result["status_p99_ms"] = run["p99_ms"]
            say(f"  {run}")
        if "backlog" in parts:
            say(f"backlog of {sizes.backlog_events:,} events, worker started after ...")
            run = backlog(broker, workdir, sizes.backlog_events, fast_env)
            result["backlog"] = run
            result["backlog_seconds"], result["backlog_rss_mb"] = run["seconds"], run["rss_mb"]
            say(f"  {run}")
        if "ivr" in parts:
            from bench.ivr import ivr_reads, rule_latency
            result["ivr"] = {}
            for workers in (1, 2):
                say(f"IVR reads at 200 requests/s, {workers} worker(s) ...")
                run = ivr_reads(broker, workdir, workers, 200, sizes.ivr_s, env)
                result["ivr"][f"reads_{workers}w"] = run
                result[f"ivr_reads_{workers}w_p99_ms"] = max(run["routing"]["p99_ms"], run["make_call"]["p99_ms"])
                say(f"  {run}")
            say("IVR POST /routetoivr -> ivr-routing-rules at 20 commands/s ...")
            run = rule_latency(broker, workdir, 20, sizes.ivr_s, env)
            result["ivr"]["rule"] = run
            result["ivr_rule_p99_ms"] = run["p99_ms"]
            say(f"  {run}")
        if "deptrans" in parts:
            from bench.deptrans import krt_latency, krt_outage, profiles_memory, status_path
            result["deptrans"] = {}
            say(f"driver status path: {sizes.deptrans_drivers:,} drivers' profiles, positions, 4 statuses each ...")
            run = status_path(broker, workdir, sizes.deptrans_drivers, fast_env)
            bare = result.get("throughput", {}).get("rows", {}).get("faust_bare", {}).get("events_per_s")
            if bare:
                run["ratio_to_bare"] = round(run["events_per_s"] / bare, 3)
            result["deptrans"]["path"] = run
            result["deptrans_path_eps"] = run["events_per_s"]
            say(f"  {run}")
            say(f"driver status -> KRT at 1,100 statuses/s for {sizes.deptrans_latency_s:g} s, KRT answering in 50 ms ...")
            run = krt_latency(broker, workdir, 1100, sizes.deptrans_latency_s, env)
            result["deptrans"]["krt_latency"] = run
            result["deptrans_krt_p99_ms"] = run["p99_ms"]
            say(f"  {run}")
            say(f"KRT down for {sizes.deptrans_outage_s:g} s at 1,100 statuses/s, then up ...")
            run = krt_outage(broker, workdir, 1100, sizes.deptrans_outage_s, env)
            result["deptrans"]["outage"] = run
            result["deptrans_outage_drain_s"] = run["drained_s"]
            say(f"  {run}")
            say(f"{sizes.deptrans_profiles:,} profiles: memory, restart to ready ...")
            run = profiles_memory(broker, workdir, sizes.deptrans_profiles, fast_env)
            result["deptrans"]["profiles"] = run
            result["deptrans_restart_s"] = run["restart_to_ready_s"]
            say(f"  {run}")
        if "chat" in parts:
            from bench.chat import accept_races, message_latency
            result["chat"] = {}
            say(f"chat messages, clients on one worker, operators on the other, 200 msg/s for {sizes.chat_s:g} s ...")
            run = message_latency(broker, workdir, 200, sizes.chat_s, env)
            result["chat"]["messages"] = run
            result["chat_message_p99_ms"] = run["p99_ms"] if not run["lost"] else None
            say(f"  {run}")
            say(f"chat accept races: {sizes.chat_races:,}, two operators on two workers ...")
            run = accept_races(broker, workdir, sizes.chat_races, env)
            result["chat"]["races"] = run
            result["chat_race_one_winner_pct"] = round(100 * run["exactly_one_winner"] / run["races"], 2)
            say(f"  {run}")
    finally:
        broker.stop()
    result["bench_seconds"] = round(time.monotonic() - began)
    result["goals"] = {key: {"what": what, "goal": goal, "value": result.get(key),
                             "met": None if result.get(key) is None
                             else (result[key] >= goal if op == ">=" else result[key] <= goal)}
                       for key, (what, goal, op) in GOALS.items()}
    print(json.dumps(result, indent=2))
    if not args.no_write and not args.quick:
        out = HERE / "results" / f"{time.strftime('%Y-%m-%d', time.gmtime())}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        write_readme(result)
        say(f"wrote {out.relative_to(ROOT)} and bench/README.md")
    return 0


def write_readme(r: dict) -> None:
    """The latest run's tables between the markers of bench/README.md; a history row appended."""
    readme = HERE / "README.md"
    text = readme.read_text()
    begin, end = "<!-- latest run: written by make bench -->", "<!-- end of latest run -->"
    table = [begin, "", f"Latest run: {r['date']} UTC, {r['machine']['cores']} cores ({r['machine']['cpu']}), "
             f"{r['partitions']} partitions, {r['bench_seconds']} s in all.", ""]
    if "throughput" in r:
        t = r["throughput"]
        table += [f"Throughput, the same {t['events']:,} records for every row:", "",
                  "| what | events/s | ÷ bare Faust agent |", "|---|---|---|"]
        names = {"raw_consumer": "raw aiokafka consumer + the service's decoder", "faust_bare": "bare Faust agent (count only)",
                 "faust_table": "Faust agent, one RocksDB table write per record", "pipeline_1w": "**the pipeline, one worker**",
                 "pipeline_2w": "the pipeline, two workers"}
        for key, row in t["rows"].items():
            table.append(f"| {names[key]} | {row['events_per_s']:,} | {row['ratio_to_bare']:.2f} |")
        peer = r.get("peer", {})
        version_of = f" {peer['version']}" if peer.get("version") else ""
        what = f"peer: Quix Streams{version_of}, repartition + 60 s tumbling count"
        if peer.get("status") == "measured":
            table.append(f"| {what} | {peer['events_per_s']:,} | {peer['ratio_to_bare']:.2f} |")
        else:
            table.append(f"| {what} | {peer.get('status', '—')}: {peer.get('why', '')} | — |")
        table.append("")
    table += ["Goals:", "", "| figure | goal | this run | met |", "|---|---|---|---|"]
    for key, g in r["goals"].items():
        op = "≥" if GOALS[key][2] == ">=" else "<"
        value = "—" if g["value"] is None else g["value"]
        met = "—" if g["met"] is None else ("yes" if g["met"] else "**no**")
        table.append(f"| {g['what']} | {op} {g['goal']} | {value} | {met} |")
    if "latency" in r:
        table += ["", "| latency run | rate asked | rate sent | probes | p50 ms | p99 ms | max ms |",
                  "|---|---|---|---|---|---|---|"]
        for rate, run in r["latency"].items():
            table.append(f"| {rate} ev/s | {run['rate_asked']} | {run['rate_sent']} | {run['probes']} | {run['p50_ms']} | "
                         f"{run['p99_ms']} | {run['max_ms']} |")
    if "status" in r:
        s = r["status"]
        table += ["", f"`GET /queues/status`: {s['queues']} queues, {s['operators']:,} operators, {s['requests']} requests "
                  f"at 100/s, {s['errors']} errors, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms."]
    if "ivr" in r:
        table += ["", "| IVR | requests | errors | p50 ms | p99 ms |", "|---|---|---|---|---|"]
        for name in ("reads_1w", "reads_2w"):
            run = r["ivr"].get(name)
            for read in ("routing", "make_call") if run else ():
                x = run[read]
                table.append(f"| `GET /{read}`, {run['workers']} worker(s), {run['per_s']:.0f}/s | {x['requests']} | "
                             f"{x['errors']} | {x['p50_ms']} | {x['p99_ms']} |")
        rule = r["ivr"].get("rule")
        if rule:
            table.append(f"| `POST /routetoivr` answered -> on `ivr-routing-rules` | {rule['commands']} | "
                         f"{rule['commands'] - rule['on_topic']} | {rule['p50_ms']} | {rule['p99_ms']} |")
    if "deptrans" in r:
        d = r["deptrans"]
        table += ["", "Driver status -> KRT:", ""]
        if "path" in d:
            p = d["path"]
            ratio = f", {p['ratio_to_bare']:.2f} of the bare Faust agent" if "ratio_to_bare" in p else ""
            table.append(f"- stream path: {p['records']:,} records in {p['seconds']} s, {p['events_per_s']:,} events/s"
                         f"{ratio}; RSS {p['rss_mb']} MB")
        if "krt_latency" in d:
            k = d["krt_latency"]
            table.append(f"- status -> KRT at {k['statuses_per_s']:g} statuses/s ({k['moscow_sent']:,} for Moscow, "
                         f"{k['at_krt']:,} timed at KRT), KRT answering in {k['krt_delay_ms']} ms: "
                         f"p50 {k['p50_ms']} ms, p99 {k['p99_ms']} ms")
        if "outage" in d:
            o = d["outage"]
            table.append(f"- KRT down {o['outage_s']:g} s (the issue asks for 10 minutes; scaled to keep `make bench` "
                         f"short) with {o['moscow_statuses_during']:,} Moscow statuses meanwhile: the newest of each of "
                         f"{o['drivers_waiting']:,} drivers sent {o['drained_s']} s after KRT came back "
                         f"({o['sent_after']:,} sends in all)")
        if "profiles" in d:
            m = d["profiles"]
            table.append(f"- {m['profiles']:,} profiles read in {m['read_s']} s; RSS {m['rss_mb']} MB (an empty worker "
                         f"{m['empty_worker_rss_mb']} MB: {m['mb_per_million_profiles']} MB per million profiles, "
                         f"extrapolated); restart to ready {m['restart_to_ready_s']} s")
    if "chat" in r:
        c = r["chat"]
        table += ["", "Support chat:", ""]
        if "messages" in c:
            m = c["messages"]
            table.append(f"- messages from {m['chats']} clients on one worker to {m['operators']} operators on the "
                         f"other, {m['rate_sent']} msg/s sent: {m['arrived']:,} of {m['messages']:,} arrived, "
                         f"p50 {m['p50_ms']} ms, p99 {m['p99_ms']} ms, max {m['max_ms']} ms")
        if "races" in c:
            x = c["races"]
            table.append(f"- {x['races']:,} accept races (two operators, two workers): exactly one winner "
                         f"{x['exactly_one_winner']:,}, two winners {x['two_winners']}, none {x['no_winner']} "
                         f"({x['seconds']} s)")
    if "backlog" in r:
        b = r["backlog"]
        table += ["", f"Backlog: {b['events']:,} events drained in {b['seconds']} s ({b['events_per_s']:,} events/s), "
                  f"worker RSS {b['rss_mb']} MB at the end."]
    table += ["", end]
    if begin in text:
        text = text[: text.index(begin)] + "\n".join(table) + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + "\n".join(table) + "\n"
    if "throughput" in r:
        row = r["throughput"]["rows"]
        history = (f"| {r['date']} | {r['throughput']['events']} | {r['partitions']} | {row['faust_bare']['events_per_s']:,} | "
                   f"{row['pipeline_1w']['events_per_s']:,} | {row['pipeline_1w']['ratio_to_bare']:.2f} | "
                   f"{row['pipeline_2w']['events_per_s']:,} | {r['machine']['cores']} × {r['machine']['cpu']} |")
        text = text.rstrip() + "\n" + history + "\n"
    readme.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
