"""A client of `personal`, the service that keeps personal data behind opaque ids.

Driver profiles carry `driver_license_pd_id`, never the licence number; KRT wants the number.
`PersonalClient.license_number(pd_id)` asks `personal` (`POST /v1/driver_licenses/retrieve`
`{"id": pd_id}` → `{"id", "value"}`), and keeps the answer in memory (least recently used
dropped first), so a driver's every status costs one lookup a worker's lifetime at most.
`python -m dev.personal` stands in for it.

A licence number is personal data: it is returned to the caller and kept in this cache, and
goes nowhere else: no log line, exception message or metric label carries it.
Every exchange is counted in `switchboard_external_calls_total{system="personal", outcome}`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Optional

import aiohttp
import orjson

from app import metrics

__all__ = ["PersonalClient", "PersonalError", "PersonalNotFound", "PersonalUnavailable"]

log = logging.getLogger(__name__)
SYSTEM = "personal"


class PersonalError(Exception):
    """`personal` did not give the value."""


class PersonalUnavailable(PersonalError):
    """No answer, or not a usable one (5xx, timeout, garbage): try again later."""


class PersonalNotFound(PersonalError):
    """`personal` has no value for this id: trying again will not help."""


class PersonalClient:
    def __init__(self, url: str, timeout_s: float = 2.0, cache_size: int = 100_000) -> None:
        self.url = url.rstrip("/") + "/v1/driver_licenses/retrieve"
        self.timeout_s = timeout_s
        self.cache_size = cache_size
        self.cache: OrderedDict[str, str] = OrderedDict()
        self._session: Optional[aiohttp.ClientSession] = None

    async def license_number(self, pd_id: str) -> str:
        cached = self.cache.get(pd_id)
        if cached is not None:
            self.cache.move_to_end(pd_id)
            return cached
        value = await self._retrieve(pd_id)
        self.cache[pd_id] = value
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return value

    async def _retrieve(self, pd_id: str) -> str:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        try:
            async with self._session.post(self.url, data=orjson.dumps({"id": pd_id}),
                                          headers={"Content-Type": "application/json"}) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            metrics.external_calls.labels(SYSTEM, "unavailable").inc()
            raise PersonalUnavailable(f"personal: no answer ({type(exc).__name__})") from None
        if status == 404:
            metrics.external_calls.labels(SYSTEM, "not_found").inc()
            raise PersonalNotFound("personal: no such id")
        if status != 200:
            metrics.external_calls.labels(SYSTEM, "error").inc()
            raise PersonalUnavailable(f"personal: HTTP {status}")
        try:
            value = orjson.loads(body)["value"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            value = None
        if not isinstance(value, str) or not value:
            metrics.external_calls.labels(SYSTEM, "bad_answer").inc()
            raise PersonalUnavailable("personal: an answer without a value")
        metrics.external_calls.labels(SYSTEM, "ok").inc()
        return value

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
