"""Driver traffic for `python -m app simulate`: the inputs of driver status → KRT (seed 002).

A fleet of drivers in a few parks: each has a profile on `driver-profiles` (sent first; a
licence pd id, and tariff categories: most work econom, comfort or comfort_plus, some only
cargo or courier), a position on `driver-positions` (most inside Moscow's MKAD, some in the
region around it or in Saint Petersburg) sent a moment before each of its statuses, and
statuses on `contractor-status`: a driver goes online, takes orders (busy, online again),
goes offline. Pure given the clock: `due(now)` returns what is due, in time order.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from typing import Optional

from tables.deptrans.drivers import DriverStatus, PositionReported, Profile, ProfileChanged, StatusChanged
from tables.deptrans.records import contractor_status_record, position_record, profile_record

__all__ = ["DriverTraffic"]

PARKS = 20
MAX_DRIVERS = 20_000
CATEGORY_MIX = ((("econom",), 0.45), (("econom", "comfort"), 0.25), (("comfort", "comfort_plus"), 0.12),
                (("cargo",), 0.10), (("courier",), 0.08))
WHERE = (((55.7520, 37.6175), 0.10, 0.75),  # Moscow inside the MKAD: centre, spread in degrees, share
         ((55.9000, 37.4000), 0.15, 0.15),  # the region north-west of it (mostly outside the MKAD)
         ((59.9343, 30.3351), 0.05, 0.10))  # Saint Petersburg
NEXT = {DriverStatus.OFFLINE: ((DriverStatus.ONLINE, 1.0),),
        DriverStatus.ONLINE: ((DriverStatus.BUSY, 0.7), (DriverStatus.OFFLINE, 0.3)),
        DriverStatus.BUSY: ((DriverStatus.ONLINE, 0.9), (DriverStatus.OFFLINE, 0.1))}


def _pick(rnd: random.Random, weighted):
    point = rnd.random() * sum(w for _, w in weighted)
    for value, weight in weighted:
        point -= weight
        if point <= 0:
            return value
    return weighted[-1][0]


class DriverTraffic:
    """`statuses_per_s` status changes per second over `drivers` drivers."""

    def __init__(self, seed: int, statuses_per_s: float, start: float, drivers: Optional[int] = None,
                 prefix: str = "sim") -> None:
        self.rnd = random.Random(seed)
        self.statuses_per_s = statuses_per_s
        # a driver changes status every ~10 minutes on average: as many drivers as that needs
        # (at most MAX_DRIVERS by default: their profiles all go out at the start)
        self.drivers = drivers if drivers is not None else min(MAX_DRIVERS, max(10, math.ceil(statuses_per_s * 600)))
        self.prefix = prefix
        self.status = {self._id(n): DriverStatus.OFFLINE for n in range(self.drivers)}
        self.scheduled: list[tuple[float, int, str, bytes, Optional[bytes]]] = []  # (when, tie, kind, key, value)
        self.ticket = itertools.count()
        self.next_at = start + self._gap()
        self.sent = {"profiles": 0, "positions": 0, "statuses": 0}
        for n in range(self.drivers):
            park, driver = self._id(n)
            categories = _pick(self.rnd, CATEGORY_MIX)
            pd_id = f"{prefix}-pd-{n}" if self.rnd.random() > 0.02 else None  # a few profiles lack a licence
            key, value = profile_record(ProfileChanged(park, driver, Profile(pd_id, tuple(categories))))
            self._at(start, "profiles", key, value)

    def _id(self, n: int) -> tuple[str, str]:
        return f"{self.prefix}park{n % PARKS}", f"driver{n}"

    def _gap(self) -> float:
        return self.rnd.expovariate(self.statuses_per_s) if self.statuses_per_s > 0 else math.inf

    def due(self, now: float) -> list[tuple[str, bytes, Optional[bytes]]]:
        """(kind, key, value) of every record due by `now`: kind is profiles, positions or statuses."""
        while self.next_at <= now:
            self._change(self.next_at)
            self.next_at += self._gap()
        out = []
        while self.scheduled and self.scheduled[0][0] <= now:
            _, _, kind, key, value = heapq.heappop(self.scheduled)
            out.append((kind, key, value))
            self.sent[kind] += 1
        return out

    def _change(self, at: float) -> None:
        n = self.rnd.randrange(self.drivers)
        park, driver = self._id(n)
        status = _pick(self.rnd, NEXT[self.status[(park, driver)]])
        self.status[(park, driver)] = status
        (lat, lon), spread, _ = _pick(self.rnd, [(w, w[2]) for w in WHERE])
        position = PositionReported(park, driver, lat + self.rnd.uniform(-spread, spread),
                                    lon + self.rnd.uniform(-spread, spread) * 1.8, at - 1.0)
        key = f"{park}_{driver}".encode()
        self._at(at - 1.0, "positions", key, position_record(position))
        self._at(at, "statuses", key, contractor_status_record(StatusChanged(park, driver, status, at)))

    def _at(self, when: float, kind: str, key: bytes, value: Optional[bytes]) -> None:
        heapq.heappush(self.scheduled, (when, next(self.ticket), kind, key, value))
