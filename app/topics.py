"""Topics: declared by the domains that own them, created before anything writes to them.

A domain declares each topic it reads or writes once (`declare_topic`), with its Kafka
configs (compacted, retention); `ensure_topics` creates the missing ones at start-up from
those declarations, so Kafka's auto-creation never makes an output topic with the wrong
policy. Public names come from settings (SPEC.md defaults); internal topics carry the app
id (`<APP_ID>-cc-events`), so they never clash between deployments. `dead-letters` is
shared by every domain and declared here.
"""

from __future__ import annotations

from typing import Any, Iterable

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


async def ensure_topics(s: Settings, changelogs: Iterable[str] = (), timeout_s: float = 60.0) -> list[str]:
    """Create the declared topics and the tables' `changelogs` (compacted) that are missing,
    then wait until the cluster has a leader for every partition of each; the names created.

    The changelogs are made here, before this worker's consumer joins its group: made by
    Faust later (when a table starts), on a cluster of several brokers they may not be in the
    metadata yet when the group's leader computes an assignment, which then leaves their
    partitions out: a worker processes a partition's input with none of its table recovered
    (seen on three brokers: a new worker wrote `os-crm` partition 0 from empty, its recovery
    offset past the 20 operators it never read, and the next owner recovered from there)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    specs = {**topic_specs(), **{name: {"cleanup.policy": "compact", **replica_configs(s)} for name in changelogs}}
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(name, s.partitions, s.replication_factor, topic_configs=configs)
                   for name, configs in specs.items() if name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another worker was quicker
        await _until_led(admin, sorted(specs), timeout_s)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def _until_led(admin: Any, names: list[str], timeout_s: float) -> None:
    """Until every partition of `names` has a leader in the cluster's metadata."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(names)
        pending = [t.get("topic") for t in described
                   if t.get("error_code") or not t.get("partitions") or any(p.get("leader", -1) < 0 for p in t["partitions"])]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"topics without a leader after {timeout_s:g} s: {', '.join(map(str, pending[:10]))}")
        await asyncio.sleep(0.2)
