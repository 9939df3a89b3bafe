"""The image's worker and simulator, run as the image runs them: from the files its Dockerfile
copies, as uid 10001, on a read-only root filesystem with only DATA_DIR and /tmp writable
(a mount namespace of their own), against the real broker; JSON logs from the first line."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time

import pytest

from tests.deploy.conftest import ImageInstall, image_env
from tests.deploy.test_monitoring import unknown_metrics
from tests.harness import MANAGER, ROOT, Worker, http_get, wait_until

pytestmark = pytest.mark.integration

UID = 10001  # the Dockerfile's USER


def contained(image: ImageInstall, args: list[str], writable: list[str]) -> list[str]:
    """`python -m app ARGS` from the image's install, as uid 10001, with `/` read-only but for `writable` and /tmp."""
    bootstrap = (f"import sys, runpy; sys.path[:0] = [{str(image.site)!r}, {str(image.dependencies)!r}]; "
                 f"sys.path = [p for p in sys.path if p not in ('', {str(ROOT)!r})]; sys.argv = ['app', *{args!r}]; "
                 "runpy.run_module('app', run_name='__main__')")
    binds = " && ".join(f"mount --bind {shlex.quote(d)} {shlex.quote(d)}" for d in [*writable, "/tmp"])
    script = (f"{binds} && mount -o remount,ro,bind / && exec setpriv --reuid={UID} --regid={UID} --clear-groups "
              f"{shlex.quote(sys.executable)} -S -c {shlex.quote(bootstrap)}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


@pytest.fixture(scope="module")
def namespaces_allowed():
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", "mount -o remount,ro,bind /"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"no mount namespaces on this machine: {done.stderr.strip()}")


def test_the_images_worker_runs_as_non_root_on_a_read_only_root(image, deployment, namespaces_allowed):
    data = deployment.workdir / "worker-data"
    data.mkdir()
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(data)], check=True)
    deployment.workdir.chmod(0o755)
    env = {**image_env(), "PATH": "/usr/bin:/bin", "HOME": "/tmp", "WEB_BIND": "127.0.0.1", "LOG_FORMAT": "json",
           "SWITCHBOARD_REVISION": "abc123def456"}
    worker = Worker(deployment, 1, command=contained(image, ["worker", "-l", "info"], [str(data)]))
    worker.env = {**env, **{k: v for k, v in worker.env.items() if k not in ("LOG_FORMAT", "PATH", "HOME")},
                  "DATA_DIR": str(data)}
    worker.env = {k: str(v) for k, v in worker.env.items()}
    worker.start()
    try:
        worker.wait_ready(120)
        status, health = http_get(worker.url + "/health")
        assert status == 200 and health["revision"] == "abc123def456" and health["version"]
        _, metrics = http_get(worker.url + "/metrics")
        assert "process_resident_memory_bytes" in metrics and 'switchboard_build_info{revision="abc123def456"' in metrics
        assert unknown_metrics(metrics) == {}, "the alerts and the dashboard query only what /metrics has"

        simulator = subprocess.run(
            contained(image, ["simulate", "--rate", "40", "--duration", "6", "--seed", "3"], []),
            env={**worker.env, "LOG_FORMAT": "json"}, capture_output=True, text=True, timeout=120)
        assert simulator.returncode == 0, simulator.stderr[-2000:]

        def queues():
            _, answer = http_get(worker.url + "/queues/status", token=MANAGER)
            return [q for q in answer["queues"] if q["current_window"]["entered"] or q["calls_waiting"]]

        wait_until(queues, 60, 0.5, "the simulated calls on /queues/status")
        assert list(data.iterdir()), "the tables live in DATA_DIR"
    finally:
        worker.stop()
    started = time.monotonic()
    assert worker.process.poll() is not None and time.monotonic() - started < 60
    lines = worker.log_path.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]  # every line, the first included, is JSON
    # (aiokafka logs a coordinator not yet elected on a fresh broker as an error: it retries)
    assert parsed and not [p for p in parsed if p["level"] in ("error", "critical") and not p["logger"].startswith("aiokafka")]
    assert not [line for line in lines if "Read-only file system" in line or "Permission denied" in line]
