"""Topics: declared by the domains that own them, created before anything writes to them.

A domain declares each topic it reads or writes once (`declare_topic`), with its Kafka
configs (compacted, retention); `ensure_topics` creates the missing ones at start-up from
those declarations, so Kafka's auto-creation never makes an output topic with the wrong
policy. Public names come from settings (SPEC.md defaults); internal topics carry the app
id (`<APP_ID>-cc-events`), so they never clash between deployments. `dead-letters` is
shared by every domain and declared here.
"""

from __future__ import annotations

import faust

from app.settings import Settings

__all__ = ["WEEK_S", "declare_topic", "dead_letters_topic", "ensure_topics", "replica_configs", "topic_specs"]

WEEK_S = 7 * 86400
_SPECS: dict[str, dict[str, str]] = {}  # topic name -> Kafka configs, as declared


def declare_topic(app: faust.App, settings: Settings, name: str, *, compacted: bool = False,
                  retention_s: float | None = None) -> faust.TopicT:
    """A raw-bytes topic of `settings.partitions` partitions, created at start-up if missing."""
    configs = replica_configs(settings)
    if compacted:
        configs["cleanup.policy"] = "compact"
    if retention_s is not None:
        configs["retention.ms"] = str(int(retention_s * 1000))
    _SPECS[name] = configs
    return app.topic(
        name,
        partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
        compacting=compacted or None,
        retention=retention_s,
        internal=True,  # declare (create) on start; names are ours either way
    )


def replica_configs(settings: Settings) -> dict[str, str]:
    """The replica configs of every topic and changelog the service creates (`MIN_INSYNC_REPLICAS`)."""
    if settings.min_insync_replicas is None:
        return {}  # the broker's default
    return {"min.insync.replicas": str(settings.min_insync_replicas)}


def dead_letters_topic(app: faust.App, settings: Settings) -> faust.TopicT:
    """Rejected records of every domain (a letter per record, kept a week)."""
    return declare_topic(app, settings, settings.topic_dead_letters, retention_s=WEEK_S)


def topic_specs() -> dict[str, dict[str, str]]:
    """Every topic declared so far, with its Kafka configs."""
    return dict(_SPECS)


async def ensure_topics(s: Settings) -> list[str]:
    """Create the declared topics that are missing; the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, s.partitions, s.replication_factor, topic_configs=configs)
            for name, configs in topic_specs().items()
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
