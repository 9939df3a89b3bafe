"""The benchmarks' load, from the service's simulator (dev/simulate.py), in two forms.

- `lines_for(events, seed)`: that many queue_log lines of a busy call center, made offline
  (deterministic for a seed), ending now: the throughput rows and bench/profile.py replay them.
- `python -m bench.load --bootstrap B --topic T --rate R --duration S`: the live simulator
  (`python -m app simulate`'s own shell, paced at exactly R events/s with a call center sized
  for R) producing to T; prints `ready` once the producer may start, then one JSON line at
  the end: `{"sent": n, "seconds": s, "rate": n/s}`. Used by `make bench`'s latency runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from app.settings import Settings
from dev.simulate import CallCenterSimulation, run
from tables.callcenter.queue_log import to_line

__all__ = ["lines_for", "main"]

LINES_RATE = 40.0  # events/s of the call center `lines_for` plays


def lines_for(events: int, seed: int) -> list[str]:
    """`events` simulated queue_log lines (a busy call center, from its first logins), oldest first."""
    span = 1.2 * events / LINES_RATE + 10.0  # the simulator keeps to its rate: a margin is enough
    end = time.time()
    sim = CallCenterSimulation(seed=seed, start=end - span, rate=LINES_RATE)
    return [to_line(r) for r in sim.advance(end)][:events]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    settings = Settings(kafka_bootstrap=args.bootstrap, topic_qapp_events=args.topic)
    print("ready", flush=True)  # the simulator paces itself from its first record
    sent = asyncio.run(run(settings, rate=args.rate, duration=args.duration, seed=args.seed, progress=False))
    # the pacer's clock starts with the producer: `duration` is the time it sent for
    print(json.dumps({"sent": sent, "seconds": args.duration, "rate": round(sent / args.duration, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
