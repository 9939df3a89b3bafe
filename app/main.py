"""The Faust application: created once here, with its topics and tables.

`python -m app worker` (or `faust -A app.main worker`) runs it. Agents in `agents/`
and views in `web/` attach themselves to `app` when imported at the bottom.
"""

from __future__ import annotations

import faust

from app import codec  # noqa: F401  (registers the orjson codec)
from app.fastdrain import FastDrainTransport
from app.logs import configure_logging, worker_logging_config
from app.settings import Settings, get_settings
from app.state import UNBOUNDED, StateTable
from app.topics import Topics, ensure_topics
from tables.callcenter.calls import CallState
from tables.callcenter.operators import OperatorState
from tables.callcenter.queues import QueueState
from app.partitioner import key_partitioner, partition_of
from tables.callcenter.windows import WindowAgg


class SwitchboardApp(faust.App):
    async def on_first_start(self) -> None:
        await super().on_first_start()
        settings = get_settings()
        # Faust's conductor stops the stream to flush table changelog records one by one
        # whenever more than 100 wait (faust/transport/producer.py, `wait_until_ebb`): a
        # batch writes thousands at once; they are flushed before every commit anyway.
        self.producer.buffer.max_messages = settings.producer_buffer_max_messages
        await ensure_topics(settings)

    def _new_transport(self):
        if get_settings().fast_drain:
            return FastDrainTransport(self.conf.broker_consumer, self)
        return super()._new_transport()


def create_app(settings: Settings) -> faust.App:
    return SwitchboardApp(
        settings.app_id,
        broker=settings.kafka_url,
        store="rocksdb://",
        datadir=str(settings.data_dir),
        web_host=settings.web_bind,
        web_port=settings.web_port,
        canonical_url=settings.canonical_url,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        key_serializer="raw",
        value_serializer="raw",
        table_standby_replicas=settings.standby_replicas,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_commit_interval=settings.commit_interval_s,
        web_in_thread=False,
        producer_linger=settings.producer_linger_s,
        producer_max_batch_size=settings.producer_max_batch_size,
        producer_max_request_size=settings.producer_max_request_size,
        producer_partitioner=key_partitioner,
        logging_config=worker_logging_config(settings),
    )


WINDOW_CACHE_KEYS = 50_000  # open windows and their ledgers, the last 15 minutes' windows

settings = get_settings()
configure_logging(settings)
app = create_app(settings)
topics = Topics.declare(app, settings)


def table(name: str, decode, cache_keys: int = 0) -> StateTable:
    """A changelog-backed RocksDB table of one kind of state, text keys."""
    table = app.Table(name, partitions=settings.partitions)
    # Faust tables take their serializers from key/value types, never from a schema; raw
    # keys matter: the router hashes the serialized key to find a key's owner, and that
    # must agree with the partition the key's stream was produced to.
    table.key_serializer = table.value_serializer = "raw"
    changelog = table.changelog_topic  # made (with json) when the table was registered
    changelog.key_serializer = changelog.value_serializer = "raw"
    return StateTable(table, decode, lambda key: partition_of(key, settings.partitions), cache_keys)


def _window_or_ledger(value: object) -> WindowAgg | frozenset:
    return WindowAgg.from_json(value) if isinstance(value, dict) else frozenset(value)


# One table per kind of thing, keyed like the stream that writes it.
calls_table = table("cc-calls", CallState.from_json)
operators_table = table("cc-operators", OperatorState.from_json, cache_keys=UNBOUNDED)
queues_table = table("cc-queues", QueueState.from_json, cache_keys=UNBOUNDED)
# A queue's windows ("queue|start") and their ledgers of counted facts ("queue|start|bucket")
# share one table, so their writes land in order (see windows.FactCounter).
windows_table = table("cc-windows", _window_or_ledger, cache_keys=WINDOW_CACHE_KEYS)

import agents.callcenter  # noqa: E402,F401
import agents.housekeeping  # noqa: E402,F401
import web.callcenter  # noqa: E402,F401
import web.operations  # noqa: E402,F401
