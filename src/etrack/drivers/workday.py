"""The drivers' legal working day (jornada), Lei 13.103/2015 and CTB art. 67-C.

Pure: one driver's activities (the detected trips attributed to them, on
whatever vehicles, in time order) and the limits -> their working days and
the violations. No database, no clock. docs/drivers.md says the same for
users; these are the exact rules the tests check:

- A **working day** (jornada) is a run of the driver's trips in which no gap
  between one trip's end and the next one's start reaches `day_gap_s`
  (default 6 h). Its `day` is the local date of its first trip, so a
  working day over midnight is one day, dated by its start.
- **Driving** is the trips' time in motion (`route_trips.moving_s`: a
  trip's time less the still part of its first and last sampling intervals;
  its whole time for trips stored before it existed). Time between two
  trips of one day is a **stop**; a stop
  of at least `break_min_s` (ETRACK_BREAK_MIN_S, default 30 min) is a
  **break**. Shorter stops (a traffic light, a delivery of minutes) do not
  interrupt the driving and are not counted as driving either.
- A **stretch** of driving runs from the day's start or the end of a break
  to the next break or the day's end; its driving time is the sum of its
  trips'. `longest_driving_s` is the longest stretch's.
- **Stopped with the engine on** (`idle_s`) is the engine-on time of the
  vehicle's stops between two of the day's trips (route_stops), at most the
  gap between them.
- **Working time** is first to last activity minus the breaks (waiting with
  the vehicle, loading and unloading count as work: Lei 13.103 art. 235-C
  §§ 1, 8 and 9); **overtime** is what exceeds `workday_s` (8 h).
- **Rest before** the day is the gap since the driver's previous working
  day's last activity (None for the first known day).

Violations (each names its rule, article, moment and excess):

- `uninterrupted_driving` (CTB art. 67-C caput): a stretch drives more than
  `max_driving_s` (5 h 30); at the moment its driving passed the limit;
  excess = the stretch's driving beyond it;
- `rest_in_driving` (CTB art. 67-C § 1): a stretch drives more than
  `driving_window_s` (6 h for cargo, 4 h for passengers: the fleet's) with
  no break: the 30 minutes of rest within the window were not taken; at
  the moment the window was exceeded; excess = driving beyond the window;
- `daily_rest` (CTB art. 67-C § 3; CLT art. 235-C § 3): less than
  `daily_rest_s` (11 h, not split: STF ADI 5322) since the previous
  working day; at the day's start; excess = the rest missing;
- `working_time` (CLT art. 235-C caput): working time above `workday_s`
  plus `overtime_s` (2 h, or 4 h under a collective agreement: the
  fleet's); at the moment it passed; excess = the time beyond.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Literal

__all__ = [
    "ARTICLES",
    "Activity",
    "DriverDay",
    "JornadaLimits",
    "Violation",
    "ViolationRule",
    "working_days",
]

ViolationRule = Literal["uninterrupted_driving", "rest_in_driving", "daily_rest", "working_time"]

ARTICLES: dict[str, str] = {
    "uninterrupted_driving": "CTB art. 67-C, caput",
    "rest_in_driving": "CTB art. 67-C, § 1º",
    "daily_rest": "CTB art. 67-C, § 3º; CLT art. 235-C, § 3º",
    "working_time": "CLT art. 235-C, caput",
}


@dataclass(frozen=True, slots=True)
class JornadaLimits:
    """The thresholds, in seconds; the defaults are the law's."""

    break_min_s: float = 1800.0
    max_driving_s: float = 19800.0
    driving_window_s: float = 21600.0
    """6 h for cargo; 4 h (14400) for a passenger fleet."""
    daily_rest_s: float = 39600.0
    workday_s: float = 28800.0
    overtime_s: float = 7200.0
    """2 h; 4 h (14400) under a collective agreement."""
    day_gap_s: float = 21600.0


@dataclass(frozen=True, slots=True)
class Activity:
    """One trip the driver drove (a route_trips row)."""

    placa: str
    start: datetime
    end: datetime
    source: str = "provider"
    """How the trip got its driver: provider or assignment."""
    moving_s: float | None = None
    """The trip's time in motion (route_trips.moving_s); None: its whole time."""
    idle_after_s: float = 0.0
    """Engine on while stopped in the stop that follows the trip on its vehicle
    (route_stops.ignition_on_s): counted for the day when the driver's next
    trip comes after that stop."""

    @property
    def span_s(self) -> float:
        return max(0.0, (self.end - self.start).total_seconds())

    @property
    def driving_s(self) -> float:
        return self.span_s if self.moving_s is None else min(self.moving_s, self.span_s)


@dataclass(frozen=True, slots=True)
class Violation:
    rule: ViolationRule
    at: datetime
    excess_s: float
    limit_s: float
    placa: str
    """The vehicle driven at that moment (the events table's key)."""

    @property
    def article(self) -> str:
        return ARTICLES[self.rule]

    def record(self, tz: tzinfo) -> dict[str, object]:
        return {
            "rule": self.rule,
            "article": self.article,
            "at": self.at.astimezone(tz).isoformat(),
            "excess_s": round(self.excess_s, 1),
            "limit_s": self.limit_s,
            "placa": self.placa,
        }


@dataclass(frozen=True, slots=True)
class DriverDay:
    driver_id: str
    driver_name: str
    day: date
    start: datetime
    end: datetime
    driving_s: float
    breaks_s: float
    working_s: float
    overtime_s: float
    longest_driving_s: float
    rest_before_s: float | None
    activities: tuple[Activity, ...]
    breaks: tuple[tuple[datetime, datetime], ...]
    violations: tuple[Violation, ...] = field(default=())
    idle_s: float = 0.0
    """Stopped with the engine on between two of the day's trips."""

    @property
    def plates(self) -> list[str]:
        return list(dict.fromkeys(a.placa for a in self.activities))

    def record(self, tz: tzinfo) -> dict[str, object]:
        """One driver-day as `etrack drivers report --format json` and the API show it."""
        return {
            "driver_id": self.driver_id,
            "driver_name": self.driver_name,
            "day": self.day.isoformat(),
            "start": self.start.astimezone(tz).isoformat(),
            "end": self.end.astimezone(tz).isoformat(),
            "driving_s": round(self.driving_s, 1),
            "working_s": round(self.working_s, 1),
            "breaks_s": round(self.breaks_s, 1),
            "idle_s": round(self.idle_s, 1),
            "overtime_s": round(self.overtime_s, 1),
            "longest_driving_s": round(self.longest_driving_s, 1),
            "rest_before_s": None if self.rest_before_s is None else round(self.rest_before_s, 1),
            "plates": self.plates,
            "violations": [v.record(tz) for v in self.violations],
        }


def working_days(
    driver_id: str,
    driver_name: str,
    activities: Sequence[Activity],
    limits: JornadaLimits,
    tz: tzinfo,
    previous_end: datetime | None = None,
) -> list[DriverDay]:
    """The driver's working days over these activities (any order; two trips
    overlapping in time count once), oldest first. `previous_end`: when the
    driver's last activity before these ended (the first day's rest before)."""
    ordered = sorted(activities, key=lambda a: (a.start, a.end))
    days: list[list[Activity]] = []
    for activity in ordered:
        if days and (activity.start - days[-1][-1].end).total_seconds() < limits.day_gap_s:
            days[-1].append(activity)
        else:
            days.append([activity])
    if days and previous_end is not None:
        gap = (days[0][0].start - previous_end).total_seconds()
        if gap < limits.day_gap_s:
            # The activity before belongs to the same working day, whose
            # start is outside what was read: its rest is not known here.
            previous_end = None
    found: list[DriverDay] = []
    for trips in days:
        found.append(_day(driver_id, driver_name, trips, previous_end, limits, tz))
        previous_end = max(a.end for a in trips)
    return found


def _day(
    driver_id: str,
    driver_name: str,
    trips: list[Activity],
    previous_end: datetime | None,
    limits: JornadaLimits,
    tz: tzinfo,
) -> DriverDay:
    start = trips[0].start
    end = max(a.end for a in trips)
    breaks: list[tuple[datetime, datetime]] = []
    stretches: list[list[Activity]] = [[trips[0]]]
    reached = trips[0].end
    for trip in trips[1:]:
        gap = (trip.start - reached).total_seconds()
        if gap >= limits.break_min_s:
            breaks.append((reached, trip.start))
            stretches.append([trip])
        else:
            stretches[-1].append(trip)
        reached = max(reached, trip.end)
    breaks_s = sum((b - a).total_seconds() for a, b in breaks)
    driving_s = sum(_driven(stretch) for stretch in stretches)
    working_s = (end - start).total_seconds() - breaks_s
    violations: list[Violation] = []
    rest_before = None if previous_end is None else (start - previous_end).total_seconds()
    if rest_before is not None and rest_before < limits.daily_rest_s:
        violations.append(
            Violation(
                "daily_rest",
                start,
                limits.daily_rest_s - rest_before,
                limits.daily_rest_s,
                trips[0].placa,
            )
        )
    for stretch in stretches:
        driven = _driven(stretch)
        for rule, limit in (
            ("uninterrupted_driving", limits.max_driving_s),
            ("rest_in_driving", limits.driving_window_s),
        ):
            if driven > limit:
                at, placa = _when_driven(stretch, limit)
                violations.append(Violation(rule, at, driven - limit, limit, placa))  # type: ignore[arg-type]
    allowed = limits.workday_s + limits.overtime_s
    if working_s > allowed:
        at, placa = _when_worked(trips, breaks, allowed)
        violations.append(Violation("working_time", at, working_s - allowed, allowed, placa))
    violations.sort(key=lambda v: (v.at, v.rule))
    # The engine idling in a stop between two trips of the day: capped by the
    # gap, since the next trip may be on another vehicle.
    idle_s = sum(
        min(trip.idle_after_s, max(0.0, (after.start - trip.end).total_seconds()))
        for trip, after in pairwise(trips)
    )
    return DriverDay(
        idle_s=idle_s,
        driver_id=driver_id,
        driver_name=driver_name,
        day=start.astimezone(tz).date(),
        start=start,
        end=end,
        driving_s=driving_s,
        breaks_s=breaks_s,
        working_s=working_s,
        overtime_s=max(0.0, working_s - limits.workday_s),
        longest_driving_s=max(_driven(s) for s in stretches),
        rest_before_s=rest_before,
        activities=tuple(trips),
        breaks=tuple(breaks),
        violations=tuple(violations),
    )


def _driven(stretch: Sequence[Activity]) -> float:
    """Driving time of a stretch: its trips' time in motion, the part of a
    trip overlapping an earlier one not counted twice."""
    return sum(driven for driven, _, _ in _pieces(stretch))


def _pieces(stretch: Sequence[Activity]) -> list[tuple[float, datetime, Activity]]:
    """(driving seconds, where the trip's own time begins, the trip) of each
    trip of a stretch, overlaps cut off."""
    pieces: list[tuple[float, datetime, Activity]] = []
    reached: datetime | None = None
    for trip in stretch:
        begin = trip.start if reached is None else max(trip.start, reached)
        own = max(0.0, (trip.end - begin).total_seconds())
        share = own / trip.span_s if trip.span_s > 0 else 0.0
        pieces.append((trip.driving_s * share, begin, trip))
        reached = trip.end if reached is None else max(reached, trip.end)
    return pieces


def _when_driven(stretch: Sequence[Activity], limit_s: float) -> tuple[datetime, str]:
    """The moment the stretch's driving passed limit_s (within a trip, its
    motion taken as even), and the vehicle then."""
    total = 0.0
    for driven, begin, trip in _pieces(stretch):
        if driven > 0 and total + driven > limit_s:
            own = (trip.end - begin).total_seconds()
            return begin + timedelta(seconds=own * (limit_s - total) / driven), trip.placa
        total += driven
    return stretch[-1].end, stretch[-1].placa


def _when_worked(
    trips: Sequence[Activity], breaks: Sequence[tuple[datetime, datetime]], limit_s: float
) -> tuple[datetime, str]:
    """The moment the working time (the clock minus the breaks) passed limit_s."""
    start = trips[0].start
    moment = start + timedelta(seconds=limit_s)
    for begin, finish in breaks:
        if begin < moment:
            moment += finish - begin
    placa = trips[0].placa
    for trip in trips:
        if trip.start <= moment:
            placa = trip.placa
    return moment, placa
