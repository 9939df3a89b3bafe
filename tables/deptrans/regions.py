"""Where statuses are reported: the configured regions as polygons of (lat, lon), and whether
a driver's position lies in one of them. It runs for every status event (~1,100/s), so each
polygon keeps its bounding box and its edges precomputed.

The test is ray casting (W. R. Franklin's PNPOLY): a ray from the point towards growing
longitude crosses the polygon's boundary an odd number of times when the point is inside.
Two choices make it exact where it usually wobbles:

- the boundary belongs to the region: a point on an edge or a vertex (within `BOUNDARY_DEG`,
  about a millimetre) is inside, whatever the crossing count says: a driver on the ring road
  itself is in Moscow;
- each edge is half-open in latitude (it counts when exactly one of its ends is strictly
  north of the point), so a ray through a vertex counts that vertex once and a horizontal
  edge never, which keeps the parity right.

Latitude and longitude are taken as plane coordinates: exact enough for city-sized regions
away from the poles; a polygon may not cross the antimeridian (longitude +-180).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

__all__ = ["BOUNDARY_DEG", "LatLon", "Region", "Regions", "check_polygon"]

LatLon = tuple[float, float]
BOUNDARY_DEG = 1e-8  # ~1 mm: a point this close to an edge is on it (floats of a point on an edge are off by ~1e-14)


def check_polygon(points: Iterable[Sequence[float]]) -> tuple[LatLon, ...]:
    """The polygon's vertices as (lat, lon) pairs, or a ValueError saying what is wrong with
    them. A closing vertex that repeats the first one, and repeated neighbours, are dropped."""
    vertices: list[LatLon] = []
    for index, point in enumerate(points):
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ValueError(f"point {index}: expected [lat, lon], got {point!r}")
        lat, lon = float(point[0]), float(point[1])
        if not -90.0 <= lat <= 90.0:  # NaN fails these too
            raise ValueError(f"point {index}: latitude {lat} is outside -90..90")
        if not -180.0 <= lon <= 180.0:
            raise ValueError(f"point {index}: longitude {lon} is outside -180..180")
        if not vertices or vertices[-1] != (lat, lon):
            vertices.append((lat, lon))
    if len(vertices) > 1 and vertices[0] == vertices[-1]:
        vertices.pop()
    if len(set(vertices)) < 3:
        raise ValueError(f"a polygon needs at least 3 distinct points, got {len(set(vertices))}")
    if _area2(vertices) == 0.0:
        raise ValueError("the polygon's points lie on one line: it encloses nothing")
    return tuple(vertices)


def _area2(vertices: Sequence[LatLon]) -> float:
    return sum(a[1] * b[0] - b[1] * a[0] for a, b in zip(vertices, (*vertices[1:], vertices[0])))


# an edge as the hot loop reads it: its ends, its length, and its bounding box widened by BOUNDARY_DEG
_Edge = tuple[float, float, float, float, float, float, float, float, float]


def _edge(a: LatLon, b: LatLon) -> _Edge:
    return (a[0], a[1], b[0], b[1], math.hypot(b[0] - a[0], b[1] - a[1]), min(a[0], b[0]) - BOUNDARY_DEG,
            max(a[0], b[0]) + BOUNDARY_DEG, min(a[1], b[1]) - BOUNDARY_DEG, max(a[1], b[1]) + BOUNDARY_DEG)


@dataclass(frozen=True, slots=True)
class Region:
    """One polygon; `vertices` are (lat, lon), in either winding order."""

    vertices: tuple[LatLon, ...]
    min_lat: float = field(init=False)
    max_lat: float = field(init=False)
    min_lon: float = field(init=False)
    max_lon: float = field(init=False)
    _edges: tuple[_Edge, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        vertices = check_polygon(self.vertices)
        lats = [lat for lat, _ in vertices]
        lons = [lon for _, lon in vertices]
        edges = tuple(_edge(a, b) for a, b in zip(vertices, (*vertices[1:], vertices[0])))
        # the box is widened like the edges': a point on the boundary is never cut off by it
        for name, value in (("vertices", vertices), ("min_lat", min(lats) - BOUNDARY_DEG),
                            ("max_lat", max(lats) + BOUNDARY_DEG), ("min_lon", min(lons) - BOUNDARY_DEG),
                            ("max_lon", max(lons) + BOUNDARY_DEG), ("_edges", edges)):
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, points: Iterable[Sequence[float]]) -> "Region":
        return cls(check_polygon(points))

    def contains(self, lat: float, lon: float) -> bool:
        """Inside or on the boundary."""
        if not (self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon):
            return False
        inside = False
        for lat1, lon1, lat2, lon2, length, lo_lat, hi_lat, lo_lon, hi_lon in self._edges:
            if (lo_lat <= lat <= hi_lat and lo_lon <= lon <= hi_lon
                    and abs((lon2 - lon1) * (lat - lat1) - (lat2 - lat1) * (lon - lon1)) <= BOUNDARY_DEG * length):
                return True  # on this edge (the cross product is the distance times the edge's length)
            if (lat1 > lat) != (lat2 > lat) and lon < lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1):
                inside = not inside
        return inside


@dataclass(frozen=True, slots=True)
class Regions:
    """Every configured region: a position counts when any of them contains it."""

    regions: tuple[Region, ...]
    min_lat: float = field(init=False)
    max_lat: float = field(init=False)
    min_lon: float = field(init=False)
    max_lon: float = field(init=False)

    def __post_init__(self) -> None:
        if not self.regions:
            raise ValueError("at least one region is needed")
        for name, value in (("min_lat", min(r.min_lat for r in self.regions)),
                            ("max_lat", max(r.max_lat for r in self.regions)),
                            ("min_lon", min(r.min_lon for r in self.regions)),
                            ("max_lon", max(r.max_lon for r in self.regions))):
            object.__setattr__(self, name, value)

    @classmethod
    def of(cls, polygons: Iterable[Iterable[Sequence[float]]]) -> "Regions":
        return cls(tuple(Region(check_polygon(points)) for points in polygons))

    def contains(self, lat: float, lon: float) -> bool:
        if not (self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon):
            return False  # most of the country: one comparison chain
        return any(region.contains(lat, lon) for region in self.regions)
