"""FenceShape and FenceIndex: which positions lie inside, to the metre, and
check_fence's refusals."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from etrack.geofences.shapes import (
    EARTH_RADIUS_M,
    Fence,
    FenceIndex,
    FenceShape,
    check_fence,
    haversine_m,
)

Floats = npt.NDArray[np.float64]


def destination(
    lat: float, lon: float, bearing_deg: float, distance_m: float
) -> tuple[float, float]:
    """The point `distance_m` from (lat, lon) along the great circle leaving at
    `bearing_deg` (clockwise from north), on the sphere shapes.py uses."""
    phi1, lam1, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = distance_m / EARTH_RADIUS_M
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lam2 = lam1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(phi2), math.degrees(lam2)


def arrays(points: list[tuple[float, float]]) -> tuple[Floats, Floats]:
    lats = np.array([p[0] for p in points], dtype=np.float64)
    lons = np.array([p[1] for p in points], dtype=np.float64)
    return lats, lons


def circle(name: str, lat: float, lon: float, radius_m: float) -> Fence:
    return Fence(name, "circle", {"type": "Point", "coordinates": [lon, lat]}, radius_m=radius_m)


def indexed_hits(index: FenceIndex, lats: Floats, lons: Floats, fence: int = 0) -> list[bool]:
    hits = index.inside(lats, lons).get(fence, np.array([], dtype=np.intp))
    return [i in set(hits.tolist()) for i in range(len(lats))]


# ------------------------------------------------------------------ circle
@pytest.mark.parametrize("lat", [-33.0, 0.0, 60.0, -23.55])
def test_circle_edge_to_the_metre(lat: float) -> None:
    lon = -46.63 if lat != 60.0 else 10.75
    fence = circle("c", lat, lon, 100.0)
    bearings = [0.0, 30.0, 45.0, 90.0, 135.0, 180.0, 225.0, 270.0, 300.0, 359.0]
    inner = [destination(lat, lon, b, 99.9) for b in bearings]
    outer = [destination(lat, lon, b, 100.1) for b in bearings]
    lats, lons = arrays(inner + outer)
    # The points are where they are meant to be, by haversine.
    distances = haversine_m(lat, lon, lats, lons)
    np.testing.assert_allclose(distances, [99.9] * len(inner) + [100.1] * len(outer), atol=1e-6)
    expected = [True] * len(inner) + [False] * len(outer)
    assert FenceShape.of(fence).contains(lats, lons).tolist() == expected
    # The index's bounding box must not cut off any point of the edge.
    assert indexed_hits(FenceIndex([fence]), lats, lons) == expected


def test_circle_centre_and_exact_radius() -> None:
    fence = circle("c", -23.5, -46.6, 250.0)
    north = destination(-23.5, -46.6, 0.0, 250.0)
    lats, lons = arrays([(-23.5, -46.6), north])
    distance = float(haversine_m(-23.5, -46.6, lats[1:], lons[1:])[0])
    inside = FenceShape.of(fence).contains(lats, lons).tolist()
    assert inside[0] is True
    # The edge is inside: at most the radius.
    assert inside[1] is (distance <= 250.0)


# ----------------------------------------------------------------- polygon
# Binary-exact coordinates (multiples of 1/64), so "on the edge" is exactly on it.
OUTER = [[-46.75, -23.75], [-46.5, -23.75], [-46.5, -23.5], [-46.75, -23.5], [-46.75, -23.75]]
HOLE = [
    [-46.6875, -23.6875],
    [-46.5625, -23.6875],
    [-46.5625, -23.5625],
    [-46.6875, -23.5625],
    [-46.6875, -23.6875],
]
POLYGON = Fence("p", "polygon", {"type": "Polygon", "coordinates": [OUTER, HOLE]})

POLYGON_CASES = [
    # (lat, lon, inside, what)
    (-23.5, -46.625, True, "on the top edge"),
    (-23.625, -46.5, True, "on the right edge"),
    (-23.75, -46.75, True, "a corner"),
    (-23.5 + 1e-9, -46.625, False, "a hair above the top edge"),
    (-23.5 - 1e-9, -46.625, True, "a hair below the top edge"),
    (-23.625, -46.5 + 1e-9, False, "a hair right of the right edge"),
    (-23.7, -46.72, True, "between the outer ring and the hole"),
    (-23.625, -46.625, False, "in the hole"),
    (-23.5625 - 1e-9, -46.625, False, "in the hole, a hair from its edge"),
    (-23.5625, -46.625, True, "on the hole's edge (edges are inside)"),
    (-23.0, -46.0, False, "far away"),
]


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [pytest.param(lat, lon, inside, id=what) for lat, lon, inside, what in POLYGON_CASES],
)
def test_polygon_edges_and_hole(lat: float, lon: float, inside: bool) -> None:
    lats, lons = arrays([(lat, lon)])
    assert FenceShape.of(POLYGON).contains(lats, lons).tolist() == [inside]
    assert indexed_hits(FenceIndex([POLYGON]), lats, lons) == [inside]


def test_polygon_all_at_once_through_the_index() -> None:
    lats, lons = arrays([(lat, lon) for lat, lon, _, _ in POLYGON_CASES])
    expected = [i for i, case in enumerate(POLYGON_CASES) if case[2]]
    found = FenceIndex([POLYGON]).inside(lats, lons)
    assert list(found) == [0]
    assert found[0].tolist() == expected


def test_multipolygon_parts() -> None:
    a = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
    b = [[2.0, 0.0], [3.0, 0.0], [3.0, 1.0], [2.0, 1.0], [2.0, 0.0]]
    fence = Fence("m", "polygon", {"type": "MultiPolygon", "coordinates": [[a], [b]]})
    lats, lons = arrays([(0.5, 0.5), (0.5, 2.5), (0.5, 1.5), (1.0, 3.0)])
    assert FenceShape.of(fence).contains(lats, lons).tolist() == [True, True, False, True]
    assert FenceIndex([fence]).inside(lats, lons)[0].tolist() == [0, 1, 3]


# ---------------------------------------------------------------- corridor
def local_frame(lat0: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at lat0."""
    per_deg = math.radians(1.0) * EARTH_RADIUS_M
    return per_deg * math.cos(math.radians(lat0)), per_deg


def offset(
    a: tuple[float, float], b: tuple[float, float], along: float, normal_m: float
) -> tuple[float, float]:
    """(lat, lon) of the point `along` of the way from a to b (lon, lat), then
    `normal_m` metres to the left of the segment, in metres east/north."""
    lat_mid = (a[1] + b[1]) / 2
    mx, my = local_frame(lat_mid)
    dx, dy = (b[0] - a[0]) * mx, (b[1] - a[1]) * my
    length = math.hypot(dx, dy)
    nx, ny = -dy / length, dx / length
    x = a[0] * mx + along * dx + normal_m * nx
    y = a[1] * my + along * dy + normal_m * ny
    return y / my, x / mx


def cross_track_m(a: tuple[float, float], b: tuple[float, float], p: tuple[float, float]) -> float:
    """The point's distance to the great circle through a and b (lon, lat)."""
    d13 = float(haversine_m(a[1], a[0], np.array([p[0]]), np.array([p[1]]))[0]) / EARTH_RADIUS_M

    def bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
        p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
        return math.atan2(
            math.sin(dl) * math.cos(p2),
            math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl),
        )

    t13 = bearing(a[1], a[0], p[0], p[1])
    t12 = bearing(a[1], a[0], b[1], b[0])
    return abs(math.asin(math.sin(d13) * math.sin(t13 - t12)) * EARTH_RADIUS_M)


@pytest.mark.parametrize("lat0", [-33.0, 0.0, 60.0, -23.55])
def test_corridor_half_width_to_the_metre(lat0: float) -> None:
    # A road with a bend, about 2 km, 50 m each side.
    line = [(-46.64, lat0), (-46.63, lat0 + 0.004), (-46.622, lat0 + 0.001)]
    fence = Fence(
        "road",
        "corridor",
        {"type": "LineString", "coordinates": [list(p) for p in line]},
        radius_m=50.0,
    )
    points: list[tuple[float, float]] = []
    expected: list[bool] = []
    for a, b in itertools.pairwise(line):
        for along in (0.3, 0.5):
            for side in (1.0, -1.0):
                for distance, inside in ((49.0, True), (51.0, False)):
                    p = offset(a, b, along, side * distance)
                    # Placed where meant: the spherical cross-track distance agrees to a few cm.
                    assert cross_track_m(a, b, p) == pytest.approx(distance, abs=0.2)
                    points.append(p)
                    expected.append(inside)
    # Round ends: 49 m beyond the last vertex along the last segment is inside, 51 m is not.
    a, b = line[-2], line[-1]
    mx, my = local_frame(b[1])
    length = math.hypot((b[0] - a[0]) * mx, (b[1] - a[1]) * my)
    for distance, inside in ((49.0, True), (51.0, False)):
        points.append(offset(a, b, 1 + distance / length, 0.0))
        expected.append(inside)
    lats, lons = arrays(points)
    assert FenceShape.of(fence).contains(lats, lons).tolist() == expected
    assert indexed_hits(FenceIndex([fence]), lats, lons) == expected


# ------------------------------------------------------------------- index
def test_index_equals_brute_force_over_1000_circles() -> None:
    rng = np.random.default_rng(20261203)
    n = 1000
    centre_lats = rng.uniform(-24.0, -23.0, n)
    centre_lons = rng.uniform(-47.0, -46.0, n)
    radii = rng.uniform(30.0, 3000.0, n)
    fences = [
        circle(f"c{i}", float(centre_lats[i]), float(centre_lons[i]), float(radii[i]))
        for i in range(n)
    ]
    # Positions spread over the area, plus pairs hugging the edges of 300 circles
    # (where a bounding box too tight would drop a position).
    spread_lats = rng.uniform(-24.05, -22.95, 20_000)
    spread_lons = rng.uniform(-47.05, -45.95, 20_000)
    hugging = [
        destination(
            float(centre_lats[i]),
            float(centre_lons[i]),
            float(rng.uniform(0, 360)),
            float(radii[i] * k),
        )
        for i in rng.choice(n, 300, replace=False)
        for k in (0.999, 1.001)
    ]
    hug_lats, hug_lons = arrays(hugging)
    lats = np.concatenate([spread_lats, hug_lats])
    lons = np.concatenate([spread_lons, hug_lons])

    found = FenceIndex(fences).inside(lats, lons)

    brute: dict[int, list[int]] = {}
    for i in range(n):
        hits = np.flatnonzero(
            haversine_m(float(centre_lats[i]), float(centre_lons[i]), lats, lons) <= radii[i]
        )
        if len(hits):
            brute[i] = hits.tolist()
    assert {k: v.tolist() for k, v in found.items()} == brute
    assert all(np.all(np.diff(v) > 0) for v in found.values())  # ascending
    # Meaningful: many fences hit, and the hugging positions decided both ways.
    assert len(brute) > 500
    hug_start = len(spread_lats)
    hug_hits = {int(p) for v in found.values() for p in v if p >= hug_start}
    assert 250 <= len(hug_hits) < len(hugging)


def test_index_of_mixed_kinds_equals_each_shape() -> None:
    rng = np.random.default_rng(17)
    fences: list[Fence] = []
    for i in range(150):
        lon, lat = float(rng.uniform(-47, -46)), float(rng.uniform(-24, -23))
        size = float(rng.uniform(0.002, 0.05))
        triangle = [[lon, lat], [lon + size, lat], [lon, lat + size], [lon, lat]]
        fences.append(Fence(f"p{i}", "polygon", {"type": "Polygon", "coordinates": [triangle]}))
        fences.append(
            Fence(
                f"r{i}",
                "corridor",
                {"type": "LineString", "coordinates": [[lon, lat], [lon + size, lat + size / 3]]},
                radius_m=float(rng.uniform(10, 500)),
            )
        )
    lats = rng.uniform(-24.05, -22.95, 5_000)
    lons = rng.uniform(-47.05, -45.95, 5_000)
    found = FenceIndex(fences).inside(lats, lons)
    brute = {}
    for i, fence in enumerate(fences):
        hits = np.flatnonzero(FenceShape.of(fence).contains(lats, lons))
        if len(hits):
            brute[i] = hits.tolist()
    assert {k: v.tolist() for k, v in found.items()} == brute
    assert len(brute) > 100


def test_empty_index() -> None:
    index = FenceIndex([])
    assert len(index) == 0
    assert index.inside(np.array([-23.5]), np.array([-46.6])) == {}


def test_speed_zones_take_the_lowest_limit_of_the_fences_holding_a_position() -> None:
    school = replace(circle("Escola", -23.5, -46.6, 300.0), speed_limit_kmh=30.0)
    district = replace(circle("Bairro", -23.5, -46.6, 2000.0), speed_limit_kmh=50.0)
    same = replace(circle("Avenida", -23.5, -46.6, 300.0), speed_limit_kmh=30.0)
    unlimited = circle("Cliente", -23.5, -46.6, 5000.0)
    index = FenceIndex([district, school, same, unlimited])
    north = [destination(-23.5, -46.6, 0.0, d) for d in (0.0, 1000.0, 4000.0, 9000.0)]
    zone, limit = index.speed_zones(*arrays(north))
    # At the centre both 30s hold it: the first of them (index order) decides.
    assert zone.tolist() == [1, 0, -1, -1]
    assert limit[:2].tolist() == [30.0, 50.0]
    assert np.isnan(limit[2:]).all()
    empty = np.array([], dtype=np.float64)
    assert [a.tolist() for a in index.speed_zones(empty, empty)] == [[], []]


def test_index_without_positions_or_without_hits() -> None:
    index = FenceIndex([circle("c", -23.5, -46.6, 100.0), POLYGON])
    assert len(index) == 2
    empty = np.array([], dtype=np.float64)
    assert index.inside(empty, empty) == {}
    assert index.inside(np.array([10.0, -23.4]), np.array([10.0, -46.6])) == {}


# ------------------------------------------------------------- check_fence
SQUARE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]
BOWTIE = [[-46.7, -23.6], [-46.5, -23.4], [-46.5, -23.6], [-46.7, -23.45], [-46.7, -23.6]]
POINT: dict[str, Any] = {"type": "Point", "coordinates": [-46.6, -23.5]}
LINE: dict[str, Any] = {"type": "LineString", "coordinates": [[-46.6, -23.5], [-46.5, -23.5]]}


@pytest.mark.parametrize(
    ("fence", "message"),
    [
        pytest.param(
            Fence("  ", "circle", POINT, radius_m=5), "a fence needs a name", id="blank-name"
        ),
        pytest.param(
            Fence("x", "square", POINT, radius_m=5),  # type: ignore[arg-type]
            "kind 'square': expected one of polygon, circle, corridor",
            id="kind",
        ),
        pytest.param(
            Fence("x", "circle", LINE, radius_m=5),
            "a circle is a GeoJSON Point, not 'LineString'",
            id="kind-vs-geometry",
        ),
        pytest.param(
            Fence("x", "polygon", POINT),
            "a polygon is a GeoJSON Polygon or MultiPolygon, not 'Point'",
            id="polygon-as-point",
        ),
        pytest.param(
            Fence("x", "circle", {"type": "Point", "coordinates": [-46.6, 123.0]}, radius_m=5),
            "coordinate (-46.6, 123.0) is off the globe",
            id="lat-123",
        ),
        pytest.param(
            Fence("x", "circle", {"type": "Point", "coordinates": [-181.0, 0.0]}, radius_m=5),
            "coordinate (-181.0, 0.0) is off the globe",
            id="lon-181",
        ),
        pytest.param(
            Fence("x", "circle", {"type": "Point", "coordinates": [math.nan, 0.0]}, radius_m=5),
            "coordinates must be finite numbers",
            id="nan",
        ),
        pytest.param(
            Fence("x", "circle", {"type": "Point", "coordinates": ["a", "b"]}, radius_m=5),
            "coordinates must be numbers [longitude, latitude]",
            id="text",
        ),
        pytest.param(
            Fence("x", "circle", {"type": "Point", "coordinates": []}, radius_m=5),
            "no coordinates",
            id="none",
        ),
        pytest.param(
            Fence("x", "circle", POINT, radius_m=0),
            "radius_m must be a number of metres above 0, not 0",
            id="radius-0",
        ),
        pytest.param(
            Fence("x", "circle", POINT, radius_m=-1.0),
            "radius_m must be a number of metres above 0, not -1.0",
            id="radius-neg",
        ),
        pytest.param(
            Fence("x", "circle", POINT),
            "radius_m must be a number of metres above 0, not None",
            id="radius-none",
        ),
        pytest.param(
            Fence("x", "circle", POINT, radius_m=math.inf),
            "radius_m must be a number of metres above 0, not inf",
            id="radius-inf",
        ),
        pytest.param(
            Fence("x", "corridor", LINE, radius_m=0),
            "buffer_m must be a number of metres above 0",
            id="buffer-0",
        ),
        pytest.param(
            Fence("x", "circle", POINT, radius_m=5, speed_limit_kmh=0),
            "speed_limit_kmh must be above 0, not 0",
            id="speed-0",
        ),
        pytest.param(
            Fence(
                "x",
                "corridor",
                {"type": "LineString", "coordinates": [[1.0, 1.0], [1.0, 1.0]]},
                radius_m=5,
            ),
            "a corridor's line needs two distinct points",
            id="corridor-one-point",
        ),
        pytest.param(
            Fence(
                "x",
                "polygon",
                {
                    "type": "Polygon",
                    "coordinates": [[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [0.0, 0.0]]],
                },
            ),
            "the polygon has no area",
            id="flat-polygon",
        ),
        pytest.param(
            Fence("x", "polygon", {"type": "Polygon", "coordinates": [BOWTIE]}),
            "invalid polygon: Self-intersection[",
            id="bowtie",
        ),
        pytest.param(
            Fence("x", "polygon", {"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE]]}),
            "invalid polygon: ",
            id="overlapping-parts",
        ),
    ],
)
def test_check_fence_refuses(fence: Fence, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_fence(fence)
    with pytest.raises(ValueError, match=re.escape(message)):
        FenceShape.of(fence)


def test_check_fence_accepts_each_kind() -> None:
    for fence in (
        Fence("p", "polygon", {"type": "Polygon", "coordinates": [SQUARE]}, speed_limit_kmh=30.0),
        Fence("c", "circle", POINT, radius_m=1.0),
        Fence("r", "corridor", LINE, radius_m=20.0),
        POLYGON,
    ):
        check_fence(fence)  # raises if refused
        assert FenceShape.of(fence).fence is fence


def test_feature_round_trip() -> None:
    fence = Fence("r", "corridor", LINE, radius_m=20.0, group="g", speed_limit_kmh=60.0)
    assert fence.feature() == {
        "type": "Feature",
        "geometry": LINE,
        "properties": {
            "name": "r",
            "kind": "corridor",
            "group": "g",
            "buffer_m": 20.0,
            "speed_limit_kmh": 60.0,
        },
    }


# --------------------------------------------------------------- validity
def test_symmetric_bowtie_is_called_self_intersecting() -> None:
    # Its two lobes cancel to no area: validity is checked first.
    bowtie = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    with pytest.raises(ValueError, match=re.escape("invalid polygon: Self-intersection")):
        check_fence(Fence("b", "polygon", {"type": "Polygon", "coordinates": [bowtie]}))
