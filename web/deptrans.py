"""Driver status → KRT's endpoints (SPEC.md "HTTP API", Drivers).

- `GET /driver/v1/deptrans-status/v1/id` (a driver: `X-Park-Id`, `X-Driver-Profile-Id`)
  -> `{"has_id": bool}`; the ID itself is never returned.
- `POST` the same path `{"deptrans_id"}`: the ID is checked against the driver's licence in
  KRT (400 malformed, 404 no profile with a licence, 409 not this driver's, 503 KRT or
  `personal` unavailable), then stored on the internal `<APP_ID>-deptrans-ids` (keyed by the
  licence's pd id; only the service reads it) and `has_id` said on the compacted
  `deptrans-profiles` -> 200 `{"has_id": true}` once Kafka has both.
- `GET /internal/v1/id/updates` and `GET /internal/v1/status/updates` (`service`):
  `?cursor=&limit=` -> `{"items": [...], "cursor": str, "more": bool}`. Every worker follows
  `deptrans-profiles` and `deptrans-session-statuses` from their beginning (app/feeds.py) and
  pages them by (partition, offset) (tables/deptrans/cursor.py), so any worker continues any
  cursor: it never repeats a change, and never skips one (a worker that has read less
  answers fewer items).

A driver's licence pd id lives with the driver's state on the worker that owns the driver's
partition (`dt-drivers`): asked there (`/internal/deptrans/v1/driver`).
"""

from __future__ import annotations

import re
import time
from functools import partial
from typing import Annotated, Any, Optional
from urllib.parse import quote

import orjson
from faust import web
from pydantic import Field, StringConstraints

from app.feeds import TopicFollower
from app.krt import KrtClient, KrtError, KrtRefused, KrtUnavailable
from app.main import app, settings
from app.partitioner import partition_of
from app.personal import PersonalClient, PersonalNotFound, PersonalUnavailable
from tables.deptrans.cursor import InvalidCursor, decode_cursor, encode_cursor, page
from tables.deptrans.drivers import driver_key
from tables.deptrans.feed import CompactedFeed
from tables.deptrans.ids import has_id, private_record, public_record
from tables.deptrans.records import DriverId, ParkId
from tables.deptrans.sessions import status_update
from tables.deptrans.store import deptrans, drivers_table, topics
from web.common import WORKER, ApiError, ApiView, Recovering, answer_here, ask_owner, send_command
from web.params import Body, Query, body, parse, query

__all__ = ["DriverIdView", "IdUpdates", "StatusUpdates"]

DEPTRANS_ID = re.compile(r"^[A-Za-z0-9-]{4,64}$")


# --- the feeds every worker follows -----------------------------------------------------------

def _feed_of(topic: Any) -> tuple[CompactedFeed, TopicFollower]:
    feed = CompactedFeed()

    def on_record(record: Any) -> None:
        key = record.key.decode(errors="replace") if record.key is not None else ""
        try:
            value = None if record.value is None else orjson.loads(record.value)
        except orjson.JSONDecodeError:
            return  # not ours: the service writes only JSON here
        feed.add(record.partition, record.offset, key, value)

    follower = TopicFollower(topic.get_topic_name, settings.kafka_bootstrap, on_record)
    app.service(follower)  # type: ignore[arg-type]  # started with the app (Faust takes instances too)
    return feed, follower


id_feed, id_follower = _feed_of(topics.deptrans_profiles)
status_feed, status_follower = _feed_of(topics.deptrans_session_statuses)


def id_update(pd_id: str, record: Optional[dict[str, Any]]) -> dict[str, Any]:
    """An item of `GET /internal/v1/id/updates`: whether the licence has a KRT ID (not the ID)."""
    if record is None:
        return {"driver_license_pd_id": pd_id, "has_id": False, "updated_at": None, "deleted": True}
    return {"driver_license_pd_id": pd_id, "has_id": has_id(record),
            "updated_at": record.get("updated_at"), "deleted": False}


class UpdatesQuery(Query):
    cursor: Optional[Annotated[str, StringConstraints(max_length=16_384)]] = None
    limit: Annotated[int, Field(ge=1)] = 100


def _updates(request: web.Request, feed: CompactedFeed, name: str, item: Any) -> dict[str, Any]:
    asked = query(request, UpdatesQuery)
    limit = min(asked.limit, deptrans.deptrans_updates_max_limit)
    try:
        positions = decode_cursor(asked.cursor, name)
    except InvalidCursor as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    result = page(feed.changes_by_partition(), positions, limit)
    return {"items": [item(change.key, change.value) for change in result.items],
            "cursor": encode_cursor(result.positions, name), "more": result.more}


@app.page("/internal/v1/id/updates")
class IdUpdates(ApiView):
    roles = ("service",)

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(_updates(request, id_feed, "id", id_update))


@app.page("/internal/v1/status/updates")
class StatusUpdates(ApiView):
    roles = ("service",)

    async def get(self, request: web.Request) -> web.Response:
        return self.ok(_updates(request, status_feed, "status", status_update))


# --- the driver's own endpoint -----------------------------------------------------------------

class _DriverHeaders(Query):
    park_id: ParkId
    driver_id: DriverId


def _driver(request: web.Request) -> str:
    """The calling driver's key, from `X-Park-Id` and `X-Driver-Profile-Id` (400 without them)."""
    ids = parse(_DriverHeaders, {"park_id": request.headers.get("X-Park-Id", ""),
                                 "driver_id": request.headers.get("X-Driver-Profile-Id", "")}, "headers")
    return driver_key(ids.park_id, ids.driver_id)


async def _pd_id(request: web.Request, key: str) -> str:
    """The licence pd id of the driver's profile, from the worker that owns the driver (404 without one)."""
    answer = await ask_owner(drivers_table, key, f"/internal/deptrans/v1/driver?key={quote(key, safe='')}",
                             partial(_pd_of, key), request)
    if not answer.get("pd_id"):
        raise ApiError(404, "not_found", "no profile with a driver licence for this driver")
    return str(answer["pd_id"])


class DriverIdBody(Body):
    deptrans_id: Annotated[str, StringConstraints(max_length=256)]  # its form is checked below


@app.page("/driver/v1/deptrans-status/v1/id")
class DriverIdView(ApiView):
    roles = ("driver",)

    async def get(self, request: web.Request) -> web.Response:
        pd_id = await _pd_id(request, _driver(request))
        if not id_follower.caught_up.is_set():  # before, a stored ID reads as none
            raise Recovering("this worker is still reading the stored KRT IDs after its start")
        record = id_feed.get(pd_id, _partition(pd_id))
        return self.ok({"has_id": has_id(record)})

    async def post(self, request: web.Request) -> web.Response:
        key = _driver(request)
        deptrans_id = (await body(request, DriverIdBody)).deptrans_id.strip()
        if not DEPTRANS_ID.match(deptrans_id):
            raise ApiError(400, "bad_request", "deptrans_id: 4 to 64 letters, digits or '-'")
        pd_id = await _pd_id(request, key)
        if _clients.krt is None or _clients.personal is None:
            raise ApiError(503, "unavailable", "KRT is not configured here (KRT_URL, PERSONAL_URL)")
        try:
            licence = await _clients.personal.license_number(pd_id)
            matches = await _clients.krt.verify_id(deptrans_id, licence)
        except (KrtUnavailable, PersonalUnavailable):
            raise ApiError(503, "unavailable", "KRT cannot check the ID now; try again later") from None
        except PersonalNotFound:
            raise ApiError(404, "not_found", "the driver's licence is unknown") from None
        except KrtRefused as exc:
            raise ApiError(400, "bad_request", f"KRT refused the check ({exc.status})") from None
        except KrtError:
            raise ApiError(503, "unavailable", "KRT cannot check the ID now; try again later") from None
        if not matches:
            raise ApiError(409, "conflict", "this ID does not belong to this driver's licence")
        at = time.time()  # the secret first: `has_id` is never said of an ID not kept
        await send_command(topics.deptrans_ids, pd_id.encode(), private_record(pd_id, deptrans_id, at), "KRT ID")
        await send_command(topics.deptrans_profiles, pd_id.encode(), public_record(pd_id, at), "KRT ID")
        return self.ok({"has_id": True})


@app.page("/internal/deptrans/v1/driver")
class DriverPdView(ApiView):
    """The licence pd id of a driver this worker owns (for the driver endpoint on another worker)."""

    roles = (WORKER,)

    async def get(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        return self.ok(await answer_here(drivers_table, key, partial(_pd_of, key)))


async def _pd_of(key: str) -> dict[str, Any]:
    state = drivers_table.stored(key)
    profile = None if state is None else state.profile
    return {"pd_id": None if profile is None else profile.pd_id}


def _partition(pd_id: str) -> int:
    return partition_of(pd_id, settings.partitions)


class _Clients:
    """KRT and `personal` for the ID check (the sender has its own: a check is a rare request)."""

    def __init__(self) -> None:
        self.krt = None if deptrans.krt is None else KrtClient(deptrans.krt, timeout_s=deptrans.krt_timeout_s)
        self.personal = (PersonalClient(deptrans.personal_url, deptrans.personal_timeout_s)
                         if deptrans.personal_url else None)
        if self.krt is not None:
            app.service(self.krt)  # type: ignore[arg-type]


_clients = _Clients()
