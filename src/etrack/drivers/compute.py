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
from etrack.drivers.identity import driver_key, normalized_name
from etrack.drivers.workday import Activity, DriverDay, JornadaLimits, Violation, working_days
from etrack.store import db
from etrack.store import drivers as store
from etrack.store import events as event_store

__all__ = [
    "VIOLATION_KINDS",
    "DriversSummary",
    "JornadaParams",
    "attribute_drivers",
    "compute_drivers",
    "compute_violation_events",
    "day_bounds",
    "driver_days",
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


def sync_drivers(conn: db.Conn) -> int:
    """New drivers (and aliases) from the provider's trips; how many aliases were new."""
    unknown = store.unknown_aliases(conn)
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
    (None: every plate with trips) on the local days."""
    sync_drivers(conn)
    wanted = (
        list(plates) if plates is not None else store.plates_with_trips(conn, first_day, last_day)
    )
    if not wanted:
        return AttributionSummary(0, 0, 0)
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
    # A working day starting in the range may run past hi: read a day more.
    rows = store.list_activities(conn, lo - LOOKBACK, hi + timedelta(days=1), driver_ids)
    drivers = {d.id: d for d in store.list_drivers(conn)}
    by_driver: dict[str, list[Activity]] = defaultdict(list)
    for row in rows:
        by_driver[row.driver_id].append(Activity(row.placa, row.start_ts, row.end_ts, row.source))
    days: list[DriverDay] = []
    for driver_id, activities in by_driver.items():
        known = drivers.get(driver_id)
        name = known.name if known is not None else driver_id
        limits = params.limits_for(known.frota if known is not None else None)
        for day in working_days(driver_id, name, activities, limits, params.tz):
            if lo <= day.start < hi:
                days.append(day)
    days.sort(key=lambda d: (d.driver_name, d.driver_id, d.start))
    return days


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
