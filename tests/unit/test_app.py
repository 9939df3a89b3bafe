"""The Faust app itself: what it does when a domain cannot load."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import pytest
from faust.utils import venusian

from app.main import app


def test_a_domain_module_that_fails_to_import_stops_the_start(tmp_path, monkeypatch):
    """Faust's autodiscovery would log a warning and go on without the module (its views
    404, its agents never run); ours fails the start."""
    package = tmp_path / "brokendomain"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "views.py").write_text("from app.main import no_such_name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("brokendomain")
    try:
        with pytest.raises(ImportError, match="no_such_name"):
            venusian.Scanner().scan(module, onerror=app._on_autodiscovery_error)
    finally:
        sys.modules.pop("brokendomain", None)
        sys.modules.pop("brokendomain.views", None)


def _modules() -> list[str]:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    names = []
    for room in ("app", "agents", "web", "tables", "dev"):
        for path in sorted((root / room).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.slow
def test_every_module_imports_on_its_own():
    """No import circles: each module, imported first in a fresh interpreter, loads (one
    interpreter per module, several at once)."""
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    def load(name: str) -> tuple[str, int, str]:
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=120)
        return name, done.returncode, done.stderr[-600:]

    modules = _modules()
    assert "agents.callcenter" in modules and "app.main" in modules
    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = [(name, err) for name, code, err in pool.map(load, modules) if code != 0]
    assert failed == []


def test_the_fetch_wait_reaches_the_kafka_consumer_faust_builds(monkeypatch):
    """app/consumer.py replaces Faust's fixed 1.5 s fetch wait; a Faust or aiokafka upgrade
    that moves where it is set fails here rather than silently bringing 1.5 s back."""
    import inspect

    from aiokafka import AIOKafkaConsumer
    from faust.transport.drivers import aiokafka as faust_aiokafka

    from app.consumer import TunedConsumer, TunedConsumerThread
    from app.delivery import GuardedConsumer
    from app.fastdrain import FastDrainConsumer

    assert issubclass(FastDrainConsumer, GuardedConsumer) and issubclass(GuardedConsumer, TunedConsumer)
    assert "fetch_max_wait_ms=1500" in inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(AIOKafkaConsumer.start)
    made = []

    class Recorded(TunedConsumerThread):
        def __init__(self) -> None:  # noqa: D107  (no Faust service machinery needed)
            pass

    class Built:  # stands for the AIOKafkaConsumer Faust builds (which needs a running loop)
        _fetch_max_wait_ms = 1500

    def faust_builds(self, transport):
        made.append(Built())
        return made[-1]

    monkeypatch.setattr(faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer", faust_builds)
    monkeypatch.setattr("app.consumer.get_settings", lambda: SimpleNamespace(consumer_fetch_max_wait_s=0.2))
    consumer = Recorded()._create_worker_consumer(None)
    assert consumer is made[0] and consumer._fetch_max_wait_ms == 200


def test_every_record_waits_for_all_in_sync_replicas():
    """acks=all for the worker's one producer (outputs, internal hops, changelogs, dead letters)."""
    from app.main import app

    assert app.conf.producer_acks == -1
