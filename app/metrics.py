"""Prometheus metrics of the service (served at GET /metrics).

Beside the service's own series, the registry carries the process's (memory, CPU, file
descriptors: `process_*`) and the interpreter's (`python_*`, garbage collections), and
`switchboard_build_info` says which build answers.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram, PlatformCollector, ProcessCollector

from app.version import revision, version

__all__ = [
    "REGISTRY", "StageRates", "ami_connected", "answers_stale", "build_info", "declare_integration", "input_lag_seconds",
    "integration_enabled", "integrations", "ready", "consumer_lag", "delivery_failures", "event_delay_seconds", "events_ignored",
    "events_in", "events_out", "events_rejected", "external_calls", "http_internal_errors", "http_requests",
    "krt_call_seconds", "late_events", "processing_seconds", "stage_rate", "stage_rates", "staleness_resets", "table_size",
]

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

log = logging.getLogger(__name__)

build_info = Gauge("switchboard_build_info", "The build answering: 1, labelled with its version and git revision",
                   ["version", "revision"], registry=REGISTRY)
build_info.labels(version(), revision()).set(1)
ready = Gauge("switchboard_ready", "1 while this worker is ready (GET /ready answers 200: in the group, its first table "
              "recovery since its start done), else 0; refreshed on each scrape",
              registry=REGISTRY)
integration_enabled = Gauge(
    "switchboard_integration_enabled", "1 where an optional external system is configured, 0 where its setting is unset "
    "(the integration is off)", ["integration"], registry=REGISTRY,
)
input_lag_seconds = Gauge(
    "switchboard_input_lag_seconds", "How far behind this worker's processing of an input is (event time vs now), per input",
    ["topic"], registry=REGISTRY,
)
answers_stale = Gauge(
    "switchboard_answers_stale", "1 while the answers built from an input are marked stale (lag over STALE_AFTER_S or a "
    "backlog over STALE_BACKLOG_RECORDS), else 0", ["topic"], registry=REGISTRY,
)

events_in = Counter("switchboard_events_in_total", "Records consumed, per topic", ["topic"], registry=REGISTRY)
events_out = Counter("switchboard_events_out_total", "Records produced, per topic", ["topic"], registry=REGISTRY)
events_rejected = Counter(
    "switchboard_events_rejected_total", "Records sent to dead-letters, per source topic and reason kind", ["topic", "reason"],
    registry=REGISTRY,
)
events_ignored = Counter(
    "switchboard_events_ignored_total", "queue_log events that change no state, per event and whether known",
    ["event", "known"], registry=REGISTRY,
)
processing_seconds = Histogram(
    "switchboard_processing_seconds", "Time to process one batch of records (one envelope), per stage", ["stage"],
    registry=REGISTRY,
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
)
event_delay_seconds = Gauge(
    "switchboard_event_delay_seconds", "Wall clock minus event time of the last qapp-events record processed",
    registry=REGISTRY,
)
consumer_lag = Gauge(
    "switchboard_consumer_lag_records", "Records not yet consumed, per topic and partition this worker owns",
    ["topic", "partition"], registry=REGISTRY,
)
stage_rate = Gauge(
    "switchboard_stage_events_per_second", "Messages a stage took in over the last tick, per second", ["stage"],
    registry=REGISTRY,
)
table_size = Gauge("switchboard_table_keys", "Keys in the active partitions of a table", ["table"], registry=REGISTRY)
staleness_resets = Counter(
    "switchboard_staleness_resets_total", "State reset by the staleness sweep, per kind", ["kind"], registry=REGISTRY
)
delivery_failures = Counter(
    "switchboard_delivery_failures_total", "Output records Kafka refused (the worker stops before committing their inputs)",
    registry=REGISTRY,
)
stale_events_dropped = Counter(
    "switchboard_stale_events_dropped_total",
    "Envelopes a stage took before a rebalance and dropped after it (their partition is read again from its commit)",
    ["stage"], registry=REGISTRY,
)
late_events = Counter(
    "switchboard_late_window_events_total", "Window facts that arrived after their window was final", registry=REGISTRY
)
external_calls = Counter(
    "switchboard_external_calls_total", "Calls to external systems, per system and outcome", ["system", "outcome"],
    registry=REGISTRY,
)
http_requests = Counter(
    "switchboard_http_requests_total", "HTTP requests, per route and status", ["route", "status"], registry=REGISTRY
)
http_internal_errors = Counter(
    "switchboard_http_internal_errors_total", "HTTP requests answered 500 (the worker log has each trace)", registry=REGISTRY
)
ami_connected = Gauge(
    "switchboard_ami_connected", "1 while the AMI client is connected and logged in to Asterisk, else 0", registry=REGISTRY
)
krt_call_seconds = Histogram(
    "switchboard_krt_call_seconds", "Time from sending an HTTP request to KRT to its answer (or failure), per endpoint",
    ["endpoint"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


_integrations: dict[str, str] = {}


def declare_integration(name: str, enabled: bool, off_because: str) -> None:
    """An optional external system (AMI, KRT, personal): on, or off and why, visibly (a warning,
    the gauge, `integrations()` for /health and /ready)."""
    integration_enabled.labels(name).set(1 if enabled else 0)
    if not enabled and _integrations.get(name) != f"off: {off_because}":
        log.warning("Integration %s is off: %s", name, off_because, extra={"integration": name})
    _integrations[name] = "on" if enabled else f"off: {off_because}"


def integrations() -> dict[str, str]:
    """Each optional integration declared so far: "on", or "off: <why>"."""
    return dict(sorted(_integrations.items()))


class StageRates:
    """Events/s of each stage over the last tick: `count` as they come, `refresh` once a tick."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.refreshed_at: float | None = None

    def count(self, stage: str, n: int = 1) -> None:
        self.counts[stage] = self.counts.get(stage, 0) + n

    def refresh(self, now: float) -> dict[str, float]:
        """The rates since the last refresh (none the first time: no interval yet); sets the gauge."""
        rates: dict[str, float] = {}
        if self.refreshed_at is not None and now > self.refreshed_at:
            elapsed = now - self.refreshed_at
            rates = {stage: n / elapsed for stage, n in self.counts.items()}
            for stage, rate in rates.items():
                stage_rate.labels(stage).set(round(rate, 1))
        self.counts = {stage: 0 for stage in self.counts}
        self.refreshed_at = now
        return rates


stage_rates = StageRates()
