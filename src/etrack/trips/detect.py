"""Trips and stops of one track: where the vehicle drove and where it stood.

Input is a day's track as columns in time order (see `etrack.trips.day`, which
also does the distances and the time accounting); output is the trips and
stops as `etrack.model.TripRow` and `StopRow`, the rows storage writes.

Rules, and why:

- Location mode (Traccar 6.12+): a stop is the vehicle staying within
  `trip_distance_m` of one point for at least `stop_duration_s`; it leaves the
  stop once it is `trip_distance_m` away, and the trip starts at the last point
  still inside the stop. A point that *reports* a speed above
  `moving_speed_kmh` cannot be part of a stop: without that hint a long red
  light approached and left slowly can spread its in-radius points over more
  than 180 s. A data gap longer than `max_gap_s` ends the trip at the last
  point before it.
- Ignition mode: a trip runs from the first ignition-on point to the first
  ignition-off point of an off spell lasting at least `stop_duration_s`, and
  only counts if the vehicle left the stop's radius (idling in place is part of
  the stop). A day whose tracker never reports ignition falls back to location
  mode.
- A stop must be seen for `stop_duration_s` inside the data: a vehicle that
  pulls up a minute before the last point ends its trip at that last point.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from etrack.geo import EARTH_RADIUS_M, haversine_m
from etrack.model import StopRow, TripRow
from etrack.trips.params import RouteParams

__all__ = ["moving_between", "moving_seconds", "trips_and_stops"]

Span = tuple[int, int]
"""First and last point index of a trip or a stop, inclusive."""

_RAD = math.pi / 180.0
_KMH = 3.6


def trips_and_stops(
    ts: list[float],
    lats: list[float],
    lons: list[float],
    speeds: list[float | None],
    ignitions: list[bool | None],
    addresses: list[str | None],
    cum: list[float],
    params: RouteParams,
    *,
    moving: bool,
) -> tuple[list[TripRow], list[StopRow]]:
    """The trips and stops of a track in time order.

    `cum[i]` is the distance travelled from the first point to point i (a trip's
    distance is its difference); `moving` says whether the vehicle was already
    driving when the track begins (location mode starts stopped otherwise).
    """
    if params.mode == "ignition" and any(g is not None for g in ignitions):
        trip_spans, stop_spans = _detect_ignition(ts, lats, lons, ignitions, params)
    else:
        trip_spans, stop_spans = _detect_location(ts, lats, lons, speeds, params, moving=moving)

    gap = params.max_gap_s
    tz = UTC
    trips: list[TripRow] = []
    for s, e in trip_spans:
        duration = ts[e] - ts[s]
        distance = cum[e] - cum[s]
        reported = [v for v in speeds[s : e + 1] if v is not None]
        top = max(reported) if reported else _max_implied(ts, cum, s, e)
        trips.append(
            TripRow(
                seq=len(trips) + 1,
                start_ts=datetime.fromtimestamp(ts[s], tz),
                end_ts=datetime.fromtimestamp(ts[e], tz),
                start_latitude=lats[s],
                start_longitude=lons[s],
                end_latitude=lats[e],
                end_longitude=lons[e],
                start_address=_address_near(addresses, s, s, e),
                end_address=_address_near(addresses, e, s, e),
                distance_m=distance,
                duration_s=round(duration),
                max_speed_kmh=top,
                avg_speed_kmh=distance / duration * _KMH if duration > 0 else None,
                moving_s=round(moving_seconds(ts, cum, s, e)),
            )
        )
    stops: list[StopRow] = []
    for a_, b_ in stop_spans:
        on = 0.0
        for j in range(a_ + 1, b_ + 1):
            if ignitions[j - 1] and ts[j] - ts[j - 1] <= gap:
                on += ts[j] - ts[j - 1]
        stops.append(
            StopRow(
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
    return trips, stops


def moving_between(
    ts: Sequence[float],
    lats: Sequence[float],
    lons: Sequence[float],
    a: int,
    b: int,
    params: RouteParams,
) -> bool:
    """Whether the vehicle moved from point a to point b: farther than the stop
    radius, or faster than the moving speed."""
    d = haversine_m(lats[a], lons[a], lats[b], lons[b])
    dt = ts[b] - ts[a]
    return d > params.trip_distance_m or (dt > 0 and d / dt * _KMH >= params.moving_speed_kmh)


def _detect_location(
    ts: list[float],
    lats: list[float],
    lons: list[float],
    speeds: list[float | None],
    params: RouteParams,
    *,
    moving: bool,
) -> tuple[list[Span], list[Span]]:
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
    trips: list[Span] = []
    stops: list[Span] = []
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
            a = _across_gap(ts, lats, lons, i, moving, a, s, c, r2, min_stop, trips, stops)
            moving = False
            a_lat = lats[a]
            a_lon = lons[a]
            a_cos = cos(a_lat * _RAD)
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
) -> tuple[list[Span], list[Span]]:
    """(trip spans, stop spans) from the ignition; see the module doc."""
    n = len(ts)
    gap = params.max_gap_s
    min_stop = params.stop_duration_s
    r_deg = params.trip_distance_m / (EARTH_RADIUS_M * _RAD)
    r2 = r_deg * r_deg
    cos = math.cos
    trips: list[Span] = []
    stops: list[Span] = []
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
            a = _across_gap(ts, lats, lons, i, moving, a, s, c, r2, min_stop, trips, stops)
            moving = False
            a_lat = lats[a]
            a_lon = lons[a]
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


def _across_gap(
    ts: list[float],
    lats: list[float],
    lons: list[float],
    i: int,
    moving: bool,
    a: int,
    s: int,
    c: int,
    r2: float,
    min_stop: float,
    trips: list[Span],
    stops: list[Span],
) -> int:
    """A data gap before point i, in either mode: the stop's anchor after it (the
    vehicle is stopped after a gap).

    Moving (the trip's first point is `s`, `c` where it may have stopped, -1:
    nowhere yet), the trip ends at `c`, else at the last point before the gap,
    and the stop is anchored there. Stopped at anchor `a`: if point i is outside
    the stop's radius, it moved while silent, so the stop ends before the gap
    and a new one (of unknown length) starts at i. No trip is invented.
    """
    if moving:
        e = c if c >= 0 else i - 1
        if e > s:
            trips.append((s, e))
        a = e
    a_lat = lats[a]
    dx = (lons[i] - lons[a]) * math.cos(a_lat * _RAD)
    dy = lats[i] - a_lat
    if dx * dx + dy * dy > r2:
        if ts[i - 1] - ts[a] >= min_stop:
            stops.append((a, i - 1))
        a = i
    return a


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


def moving_seconds(ts: Sequence[float], cum: Sequence[float], s: int, e: int) -> float:
    """Time in motion of the trip spanning points s..e: its time, less the still
    part of its first and last intervals. A trip starts at the last point
    still in the stop and ends at the first point of the next one, so the
    vehicle left and arrived somewhere inside those two intervals; at the
    speed of the interval next to each (the interval itself when the trip
    has no other), it covered that interval's distance in distance / speed.
    Without this a trip counts on average one sampling interval too many
    (half at each end), the whole error of a driver's day of short trips."""
    if e <= s:
        return 0.0
    total = ts[e] - ts[s]
    if e - s == 1:
        return total

    def speed(k: int) -> float:
        dt = ts[k + 1] - ts[k]
        return (cum[k + 1] - cum[k]) / dt if dt > 0 else 0.0

    for edge, beside in ((s, s + 1), (e - 1, e - 2)):
        dt = ts[edge + 1] - ts[edge]
        reference = speed(beside)
        if dt <= 0 or reference <= 0:
            continue
        moving = min(dt, (cum[edge + 1] - cum[edge]) / reference)
        total -= dt - moving
    return max(0.0, total)
