"""Routes, trips and stops of one plate and local day: pure computation, no database.

Input is the plate's valid positions as plain tuples (see `Point`); output is a
`DayRoute`. The database side (loading, fingerprints, storing) lives in
`etrack.trips.compute`.

Rules, and why:

- Distance is the haversine sum between consecutive valid points on a sphere of
  radius 6378137 m (Traccar's), beside it the odometer difference when the
  tracker reports one. A pair across a data gap still counts: the vehicle did
  cover at least that straight line, even though no trip owns it.
- Trips and stops, location mode (Traccar 6.12+): a stop is the vehicle staying
  within `trip_distance_m` of one point for at least `stop_duration_s`; it
  leaves the stop once it is `trip_distance_m` away, and the trip starts at the
  last point still inside the stop. A point that *reports* a speed above
  `moving_speed_kmh` cannot be part of a stop: without that hint a long red
  light approached and left slowly can spread its in-radius points over more
  than 180 s. A data gap longer than `max_gap_s` ends the trip at the last
  point before it.
- Ignition mode: a trip runs from the first ignition-on point to the first
  ignition-off point of an off spell lasting at least `stop_duration_s`, and
  only counts if the vehicle left the stop's radius (idling in place is part of
  the stop). A day whose tracker never reports ignition falls back to location
  mode.
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
- A stop must be seen for `stop_duration_s` inside the data: a vehicle that
  pulls up a minute before the last point ends its trip at that last point.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from simplification.cutil import simplify_coords_idx

from etrack.geo import EARTH_RADIUS_M

__all__ = [
    "Columns",
    "DayRoute",
    "Point",
    "ProviderTrip",
    "RouteParams",
    "Stop",
    "Trip",
    "compare_with_provider",
    "compute_day_route",
    "compute_sorted",
    "day_bounds",
    "empty_route",
]

Point = tuple[float, float, float, float | None, bool | None, float | None, str | None]
"""(POSIX seconds, latitude, longitude, speed km/h, ignition, odometer km, address)."""

Columns = tuple[
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float | None],
    Sequence[bool | None],
    Sequence[float | None],
    Sequence[str | None],
]
"""A plate's points as columns in time order: the fields of `Point`, one sequence each."""

Mode = Literal["location", "ignition"]

_RAD = math.pi / 180.0
_TWO_R = 2.0 * EARTH_RADIUS_M
_KMH = 3.6


@dataclass(frozen=True, slots=True)
class RouteParams:
    """How routes, trips and stops are detected. Defaults follow Traccar 6.12+."""

    mode: Mode = "location"
    trip_distance_m: float = 200.0
    """A trip starts once the vehicle is this far from where it stood; a stop stays within it."""
    stop_duration_s: float = 180.0
    """Shortest stop; anything shorter (a red light) stays inside its trip."""
    max_gap_s: float = 3600.0
    """A silence longer than this ends the trip in progress."""
    moving_speed_kmh: float = 5.0
    """Speeds at or above this are movement (driving time, and no stop can hold such a point)."""
    speed_limit_kmh: float = 80.0
    """Time above this speed is reported as over_limit_s."""
    simplify_tolerance_m: float = 20.0
    """Douglas-Peucker tolerance of the simplified line drawn at fleet zoom."""
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("America/Sao_Paulo"))
    """Whose local day a route is."""
    compare_time_tolerance_s: float = 900.0
    """A provider trip agrees with ours when its start and end are this close..."""
    compare_distance_ratio: float = 0.10
    """...and its distance differs by at most this fraction."""

    def __post_init__(self) -> None:
        if self.mode not in ("location", "ignition"):
            raise ValueError(f"mode must be 'location' or 'ignition', got {self.mode!r}")
        for name in ("trip_distance_m", "stop_duration_s", "max_gap_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("moving_speed_kmh", "speed_limit_kmh", "simplify_tolerance_m"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_settings(cls, settings: Any) -> RouteParams:
        """Parameters from the settings object; a setting it lacks keeps the default."""
        default = cls()

        def get(name: str, fallback: Any) -> Any:
            value = getattr(settings, name, None)
            return fallback if value is None else value

        return cls(
            mode=get("etrac_route_mode", default.mode),
            trip_distance_m=float(get("etrac_trip_min_distance_m", default.trip_distance_m)),
            stop_duration_s=float(get("etrac_stop_min_duration_s", default.stop_duration_s)),
            max_gap_s=float(get("etrac_trip_max_gap_s", default.max_gap_s)),
            moving_speed_kmh=float(get("etrac_moving_speed_kmh", default.moving_speed_kmh)),
            speed_limit_kmh=float(get("etrac_speed_limit_kmh", default.speed_limit_kmh)),
            simplify_tolerance_m=float(get("etrac_route_simplify_m", default.simplify_tolerance_m)),
            tz=get("tz", default.tz),
        )

    def key(self) -> str:
        """Everything a stored route depends on besides its positions, for its fingerprint."""
        return (
            f"{self.mode}/{self.trip_distance_m:g}/{self.stop_duration_s:g}/{self.max_gap_s:g}/"
            f"{self.moving_speed_kmh:g}/{self.speed_limit_kmh:g}/{self.simplify_tolerance_m:g}/"
            f"{self.tz}/{self.compare_time_tolerance_s:g}/{self.compare_distance_ratio:g}"
        )


@dataclass(frozen=True, slots=True)
class Trip:
    seq: int
    start_ts: datetime
    end_ts: datetime
    start_lat: float
    start_lon: float
    end_lat: float
    end_lon: float
    start_address: str | None
    end_address: str | None
    distance_m: float
    duration_s: int
    max_speed_kmh: float | None
    avg_speed_kmh: float | None


@dataclass(frozen=True, slots=True)
class Stop:
    seq: int
    start_ts: datetime
    end_ts: datetime
    latitude: float
    longitude: float
    address: str | None
    duration_s: int
    ignition_on_s: int


@dataclass(slots=True)
class DayRoute:
    """One plate's local day. Durations are whole seconds, distances metres."""

    day: date
    points: list[tuple[float, float, float, float | None, bool | None]]
    """Valid points of the day in time order: (POSIX seconds, lat, lon, speed km/h, ignition)."""
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
    trips: list[Trip]
    stops: list[Stop]

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


def compute_day_route(points: Sequence[Point], day: date, params: RouteParams) -> DayRoute:
    """The route of `day` from valid points in any order.

    Points outside the day are context: the last one before the day and the
    first one after it cut a trip crossing midnight. Points without usable
    coordinates are ignored; of two points with one timestamp the first is kept.
    """
    usable = [
        p
        for p in points
        if p[1] is not None
        and p[2] is not None
        and -90.0 <= p[1] <= 90.0
        and -180.0 <= p[2] <= 180.0
        and math.isfinite(p[0])
    ]
    usable.sort(key=lambda p: p[0])
    unique: list[Point] = []
    last_t = -math.inf
    for p in usable:
        if p[0] != last_t:
            unique.append(p)
            last_t = p[0]
    if not unique:
        return empty_route(day)
    ts, lats, lons, speeds, ignitions, odometers, addresses = zip(*unique, strict=True)
    return compute_sorted(ts, lats, lons, speeds, ignitions, odometers, addresses, day, params)


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
    """The route of `day` from columns already valid, sorted and unique by time.

    The fast path the database side uses. Columns may hold points outside the
    day; only the last one before it and the first one after it are used.
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
        entered_moving = _moving_between(ts, lats, lons, lo - 1, lo, params)
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


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    s1 = math.sin((lat2 - lat1) * (_RAD * 0.5))
    s2 = math.sin((lon2 - lon1) * (_RAD * 0.5))
    a = s1 * s1 + math.cos(lat1 * _RAD) * math.cos(lat2 * _RAD) * s2 * s2
    return math.pi * EARTH_RADIUS_M if a >= 1.0 else _TWO_R * math.asin(math.sqrt(a))


def _moving_between(
    ts: Sequence[float],
    lats: Sequence[float],
    lons: Sequence[float],
    a: int,
    b: int,
    params: RouteParams,
) -> bool:
    d = _haversine(lats[a], lons[a], lats[b], lons[b])
    dt = ts[b] - ts[a]
    return d > params.trip_distance_m or (dt > 0 and d / dt * _KMH >= params.moving_speed_kmh)


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
    points: list[tuple[float, float, float, float | None, bool | None]],
    count: int,
    first_real: int,
    entered_moving: bool,
) -> DayRoute:
    n = len(ts)
    gap = params.max_gap_s
    moving_kmh = params.moving_speed_kmh
    limit = params.speed_limit_kmh
    radius = params.trip_distance_m
    sin = math.sin
    cos = math.cos
    asin = math.asin
    sqrt = math.sqrt
    half_rad = _RAD * 0.5
    two_r = _TWO_R

    # One pass over consecutive pairs: distances and the time accounting.
    # Plain locals and lists only: this loop runs once per stored point.
    cum = [0.0] * n
    driving = idle = parked = over = 0.0
    driving_m = 0.0
    total = 0.0
    max_implied = 0.0
    lat0 = lats[0]
    lon0 = lons[0]
    cos0 = cos(lat0 * _RAD)
    t0 = ts[0]
    sp0 = speeds[0]
    ig0 = ignitions[0]
    for i in range(1, n):
        lat1 = lats[i]
        lon1 = lons[i]
        cos1 = cos(lat1 * _RAD)
        s1 = sin((lat1 - lat0) * half_rad)
        s2 = sin((lon1 - lon0) * half_rad)
        a = s1 * s1 + cos0 * cos1 * s2 * s2
        d = two_r * asin(sqrt(a)) if a < 1.0 else math.pi * EARTH_RADIUS_M
        total += d
        cum[i] = total
        t1 = ts[i]
        sp1 = speeds[i]
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
        lat0 = lat1
        lon0 = lon1
        cos0 = cos1
        t0 = t1
        sp0 = sp1
        ig0 = ignitions[i]

    if params.mode == "ignition" and any(g is not None for g in ignitions):
        trip_spans, stop_spans = _detect_ignition(ts, lats, lons, ignitions, params)
    else:
        trip_spans, stop_spans = _detect_location(
            ts, lats, lons, speeds, params, moving=entered_moving
        )

    tz = UTC
    trips: list[Trip] = []
    for s, e in trip_spans:
        duration = ts[e] - ts[s]
        distance = cum[e] - cum[s]
        reported = [v for v in speeds[s : e + 1] if v is not None]
        top = max(reported) if reported else _max_implied(ts, cum, s, e)
        trips.append(
            Trip(
                seq=len(trips) + 1,
                start_ts=datetime.fromtimestamp(ts[s], tz),
                end_ts=datetime.fromtimestamp(ts[e], tz),
                start_lat=lats[s],
                start_lon=lons[s],
                end_lat=lats[e],
                end_lon=lons[e],
                start_address=_address_near(addresses, s, s, e),
                end_address=_address_near(addresses, e, s, e),
                distance_m=distance,
                duration_s=round(duration),
                max_speed_kmh=top,
                avg_speed_kmh=distance / duration * _KMH if duration > 0 else None,
            )
        )
    stops: list[Stop] = []
    for a_, b_ in stop_spans:
        on = 0.0
        for j in range(a_ + 1, b_ + 1):
            if ignitions[j - 1] and ts[j] - ts[j - 1] <= gap:
                on += ts[j] - ts[j - 1]
        stops.append(
            Stop(
                seq=len(stops) + 1,
                start_ts=datetime.fromtimestamp(ts[a_], tz),
                end_ts=datetime.fromtimestamp(ts[b_], tz),
                latitude=lats[a_],
                longitude=lons[a_],
                address=_address_near(addresses, a_, a_, b_),
                duration_s=round(ts[b_] - ts[a_]),
                ignition_on_s=round(on),
            )
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
        start_ts=datetime.fromtimestamp(ts[first_real], tz),
        end_ts=datetime.fromtimestamp(ts[last_real], tz),
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


def _detect_location(
    ts: list[float],
    lats: list[float],
    lons: list[float],
    speeds: list[float | None],
    params: RouteParams,
    *,
    moving: bool,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(trip spans, stop spans) as inclusive point-index pairs; see the module doc."""
    n = len(ts)
    gap = params.max_gap_s
    min_stop = params.stop_duration_s
    moving_kmh = params.moving_speed_kmh
    # Within the radius on an equirectangular projection around the anchor:
    # at 200 m its error is far below GPS noise, and it costs no trigonometry.
    r_deg = params.trip_distance_m / (EARTH_RADIUS_M * _RAD)
    r2 = r_deg * r_deg
    cos = math.cos
    trips: list[tuple[int, int]] = []
    stops: list[tuple[int, int]] = []
    # Stopped: `a` is the stop's first point. Moving: `s` is the trip's first
    # point, `c` the first point of a possible stop (-1: none yet).
    a = 0
    s = 0
    c = -1
    a_lat = lats[0]
    a_lon = lons[0]
    a_cos = cos(a_lat * _RAD)
    c_lat = c_lon = c_cos = 0.0
    for i in range(1, n):
        t = ts[i]
        lat = lats[i]
        lon = lons[i]
        if t - ts[i - 1] > gap:
            if moving:
                e = c if c >= 0 else i - 1
                if e > s:
                    trips.append((s, e))
                moving = False
                a = e
                a_lat = lats[e]
                a_lon = lons[e]
                a_cos = cos(a_lat * _RAD)
            dx = (lon - a_lon) * a_cos
            dy = lat - a_lat
            if dx * dx + dy * dy > r2:
                # It moved while silent: the stop ends before the gap, a new
                # one (of unknown length) starts after it. No trip is invented.
                if ts[i - 1] - ts[a] >= min_stop:
                    stops.append((a, i - 1))
                a = i
                a_lat = lat
                a_lon = lon
                a_cos = cos(lat * _RAD)
            continue
        if moving:
            sp = speeds[i]
            if sp is not None and sp > moving_kmh:
                c = -1
            elif c < 0:
                c = i
                c_lat = lat
                c_lon = lon
                c_cos = cos(lat * _RAD)
            else:
                dx = (lon - c_lon) * c_cos
                dy = lat - c_lat
                if dx * dx + dy * dy <= r2:
                    if t - ts[c] >= min_stop:
                        trips.append((s, c))
                        moving = False
                        a = c
                        a_lat = c_lat
                        a_lon = c_lon
                        a_cos = c_cos
                else:
                    c = i
                    c_lat = lat
                    c_lon = lon
                    c_cos = cos(lat * _RAD)
        else:
            dx = (lon - a_lon) * a_cos
            dy = lat - a_lat
            if dx * dx + dy * dy > r2:
                if ts[i - 1] - ts[a] >= min_stop:
                    stops.append((a, i - 1))
                moving = True
                s = i - 1
                sp = speeds[i]
                if sp is not None and sp > moving_kmh:
                    c = -1
                else:
                    c = i
                    c_lat = lat
                    c_lon = lon
                    c_cos = cos(lat * _RAD)
    if moving:
        if n - 1 > s:
            trips.append((s, n - 1))
    elif ts[n - 1] - ts[a] >= min_stop:
        stops.append((a, n - 1))
    return trips, stops


def _detect_ignition(
    ts: list[float],
    lats: list[float],
    lons: list[float],
    ignitions: list[bool | None],
    params: RouteParams,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(trip spans, stop spans) from the ignition; see the module doc."""
    n = len(ts)
    gap = params.max_gap_s
    min_stop = params.stop_duration_s
    r_deg = params.trip_distance_m / (EARTH_RADIUS_M * _RAD)
    r2 = r_deg * r_deg
    cos = math.cos
    trips: list[tuple[int, int]] = []
    stops: list[tuple[int, int]] = []
    on = bool(ignitions[0])
    moving = False
    a = 0
    a_lat = lats[0]
    a_lon = lons[0]
    a_cos = cos(a_lat * _RAD)
    # Stopped: `on_from` is where the current ignition-on spell began (-1: off).
    # Moving: `s` is the trip's first point, `c` the first ignition-off point.
    on_from = 0 if on else -1
    s = 0
    c = -1
    for i in range(1, n):
        t = ts[i]
        g = ignitions[i]
        if g is not None:
            on = g
        if t - ts[i - 1] > gap:
            if moving:
                e = c if c >= 0 else i - 1
                if e > s:
                    trips.append((s, e))
                moving = False
                a = e
                a_lat = lats[e]
                a_lon = lons[e]
                a_cos = cos(a_lat * _RAD)
            dx = (lons[i] - a_lon) * a_cos
            dy = lats[i] - a_lat
            if dx * dx + dy * dy > r2:
                if ts[i - 1] - ts[a] >= min_stop:
                    stops.append((a, i - 1))
                a = i
                a_lat = lats[i]
                a_lon = lons[i]
                a_cos = cos(a_lat * _RAD)
            on_from = i if on else -1
            continue
        if moving:
            if on:
                c = -1
            elif c < 0:
                c = i
            elif t - ts[c] >= min_stop:
                trips.append((s, c))
                moving = False
                a = c
                a_lat = lats[c]
                a_lon = lons[c]
                a_cos = cos(a_lat * _RAD)
                on_from = -1
        else:
            dx = (lons[i] - a_lon) * a_cos
            dy = lats[i] - a_lat
            outside = dx * dx + dy * dy > r2
            if on:
                if on_from < 0:
                    on_from = i
                if outside:
                    if ts[on_from] - ts[a] >= min_stop:
                        stops.append((a, on_from))
                    moving = True
                    s = on_from
                    c = -1
            else:
                on_from = -1
                if outside:
                    # Moved with the ignition off (towed, or an unwired ignition):
                    # not a trip in this mode; a new stop starts here.
                    if ts[i - 1] - ts[a] >= min_stop:
                        stops.append((a, i - 1))
                    a = i
                    a_lat = lats[i]
                    a_lon = lons[i]
                    a_cos = cos(a_lat * _RAD)
    if moving:
        e = c if c >= 0 else n - 1
        if e > s:
            trips.append((s, e))
        if c >= 0 and ts[n - 1] - ts[c] > 0:
            stops.append((c, n - 1))
    elif ts[n - 1] - ts[a] >= min_stop:
        stops.append((a, n - 1))
    return trips, stops


def _max_implied(ts: list[float], cum: list[float], s: int, e: int) -> float | None:
    best: float | None = None
    for j in range(s + 1, e + 1):
        dt = ts[j] - ts[j - 1]
        if dt > 0:
            v = (cum[j] - cum[j - 1]) / dt * _KMH
            if best is None or v > best:
                best = v
    return best


def _address_near(addresses: list[str | None], i: int, lo: int, hi: int) -> str | None:
    """The address at point i, else the nearest one within [lo, hi] (a few points away)."""
    for offset in range(4):
        for j in (i - offset, i + offset):
            if lo <= j <= hi:
                text = addresses[j]
                if text:
                    return text
    return None


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


ProviderTrip = tuple[datetime, datetime | None, float | None]
"""A provider trip (resumoviagens): (data_inicio_conducao, data_fim_conducao, distancia_conducao km)."""


def compare_with_provider(
    trips: Sequence[Trip], provider: Sequence[ProviderTrip], params: RouteParams
) -> dict[str, Any] | None:
    """How our trips match the provider's of the same day; None when it listed none.

    Each provider trip is paired with the unpaired trip of ours that overlaps it
    longest in time. The provider's trip runs from ignition on to ignition off,
    ours from leaving the stop to arriving, so its edges lead and trail ours by
    the warm-up and idling: the time tolerance is meant to absorb that.
    """
    if not provider:
        return None
    used: set[int] = set()
    pairs: list[dict[str, Any]] = []
    agrees = len(provider) == len(trips)
    tolerance = params.compare_time_tolerance_s
    ratio = params.compare_distance_ratio
    for start, end, km in provider:
        finish = end or start
        best = -1
        best_overlap = -1.0
        for k, ours in enumerate(trips):
            if k in used:
                continue
            overlap = (min(finish, ours.end_ts) - max(start, ours.start_ts)).total_seconds()
            if overlap >= 0 and overlap > best_overlap:
                best, best_overlap = k, overlap
        pair: dict[str, Any] = {
            "provider_start": start.isoformat(),
            "provider_end": end.isoformat() if end else None,
            "provider_distance_m": km * 1000.0 if km is not None else None,
            "seq": None,
        }
        if best < 0:
            agrees = False
            pair["agrees"] = False
            pairs.append(pair)
            continue
        used.add(best)
        ours = trips[best]
        start_delta = (ours.start_ts - start).total_seconds()
        end_delta = (ours.end_ts - finish).total_seconds() if end else None
        distance_delta = ours.distance_m - km * 1000.0 if km is not None else None
        pair_agrees = (
            abs(start_delta) <= tolerance
            and (end_delta is None or abs(end_delta) <= tolerance)
            and (
                km is None
                or abs(ours.distance_m - km * 1000.0) <= ratio * max(km * 1000.0, ours.distance_m)
            )
        )
        agrees = agrees and pair_agrees
        pair.update(
            seq=ours.seq,
            start_delta_s=round(start_delta),
            end_delta_s=round(end_delta) if end_delta is not None else None,
            distance_delta_m=round(distance_delta, 1) if distance_delta is not None else None,
            agrees=pair_agrees,
        )
        pairs.append(pair)
    provider_m = sum(km for _, _, km in provider if km is not None) * 1000.0
    return {
        "provider_trips": len(provider),
        "our_trips": len(trips),
        "matched": len(used),
        "provider_distance_m": round(provider_m, 1),
        "our_distance_m": round(sum(t.distance_m for t in trips), 1),
        "unmatched_ours": [t.seq for k, t in enumerate(trips) if k not in used],
        "pairs": pairs,
        "agrees": agrees,
    }
