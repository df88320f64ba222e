"""A vehicle's local day: its route, distances, time accounting and line.

Input is a plate's valid positions as columns sorted and unique by time (see
`etrack.store.routes.load_positions`); output is a `DayRoute`, and from it the
rows storage writes and the web shows (`day_stats`, `trip_rows`, `stop_rows`,
the one conversion). Trips and stops come from `etrack.trips.detect`.

Rules, and why:

- Distance is the haversine sum between consecutive valid points on a sphere of
  radius 6378137 m (Traccar's), beside it the odometer difference when the
  tracker reports one. A pair across a data gap still counts: the vehicle did
  cover at least that straight line, even though no trip owns it.
- Midnight: a day is computed from its own points plus the last point before
  it and the first after it, when within `max_gap_s` of the day's edge. A point
  is interpolated on that segment at local midnight, so a trip spanning two
  local days is cut exactly at midnight, each part belongs to its day and the
  two days' distances add up to the whole. Those interpolated points extend
  the drawn line and the distances but are not counted in `point_count` nor
  listed in `points`. Without that context the day starts stopped at its first
  point (as a fresh Traccar device does).
- Time accounting, per interval between consecutive points: driving when the
  implied speed is at least `moving_speed_kmh`, else idle when the ignition
  was on at the interval's start, else parked. An interval longer than
  `max_gap_s` counts as parked only when both ends are within the stop radius
  and the ignition was not on; otherwise nobody knows what happened in it.
- Over the speed limit: an interval whose two ends both report a speed above
  the limit counts whole, one end counts half (the crossing is somewhere in
  between); without reported speeds the implied speed decides.
- The simplified line (fleet zoom) is Douglas-Peucker with
  `simplify_tolerance_m` on a local metric plane.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import numpy as np
from simplification.cutil import simplify_coords_idx

from etrack.geo import EARTH_RADIUS_M, step_distances_m
from etrack.model import DayStats, StopRow, TripRow
from etrack.trips.detect import moving_between, trips_and_stops
from etrack.trips.params import RouteParams

__all__ = [
    "DayPoint",
    "DayRoute",
    "compute_sorted",
    "day_bounds",
    "day_stats",
    "empty_route",
    "stop_rows",
    "trip_rows",
]

DayPoint = tuple[float, float, float, float | None, bool | None]
"""(POSIX seconds, latitude, longitude, speed km/h, ignition)."""

_RAD = math.pi / 180.0
_TWO_R = 2.0 * EARTH_RADIUS_M
_KMH = 3.6


@dataclass(slots=True)
class DayRoute:
    """One plate's local day. Durations are whole seconds, distances metres."""

    day: date
    points: list[DayPoint]
    """Valid points of the day in time order."""
    geojson: dict[str, Any] | None
    """LineString (lon, lat) through the points and the midnight cuts; a Point for a
    single point; None for no point."""
    simplified: dict[str, Any] | None
    start_ts: datetime | None
    end_ts: datetime | None
    point_count: int
    distance_m: float
    odometer_m: float | None
    driving_s: int
    idle_s: int
    parked_s: int
    max_speed_kmh: float | None
    avg_speed_kmh: float | None
    over_limit_s: int
    trips: list[TripRow]
    stops: list[StopRow]

    @property
    def empty(self) -> bool:
        return self.point_count == 0


def day_bounds(day: date, tz: tzinfo) -> tuple[float, float]:
    """POSIX seconds of the local day's first instant and of the next day's."""
    start = datetime.combine(day, time(0), tz).timestamp()
    end = datetime.combine(day + timedelta(days=1), time(0), tz).timestamp()
    return start, end


def empty_route(day: date) -> DayRoute:
    return DayRoute(day, [], None, None, None, None, 0, 0.0, None, 0, 0, 0, None, None, 0, [], [])


def compute_sorted(
    ts: Sequence[float],
    lats: Sequence[float],
    lons: Sequence[float],
    speeds: Sequence[float | None],
    ignitions: Sequence[bool | None],
    odometers: Sequence[float | None],
    addresses: Sequence[str | None],
    day: date,
    params: RouteParams,
) -> DayRoute:
    """The route of `day` from columns already valid, sorted and unique by time
    (as storage reads them).

    Columns may hold points outside the day; only the last one before it and
    the first one after it are used.
    """
    day_start, day_end = day_bounds(day, params.tz)
    lo = bisect_left(ts, day_start)
    hi = bisect_left(ts, day_end)
    if lo >= hi:
        return empty_route(day)
    gap = params.max_gap_s
    t_list = list(ts[lo:hi])
    lat_list = list(lats[lo:hi])
    lon_list = list(lons[lo:hi])
    spd_list = list(speeds[lo:hi])
    ign_list = list(ignitions[lo:hi])
    odo_list = list(odometers[lo:hi])
    adr_list = list(addresses[lo:hi])
    count = hi - lo
    points = list(zip(t_list, lat_list, lon_list, spd_list, ign_list, strict=True))
    columns: tuple[list[Any], ...] = (
        t_list,
        lat_list,
        lon_list,
        spd_list,
        ign_list,
        odo_list,
        adr_list,
    )
    first_real = 0
    entered_moving = False
    if lo > 0 and ts[lo] - ts[lo - 1] <= gap:
        entered_moving = moving_between(ts, lats, lons, lo - 1, lo, params)
        if ts[lo] > day_start:
            cut = _interpolate(ts, lats, lons, speeds, ignitions, odometers, lo - 1, lo, day_start)
            for column, value in zip(columns, cut, strict=True):
                column.insert(0, value)
            first_real = 1
    if hi < len(ts) and ts[hi - 1] < day_end and ts[hi] - ts[hi - 1] <= gap:
        cut = _interpolate(ts, lats, lons, speeds, ignitions, odometers, hi - 1, hi, day_end)
        for column, value in zip(columns, cut, strict=True):
            column.append(value)
    return _route(
        day,
        params,
        t_list,
        lat_list,
        lon_list,
        spd_list,
        ign_list,
        odo_list,
        adr_list,
        points,
        count,
        first_real,
        entered_moving,
    )


def _interpolate(
    ts: Sequence[float],
    lats: Sequence[float],
    lons: Sequence[float],
    speeds: Sequence[float | None],
    ignitions: Sequence[bool | None],
    odometers: Sequence[float | None],
    a: int,
    b: int,
    at: float,
) -> tuple[float, float, float, float | None, bool | None, float | None, str | None]:
    """The point at time `at` on the straight segment between points a and b."""
    f = (at - ts[a]) / (ts[b] - ts[a])
    sa, sb = speeds[a], speeds[b]
    oa, ob = odometers[a], odometers[b]
    return (
        at,
        lats[a] + (lats[b] - lats[a]) * f,
        lons[a] + (lons[b] - lons[a]) * f,
        sa + (sb - sa) * f if sa is not None and sb is not None else None,
        ignitions[a],
        oa + (ob - oa) * f if oa is not None and ob is not None else None,
        None,
    )


def _route(
    day: date,
    params: RouteParams,
    ts: list[float],
    lats: list[float],
    lons: list[float],
    speeds: list[float | None],
    ignitions: list[bool | None],
    odometers: list[float | None],
    addresses: list[str | None],
    points: list[DayPoint],
    count: int,
    first_real: int,
    entered_moving: bool,
) -> DayRoute:
    n = len(ts)
    gap = params.max_gap_s
    moving_kmh = params.moving_speed_kmh
    limit = params.speed_limit_kmh
    radius = params.trip_distance_m

    # One pass over consecutive pairs (point 0 and 1, 1 and 2, ...): distances
    # and the time accounting. Plain locals and lists only: this loop runs once
    # per stored point. `ts`, `speeds` and `ignitions` give each pair's first
    # point and run one longer than the pairs, hence strict=False.
    cum = [0.0]
    add_cum = cum.append
    driving = idle = parked = over = 0.0
    driving_m = 0.0
    total = 0.0
    max_implied = 0.0
    for d, t0, t1, sp0, sp1, ig0 in zip(
        step_distances_m(lats, lons), ts, ts[1:], speeds, speeds[1:], ignitions, strict=False
    ):
        total += d
        add_cum(total)
        dt = t1 - t0
        if dt <= gap:
            implied = d / dt * _KMH if dt > 0 else 0.0
            if implied >= moving_kmh:
                driving += dt
                driving_m += d
                if implied > max_implied:
                    max_implied = implied
            elif ig0:
                idle += dt
            else:
                parked += dt
            if sp0 is not None and sp1 is not None:
                if sp0 > limit:
                    over += dt * 0.5
                if sp1 > limit:
                    over += dt * 0.5
            elif implied > limit:
                over += dt
        elif d <= radius and not ig0:
            parked += dt

    trips, stops = trips_and_stops(
        ts, lats, lons, speeds, ignitions, addresses, cum, params, moving=entered_moving
    )

    reported_all = [v for v in speeds if v is not None]
    # Without reported speeds the fastest implied pair speed is the best we know.
    max_speed = max(reported_all) if reported_all else (max_implied if driving > 0 else None)
    coordinates = list(zip(lons, lats, strict=True))
    geojson: dict[str, Any]
    if n == 1:
        geojson = {"type": "Point", "coordinates": coordinates[0]}
        simplified = geojson
    else:
        geojson = {"type": "LineString", "coordinates": coordinates}
        simplified = {
            "type": "LineString",
            "coordinates": _simplify(lats, lons, coordinates, params.simplify_tolerance_m),
        }
    last_real = first_real + count - 1
    return DayRoute(
        day=day,
        points=points,
        geojson=geojson,
        simplified=simplified,
        start_ts=datetime.fromtimestamp(ts[first_real], UTC),
        end_ts=datetime.fromtimestamp(ts[last_real], UTC),
        point_count=count,
        distance_m=total,
        odometer_m=_odometer_m(odometers),
        driving_s=round(driving),
        idle_s=round(idle),
        parked_s=round(parked),
        max_speed_kmh=max_speed,
        avg_speed_kmh=driving_m / driving * _KMH if driving > 0 else None,
        over_limit_s=round(over),
        trips=trips,
        stops=stops,
    )


def _odometer_m(odometers: list[float | None]) -> float | None:
    first = next((v for v in odometers if v is not None), None)
    last = next((v for v in reversed(odometers) if v is not None), None)
    if first is None or last is None or last < first:
        # No odometer, or it was reset during the day: no honest difference.
        return None
    return (last - first) * 1000.0


def _simplify(
    lats: list[float],
    lons: list[float],
    coordinates: list[tuple[float, float]],
    tolerance_m: float,
) -> list[tuple[float, float]]:
    if tolerance_m <= 0 or len(coordinates) < 3:
        return coordinates
    lat = np.asarray(lats, dtype=np.float64)
    lon = np.asarray(lons, dtype=np.float64)
    # Douglas-Peucker needs a metric plane: an equirectangular projection
    # around the day's middle latitude is exact enough over a city's span.
    scale = EARTH_RADIUS_M * _RAD
    xy = np.empty((len(lats), 2), dtype=np.float64)
    xy[:, 0] = lon * (scale * math.cos(float(lat.mean()) * _RAD))
    xy[:, 1] = lat * scale
    keep = simplify_coords_idx(xy, tolerance_m)
    return [coordinates[int(k)] for k in keep]


def day_stats(route: DayRoute, invalid_count: int | None = None) -> DayStats:
    """The day's figures as stored; `invalid_count` is the day's flagged rows,
    which the route itself never sees (None: not counted)."""
    return DayStats(
        start_ts=route.start_ts,
        end_ts=route.end_ts,
        point_count=route.point_count,
        invalid_count=invalid_count,
        distance_m=route.distance_m,
        odometer_m=route.odometer_m,
        driving_s=route.driving_s,
        idle_s=route.idle_s,
        parked_s=route.parked_s,
        max_speed_kmh=route.max_speed_kmh,
        avg_speed_kmh=route.avg_speed_kmh,
        over_limit_s=route.over_limit_s,
        trip_count=len(route.trips),
        stop_count=len(route.stops),
    )


def trip_rows(route: DayRoute) -> list[TripRow]:
    """The day's trips as storage writes them (detection builds them as rows)."""
    return list(route.trips)


def stop_rows(route: DayRoute) -> list[StopRow]:
    """The day's stops as storage writes them (detection builds them as rows)."""
    return list(route.stops)
