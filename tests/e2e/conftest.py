"""Per-module deployments on the session's broker, for the browser tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.harness import Deployment


@pytest.fixture(scope="module")
def deployment(broker, request):
    workdir = Path(tempfile.mkdtemp(prefix=f"switchboard-{request.module.__name__.rsplit('.', 1)[-1]}-"))
    d = Deployment(broker=broker, workdir=workdir, extra_env=getattr(request.module, "WORKER_ENV", {}))
    yield d
