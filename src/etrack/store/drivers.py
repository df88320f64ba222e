"""Drivers in the database: identities from the provider's trips, aliases,
manual assignments, the attribution of detected trips, and the attributed
trips the working days are computed from (etrack.drivers). Nothing here
knows the law."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from etrack.store import audit, db
from etrack.store.events import EventRow
from etrack.store.queries import query

__all__ = [
    "ActivityRow",
    "AssignmentRow",
    "Attribution",
    "DriverRow",
    "UnknownAlias",
    "add_driver",
    "assign_driver",
    "assignment_overlap",
    "attribute",
    "get_driver",
    "last_ends_before",
    "list_activities",
    "list_assignments",
    "list_drivers",
    "merge_drivers",
    "plates_with_routes",
    "stored_violation_events",
    "unattributed",
    "unknown_aliases",
    "update_driver",
]


class DriverRow(NamedTuple):
    id: str
    name: str
    document: str | None
    frota: str | None
    active: bool
    created_at: datetime
    updated_at: datetime

    def record(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "document": self.document,
            "frota": self.frota,
            "active": self.active,
        }


class UnknownAlias(NamedTuple):
    alias: str
    identificacao: str | None
    nome: str | None
    frota: str | None


class AssignmentRow(NamedTuple):
    id: int
    driver_id: str
    placa: str
    from_ts: datetime
    to_ts: datetime


class ActivityRow(NamedTuple):
    driver_id: str
    placa: str
    start_ts: datetime
    end_ts: datetime
    source: str
    moving_s: int | None
    idle_after_s: int


class Attribution(NamedTuple):
    with_driver: int
    without_driver: int
    written: int


def unknown_aliases(
    conn: db.Conn, plates: Sequence[str], first_day: date, last_day: date
) -> list[UnknownAlias]:
    """The drivers the provider names on these plates' trips of the days
    (and a day either side) that are not known yet."""
    rows = conn.execute(
        query("drivers_unknown_aliases"),
        {"plates": list(plates), "first_day": first_day, "last_day": last_day},
    ).fetchall()
    return [UnknownAlias(*r) for r in rows]


def add_driver(conn: db.Conn, driver_id: str, name: str, frota: str | None, alias: str) -> str:
    """The driver (kept as it is if it exists, or the one it was merged into)
    and one more alias of it; the driver's id. A new driver ("driver.add")
    or a new alias of a known one ("driver.alias") is audited."""
    with conn.transaction():
        merged = conn.execute(query("drivers_merged_into"), {"id": driver_id}).fetchone()
        added = False
        if merged is not None:
            driver_id = str(merged[0])
        else:
            added = (
                conn.execute(
                    query("drivers_insert"), {"id": driver_id, "name": name, "frota": frota}
                ).rowcount
                > 0
            )
        new_alias = (
            conn.execute(
                query("drivers_alias_insert"), {"alias": alias, "driver_id": driver_id}
            ).rowcount
            > 0
        )
        if added:
            detail = {"name": name, "frota": frota, "alias": alias}
            audit.record(conn, "driver.add", driver_id, detail=detail)
        elif new_alias:
            audit.record(conn, "driver.alias", driver_id, detail={"alias": alias})
    return driver_id


def list_drivers(conn: db.Conn) -> list[DriverRow]:
    return [DriverRow(*r) for r in conn.execute(query("drivers_list")).fetchall()]


def get_driver(conn: db.Conn, driver_id: str) -> DriverRow | None:
    row = conn.execute(query("drivers_get"), {"id": driver_id}).fetchone()
    return None if row is None else DriverRow(*row)


def update_driver(conn: db.Conn, row: DriverRow) -> bool:
    """Store a driver's name, document, fleet and flag; False when nothing
    changed. Audited: "driver.rename" when only the name changed, else
    "driver.update" with the fields changed."""
    with conn.transaction():
        before = get_driver(conn, row.id)
        found = conn.execute(
            query("drivers_update"),
            {
                "id": row.id,
                "name": row.name,
                "document": row.document,
                "frota": row.frota,
                "active": row.active,
            },
        ).fetchone()
        if found is not None:
            _audit_update(conn, before, row)
    return found is not None


def _audit_update(conn: db.Conn, before: DriverRow | None, after: DriverRow) -> None:
    fields = ("name", "document", "frota", "active")
    changed = [f for f in fields if before is None or getattr(before, f) != getattr(after, f)]
    if changed == ["name"] and before is not None:
        audit.record(
            conn, "driver.rename", after.id, detail={"from": before.name, "to": after.name}
        )
        return
    detail: dict[str, object] = {"changed": changed}
    # The document (a CPF) is personal data: the audit says it changed, not what it is.
    detail.update({f: getattr(after, f) for f in changed if f != "document"})
    audit.record(conn, "driver.update", after.id, detail=detail)


def merge_drivers(conn: db.Conn, source: str, target: str) -> int:
    """Driver `source` becomes `target` (aliases, assignments, trips); the
    trips moved. Audited ("driver.merge") when `source` existed."""
    with conn.transaction():
        existed = get_driver(conn, source) is not None
        found = conn.execute(
            query("drivers_merge"), {"source": source, "target": target}
        ).fetchone()
        moved = int(found[0]) if found else 0
        if existed:
            audit.record(conn, "driver.merge", source, detail={"into": target, "trips": moved})
    return moved


def assignment_overlap(
    conn: db.Conn, placa: str, from_ts: datetime, to_ts: datetime
) -> tuple[str, datetime, datetime] | None:
    row = conn.execute(
        query("drivers_assignment_overlaps"), {"placa": placa, "from_ts": from_ts, "to_ts": to_ts}
    ).fetchone()
    return None if row is None else (str(row[0]), row[1], row[2])


def assign_driver(
    conn: db.Conn, driver_id: str, placa: str, from_ts: datetime, to_ts: datetime
) -> bool:
    """Store the assignment; False when the same one was already stored
    (audited, "driver.assign", only when stored)."""
    with conn.transaction():
        found = conn.execute(
            query("drivers_assign"),
            {"driver_id": driver_id, "placa": placa, "from_ts": from_ts, "to_ts": to_ts},
        ).fetchone()
        if found is not None:
            audit.record(
                conn,
                "driver.assign",
                driver_id,
                detail={"placa": placa, "from": from_ts.isoformat(), "to": to_ts.isoformat()},
            )
    return found is not None


def list_assignments(conn: db.Conn, driver_id: str | None = None) -> list[AssignmentRow]:
    rows = conn.execute(query("drivers_assignments"), {"driver_id": driver_id}).fetchall()
    return [AssignmentRow(*r) for r in rows]


def plates_with_routes(conn: db.Conn, first_day: date, last_day: date) -> list[str]:
    rows = conn.execute(
        query("drivers_plates_with_routes"), {"first_day": first_day, "last_day": last_day}
    ).fetchall()
    return [str(r[0]) for r in rows]


def attribute(conn: db.Conn, plates: Sequence[str], first_day: date, last_day: date) -> Attribution:
    found = conn.execute(
        query("drivers_attribute"),
        {"plates": list(plates), "first_day": first_day, "last_day": last_day},
    ).fetchone()
    assert found is not None
    return Attribution(int(found[0]), int(found[1]), int(found[2]))


def list_activities(
    conn: db.Conn, lo: datetime, hi: datetime, driver_ids: Sequence[str] | None = None
) -> list[ActivityRow]:
    rows = conn.execute(
        query("drivers_activities"),
        {"lo": lo, "hi": hi, "ids": None if driver_ids is None else list(driver_ids)},
    ).fetchall()
    return [ActivityRow(*r) for r in rows]


def last_ends_before(
    conn: db.Conn, driver_ids: Sequence[str], before: datetime
) -> dict[str, datetime]:
    """Each driver's last activity end among their trips starting before `before`."""
    rows = conn.execute(
        query("drivers_last_end_before"), {"ids": list(driver_ids), "before": before}
    ).fetchall()
    return {str(r[0]): r[1] for r in rows}


def unattributed(
    conn: db.Conn, lo: datetime, hi: datetime, plates: Sequence[str] | None = None
) -> tuple[int, float]:
    """(trips without a driver, their seconds) starting in [lo, hi), of every
    plate or of these."""
    found = conn.execute(
        query("drivers_unattributed"),
        {"lo": lo, "hi": hi, "plates": None if plates is None else list(plates)},
    ).fetchone()
    return (int(found[0]), float(found[1])) if found else (0, 0.0)


def stored_violation_events(
    conn: db.Conn, kinds: Sequence[str], lo: datetime, hi: datetime
) -> list[EventRow]:
    """The stored driver-violation events starting in [lo, hi), every vehicle's,
    read under the lock of their computation (held to the transaction's end)."""
    conn.execute(query("drivers_events_lock"))
    rows = conn.execute(
        query("drivers_events_stored"), {"kinds": list(kinds), "lo": lo, "hi": hi}
    ).fetchall()
    return [EventRow(*r) for r in rows]
