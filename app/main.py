"""The Faust application: created once here; the domains attach themselves to it.

`python -m app worker` (or `faust -A app.main worker`) runs it. `app/` knows no domain:
Faust's autodiscovery imports every module of `agents/` and `web/` when a worker starts,
and each domain declares its own topics, tables and message types in
`tables/<domain>/store.py` with the factories here and in `app/topics.py`.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
from typing import Any, Callable, Optional

import faust

from app import codec, stores  # noqa: F401  (codec registers the orjson codec)
from app.delivery import GuardedTransport
from app.fastdrain import FastDrainTransport
from app.logs import configure_logging, worker_logging_config
from app.partitioner import key_partitioner, partition_of
from app.rawinput import RawInputConductor
from app.settings import Settings, get_settings
from app.state import StateTable
from app.topics import dead_letters_topic, ensure_topics, replica_configs

__all__ = ["DOMAIN_PACKAGES", "START_REFUSED", "app", "create_app", "dead_letters", "settings", "state_table"]

log = logging.getLogger(__name__)
START_REFUSED = 78  # the exit code of a worker that found at its start it must not serve (EX_CONFIG)

DOMAIN_PACKAGES = ["agents", "web"]  # every module in them is imported when a worker starts
SHARED_SERVICES = ["app.housekeeping"]  # stream time and freshness of every domain's timed input


class SwitchboardApp(faust.App):
    start_refused: Optional[str] = None  # why this worker stopped at its start (`refuse_start`)

    def refuse_start(self, why: str) -> None:
        """Stop before serving, for a reason found only once running (a fleet's settings that
        disagree): `why` logged once, the worker stopped as by SIGTERM (it leaves the group at
        once), and `python -m app worker` exits with START_REFUSED."""
        self.start_refused = why
        log.critical(why)
        os.kill(os.getpid(), signal.SIGTERM)

    async def on_first_start(self) -> None:
        await super().on_first_start()
        settings = get_settings()
        # Faust's conductor stops the stream to flush table changelog records one by one
        # whenever more than 100 wait (faust/transport/producer.py, `wait_until_ebb`): a
        # batch writes thousands at once; they are flushed before every commit anyway.
        self.producer.buffer.max_messages = settings.producer_buffer_max_messages
        # The objects of every imported module live as long as the worker: out of the
        # cyclic collector's sight, its full collections stop scanning them again and
        # again (each one a pause of the event loop: 60-130 ms, measured at 3,000 ev/s)
        gc.freeze()
        gc.set_threshold(*settings.gc_thresholds)
        await ensure_topics(settings, [table.changelog_topic.get_topic_name() for table in self.tables.values()])

    def _on_autodiscovery_error(self, name: str) -> None:
        # Faust only logs a warning: a domain module that fails to import would vanish,
        # its endpoints answering 404 and its agents never running. Fail the start instead.
        raise

    def _new_conductor(self):
        return RawInputConductor(app=self, beacon=None)  # raw inputs (app/rawinput.py)

    def _new_transport(self):
        # every output watched until Kafka acknowledges it (app/delivery.py)
        transport = FastDrainTransport if get_settings().fast_drain else GuardedTransport
        return transport(self.conf.broker_consumer, self)


def create_app(settings: Settings) -> faust.App:
    return SwitchboardApp(
        settings.app_id,
        broker=settings.kafka_url,
        store=f"{stores.SCHEME}://",  # Faust's RocksDB within one memory budget (app/stores.py)
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
        # every record (outputs, internal hops, changelogs) acknowledged only once all in-sync
        # replicas have it: with min.insync.replicas 2 of 3, a broker's loss loses no acknowledged write
        producer_acks=-1,
        producer_max_batch_size=settings.producer_max_batch_size,
        producer_max_request_size=settings.producer_max_request_size,
        producer_partitioner=key_partitioner,
        logging_config=worker_logging_config(settings),
        autodiscover=[*SHARED_SERVICES, *DOMAIN_PACKAGES],
        origin="app.main",  # else the CLI guesses one from argv[0] and autodiscovery looks for it
    )


settings = get_settings()
configure_logging(settings)
app = create_app(settings)
dead_letters = dead_letters_topic(app, settings)


def state_table(name: str, decode: Callable[[Any], Any], cache_keys: int = 0, standby_reads: bool = False) -> StateTable:
    """A changelog-backed RocksDB table of one kind of state, text keys, partitioned like
    the stream that writes it (`app.partitioner`). `standby_reads`: its standby replicas
    apply each changelog record as it comes (Faust's default gathers 1,000 first), so a view
    may answer from one (`web.common.ask_owner(standby_ok=True)`)."""
    table: Any = app.Table(name, partitions=settings.partitions, standby_buffer_size=1 if standby_reads else None,
                           extra_topic_configs=replica_configs(settings),
                           options={"memtables_mb": settings.rocksdb_memtables_mb, "cache_mb": settings.rocksdb_cache_mb})
    # Faust tables take their serializers from key/value types, never from a schema; raw
    # keys matter: the router hashes the serialized key to find a key's owner, and that
    # must agree with the partition the key's stream was produced to.
    table.key_serializer = table.value_serializer = "raw"
    changelog = table.changelog_topic  # made (with json) when the table was registered
    changelog.key_serializer = changelog.value_serializer = "raw"
    return StateTable(table, decode, lambda key: partition_of(key, settings.partitions), cache_keys)
