"""Events in the database: what their computation reads and what it stores.

The SQL side of `etrack.events.compute`: the valid positions of some plates as
the columns the detectors read, the plates' fleets, where each event began
(place, driver), and the idempotent replacement of a range's events (upsert by
id, unchanged rows left alone, the ones no longer found deleted); plus the
offline events kept from `latest_positions` and the listing. Events arrive as
plain rows (`EventRow`): nothing here knows how an event is detected.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import NamedTuple

from psycopg.rows import class_row

from etrack.store import db
from etrack.store.queries import query

__all__ = [
    "FENCE_RULE",
    "EventColumns",
    "EventRow",
    "OfflineCandidate",
    "ReplaceCounts",
    "StartDetails",
    "close_offline",
    "list_events",
    "load_event_positions",
    "lock_plates",
    "offline_candidates",
    "open_count",
    "open_offline",
    "plate_fleets",
    "replace_events",
    "start_details",
    "start_drivers",
    "stored_events",
    "stored_events_from",
    "write_events",
]

FENCE_RULE = "fence:"
"""The `rule` of a fence event: 'fence:' and the fence's name."""

EventColumns = tuple[
    Sequence[float],
    Sequence[float | None],
    Sequence[bool | None],
    Sequence[float | None],
    Sequence[float | None],
]
"""A plate's valid positions as columns in time order: POSIX seconds, speed km/h,
ignition, battery volts, reception delay in seconds (data_gravacao - data_transmissao)."""


class EventRow(NamedTuple):
    """One row of `events`, as stored and listed."""

    id: uuid.UUID
    placa: str
    kind: str
    start_ts: datetime
    end_ts: datetime | None
    duration_s: float | None
    value: float | None
    limit_value: float | None
    latitude: float | None
    longitude: float | None
    logradouro: str | None
    driver: str | None
    rule: str | None

    def record(self, tz: tzinfo) -> dict[str, object]:
        """The event as `etrack events list --format json` shows it and the
        alert webhooks send it: times ISO 8601 with the account's offset."""
        return {
            "id": str(self.id),
            "placa": self.placa,
            "kind": self.kind,
            "start_ts": self.start_ts.astimezone(tz).isoformat(),
            "end_ts": None if self.end_ts is None else self.end_ts.astimezone(tz).isoformat(),
            "duration_s": self.duration_s,
            "value": self.value,
            "limit_value": self.limit_value,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "logradouro": self.logradouro,
            "driver": self.driver,
            **({"fence": self.fence} if self.fence is not None else {}),
        }

    @property
    def fence(self) -> str | None:
        """The fence of a geofence_enter / geofence_exit event (its `rule`)."""
        if self.rule is not None and self.rule.startswith(FENCE_RULE):
            return self.rule.removeprefix(FENCE_RULE)
        return None


class StartDetails(NamedTuple):
    """Where and by whom an event began."""

    latitude: float | None
    longitude: float | None
    logradouro: str | None
    driver: str | None


class ReplaceCounts(NamedTuple):
    inserted: int
    updated: int
    deleted: int


class OfflineCandidate(NamedTuple):
    """A vehicle's newest valid position, silent for too long."""

    placa: str
    data_transmissao: datetime
    latitude: float | None
    longitude: float | None
    logradouro: str | None


def load_event_positions(
    conn: db.Conn, plates: Sequence[str], lo: datetime, hi: datetime
) -> dict[str, EventColumns]:
    """Valid positions of `plates` in [lo, hi) as columns in time order, per plate."""
    # Binary results: floats and booleans arrive without text parsing. The
    # plan settings are the transaction's own (events_index_plan says why)
    # and restored after, in case the caller's transaction goes on.
    with conn.transaction(), conn.cursor(binary=True) as cur:
        cur.execute(query("events_index_plan"))
        before = cur.fetchone()
        assert before is not None
        cur.execute(query("events_load_positions"), {"plates": list(plates), "lo": lo, "hi": hi})
        found = {row[0]: (row[1], row[2], row[3], row[4], row[5]) for row in cur}
        cur.execute(
            query("events_restore_plan"),
            {"bitmapscan": before[0], "seqscan": before[1], "jit": before[2]},
        )
        return found


def plate_fleets(conn: db.Conn, plates: Sequence[str]) -> dict[str, str | None]:
    """Each known plate's fleet (terminals.frota); unknown plates are absent."""
    rows = conn.execute(query("events_plate_fleets"), {"plates": list(plates)}).fetchall()
    return {str(placa): frota for placa, frota in rows}


def start_details(
    conn: db.Conn, keys: Sequence[tuple[str, datetime]]
) -> dict[tuple[str, datetime], StartDetails]:
    """Place and driver at each (plate, moment) an event starts."""
    if not keys:
        return {}
    rows = conn.execute(
        query("events_start_details"),
        {"plates": [k[0] for k in keys], "starts": [k[1] for k in keys]},
    ).fetchall()
    return {
        (placa, ts): StartDetails(lat, lon, address, driver)
        for placa, ts, lat, lon, address, driver in rows
    }


def start_drivers(
    conn: db.Conn, keys: Sequence[tuple[str, datetime]]
) -> dict[tuple[str, datetime], str | None]:
    """The driver at each (plate, moment), for the keys the provider's trips name one."""
    if not keys:
        return {}
    rows = conn.execute(
        query("events_start_drivers"),
        {"plates": [k[0] for k in keys], "starts": [k[1] for k in keys]},
    ).fetchall()
    return {(placa, ts): driver for placa, ts, driver in rows}


def lock_plates(conn: db.Conn, plates: Sequence[str]) -> None:
    """Wait for any other computation of these plates' events; held until the
    caller's transaction ends."""
    conn.execute(query("events_lock_plates"), {"plates": sorted(plates)})


def stored_events(
    conn: db.Conn, plates: Sequence[str], kinds: Sequence[str], lo: datetime, hi: datetime
) -> list[EventRow]:
    """The stored events of `plates` and `kinds` starting in [lo, hi)."""
    with conn.cursor(binary=True, row_factory=_event_row) as cur:
        cur.execute(
            query("events_stored"),
            {"plates": list(plates), "kinds": list(kinds), "lo": lo, "hi": hi},
        )
        return cur.fetchall()


def stored_events_from(
    conn: db.Conn, los: Mapping[str, datetime], kinds: Sequence[str], hi: datetime
) -> list[EventRow]:
    """The stored events of `kinds` of each plate of `los` starting in [its lo, hi)."""
    with conn.cursor(binary=True, row_factory=_event_row) as cur:
        cur.execute(
            query("events_stored_from"),
            {"plates": list(los), "los": list(los.values()), "kinds": list(kinds), "hi": hi},
        )
        return cur.fetchall()


def write_events(
    conn: db.Conn, rows: Sequence[EventRow], stored: Sequence[EventRow]
) -> ReplaceCounts:
    """Turn `stored` (what `stored_events` read, under `lock_plates`, in this
    transaction) into `rows`: insert the new ones, update those a field of
    which changed, leave the others untouched, delete the rest. A
    recomputation that finds what is stored sends and writes nothing (the
    upsert's own check keeps an unchanged row unwritten anyway)."""
    before = {r.id: r for r in stored}
    changed = [r for r in rows if before.get(r.id) != r]
    keep = {r.id for r in rows}
    gone = [i for i in before if i not in keep]
    inserted = updated = 0
    with conn.cursor() as cur:
        if changed:
            columns = {name: [getattr(r, name) for r in changed] for name in EventRow._fields}
            cur.execute(query("events_upsert"), columns)
            found = cur.fetchone()
            assert found is not None
            inserted, updated = int(found[0]), int(found[1])
        if gone:
            cur.execute(query("events_delete"), {"ids": gone})
    return ReplaceCounts(inserted, updated, len(gone))


def replace_events(
    conn: db.Conn,
    plates: Sequence[str],
    kinds: Sequence[str],
    lo: datetime,
    hi: datetime,
    rows: Sequence[EventRow],
) -> ReplaceCounts:
    """Make the stored events of `plates` and `kinds` starting in [lo, hi)
    exactly `rows`, in one transaction (lock, read, `write_events`).

    Rows outside [lo, hi) or of other plates or kinds are a caller's bug:
    they would be upserted and never deleted by this range.
    """
    with conn.transaction():
        lock_plates(conn, plates)
        return write_events(conn, rows, stored_events(conn, plates, kinds, lo, hi))


def _event_row(cursor: object) -> Callable[[Sequence[object]], EventRow]:
    def make(values: Sequence[object]) -> EventRow:
        return EventRow._make(values)

    return make


def close_offline(conn: db.Conn) -> int:
    """Close the open offline events of vehicles that reported again; how many."""
    return len(conn.execute(query("events_offline_close")).fetchall())


def offline_candidates(conn: db.Conn, cutoff: datetime) -> list[OfflineCandidate]:
    """Vehicles silent since before `cutoff` without an offline event from then."""
    with conn.cursor(row_factory=class_row(OfflineCandidate)) as cur:
        return cur.execute(query("events_offline_candidates"), {"cutoff": cutoff}).fetchall()


def open_offline(conn: db.Conn, rows: Sequence[EventRow]) -> int:
    """Insert open offline events (a vehicle already holding one keeps it); how many."""
    if not rows:
        return 0
    wanted = (
        "id",
        "placa",
        "kind",
        "start_ts",
        "limit_value",
        "latitude",
        "longitude",
        "logradouro",
        "rule",
    )
    cur = conn.execute(
        query("events_offline_open"), {name: [getattr(r, name) for r in rows] for name in wanted}
    )
    return cur.rowcount


def open_count(conn: db.Conn) -> int:
    """Offline events open now."""
    found = conn.execute(query("events_offline_open_count")).fetchone()
    return int(found[0]) if found else 0


def list_events(
    conn: db.Conn,
    lo: datetime,
    hi: datetime,
    *,
    plates: Sequence[str] | None = None,
    kind: str | None = None,
) -> list[EventRow]:
    """Events starting in [lo, hi) and offline events still open from before,
    in (start_ts, placa, kind) order."""
    with conn.cursor(row_factory=class_row(EventRow)) as cur:
        return cur.execute(
            query("events_list"),
            {"lo": lo, "hi": hi, "plates": None if plates is None else list(plates), "kind": kind},
        ).fetchall()
