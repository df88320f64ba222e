"""Ground truth of the drivers' working days (etrack issue 18).

Built from the PLAN, never from positions: each planned trip (first to last
movement, as `Fleet.true_trips` gives it) of the given local days goes to the
driver the provider names for it (`Fleet.driver_at`, the vehicle's fixed
driver or a long-haul crew member; a trip without a driver goes to nobody,
"sem motorista"), and each driver's trips go through the rules of
`etrack.drivers.workday` (its docstring: working day, break, stretch,
working time, the four violations) with the default (cargo, the law's)
limits. The rules are written again here, not imported: the simulator is an
independent oracle (import-linter keeps it apart from etrack.drivers), and
tests/unit/test_simulator_drivers.py checks both give the same days. Only
trips of `days` count, as etrack sees only the routes of the days it
computed: the first working day of each driver has no rest before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from etrack.simulator.fleet import Fleet

__all__ = ["Limits", "TrueActivity", "TrueDriverDay", "true_driver_days", "true_driver_trips"]


@dataclass(frozen=True)
class Limits:
    """The thresholds (s); the defaults are the law's, as etrack's settings."""

    break_min_s: float = 1800.0
    max_driving_s: float = 19800.0
    driving_window_s: float = 21600.0
    daily_rest_s: float = 39600.0
    workday_s: float = 28800.0
    overtime_s: float = 7200.0
    day_gap_s: float = 21600.0


@dataclass(frozen=True)
class TrueActivity:
    """One planned trip: first to last movement."""

    placa: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class TrueDriverDay:
    driver_id: str
    driver_name: str
    day: date
    """Local date of the working day's first trip."""
    driving_s: float
    violations: tuple[tuple[str, datetime], ...]
    """(rule, moment), in time order."""
    plates: tuple[str, ...]
    start: datetime
    end: datetime
    working_s: float
    longest_driving_s: float
    rest_before_s: float | None


def true_driver_trips(
    fleet: Fleet, days: Iterable[date]
) -> dict[tuple[str, str] | None, list[TrueActivity]]:
    """(driver name, identification) -> the planned trips they drove over `days`;
    the key None holds the trips without a driver."""
    found: dict[tuple[str, str] | None, list[TrueActivity]] = {}
    for day in days:
        for plate in fleet.plates():
            for trip in fleet.true_trips(plate, day):
                driver = fleet.driver_at(plate, trip.ignition_on)
                found.setdefault(driver, []).append(TrueActivity(plate, trip.start, trip.end))
    return found


def true_driver_days(
    fleet: Fleet, days: Iterable[date], limits: Limits | None = None
) -> list[TrueDriverDay]:
    """Every driver's working days over the planned trips of `days`, by driver, oldest first."""
    limits = limits or Limits()
    result: list[TrueDriverDay] = []
    trips = true_driver_trips(fleet, sorted(set(days)))
    for driver, activities in sorted(trips.items(), key=lambda item: item[0] or ("", "")):
        if driver is None:
            continue
        name, identification = driver
        driver_id = identification.strip() or name
        result.extend(working_days(driver_id, name, activities, limits, fleet.tz))
    return result


def working_days(
    driver_id: str,
    driver_name: str,
    activities: Sequence[TrueActivity],
    limits: Limits,
    tz: tzinfo,
) -> list[TrueDriverDay]:
    """One driver's working days, by the rules of etrack.drivers.workday."""
    ordered = sorted(activities, key=lambda a: (a.start, a.end))
    groups: list[list[TrueActivity]] = []
    for activity in ordered:
        if groups and (activity.start - groups[-1][-1].end).total_seconds() < limits.day_gap_s:
            groups[-1].append(activity)
        else:
            groups.append([activity])
    found: list[TrueDriverDay] = []
    previous_end: datetime | None = None
    for group in groups:
        found.append(_day(driver_id, driver_name, group, previous_end, limits, tz))
        previous_end = max(a.end for a in group)
    return found


def _day(
    driver_id: str,
    driver_name: str,
    trips: list[TrueActivity],
    previous_end: datetime | None,
    limits: Limits,
    tz: tzinfo,
) -> TrueDriverDay:
    start = trips[0].start
    end = max(a.end for a in trips)
    breaks: list[tuple[datetime, datetime]] = []
    stretches: list[list[TrueActivity]] = [[trips[0]]]
    reached = trips[0].end
    for trip in trips[1:]:
        if (trip.start - reached).total_seconds() >= limits.break_min_s:
            breaks.append((reached, trip.start))
            stretches.append([trip])
        else:
            stretches[-1].append(trip)
        reached = max(reached, trip.end)
    working_s = (end - start).total_seconds() - sum((b - a).total_seconds() for a, b in breaks)
    violations: list[tuple[str, datetime]] = []
    rest_before = None if previous_end is None else (start - previous_end).total_seconds()
    if rest_before is not None and rest_before < limits.daily_rest_s:
        violations.append(("daily_rest", start))
    for stretch in stretches:
        for rule, limit in (
            ("uninterrupted_driving", limits.max_driving_s),
            ("rest_in_driving", limits.driving_window_s),
        ):
            moment = _passed(stretch, limit)
            if moment is not None:
                violations.append((rule, moment))
    allowed = limits.workday_s + limits.overtime_s
    if working_s > allowed:
        moment = start + timedelta(seconds=allowed)
        for begin, finish in breaks:
            if begin < moment:
                moment += finish - begin
        violations.append(("working_time", moment))
    violations.sort(key=lambda v: (v[1], v[0]))
    return TrueDriverDay(
        driver_id=driver_id,
        driver_name=driver_name,
        day=start.astimezone(tz).date(),
        driving_s=sum(_driven(s) for s in stretches),
        violations=tuple(violations),
        plates=tuple(dict.fromkeys(a.placa for a in trips)),
        start=start,
        end=end,
        working_s=working_s,
        longest_driving_s=max(_driven(s) for s in stretches),
        rest_before_s=rest_before,
    )


def _spans(stretch: Sequence[TrueActivity]) -> list[tuple[datetime, float]]:
    """(begin, seconds) of each trip's driving, an overlap counted once."""
    spans: list[tuple[datetime, float]] = []
    reached: datetime | None = None
    for trip in stretch:
        begin = trip.start if reached is None else max(trip.start, reached)
        spans.append((begin, max(0.0, (trip.end - begin).total_seconds())))
        reached = trip.end if reached is None else max(reached, trip.end)
    return spans


def _driven(stretch: Sequence[TrueActivity]) -> float:
    return sum(seconds for _, seconds in _spans(stretch))


def _passed(stretch: Sequence[TrueActivity], limit_s: float) -> datetime | None:
    """The moment the stretch's driving went past limit_s; None if it never did."""
    if _driven(stretch) <= limit_s:
        return None
    total = 0.0
    for begin, seconds in _spans(stretch):
        if total + seconds > limit_s:
            return begin + timedelta(seconds=limit_s - total)
        total += seconds
    return None  # pragma: no cover (the sum passed the limit)
