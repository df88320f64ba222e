"""Small, fast geometry on WGS84 coordinates in degrees.

Distances use the haversine formula on a sphere of radius 6378137 m, the
equatorial radius Traccar's DistanceCalculator uses, so our distances agree
with a Traccar server fed the same points. Only the `math` module is used:
these functions sit in per-point loops (quality flags, route distances) and a
NumPy round trip per pair would cost more than the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final

EARTH_RADIUS_M: Final = 6378137.0

_RADIANS: Final = math.pi / 180.0
_MPS_TO_KMH: Final = 3.6


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    phi1 = lat1 * _RADIANS
    phi2 = lat2 * _RADIANS
    half_dphi = (phi2 - phi1) * 0.5
    half_dlambda = (lon2 - lon1) * (_RADIANS * 0.5)
    sin_dphi = math.sin(half_dphi)
    sin_dlambda = math.sin(half_dlambda)
    a = sin_dphi * sin_dphi + math.cos(phi1) * math.cos(phi2) * sin_dlambda * sin_dlambda
    # Rounding can push `a` a hair above 1 for antipodal points; asin would then fail.
    if a >= 1.0:
        return math.pi * EARTH_RADIUS_M
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def implied_speed_kmh(distance_m: float, seconds: float) -> float:
    """Average speed in km/h needed to cover `distance_m` in `seconds`.

    A non-positive duration never divides: no movement in no time is 0 km/h,
    any movement in no time is infinitely fast (two places at one instant).
    """
    if seconds <= 0.0:
        return 0.0 if distance_m <= 0.0 else math.inf
    return distance_m / seconds * _MPS_TO_KMH


def speed_between_kmh(
    lat1: float, lon1: float, t1: float, lat2: float, lon2: float, t2: float
) -> float:
    """Implied speed in km/h between two fixes; `t1`/`t2` are POSIX seconds, in any order."""
    return implied_speed_kmh(haversine_m(lat1, lon1, lat2, lon2), abs(t2 - t1))


def path_length_m(points: Iterable[tuple[float, float]]) -> float:
    """Sum of haversine distances between consecutive (lat, lon) points, in metres."""
    total = 0.0
    previous: tuple[float, float] | None = None
    for point in points:
        if previous is not None:
            total += haversine_m(previous[0], previous[1], point[0], point[1])
        previous = point
    return total


def step_distances_m(lats: Sequence[float], lons: Sequence[float]) -> list[float]:
    """Haversine distance from each point to the next along a path, in metres:
    `len(lats) - 1` values, the i-th from point i to point i + 1.

    The per-point loop of a day's route: the formula of `haversine_m` inlined,
    each point's cosine computed once and reused for the next pair (a call and
    a second cosine per pair would cost half as much again).
    """
    sin = math.sin
    cos = math.cos
    asin = math.asin
    sqrt = math.sqrt
    half_rad = _RADIANS * 0.5
    two_r = 2.0 * EARTH_RADIUS_M
    antipodal = math.pi * EARTH_RADIUS_M
    steps: list[float] = []
    if not lats:
        return steps
    append = steps.append
    lat0 = lats[0]
    lon0 = lons[0]
    cos0 = cos(lat0 * _RADIANS)
    for lat1, lon1 in zip(lats[1:], lons[1:], strict=True):
        cos1 = cos(lat1 * _RADIANS)
        s1 = sin((lat1 - lat0) * half_rad)
        s2 = sin((lon1 - lon0) * half_rad)
        a = s1 * s1 + cos0 * cos1 * s2 * s2
        append(two_r * asin(sqrt(a)) if a < 1.0 else antipodal)
        lat0 = lat1
        lon0 = lon1
        cos0 = cos1
    return steps


def is_valid_coordinate(lat: float, lon: float) -> bool:
    """Inside the WGS84 ranges (and not NaN, which fails every comparison)."""
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0
