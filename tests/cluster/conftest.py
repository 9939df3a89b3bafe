"""A three-node KRaft cluster (replication factor 3, min.insync.replicas 2) for the fault
tests, started once per module on free 127.0.0.1 ports, and the KRT sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.harness import ROOT, Cluster, Deployment, free_port, http_get, wait_until

CLUSTER_ENV = {"REPLICATION_FACTOR": 3, "MIN_INSYNC_REPLICAS": 2}


@pytest.fixture(scope="module")
def cluster():
    directory = Path(tempfile.mkdtemp(prefix="switchboard-cluster-"))
    c = Cluster(directory)
    c.start()
    yield c
    c.stop()
    if not os.environ.get("KEEP_TEST_BROKER"):
        shutil.rmtree(directory, ignore_errors=True)


class Sandbox:
    """The KRT sandbox (dev/krt_sandbox.py) on free ports."""

    def __init__(self, workdir: Path) -> None:
        self.port, self.control_port = free_port(), free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dev.krt_sandbox", "--port", str(self.port), "--control-port", str(self.control_port),
             "--token-ttl", "600"], cwd=ROOT, stdout=(workdir / "krt-sandbox.log").open("w"), stderr=subprocess.STDOUT)
        self.personal_port = free_port()  # where licence numbers are kept behind their pd ids
        self.personal = subprocess.Popen([sys.executable, "-m", "dev.personal", "--port", str(self.personal_port)],
                                         cwd=ROOT, stdout=(workdir / "personal.log").open("w"), stderr=subprocess.STDOUT)
        wait_until(lambda: http_get(self.control + "/state")[0] == 200, 30, 0.2, "the KRT sandbox to listen")
        wait_until(lambda: http_get(f"{self.personal_url}/stats")[0] == 200, 30, 0.2, "personal to listen")

    @property
    def personal_url(self) -> str:
        return f"http://127.0.0.1:{self.personal_port}"

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    @property
    def url(self) -> str:
        return f"http://switchboard:switchboard@127.0.0.1:{self.port}"

    def stop(self) -> None:
        for process in (self.process, self.personal):
            process.terminate()
            process.wait(10)


@pytest.fixture(scope="module")
def krt(tmp_path_factory):
    sandbox = Sandbox(tmp_path_factory.mktemp("krt"))
    yield sandbox
    sandbox.stop()


@pytest.fixture
def on_cluster(cluster, krt, request):
    """An isolated installation on the cluster per test, its workers' settings from the
    module's WORKER_ENV, replicated as in production."""
    workdir = Path(tempfile.mkdtemp(prefix=f"switchboard-{request.node.name[:40]}-"))
    env = {**CLUSTER_ENV, "KRT_URL": krt.url, "PERSONAL_URL": krt.personal_url, **getattr(request.module, "WORKER_ENV", {})}
    return Deployment(broker=cluster, workdir=workdir, extra_env=env)
