"""Soak: workers on the three-node cluster under the simulator's full mixed load.

    python -m bench.soak [--multiple M] [--duration S] [--workers N] [--calibrate S]

A three-node KRaft cluster (dev/kafka/broker.sh, replication factor 3, min.insync.replicas 2)
and N workers (default 3) on 127.0.0.1; `python -m app simulate` sends M times the seed's load
(300 queue_log events/s and 1,100 driver statuses/s, with the operator statuses, chats and IVR
orders the simulator adds to them) for S seconds (default 600). Every 10 s each worker's
/metrics is sampled: consumer lag (records), resident memory, CPU seconds, records taken in
per input, HTTP 500s, delivery failures. At the end: the table of samples, whether lag and
RSS grew (the last third against the first third), and the errors.

`--calibrate S` first runs each domain's load alone for S seconds (one worker, the same
cluster) and measures the worker's CPU seconds per 1,000 input records of that domain, so
that the cores needed for a load can be read off. Results go to bench/results/soak-*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness import Cluster, Deployment, Worker, http_get

SEED_QUEUE_LOG = 300.0  # queue_log events/s (seed 000's "~300 events/s at peak")
SEED_DRIVERS = 1100.0  # driver statuses/s (seed 002)
SAMPLE_S = 10.0
RESULTS = Path(__file__).parent / "results"
# the inputs of each domain, as the suffix of the topic label of switchboard_events_in_total
DOMAINS = {
    "call center": ("qapp-events",),
    "operator status": ("operator-commands", "sip-registrations", "operator-status"),
    "drivers": ("contractor-status", "driver-positions", "driver-profiles"),
    "chat": ("chat_events", "support_queue", "operator_events", "admin_actions"),
    "ivr": ("ivr-commands",),
}
# each domain alone, for the calibration: the simulator's arguments beside --rate
ALONE = {
    "call center": ["--rate", "600", "--driver-statuses", "0", "--chats", "0", "--ivr-orders", "0",
                    "--no-operator-status"],
    "drivers": ["--rate", "1", "--driver-statuses", "1100", "--chats", "0", "--ivr-orders", "0",
                "--no-operator-status"],
    "chat": ["--rate", "1", "--driver-statuses", "0", "--chats", "2", "--ivr-orders", "0", "--no-operator-status"],
    "ivr": ["--rate", "1", "--driver-statuses", "0", "--chats", "0", "--ivr-orders", "30", "--no-operator-status"],
    "operator status": ["--rate", "600", "--driver-statuses", "0", "--chats", "0", "--ivr-orders", "0"],
}


def _metric_lines(text: str, name: str) -> list[tuple[str, float]]:
    return [(labels or "", float(value)) for labels, value in
            re.findall(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", text, re.M)]


def sample(worker: Worker) -> dict[str, Any]:
    try:
        status, text = http_get(worker.url + "/metrics", timeout=5)
    except OSError as exc:
        return {"error": str(exc)}
    if status != 200:
        return {"error": f"/metrics answered {status}"}
    text = str(text)
    taken: dict[str, float] = {}
    for labels, value in _metric_lines(text, "switchboard_events_in_total"):
        topic = re.search(r'topic="([^"]*)"', labels)
        if topic:
            taken[topic.group(1)] = value
    return {
        "lag": sum(v for _, v in _metric_lines(text, "switchboard_consumer_lag_records")),
        "rss_mb": sum(v for _, v in _metric_lines(text, "process_resident_memory_bytes")) / 2**20,
        "cpu_s": sum(v for _, v in _metric_lines(text, "process_cpu_seconds_total")),
        "http_500": sum(v for _, v in _metric_lines(text, "switchboard_http_internal_errors_total")),
        "delivery_failures": sum(v for _, v in _metric_lines(text, "switchboard_delivery_failures_total")),
        "taken": taken,
    }


def per_domain(taken: dict[str, float]) -> dict[str, float]:
    return {domain: sum(v for topic, v in taken.items() if topic.endswith(suffixes))
            for domain, suffixes in DOMAINS.items()}


def simulate(deployment: Deployment, args: list[str], duration: float, log: Path) -> subprocess.Popen:
    env = deployment.env()
    command = [sys.executable, "-m", "app", "simulate", "--duration", str(duration), "--seed", "11", *args]
    return subprocess.Popen(command, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)


def _start(deployment: Deployment, count: int) -> list[Worker]:
    workers = [Worker(deployment, n + 1).start() for n in range(count)]
    for w in workers:
        w.wait_ready(180)
    return workers


def calibrate(cluster: Cluster, workdir: Path, seconds: float) -> dict[str, float]:
    """CPU seconds of one worker per 1,000 input records of each domain, each alone (the
    operator statuses follow the call center's queue_log: the call center's own cost, from
    its run alone, is taken out of theirs)."""
    runs: dict[str, tuple[float, dict[str, float]]] = {}
    for domain, extra in ALONE.items():
        deployment = Deployment(broker=cluster, workdir=workdir / domain.replace(" ", "-"),
                                extra_env={"REPLICATION_FACTOR": 3, "MIN_INSYNC_REPLICAS": 2, "LOG_LEVEL": "warning"})
        deployment.workdir.mkdir(parents=True, exist_ok=True)
        worker = _start(deployment, 1)[0]
        try:
            time.sleep(5)
            before = sample(worker)
            sim = simulate(deployment, extra, seconds, deployment.workdir / "simulate.log")
            sim.wait(seconds + 120)
            time.sleep(10)  # the backlog drained
            after = sample(worker)
        finally:
            worker.stop()
        records = {d: per_domain(after["taken"])[d] - per_domain(before["taken"])[d] for d in DOMAINS}
        runs[domain] = (after["cpu_s"] - before["cpu_s"], records)
        print(f"calibration {domain}: {records[domain]:.0f} records, {runs[domain][0]:.1f} CPU s", flush=True)
    costs = {}
    cc_cpu, cc_records = runs["call center"]
    cc_per_record = cc_cpu / cc_records["call center"] if cc_records["call center"] else 0.0
    for domain, (cpu, records) in runs.items():
        own = cpu - (cc_per_record * records["call center"] if domain != "call center" else 0.0)
        costs[domain] = round(1000 * own / records[domain], 3) if records[domain] else float("nan")
    print(f"CPU seconds per 1,000 records: {costs}", flush=True)
    return costs


def soak(cluster: Cluster, workdir: Path, multiple: float, duration: float, count: int) -> dict[str, Any]:
    deployment = Deployment(broker=cluster, workdir=workdir / "soak",
                            extra_env={"REPLICATION_FACTOR": 3, "MIN_INSYNC_REPLICAS": 2, "LOG_LEVEL": "warning"})
    deployment.workdir.mkdir(parents=True, exist_ok=True)
    workers = _start(deployment, count)
    rate, drivers = SEED_QUEUE_LOG * multiple, SEED_DRIVERS * multiple
    processes = max(1, int(-(-(rate + drivers) // 3000)))
    sim = simulate(deployment, ["--rate", str(rate), "--driver-statuses", str(drivers),
                                "--processes", str(processes)], duration, deployment.workdir / "simulate.log")
    samples = []
    started = time.monotonic()
    try:
        while sim.poll() is None and time.monotonic() - started < duration + 60:
            time.sleep(SAMPLE_S)
            row = {"t": round(time.monotonic() - started), "workers": [sample(w) for w in workers]}
            samples.append(row)
            ws = row["workers"]
            rss = "/".join(f"{w.get('rss_mb', 0):.0f}" for w in ws)
            cpu = "/".join(f"{w.get('cpu_s', 0):.0f}" for w in ws)
            print(f"t={row['t']:4d}s lag={sum(w.get('lag', 0) for w in ws):8.0f} rss={rss} MB cpu={cpu} s", flush=True)
    finally:
        sim.wait(120) if sim.poll() is None else None
        time.sleep(10)
        final = [sample(w) for w in workers]
        for w in workers:
            w.stop()
    third = max(1, len(samples) // 3)

    def mean(rows, key):
        values = [sum(w.get(key, 0) for w in r["workers"]) for r in rows]
        return sum(values) / len(values) if values else 0.0

    taken = [per_domain(w["taken"]) for w in final if "taken" in w]
    return {
        "multiple": multiple, "queue_log_per_s": rate, "driver_statuses_per_s": drivers, "workers": count,
        "seconds": duration, "samples": samples,
        "lag_first_third": mean(samples[:third], "lag"), "lag_last_third": mean(samples[-third:], "lag"),
        "rss_first_third_mb": mean(samples[:third], "rss_mb"), "rss_last_third_mb": mean(samples[-third:], "rss_mb"),
        "cpu_s": sum(w.get("cpu_s", 0) for w in final),
        "records": {d: sum(t[d] for t in taken) for d in DOMAINS},
        "http_500": sum(w.get("http_500", 0) for w in final),
        "delivery_failures": sum(w.get("delivery_failures", 0) for w in final),
        "unreachable_samples": sum(1 for r in samples for w in r["workers"] if "error" in w),
        "final_lag": sum(w.get("lag", 0) for w in final),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--multiple", type=float, default=1.0, help="times the seed's load (default 1)")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--calibrate", type=float, default=0.0, metavar="S",
                        help="first, each domain's load alone for S seconds on one worker (0: skip)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-soak-"))
    cluster = Cluster(workdir / "kafka")
    cluster.start()
    try:
        costs = calibrate(cluster, workdir, args.calibrate) if args.calibrate else {}
        result = soak(cluster, workdir, args.multiple, args.duration, args.workers)
    finally:
        cluster.stop()
    result.update(cpu_s_per_1000=costs, machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
                  at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=1))
    grew = result["lag_last_third"] > max(1000.0, 2 * result["lag_first_third"])
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    print(f"lag {'GREW' if grew else 'steady'}: {result['lag_first_third']:.0f} -> {result['lag_last_third']:.0f} "
          f"records; RSS {result['rss_first_third_mb']:.0f} -> {result['rss_last_third_mb']:.0f} MB; "
          f"written to {out}")
    return 1 if grew or result["delivery_failures"] or result["http_500"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
