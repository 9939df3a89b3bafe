"""Session fixtures: the real Kafka broker, started once for the whole run."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.harness import ARTIFACTS, Broker, free_port


@pytest.fixture(scope="session")
def broker():
    directory = Path(tempfile.mkdtemp(prefix="switchboard-kafka-"))
    b = Broker(port=free_port(), directory=directory)
    b.start()
    yield b
    b.stop()
    if not os.environ.get("KEEP_TEST_BROKER"):
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
