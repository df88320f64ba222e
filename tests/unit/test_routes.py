"""Routes, trips and stops from hand-built tracks (etrack.trips, no database)."""

from __future__ import annotations

import itertools
import math
import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from etrack.config import Settings
from etrack.geo import EARTH_RADIUS_M, haversine_m
from etrack.model import DayStats, StopRow, TripRow
from etrack.store.queries import query
from etrack.trips.compare import compare_with_provider
from etrack.trips.day import (
    DayRoute,
    compute_sorted,
    day_bounds,
    day_stats,
    stop_rows,
    trip_rows,
)
from etrack.trips.params import RouteParams

Point = tuple[float, float, float, float | None, bool | None, float | None, str | None]
"""(POSIX seconds, latitude, longitude, speed km/h, ignition, odometer km, address)."""

TZ = ZoneInfo("America/Sao_Paulo")
DAY = date(2025, 3, 4)
PARAMS = RouteParams(tz=TZ)
# Metres of latitude per degree on Traccar's sphere: moving due north, the
# haversine distance between two points is exactly this times the degrees.
M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0


def at(hour: int, minute: int = 0, second: int = 0, day: date = DAY) -> float:
    return datetime.combine(day, time(hour, minute, second), TZ).timestamp()


def local(ts: datetime) -> datetime:
    return ts.astimezone(TZ).replace(tzinfo=None)


class Track:
    """A vehicle moving due north, reporting like a tracker does."""

    def __init__(self, start: float, lat: float = -23.6, lon: float = -46.6) -> None:
        self.t = start
        self.lat = lat
        self.lon = lon
        self.odometer_km = 1000.0
        self.ignition = False
        self.speed = 0.0
        self.address: str | None = "Rua Augusta, 100"
        self.points: list[Point] = []
        self.emit()

    def emit(self) -> None:
        self.points.append(
            (
                self.t,
                self.lat,
                self.lon,
                self.speed,
                self.ignition,
                self.odometer_km,
                self.address,
            )
        )

    def stay(self, seconds: float, *, every: float = 60.0, ignition: bool = False) -> Track:
        self.ignition = ignition
        self.speed = 0.0
        end = self.t + seconds
        while self.t + every <= end + 1e-9:
            self.t += every
            self.emit()
        return self

    def drive(self, seconds: float, kmh: float, *, every: float = 60.0) -> Track:
        self.ignition = True
        self.speed = kmh
        end = self.t + seconds
        while self.t + every <= end + 1e-9:
            self.t += every
            metres = kmh / 3.6 * every
            self.lat += metres / M_PER_DEG
            self.odometer_km += metres / 1000.0
            self.address = f"Avenida {round(self.lat * 1000)}"
            self.emit()
        return self

    def silence(self, seconds: float, metres: float = 0.0) -> Track:
        """No report for a while, during which the vehicle may move; then one."""
        self.t += seconds
        self.lat += metres / M_PER_DEG
        self.odometer_km += metres / 1000.0
        self.emit()
        return self


def compute_day_route(points: list[Point], day: date, params: RouteParams) -> DayRoute:
    """The route of `day` from points in time order, one per timestamp: what
    storage reads (the tests' tracks are built that way)."""
    if not points:
        return compute_sorted([], [], [], [], [], [], [], day, params)
    ts, lats, lons, speeds, ignitions, odometers, addresses = zip(*points, strict=True)
    return compute_sorted(ts, lats, lons, speeds, ignitions, odometers, addresses, day, params)


def path_m(points: list[Point]) -> float:
    return sum(haversine_m(a[1], a[2], b[1], b[2]) for a, b in itertools.pairwise(points))


def working_day() -> Track:
    """Parked at night, one trip with a red light in it, parked again.

    Ignition on at 06:51, departs at 06:52, arrives at 07:13:30, ignition off
    at 07:16:30. Like a tracker, it reports when the ignition changes."""
    track = Track(at(0, 5))
    track.stay(6 * 3600 + 2700, every=900)  # parked until 06:50
    track.stay(120, ignition=True)  # ignition on at 06:51, warm-up
    track.drive(600, 36)  # 6 km
    track.stay(90, every=30, ignition=True)  # red light: 90 s standing
    track.drive(600, 36)  # 6 km more
    track.stay(120, ignition=True)  # idling after arriving
    track.stay(60)  # ignition off
    track.stay(3600 * 3, every=900)  # parked
    return track


def test_a_red_light_is_not_a_stop() -> None:
    track = working_day()
    route = compute_day_route(track.points, DAY, PARAMS)
    assert len(route.trips) == 1
    trip = route.trips[0]
    assert trip.distance_m == pytest.approx(12000, rel=0.01)
    # From the last point at the depot to the first standing point at the destination.
    assert local(trip.start_ts) == datetime(2025, 3, 4, 6, 52)
    assert local(trip.end_ts) == datetime(2025, 3, 4, 7, 14, 30)
    assert trip.max_speed_kmh == 36
    assert trip.start_address == "Rua Augusta, 100"
    assert trip.end_address == f"Avenida {round(trip.end_lat * 1000)}"
    assert [local(s.start_ts).time() for s in route.stops] == [time(0, 5), time(7, 14, 30)]
    assert [local(s.end_ts).time() for s in route.stops] == [time(6, 52), time(10, 16, 30)]
    assert route.stops[0].ignition_on_s == 60
    assert route.stops[1].ignition_on_s == 120
    assert route.distance_m == pytest.approx(path_m(track.points))
    assert route.odometer_m == pytest.approx(12000)
    assert route.point_count == len(track.points)


def test_time_accounting_covers_the_day_without_gaps() -> None:
    track = working_day()
    route = compute_day_route(track.points, DAY, PARAMS)
    span = track.points[-1][0] - track.points[0][0]
    assert route.driving_s + route.idle_s + route.parked_s == pytest.approx(span, abs=2)
    assert route.driving_s == 1200
    # Warm-up, red light, and idling from arrival to ignition off.
    assert route.idle_s == 60 + 90 + 180
    assert route.avg_speed_kmh == pytest.approx(36)
    assert route.max_speed_kmh == 36
    assert route.over_limit_s == 0


def test_time_over_the_speed_limit() -> None:
    track = Track(at(9)).stay(600, ignition=True).drive(1200, 100).stay(1200)
    route = compute_day_route(track.points, DAY, RouteParams(tz=TZ, speed_limit_kmh=80))
    # 20 reported points above the limit: 19 whole minutes, and half a minute
    # on each side where the speed crosses the limit between two reports.
    assert route.over_limit_s == 20 * 60


def test_a_long_data_gap_splits_the_trip() -> None:
    track = Track(at(8)).stay(600, ignition=True).drive(900, 40)
    before_gap = track.t
    track.silence(2 * 3600, metres=8000)
    after_gap = track.t
    track.drive(900, 40).stay(1800, every=300)
    route = compute_day_route(track.points, DAY, PARAMS)
    assert len(route.trips) == 2
    assert route.trips[0].end_ts.timestamp() == before_gap
    assert route.trips[1].start_ts.timestamp() == after_gap
    # The day's distance keeps the straight line across the gap; no trip owns it.
    assert route.distance_m == pytest.approx(path_m(track.points))
    trips_m = sum(t.distance_m for t in route.trips)
    assert route.distance_m - trips_m == pytest.approx(8000, rel=0.01)
    # Nobody knows what happened in the gap: it is neither driving nor parked.
    span = track.points[-1][0] - track.points[0][0]
    assert route.driving_s + route.idle_s + route.parked_s == pytest.approx(span - 7200, abs=2)


def test_a_gap_while_parked_is_still_one_stop() -> None:
    track = Track(at(1)).stay(1800, every=900).silence(3 * 3600).stay(1800, every=900)
    route = compute_day_route(track.points, DAY, PARAMS)
    assert route.trips == []
    assert len(route.stops) == 1
    assert route.stops[0].duration_s == track.points[-1][0] - track.points[0][0]
    assert route.parked_s == route.stops[0].duration_s


def test_a_trip_across_midnight_is_cut_at_local_midnight() -> None:
    first, second = DAY, DAY + timedelta(days=1)
    track = Track(at(23, 20, 30)).stay(900, every=300).stay(120, ignition=True)
    track.drive(40 * 60, 30)  # 23:37:30 -> 00:17:30, 20 km
    track.stay(180, ignition=True).stay(3 * 3600, every=900)
    before = compute_day_route(track.points, first, PARAMS)
    after = compute_day_route(track.points, second, PARAMS)
    midnight = datetime.combine(second, time(0), TZ)
    assert len(before.trips) == 1
    assert len(after.trips) == 1
    assert before.trips[0].end_ts == midnight
    assert after.trips[0].start_ts == midnight
    # Each day owns its part; together they are the whole trip and the whole path.
    assert before.trips[0].distance_m + after.trips[0].distance_m == pytest.approx(20000)
    assert before.distance_m + after.distance_m == pytest.approx(path_m(track.points))
    # 22.5 of the 40 minutes at 30 km/h were before midnight.
    assert before.trips[0].distance_m == pytest.approx(22.5 / 40 * 20000, rel=1e-6)
    # The cut extends the line to midnight, but only real points are counted.
    assert before.point_count == sum(1 for p in track.points if p[0] < midnight.timestamp())
    assert before.geojson is not None
    assert len(before.geojson["coordinates"]) == before.point_count + 1
    assert before.end_ts is not None
    assert before.end_ts < midnight


def test_without_context_a_day_starts_stopped_at_its_first_point() -> None:
    track = Track(at(0, 0, 30, day=DAY)).drive(20 * 60, 30).stay(3600, every=900)
    route = compute_day_route(track.points, DAY, PARAMS)
    assert len(route.trips) == 1
    assert route.trips[0].start_ts.timestamp() == track.points[0][0]


def test_a_day_with_one_point() -> None:
    point: Point = (at(10), -23.5, -46.6, 0.0, False, 5000.0, "Rua A")
    route = compute_day_route([point], DAY, PARAMS)
    assert route.point_count == 1
    assert route.distance_m == 0
    assert route.trips == []
    assert route.stops == []
    assert route.start_ts == route.end_ts == datetime.fromtimestamp(at(10), UTC)
    assert route.geojson == {"type": "Point", "coordinates": (-46.6, -23.5)}
    assert route.odometer_m == 0
    assert route.driving_s == route.idle_s == route.parked_s == 0


def test_no_points_at_all_and_points_of_other_days() -> None:
    assert compute_day_route([], DAY, PARAMS).empty
    other_day = Track(at(10, day=DAY + timedelta(days=3))).drive(600, 30).points
    assert compute_day_route(other_day, DAY, PARAMS).empty


def test_the_simplified_line_keeps_the_ends_and_drops_straight_runs() -> None:
    route = compute_day_route(working_day().points, DAY, PARAMS)
    assert route.geojson is not None
    assert route.simplified is not None
    line = route.geojson["coordinates"]
    simple = route.simplified["coordinates"]
    assert simple[0] == line[0]
    assert simple[-1] == line[-1]
    # The track is a straight line north: two points draw it.
    assert len(simple) == 2
    assert len(line) > 30


def test_ignition_mode_trips_run_from_ignition_on_to_off() -> None:
    track = Track(at(6)).stay(3600, every=900)
    ignition_on = track.t + 60
    track.stay(600, ignition=True)  # idling in place: no trip
    track.stay(60).stay(600, every=300)
    trip_on = track.t + 60
    track.stay(300, ignition=True).drive(900, 40)
    track.stay(60, ignition=False).stay(60, ignition=True)  # a stall: not a stop
    track.drive(900, 40).stay(60, ignition=True)
    trip_off = track.t + 60
    track.stay(60).stay(3600, every=900)
    route = compute_day_route(track.points, DAY, RouteParams(tz=TZ, mode="ignition"))
    assert len(route.trips) == 1
    assert route.trips[0].start_ts.timestamp() == trip_on
    assert route.trips[0].end_ts.timestamp() == trip_off
    assert route.stops[0].ignition_on_s == 600
    assert route.stops[0].start_ts.timestamp() < ignition_on
    # Location mode sees the same single trip, from leaving to arriving.
    located = compute_day_route(track.points, DAY, PARAMS)
    assert len(located.trips) == 1
    assert located.trips[0].start_ts.timestamp() > trip_on


def test_ignition_mode_without_ignition_falls_back_to_location() -> None:
    points = [(*p[:4], None, *p[5:]) for p in working_day().points]
    route = compute_day_route(points, DAY, RouteParams(tz=TZ, mode="ignition"))
    assert len(route.trips) == 1


def test_an_odometer_reset_gives_no_odometer_difference() -> None:
    track = working_day()
    points = [*track.points[:-1], (*track.points[-1][:5], 3.0, None)]
    assert compute_day_route(points, DAY, PARAMS).odometer_m is None


def test_day_bounds_follow_the_time_zone() -> None:
    start, end = day_bounds(DAY, TZ)
    assert datetime.fromtimestamp(start, UTC) == datetime(2025, 3, 4, 3, 0, tzinfo=UTC)
    assert end - start == 86400


def test_provider_comparison() -> None:
    route = compute_day_route(working_day().points, DAY, PARAMS)
    trip = route.trips[0]
    theirs = (trip.start_ts - timedelta(minutes=2), trip.end_ts + timedelta(minutes=2), 12.0)
    agreed = compare_with_provider(route.trips, [theirs], PARAMS)
    assert agreed is not None
    assert agreed["agrees"] is True
    assert agreed["matched"] == 1
    assert agreed["pairs"][0]["start_delta_s"] == 120
    assert agreed["pairs"][0]["end_delta_s"] == -120
    far = (trip.start_ts + timedelta(hours=5), trip.end_ts + timedelta(hours=5), 12.0)
    disagreed = compare_with_provider(route.trips, [theirs, far], PARAMS)
    assert disagreed is not None
    assert disagreed["agrees"] is False
    assert disagreed["provider_trips"] == 2
    assert disagreed["pairs"][1]["seq"] is None
    longer = (theirs[0], theirs[1], 20.0)
    longer_cmp = compare_with_provider(route.trips, [longer], PARAMS)
    assert longer_cmp is not None
    assert longer_cmp["agrees"] is False
    assert compare_with_provider(route.trips, [], PARAMS) is None


def test_params_from_settings_and_validation() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        etrac_timezone="America/Manaus",
        etrac_speed_limit_kmh=60,
        etrac_route_mode="ignition",
    )
    params = RouteParams.from_settings(settings)
    assert params.speed_limit_kmh == 60
    assert params.mode == "ignition"
    assert params.stop_duration_s == 180
    assert str(params.tz) == "America/Manaus"
    assert params.key() != RouteParams().key()
    with pytest.raises(ValueError, match="mode"):
        RouteParams(mode="teleport")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stop_duration_s"):
        RouteParams(stop_duration_s=0)


def test_the_stored_rows_follow_the_copy_columns() -> None:
    # Storage writes DayStats, TripRow and StopRow as they are, after the plate and day.
    def columns(name: str) -> list[str]:
        listed = re.search(r"\((.*?)\)", query(name), re.DOTALL)
        assert listed is not None
        return [c.strip() for c in listed.group(1).split(",")]

    routes = columns("routes_copy_routes")
    start = routes.index("start_ts")
    assert list(DayStats._fields) == routes[start : start + len(DayStats._fields)]
    assert columns("routes_copy_trips") == ["placa", "rota_date", *TripRow._fields]
    assert columns("routes_copy_stops") == ["placa", "rota_date", *StopRow._fields]


def test_the_rows_of_a_day() -> None:
    route = compute_day_route(working_day().points, DAY, PARAMS)
    stats = day_stats(route, invalid_count=2)
    assert stats.invalid_count == 2
    assert (stats.trip_count, stats.stop_count) == (len(route.trips), len(route.stops))
    assert stats.distance_m == route.distance_m
    assert day_stats(route).invalid_count is None
    trip = route.trips[0]
    (row,) = trip_rows(route)
    assert (row.seq, row.start_ts, row.end_latitude, row.end_longitude) == (
        trip.seq,
        trip.start_ts,
        trip.end_lat,
        trip.end_lon,
    )
    assert [s.ignition_on_s for s in stop_rows(route)] == [s.ignition_on_s for s in route.stops]
