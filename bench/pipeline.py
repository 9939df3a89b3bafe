"""`make bench`: pipeline throughput against the raw-consumer ceiling, side by side.

One run, one broker (started here, on free ports), the same `qapp-events` records:
1. ceiling: a plain aiokafka consumer reads every record and decodes it with the
   service's own decoder (`queue_log.decode` + `interpret`);
2. pipeline: one Faust worker consumes the same kind of records into its tables and
   windows; done when the windows hold every fact (read back over HTTP).
Writes bench/results/<date>.json and appends a row to bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from app.ingest import record_key
from app.simulate import CallCenterSimulation
from tables.callcenter import queue_log
from tables.callcenter.queue_log import to_line
from tests.harness import MANAGER, Broker, Deployment, Worker, free_port, http_get, produce

HERE = Path(__file__).parent
FACT_EVENTS = {"ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "COMPLETECALLER", "ABANDON", "EXITWITHTIMEOUT", "EXITEMPTY", "EXITWITHKEY"}


def say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def traffic(events: int, seed: int) -> list[str]:
    """About `events` simulated queue_log lines ending now (busy call center: 40 ev/s, 120 operators)."""
    rate = 40.0
    end = time.time()
    sim = CallCenterSimulation(seed=seed, start=end - events / rate, rate=rate, operators=120)
    return [to_line(r) for r in sim.advance(end)][:events]


async def ceiling(bootstrap: str, topic: str, expected: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None, max_partition_fetch_bytes=4 << 20)
    await consumer.start()
    seen = 0
    try:
        started = None
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


def windows_total(worker: Worker, queues: set[str], since: float) -> int:
    total = 0
    for q in queues:
        status, body = http_get(f"{worker.url}/queues/{q}/metrics?since={since}&until={time.time() + 60}", MANAGER)
        if status != 200:
            return -1
        total += sum(w["entered"] + w["answered"] + w["unanswered"] + w["completed"] for w in body["windows"])
    return total


def machine() -> dict:
    cpu = "unknown"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    return {
        "cores": os.cpu_count(), "cpu": cpu, "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(), "java": java,
        "faust-streaming": version("faust-streaming"), "aiokafka": version("aiokafka"), "rocksdict": version("rocksdict"),
        "kafka": "4.1.1 (KRaft, single node)",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra worker setting")
    args = parser.parse_args()

    lines = traffic(args.events, args.seed)
    facts = sum(1 for l in lines if l.split("|")[4] in FACT_EVENTS)
    queues = {l.split("|")[2] for l in lines if l.split("|")[4] == "ENTERQUEUE"}
    records = [(record_key(l), l.encode()) for l in lines]
    say(f"{len(lines)} queue_log lines ({facts} window facts, {len(queues)} queues)")

    workdir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    broker = Broker(port=free_port(), directory=workdir / "kafka")
    broker.start()
    worker = None
    try:
        raw = Deployment(broker=broker, workdir=workdir, partitions=args.partitions)
        produce(broker.bootstrap, raw.topic("qapp-events"), records)
        say("ceiling: plain aiokafka consumer + the service's decoder ...")
        ceiling_eps = asyncio.run(ceiling(broker.bootstrap, raw.topic("qapp-events"), len(records)))
        say(f"ceiling: {ceiling_eps:,.0f} events/s")

        deployment = Deployment(broker=broker, workdir=workdir, partitions=args.partitions,
                                extra_env={"LOG_LEVEL": "warning", "STALE_AFTER_S": 10**9, **dict(e.split("=", 1) for e in args.env)})
        worker = Worker(deployment, 1).start().wait_ready()
        say("pipeline: producing, then waiting until every fact is in the windows ...")
        started = time.perf_counter()
        produce(broker.bootstrap, deployment.topic("qapp-events"), records)
        since = float(lines[0].split("|")[0]) - 120
        last_report = 0.0
        while (done := windows_total(worker, queues, since)) < facts:
            now = time.perf_counter()
            if now - last_report > 5:
                say(f"  {done}/{facts} facts in windows after {now - started:.0f} s")
                last_report = now
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        pipeline_eps = len(records) / elapsed
        say(f"pipeline: {pipeline_eps:,.0f} events/s ({elapsed:.1f} s)")
    finally:
        if worker:
            worker.stop()
        broker.stop()

    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "events": len(records), "partitions": args.partitions, "workers": 1,
        "ceiling_events_per_s": round(ceiling_eps), "pipeline_events_per_s": round(pipeline_eps),
        "ratio": round(pipeline_eps / ceiling_eps, 4), "machine": machine(),
    }
    out = HERE / "results" / f"{time.strftime('%Y-%m-%d', time.gmtime())}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    _append_row(result)
    print(json.dumps(result, indent=2))
    return 0


def _append_row(r: dict) -> None:
    readme = HERE / "README.md"
    row = (f"| {r['date']} | {r['events']} | {r['partitions']} | {r['workers']} | {r['ceiling_events_per_s']:,} | "
           f"{r['pipeline_events_per_s']:,} | {r['ratio']:.4f} | {r['machine']['cores']} × {r['machine']['cpu']} |\n")
    with readme.open("a") as f:
        f.write(row)


if __name__ == "__main__":
    sys.exit(main())
