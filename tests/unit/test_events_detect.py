"""Event detection (etrack.events.detect): every kind's definition and the run
boundaries (a gap, the last point, exactly at the limit, shorter than the
minimum); the thresholds and their overrides file (etrack.events.params)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from etrack.config import load_settings, parse_elapsed, parse_working_hours
from etrack.errors import SettingsError
from etrack.events.detect import (
    DETECTORS,
    KINDS,
    Event,
    Track,
    after_hours,
    detect,
    idle,
    late_data,
    low_battery,
    overspeed,
)
from etrack.events.params import EventParams, Thresholds, load_overrides

T0 = datetime(2025, 3, 4, 12, 0, tzinfo=UTC).timestamp()  # a Tuesday, 09:00 in São Paulo
SP = ZoneInfo("America/Sao_Paulo")
BASE = Thresholds(tz=SP)


def track(
    seconds: Sequence[float],
    speeds: Sequence[float | None] | None = None,
    ignitions: Sequence[bool | None] | None = None,
    batteries: Sequence[float | None] | None = None,
    delays: Sequence[float | None] | None = None,
) -> Track:
    n = len(seconds)
    return Track.from_columns(
        [T0 + s for s in seconds],
        speeds if speeds is not None else [0.0] * n,
        ignitions if ignitions is not None else [False] * n,
        batteries if batteries is not None else [12.6] * n,
        delays if delays is not None else [5.0] * n,
    )


def spans(events: list[Event]) -> list[tuple[float, float]]:
    return [(e.start_ts - T0, e.end_ts - T0) for e in events]


# ---------------------------------------------------------------- overspeed
def test_overspeed_ends_at_the_first_position_back_at_or_below_the_limit() -> None:
    t = track([0, 30, 60, 90, 120, 150], [70, 90, 95, 100, 80, 60])
    events = overspeed(t, BASE)
    assert spans(events) == [(30, 120)]
    assert events[0].value == 100
    assert events[0].limit_value == 80
    assert events[0].duration_s == 90
    assert not events[0].reaches_end


def test_exactly_at_the_limit_is_not_over_it() -> None:
    t = track([0, 60, 120, 180], [80, 80, 80.0001, 80])
    assert overspeed(t, BASE.__class__(overspeed_min_s=0)) == [
        Event("overspeed", T0 + 120, T0 + 180, 80.0001, 80.0, False)
    ]
    assert overspeed(track([0, 60, 120], [80, 80, 80]), BASE) == []


def zoned(t: Track, zone: Sequence[int], limit: Sequence[float]) -> Track:
    return t.with_zones(np.asarray(zone, dtype=np.intp), np.asarray(limit, dtype=np.float64))


def test_a_fence_limit_replaces_the_vehicles_inside_it_and_a_zone_change_ends_a_run() -> None:
    nan = float("nan")
    # 50 km/h everywhere; the vehicle's limit is 80, fence 0 says 40 from 60 s to 180 s.
    t = zoned(
        track([0, 60, 120, 180, 240, 300], [50, 50, 50, 50, 90, 90]),
        [-1, 0, 0, 0, -1, -1],
        [nan, 40, 40, 40, nan, nan],
    )
    events = overspeed(t, Thresholds(overspeed_min_s=0))
    # Inside: 60..180, ended by the first position out of the zone (240);
    # outside at 90 > 80: a second run, its own limit.
    assert [(e.start_ts - T0, e.end_ts - T0, e.limit_value, e.zone) for e in events] == [
        (60, 240, 40.0, 0),
        (240, 300, 80.0, -1),
    ]
    assert events[0].value == 50
    # Without zones the same track has the vehicle's limit only.
    plain = overspeed(track([0, 60, 120, 180, 240, 300], [50, 50, 50, 50, 90, 90]), BASE)
    assert [(e.limit_value, e.zone) for e in plain] == [(80.0, -1)]


def test_a_run_passing_from_one_limited_zone_to_another_is_two_events() -> None:
    t = zoned(track([0, 60, 120, 180], [70, 70, 70, 70]), [0, 0, 1, 1], [60, 60, 50, 50])
    events = overspeed(t, Thresholds(overspeed_min_s=0))
    assert [(e.start_ts - T0, e.end_ts - T0, e.limit_value, e.zone) for e in events] == [
        (0, 120, 60.0, 0),
        (120, 180, 50.0, 1),
    ]
    # A higher fence limit lets the vehicle go faster than its own limit there.
    highway = zoned(track([0, 60, 120], [100, 100, 100]), [2, 2, 2], [110, 110, 110])
    assert overspeed(highway, Thresholds(overspeed_min_s=0)) == []


def test_overspeed_shorter_than_the_minimum_is_dropped_and_the_minimum_itself_kept() -> None:
    short = track([0, 20, 59, 80], [90, 90, 70, 70])
    assert overspeed(short, BASE) == []
    exact = track([0, 20, 60, 80], [90, 90, 70, 70])
    assert spans(overspeed(exact, BASE)) == [(0, 60)]


def test_a_gap_ends_the_run_at_the_position_before_it() -> None:
    # 100 s between positions at 120 and 3800: longer than max_gap_s=3600.
    t = track([0, 60, 120, 3800, 3860, 3920, 3980], [90, 95, 99, 120, 110, 105, 50])
    events = overspeed(t, BASE)
    assert spans(events) == [(0, 120), (3800, 3980)]
    assert [e.value for e in events] == [99, 120]


def test_a_gap_exactly_max_gap_long_does_not_end_the_run() -> None:
    t = track([0, 3600, 3700], [90, 90, 10])
    assert spans(overspeed(t, BASE)) == [(0, 3700)]


def test_a_run_lasting_to_the_last_point_ends_there() -> None:
    t = track([0, 60, 120, 180], [50, 90, 91, 92])
    events = overspeed(t, BASE)
    assert spans(events) == [(60, 180)]
    assert events[0].reaches_end


def test_unknown_speeds_break_an_overspeed_run() -> None:
    t = track([0, 60, 120, 180, 240], [90, 90, None, 90, 90])
    assert spans(overspeed(t, BASE)) == [(0, 120), (180, 240)]


# -------------------------------------------------------------------- idle
def test_idle_needs_the_ignition_on_and_a_speed_below_moving() -> None:
    seconds = [0, 100, 200, 300, 400, 500, 600]
    speeds = [0, 0, 2, 4.9, 0, 5, 0]
    ignitions = [True, True, True, True, True, True, False]
    events = idle(track(seconds, speeds, ignitions), BASE)
    assert spans(events) == [(0, 500)]
    assert events[0].value == pytest.approx(500 / 60)
    assert events[0].limit_value == pytest.approx(5.0)


def test_idle_shorter_than_the_minimum_is_dropped() -> None:
    t = track([0, 100, 299], [0, 0, 30], [True, True, True])
    assert idle(t, BASE) == []
    assert spans(idle(track([0, 100, 300], [0, 0, 30], [True, True, True]), BASE)) == [(0, 300)]


def test_idle_with_the_ignition_unknown_or_off_is_not_idle() -> None:
    t = track([0, 200, 400, 600], [0, 0, 0, 0], [None, False, None, False])
    assert idle(t, BASE) == []


# ------------------------------------------------------------- after_hours
def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=SP).timestamp()


def hours_track(moments: list[float], ignitions: list[bool]) -> Track:
    n = len(moments)
    return Track.from_columns(moments, [30.0] * n, ignitions, [12.6] * n, [5.0] * n)


def test_after_hours_is_ignition_on_outside_the_local_calendar() -> None:
    # Tuesday 2025-03-04: 18:50, 19:00 (closed), 19:30, 20:00 off.
    moments = [local(2025, 3, 4, 18, 50), local(2025, 3, 4, 19), local(2025, 3, 4, 19, 30)]
    moments.append(local(2025, 3, 4, 20))
    events = after_hours(hours_track(moments, [True, True, True, False]), BASE)
    assert [(e.start_ts, e.end_ts) for e in events] == [(moments[1], moments[3])]
    assert events[0].value == pytest.approx(60.0)


def test_a_night_run_crossing_midnight_and_dawn_is_one_event() -> None:
    moments = [local(2025, 3, 4, 23, 30), local(2025, 3, 5, 0, 30), local(2025, 3, 5, 1, 20)]
    moments += [local(2025, 3, 5, 2, 10), local(2025, 3, 5, 7, 0), local(2025, 3, 5, 7, 30)]
    # 02:10 -> 07:00 is a gap (> 1 h): two runs; 07:00 is working time again.
    events = after_hours(hours_track(moments, [True] * 6), BASE)
    assert [(e.start_ts, e.end_ts) for e in events] == [(moments[0], moments[3])]


def test_weekends_and_holidays_have_no_working_hours() -> None:
    saturday = [local(2025, 3, 8, 10), local(2025, 3, 8, 10, 30)]
    assert len(after_hours(hours_track(saturday, [True, True]), BASE)) == 1
    tuesday = [local(2025, 3, 4, 10), local(2025, 3, 4, 10, 30)]
    assert after_hours(hours_track(tuesday, [True, True]), BASE) == []
    holiday = Thresholds(tz=SP, holidays=frozenset({date(2025, 3, 4)}))
    assert len(after_hours(hours_track(tuesday, [True, True]), holiday)) == 1


def test_working_hours_are_local_time_not_utc() -> None:
    # 21:30 UTC is 18:30 in São Paulo: still working time there.
    moments = [datetime(2025, 3, 4, 21, 30, tzinfo=UTC).timestamp()]
    moments.append(moments[0] + 60)
    assert after_hours(hours_track(moments, [True, True]), BASE) == []
    utc = Thresholds(tz=UTC)
    assert len(after_hours(hours_track(moments, [True, True]), utc)) == 1


# ------------------------------------------------------------- low_battery
def test_low_battery_for_ten_minutes_and_its_lowest_reading() -> None:
    seconds = [0, 300, 600, 700, 900]
    events = low_battery(track(seconds, batteries=[11.4, 11.0, 11.3, 12.5, 12.5]), BASE)
    assert spans(events) == [(0, 700)]
    assert events[0].value == pytest.approx(11.0)
    assert events[0].limit_value == 11.5
    assert low_battery(track([0, 300, 599], batteries=[11.0, 11.0, 12.0]), BASE) == []


def test_the_globalstar_indicator_is_not_volts() -> None:
    # 0 and 1 are the on/off indicator: never low volts, and skipped, not breaking a run.
    assert low_battery(track([0, 600, 1200], batteries=[0, 1, 0]), BASE) == []
    mixed = track([0, 300, 700, 800], batteries=[11.0, 1, 11.2, 12.0])
    assert spans(low_battery(mixed, BASE)) == [(0, 800)]
    assert low_battery(track([0, 600, 1200], batteries=[None, None, None]), BASE) == []


# --------------------------------------------------------------- late_data
def test_late_data_is_one_event_per_run_of_late_rows() -> None:
    minute = 60.0
    delays = [5, 40 * minute, 90 * minute, 31 * minute, 30 * minute, 45 * minute, None]
    events = late_data(track([0, 60, 120, 180, 240, 300, 360], delays=delays), BASE)
    assert spans(events) == [(60, 240), (300, 360)]
    assert [e.value for e in events] == [pytest.approx(90), pytest.approx(45)]
    assert events[0].limit_value == pytest.approx(30)


# ------------------------------------------------------------------ registry
def test_every_detector_is_registered_once_and_detect_runs_them_all() -> None:
    assert list(DETECTORS) == ["overspeed", "idle", "after_hours", "low_battery", "late_data"]
    assert KINDS[len(DETECTORS) :] == (
        "offline",
        "geofence_enter",
        "geofence_exit",
        "driving_time",
        "rest_time",
        "working_time",
    )
    t = track(
        [0, 60, 120, 180, 240, 600],
        [90, 95, 100, 0, 0, 0],
        [True] * 6,
        [11.0] * 6,
        [3600.0] * 6,
    )
    kinds = sorted({e.kind for e in detect(t, BASE)})
    assert kinds == ["idle", "late_data", "low_battery", "overspeed"]
    assert detect(track([]), BASE) == []


# ------------------------------------------------------------- parameters
def test_settings_give_the_thresholds(tmp_path: Path) -> None:
    settings = load_settings(
        _env_file=None,
        etrac_speed_limit_kmh=100,
        etrack_overspeed_min_s=30,
        etrack_late_data_after="45m",
        etrack_offline_after="90m",
        etrack_working_hours="mon-sat 06:00-20:00",
        etrack_holidays="2025-12-25, 2026-01-01",
    )
    params = EventParams.from_settings(settings)
    assert params.base.speed_limit_kmh == 100
    assert params.base.overspeed_min_s == 30
    assert params.base.late_data_after_s == 2700
    assert params.offline_after_s == 5400
    assert params.base.working_hours[5] == ((360, 1200),)
    assert params.base.working_hours[6] == ()
    assert params.base.holidays == {date(2025, 12, 25), date(2026, 1, 1)}
    assert params.for_vehicle("ABC1234", None) == (params.base, "settings")


def test_elapsed_and_working_hours_reject_what_they_cannot_read() -> None:
    assert parse_elapsed("2h") == 7200
    assert parse_elapsed("90") == 90
    for bad in ("2x", "0m", "-1h", ""):
        with pytest.raises(ValueError, match="expected a time like"):
            parse_elapsed(bad)
    assert parse_working_hours("fri-mon 08:00-09:00")[0] == ((480, 540),)
    assert parse_working_hours("none") == ((),) * 7
    for bad in ("mon-fri 19:00-07:00", "mon-fri 7h-19h", "xyz 07:00-19:00", "mon 07:00-24:01"):
        with pytest.raises(ValueError, match="expected working hours"):
            parse_working_hours(bad)
    with pytest.raises(SettingsError, match="ETRACK_OFFLINE_AFTER"):
        load_settings(_env_file=None, etrack_offline_after="soon")


def test_overrides_apply_fleet_then_vehicle_and_name_the_rule(tmp_path: Path) -> None:
    path = tmp_path / "events.toml"
    path.write_text(
        '[fleet."Entregas"]\nspeed_limit_kmh = 60\nidle_min_s = 120\n'
        '[vehicle."abc-1d23"]\nspeed_limit_kmh = 100\nholidays = ["2025-03-04"]\n'
        'late_data_after = "1h"\nworking_hours = "none"\n',
        encoding="utf-8",
    )
    settings = load_settings(_env_file=None, etrack_events_file=str(path))
    params = EventParams.from_settings(settings)
    fleet, rule = params.for_vehicle("XYZ9876", "Entregas")
    assert (fleet.speed_limit_kmh, fleet.idle_min_s, rule) == (60, 120, "fleet:Entregas")
    own, rule = params.for_vehicle("ABC1D23", "Entregas")
    assert rule == "vehicle:ABC1D23"
    assert (own.speed_limit_kmh, own.idle_min_s, own.late_data_after_s) == (100, 120, 3600)
    assert own.holidays == {date(2025, 3, 4)}
    assert own.working_hours == ((),) * 7
    assert params.for_vehicle("XYZ9876", "Other") == (params.base, "settings")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[fleet."A"]\nspeed_limit_kmh = "fast"\n',
            '[fleet."A"] speed_limit_kmh: expected a number',
        ),
        ('[fleet."A"]\nspeed = 3\n', "[fleet.\"A\"] unknown key 'speed'"),
        ('[vehicle."NOPE"]\nidle_min_s = 3\n', '[vehicle."NOPE"]: expected a plate'),
        ('[vehicle."ABC1234"]\nworking_hours = "sometimes"\n', "working_hours: expected hours"),
        ('[vehicle."ABC1234"]\nlow_battery_v = 0\n', "low_battery_v: expected a number of volts"),
        ("[other]\n", "unknown top-level key 'other'"),
        ("[fleet\n", "not valid TOML"),
    ],
)
def test_a_bad_overrides_file_is_one_line_naming_file_key_and_expectation(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "events.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_overrides(path)
    assert str(caught.value).startswith(f"events file {path}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_a_missing_overrides_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such file"):
        load_overrides(tmp_path / "absent.toml")


def test_a_track_given_out_of_order_is_read_in_time_order() -> None:
    t = Track.from_columns(
        [T0 + 60, T0, T0 + 120, T0 + 180],
        [95, 90, 100, 10],
        [True] * 4,
        [12.6] * 4,
        [5.0] * 4,
    )
    assert list(t.ts - T0) == [0, 60, 120, 180]
    assert spans(overspeed(t, BASE)) == [(0, 180)]


def test_working_hours_follow_a_dst_switch() -> None:
    # New York switched to summer time on 2025-03-09 at 02:00 local (07:00 UTC).
    ny = ZoneInfo("America/New_York")
    hours = Thresholds(tz=ny, working_hours=parse_working_hours("sun 06:00-07:00"))
    before = datetime(2025, 3, 9, 1, 30, tzinfo=ny).timestamp()  # 06:30 UTC, EST
    after = datetime(2025, 3, 9, 6, 30, tzinfo=ny).timestamp()  # 10:30 UTC, EDT
    t = hours_track([before, before + 60, after, after + 60], [True, False, True, False])
    # 01:30 is outside 06:00-07:00, 06:30 (summer time) inside it.
    assert [(e.start_ts, e.end_ts) for e in after_hours(t, hours)] == [(before, before + 60)]
