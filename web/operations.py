"""Operations endpoints and the dashboard's files: /health, /ready, /metrics, / and /static."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Optional

import aiohttp
from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import metrics
from app.lag import consumed_topics, consumer_backlog
from app.main import app, settings
from app.state import StateTable
from app.version import revision, version
from web.common import WORKER, ApiError, ApiView, worker_urls

__all__ = ["Dashboard", "Health", "Metrics", "Peer", "Ready", "StaticFile", "check_peers",
           "consumer_out_of_group", "gauged_readiness", "readiness", "refusing_peers"]

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
STARTED = time.time()
PEER_CHECK_TIMEOUT_S = 3.0
peers_checked = asyncio.Event()  # set once the other workers took this worker's credential


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
    `not_answerable_here`). A worker holding only standby partitions is ready: it forwards.
    It is not ready again only while it stops or its consumer is out of the group."""
    if app.should_stop:
        return False, "stopping"
    if not app.tables.recovery.completed.is_set():  # set once, by the first recovery's end
        return False, "recovering tables" if app.rebalancing or app.in_recovery else "starting"
    if not peers_checked.is_set():
        return False, "checking the other workers take its credential"
    left = consumer_out_of_group()
    if left is not None:
        return False, left
    return True, "rebalancing" if app.rebalancing else "consuming"


def consumer_out_of_group() -> Optional[str]:
    """Why this worker's Kafka consumer is not a member of the group now (None: it is).

    Faust's consumer service stops or crashes on its own (a crashed fetcher); aiokafka's group
    coordinator resets its generation to -1 when the group dropped the member (its session
    expired, or it was idle past max.poll.interval and left) until it joins again. The
    coordinator is private (`Consumer._thread._consumer._coordinator`; Faust reads its
    `generation` the same way, faust/transport/drivers/aiokafka.py): absent, nothing is said."""
    consumer = app.consumer
    thread = getattr(consumer, "_thread", None)
    if consumer.should_stop or (thread is not None and thread.should_stop):
        return "consumer stopped"
    coordinator = getattr(getattr(thread, "_consumer", None), "_coordinator", None)
    if coordinator is not None and getattr(coordinator, "generation", 0) < 0:
        return "left the consumer group"
    return None


def gauged_readiness() -> tuple[bool, str]:
    """`readiness()`, set on the `switchboard_ready` gauge too (on /ready and on each scrape)."""
    ready, why = readiness()
    metrics.ready.set(1 if ready else 0)
    return ready, why


def _now() -> dict:
    """What the worker is doing now, beside its readiness: the partitions (numbers, over every
    topic and table: the assignor gives them together) it owns and those it keeps as standbys."""
    return {"rebalancing": bool(app.rebalancing), "recovering": bool(app.in_recovery),
            "active_partitions": len({tp.partition for tp in app.assignor.assigned_actives()}),
            "standby_partitions": len({tp.partition for tp in app.assignor.assigned_standbys()})}


@app.page("/ready")
class Ready(ApiView):
    public = True

    async def get(self, request: web.Request) -> web.Response:
        ready, why = gauged_readiness()
        return self.ok({"ready": ready, "reason": why, **_now(), "integrations": metrics.integrations()},
                       status=200 if ready else 503)


# --- workers authenticate each other: checked once, at the start ---------------------------------

@app.page("/internal/peer")
class Peer(ApiView):
    """*internal*: what a starting worker asks every other worker, with its credential."""

    roles = (WORKER,)

    async def get(self, request: web.Request) -> web.Response:
        return self.ok({"worker": settings.canonical_url, "app_id": settings.app_id})


async def refusing_peers(urls: list[str]) -> list[str]:
    """The workers among `urls` that refuse this worker's credential (401 or 403). One that
    cannot be reached, or answers otherwise, is not held against the fleet (it may be stopping,
    or of a version before this check): it is logged."""
    headers = {"Authorization": f"Bearer {settings.worker_token}"}
    timeout = aiohttp.ClientTimeout(total=PEER_CHECK_TIMEOUT_S)

    async def refuses(session: aiohttp.ClientSession, url: str) -> bool:
        try:
            async with session.get(url + "/internal/peer", headers=headers) as resp:
                if resp.status in (401, 403):
                    return True
                if resp.status != 200:
                    log.warning("another worker did not confirm this worker's credential",
                                extra={"url": url, "status": resp.status})
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("another worker could not be asked at the start", extra={"url": url, "error": repr(exc)})
        return False

    async with aiohttp.ClientSession(timeout=timeout) as session:
        answers = await asyncio.gather(*(refuses(session, url) for url in urls))
    return [url for url, refused in zip(urls, answers) if refused]


@app.task
async def check_peers() -> None:
    """Once the first assignment is known (every worker of the group is in it): ask each other
    worker to take this worker's credential. If one refuses, nothing this worker forwards
    would be answered (502s, sockets closed): it refuses to start, with one line saying why."""
    await app.tables.recovery.completed.wait()
    me = settings.canonical_url
    refused = await refusing_peers([url for url in worker_urls() if url != me])
    if refused:
        line = (f"workers cannot authenticate each other: {', '.join(refused)} refused this worker's credential; "
                "give every worker the same INTERNAL_TOKEN (or, with it empty, the same AUTH_TOKENS and APP_ID). "
                "Not starting.")
        app.refuse_start(line)  # type: ignore[attr-defined]
        return
    peers_checked.set()


@app.page("/metrics")
class Metrics(ApiView):
    public = True

    async def get(self, request: web.Request) -> web.Response:
        consumer_backlog(app, consumed_topics(app))  # refreshes the lag gauges
        gauged_readiness()
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
