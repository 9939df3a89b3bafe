"""IVR routing's part of `make bench`: where the telephony waits.

- `GET /routing?phone=` and `GET /make_call?order_id=` at 200 requests/s (open loop),
  against one worker and across two (a request reaching the worker that does not own the
  key is forwarded to the one that does): p50/p99;
- the time from `POST /routetoivr` answering to the rule being on `ivr-routing-rules`
  (read by a consumer of the topic), at 20 commands/s: p50/p99.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from bench.pipeline import hammer, percentile
from tests.harness import SERVICE, Broker, Deployment, Worker, http_get, wait_until

__all__ = ["ivr_reads", "rule_latency"]

SEEDED = 1000  # rules and bindings in place before the reads


def phone_of(n: int) -> str:
    return f"+7916{n:07d}"


async def _seed(url: str) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {SERVICE}"}) as http:
        for n in range(SEEDED):
            for path, body in (("/routetoivr", {"phone": phone_of(n), "order_id": f"order-{n}", "ttl_s": 3600}),
                               ("/tel/inbound_number", {"order_id": f"order-{n}", "inbound_number": "+74951234567"})):
                async with http.post(url + path, json=body) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"seeding {path} answered {resp.status}: {await resp.text()}")


def _summary(latencies: list[float], errors: int) -> dict:
    ms = [1000 * x for x in latencies]
    return {"requests": len(ms) + errors, "errors": errors, "p50_ms": round(percentile(ms, 50) or 0, 2),
            "p99_ms": round(percentile(ms, 99) or 0, 2)}


def ivr_reads(broker: Broker, workdir: Path, workers: int, per_s: float, seconds: float, env: dict) -> dict:
    """Both reads at `per_s` requests/s, spread over `workers` workers (phones and orders at
    random, nine in ten known)."""
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    fleet = [Worker(deployment, i + 1).start() for i in range(workers)]
    try:
        for w in fleet:
            w.wait_ready(120)
        asyncio.run(_seed(fleet[0].url))
        last = phone_of(SEEDED - 1).replace("+", "%2B")
        wait_until(lambda: all(http_get(f"{w.url}/routing?phone={last}", SERVICE)[1]["target"] == "ivr" for w in fleet),
                   120, 0.2, "the seeded rules")
        rnd = random.Random(7)
        urls = [w.url for w in fleet]
        routing = asyncio.run(hammer(
            lambda n: f"{urls[n % len(urls)]}/routing?phone={phone_of(rnd.randrange(SEEDED * 10 // 9)).replace('+', '%2B')}",
            per_s, seconds, SERVICE))
        make_call = asyncio.run(hammer(
            lambda n: f"{urls[n % len(urls)]}/make_call?order_id=order-{rnd.randrange(SEEDED * 10 // 9)}", per_s, seconds,
            SERVICE))
    finally:
        for w in fleet:
            w.stop()
    return {"workers": workers, "per_s": per_s, "routing": _summary(*routing), "make_call": _summary(*make_call)}


async def _rule_latency(bootstrap: str, topic: str, url: str, per_s: float, seconds: float) -> list[float]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest", group_id=None)
    await consumer.start()
    answered: dict[str, float] = {}
    seen: dict[str, float] = {}

    async def watch() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for messages in batch.values():
                for m in messages:
                    if m.value is not None:
                        seen.setdefault(orjson.loads(m.value)["order_id"], now)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.sleep(1.0)  # the consumer has its partitions
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {SERVICE}"}) as http:
            run = f"{time.time():.0f}"
            for n in range(int(per_s * seconds)):
                order = f"probe-{run}-{n}"
                async with http.post(url + "/routetoivr", json={"phone": phone_of(5_000_000 + n), "order_id": order,
                                                                "ttl_s": 3600}) as resp:
                    if resp.status != 200:
                        raise RuntimeError(f"/routetoivr answered {resp.status}: {await resp.text()}")
                    answered[order] = time.perf_counter()
                await asyncio.sleep(1 / per_s)
        deadline = time.monotonic() + 30
        while set(answered) - set(seen) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        watcher.cancel()
        await consumer.stop()
    return [seen[o] - t for o, t in answered.items() if o in seen]


def rule_latency(broker: Broker, workdir: Path, per_s: float, seconds: float, env: dict) -> dict:
    deployment = Deployment(broker=broker, workdir=workdir, extra_env=env)
    worker = Worker(deployment, 1).start()
    try:
        worker.wait_ready(120)
        latencies = asyncio.run(_rule_latency(broker.bootstrap, deployment.topic("ivr-routing-rules"), worker.url,
                                              per_s, seconds))
    finally:
        worker.stop()
    sent = int(per_s * seconds)
    return {"commands": sent, "on_topic": len(latencies), **{k: v for k, v in _summary(latencies, 0).items()
                                                            if k.endswith("_ms")}}
