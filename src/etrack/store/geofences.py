"""Geofences and their visits in the database.

The SQL side of `etrack.geofences`: fences upserted by name (an unchanged
one untouched), listed and deleted (their visits and enter/exit events
with them); the valid positions a visit computation reads; the idempotent
replacement of a range's visits (upsert by id, the ones no longer found
deleted). Nothing here knows what makes a visit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import NamedTuple

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from etrack.model import Fence
from etrack.store import db
from etrack.store.queries import query

__all__ = [
    "FenceRow",
    "UpsertCounts",
    "VisitRow",
    "begun_before",
    "delete_fences",
    "history_span",
    "list_fences",
    "list_visits",
    "load_tracks",
    "plates_in_range",
    "position_spans",
    "stored_visits",
    "upsert_fences",
    "write_visits",
]

Track = tuple[Sequence[float], Sequence[float], Sequence[float]]
"""A plate's valid positions as columns in time order: POSIX seconds, latitude, longitude."""


class FenceRow(NamedTuple):
    fence: Fence
    created_at: datetime
    updated_at: datetime


class UpsertCounts(NamedTuple):
    inserted: int
    updated: int
    unchanged: int


class VisitRow(NamedTuple):
    """One row of `geofence_visits`."""

    id: uuid.UUID
    placa: str
    fence: str
    arrive_ts: datetime
    depart_ts: datetime | None
    dwell_s: float

    def record(self, tz: tzinfo) -> dict[str, object]:
        """The visit as `etrack visits --format json` and the API show it."""
        return {
            "id": str(self.id),
            "placa": self.placa,
            "fence": self.fence,
            "arrive_ts": self.arrive_ts.astimezone(tz).isoformat(),
            "depart_ts": None
            if self.depart_ts is None
            else self.depart_ts.astimezone(tz).isoformat(),
            "dwell_s": self.dwell_s,
        }


def upsert_fences(conn: db.Conn, fences: Sequence[Fence]) -> tuple[UpsertCounts, list[str]]:
    """Insert or update every fence in one transaction; (counts, the names
    inserted or changed: their visits need computing)."""
    inserted = updated = 0
    changed: list[str] = []
    with conn.transaction():
        for fence in fences:
            row = conn.execute(
                query("geofences_upsert"),
                {
                    "name": fence.name,
                    "kind": fence.kind,
                    "geometry": Jsonb(fence.geometry),
                    "radius_m": fence.radius_m,
                    "fence_group": fence.group,
                    "speed_limit_kmh": fence.speed_limit_kmh,
                },
            ).fetchone()
            if row is None:
                continue
            changed.append(fence.name)
            if row[1]:
                inserted += 1
            else:
                updated += 1
    return UpsertCounts(inserted, updated, len(fences) - inserted - updated), changed


def list_fences(conn: db.Conn, names: Sequence[str] | None = None) -> list[FenceRow]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            query("geofences_list"), {"names": None if names is None else list(names)}
        ).fetchall()
    return [
        FenceRow(
            Fence(
                name=r["name"],
                kind=r["kind"],
                geometry=r["geometry"],
                radius_m=r["radius_m"],
                group=r["fence_group"],
                speed_limit_kmh=r["speed_limit_kmh"],
            ),
            r["created_at"],
            r["updated_at"],
        )
        for r in rows
    ]


def delete_fences(conn: db.Conn, names: Sequence[str]) -> list[str]:
    """Delete these fences with their visits and events; the names that existed."""
    with conn.transaction():
        rows = conn.execute(query("geofences_delete"), {"names": list(names)}).fetchall()
    return [str(r[0]) for r in rows]


def load_tracks(
    conn: db.Conn, plates: Sequence[str], lo: datetime, hi: datetime
) -> dict[str, Track]:
    with conn.cursor(binary=True) as cur:
        cur.execute(query("geofences_load_positions"), {"plates": list(plates), "lo": lo, "hi": hi})
        return {row[0]: (row[1], row[2], row[3]) for row in cur}


def plates_in_range(conn: db.Conn, lo: datetime, hi: datetime) -> list[str]:
    rows = conn.execute(query("geofences_plates_in_range"), {"lo": lo, "hi": hi}).fetchall()
    return [str(r[0]) for r in rows]


def position_spans(conn: db.Conn, plates: Sequence[str]) -> dict[str, tuple[datetime, datetime]]:
    """Each plate's first and last valid position."""
    rows = conn.execute(query("geofences_position_span"), {"plates": list(plates)}).fetchall()
    return {str(r[0]): (r[1], r[2]) for r in rows}


def begun_before(conn: db.Conn, plates: Sequence[str], lo: datetime) -> dict[str, datetime]:
    """Per plate, the arrival of its earliest stored visit still going at `lo`."""
    rows = conn.execute(query("visits_begun_before"), {"plates": list(plates), "lo": lo}).fetchall()
    return {str(r[0]): r[1] for r in rows}


def stored_visits(conn: db.Conn, los: Mapping[str, datetime], hi: datetime) -> list[VisitRow]:
    """The stored visits of each plate of `los` arriving in [its lo, hi)."""
    rows = conn.execute(
        query("visits_stored"), {"plates": list(los), "los": list(los.values()), "hi": hi}
    ).fetchall()
    return [VisitRow(*r) for r in rows]


def write_visits(
    conn: db.Conn, rows: Sequence[VisitRow], stored: Sequence[VisitRow]
) -> tuple[int, int, int]:
    """Turn `stored` (read by `stored_visits` in this transaction) into
    `rows`: upsert the new and changed ones, delete the rest, leave the
    others unwritten. (written, unchanged, deleted)."""
    before = {row.id: row for row in stored}
    wanted = {row.id for row in rows}
    written = [row for row in rows if before.get(row.id) != row]
    if written:
        with conn.cursor() as cur:
            cur.executemany(query("visits_upsert"), [row._asdict() for row in written])
    gone = [visit_id for visit_id in before if visit_id not in wanted]
    if gone:
        conn.execute(query("visits_delete"), {"ids": gone})
    return len(written), len(rows) - len(written), len(gone)


def list_visits(
    conn: db.Conn,
    lo: datetime,
    hi: datetime,
    plates: Sequence[str] | None = None,
    fence: str | None = None,
) -> list[VisitRow]:
    rows = conn.execute(
        query("visits_list"),
        {"lo": lo, "hi": hi, "plates": None if plates is None else list(plates), "fence": fence},
    ).fetchall()
    return [VisitRow(*r) for r in rows]


def history_span(conn: db.Conn) -> tuple[datetime, datetime] | None:
    """The first and last valid position stored (any plate); None when there is none."""
    row = conn.execute(query("geofences_history_span")).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return None
    return row[0], row[1]
