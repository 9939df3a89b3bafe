"""Support chat's part of `make bench` (issue 11's figures):

- message delivery: clients connected to one worker, their operators to the other, clients
  sending 200 messages/s in all (open loop, round robin over the chats): from a client's
  send to the operator's socket receiving it (the path: WebSocket -> the edge -> chat-work ->
  the desk -> chat-outbox -> the operator's worker -> WebSocket; the record on chat_events beside), p50/p99/max, and how many
  never arrived; the first WARMUP_S of messages are sent but counted apart (`warmup_max_ms`);
- accept races: two operators on two workers accept the same chat at once, `races` times
  (in rounds of 50; each winner closes its chat): how many had exactly one winner.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.pipeline import percentile
from tests.harness import Broker, Deployment, Worker, http_request, produce
from tests.integration.chatclient import Socket, connect

__all__ = ["accept_races", "message_latency"]

CHATS = 20
WARMUP_S = 3.0
OPERATORS = 4
TOKENS = ",".join([*(f"bench-client-{n}=client:bc{n}" for n in range(CHATS)),
                   *(f"bench-op-{n}=operator:bop{n}" for n in range(OPERATORS)),
                   "bench-admin=admin:boss", "bench-service=service"])
ENV = {"AUTH_TOKENS": TOKENS, "CHAT_RATE_PER_S": 10_000, "CHAT_RATE_BURST": 10_000}


def _fleet(broker: Broker, workdir: Path, env: dict) -> tuple[Deployment, list[Worker]]:
    deployment = Deployment(broker=broker, workdir=workdir, extra_env={**env, **ENV})
    fleet = [Worker(deployment, 1).start(), Worker(deployment, 2).start()]
    for w in fleet:
        w.wait_ready(120)
    return deployment, fleet


async def _online(socket: Socket, capacity: int) -> None:
    rid = await socket.send("set_status", {"status": "online", "capacity": capacity})
    await socket.next("operator_status", lambda f: f.get("request_id") == rid, timeout=30)


async def _latency(fleet: list[Worker], per_s: float, seconds: float) -> dict[str, Any]:
    clients_at, operators_at = fleet[0].url, fleet[1].url
    async with aiohttp.ClientSession() as session:
        operators = [await connect(session, operators_at, f"bench-op-{n}") for n in range(OPERATORS)]
        for op in operators:
            await _online(op, CHATS)
        chats = []
        for n in range(CHATS):
            status, body = await asyncio.to_thread(http_request, "POST", f"{clients_at}/api/v1/chat/chats",
                                                   {"text": "hello"}, f"bench-client-{n}")
            if status not in (201, 202):  # 202: taken, the desk busy (a rebalance just after the start)
                raise RuntimeError(f"POST /chats answered {status}: {body}")
            op = operators[n % OPERATORS]
            rid = await op.send("accept_chat", {"chat_id": body["chat_id"]})
            answer = await op.next(where=lambda f, rid=rid: f.get("request_id") == rid, timeout=30)
            if answer["type"] != "chat_assigned":
                raise RuntimeError(f"accept answered {answer}")
            chats.append((body["chat_id"], await connect(session, clients_at, f"bench-client-{n}", body["chat_id"]), op))
        sent: dict[str, float] = {}
        arrived: dict[str, float] = {}

        def watch(op: Socket) -> None:
            while op.seen < len(op.frames):
                frame, at = op.frames[op.seen], op.received_at[op.seen]
                op.seen += 1
                if frame["type"] == "message" and frame["payload"]["sender_role"] == "client":
                    arrived.setdefault(frame["payload"]["client_message_id"], at)

        interval, began = 1.0 / per_s, time.perf_counter()
        warm = int(per_s * WARMUP_S)  # sent first, not counted: the first second has a stall of its own
        for i in range(warm + int(per_s * seconds)):
            delay = began + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            chat_id, client, _ = chats[i % CHATS]
            message_id = f"m{i}" if i >= warm else f"w{i}"
            sent[message_id] = time.perf_counter()
            await client.ws.send_str(orjson.dumps({"type": "message", "payload": {
                "text": f"message {i}", "client_message_id": message_id}}).decode())
        rate = len(sent) / (time.perf_counter() - began)
        warmup = {m: sent.pop(m) for m in [m for m in sent if m.startswith("w")]}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for op in operators:
                watch(op)
            if all(m in arrived for m in sent) and all(m in arrived for m in warmup):
                break
            await asyncio.sleep(0.05)
        for op in operators:
            watch(op)
        ms = [1000 * (arrived[m] - sent[m]) for m in sent if m in arrived]
        warm_ms = [1000 * (arrived[m] - warmup[m]) for m in warmup if m in arrived]
        # when the slowest were sent (s after the first): a stall shows as a cluster
        slowest = sorted(((1000 * (arrived[m] - sent[m]), sent[m] - began) for m in sent if m in arrived),
                         reverse=True)[: max(1, len(ms) // 100)]
        errors = [f["payload"] for _, client, _ in chats for f in client.frames if f["type"] == "error"]
        for _, client, _ in chats:
            await client.close()
        for op in operators:
            await op.close()
    return {"messages": len(sent), "rate_sent": round(rate, 1), "arrived": len(ms), "lost": len(sent) - len(ms),
            "p50_ms": round(percentile(ms, 50) or 0, 2), "p99_ms": round(percentile(ms, 99) or 0, 2),
            "max_ms": round(max(ms, default=0), 2), "chats": CHATS, "operators": OPERATORS,
            "slowest_sent_at_s": sorted({round(at, 1) for _, at in slowest}), "warmup_s": WARMUP_S,
            "warmup_max_ms": round(max(warm_ms, default=0), 2), "warmup_lost": len(warmup) - len(warm_ms),
            "errors": len(errors), "error_codes": sorted({e["code"] for e in errors})}


def message_latency(broker: Broker, workdir: Path, per_s: float, seconds: float, env: dict) -> dict[str, Any]:
    _, fleet = _fleet(broker, workdir, env)
    try:
        return {"workers": 2, "per_s": per_s, **asyncio.run(_latency(fleet, per_s, seconds))}
    finally:
        for w in fleet:
            w.stop()


async def _until(op: Socket, done: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not done(op.frames):
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {timeout} s; last frames {op.frames[-5:]}")
        await asyncio.sleep(0.01)


async def _races(deployment: Deployment, fleet: list[Worker], races: int) -> dict[str, Any]:
    outcomes = {"exactly_one_winner": 0, "two_winners": 0, "no_winner": 0}
    async with aiohttp.ClientSession() as session:
        one, two = (await connect(session, fleet[0].url, "bench-op-0"), await connect(session, fleet[1].url, "bench-op-1"))
        for op in (one, two):
            await _online(op, 100)
        began = time.perf_counter()
        for first in range(0, races, 50):
            ids = [f"race-{uuid.uuid4().hex[:12]}" for _ in range(min(50, races - first))]
            records = [(i.encode(), orjson.dumps({"type": "chat_created", "chat_id": i, "client_id": "bc0",
                                                  "at": time.time()})) for i in ids]
            await asyncio.to_thread(produce, deployment.broker.bootstrap, deployment.topic("chat_events"), records)
            for op in (one, two):
                await _until(op, lambda frames: set(ids) <= {f["payload"]["chat_id"] for f in frames
                                                            if f["type"] == "new_chat_available"})
            asks = []
            for i in ids:  # both at once, for every chat of the round
                asks.append(await asyncio.gather(one.send("accept_chat", {"chat_id": i}),
                                                 two.send("accept_chat", {"chat_id": i})))
            for op, mine in ((one, {r1 for r1, _ in asks}), (two, {r2 for _, r2 in asks})):
                await _until(op, lambda frames, mine=mine: mine <= {f.get("request_id") for f in frames})
            answered = {f["request_id"]: f for op in (one, two) for f in op.frames if f.get("request_id")}
            for i, (r1, r2) in zip(ids, asks):
                answers = [answered[r1], answered[r2]]
                won = [a for a in answers if a["type"] == "chat_assigned"]
                lost = [a for a in answers if a["type"] == "error" and a["payload"]["code"] == "already_assigned"]
                key = "exactly_one_winner" if len(won) == 1 and len(lost) == 1 else (
                    "two_winners" if len(won) == 2 else "no_winner")
                outcomes[key] += 1
                winner = one if answers[0]["type"] == "chat_assigned" else two
                await winner.send("close_chat", {"chat_id": i})
            await asyncio.sleep(0.2)  # the closes taken before the next round
        seconds = time.perf_counter() - began
        await one.close()
        await two.close()
    return {"races": races, **outcomes, "seconds": round(seconds, 1)}


def accept_races(broker: Broker, workdir: Path, races: int, env: dict) -> dict[str, Any]:
    deployment, fleet = _fleet(broker, workdir, env)
    try:
        return {"workers": 2, **asyncio.run(_races(deployment, fleet, races))}
    finally:
        for w in fleet:
            w.stop()
