"""Driver status -> KRT's settings (README "Configuration"), read once from the environment.

`DEPTRANS_REGIONS` is JSON: a list of polygons, each a list of [lat, lon] points, e.g.
`[[[55.9, 37.3], [55.9, 37.9], [55.5, 37.9], [55.5, 37.3]]]`. The default is Moscow
inside the MKAD ring road (`MOSCOW_MKAD`). `DEPTRANS_CATEGORIES` is a comma-separated
list (or a JSON list) of tariff categories, spelt as `drivers.normalise_category` writes them.
"""

from __future__ import annotations

from functools import cached_property, lru_cache
from typing import Annotated, Optional

import orjson
from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from app.krt import KrtSettings, parse_url
from app.settings import DomainSettings, check_http_url
from tables.deptrans.drivers import ReportPolicy, normalise_category
from tables.deptrans.regions import LatLon, Regions, check_polygon

__all__ = ["DeptransSettings", "MOSCOW_MKAD", "deptrans_settings"]

DAY_S = 86400.0

# Moscow inside the MKAD ring road, clockwise from its kilometre 1 (east, at Entuziastov
# highway). The vertices are kilometre markers of the widely shared 108-point list of
# MKAD markers (OpenStreetMap-derived, 1 km apart), simplified by Douglas-Peucker to 30:
# every marker lies within 200 m of this boundary, so only positions within ~200 m of the
# ring road itself may be misjudged. New Moscow and Zelenograd are not in it.
MOSCOW_MKAD: tuple[LatLon, ...] = (
    (55.774558, 37.842762),  # km 1
    (55.721939, 37.839160),  # km 7
    (55.694287, 37.829512),  # km 10
    (55.658667, 37.839348),  # km 14
    (55.650053, 37.833842),  # km 15
    (55.623758, 37.794235),  # km 19
    (55.599677, 37.747945),  # km 23
    (55.574019, 37.683167),  # km 28
    (55.571999, 37.668911),  # km 29
    (55.577800, 37.586536),  # km 34
    (55.594728, 37.516108),  # km 39
    (55.602490, 37.502274),  # km 40
    (55.660424, 37.434424),  # km 48
    (55.695697, 37.407528),  # km 52
    (55.709657, 37.388969),  # km 54
    (55.744789, 37.370248),  # km 58
    (55.779722, 37.369853),  # km 62
    (55.805796, 37.386876),  # km 65
    (55.832510, 37.395275),  # km 68
    (55.850141, 37.393056),  # km 70
    (55.867051, 37.405588),  # km 72
    (55.881091, 37.443596),  # km 75
    (55.888897, 37.488610),  # km 78
    (55.905260, 37.527597),  # km 81
    (55.910907, 37.575531),  # km 84
    (55.898533, 37.635961),  # km 88
    (55.893884, 37.698807),  # km 92
    (55.877501, 37.735791),  # km 95
    (55.828789, 37.829754),  # km 103
    (55.821072, 37.837148),  # km 104
)

Polygon = tuple[tuple[float, float], ...]


class DeptransSettings(DomainSettings):
    # which statuses go to KRT: drivers inside these regions, working one of these categories
    deptrans_regions: Annotated[tuple[Polygon, ...], NoDecode] = (MOSCOW_MKAD,)
    deptrans_categories: Annotated[tuple[str, ...], NoDecode] = ("econom", "comfort", "comfort_plus")
    # a position older than this at the status's time does not tell where the driver is
    deptrans_max_position_age_s: float = Field(600.0, gt=0)
    # only on/off-the-line changes go to KRT (online <-> busy is not sent again)
    deptrans_line_changes_only: bool = True
    deptrans_driver_kept_s: float = Field(DAY_S, gt=0)  # a driver's position and status are forgotten after this
    deptrans_session_kept_s: float = Field(30 * DAY_S, gt=0)  # KRT's session answers are kept this long (seed: 1-30 days)
    deptrans_sweep_s: float = Field(600.0, gt=0)  # how often a worker forgets what is past keeping in its partitions
    deptrans_updates_max_limit: int = Field(1000, ge=1)  # the most items one page of the cache feeds holds

    # AIS KRT: where it is (unset: statuses wait in the queue, nothing is sent) and how hard to press it;
    # its credentials in the URL (http(s)://client_id:secret@host) or apart (a Kubernetes Secret)
    krt_url: Optional[str] = None
    krt_client_id: Optional[str] = None
    krt_client_secret: Optional[str] = Field(None, repr=False)
    krt_timeout_s: float = Field(5.0, gt=0)  # one request
    krt_concurrency: int = Field(64, ge=1, le=1024)  # requests in flight per worker (64 at 50 ms each: 1,280/s)
    krt_retry_first_s: float = Field(1.0, gt=0)  # a driver's failed send waits this long, doubling per failure...
    krt_retry_max_s: float = Field(60.0, gt=0)  # ...up to this
    # a send with no answer after this long is presumed lost (its worker died) and sent again
    krt_lease_s: float = Field(30.0, gt=0)

    # `personal`, where a licence's number is kept behind its pd id (unset: nothing can be sent to KRT)
    personal_url: Optional[str] = None
    personal_timeout_s: float = Field(2.0, gt=0)
    krt_breaker_failures: int = Field(5, ge=1)  # failed sends in a row that give KRT a rest...
    krt_breaker_max_s: float = Field(60.0, gt=0)  # ...of 1 s, doubling while it stays down, up to this

    # topic names (defaults per SPEC.md)
    topic_contractor_status: str = "contractor-status"
    topic_driver_positions: str = "driver-positions"
    topic_driver_profiles: str = "driver-profiles"
    topic_deptrans_profiles: str = "deptrans-profiles"
    topic_deptrans_session_statuses: str = "deptrans-session-statuses"

    @field_validator("krt_url", "personal_url", "krt_client_id", "krt_client_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("personal_url")
    @classmethod
    def _personal_url_http(cls, value: Optional[str]) -> Optional[str]:
        return None if value is None else check_http_url(value)

    @field_validator("deptrans_regions", mode="before")
    @classmethod
    def _regions_as_polygons(cls, value: object) -> object:
        if isinstance(value, (str, bytes)):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"DEPTRANS_REGIONS: not JSON ({exc})") from None
        if isinstance(value, (list, tuple)):
            if not value:
                raise ValueError("DEPTRANS_REGIONS: at least one polygon is needed")
            polygons = []
            for index, polygon in enumerate(value):
                if not isinstance(polygon, (list, tuple)):
                    raise ValueError(f"DEPTRANS_REGIONS: polygon {index}: expected a list of [lat, lon] points")
                try:
                    polygons.append(check_polygon(polygon))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"DEPTRANS_REGIONS: polygon {index}: {exc}") from None
            return tuple(polygons)
        return value

    @field_validator("deptrans_categories", mode="before")
    @classmethod
    def _categories_listed(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            try:
                value = orjson.loads(text) if text.startswith("[") else text.split(",")
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"DEPTRANS_CATEGORIES: not a JSON list ({exc})") from None
        if isinstance(value, (list, tuple)):
            names = tuple(sorted({normalise_category(str(name)) for name in value} - {""}))
            if not names:
                raise ValueError("DEPTRANS_CATEGORIES: at least one category is needed")
            return names
        return value

    @model_validator(mode="after")
    def _retries_make_sense(self) -> "DeptransSettings":
        if self.krt_url is not None:
            try:
                parse_url(self.krt_url, self.krt_client_id, self.krt_client_secret)
            except ValueError as exc:  # the message never holds the secret
                raise ValueError(f"KRT_URL: {exc} (or KRT_CLIENT_ID and KRT_CLIENT_SECRET beside it)") from None
        if self.krt_retry_max_s < self.krt_retry_first_s:
            raise ValueError("KRT_RETRY_MAX_S must not be below KRT_RETRY_FIRST_S")
        if self.krt_lease_s <= self.krt_timeout_s:
            raise ValueError("KRT_LEASE_S must exceed KRT_TIMEOUT_S: a send still waiting for its answer is not lost")
        return self

    @cached_property
    def krt(self) -> Optional[KrtSettings]:
        """Where KRT is and who we are there; None when KRT_URL is unset (nothing is sent)."""
        return None if self.krt_url is None else parse_url(self.krt_url, self.krt_client_id, self.krt_client_secret)

    @cached_property
    def regions(self) -> Regions:
        return Regions.of(self.deptrans_regions)

    @cached_property
    def report_policy(self) -> ReportPolicy:
        """What drivers.apply_driver_event needs of these settings."""
        return ReportPolicy(self.regions, frozenset(self.deptrans_categories), self.deptrans_max_position_age_s,
                            self.deptrans_line_changes_only)


@lru_cache(maxsize=1)
def deptrans_settings() -> DeptransSettings:
    return DeptransSettings()
