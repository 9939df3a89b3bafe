"""Soak: workers on the three-node cluster under the simulator's full mixed load.

    python -m bench.soak [--multiple M] [--duration S] [--warmup W] [--workers N] [--partitions P]
                         [--calibrate S]

A three-node KRaft cluster (dev/kafka/broker.sh, replication factor 3, min.insync.replicas 2)
and N workers (default 3) on 127.0.0.1, every topic with P partitions (default 6, as
docker-compose.yml ships for its three workers); `python -m app simulate` sends M times the
seed's load (300 queue_log events/s and 1,100 driver statuses/s, with the operator statuses,
chats and IVR orders the simulator adds to them) for S seconds (default 600). Every 10 s each
worker's /metrics is sampled: consumer lag (records, and by topic), resident memory, CPU
seconds, records taken in per input, HTTP 500s, delivery failures; and the cores the brokers,
the simulator and the workers took, beside the machine's idle (is a worker behind starved of
the machine, or stalled on its own), and the keys in the tables. At the end: the table of
samples, whether lag and RSS grew (the last third of the samples after `--warmup` against its
first third; RSS counts as grown past 10% more than the tables' keys grew), and the errors.

`--calibrate S` then runs each domain's load alone for S seconds (one worker, the same
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
from typing import Any, Optional

from tests.harness import Cluster, Deployment, Worker, http_get

SEED_QUEUE_LOG = 300.0  # queue_log events/s (seed 000's "~300 events/s at peak")
SEED_DRIVERS = 1100.0  # driver statuses/s (seed 002)
SAMPLE_S = 10.0
RESULTS = Path(__file__).parent / "results"
# the inputs of each domain, as the suffix of the topic label of switchboard_events_in_total
DOMAINS = {
    "call center": ("qapp-events",),
    "operator status": ("operator-commands", "sip-registrations", "operator-activity"),
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
    return {
        "lag": sum(v for _, v in _metric_lines(text, "switchboard_consumer_lag_records")),
        "lag_by_topic": {t: v for t, v in by_topic(text, "switchboard_consumer_lag_records").items() if v},
        "keys": sum(v for _, v in _metric_lines(text, "switchboard_table_keys")),
        "rss_mb": sum(v for _, v in _metric_lines(text, "process_resident_memory_bytes")) / 2**20,
        "cpu_s": sum(v for _, v in _metric_lines(text, "process_cpu_seconds_total")),
        "http_500": sum(v for _, v in _metric_lines(text, "switchboard_http_internal_errors_total")),
        "delivery_failures": sum(v for _, v in _metric_lines(text, "switchboard_delivery_failures_total")),
        "taken": by_topic(text, "switchboard_events_in_total"),
    }


ROLES = {"brokers": "kafka.Kafka", "simulator": "app simulate", "workers": "app worker"}


def machine_cpu() -> dict[str, Any]:
    """CPU seconds so far of the whole machine (busy and idle) and of each role's processes,
    by process: whether a worker that falls behind is starved of the machine or stalls alone."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    processes: dict[int, tuple[str, float]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for role, mark in ROLES.items():
            if mark in cmdline:
                processes[int(proc.name)] = (role, (int(stat[11]) + int(stat[12])) / tick)
    return {"idle": (fields[3] + fields[4]) / tick, "busy": (sum(fields) - fields[3] - fields[4]) / tick,
            "processes": processes}


def cpu_shares(first: dict[str, Any], last: dict[str, Any]) -> dict[str, float]:
    """Cores used by each role between two readings (processes alive at both), and the
    machine's idle cores."""
    wall = (last["idle"] + last["busy"] - first["idle"] - first["busy"]) / (os.cpu_count() or 1)
    if wall <= 0:
        return {}
    shares = {"machine_idle": round((last["idle"] - first["idle"]) / wall, 2), **{role: 0.0 for role in ROLES}}
    for pid, (role, cpu) in last["processes"].items():
        if pid in first["processes"]:
            shares[role] = round(shares[role] + (cpu - first["processes"][pid][1]) / wall, 2)
    return shares


def by_topic(text: str, name: str) -> dict[str, float]:
    """A metric's series summed by their `topic` label."""
    sums: dict[str, float] = {}
    for labels, value in _metric_lines(text, name):
        topic = re.search(r'topic="([^"]*)"', labels)
        if topic:
            sums[topic.group(1)] = sums.get(topic.group(1), 0.0) + value
    return sums


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


def _calibration_run(cluster: Cluster, workdir: Path, name: str, extra: Optional[list[str]],
                     seconds: float) -> tuple[float, float, dict[str, float]]:
    """One worker alone under one domain's load (None: no load at all): its CPU seconds, the
    wall seconds they were measured over, and the records of each domain it took in."""
    deployment = Deployment(broker=cluster, workdir=workdir / name.replace(" ", "-"),
                            extra_env={"REPLICATION_FACTOR": 3, "MIN_INSYNC_REPLICAS": 2, "LOG_LEVEL": "warning"})
    deployment.workdir.mkdir(parents=True, exist_ok=True)
    worker = _start(deployment, 1)[0]
    try:
        time.sleep(5)
        before, started = sample(worker), time.monotonic()
        if extra is None:
            time.sleep(seconds + 10)
        else:
            sim = simulate(deployment, extra, seconds, deployment.workdir / "simulate.log")
            sim.wait(seconds + 120)
            time.sleep(10)  # the backlog drained
        after, wall = sample(worker), time.monotonic() - started
    finally:
        worker.stop()
    records = {d: per_domain(after["taken"])[d] - per_domain(before["taken"])[d] for d in DOMAINS}
    return after["cpu_s"] - before["cpu_s"], wall, records


def calibrate(cluster: Cluster, workdir: Path, seconds: float) -> dict[str, float]:
    """CPU seconds of one worker per 1,000 input records of each domain, each alone. A worker's
    own cost with no load at all (its ticks, sweeps, commits, the metrics scrape), measured
    first, is taken out of every run; the operator statuses follow the call center's
    queue_log: the call center's own cost, from its run alone, is taken out of theirs."""
    idle_cpu, idle_wall, _ = _calibration_run(cluster, workdir, "idle", None, seconds)
    idle_per_s = idle_cpu / idle_wall
    print(f"calibration idle: {idle_per_s:.3f} CPU s per second", flush=True)
    runs: dict[str, tuple[float, dict[str, float]]] = {}
    for domain, extra in ALONE.items():
        cpu, wall, records = _calibration_run(cluster, workdir, domain, extra, seconds)
        runs[domain] = (cpu - idle_per_s * wall, records)
        print(f"calibration {domain}: {records[domain]:.0f} records, {cpu:.1f} CPU s "
              f"({runs[domain][0]:.1f} beyond idle)", flush=True)
    costs = {}
    cc_cpu, cc_records = runs["call center"]
    cc_per_record = cc_cpu / cc_records["call center"] if cc_records["call center"] else 0.0
    for domain, (cpu, records) in runs.items():
        own = cpu - (cc_per_record * records["call center"] if domain != "call center" else 0.0)
        costs[domain] = round(1000 * own / records[domain], 3) if records[domain] else float("nan")
    costs["idle worker, CPU s per s"] = round(idle_per_s, 3)
    print(f"CPU seconds per 1,000 records: {costs}", flush=True)
    return costs


def soak(cluster: Cluster, workdir: Path, multiple: float, duration: float, count: int,
         partitions: int, warmup: float = 0.0) -> dict[str, Any]:
    """The load for `warmup` + `duration` seconds; lag and RSS are judged on the samples after
    the warm-up (the simulated call center staffing up: its state grows until it is full)."""
    deployment = Deployment(broker=cluster, workdir=workdir / "soak", partitions=partitions,
                            extra_env={"REPLICATION_FACTOR": 3, "MIN_INSYNC_REPLICAS": 2, "LOG_LEVEL": "warning"})
    deployment.workdir.mkdir(parents=True, exist_ok=True)
    workers = _start(deployment, count)
    rate, drivers = SEED_QUEUE_LOG * multiple, SEED_DRIVERS * multiple
    processes = max(1, int(-(-(rate + drivers) // 3000)))
    sim = simulate(deployment, ["--rate", str(rate), "--driver-statuses", str(drivers),
                                "--processes", str(processes)], warmup + duration, deployment.workdir / "simulate.log")
    samples = []
    started = time.monotonic()
    cpu_before = cpu_last = machine_cpu()
    try:
        while sim.poll() is None and time.monotonic() - started < warmup + duration + 60:
            time.sleep(SAMPLE_S)
            now = machine_cpu()
            row = {"t": round(time.monotonic() - started), "workers": [sample(w) for w in workers],
                   "cores": cpu_shares(cpu_last, now)}
            cpu_last = now
            samples.append(row)
            ws = row["workers"]
            rss = "/".join(f"{w.get('rss_mb', 0):.0f}" for w in ws)
            lag = "/".join(f"{w.get('lag', 0):.0f}" for w in ws)
            keys = sum(w.get("keys", 0) for w in ws)
            cores = " ".join(f"{k}={v}" for k, v in row["cores"].items())
            print(f"t={row['t']:4d}s lag={lag} rss={rss} MB keys={keys:.0f} cores: {cores}", flush=True)
    finally:
        sim.wait(120) if sim.poll() is None else None
        time.sleep(10)
        final = [sample(w) for w in workers]
        cpu_after = machine_cpu()
        for w in workers:
            w.stop()
    measured = [r for r in samples if r["t"] > warmup]
    third = max(1, len(measured) // 3)

    def mean(rows, key):
        values = [sum(w.get(key, 0) for w in r["workers"]) for r in rows]
        return sum(values) / len(values) if values else 0.0

    taken = [per_domain(w["taken"]) for w in final if "taken" in w]
    return {
        "multiple": multiple, "queue_log_per_s": rate, "driver_statuses_per_s": drivers, "workers": count,
        "partitions": partitions, "seconds": duration, "warmup_s": warmup, "samples": samples,
        "lag_first_third": mean(measured[:third], "lag"), "lag_last_third": mean(measured[-third:], "lag"),
        "rss_first_third_mb": mean(measured[:third], "rss_mb"), "rss_last_third_mb": mean(measured[-third:], "rss_mb"),
        "keys_first_third": mean(measured[:third], "keys"), "keys_last_third": mean(measured[-third:], "keys"),
        "cpu_s": sum(w.get("cpu_s", 0) for w in final),
        "cores": cpu_shares(cpu_before, cpu_after),
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
    parser.add_argument("--warmup", type=float, default=0.0, metavar="S",
                        help="seconds of load before the measured part (the simulated center staffing up)")
    parser.add_argument("--partitions", type=int, default=6,
                        help="partitions of every topic (default 6, as docker-compose.yml ships for its three workers)")
    parser.add_argument("--calibrate", type=float, default=0.0, metavar="S",
                        help="after the soak, each domain's load alone for S seconds on one worker (0: skip)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-soak-"))
    cluster = Cluster(workdir / "kafka")
    cluster.start()
    try:
        result = soak(cluster, workdir, args.multiple, args.duration, args.workers, args.partitions, args.warmup)
        # after the soak: each calibration's topics (replicated, idle after it) would cost the
        # brokers CPU during the soak (seen: 0.9 -> 1.2 cores, the workers' share falling with it)
        costs = calibrate(cluster, workdir, args.calibrate) if args.calibrate else {}
    finally:
        cluster.stop()
    result.update(cpu_s_per_1000=costs, machine=f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
                  at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=1))
    grew = result["lag_last_third"] > max(1000.0, 2 * result["lag_first_third"])
    keys_grew = result["keys_last_third"] / result["keys_first_third"] if result["keys_first_third"] else 1.0
    rss_grew = result["rss_last_third_mb"] > 1.1 * max(1.0, keys_grew) * result["rss_first_third_mb"]
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
    print(f"lag {'GREW' if grew else 'steady'}: {result['lag_first_third']:.0f} -> {result['lag_last_third']:.0f} "
          f"records; RSS {'GREW' if rss_grew else 'steady'}: {result['rss_first_third_mb']:.0f} -> "
          f"{result['rss_last_third_mb']:.0f} MB (table keys x{keys_grew:.2f}); written to {out}")
    return 1 if grew or rss_grew or result["delivery_failures"] or result["http_500"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
