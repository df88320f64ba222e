"""Geofences and their visits in the database.

The SQL side of `etrack.geofences`: fences upserted by name (an unchanged
one untouched), listed and deleted (their visits and enter/exit events
with them); the valid positions a visit computation reads; the idempotent
replacement of a range's visits (upsert by id, the ones no longer found
deleted). Nothing here knows what makes a visit.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from psycopg import pq
from psycopg.adapt import Buffer, Loader
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from etrack.model import FENCE_ENTER, FENCE_EXIT, Fence
from etrack.store import audit, db
from etrack.store.events import FENCE_RULE
from etrack.store.queries import query

__all__ = [
    "FenceRow",
    "FoundVisit",
    "UpsertCounts",
    "VisitChanges",
    "VisitRow",
    "begun_before",
    "delete_fences",
    "fence_event_id",
    "history_span",
    "list_fences",
    "list_visits",
    "load_tracks",
    "plates_in_range",
    "position_spans",
    "speed_limited",
    "stored_visits",
    "upsert_fences",
    "visit_id",
    "write_visits",
]

Floats = npt.NDArray[np.float64]
Track = tuple[Floats, Floats, Floats]
"""A plate's valid positions as columns in time order: POSIX seconds, latitude, longitude."""

_FLOAT8_ARRAY_OID = 1022
"""float8[] (psycopg's types map resolves the name "float8[]" to the element type)."""
_ARRAY_HEADER = np.dtype([("ndim", ">i4"), ("has_null", ">i4"), ("oid", ">u4")])
_DIMENSION = np.dtype([("size", ">i4"), ("lower", ">i4")])
_ELEMENT = np.dtype([("length", ">i4"), ("value", ">f8")])


class _Float8ArrayLoader(Loader):
    """A binary float8[] straight into a numpy array: the elements sit in
    the buffer as (length, big-endian double) pairs, one strided view away
    from an array, where the default loader makes a Python float of each."""

    format = pq.Format.BINARY

    def load(self, data: Buffer) -> Floats:
        header = np.frombuffer(data, dtype=_ARRAY_HEADER, count=1)[0]
        if int(header["ndim"]) == 0:
            return np.empty(0, dtype=np.float64)
        if int(header["ndim"]) != 1 or int(header["has_null"]) != 0:
            raise ValueError("expected a one-dimensional float8[] without NULL")
        size = int(np.frombuffer(data, dtype=_DIMENSION, count=1, offset=12)[0]["size"])
        elements = np.frombuffer(data, dtype=_ELEMENT, count=size, offset=20)
        values: Floats = elements["value"].astype(np.float64)
        return values


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
    inserted or changed: their visits need computing). Each fence inserted
    or changed is audited in that transaction; an unchanged one is not."""
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
            audit.record(
                conn,
                "geofence.add" if row[1] else "geofence.update",
                fence.name,
                detail={
                    "kind": fence.kind,
                    "radius_m": fence.radius_m,
                    "group": fence.group,
                    "speed_limit_kmh": fence.speed_limit_kmh,
                },
            )
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


def speed_limited(conn: db.Conn, names: Sequence[str]) -> set[str]:
    """Those of these stored fences that have a speed limit. A change to one
    of them (or to its limit) changes overspeed events: read it before and
    after a change, the events are recomputed if either holds a changed fence."""
    return {
        row.fence.name for row in list_fences(conn, names) if row.fence.speed_limit_kmh is not None
    }


def delete_fences(conn: db.Conn, names: Sequence[str]) -> list[str]:
    """Delete these fences with their visits and events; the names that
    existed (each audited, in the same transaction)."""
    with conn.transaction():
        rows = conn.execute(query("geofences_delete"), {"names": list(names)}).fetchall()
        gone = [str(r[0]) for r in rows]
        for name in gone:
            audit.record(conn, "geofence.remove", name)
    return gone


def load_tracks(
    conn: db.Conn, plates: Sequence[str], lo: datetime, hi: datetime
) -> dict[str, Track]:
    """The valid positions of `plates` in [lo, hi), per plate with any."""
    with conn.cursor(binary=True) as cur:
        cur.adapters.register_loader(_FLOAT8_ARRAY_OID, _Float8ArrayLoader)
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


class FoundVisit(NamedTuple):
    """A visit as a computation finds it: a VisitRow before it has an id."""

    placa: str
    fence: str
    arrive_ts: datetime
    depart_ts: datetime | None
    dwell_s: float


class VisitChanges(NamedTuple):
    written: int
    unchanged: int
    deleted: int
    events: int
    """Enter/exit events inserted, updated or deleted."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def visit_id(placa: str, fence: str, arrive: datetime) -> uuid.UUID:
    """The id visits_write gives a new visit: md5 of its natural key, so
    the same visit found again is the same row, whichever run finds it."""
    return _md5_uuid(f"{placa}|{fence}|{_micros(arrive)}")


def fence_event_id(placa: str, kind: str, fence: str, at: datetime) -> uuid.UUID:
    """The id visits_write gives a new enter/exit event (the fence is in
    it: two fences entered at one position are two events)."""
    return _md5_uuid(f"{placa}|{kind}|{fence}|{_micros(at)}")


def _md5_uuid(key: str) -> uuid.UUID:
    # PostgreSQL's md5(text)::uuid: an identifier, not a secret.
    return uuid.UUID(hashlib.md5(key.encode(), usedforsecurity=False).hexdigest())


def write_visits(
    conn: db.Conn, rows: Sequence[FoundVisit], stored: Sequence[VisitRow]
) -> VisitChanges:
    """Turn `stored` (read by `stored_visits` in this transaction) into
    `rows`, by the natural key (placa, fence, arrive_ts): upsert the new and
    changed ones, delete the rest, leave the others unwritten. A stored
    visit always has its enter event and, once closed, its exit (a function
    of it, written by the same statement): the events of the visits left
    alone are left alone too, so an unchanged run compares no event."""
    before = {(row.placa, row.fence, row.arrive_ts): row for row in stored}
    written = [
        row
        for row in rows
        if (known := before.get((row.placa, row.fence, row.arrive_ts))) is None
        or tuple(known[1:]) != row
    ]
    wanted = {(row.placa, row.fence, row.arrive_ts) for row in rows}
    gone = [row for key, row in before.items() if key not in wanted]
    # The events no visit holds any more: a gone visit's enter and exit, and
    # the exit of a visit that now departs at another time.
    stale: list[tuple[str, str, datetime, str]] = []
    for row in gone:
        stale.append((row.placa, FENCE_ENTER, row.arrive_ts, FENCE_RULE + row.fence))
        if row.depart_ts is not None:
            stale.append((row.placa, FENCE_EXIT, row.depart_ts, FENCE_RULE + row.fence))
    for visit in written:
        known = before.get((visit.placa, visit.fence, visit.arrive_ts))
        if known is not None and known.depart_ts not in (None, visit.depart_ts):
            stale.append((visit.placa, FENCE_EXIT, known.depart_ts, FENCE_RULE + visit.fence))
    events = 0
    if gone or stale:
        found = conn.execute(
            query("visits_delete"),
            {
                "ids": [row.id for row in gone],
                "placas": [key[0] for key in stale],
                "kinds": [key[1] for key in stale],
                "starts": [key[2] for key in stale],
                "rules": [key[3] for key in stale],
            },
        ).fetchone()
        events += int(found[0]) if found else 0
    if written:
        found = conn.execute(
            query("visits_write"), _columns(written, FoundVisit._fields)
        ).fetchone()
        events += int(found[1]) if found else 0
    return VisitChanges(len(written), len(rows) - len(written), len(gone), events)


def _columns(rows: Sequence[NamedTuple], names: Sequence[str]) -> dict[str, list[object]]:
    """Rows as one list per field: the parameters of an unnest() statement."""
    return {name: [getattr(row, name) for row in rows] for name in names}


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
