"""Reports in the database: the stored numbers a report reads (day summaries,
trips, stops, points, event counts) and the report schedules with their runs
(migration 0015). Nothing here formats or sends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import cast

from psycopg.rows import dict_row

from etrack.store import audit, db
from etrack.store.queries import query

__all__ = [
    "DayRow",
    "ScheduleRow",
    "ScheduleSpec",
    "add_schedule",
    "day_points",
    "day_stops",
    "day_trips",
    "event_counts",
    "fleet_days",
    "fleet_odometers",
    "fleet_plates",
    "get_schedule",
    "list_schedules",
    "remove_schedule",
    "runs_of",
    "set_schedule_active",
]

# A row read for a report: column name -> a plain value (the report kinds
# give each column its type).
DayRow = dict[str, object]


def _rows(conn: db.Conn, name: str, params: dict[str, object]) -> list[DayRow]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cast(list[DayRow], cur.execute(query(name), params).fetchall())


def fleet_days(
    conn: db.Conn,
    first: date,
    last: date,
    tz: str,
    plates: Sequence[str] | None,
    frota: str | None,
    *,
    odometers: bool,
) -> list[DayRow]:
    """One row per plate and day with a stored route (reports_fleet_days)."""
    return _rows(
        conn,
        "reports_fleet_days",
        {
            "first": first,
            "last": last,
            "tz": tz,
            "plates": None if plates is None else list(plates),
            "frota": frota,
            "odometers": odometers,
        },
    )


def fleet_odometers(
    conn: db.Conn, plates: Sequence[str], lo: datetime, hi: datetime
) -> dict[str, tuple[float | None, float | None]]:
    rows = conn.execute(
        query("reports_fleet_odometers"), {"plates": list(plates), "lo": lo, "hi": hi}
    ).fetchall()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def fleet_plates(conn: db.Conn, frota: str) -> list[str]:
    return [str(r[0]) for r in conn.execute(query("reports_fleet_plates"), {"frota": frota})]


def event_counts(
    conn: db.Conn, lo: datetime, hi: datetime, tz: str, plates: Sequence[str] | None
) -> dict[tuple[str, date], int]:
    """Events begun in [lo, hi), by (plate, local day)."""
    rows = conn.execute(
        query("reports_event_counts"),
        {"lo": lo, "hi": hi, "tz": tz, "plates": None if plates is None else list(plates)},
    ).fetchall()
    return {(str(r[0]), r[1]): int(r[2]) for r in rows}


def day_trips(conn: db.Conn, placa: str, day: date) -> list[DayRow]:
    return _rows(conn, "reports_day_trips", {"placa": placa, "day": day})


def day_stops(conn: db.Conn, placa: str, day: date) -> list[DayRow]:
    return _rows(conn, "reports_day_stops", {"placa": placa, "day": day})


def day_points(conn: db.Conn, placa: str, lo: datetime, hi: datetime) -> list[DayRow]:
    return _rows(conn, "reports_day_points", {"placa": placa, "lo": lo, "hi": hi})


# ---------------------------------------------------------------- schedules
@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What `reports schedule add` and the Schedules form ask for, checked."""

    kind: str
    every: str
    at_local: time
    timezone: str
    emails: tuple[str, ...]
    webhook_url: str | None
    secret: str | None = field(repr=False)
    formats: tuple[str, ...]
    plates: tuple[str, ...] | None
    fleet: str | None
    account: str | None
    by_day: bool
    csv_dialect: str
    lang: str
    first_period: date

    def params(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "every": self.every,
            "at_local": self.at_local,
            "timezone": self.timezone,
            "emails": list(self.emails),
            "webhook_url": self.webhook_url,
            "secret": self.secret,
            "formats": list(self.formats),
            "plates": None if self.plates is None else list(self.plates),
            "fleet": self.fleet,
            "account": self.account,
            "by_day": self.by_day,
            "csv_dialect": self.csv_dialect,
            "lang": self.lang,
            "first_period": self.first_period,
        }


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    id: int
    kind: str
    every: str
    at_local: time
    timezone: str
    emails: list[str]
    webhook_url: str | None
    formats: list[str]
    plates: list[str] | None
    fleet: str | None
    account: str | None
    by_day: bool
    csv_dialect: str
    lang: str
    active: bool
    first_period: date
    created_at: datetime
    secret: str | None = field(default=None, repr=False)
    queued: int = 0
    sent: int = 0
    failed: int = 0
    last_sent_period: date | None = None
    last_error: str | None = None


def add_schedule(conn: db.Conn, spec: ScheduleSpec) -> tuple[int, bool]:
    """The schedule's id, and whether it is new (an identical one is reused:
    `schedule add` run twice adds one schedule, and one audit row)."""
    params = spec.params()
    with conn.transaction():
        found = conn.execute(query("reports_schedule_find"), params).fetchone()
        if found is not None:
            return int(found[0]), False
        row = conn.execute(query("reports_schedule_add"), params).fetchone()
        assert row is not None
        schedule_id = int(row[0])
        audit.record(
            conn,
            "schedule.add",
            _schedule_target(schedule_id, spec.kind),
            detail=_schedule_detail(spec),
        )
    return schedule_id, True


def _schedule_target(schedule_id: int, kind: str) -> str:
    return f"#{schedule_id} {kind}"


def _schedule_detail(schedule: ScheduleSpec | ScheduleRow) -> dict[str, object]:
    """What the audit keeps of a schedule: never its webhook URL (one may
    carry credentials) nor its secret; the mail addresses are who gets it."""
    return {
        "every": schedule.every,
        "at": schedule.at_local.isoformat(timespec="minutes"),
        "timezone": schedule.timezone,
        "emails": list(schedule.emails),
        "webhook": schedule.webhook_url is not None,
        "formats": list(schedule.formats),
        "plates": None if schedule.plates is None else list(schedule.plates),
        "fleet": schedule.fleet,
        "account": schedule.account,
    }


def list_schedules(conn: db.Conn, *, active_only: bool = False) -> list[ScheduleRow]:
    name = "reports_schedules_active" if active_only else "reports_schedules_list"
    return [ScheduleRow(*r) for r in conn.execute(query(name)).fetchall()]


def get_schedule(conn: db.Conn, schedule_id: int) -> ScheduleRow | None:
    row = conn.execute(query("reports_schedule_get"), {"id": schedule_id}).fetchone()
    return None if row is None else ScheduleRow(*row)


def remove_schedule(conn: db.Conn, schedule_id: int) -> bool:
    with conn.transaction():
        row = get_schedule(conn, schedule_id)
        found = (
            conn.execute(query("reports_schedule_remove"), {"id": schedule_id}).fetchone()
            is not None
        )
        if found and row is not None:
            audit.record(
                conn,
                "schedule.remove",
                _schedule_target(schedule_id, row.kind),
                detail=_schedule_detail(row),
            )
    return found


def set_schedule_active(conn: db.Conn, schedule_id: int, active: bool, current: date) -> bool:
    """Pause or resume; a resumed schedule starts again with the period
    `current` (those that ended while it was paused are not sent). Audited
    only when the state changes."""
    with conn.transaction():
        before = get_schedule(conn, schedule_id)
        row = conn.execute(
            query("reports_schedule_set_active"),
            {"id": schedule_id, "active": active, "current": current},
        ).fetchone()
        if row is not None and before is not None and before.active != active:
            audit.record(
                conn,
                "schedule.resume" if active else "schedule.pause",
                _schedule_target(schedule_id, before.kind),
            )
    return row is not None


def runs_of(conn: db.Conn, schedule_id: int) -> list[DayRow]:
    return _rows(conn, "reports_runs_of", {"schedule_id": schedule_id})
