"""Real parts for integration tests: a Kafka broker, worker subprocesses, HTTP and Kafka clients.

Nothing here is mocked: the broker is Apache Kafka started by dev/kafka/broker.sh on
free ports, workers are `python -m app worker` processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
MANAGER = "test-manager-token"
SERVICE = "test-service-token"
# chat users: test-client-N (client cN), test-op-N (operator opN), test-lawyer-N (lawyer lawN), test-admin-token (boss)
CHAT_TOKENS = ",".join([*(f"test-client-{n}=client:c{n}" for n in range(1, 21)),
                        *(f"test-op-{n}=operator:op{n}" for n in range(1, 7)),
                        *(f"test-lawyer-{n}=lawyer:law{n}" for n in range(1, 3)), "test-admin-token=admin:boss"])
TOKENS = (f"{MANAGER}=manager,{SERVICE}=service,test-operator-token=operator,test-driver-token=driver,"
          f"{CHAT_TOKENS}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # keep trying until the deadline; report the last failure
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {last!r}")


@dataclass
class Broker:
    port: int
    directory: Path
    controller_port: int = 0  # chosen on first start, kept across restarts (the quorum remembers it)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> dict:
        if not self.controller_port:
            self.controller_port = free_port()
        return {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_CONTROLLER_PORT": str(self.controller_port),
                "KAFKA_DIR": str(self.directory)}

    def start(self) -> None:
        subprocess.run([str(ROOT / "dev/kafka/broker.sh"), "start"], env=self._env(), check=True)
        asyncio.run(_wait_for_metadata(self.bootstrap, 60))

    def stop(self) -> None:
        subprocess.run([str(ROOT / "dev/kafka/broker.sh"), "stop"], env=self._env(), check=False)


def free_port_run(count: int, low: int = 20000, high: int = 30000) -> int:
    """The first of `count` consecutive ports free on 127.0.0.1, below the kernel's ephemeral
    range (no outgoing connection can be holding one of them by chance)."""
    import random

    for _ in range(200):
        base = random.randrange(low, high - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports in {low}..{high}")


@dataclass
class Cluster:
    """A KRaft cluster of `size` nodes on 127.0.0.1 (dev/kafka/broker.sh with KAFKA_BROKERS):
    replication factor 3 and min.insync.replicas 2 by default, as in docker-compose.yml."""

    directory: Path
    size: int = 3
    port: int = 0
    controller_port: int = 0

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_port_run(self.size)
        if not self.controller_port:
            self.controller_port = free_port_run(self.size)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + n}" for n in range(self.size))

    def _run(self, *args: str, check: bool = True) -> None:
        env = {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_CONTROLLER_PORT": str(self.controller_port),
               "KAFKA_BROKERS": str(self.size), "KAFKA_DIR": str(self.directory)}
        subprocess.run([str(ROOT / "dev/kafka/broker.sh"), *args], env=env, check=check)

    def start(self) -> None:
        self._run("start")
        asyncio.run(_wait_for_brokers(self.bootstrap, self.size, 90))

    def stop(self) -> None:
        self._run("stop", check=False)

    def kill_node(self, node: int) -> None:
        self._run("kill-node", str(node))

    def start_node(self, node: int) -> None:
        self._run("start-node", str(node))
        asyncio.run(_wait_for_brokers(self.bootstrap, self.size, 90))

    def leaders(self, topics: Iterable[str]) -> dict[tuple[str, int], int]:
        """(topic, partition) -> the node leading it."""
        return asyncio.run(_leaders(self.bootstrap, list(topics)))

    def in_sync(self, topics: Iterable[str]) -> bool:
        """Every partition of `topics` has all its replicas in sync."""
        return asyncio.run(_all_in_sync(self.bootstrap, list(topics)))


async def _describe(bootstrap: str, topics: list[str]) -> list[dict]:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return await admin.describe_topics(topics)
    finally:
        await admin.close()


async def _leaders(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    return {(t["topic"], p["partition"]): p["leader"] for t in await _describe(bootstrap, topics) for p in t["partitions"]}


async def _all_in_sync(bootstrap: str, topics: list[str]) -> bool:
    described = await _describe(bootstrap, topics)
    return all(t["partitions"] and all(set(p["isr"]) == set(p["replicas"]) for p in t["partitions"]) for t in described)


async def _wait_for_brokers(bootstrap: str, size: int, timeout: float) -> None:
    """Until the cluster's metadata lists `size` brokers."""
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            if len((await admin.describe_cluster())["brokers"]) >= size:
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        finally:
            await admin.close()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the cluster at {bootstrap} did not list {size} brokers within {timeout} s")
        await asyncio.sleep(0.5)


async def _wait_for_metadata(bootstrap: str, timeout: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


@dataclass
class Deployment:
    """One isolated installation on the shared broker (or a cluster): its own app id and topic names."""

    broker: Any  # Broker or Cluster: anything with a `bootstrap`
    workdir: Path
    name: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:8])
    partitions: int = 4
    extra_env: dict = field(default_factory=dict)

    def topic(self, public_name: str) -> str:
        return f"{self.name}.{public_name}"

    @property
    def worker_token(self) -> str:
        """The workers' own credential here: INTERNAL_TOKEN, or derived as a worker derives it."""
        from app.settings import Settings

        env = self.env()
        return Settings(auth_tokens=env["AUTH_TOKENS"], app_id=env["APP_ID"],
                        internal_token=env.get("INTERNAL_TOKEN", "")).worker_token

    def env(self, **overrides: Any) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "APP_", "TOPIC_", "WEB_", "AMI_", "KRT_",
                                                                              "PERSONAL_"))}
        env.update(
            KAFKA_BOOTSTRAP=self.broker.bootstrap,
            APP_ID=self.name,
            PARTITIONS=str(self.partitions),
            AUTH_TOKENS=TOKENS,
            LOG_FORMAT="text",
            BROKER_SESSION_TIMEOUT_S="6",
            BROKER_HEARTBEAT_INTERVAL_S="0.5",
            BROKER_REBALANCE_TIMEOUT_S="6",
            COMMIT_INTERVAL_S="0.5",
            PYTHONUNBUFFERED="1",
        )
        for public in ("qapp_events", "call_status", "operator_status", "operator_activity", "queue_status",
                       "queue_metrics", "dead_letters", "ivr_commands", "ivr_routing_rules", "operator_commands",
                       "sip_registrations",
                       "operator_crm_status", "contractor_status", "driver_positions", "driver_profiles",
                       "deptrans_profiles", "deptrans_session_statuses"):
            env[f"TOPIC_{public.upper()}"] = self.topic(public.replace("_", "-"))
        for public in ("chat_events", "support_queue", "operator_events", "admin_actions", "chat_assignments"):
            env[f"TOPIC_{public.upper()}"] = self.topic(public)  # the seed's names, underscores and all
        env.update({k: str(v) for k, v in self.extra_env.items()})
        env.update({k: str(v) for k, v in overrides.items()})
        return env


class Worker:
    def __init__(self, deployment: Deployment, index: int, command: Optional[list[str]] = None, **env: Any) -> None:
        self.deployment = deployment
        self.command = command or [sys.executable, "-m", "app", "worker", "-l", "info"]
        self.port = free_port()
        self.data_dir = deployment.workdir / f"{deployment.name}-worker{index}-data"
        self.log_path = deployment.workdir / f"worker{index}.log"
        self.env = deployment.env(WEB_PORT=self.port, WEB_HOST="127.0.0.1", DATA_DIR=self.data_dir, **env)
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Worker":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 90) -> "Worker":
        def ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; log: {self.log_tail()}")
            status, _ = http_get(self.url + "/ready", timeout=2)
            return status == 200

        wait_until(ready, timeout, 0.5, f"worker on {self.url} to be ready (log {self.log_path})")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def progress(self) -> str:
        """What the worker consumed and sent, and its readiness: for a failure message."""
        try:
            _, ready = http_get(self.url + "/ready", timeout=5)
            _, text = http_get(self.url + "/metrics", timeout=5)
        except OSError as exc:
            return f"(worker unreachable: {exc})"
        counted = [line for line in str(text).splitlines()
                   if line.startswith(("switchboard_events_in_total", "switchboard_events_out_total",
                                       "switchboard_consumer_lag", "switchboard_delivery_failures_total"))]
        return f"ready: {ready}\n" + "\n".join(counted)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def http_get(url: str, token: Optional[str] = None, timeout: float = 10) -> tuple[int, Any]:
    return http_request("GET", url, token=token, timeout=timeout)


def http_request(method: str, url: str, body: Any = None, token: Optional[str] = None, timeout: float = 10) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw, status = resp.read(), resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def produce(bootstrap: str, topic: str, records: Iterable[tuple[Optional[bytes], bytes]]) -> int:
    async def run() -> int:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
        await producer.start()
        count = 0
        try:
            for key, value in records:
                await producer.send(topic, key=key, value=value)
                count += 1
            await producer.flush()
        finally:
            await producer.stop()
        return count

    return asyncio.run(run())


def topics_of(deployment: "Deployment") -> list[str]:
    """Every topic of the deployment on its broker: its public topics and its internal ones
    (changelogs, repartitions), all named after its app id."""

    async def run() -> list[str]:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=deployment.broker.bootstrap)
        await admin.start()
        try:
            return sorted(t for t in await admin.list_topics() if t.startswith((f"{deployment.name}.",
                                                                                f"{deployment.name}-")))
        finally:
            await admin.close()

    return asyncio.run(run())


def group_offsets(bootstrap: str, group: str) -> dict[str, int]:
    """The offsets `group` committed, as "topic:partition" -> offset (for failure messages)."""

    async def run() -> dict[str, int]:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return {f"{tp.topic}:{tp.partition}": meta.offset for tp, meta in sorted(offsets.items())}

    return asyncio.run(run())


def consume_all(bootstrap: str, topic: str, idle_s: float = 2.0,
                timeout: float = 30) -> list[tuple[Optional[bytes], Optional[bytes]]]:
    """Every record of `topic` from the beginning, until nothing new arrives for `idle_s`."""

    async def run():
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False, group_id=None)
        await consumer.start()
        records = []
        try:
            deadline = time.monotonic() + timeout
            last_new = time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - last_new < idle_s:
                batch = await consumer.getmany(timeout_ms=200)
                for msgs in batch.values():
                    records.extend((m.key, m.value) for m in msgs)
                    last_new = time.monotonic()
        finally:
            await consumer.stop()
        return records

    return asyncio.run(run())


class Pushes:
    """A WebSocket client of /ws/operators in a thread of its own, keeping every message."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.messages: list[dict] = []
        self.close_code: Optional[int] = None  # once the worker closed the socket
        self.connected = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._listen(),), daemon=True)
        self.thread.start()
        assert self.connected.wait(30), "no 'connected' message from /ws/operators"

    async def _listen(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.url) as socket:
                async for message in socket:
                    body = json.loads(message.data)
                    self.messages.append(body)
                    if body.get("type") == "connected":
                        self.connected.set()
                self.close_code = socket.close_code

    def statuses(self, operator: str) -> list[str]:
        return [m["operator"]["status"] for m in list(self.messages)
                if m.get("type") == "operator_status" and m["operator"]["id"] == operator]


class AmiDouble:
    """dev/ami_double.py as a process: AMI on `port`, its HTTP control API on `control_port`;
    `members` as its --members (queue:interface,...); strict: a QueuePause for anyone else is refused."""

    def __init__(self, workdir: Path, members: str = "") -> None:
        self.port, self.control_port = free_port(), free_port()
        self.log = workdir / "ami-double.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dev.ami_double", "--port", str(self.port), "--control-port", str(self.control_port),
             *(["--members", members] if members else [])], cwd=ROOT, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        wait_until(lambda: http_get(self.url + "/members")[0] == 200, 30, 0.2, "the AMI double to listen")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    @property
    def ami_url(self) -> str:
        return f"ami://switchboard:switchboard@127.0.0.1:{self.port}"

    def pauses(self, interface: str) -> list[dict]:
        return [a["fields"] for a in http_get(self.url + "/actions")[1]
                if a["action"] == "QueuePause" and a["fields"].get("Interface") == interface]

    def member(self, interface: str, queue: str = "support") -> dict:
        return next(m for m in http_get(self.url + "/members")[1] if m["interface"] == interface and m["queue"] == queue)

    def control(self, path: str, body: Any, method: str = "POST") -> None:
        status, answer = http_request(method, self.url + path, body)
        assert status == 200, answer

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
