"""A broker's loss under load on every domain, on a three-node cluster (replication factor 3,
min.insync.replicas 2): the node leading most input and changelog partitions is SIGKILLed
mid-load and started again later. Afterwards every count and window equals the reference,
every acknowledged command is reflected, nothing is counted twice, and every worker is ready
again by itself."""

from __future__ import annotations

import json
import os
import time

import pytest

from app.ingest import record_key
from tests.cluster.load import Load, leader_node, tables_agree
from tests.harness import ARTIFACTS, Worker, produce, wait_until
from tests.integration.traffic import queue_log_lines

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
WORKER_ENV = {"WINDOW_GRACE_S": 5, "TICK_INTERVAL_S": 0.5, "KRT_RETRY_FIRST_S": 0.2, "KRT_RETRY_MAX_S": 1,
              "KRT_TIMEOUT_S": 2}
RUNS = int(os.environ.get("CLUSTER_FAULT_RUNS", "1"))


def _report(name: str, figures: dict) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / "cluster-faults.jsonl").open("a") as out:
        out.write(json.dumps({"test": name, "at": time.time(), **figures}) + "\n")


@pytest.mark.parametrize("run", range(RUNS))
def test_a_broker_lost_under_load_loses_nothing(cluster, krt, on_cluster, run):
    deployment = on_cluster
    workers = [Worker(deployment, 1).start(), Worker(deployment, 2).start()]
    try:
        for w in workers:
            w.wait_ready(120)
        lines = queue_log_lines(minutes=20, rate=15, seed=100 + run)
        first, rest = lines[: len(lines) // 2], lines[len(lines) // 2:]
        produce(cluster.bootstrap, deployment.topic("qapp-events"), [(record_key(x), x.encode()) for x in first])
        load = Load(deployment, lambda: workers, rest, sent_before=first, duration_s=24, krt=krt)
        load.prepare()
        time.sleep(1.0)  # the drivers' profiles before their statuses
        victim = leader_node(cluster, deployment)
        load.start()
        time.sleep(6)
        cluster.kill_node(victim)
        killed_at = time.monotonic()
        time.sleep(12)
        cluster.start_node(victim)
        load.join()
        figures = load.check_all(workers)
        wait_until(lambda: cluster.in_sync([deployment.topic("qapp-events")]), 60, 1.0, "the restarted node in sync")
        _report("broker_loss", {"run": run, "victim": victim, "down_s": round(time.monotonic() - killed_at, 1),
                                **figures})
        for w in workers:
            w.stop()
        assert tables_agree(workers) == []
    finally:
        for w in workers:
            w.stop()


def test_every_topic_and_changelog_is_replicated_as_configured(cluster, on_cluster):
    """Replication factor 3 and min.insync.replicas 2 on every topic the service creates
    (inputs, internal hops, outputs, table changelogs); producers wait for every in-sync replica."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    deployment = on_cluster
    worker = Worker(deployment, 1).start()
    try:
        worker.wait_ready(120)

        async def described():
            admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap)
            await admin.start()
            try:
                names = sorted(t for t in await admin.list_topics() if t.startswith(deployment.name))
                topics = await admin.describe_topics(names)
                configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
            finally:
                await admin.close()
            isr = {}
            for response in configs:
                for resource in response.resources:
                    name, entries = resource[3], resource[4]
                    isr[name] = next(e[1] for e in entries if e[0] == "min.insync.replicas")
            return names, topics, isr

        import asyncio

        names, topics, isr = asyncio.run(described())
        for made in ("-changelog", "-cc-events", ".qapp-events"):  # tables, internal hops, inputs
            assert any(n.endswith(made) for n in names), (made, names)
        under = {t["topic"]: sorted({len(p["replicas"]) for p in t["partitions"]}) for t in topics
                 if any(len(p["replicas"]) != 3 for p in t["partitions"])}
        assert not under, f"topics with fewer than 3 replicas: {under}"
        assert {n: v for n, v in isr.items() if v != "2"} == {}
    finally:
        worker.stop()
