"""Session fixtures: the real Kafka broker, started once for the whole run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness import ARTIFACTS, ROOT, Broker, Deployment, Worker, free_port

SURFACE = """
import json
from app.main import app
app.discover()
routes = sorted({(r.method, r.resource.canonical) for r in app.web.web_app.router.routes() if r.method != "HEAD"})
from app.lag import consumed_topics
topics = sorted(consumed_topics(app))
print(json.dumps({"routes": routes, "topics": topics}))
"""


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


@pytest.fixture(scope="module")
def deployment(broker, request):
    """An isolated installation per test module (own app id and topics); a module may set
    WORKER_ENV for its workers' settings."""
    workdir = Path(tempfile.mkdtemp(prefix=f"switchboard-{request.module.__name__.rsplit('.', 1)[-1]}-"))
    return Deployment(broker=broker, workdir=workdir, extra_env=getattr(request.module, "WORKER_ENV", {}))


@pytest.fixture(scope="module")
def worker(deployment):
    """One real worker process for the module."""
    w = Worker(deployment, 1).start().wait_ready()
    yield w
    w.stop()


@pytest.fixture(scope="module")
def workers(deployment):
    """Two real worker processes for the module (they share its partitions)."""
    pair = [Worker(deployment, 1).start(), Worker(deployment, 2).start()]
    for w in pair:
        w.wait_ready()
    yield pair
    for w in pair:
        w.stop()


@pytest.fixture(scope="module")
def surface(deployment) -> dict:
    """What the app declares, found by walking it in a subprocess with the deployment's settings:
    its routes (method, pattern) and the topics it consumes. A new route or input is in it by itself."""
    done = subprocess.run([sys.executable, "-c", SURFACE], cwd=ROOT, env=deployment.env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert ["GET", "/queues/{queue}/metrics"] in found["routes"] and deployment.topic("qapp-events") in found["topics"]
    return found
