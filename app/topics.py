"""Every topic the service reads or writes, declared once.

Public names come from settings (SPEC.md defaults); internal repartition topics carry
the app id (`<APP_ID>-cc-events`, ...), so they never clash between deployments. Internal
topics carry envelopes: one record per batch and partition (app/batching.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from app.settings import Settings


@dataclass(frozen=True)
class Topics:
    qapp_events: faust.TopicT
    dead_letters: faust.TopicT
    call_status: faust.TopicT
    operator_status: faust.TopicT
    queue_status: faust.TopicT
    queue_metrics: faust.TopicT
    cc_events: faust.TopicT  # call events in the call's partition, operator events in the agent's
    cc_queues: faust.TopicT  # waiting / member / window facts in the queue's partition

    @classmethod
    def declare(cls, app: faust.App, s: Settings) -> "Topics":
        def topic(name: str, *, compacted: bool = False, retention_s: float | None = None) -> faust.TopicT:
            return app.topic(
                name,
                partitions=s.partitions,
                key_serializer="raw",
                value_serializer="raw",
                compacting=compacted or None,
                retention=retention_s,
                internal=True,  # declare (create) on start; names are ours either way
            )

        return cls(
            qapp_events=topic(s.topic_qapp_events),
            dead_letters=topic(s.topic_dead_letters),
            call_status=topic(s.topic_call_status, compacted=True),
            operator_status=topic(s.topic_operator_status, compacted=True),
            queue_status=topic(s.topic_queue_status, compacted=True),
            queue_metrics=topic(s.topic_queue_metrics, retention_s=7 * 86400),
            cc_events=topic(s.internal_topic("cc-events")),
            cc_queues=topic(s.internal_topic("cc-queues")),
        )


def topic_specs(s: Settings) -> dict[str, dict[str, str]]:
    """Every topic this service creates, with its Kafka configs."""
    compacted = {"cleanup.policy": "compact"}
    week = {"retention.ms": str(7 * 86400 * 1000)}
    return {
        s.topic_qapp_events: {},
        s.topic_dead_letters: week,
        s.topic_call_status: compacted,
        s.topic_operator_status: compacted,
        s.topic_queue_status: compacted,
        s.topic_queue_metrics: week,
        s.internal_topic("cc-events"): {},
        s.internal_topic("cc-queues"): {},
    }


async def ensure_topics(s: Settings) -> list[str]:
    """Create the missing topics (compacted where SPEC.md says so) before anything writes
    to them, so Kafka's auto-creation never makes an output topic with the wrong policy."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, s.partitions, s.replication_factor, topic_configs=configs)
            for name, configs in topic_specs(s).items()
            if name not in existing
        ]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker was quicker
        return [t.name for t in missing]
    finally:
        await admin.close()
