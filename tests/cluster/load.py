"""Load on every domain's inputs while faults happen, and what must hold afterwards.

Each feeder runs in a thread of its own and keeps what was acknowledged: queue_log lines
(produced with acks=all, the reference replays them), operator status commands, IVR holds,
session statuses for the KRT caches (produced), chats and their messages. `check_*` compare
what the workers answer with that, from every worker given.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional
from urllib.parse import quote

import aiohttp
import orjson

from app.ingest import record_key
from tests.harness import (
    MANAGER,
    SERVICE,
    Deployment,
    Worker,
    http_get,
    http_request,
    produce,
    topics_of,
    wait_until,
)
from tests.integration.chatclient import connect
from tests.integration.expectations import expect

OPERATOR_TOKEN = "test-operator-token"
CRM_STATUSES = ("ONLINE", "BREAK", "MEETING", "TRAINING")
CHAT_API = "/api/v1/chat"


def _records(lines: list[str]) -> list[tuple[bytes, bytes]]:
    return [(record_key(line), line.encode()) for line in lines]


KREMLIN = (55.7520, 37.6175)
DRIVER_STATUSES = ("online", "busy", "offline")


def _driver(deployment: Deployment, n: int, at: float) -> None:
    """Driver n's profile and position: in the region, working a category (its statuses go to KRT)."""
    key = f"cl{n}_d".encode()
    produce(deployment.broker.bootstrap, deployment.topic("driver-profiles"), [(key, orjson.dumps(
        {"park_id": f"cl{n}", "driver_id": "d", "driver_license_pd_id": f"pd-cl{n}", "categories": ["econom"]}))])
    produce(deployment.broker.bootstrap, deployment.topic("driver-positions"), [(key, orjson.dumps(
        {"park_id": f"cl{n}", "driver_id": "d", "lat": KREMLIN[0], "lon": KREMLIN[1], "time": at}))])


@dataclass
class Load:
    """Every domain's load, against whichever worker of `workers()` answers."""

    deployment: Deployment
    workers: Callable[[], list[Worker]]
    lines: list[str]  # queue_log lines sent while the load runs (after `sent_before`)
    sent_before: list[str] = field(default_factory=list)
    operators: int = 8
    holds: int = 60
    drivers: int = 12
    driver_statuses: int = 360
    krt: Any = None  # the KRT sandbox (tests/cluster/conftest.py): what it took
    chats: int = 4
    messages_per_chat: int = 15
    duration_s: float = 20.0
    # what was acknowledged
    crm_sent: dict = field(default_factory=dict)  # operator -> [(status, acknowledged)]
    holds_acked: list = field(default_factory=list)  # phones
    holds_refused: int = 0
    driver_sent: dict = field(default_factory=dict)  # pd id -> (status, at) last produced
    chats_acked: dict = field(default_factory=dict)  # chat_id -> client token
    messages_acked: dict = field(default_factory=dict)  # chat_id -> [texts]
    messages_unacked: int = 0
    errors: list = field(default_factory=list)
    threads: list = field(default_factory=list)

    def _any(self, n: int) -> Worker:
        live = [w for w in self.workers() if w.process is not None and w.process.poll() is None]
        return live[n % len(live)]

    def prepare(self) -> None:
        """What must exist before the load: the drivers' profiles and positions."""
        now = time.time()
        for n in range(self.drivers):
            _driver(self.deployment, n, now - 5)

    def start(self) -> "Load":
        for target in (self._queue_log, self._crm, self._ivr, self._drivers, self._chat):
            thread = threading.Thread(target=self._guarded, args=(target,), daemon=True, name=target.__name__)
            thread.start()
            self.threads.append(thread)
        return self

    def join(self, timeout: float = 180) -> None:
        for thread in self.threads:
            thread.join(timeout)
            assert not thread.is_alive(), f"feeder {thread.name} still running"
        assert not self.errors, self.errors

    def _guarded(self, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception as exc:  # reported by join
            self.errors.append(f"{target.__name__}: {type(exc).__name__}: {exc}")

    def _paced(self, count: int):
        """0..count-1, spread over `duration_s`."""
        started = time.monotonic()
        for n in range(count):
            delay = started + self.duration_s * n / count - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield n

    # --- feeders ---

    def _queue_log(self) -> None:
        topic = self.deployment.topic("qapp-events")
        chunks = 40
        size = max(1, len(self.lines) // chunks + 1)
        for n in self._paced(chunks):
            part = self.lines[n * size:(n + 1) * size]
            if part:  # acks=all; a failed send raises (the line would not be in the reference)
                produce(self.deployment.broker.bootstrap, topic, _records(part))

    def _crm(self) -> None:
        for n in self._paced(self.operators * 12):
            operator = f"SIP/95{n % self.operators:02d}"
            status = CRM_STATUSES[(n // self.operators) % len(CRM_STATUSES)]
            try:
                code, _ = http_request("POST", f"{self._any(n).url}/operators/{quote(operator, safe='')}/status",
                                       {"status": status, "reason": "cluster test"}, OPERATOR_TOKEN, timeout=15)
            except OSError:
                code = 0
            self.crm_sent.setdefault(operator, []).append((status, code == 202))

    def _ivr(self) -> None:
        for n in self._paced(self.holds):
            phone = f"+7916{n:07d}"
            try:
                code, body = http_request("POST", f"{self._any(n).url}/routetoivr",
                                          {"phone": phone, "order_id": f"order-{n}", "order_time_s": 3600},
                                          SERVICE, timeout=15)
            except OSError:
                code = 0
            if code == 200:
                self.holds_acked.append(phone)
            else:
                self.holds_refused += 1

    def _drivers(self) -> None:
        topic = self.deployment.topic("contractor-status")
        chunks = 30
        size = self.driver_statuses // chunks
        base = time.time()
        for c in self._paced(chunks):
            records = []
            for i in range(c * size, (c + 1) * size):
                n, status, at = i % self.drivers, DRIVER_STATUSES[(i // self.drivers) % 3], base + i * 0.01
                records.append((f"cl{n}_d".encode(), orjson.dumps({"park_id": f"cl{n}", "driver_id": "d",
                                                                   "status": status, "time": at})))
                self.driver_sent[f"pd-cl{n}"] = (status, at)
            produce(self.deployment.broker.bootstrap, topic, records)

    def _chat(self) -> None:
        asyncio.run(self._chats())

    async def _chats(self) -> None:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(self._one_chat(session, c) for c in range(1, self.chats + 1)))

    async def _one_chat(self, session: aiohttp.ClientSession, c: int) -> None:
        token = f"test-client-{c}"
        chat_id: Optional[str] = None
        for attempt in range(60):  # opening is a command too: retried until acknowledged
            try:  # a worker stopping between the choice and the request refuses the connection
                code, body = await asyncio.to_thread(http_request, "POST",
                                                     self._any(c + attempt).url + CHAT_API + "/chats",
                                                     {"queue": "general", "text": f"chat {c} opens"}, token, 15)
            except OSError:
                code, body = 0, None
            if code == 201:
                chat_id = body["chat_id"]
                break
            await asyncio.sleep(0.5)
        assert chat_id is not None, f"no chat opened for client {c}"
        self.chats_acked[chat_id] = token
        acked = self.messages_acked.setdefault(chat_id, [])
        socket = None
        gap = self.duration_s / self.messages_per_chat
        for n in range(self.messages_per_chat):
            text = f"client {c} line {n}"
            try:
                if socket is None:
                    socket = await connect(session, self._any(c + n).url, token, chat_id)
                rid = await socket.send("message", {"text": text})
                await socket.next("message", lambda f: f.get("request_id") == rid, timeout=15)
                acked.append(text)
            except (AssertionError, aiohttp.ClientError, OSError):
                self.messages_unacked += 1
                if socket is not None:
                    await socket.close()
                socket = None
            await asyncio.sleep(gap)
        if socket is not None:
            await socket.close()

    # --- checks ---

    def check_all(self, workers: list[Worker], timeout: float = 180) -> dict:
        """Every check on every worker; what was measured, for the report."""
        for worker in workers:
            wait_until(lambda: http_get(worker.url + "/ready", timeout=5)[0] == 200, timeout, 1.0,
                       f"{worker.url} to be ready again")
        self.check_call_center(workers, timeout)
        self.check_crm(workers, timeout)
        self.check_ivr(workers, timeout)
        self.check_drivers(workers, timeout)
        self.check_chat(workers, timeout)
        return {"lines": len(self.sent_before) + len(self.lines), "holds": len(self.holds_acked),
                "holds_refused": self.holds_refused, "crm_commands": sum(len(v) for v in self.crm_sent.values()),
                "crm_acked": sum(ok for v in self.crm_sent.values() for _, ok in v),
                "driver_statuses": self.driver_statuses, "chats": len(self.chats_acked),
                "messages": sum(len(v) for v in self.messages_acked.values()), "messages_unacked": self.messages_unacked}

    def check_call_center(self, workers: list[Worker], timeout: float) -> None:
        lines = self.sent_before + self.lines
        expected = expect(lines)
        want = {q: (len(expected.waiting[q]), expected.operators(q)) for q in expected.queues}
        since = float(lines[0].split("|")[0]) - 60

        for worker in workers:
            def complete(worker=worker):
                status, body = http_get(worker.url + "/queues/status", MANAGER)
                assert status == 200, body
                # complete (every worker's share) and caught up; `stale` may be set by the age of the
                # last event alone: the traffic ended when it was generated
                assert "unavailable_workers" not in body and body["backlog_records"] == 0, \
                    {k: v for k, v in body.items() if k != "queues"}
                got = {q["queue"]: (q["calls_waiting"], q["operators"]) for q in body["queues"]}
                assert len(got) == len(body["queues"]), "a queue answered twice"
                diff = {q: (got.get(q), want.get(q)) for q in set(got) | set(want) if got.get(q) != want.get(q)}
                assert not diff, f"queues differ (got, want): {diff}"
                return True

            try:
                wait_until(complete, timeout, 1.0, f"{worker.url}: every queue's status as the reference")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_diagnosis(workers, sorted(want)[0], since)}") from None
            for queue in sorted(expected.queues):
                wanted = [w for w in expected.window_views(queue) if w["end"] > since]

                def windows(worker=worker, queue=queue, wanted=wanted):
                    status, body = http_get(f"{worker.url}/queues/{quote(queue)}/metrics?since={since}"
                                            f"&until={time.time()}", MANAGER)
                    assert status == 200, body
                    got = body["windows"]
                    starts, wanted_starts = [w["start"] for w in got], [w["start"] for w in wanted]
                    assert starts == wanted_starts, (f"window starts: extra {sorted(set(starts) - set(wanted_starts))}, "
                                                     f"missing {sorted(set(wanted_starts) - set(starts))}")
                    diff = [(w["start"], {k: (w[k], v[k]) for k in w if w[k] != v[k]})
                            for w, v in zip(got, wanted) if w != v]
                    assert not diff, f"windows differ (got, want): {diff}"
                    return True

                try:
                    wait_until(windows, timeout, 1.0, f"{worker.url}: windows of {queue}, each fact once")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{_diagnosis(workers, queue, since)}") from None

    def check_crm(self, workers: list[Worker], timeout: float) -> None:
        for operator, sent in self.crm_sent.items():
            acked = [i for i, (_, ok) in enumerate(sent) if ok]
            assert acked, f"no status command for {operator} was acknowledged: {sent}"
            # the last acknowledged command, or one sent after it whose fate is unknown
            allowed = {status for status, _ in sent[acked[-1]:]}
            for worker in workers:
                def reached(worker=worker, operator=operator):
                    status, view = http_get(f"{worker.url}/operators/{quote(operator, safe='')}", MANAGER)
                    assert status == 200, view
                    assert view.get("crm_status") in allowed, (view.get("crm_status"), allowed, sent)
                    return True

                wait_until(reached, timeout, 0.5, f"{worker.url}: {operator}'s CRM status")

    def check_ivr(self, workers: list[Worker], timeout: float) -> None:
        for worker in workers:
            for phone in self.holds_acked:
                def held(worker=worker, phone=phone):
                    status, body = http_get(f"{worker.url}/routing?phone={quote(phone, safe='')}", SERVICE)
                    assert status == 200 and body["target"] == "ivr", body
                    return True

                wait_until(held, timeout, 0.5, f"{worker.url}: the acknowledged hold of {phone}")

    def check_drivers(self, workers: list[Worker], timeout: float) -> None:
        """KRT got each driver's newest status last (latest-only: older ones may be skipped,
        never sent after a newer one); every driver's session is on the cache feed."""
        from dev.personal import license_for

        def at_krt():
            taken: dict[str, list] = {}
            for r in http_get(self.krt.control + "/requests")[1]:
                if r["endpoint"] == "status" and r["status"] == 200:
                    taken.setdefault(r["body"]["license_number"], []).append((r["body"]["status"], r["body"]["at"]))
            for pd_id, (status, at) in self.driver_sent.items():
                got = taken.get(license_for(pd_id), [])
                assert got and got[-1][0] == status and abs(got[-1][1] - at) < 1e-3, (pd_id, (status, at), got[-3:])
                assert [a for _, a in got] == sorted(a for _, a in got), f"{pd_id}: an older status after a newer one"
            return True

        wait_until(at_krt, timeout, 1.0, "KRT to have every driver's newest status")
        for worker in workers:
            def complete(worker=worker):
                seen: set[str] = set()
                cursor = None
                while True:
                    status, body = http_get(f"{worker.url}/internal/v1/status/updates?limit=500"
                                            + (f"&cursor={cursor}" if cursor else ""), SERVICE)
                    assert status == 200, body
                    seen.update(item["driver_license_pd_id"] for item in body["items"])
                    cursor = body["cursor"]
                    if not body["more"]:
                        break
                assert set(self.driver_sent) <= seen, set(self.driver_sent) - seen
                return True

            wait_until(complete, timeout, 1.0, f"{worker.url}: the KRT cache feed has every driver's session")

    def check_chat(self, workers: list[Worker], timeout: float) -> None:
        for chat_id, token in self.chats_acked.items():
            acked = self.messages_acked.get(chat_id, [])
            for worker in workers:
                def complete(worker=worker, chat_id=chat_id, token=token, acked=acked):
                    status, body = http_get(f"{worker.url}{CHAT_API}/chats/{chat_id}/messages", token)
                    assert status == 200, body
                    texts = [m["message"] for m in body["messages"]]
                    assert len(texts) == len(set(texts)), f"a message twice in {chat_id}: {texts}"
                    ids = [m["message_id"] for m in body["messages"]]
                    assert ids == sorted(set(ids)), ids
                    missing = [t for t in acked if t not in texts]
                    assert not missing, f"acknowledged messages missing from {chat_id}: {missing}"
                    return True

                wait_until(complete, timeout, 1.0, f"{worker.url}: every acknowledged message of {chat_id}, once")


def _diagnosis(workers: list[Worker], queue: str, since: float) -> str:
    """What each worker holds of `queue` itself (no forwarding), for a failure message."""
    import urllib.request

    lines = []
    for worker in workers:
        for path in (f"/queues/{quote(queue)}/status", f"/queues/{quote(queue)}/metrics?since={since}&until={time.time()}",
                     "/ready"):
            request = urllib.request.Request(worker.url + path, headers={"Authorization": f"Bearer {MANAGER}",
                                                                         "X-Switchboard-Forwarded": "1"})
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    body = orjson.loads(resp.read())
            except Exception as exc:  # a diagnosis: whatever happened
                body = repr(exc)
            if isinstance(body, dict) and "windows" in body:
                body = {"starts": [w["start"] for w in body["windows"]]}
            lines.append(f"{worker.url}{path}: {str(body)[:600]}")
    return "\n".join(lines)


def leader_node(cluster: Any, deployment: Deployment) -> int:
    """The node leading most partitions of the input and changelog topics."""
    from collections import Counter

    names = [deployment.topic(t) for t in ("qapp-events", "operator-commands", "ivr-commands",
                                           "deptrans-session-statuses", "chat_events")]
    leaders = cluster.leaders(names + changelogs(cluster, deployment))
    return Counter(leaders.values()).most_common(1)[0][0]


def changelogs(cluster: Any, deployment: Deployment) -> list[str]:
    return [t for t in topics_of(deployment) if "changelog" in t]


def tables_agree(workers: list[Worker]) -> list[str]:
    """Every table partition two stopped workers hold at the same changelog offset holds the
    same keys on both (a standby or a recovery that skipped records shows here, even for keys
    no check above reads). What differs, as lines."""
    import collections

    import rocksdict

    held: dict[tuple[str, str], dict[str, tuple[bytes, frozenset]]] = collections.defaultdict(dict)
    for worker in workers:
        for path in sorted(worker.data_dir.glob("v1/tables/*.db")):
            table, partition = path.stem.rsplit("-", 1)
            db = rocksdict.Rdict(str(path), options=rocksdict.Options(raw_mode=True),
                                 access_type=rocksdict.AccessType.read_only())
            try:
                offset = db.get(b"__faust\x00offset__")
                if offset is not None:
                    keys = frozenset(k for k in db.keys() if not k.startswith(b"__faust"))
                    held[(table, partition)][worker.url] = (offset, keys)
            finally:
                db.close()
    problems = []
    for (table, partition), copies in sorted(held.items()):
        by_offset: dict[bytes, set[frozenset]] = collections.defaultdict(set)
        for offset, keys in copies.values():
            by_offset[offset].add(keys)
        for offset, variants in by_offset.items():
            if len(variants) > 1:
                problems.append(f"{table} partition {partition} at offset {offset.decode()}: key counts "
                                f"{sorted(len(v) for v in variants)} on {sorted(copies)}")
    return problems
