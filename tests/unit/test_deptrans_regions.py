"""Regions (tables/deptrans/regions.py): point in polygon by ray casting, the boundary
inside, against an independent winding-number oracle; and the default Moscow polygon
against the MKAD's own kilometre markers."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tables.deptrans.regions import Region, Regions, check_polygon
from tables.deptrans.settings import MOSCOW_MKAD

SQUARE = Region.of([(0, 0), (0, 10), (10, 10), (10, 0)])  # lat 0..10, lon 0..10
# a U: lat 0..10, lon 0..9, with the notch lat 3..10, lon 3..6 cut out of its top
U = Region.of([(0, 0), (10, 0), (10, 3), (3, 3), (3, 6), (10, 6), (10, 9), (0, 9)])


@pytest.mark.parametrize("lat, lon, inside", [
    (5, 5, True), (0.001, 0.001, True), (9.999, 9.999, True),
    (5, -0.001, False), (5, 10.001, False), (-0.001, 5, False), (10.001, 5, False), (20, 20, False), (-5, -5, False),
    (0, 0, True), (0, 10, True), (10, 10, True), (10, 0, True),
    (0, 5, True), (10, 5, True), (5, 0, True), (5, 10, True),
    (0, 15, False), (10, -3, False), (10, 15, False),
], ids=["centre", "near-corner-in", "near-far-corner-in", "west", "east", "south", "north", "far", "far-negative",
        "vertex-sw", "vertex-se", "vertex-ne", "vertex-nw", "edge-south", "edge-north", "edge-west", "edge-east",
        "on-south-edge-line-beyond", "on-north-edge-line-before", "on-north-edge-line-beyond"])
def test_a_square_holds_its_inside_and_its_boundary(lat, lon, inside) -> None:
    assert SQUARE.contains(lat, lon) is inside


@pytest.mark.parametrize("lat, lon, inside", [
    (1, 1, True), (5, 1.5, True), (5, 7.5, True), (2, 4.5, True),
    (5, 4.5, False), (9.9, 4.5, False), (3.0001, 4.5, False),
    (3, 4.5, True), (6, 3, True), (10, 4.5, False),
    (3, -1, False), (10, -1, False), (3, 10, False), (10, 1, True),
    (1e-9, 4.5, True), (-1e-6, 4.5, False),
], ids=["low-left", "left-arm", "right-arm", "below-notch", "in-notch", "top-of-notch", "just-in-notch",
        "notch-floor", "notch-wall", "notch-mouth", "ray-through-notch-corners", "ray-along-top-edges",
        "east-of-everything", "top-edge-of-left-arm", "a-hair-inside-south", "a-hair-outside-south"])
def test_a_concave_polygon_leaves_its_notch_out(lat, lon, inside) -> None:
    assert U.contains(lat, lon) is inside


def test_a_ray_through_a_vertex_counts_it_once() -> None:
    diamond = Region.of([(0, 5), (5, 10), (10, 5), (5, 0)])
    assert diamond.contains(5, 5)  # the ray east passes through the vertex (5, 10)
    assert not diamond.contains(5, -1)  # ... and from the west through both (5, 0) and (5, 10)
    assert not diamond.contains(10, 4) and not diamond.contains(0, 6)  # rays along the top and bottom vertices
    assert diamond.contains(10, 5) and diamond.contains(2.5, 7.5)  # a vertex and an edge's middle


@pytest.mark.parametrize("points, why", [
    ([(0, 0), (1, 1)], "at least 3"),
    ([(0, 0), (1, 1), (0, 0)], "at least 3"),
    ([(0, 0), (0, 0), (1, 1), (1, 1)], "at least 3"),
    ([(0, 0), (1, 1), (2, 2)], "one line"),
    ([(91, 0), (1, 1), (2, 0)], "latitude"),
    ([(0, 0), (1, -181), (2, 0)], "longitude"),
    ([(0, 0), (1, math.nan), (2, 0)], "longitude"),
    ([(0, 0), (1,), (2, 0)], "[lat, lon]"),
    ([(0, 0, 0), (1, 1), (2, 0)], "[lat, lon]"),
], ids=["two-points", "closed-two", "repeated", "collinear", "lat-range", "lon-range", "nan", "short-point", "long-point"])
def test_a_polygon_that_is_not_one_is_refused_with_the_reason(points, why) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        check_polygon(points)


def test_a_closed_ring_and_an_open_one_are_the_same_polygon() -> None:
    assert check_polygon([(0, 0), (0, 1), (1, 1), (0, 0)]) == check_polygon([(0, 0), (0, 1), (1, 1)])
    assert Region.of([(0, 0), (0, 1), (1, 1), (0, 0)]) == Region.of([(0, 0), (0, 1), (1, 1)])


def test_regions_hold_a_point_any_of_them_holds() -> None:
    two = Regions.of([[(0, 0), (0, 1), (1, 1), (1, 0)], [(5, 5), (5, 6), (6, 6), (6, 5)]])
    assert two.contains(0.5, 0.5) and two.contains(5.5, 5.5)
    assert not two.contains(3, 3)  # inside the box of both, in neither
    assert not two.contains(50, 50)
    with pytest.raises(ValueError):
        Regions(())


# --- against an oracle -------------------------------------------------------------------------


def _winding(vertices, lat: float, lon: float) -> bool:
    """The angle the polygon turns around the point: 2 pi inside, 0 outside (points off the boundary)."""
    total = 0.0
    for (a_lat, a_lon), (b_lat, b_lon) in zip(vertices, (*vertices[1:], vertices[0])):
        a = math.atan2(a_lat - lat, a_lon - lon)
        b = math.atan2(b_lat - lat, b_lon - lon)
        turn = b - a
        while turn > math.pi:
            turn -= 2 * math.pi
        while turn < -math.pi:
            turn += 2 * math.pi
        total += turn
    return abs(total) > math.pi


def _distance_to_boundary(vertices, lat: float, lon: float) -> float:
    best = math.inf
    for (a_lat, a_lon), (b_lat, b_lon) in zip(vertices, (*vertices[1:], vertices[0])):
        d_lat, d_lon = b_lat - a_lat, b_lon - a_lon
        length2 = d_lat * d_lat + d_lon * d_lon
        t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((lat - a_lat) * d_lat + (lon - a_lon) * d_lon) / length2))
        best = min(best, math.hypot(lat - a_lat - t * d_lat, lon - a_lon - t * d_lon))
    return best


@st.composite
def star_polygons(draw):
    """A simple polygon (star-shaped around its centre), concave more often than not."""
    n = draw(st.integers(3, 14))
    angles = sorted(draw(st.lists(st.floats(0, 2 * math.pi, exclude_max=True), min_size=n, max_size=n, unique=True)))
    if any(b - a < 1e-3 for a, b in zip(angles, angles[1:])) or angles[-1] - angles[0] > 2 * math.pi - 1e-3:
        angles = [2 * math.pi * i / n for i in range(n)]
    radii = draw(st.lists(st.floats(0.5, 5.0), min_size=n, max_size=n))
    c_lat, c_lon = draw(st.floats(-60, 60)), draw(st.floats(-150, 150))
    vertices = [(c_lat + r * math.sin(a), c_lon + r * math.cos(a)) for a, r in zip(angles, radii)]
    if draw(st.booleans()):
        vertices.reverse()
    return vertices


@settings(max_examples=200, deadline=None)
@given(star_polygons(), st.lists(st.tuples(st.floats(-6, 6), st.floats(-6, 6)), min_size=1, max_size=20))
def test_ray_casting_agrees_with_the_winding_number_off_the_boundary(vertices, offsets) -> None:
    region = Region.of(vertices)
    c_lat = sum(v[0] for v in vertices) / len(vertices)
    c_lon = sum(v[1] for v in vertices) / len(vertices)
    for d_lat, d_lon in offsets:
        lat, lon = c_lat + d_lat, c_lon + d_lon
        if _distance_to_boundary(vertices, lat, lon) > 1e-6:
            assert region.contains(lat, lon) is _winding(vertices, lat, lon)


@settings(max_examples=200, deadline=None)
@given(star_polygons(), st.floats(0, 1), st.integers(0, 13))
def test_every_vertex_and_every_point_of_an_edge_is_inside(vertices, t, which) -> None:
    region = Region.of(vertices)
    a, b = vertices[which % len(vertices)], vertices[(which + 1) % len(vertices)]
    assert region.contains(*a)
    assert region.contains(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


@settings(max_examples=200, deadline=None)
@given(star_polygons(), st.integers(0, 13), st.tuples(st.floats(-6, 6), st.floats(-6, 6)))
def test_where_the_ring_starts_and_which_way_it_turns_change_nothing(vertices, shift, offset) -> None:
    shift %= len(vertices)
    turned = Region.of(vertices[shift:] + vertices[:shift])
    reversed_ = Region.of(list(reversed(vertices)))
    region = Region.of(vertices)
    lat, lon = vertices[0][0] + offset[0], vertices[0][1] + offset[1]
    assert region.contains(lat, lon) is turned.contains(lat, lon) is reversed_.contains(lat, lon)


# --- Moscow ------------------------------------------------------------------------------------

MOSCOW = Regions.of([MOSCOW_MKAD])
CENTRE = (55.7522, 37.6156)

# the MKAD's kilometre markers 1..108 (lat, lon), the list the default polygon was simplified from
MKAD_KM = tuple(zip(*[iter([
    55.774558, 37.842762, 55.76522, 37.842789, 55.755723, 37.842627, 55.747399, 37.841828, 55.739103, 37.841217,
    55.730482, 37.840175, 55.721939, 37.83916, 55.712203, 37.837121, 55.703048, 37.83262, 55.694287, 37.829512,
    55.68529, 37.831353, 55.675945, 37.834605, 55.667752, 37.837597, 55.658667, 37.839348, 55.650053, 37.833842,
    55.643713, 37.824787, 55.637347, 37.814564, 55.62913, 37.802473, 55.623758, 37.794235, 55.617713, 37.781928,
    55.611755, 37.771139, 55.604956, 37.758725, 55.599677, 37.747945, 55.594143, 37.734785, 55.589234, 37.723062,
    55.583983, 37.709425, 55.578834, 37.696256, 55.574019, 37.683167, 55.571999, 37.668911, 55.573093, 37.647765,
    55.573928, 37.633419, 55.574732, 37.616719, 55.575816, 37.60107, 55.5778, 37.586536, 55.581271, 37.571938,
    55.585143, 37.555732, 55.587509, 37.545132, 55.5922, 37.526366, 55.594728, 37.516108, 55.60249, 37.502274,
    55.609685, 37.49391, 55.617424, 37.484846, 55.625801, 37.474668, 55.630207, 37.469925, 55.641041, 37.456864,
    55.648794, 37.448195, 55.654675, 37.441125, 55.660424, 37.434424, 55.670701, 37.42598, 55.67994, 37.418712,
    55.686873, 37.414868, 55.695697, 37.407528, 55.702805, 37.397952, 55.709657, 37.388969, 55.718273, 37.383283,
    55.728581, 37.378369, 55.735201, 37.374991, 55.744789, 37.370248, 55.75435, 37.369188, 55.762936, 37.369053,
    55.771444, 37.369619, 55.779722, 37.369853, 55.789542, 37.372943, 55.79723, 37.379824, 55.805796, 37.386876,
    55.814629, 37.390397, 55.823606, 37.393236, 55.83251, 37.395275, 55.840376, 37.394709, 55.850141, 37.393056,
    55.858801, 37.397314, 55.867051, 37.405588, 55.872703, 37.416601, 55.877041, 37.429429, 55.881091, 37.443596,
    55.882828, 37.459065, 55.884625, 37.473096, 55.888897, 37.48861, 55.894232, 37.5016, 55.899578, 37.513206,
    55.90526, 37.527597, 55.907687, 37.543443, 55.909388, 37.559577, 55.910907, 37.575531, 55.909257, 37.590344,
    55.905472, 37.604637, 55.901637, 37.619603, 55.898533, 37.635961, 55.896973, 37.647648, 55.895449, 37.667878,
    55.894868, 37.681721, 55.893884, 37.698807, 55.889094, 37.712363, 55.883555, 37.723636, 55.877501, 37.735791,
    55.874698, 37.741261, 55.862464, 37.764519, 55.861979, 37.765992, 55.850257, 37.788216, 55.850383, 37.788522,
    55.844167, 37.800586, 55.832707, 37.822819, 55.828789, 37.829754, 55.821072, 37.837148, 55.811599, 37.838926,
    55.802781, 37.840004, 55.793991, 37.840965, 55.785017, 37.841576,
])] * 2))

M_PER_DEG_LAT = 111_000.0
M_PER_DEG_LON = 111_000.0 * math.cos(math.radians(55.75))


def _moved(point, towards, metres: float):
    """`point` moved `metres` towards `towards` (away, if negative), on the local plane."""
    d_lat = (towards[0] - point[0]) * M_PER_DEG_LAT
    d_lon = (towards[1] - point[1]) * M_PER_DEG_LON
    length = math.hypot(d_lat, d_lon)
    return point[0] + metres * d_lat / length / M_PER_DEG_LAT, point[1] + metres * d_lon / length / M_PER_DEG_LON


def test_the_moscow_polygon_has_the_size_the_settings_promise() -> None:
    assert 16 <= len(MOSCOW_MKAD) <= 30
    assert len(MKAD_KM) == 108 and set(MOSCOW_MKAD) <= set(MKAD_KM)  # its vertices are markers of the ring


@pytest.mark.parametrize("km", range(1, 109))
def test_the_moscow_polygon_is_the_ring_road_give_or_take_200_m(km) -> None:
    marker = MKAD_KM[km - 1]
    assert MOSCOW.contains(*_moved(marker, CENTRE, 250)), f"250 m inside the MKAD at km {km}"
    assert not MOSCOW.contains(*_moved(marker, CENTRE, -250)), f"250 m outside the MKAD at km {km}"


@pytest.mark.parametrize("lat, lon, inside", [
    (55.7520, 37.6175, True), (55.7494, 37.5370, True), (55.8263, 37.6377, True), (55.6100, 37.6800, True),
    (55.7100, 37.4300, True), (55.8800, 37.6000, True),
    (55.9825, 37.1814, False), (55.8970, 37.4297, False), (55.6783, 37.8936, False), (55.5915, 37.2615, False),
    (55.4088, 37.9063, False), (55.9726, 37.4146, False), (55.8204, 37.3302, False), (55.7582, 37.8616, False),
    (59.9390, 30.3158, False),
], ids=["kremlin", "moscow-city", "vdnkh", "tsaritsyno", "ramenki", "otradnoye", "zelenograd", "khimki", "lyubertsy",
        "vnukovo", "domodedovo", "sheremetyevo", "krasnogorsk", "reutov", "st-petersburg"])
def test_moscow_places_are_in_and_its_neighbours_out(lat, lon, inside) -> None:
    assert MOSCOW.contains(lat, lon) is inside
