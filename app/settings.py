"""Service settings, read once from the environment (see README "Configuration").

`Settings` is what every domain shares (Kafka, the web server, auth, tuning); a domain
declares its own beside its rules as a `DomainSettings` (for example
`tables/callcenter/settings.py`), read from the same environment the same way.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from pathlib import Path
from typing import Literal, Optional
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DomainSettings", "ROLES", "Settings", "WORKER", "check_http_url", "get_settings"]

ROLES = ("manager", "operator", "client", "lawyer", "admin", "driver", "service")  # what AUTH_TOKENS may give
WORKER = "worker"  # the fleet's own identity (worker to worker): INTERNAL_TOKEN, never a role of AUTH_TOKENS


class DomainSettings(BaseSettings):
    """A domain's own settings: environment variables named after the fields, frozen."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)


class Settings(DomainSettings):

    kafka_bootstrap: str = "127.0.0.1:9092"
    app_id: str = "switchboard"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    web_bind: str = "127.0.0.1"  # interface the web server listens on
    data_dir: Path = Path(".cache/data")
    partitions: int = Field(4, ge=1)
    auth_tokens: str = ("dev-manager-token=manager,dev-service-token=service,dev-admin-token=admin,"
                        "dev-driver-token=driver,dev-client-token=client:client-1,dev-client2-token=client:client-2,"
                        "dev-operator-token=operator:op-1,dev-operator2-token=operator:op-2,"
                        "dev-lawyer-token=lawyer:lawyer-1")
    # the credential workers send each other (scatter-gather, a key's owner); empty: derived from
    # AUTH_TOKENS and APP_ID (`worker_token`), so a fleet sharing its AUTH_TOKENS shares it too
    internal_token: str = ""
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    log_format: Literal["json", "text"] = "json"  # one JSON object per line, or plain text

    # Kafka / Faust tuning (tests set the timeouts low for fast start-up)
    replication_factor: int = Field(1, ge=1)
    # min.insync.replicas of every topic and changelog the service creates (unset: the broker's default);
    # with the producer's acks=all, a write is acknowledged once this many replicas have it
    min_insync_replicas: Optional[int] = Field(None, ge=1)
    standby_replicas: int = Field(1, ge=0)
    broker_session_timeout_s: float = 30.0
    broker_heartbeat_interval_s: float = 3.0
    broker_rebalance_timeout_s: float = 60.0
    commit_interval_s: float = 2.8
    producer_linger_s: float = 0.005  # batch outgoing records this long: far fewer produce requests
    # an envelope is one record of up to ~150 kB; with Kafka's 16 kB default every envelope
    # would be a batch of its own, each waiting for the one before it to be acknowledged
    producer_max_batch_size: int = Field(512 * 1024, ge=16384)
    # the largest record the service sends: Kafka's default topic limit (message.max.bytes,
    # 1 MiB + 12 bytes) takes it; envelopes stay under 512 kB, dead letters under ~50 kB
    producer_max_request_size: int = Field(1024 * 1024, ge=65536)
    # table changelog records that may wait in Faust's producer buffer before the stream
    # stops to flush them (Faust's default, 100, stops it after every batch)
    producer_buffer_max_messages: int = Field(20_000, ge=100)
    # how long a fetch waits at the broker for new records (Faust fixes 1.5 s): a partition
    # left out of the fetch in flight waits this long at most (app/consumer.py); 0.05 s
    # bounds a quiet hop's stall (the maximum end-to-end latency at 300 ev/s: 1.8 s -> 0.25 s)
    consumer_fetch_max_wait_s: float = Field(0.05, gt=0, le=30)
    # how long an HTTP command waits for Kafka's acknowledgement before it answers 503
    command_ack_timeout_s: float = Field(5.0, gt=0)
    # how long `ingest` lets a line wait for Kafka's acknowledgement (while the broker is
    # away) before it gives up and exits with an error: the upstream then sends it again
    ingest_delivery_timeout_s: float = Field(40.0, gt=0)
    # the cyclic garbage collector's generation thresholds (Python's: 700, 10, 10): a hot
    # path allocates fast, and each full collection pauses the event loop
    gc_thresholds: tuple[int, int, int] = (50_000, 20, 20)
    # a record of any input timed further ahead of now than this is a dead letter (a clock far
    # ahead would pin state until that time): every domain's route checks it (app/stages.py)
    max_future_skew_s: float = Field(300.0, gt=0)
    # RocksDB's memory, shared by every table partition of the worker (app/stores.py): the
    # memtables (written, not yet flushed) and the block cache (read)
    rocksdb_memtables_mb: int = Field(64, ge=8)
    rocksdb_cache_mb: int = Field(64, ge=8)
    fast_drain: bool = True  # hand a record to the streams without Faust's four tasks when nothing can block (app/fastdrain.py)
    tick_interval_s: float = Field(1.0, gt=0)  # how often time reaches the queue/operator stages
    source_quiet_s: float = Field(2.0, ge=0)  # an input partition read to its end and this long without
    # a new record marks wall-clock time (before: the time of its last record)

    # freshness of every answer (each domain's `lag_s` and `stale`)
    stale_after_s: float = 30.0  # answers are marked stale when input is further behind than this
    stale_backlog_records: int = 500  # ... or when its stages have more than this many records to read

    # topic names (defaults per SPEC.md): the shared one, and the input `ingest` and `simulate` write
    topic_dead_letters: str = "dead-letters"
    topic_qapp_events: str = "qapp-events"

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("min_insync_replicas", mode="before")
    @classmethod
    def _empty_is_broker_default(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _replicas_fit(self) -> "Settings":
        if self.min_insync_replicas is not None and self.min_insync_replicas > self.replication_factor:
            raise ValueError(f"MIN_INSYNC_REPLICAS ({self.min_insync_replicas}) must not exceed REPLICATION_FACTOR "
                             f"({self.replication_factor}): no write could ever be acknowledged")
        return self

    @field_validator("auth_tokens")
    @classmethod
    def _tokens_well_formed(cls, value: str) -> str:
        for pair in filter(None, (p.strip() for p in value.split(","))):
            token, sep, who = pair.partition("=")
            role, _, user = who.partition(":")
            if not sep or not token or role not in ROLES or (":" in who and not user):
                raise ValueError(f"AUTH_TOKENS entry {pair!r} must be token=role or token=role:user, "
                                 f"with role one of {', '.join(ROLES)}")
        return value

    @model_validator(mode="after")
    def _internal_token_apart(self) -> "Settings":
        token = self.internal_token.strip()
        if token and len(token) < 16:
            raise ValueError("INTERNAL_TOKEN must be at least 16 characters (or empty: derived from AUTH_TOKENS)")
        if token and token in self.identities:
            raise ValueError("INTERNAL_TOKEN must not be one of AUTH_TOKENS: workers' credential is no client's")
        if not token and not self.identities:
            raise ValueError("set INTERNAL_TOKEN when AUTH_TOKENS is empty: the workers' credential is derived "
                             "from the tokens, and from none it would be known to anyone")
        return self

    @property
    def worker_token(self) -> str:
        """The credential workers send each other: INTERNAL_TOKEN, or (empty) an HMAC of the
        normalised AUTH_TOKENS keyed by APP_ID: as secret as the tokens it is derived from,
        the same on every worker given the same tokens, and no client's token."""
        if self.internal_token.strip():
            return self.internal_token.strip()
        tokens = ",".join(sorted(f"{t}={r}:{u}" for t, (r, u) in self.identities.items()))
        return hmac.new(f"switchboard-worker:{self.app_id}".encode(), tokens.encode(), hashlib.sha256).hexdigest()

    @property
    def identities(self) -> dict[str, tuple[str, str]]:
        """token -> (role, user); a token without a user is its role's one user (`admin`...)."""
        return {token: (role, user or role) for token, (role, user) in self.named_identities.items()}

    @property
    def named_identities(self) -> dict[str, tuple[str, str]]:
        """token -> (role, the user it names, or "")."""
        found = {}
        for pair in filter(None, (p.strip() for p in self.auth_tokens.split(","))):
            token, _, who = pair.partition("=")
            role, _, user = who.partition(":")
            found[token] = (role, user)
        return found

    @property
    def tokens(self) -> dict[str, str]:
        return {token: role for token, (role, _) in self.identities.items()}

    @property
    def kafka_url(self) -> str:
        return ";".join(f"kafka://{host}" for host in self.kafka_bootstrap.split(","))

    @property
    def canonical_url(self) -> str:
        return f"http://{self.web_host}:{self.web_port}"

    def internal_topic(self, name: str) -> str:
        """Internal topics carry the app id, so two deployments on one cluster never mix."""
        return f"{self.app_id}-{name}"


def check_http_url(url: str) -> str:
    """`url` if it is an http(s) URL with a host (a service the worker calls), else ValueError naming it."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # raises ValueError when not a number in range
    except ValueError as exc:
        raise ValueError(f"expected http(s)://host[:port]: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected http(s)://host[:port][/path], got a URL with scheme {parts.scheme!r} "
                         f"and host {parts.hostname!r}")
    return url.strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
