"""The legal working day (etrack.drivers.workday): working days split by
long gaps and dated by their start (over midnight too), breaks from 30
minutes, stretches, working time, rest before, and each violation at its
moment and by its excess; identities and CPF check digits
(etrack.drivers.identity)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from etrack.drivers.identity import alias_of, check_cpf, driver_key, normalized_name
from etrack.drivers.workday import Activity, JornadaLimits, working_days
from etrack.errors import UsageError

TZ = ZoneInfo("America/Sao_Paulo")
DAY = datetime(2025, 3, 4, 0, 0, tzinfo=TZ)
LAW = JornadaLimits()


def at(hours: float, day: int = 0) -> datetime:
    return DAY + timedelta(days=day, hours=hours)


def trip(start_h: float, end_h: float, day: int = 0, placa: str = "ABC1D23") -> Activity:
    return Activity(placa, at(start_h, day), at(end_h, day))


def days_of(*trips: Activity, limits: JornadaLimits = LAW):  # type: ignore[no-untyped-def]
    return working_days("D1", "João Conceição", trips, limits, TZ)


def rules(day) -> list[tuple[str, datetime, float]]:  # type: ignore[no-untyped-def]
    return [(v.rule, v.at, round(v.excess_s)) for v in day.violations]


def test_a_compliant_day_with_a_lunch_break_and_short_stops() -> None:
    # 08:00-10:00, 10 min stop, 10:10-12:00, lunch 12:00-13:00, 13:00-17:00.
    (day,) = days_of(trip(8, 10), trip(10 + 1 / 6, 12), trip(13, 17))
    assert day.day == DAY.date()
    assert day.driving_s == pytest.approx((2 + 11 / 6 + 4) * 3600)
    assert day.breaks_s == 3600  # the 10-minute stop is not a break
    assert day.working_s == 8 * 3600
    assert day.overtime_s == 0
    assert day.longest_driving_s == 4 * 3600  # the afternoon's stretch
    assert day.rest_before_s is None
    assert day.violations == ()


def test_uninterrupted_driving_past_5h30_and_rest_past_6h() -> None:
    # 06:00-12:30 with stops of 20 min only: one stretch of 6 h 10 driving.
    (day,) = days_of(trip(6, 8), trip(8 + 1 / 3, 10.5), trip(10.5 + 1 / 3, 12.5))
    assert day.longest_driving_s == pytest.approx(5.8333 * 3600, abs=2)
    # 5 h 30 of driving reached at 12:10 (2 h + 2 h 10 + 1 h 20), 6 h never.
    assert rules(day) == [("uninterrupted_driving", at(12 + 1 / 6), round(1 / 3 * 3600))]
    longer = days_of(trip(6, 13))[0]
    assert rules(longer) == [
        ("uninterrupted_driving", at(11.5), 5400),
        ("rest_in_driving", at(12), 3600),
    ]
    # A passenger fleet's window is 4 h.
    passenger = JornadaLimits(driving_window_s=14400)
    assert [r for r, _, _ in rules(days_of(trip(6, 10.5), limits=passenger)[0])] == [
        "rest_in_driving"
    ]


def test_exactly_at_a_limit_is_not_past_it() -> None:
    assert days_of(trip(6, 11.5))[0].violations == ()
    assert days_of(trip(6, 10), trip(10.5, 14.5))[0].working_s == 8 * 3600


def test_daily_rest_below_11_hours_between_two_working_days() -> None:
    # Ends 23:00, starts again 07:00: 8 h of rest, a new working day (gap >= 6 h).
    first, second = days_of(trip(15, 18), trip(19, 23), trip(7, 12, day=1))
    assert first.day == DAY.date()
    assert second.day == (DAY + timedelta(days=1)).date()
    assert second.rest_before_s == 8 * 3600
    assert rules(second) == [("daily_rest", at(7, 1), 3 * 3600)]
    assert first.violations == ()


def test_working_time_above_10_hours_and_a_day_over_midnight() -> None:
    # 18:00-22:00, break 22:00-23:00, 23:00-03:00 (+1), 03:40-07:00: 12 h 20 of work.
    (day,) = days_of(trip(18, 22), trip(23, 27), trip(27 + 2 / 3, 31))
    assert day.day == DAY.date()  # dated by its start
    assert day.end == at(7, 1)
    assert day.breaks_s == 3600 + 40 * 60
    assert day.working_s == 13 * 3600 - 100 * 60
    assert day.overtime_s == day.working_s - 8 * 3600
    found = rules(day)
    # 10 h of work: 18:00 + 10 h + the 1 h break + the 40 min break = 05:40.
    assert ("working_time", at(5 + 2 / 3, 1), round(day.working_s - 36000)) in found
    # Agreement fleets allow 4 h of overtime: 11 h 20 is within 12 h.
    agreement = JornadaLimits(overtime_s=14400)
    (day,) = days_of(trip(18, 22), trip(23, 27), trip(27 + 2 / 3, 31), limits=agreement)
    assert day.violations == ()


def test_violations_name_their_article_and_vehicle() -> None:
    (day,) = days_of(trip(6, 9, placa="AAA1A11"), trip(9.1, 13, placa="BBB2B22"))
    by_rule = {v.rule: v for v in day.violations}
    assert by_rule["uninterrupted_driving"].article == "CTB art. 67-C, caput"
    assert by_rule["uninterrupted_driving"].placa == "BBB2B22"
    assert day.plates == ["AAA1A11", "BBB2B22"]
    record = day.record(TZ)
    assert record["day"] == "2025-03-04"
    assert record["violations"][0]["at"].endswith("-03:00")


def test_overlapping_trips_count_once() -> None:
    (day,) = days_of(trip(8, 10), trip(9, 11, placa="XYZ9Z99"))
    assert day.driving_s == 3 * 3600


def test_identity_and_cpf() -> None:
    assert driver_key(" 0042 ", "Ana") == "0042"
    assert driver_key(None, "  joão   da silva ") == "JOÃO DA SILVA"
    assert driver_key("", "") is None
    assert alias_of(None, " João ") == "name:João"
    assert alias_of("77", "João") == "id:77"
    assert normalized_name("Jo\u0061\u0303o") == "JOÃO"  # NFD -> NFC
    assert check_cpf("529.982.247-25") == "52998224725"
    for bad, reason in (
        ("529.982.247-24", "check digits"),
        ("111.111.111-11", "repeated digit"),
        ("1234", "11 digits"),
    ):
        with pytest.raises(UsageError, match=reason):
            check_cpf(bad)


def test_the_first_days_rest_comes_from_the_activity_before_the_window() -> None:
    (day,) = working_days(
        "D1", "João", [trip(7, 12)], LAW, TZ, previous_end=at(-1)
    )  # 23:00 the day before: 8 h of rest
    assert day.rest_before_s == 8 * 3600
    assert [v.rule for v in day.violations] == ["daily_rest"]
    # Less than a working-day gap before: the same working day began earlier,
    # outside what was read: its rest is unknown, not a violation.
    (day,) = working_days("D1", "João", [trip(7, 12)], LAW, TZ, previous_end=at(5))
    assert day.rest_before_s is None
    assert day.violations == ()


def test_engine_on_while_stopped_between_trips_is_capped_by_the_gap() -> None:
    first = Activity("ABC1D23", at(8), at(10), idle_after_s=900)
    second = Activity("ABC1D23", at(10 + 1 / 12), at(12), idle_after_s=1200)
    # 15 min of idling declared after the first trip, only 5 min until the
    # next: 300 s; the last trip's idling is after the day.
    (day,) = days_of(first, second)
    assert day.idle_s == 300
