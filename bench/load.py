"""A paced load of queue_log lines: `python -m bench.load --bootstrap B --topic T --rate R --duration S`.

The lines come from the service's simulator (deterministic with `--seed`); each is sent
at its due time, with its time column rewritten to the moment it is sent, so the service
sees a live call center at exactly R events/s. Prints one JSON line at the end:
`{"sent": n, "seconds": s, "rate": n/s}`. Used by `make bench`'s latency runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from aiokafka import AIOKafkaProducer

from app.ingest import record_key
from dev.simulate import CallCenterSimulation
from tables.callcenter.queue_log import to_line

TICK_S = 0.005


def lines_for(events: int, seed: int) -> list[str]:
    """About `events` simulated queue_log lines (a busy call center), oldest first."""
    rate = 40.0
    end = time.time()
    sim = CallCenterSimulation(seed=seed, start=end - events / rate, rate=rate, operators=120)
    return [to_line(r) for r in sim.advance(end)][:events]


def restamped(line: str, now: float) -> bytes:
    return f"{now:.3f}|{line.split('|', 1)[1]}".encode()


async def send_paced(bootstrap: str, topic: str, lines: list[str], rate: float, duration: float) -> dict:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    loop = asyncio.get_running_loop()
    sent = 0
    try:
        started = loop.time()
        while (elapsed := loop.time() - started) < duration and sent < len(lines):
            due = min(len(lines), int(elapsed * rate))
            now = time.time()
            for line in lines[sent:due]:
                await producer.send(topic, restamped(line, now), key=record_key(line))
            sent = max(sent, due)
            await asyncio.sleep(TICK_S)
        seconds = loop.time() - started
        await producer.flush()
    finally:
        await producer.stop()
    return {"sent": sent, "seconds": round(seconds, 3), "rate": round(sent / seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--rate", type=float, required=True, help="events per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    lines = lines_for(int(args.rate * args.duration) + 1, args.seed)
    print("ready", flush=True)  # the lines are made: the clock may start
    print(json.dumps(asyncio.run(send_paced(args.bootstrap, args.topic, lines, args.rate, args.duration))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
