"""Operations endpoints and the dashboard's files: /health, /ready, /metrics, / and /static."""

from __future__ import annotations

import time
from pathlib import Path

from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import metrics
from app.lag import consumed_topics, consumer_backlog
from app.main import app
from app.state import StateTable
from app.version import revision, version
from web.common import ApiError, ApiView

__all__ = ["Dashboard", "Health", "Metrics", "Ready", "StaticFile", "readiness"]

STATIC = Path(__file__).parent / "static"
STARTED = time.time()


@app.page("/health")
class Health(ApiView):
    public = True

    async def get(self, request: web.Request) -> web.Response:
        return self.ok({"status": "ok", "uptime_s": round(time.time() - STARTED, 1), "version": version(),
                        "revision": revision(), "integrations": metrics.integrations()})


def readiness() -> tuple[bool, str]:
    """Ready: the worker has joined the group and finished its first table recovery since it
    started. Later rebalances do not turn it off (a rolling restart would otherwise leave no
    ready worker behind a Service): each one-key read protects itself instead, answering
    `503 recovering` with `Retry-After` for a partition not answerable yet (web/common.py,
    `not_answerable_here`). A worker holding only standby partitions is ready: it forwards."""
    if app.should_stop:
        return False, "stopping"
    if not app.tables.recovery.completed.is_set():
        return False, "recovering tables" if app.rebalancing or app.in_recovery else "starting"
    return True, "rebalancing" if app.rebalancing else "consuming"


def _now() -> dict:
    """What the worker is doing now, beside its readiness."""
    return {"rebalancing": bool(app.rebalancing), "active_partitions": len(app.assignor.assigned_actives()),
            "standby_partitions": len(app.assignor.assigned_standbys())}


@app.page("/ready")
class Ready(ApiView):
    public = True

    async def get(self, request: web.Request) -> web.Response:
        ready, why = readiness()
        return self.ok({"ready": ready, "reason": why, **_now(), "integrations": metrics.integrations()},
                       status=200 if ready else 503)


@app.page("/metrics")
class Metrics(ApiView):
    public = True

    async def get(self, request: web.Request) -> web.Response:
        consumer_backlog(app, consumed_topics(app))  # refreshes the lag gauges
        metrics.ready.set(1 if readiness()[0] else 0)
        for table in StateTable.instances:
            try:
                metrics.table_size.labels(table.name).set(len(table))
            except Exception:  # a table mid-recovery has no size yet
                pass
        return self.bytes(generate_latest(metrics.REGISTRY), content_type=CONTENT_TYPE_LATEST.split(";")[0])


@app.page("/")
class Dashboard(ApiView):
    public = True

    async def get(self, request: web.Request) -> web.Response:
        return self.html((STATIC / "index.html").read_text())


STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml",
                ".png": "image/png", ".ico": "image/x-icon"}


@app.page("/static/{name}")
class StaticFile(ApiView):
    """The dashboard's files, by name from a fixed list (nothing else on disk is reachable)."""

    public = True
    files = {p.name: p for p in STATIC.iterdir() if p.is_file() and p.suffix in STATIC_TYPES}

    async def get(self, request: web.Request, name: str) -> web.Response:
        path = self.files.get(name)
        if path is None:
            raise ApiError(404, "not_found", f"no static file '{name[:100]}'")
        response = self.bytes(path.read_bytes(), content_type=STATIC_TYPES[path.suffix])
        response.headers["Cache-Control"] = "no-cache"
        return response
