"""dev/kafka/broker.sh says why it cannot start: a port another program listens on is named,
and a cluster's node numbers are checked."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from tests.harness import ROOT, free_port_run

pytestmark = pytest.mark.integration
SCRIPT = str(ROOT / "dev/kafka/broker.sh")


def _run(tmp_path, *args, **env):
    full = {**os.environ, "KAFKA_DIR": str(tmp_path / "kafka"), **{k: str(v) for k, v in env.items()}}
    return subprocess.run([SCRIPT, *args], env=full, capture_output=True, text=True, timeout=60)


def test_a_port_another_program_listens_on_is_named(tmp_path):
    port = free_port_run(1)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = _run(tmp_path, "start", KAFKA_PORT=port, KAFKA_CONTROLLER_PORT=free_port_run(1))
    assert done.returncode == 1
    assert f"port {port} is already taken by another program" in done.stderr


def test_a_cluster_node_out_of_range_is_refused(tmp_path):
    done = _run(tmp_path, "kill-node", "4", KAFKA_BROKERS=3, KAFKA_PORT=free_port_run(3))
    assert done.returncode == 2 and "node: 1..3" in done.stderr
