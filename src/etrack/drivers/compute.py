"""Drivers over the stored data: who they are (from the provider's trips),
which detected trip each drove, their working days, and the violations as
events.

- `sync_drivers`: every driver the provider's trips name and etrack does
  not know yet becomes a driver (id by etrack.drivers.identity) with its
  alias; idempotent.
- `attribute_drivers`: each detected trip (route_trips) of some plates and
  days gets the driver of the provider trip overlapping it most, else of
  the manual assignment overlapping it most, else none ("sem motorista");
  run after every routes computation, so it survives `routes compute
  --force` (the attribution is a function of the trips and assignments).
- `driver_days`: the working days (etrack.drivers.workday) of the drivers
  whose working day starts on some local days; a day's rest before is read
  from the activities before it.
- `compute_violation_events`: the violations of the working days starting
  on some local days, stored as events (`driving_time`, `rest_time`,
  `working_time`; rule `driver:ID`), idempotently.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import NamedTuple

from etrack.config import Settings
from etrack.dates import days_span as day_bounds
from etrack.drivers.ficha import Ficha
from etrack.drivers.identity import driver_key, normalized_name
from etrack.drivers.workday import Activity, DriverDay, JornadaLimits, Violation, working_days
from etrack.errors import UsageError
from etrack.store import db
from etrack.store import drivers as store
from etrack.store import events as event_store

__all__ = [
    "VIOLATION_KINDS",
    "DriversSummary",
    "JornadaParams",
    "assign_period",
    "attribute_drivers",
    "compute_drivers",
    "compute_violation_events",
    "day_bounds",
    "driver_days",
    "month_ficha",
    "sync_drivers",
]

logger = logging.getLogger("etrack.drivers")

VIOLATION_KINDS: dict[str, str] = {
    "uninterrupted_driving": "driving_time",
    "rest_in_driving": "rest_time",
    "daily_rest": "rest_time",
    "working_time": "working_time",
}
"""Violation rule -> the event kind the alert rules see."""
EVENT_KINDS = tuple(dict.fromkeys(VIOLATION_KINDS.values()))
VIOLATION_NAMESPACE = uuid.UUID("2a7f1c9e-8b3d-5e6f-9c1a-4d2b7e8f0a35")
"""Fixed forever: the ids of the violation events."""
LOOKBACK = timedelta(days=2)
"""How far before a range its working days' activities are read: the
previous day's end (the rest before) and a working day begun the day before."""


@dataclass(frozen=True, slots=True)
class JornadaParams:
    base: JornadaLimits = field(default_factory=JornadaLimits)
    passenger_fleets: frozenset[str] = frozenset()
    agreement_fleets: frozenset[str] = frozenset()
    agreement_overtime_s: float = 14400.0
    passenger_window_s: float = 14400.0
    tz: tzinfo = UTC

    @classmethod
    def from_settings(cls, settings: Settings) -> JornadaParams:
        return cls(
            base=JornadaLimits(
                break_min_s=settings.etrack_break_min_s,
                max_driving_s=settings.etrack_max_driving_s,
                driving_window_s=settings.etrack_driving_window_s,
                daily_rest_s=settings.etrack_daily_rest_s,
                workday_s=settings.etrack_workday_s,
                overtime_s=settings.etrack_overtime_s,
                day_gap_s=settings.etrack_workday_gap_s,
            ),
            passenger_fleets=frozenset(_names(settings.etrack_passenger_fleets)),
            agreement_fleets=frozenset(_names(settings.etrack_agreement_fleets)),
            tz=settings.tz,
        )

    def limits_for(self, frota: str | None) -> JornadaLimits:
        """A fleet's limits: passengers have a 4 h driving window; a fleet under
        a collective agreement 4 h of overtime."""
        limits = self.base
        if frota is not None and frota in self.passenger_fleets:
            limits = replace(limits, driving_window_s=self.passenger_window_s)
        if frota is not None and frota in self.agreement_fleets:
            limits = replace(limits, overtime_s=self.agreement_overtime_s)
        return limits


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def sync_drivers(conn: db.Conn, plates: Sequence[str], first_day: date, last_day: date) -> int:
    """New drivers (and aliases) from these plates' provider trips of the
    days; how many aliases were new."""
    unknown = store.unknown_aliases(conn, plates, first_day, last_day)
    with conn.transaction():
        for alias in unknown:
            key = driver_key(alias.identificacao, alias.nome)
            if key is None:
                continue
            name = normalized_name(alias.nome or "") or key
            # Shown as the provider spells it (accents, case); the key is normalized.
            display = " ".join((alias.nome or "").split()) or name
            store.add_driver(conn, key, display, alias.frota, alias.alias)
    return len(unknown)


class AttributionSummary(NamedTuple):
    with_driver: int
    without_driver: int
    written: int


def attribute_drivers(
    conn: db.Conn, plates: Sequence[str] | None, first_day: date, last_day: date
) -> AttributionSummary:
    """sync_drivers, then the driver of every detected trip of the plates
    (None: every plate with a route) on the local days."""
    wanted = (
        list(plates) if plates is not None else store.plates_with_routes(conn, first_day, last_day)
    )
    if not wanted:
        return AttributionSummary(0, 0, 0)
    sync_drivers(conn, wanted, first_day, last_day)
    found = store.attribute(conn, wanted, first_day, last_day)
    return AttributionSummary(*found)


def driver_days(
    conn: db.Conn,
    first_day: date,
    last_day: date,
    params: JornadaParams,
    driver_ids: Sequence[str] | None = None,
) -> list[DriverDay]:
    """The working days starting on the local days first..last, of every
    driver with one or of those ids; by driver name, then day."""
    lo, hi = day_bounds(first_day, last_day, params.tz)
    # A working day starting in the range may run past hi: read a day more;
    # and the activity before the window, for the first day's rest.
    since = lo - LOOKBACK
    rows = store.list_activities(conn, since, hi + timedelta(days=1), driver_ids)
    drivers = {d.id: d for d in store.list_drivers(conn)}
    by_driver: dict[str, list[Activity]] = defaultdict(list)
    for row in rows:
        by_driver[row.driver_id].append(
            Activity(
                row.placa, row.start_ts, row.end_ts, row.source, row.moving_s, row.idle_after_s
            )
        )
    before = store.last_ends_before(conn, list(by_driver), since) if by_driver else {}
    days: list[DriverDay] = []
    for driver_id, activities in by_driver.items():
        known = drivers.get(driver_id)
        name = known.name if known is not None else driver_id
        limits = params.limits_for(known.frota if known is not None else None)
        found = working_days(driver_id, name, activities, limits, params.tz, before.get(driver_id))
        for day in found:
            if lo <= day.start < hi:
                days.append(day)
    days.sort(key=lambda d: (d.driver_name, d.driver_id, d.start))
    return days


def month_ficha(
    conn: db.Conn,
    driver: store.DriverRow,
    month: date,
    params: JornadaParams,
    company: str | None = None,
) -> Ficha:
    """The driver's ficha de trabalho of a month (`month`: any day of it)."""
    first = month.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    days = driver_days(conn, first, last, params, [driver.id])
    return Ficha(
        driver_id=driver.id,
        driver_name=driver.name,
        document=driver.document,
        frota=driver.frota,
        company=company,
        month=first,
        days=tuple(days),
        tz=params.tz,
    )


def violation_event_id(driver_id: str, rule: str, at: datetime) -> uuid.UUID:
    return uuid.uuid5(VIOLATION_NAMESPACE, f"{driver_id}|{rule}|{at.astimezone(UTC).isoformat()}")


def _event(day: DriverDay, violation: Violation) -> event_store.EventRow:
    return event_store.EventRow(
        id=violation_event_id(day.driver_id, violation.rule, violation.at),
        placa=violation.placa,
        kind=VIOLATION_KINDS[violation.rule],
        start_ts=violation.at,
        end_ts=violation.at,
        duration_s=0.0,
        value=round(violation.excess_s / 60.0, 2),
        limit_value=round(violation.limit_s / 60.0, 2),
        latitude=None,
        longitude=None,
        logradouro=None,
        driver=day.driver_name,
        rule=f"driver:{day.driver_id}",
    )


def compute_violation_events(
    conn: db.Conn, first_day: date, last_day: date, params: JornadaParams
) -> event_store.ReplaceCounts:
    """The violation events whose moment falls on the local days first..last:
    the stored ones become exactly these (every driver). By moment, not by
    working day: a day begun before the range that breaks a limit inside it
    is read whole (LOOKBACK) and gives its event here."""
    lo, hi = day_bounds(first_day, last_day, params.tz)
    days = driver_days(conn, first_day - LOOKBACK, last_day, params)
    rows = [
        _event(day, violation)
        for day in days
        for violation in day.violations
        if lo <= violation.at < hi
    ]
    with conn.transaction():
        stored = store.stored_violation_events(conn, EVENT_KINDS, lo, hi)
        return event_store.write_events(conn, rows, stored)


def assign_period(
    target: db.Target,
    driver_id: str,
    placa: str,
    from_ts: datetime,
    to_ts: datetime,
    params: JornadaParams,
) -> tuple[bool, DriversSummary]:
    """Put a driver on a vehicle for [from_ts, to_ts) (a UsageError when the
    period is empty or another driver holds the vehicle then: one at a time),
    then attribute those days' trips again. (stored anew, the recomputation)."""
    if to_ts <= from_ts:
        raise UsageError("the end of an assignment must come after its start")
    with db.connection(target, autocommit=True) as conn:
        other = store.assignment_overlap(conn, placa, from_ts, to_ts)
        if other is not None:
            tz = params.tz
            raise UsageError(
                f"{placa} is assigned to {other[0]} from {other[1].astimezone(tz):%Y-%m-%d %H:%M} "
                f"to {other[2].astimezone(tz):%Y-%m-%d %H:%M}: one driver at a time"
            )
        written = store.assign_driver(conn, driver_id, placa, from_ts, to_ts)
    first = from_ts.astimezone(params.tz).date()
    last = (to_ts - timedelta(microseconds=1)).astimezone(params.tz).date()
    return written, compute_drivers(target, [placa], first, last, params)


@dataclass(slots=True)
class DriversSummary:
    drivers: int = 0
    trips_with_driver: int = 0
    trips_without_driver: int = 0
    trips_written: int = 0
    events_inserted: int = 0
    events_updated: int = 0
    events_deleted: int = 0

    def line(self) -> str:
        return (
            f"drivers: {self.drivers} drivers; trips: {self.trips_with_driver} with a driver, "
            f"{self.trips_without_driver} without, {self.trips_written} changed; "
            f"violation events: {self.events_inserted} new, {self.events_updated} updated, "
            f"{self.events_deleted} deleted"
        )


def compute_drivers(
    target: db.Target,
    plates: Sequence[str] | None,
    first_day: date,
    last_day: date,
    params: JornadaParams,
) -> DriversSummary:
    """Attribution of the days' trips, then their violation events: what
    every routes computation runs after writing the routes."""
    summary = DriversSummary()
    with db.connection(target, autocommit=True) as conn:
        found = attribute_drivers(conn, plates, first_day, last_day)
        summary.trips_with_driver, summary.trips_without_driver, summary.trips_written = found
        counts = compute_violation_events(conn, first_day, last_day, params)
        summary.events_inserted = counts.inserted
        summary.events_updated = counts.updated
        summary.events_deleted = counts.deleted
        summary.drivers = len(store.list_drivers(conn))
    logger.info("%s", summary.line())
    return summary
