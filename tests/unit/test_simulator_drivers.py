"""The simulator's long-haul profile, its drivers and their ground truth
(etrack.simulator.longhaul, etrack.simulator.drivers): no database."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from etrack.drivers import workday
from etrack.simulator.config import FleetConfig
from etrack.simulator.drivers import true_driver_days, true_driver_trips
from etrack.simulator.fleet import Fleet

TZ = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2025, 3, 12, 12, 0, tzinfo=TZ)
DAYS = [date(2025, 3, 3) + timedelta(days=k) for k in range(4)]
RULES = {"uninterrupted_driving", "rest_in_driving", "daily_rest", "working_time"}


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return Fleet(FleetConfig(seed=2024, vehicles=40, now=NOW))


def test_the_profile_is_deterministic(fleet: Fleet) -> None:
    again = Fleet(FleetConfig(seed=2024, vehicles=40, now=NOW))
    assert [v for v in fleet.vehicles() if v.long_haul] == [
        v for v in again.vehicles() if v.long_haul
    ]
    assert len([v for v in fleet.vehicles() if v.long_haul]) == 4
    assert true_driver_days(fleet, DAYS) == true_driver_days(again, DAYS)
    for plate in fleet.plates():
        assert fleet.trip_summaries(plate, DAYS[1]) == again.trip_summaries(plate, DAYS[1])
    assert not [
        v for v in Fleet(FleetConfig(vehicles=40, long_haul_share=0)).vehicles() if v.long_haul
    ]
    with pytest.raises(ValueError, match="long_haul_share"):
        FleetConfig(long_haul_share=1.5)


def test_every_violation_occurs_and_most_days_have_none(fleet: Fleet) -> None:
    days = true_driver_days(fleet, DAYS)
    counts = Counter(rule for day in days for rule, _ in day.violations)
    assert set(counts) == RULES
    assert sum(1 for day in days if day.violations) < len(days) / 3
    # Every rule on the long-haul vehicles alone, too, and compliant long-haul days.
    long_haul = {v.placa for v in fleet.vehicles() if v.long_haul}
    theirs = [day for day in days if set(day.plates) <= long_haul]
    assert {rule for day in theirs for rule, _ in day.violations} == RULES
    assert any(not day.violations for day in theirs)
    for day in days:
        assert all(day.start <= at <= day.end for _, at in day.violations)
        assert day.driving_s > 0


def test_any_three_days_show_every_violation(fleet: Fleet) -> None:
    for first in range(7):
        span = [date(2025, 3, 3) + timedelta(days=first + k) for k in range(3)]
        rules = {rule for day in true_driver_days(fleet, span) for rule, _ in day.violations}
        assert rules == RULES, span


def test_a_driver_never_drives_two_vehicles_at_once(fleet: Fleet) -> None:
    for driver, trips in true_driver_trips(fleet, DAYS).items():
        if driver is None:
            continue
        ordered = sorted(trips, key=lambda a: a.start)
        for before, after in itertools.pairwise(ordered):
            assert before.end <= after.start, (driver, before, after)


def test_drivers_change_between_days_and_some_trips_have_none(fleet: Fleet) -> None:
    trips = true_driver_trips(fleet, DAYS)
    assert trips.get(None)
    for vehicle in fleet.vehicles():
        if not vehicle.long_haul:
            continue
        drivers = {
            fleet.driver_at(vehicle.placa, trip.ignition_on)
            for day in DAYS
            for trip in fleet.true_trips(vehicle.placa, day)
        }
        assert drivers <= set(vehicle.crew)
    crews = {member for v in fleet.vehicles() for member in v.crew}
    assert len(crews) == 8
    assert any(any(c in name for c in "ãâáéêíóôõúç") for name, _ in crews)
    # wire.trip_summary emits the day's driver; empty fields when there is none.
    seen_empty = seen_crew = False
    for plate in fleet.plates():
        vehicle = fleet.vehicle(plate)
        for day in DAYS:
            for summary, trip in zip(
                fleet.trip_summaries(plate, day), fleet.true_trips(plate, day), strict=True
            ):
                driver = fleet.driver_at(plate, trip.ignition_on)
                assert (summary["condutor_nome"], summary["condutor_identificacao"]) == (
                    driver or ("", "")
                )
                seen_empty |= driver is None
                seen_crew |= vehicle.long_haul
    assert seen_empty
    assert seen_crew


def test_a_working_day_runs_past_midnight(fleet: Fleet) -> None:
    days = true_driver_days(fleet, DAYS)
    over = [day for day in days if day.end.astimezone(TZ).date() > day.day]
    assert over
    for day in over:
        assert day.start.astimezone(TZ).date() == day.day


def test_long_haul_plans_keep_the_simulators_invariants(fleet: Fleet) -> None:
    for vehicle in fleet.vehicles():
        if not vehicle.long_haul:
            continue
        for day in DAYS:
            trips = fleet.true_trips(vehicle.placa, day)
            total = sum(t.distance_m for t in trips)
            assert total == pytest.approx(fleet.day_total_km(vehicle.placa, day) * 1000, abs=1)
            assert fleet.true_distance_m(vehicle.placa, day) == pytest.approx(total, abs=1)
            for trip in trips:
                assert trip.ignition_on < trip.start < trip.end < trip.ignition_off
                assert trip.ignition_on.astimezone(TZ).date() == day
                assert trip.ignition_off.astimezone(TZ).date() == day
            positions = fleet.expected_positions(vehicle.placa, day)
            following = fleet.expected_positions(vehicle.placa, day + timedelta(days=1))
            assert positions[-1].odometro == pytest.approx(following[0].odometro, abs=0.011)
            assert positions[-1].horimetro == pytest.approx(following[0].horimetro, abs=0.011)


def test_the_ground_truth_follows_etracks_rules(fleet: Fleet) -> None:
    """The simulator writes the rules again (an independent oracle): the same
    trips through etrack.drivers.workday give the same days."""
    ours = true_driver_days(fleet, DAYS)
    theirs = []
    for driver, trips in sorted(
        true_driver_trips(fleet, DAYS).items(), key=lambda item: item[0] or ("", "")
    ):
        if driver is None:
            continue
        activities = [workday.Activity(a.placa, a.start, a.end) for a in trips]
        theirs.extend(
            workday.working_days(driver[1], driver[0], activities, workday.JornadaLimits(), TZ)
        )
    assert len(ours) == len(theirs)
    for mine, found in zip(ours, theirs, strict=True):
        assert (mine.driver_id, mine.day, mine.start, mine.end) == (
            found.driver_id, found.day, found.start, found.end,
        )  # fmt: skip
        assert mine.driving_s == pytest.approx(found.driving_s)
        assert mine.working_s == pytest.approx(found.working_s)
        assert mine.longest_driving_s == pytest.approx(found.longest_driving_s)
        assert mine.rest_before_s == found.rest_before_s
        assert list(mine.plates) == found.plates
        assert mine.violations == tuple((v.rule, v.at) for v in found.violations)
