"""Small, fast geometry on WGS84 coordinates in degrees.

Distances use the haversine formula on a sphere of radius 6378137 m, the
equatorial radius Traccar's DistanceCalculator uses, so our distances agree
with a Traccar server fed the same points. Only the `math` module is used:
these functions sit in per-point loops (quality flags, route distances) and a
NumPy round trip per pair would cost more than the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
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


def is_valid_coordinate(lat: float, lon: float) -> bool:
    """Inside the WGS84 ranges (and not NaN, which fails every comparison)."""
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0
