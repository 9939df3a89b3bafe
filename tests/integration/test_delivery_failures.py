"""An output Kafka refuses stops the worker before the inputs that made it are committed.

`call-status` is created beforehand with a record limit its records exceed, as a broker
misconfiguration would: the worker must not go on as if the records were sent (they would
be lost for good while their input offsets commit). It stops; once the topic takes the
records again, a restarted worker reads the same inputs again, and `call-status` ends up
with every call.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from app.ingest import record_key
from tests.harness import Worker, consume_all, group_offsets, produce, wait_until
from tests.integration.traffic import queue_log_lines

pytestmark = pytest.mark.integration


def _admin(bootstrap: str, action):
    async def run():
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return await action(admin)
        finally:
            await admin.close()

    return asyncio.run(run())


def _create_small_topic(bootstrap: str, name: str, partitions: int) -> None:
    from aiokafka.admin import NewTopic

    topic = NewTopic(name, partitions, 1, topic_configs={"cleanup.policy": "compact", "max.message.bytes": "64"})
    _admin(bootstrap, lambda admin: admin.create_topics([topic]))


def _allow_records_again(bootstrap: str, name: str) -> None:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    # AlterConfigs replaces the topic's whole config: the compaction is said again
    resource = ConfigResource(ConfigResourceType.TOPIC, name,
                              {"cleanup.policy": "compact", "max.message.bytes": "1048588"})
    _admin(bootstrap, lambda admin: admin.alter_configs([resource]))


def test_a_refused_output_stops_the_worker_and_its_inputs_are_read_again(deployment):
    bootstrap = deployment.broker.bootstrap
    call_status = deployment.topic("call-status")
    _create_small_topic(bootstrap, call_status, deployment.partitions)
    lines = queue_log_lines(minutes=2, rate=5, seed=11, end=time.time() - 600)
    calls = {line.split("|")[1] for line in lines if line.split("|")[4] == "ENTERQUEUE"}
    operators = {line.split("|")[3] for line in lines if line.split("|")[4] == "CONNECT"}
    produce(bootstrap, deployment.topic("qapp-events"), [(record_key(line), line.encode()) for line in lines])

    first = Worker(deployment, 1).start()
    try:
        wait_until(lambda: first.process.poll() is not None, 90, 0.5, "the worker to stop on a refused output")
        assert "Kafka refused an output record" in first.log_path.read_text(errors="replace"), first.log_tail()
    finally:
        first.stop()

    committed_by_first = group_offsets(bootstrap, deployment.name)
    _allow_records_again(bootstrap, call_status)
    second = Worker(deployment, 2).start().wait_ready()
    try:
        def published(topic: str) -> set[str]:
            return {key.decode() for key, value in consume_all(bootstrap, topic, idle_s=1.0) if value}

        try:
            wait_until(lambda: calls <= published(call_status), 90, 2.0, "call-status to hold every call after the restart")
        except AssertionError as failure:  # say what each worker did: committed offsets, consumption
            raise AssertionError(f"{failure}\nmissing: {len(calls - published(call_status))} of {len(calls)} calls"
                                 f"\ncommitted by the first worker: {committed_by_first}"
                                 f"\ncommitted now: {group_offsets(bootstrap, deployment.name)}"
                                 f"\nsecond worker: {second.progress()}\n{second.log_tail(60)}") from None
        assert operators <= published(deployment.topic("operator-status"))
        assert "Kafka refused" not in second.log_path.read_text(errors="replace"), second.log_tail()
    finally:
        second.stop()
