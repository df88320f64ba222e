"""A fence's shape and the one question asked of it: which of these
positions lie inside?

Fences are kept as GeoJSON geometries in longitude/latitude (WGS 84), as
they are imported and drawn. Distances are metres, never degrees:

- a circle (a Point and `radius_m`) holds the positions whose great-circle
  (haversine) distance to its centre is at most the radius: exact on the
  sphere, whatever the latitude;
- a corridor (a LineString and `radius_m`, its half-width: the import's
  `buffer_m`) holds the positions within that many metres of the line,
  measured in a local equirectangular projection about the line's centre
  (x = R·Δλ·cos φ0, y = R·Δφ): under 0.1 % off within 50 km of the centre,
  and a corridor is a road, not a continent;
- a polygon holds the positions inside it or on its edge, tested in
  longitude/latitude: its edges are the straight lines of the map it was
  drawn on, which is what the person drawing it meant.

`FenceIndex` puts many fences in a shapely STRtree of their bounding boxes,
so a vehicle's day of positions is tested against the few fences near it
instead of all of them. The boxes are not wrapped across the antimeridian
nor near the poles: a fence there may miss positions (no fleet of eTrac's
drives there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely import STRtree
from shapely.geometry import shape
from shapely.validation import explain_validity

from etrack import geo
from etrack.model import Fence, FenceKind

__all__ = [
    "EARTH_RADIUS_M",
    "KINDS",
    "Fence",
    "FenceIndex",
    "FenceKind",
    "FenceShape",
    "check_fence",
    "haversine_m",
]

KINDS: tuple[FenceKind, ...] = ("polygon", "circle", "corridor")
# The sphere of every distance in etrack (trips, stops, plausibility): a
# fence edge and a stop's distance to it must agree.
EARTH_RADIUS_M = geo.EARTH_RADIUS_M

Floats = npt.NDArray[np.float64]
Indexes = npt.NDArray[np.intp]

_GEOMETRY_OF_KIND = {
    "polygon": ("Polygon", "MultiPolygon"),
    "circle": ("Point",),
    "corridor": ("LineString",),
}


def _coordinates(geometry: dict[str, Any]) -> list[tuple[float, float]]:
    found: list[tuple[float, float]] = []

    def walk(value: Any) -> None:
        if (
            isinstance(value, list | tuple)
            and len(value) >= 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value[:2])
        ):
            found.append((float(value[0]), float(value[1])))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        else:
            raise ValueError("coordinates must be numbers [longitude, latitude]")

    walk(geometry.get("coordinates"))
    return found


def check_fence(fence: Fence) -> None:
    """Raise ValueError saying what is wrong with the fence's shape: a name,
    a geometry of its kind, coordinates on the globe, a positive radius, a
    polygon that does not cross itself."""
    if not fence.name.strip():
        raise ValueError("a fence needs a name")
    if fence.kind not in KINDS:
        raise ValueError(f"kind {fence.kind!r}: expected one of {', '.join(KINDS)}")
    expected = _GEOMETRY_OF_KIND[fence.kind]
    if fence.geometry.get("type") not in expected:
        raise ValueError(
            f"a {fence.kind} is a GeoJSON {' or '.join(expected)}, "
            f"not {fence.geometry.get('type')!r}"
        )
    points = _coordinates(fence.geometry)
    if not points:
        raise ValueError("no coordinates")
    for lon, lat in points:
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError("coordinates must be finite numbers")
        if not -180.0 <= lon <= 180.0 or not -90.0 <= lat <= 90.0:
            raise ValueError(
                f"coordinate ({lon}, {lat}) is off the globe: expected longitude in "
                "[-180, 180] and latitude in [-90, 90] (GeoJSON order: longitude first)"
            )
    if fence.kind in ("circle", "corridor"):
        what = "radius_m" if fence.kind == "circle" else "buffer_m"
        if fence.radius_m is None or not math.isfinite(fence.radius_m) or fence.radius_m <= 0:
            raise ValueError(f"{what} must be a number of metres above 0, not {fence.radius_m}")
    if fence.speed_limit_kmh is not None and not (
        math.isfinite(fence.speed_limit_kmh) and fence.speed_limit_kmh > 0
    ):
        raise ValueError(f"speed_limit_kmh must be above 0, not {fence.speed_limit_kmh}")
    try:
        geometry = shape(fence.geometry)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise ValueError(f"not a valid {fence.geometry.get('type')}: {exc}") from None
    if fence.kind == "corridor" and len(set(points)) < 2:
        raise ValueError("a corridor's line needs two distinct points")
    if fence.kind == "polygon":
        # A flat ring (collinear corners) is "invalid" too, but what is wrong
        # is that it has no area; a bowtie's lobes may cancel to no area yet
        # each has some once repaired: it crosses itself.
        if geometry.is_empty or shapely.make_valid(geometry).area <= 0:
            raise ValueError("the polygon has no area (fewer than three distinct corners?)")
        if not geometry.is_valid:
            # e.g. "Self-intersection[-46.6 -23.5]": where it crosses itself.
            raise ValueError(f"invalid polygon: {explain_validity(geometry)}")


def haversine_m(lat0: float, lon0: float, lats: Floats, lons: Floats) -> Floats:
    """Great-circle distances in metres from (lat0, lon0) to each position."""
    p0, l0 = math.radians(lat0), math.radians(lon0)
    p, lam = np.radians(lats), np.radians(lons)
    a = np.sin((p - p0) / 2) ** 2 + math.cos(p0) * np.cos(p) * np.sin((lam - l0) / 2) ** 2
    distances: Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distances


@dataclass(frozen=True, slots=True)
class FenceShape:
    """A checked fence made ready for many tests."""

    fence: Fence
    bounds: tuple[float, float, float, float]
    """(min lon, min lat, max lon, max lat) holding every inside position."""
    _geometry: Any = field(repr=False)
    _origin: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def of(cls, fence: Fence, *, check: bool = True) -> FenceShape:
        """`check=False` for fences read back from storage: every way in
        (import, API, page) ran `check_fence` before storing them."""
        if check:
            check_fence(fence)
        geometry = shape(fence.geometry)
        if fence.kind == "polygon":
            shapely.prepare(geometry)
            return cls(fence, tuple(geometry.bounds), geometry)  # type: ignore[arg-type]
        radius = float(fence.radius_m or 0.0)
        min_lon, min_lat, max_lon, max_lat = geometry.bounds
        # The box grown by the radius, in degrees at the latitude farthest from the equator.
        dlat = math.degrees(radius / EARTH_RADIUS_M)
        widest = min(max(abs(min_lat), abs(max_lat)) + dlat, 89.9)
        dlon = min(dlat / math.cos(math.radians(widest)), 180.0)
        bounds = (min_lon - dlon, min_lat - dlat, max_lon + dlon, max_lat + dlat)
        if fence.kind == "circle":
            lon, lat = fence.geometry["coordinates"][:2]
            return cls(fence, bounds, geometry, (float(lat), float(lon)))
        center = geometry.centroid
        origin = (center.y, center.x)
        local = shapely.LineString(_project(origin, np.asarray(geometry.coords)))
        shapely.prepare(local)
        return cls(fence, bounds, local, origin)

    def contains(self, lats: Floats, lons: Floats) -> npt.NDArray[np.bool_]:
        """Which of these positions lie inside the fence (its edge included)."""
        kind = self.fence.kind
        if kind == "polygon":
            return np.asarray(shapely.intersects_xy(self._geometry, lons, lats), dtype=bool)
        radius = float(self.fence.radius_m or 0.0)
        if kind == "circle":
            return np.asarray(haversine_m(*self._origin, lats, lons) <= radius)
        xy = _project(self._origin, np.column_stack([lons, lats]))
        return np.asarray(shapely.dwithin(self._geometry, shapely.points(xy), radius), dtype=bool)


def _project(origin: tuple[float, float], lonlat: npt.NDArray[np.float64]) -> Floats:
    """(lon, lat) rows -> metres east and north of `origin` (lat, lon), equirectangular."""
    lat0, lon0 = origin
    x = np.radians(lonlat[:, 0] - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    y = np.radians(lonlat[:, 1] - lat0) * EARTH_RADIUS_M
    return np.column_stack([x, y])


CELL_DEG = 0.05
"""The grid FenceIndex meets the tree with (about 5.5 km): a day's positions
fall in a few dozen cells, so the tree is asked a few dozen boxes instead of
a geometry per position; numpy then sifts the positions of each cell by the
boxes of the fences near it."""


class FenceIndex:
    """Many fences behind one STRtree of their bounding boxes."""

    def __init__(self, fences: Sequence[Fence], *, check: bool = True) -> None:
        self.shapes = [FenceShape.of(f, check=check) for f in fences]
        self._tree = STRtree([shapely.box(*s.bounds) for s in self.shapes])
        self._bounds = np.array([s.bounds for s in self.shapes], dtype=np.float64).reshape(-1, 4)
        kinds = [s.fence.kind for s in self.shapes]
        self._kind = np.array([KINDS.index(k) for k in kinds], dtype=np.int8)
        self._radius = np.array([s.fence.radius_m or 0.0 for s in self.shapes], dtype=np.float64)
        self._limit = np.array(
            [
                np.nan if s.fence.speed_limit_kmh is None else s.fence.speed_limit_kmh
                for s in self.shapes
            ],
            dtype=np.float64,
        )
        self._origin = np.array([s._origin for s in self.shapes], dtype=np.float64).reshape(-1, 2)
        # The prepared polygons and local lines, one array: shapely tests
        # element by element (geometry i against position i) in one call.
        self._geometry = np.array([s._geometry for s in self.shapes], dtype=object)

    def __len__(self) -> int:
        return len(self.shapes)

    def holds(self, lat: float, lon: float) -> bool:
        """Whether one position lies inside any fence."""
        if len(self.shapes) == 0:
            return False
        near = self._tree.query(shapely.points(lon, lat))
        one_lat, one_lon = np.array([lat]), np.array([lon])
        return any(bool(self.shapes[int(f)].contains(one_lat, one_lon)[0]) for f in near)

    def pairs(self, lats: Floats, lons: Floats) -> tuple[Indexes, Indexes]:
        """(fence, position) index pairs of every position inside a fence
        (its edge included), sorted by fence then position."""
        none = np.empty(0, dtype=np.intp)
        if len(self.shapes) == 0 or len(lats) == 0:
            return none, none
        # One integer per cell (x in the high bits): a 1-D unique, far cheaper
        # than np.unique over rows.
        cx = np.floor(lons / CELL_DEG).astype(np.int64)
        cy = np.floor(lats / CELL_DEG).astype(np.int64)
        keys, inverse, counts = np.unique(
            (cx << 32) + (cy & 0xFFFFFFFF), return_inverse=True, return_counts=True
        )
        kx = (keys >> 32).astype(np.float64)
        ky = (keys & 0xFFFFFFFF).astype(np.int64)
        ky = np.where(ky >= 1 << 31, ky - (1 << 32), ky).astype(np.float64)
        boxes = shapely.box(kx * CELL_DEG, ky * CELL_DEG, (kx + 1) * CELL_DEG, (ky + 1) * CELL_DEG)
        near_cell, near_fence = self._tree.query(boxes)
        if len(near_cell) == 0:
            return none, none
        # Every position of each (cell, fence) pair: positions grouped by cell.
        by_cell = np.argsort(inverse.ravel(), kind="stable")
        cell_start = np.r_[0, np.cumsum(counts)[:-1]]
        sizes = counts[near_cell]
        fence = np.repeat(near_fence, sizes)
        offsets = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        point = by_cell[np.repeat(cell_start[near_cell], sizes) + offsets]
        lat, lon = lats[point], lons[point]
        box = self._bounds[fence]
        keep = (lon >= box[:, 0]) & (lat >= box[:, 1]) & (lon <= box[:, 2]) & (lat <= box[:, 3])
        fence, point, lat, lon = fence[keep], point[keep], lat[keep], lon[keep]
        inside = np.zeros(len(fence), dtype=np.bool_)
        kind = self._kind[fence]
        for code, name in enumerate(KINDS):
            chosen = np.flatnonzero(kind == code)
            if len(chosen) == 0:
                continue
            f = fence[chosen]
            if name == "polygon":
                inside[chosen] = shapely.intersects_xy(self._geometry[f], lon[chosen], lat[chosen])
                continue
            origin = self._origin[f]
            if name == "circle":
                inside[chosen] = (
                    _haversine_pairs(origin, lat[chosen], lon[chosen]) <= self._radius[f]
                )
                continue
            x = (
                np.radians(lon[chosen] - origin[:, 1])
                * EARTH_RADIUS_M
                * np.cos(np.radians(origin[:, 0]))
            )
            y = np.radians(lat[chosen] - origin[:, 0]) * EARTH_RADIUS_M
            inside[chosen] = shapely.dwithin(
                self._geometry[f], shapely.points(x, y), self._radius[f]
            )
        fence, point = fence[inside], point[inside]
        order = np.lexsort((point, fence))
        return fence[order], point[order]

    def speed_zones(self, lats: Floats, lons: Floats) -> tuple[Indexes, Floats]:
        """Per position, the fence whose speed limit applies there and that
        limit: of the fences holding it that have one, the lowest limit (a
        tie: the first fence); -1 and NaN where none does."""
        zone = np.full(len(lats), -1, dtype=np.intp)
        limit = np.full(len(lats), np.nan, dtype=np.float64)
        fence, point = self.pairs(lats, lons)
        limits = self._limit[fence]
        has = ~np.isnan(limits)
        fence, point, limits = fence[has], point[has], limits[has]
        if len(point) == 0:
            return zone, limit
        order = np.lexsort((fence, limits, point))
        sorted_points = point[order]
        chosen = order[np.r_[True, sorted_points[1:] != sorted_points[:-1]]]
        zone[point[chosen]] = fence[chosen]
        limit[point[chosen]] = limits[chosen]
        return zone, limit

    def inside(self, lats: Floats, lons: Floats) -> dict[int, Indexes]:
        """fence index -> the indexes (ascending) of the positions inside it,
        for the fences holding at least one of them."""
        fence, point = self.pairs(lats, lons)
        if len(fence) == 0:
            return {}
        starts = np.flatnonzero(np.r_[True, fence[1:] != fence[:-1]])
        ends = np.r_[starts[1:], len(fence)]
        return {
            int(fence[start]): point[start:end] for start, end in zip(starts, ends, strict=True)
        }


def _haversine_pairs(origin: Floats, lats: Floats, lons: Floats) -> Floats:
    """Great-circle metres from origin[i] (lat, lon) to position i."""
    p0, l0 = np.radians(origin[:, 0]), np.radians(origin[:, 1])
    p, lam = np.radians(lats), np.radians(lons)
    a = np.sin((p - p0) / 2) ** 2 + np.cos(p0) * np.cos(p) * np.sin((lam - l0) / 2) ** 2
    distances: Floats = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return distances
