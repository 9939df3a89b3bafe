"""Call-center JSON API: queue status, queue metrics, operators (SPEC.md "HTTP API").

Reads only. Whole-fleet answers are gathered from every worker (`ask_all`; a worker that
cannot give its share yet is named in `unavailable_workers` and the answer is `stale`);
one-key answers come from the worker owning the key (`ask_owner`), or are `503 recovering`.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable, Optional
from urllib.parse import quote

from faust import web

from app.facets import operator_extras, operator_named, operators_known_to_facets
from app.main import app, settings
from tables.callcenter.operators import OperatorState
from tables.callcenter.queues import QueueState, live_counts, oldest_waiting, with_longest_wait
from tables.callcenter.store import (
    cc_settings,
    input_tracker,
    operator_aliases,
    operators_table,
    queues_table,
    recent_windows,
    windows_table,
)
from tables.callcenter.views import operator_view
from tables.callcenter.windows import metrics_view, window_key, window_start
from web.common import WORKER, ApiError, ApiView, ask_all, ask_owner, own_share
from web.params import Identifier, Query, TimeRange, identifier, query

__all__ = [
    "LocalOperators", "LocalQueues", "Operator", "Operators", "OperatorsQuery", "QueueMetrics",
    "QueueStatus", "QueuesStatus", "combined_freshness", "freshness",
]


def freshness() -> dict:
    lag = input_tracker.lag_s
    return {"lag_s": None if lag is None else round(lag, 3), "stale": input_tracker.stale,
            "backlog_records": input_tracker.backlog}


def combined_freshness(answers: list[dict], missing: list[str]) -> dict:
    """Fleet-wide freshness; an answer missing a worker's share is stale and says whose."""
    lags = [a["lag_s"] for a in answers if a.get("lag_s") is not None]
    lag = max(lags) if lags else None
    backlog = sum(a.get("backlog_records", 0) for a in answers)
    body = {"lag_s": lag, "stale": bool(missing) or any(a.get("stale") for a in answers), "backlog_records": backlog}
    if missing:
        body["unavailable_workers"] = missing
    return body


# queue -> (the state a view was made of, its counts, its oldest waiting call); states are
# immutable and replaced on every change, so `is` says whether the view is still right
_live_views: dict[str, tuple[QueueState, dict, Optional[float]]] = {}


def _queue_status(q: QueueState, now: float) -> dict:
    known = _live_views.get(q.queue)
    if known is None or known[0] is not q:
        known = _live_views[q.queue] = (q, live_counts(q), oldest_waiting(q))
    return {**with_longest_wait(known[1], known[2], now), **recent_windows.of(q.queue, now)}


def _local_queue(queue: str) -> Optional[QueueState]:
    return queues_table.get(queue)


# the limits behind the figures, for the dashboard (which never re-declares them)
LIMITS = {"sl_threshold_s": cc_settings.sl_threshold_s, "stale_after_s": settings.stale_after_s,
          "window_s": cc_settings.window_s}


async def _local_queues() -> dict:
    """This worker's share of `/queues/status`: its queues and its freshness."""
    now = time.time()
    return {"queues": [_queue_status(q, now) for _, q in queues_table.items()], **freshness()}


@app.page("/internal/cc/queues")
class LocalQueues(ApiView):
    roles = (WORKER,)

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(await own_share(_local_queues))


@app.page("/queues/status")
class QueuesStatus(ApiView):
    roles = ("manager",)

    async def get(self, request: web.Request) -> web.Response:
        answers, missing = await ask_all("/internal/cc/queues", _local_queues)
        queues = sorted((q for a in answers for q in a["queues"]), key=lambda q: q["queue"])
        return self.ok({"generated_at": time.time(), **combined_freshness(answers, missing), "queues": queues,
                        "limits": LIMITS})


@app.page("/queues/{queue}/status")
class QueueStatus(ApiView):
    roles = ("manager", WORKER)  # WORKER: the read forwarded to the owner (ask_owner)

    async def get(self, request: web.Request, queue: str) -> web.Response:
        queue = identifier(queue, "queue")

        async def local():
            q = _local_queue(queue)
            if q is None:
                raise ApiError(404, "not_found", f"no queue '{queue}' has been seen")
            return {"generated_at": time.time(), **freshness(), **_queue_status(q, time.time())}

        return self.ok(await ask_owner(queues_table, queue, f"/queues/{quote(queue)}/status", local, request))


@app.page("/queues/{queue}/metrics")
class QueueMetrics(ApiView):
    roles = ("manager", WORKER)  # WORKER: the read forwarded to the owner (ask_owner)

    async def get(self, request: web.Request, queue: str) -> web.Response:
        queue = identifier(queue, "queue")
        now = time.time()
        asked = query(request, TimeRange, {"since": now - 3600, "until": now})
        since, until = asked.since, asked.until
        if until - since > cc_settings.windows_kept_s:
            kept = cc_settings.windows_kept_s
            raise ApiError(400, "bad_request", f"at most {kept} s of windows are kept; ask for a shorter range")

        async def local():
            q = _local_queue(queue)
            if q is None:
                raise ApiError(404, "not_found", f"no queue '{queue}' has been seen")
            return {"queue": queue, "window_s": cc_settings.window_s, "windows": _windows_of(q, since, until)}

        path = f"/queues/{quote(queue)}/metrics?since={since}&until={until}"
        return self.ok(await ask_owner(queues_table, queue, path, local, request))


def _windows_of(q: QueueState, since: float, until: float) -> list[dict]:
    """The windows of `q` that start in [since, until] (a range of at most the windows kept)."""
    step = cc_settings.window_s
    first = window_start(since, step)
    if q.first_window is not None:
        first = max(first, q.first_window)
    windows = []
    for k in range(int((until - first) // step) + 1 if first <= until else 0):  # integer steps: no float drift
        window = windows_table.get(window_key(q.queue, first + k * step))
        if window is not None:
            windows.append(metrics_view(window))
    return windows


class OperatorsQuery(Query):
    queue: Optional[Identifier] = None  # only the members of this queue


def _local_operators(queue: Optional[str]) -> list[dict]:
    """This worker's operators: telephony state, and beside it what other domains add (the
    CRM status: app/facets.py); an operator only those know of is offline in telephony."""
    now = time.time()
    views = {op.agent: operator_view(op, now) for _, op in operators_table.items()}
    if queue is None:
        for agent in operators_known_to_facets() - views.keys():
            views[agent] = operator_view(OperatorState(agent), now)
    return [{**v, **(operator_extras(agent, now) or {})} for agent, v in views.items()
            if queue is None or queue in v["queues"]]


def _operators_share(queue: Optional[str]) -> Callable[[], Awaitable[dict]]:
    """This worker's share of `/operators`: its operators and its freshness."""
    async def share() -> dict:
        return {"operators": _local_operators(queue), **freshness()}
    return share


@app.page("/internal/cc/operators")
class LocalOperators(ApiView):
    roles = (WORKER,)

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(await own_share(_operators_share(query(request, OperatorsQuery).queue)))


@app.page("/operators")
class Operators(ApiView):
    roles = ("manager",)

    async def get(self, request: web.Request) -> web.Response:
        queue = query(request, OperatorsQuery).queue
        path = "/internal/cc/operators" + (f"?queue={quote(queue)}" if queue else "")
        answers, missing = await ask_all(path, _operators_share(queue))
        operators = sorted((o for a in answers for o in a["operators"]), key=lambda o: o["id"])
        return self.ok({"generated_at": time.time(), **combined_freshness(answers, missing), "operators": operators})


@app.page("/operators/{operator_id}")
class Operator(ApiView):
    roles = ("manager", "operator", WORKER)  # WORKER: the read forwarded to the owner

    async def get(self, request: web.Request, operator_id: str) -> web.Response:
        # any of its names: its aliases (OPERATOR_ALIASES), its Asterisk interface
        operator_id = operator_aliases.canonical(operator_named(identifier(operator_id, "operator_id")))

        async def local():
            now = time.time()
            op, extras = operators_table.get(operator_id), operator_extras(operator_id, now)
            if op is None and extras is None:
                raise ApiError(404, "not_found", f"no operator '{operator_id}' has been seen")
            return {**operator_view(op or OperatorState(operator_id), now), **(extras or {})}

        path = f"/operators/{quote(operator_id, safe='')}"
        return self.ok(await ask_owner(operators_table, operator_id, path, local, request))
