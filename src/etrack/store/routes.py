"""Routes in the database: what the route computation reads and what it stores.

The SQL side of `etrack.trips.compute`: the plates holding positions, the
fingerprint of each plate-day against its stored route's, the valid
positions as columns, the provider's trips, and the writer that replaces
`routes` rows with their `route_trips`, `route_stops` and
`route_day_summaries` (delete, then COPY: the cascade takes the old trips,
stops and summaries). A computed day arrives as plain
rows (`StoredDay`, `etrack.model.DayStats`, `TripRow`, `StopRow`): nothing
here knows how a route is computed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from psycopg.types.json import Jsonb

from etrack.model import DayStats, StopRow, TripRow
from etrack.store import db
from etrack.store.queries import query

__all__ = [
    "Columns",
    "DayFingerprint",
    "RouteWriter",
    "StoredDay",
    "day_fingerprints",
    "load_positions",
    "plates_with_positions",
    "provider_trips",
    "store_days",
]

Columns = tuple[
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float | None],
    Sequence[bool | None],
    Sequence[float | None],
    Sequence[str | None],
]
"""A plate's valid positions as columns in time order: POSIX seconds, latitude,
longitude, speed km/h, ignition, odometer km, address."""

_ROUTE_TYPES = [
    "text", "date", "jsonb", "jsonb", "jsonb", "timestamptz", "timestamptz", "int4", "int4",
    "float8", "float8", "int4", "int4", "int4", "float8", "float8", "int4", "int4", "int4",
    "jsonb", "text", "jsonb",
]  # fmt: skip
_TRIP_TYPES = [
    "text", "date", "int4", "timestamptz", "timestamptz", "float8", "float8", "float8",
    "float8", "text", "text", "float8", "int4", "float8", "float8", "int4",
]  # fmt: skip
_STOP_TYPES = [
    "text", "date", "int4", "timestamptz", "timestamptz", "float8", "float8", "text", "int4",
    "int4",
]  # fmt: skip


class DayFingerprint(NamedTuple):
    """A plate-day's rows and the fingerprint of everything its route depends on."""

    placa: str
    day: date
    day_rows: int
    """Positions of the day, of any quality."""
    invalid_rows: int
    """Of those, the ones flagged not valid."""
    fingerprint: str
    unchanged: bool
    """The stored route has this very fingerprint."""


class StoredDay(NamedTuple):
    """One computed plate-day as it is stored."""

    placa: str
    day: date
    points: Sequence[tuple[float, float, float, float | None, bool | None]]
    geojson: dict[str, Any] | None
    simplified: dict[str, Any] | None
    stats: DayStats
    trips: Sequence[TripRow]
    stops: Sequence[StopRow]
    comparison: dict[str, Any] | None
    fingerprint: str


def plates_with_positions(conn: db.Conn, lo: datetime, hi: datetime) -> list[str]:
    """Plates holding any position (of any quality) in [lo, hi), in order."""
    rows = conn.execute(query("routes_plates_with_positions"), {"lo": lo, "hi": hi}).fetchall()
    return [str(r[0]) for r in rows]


def day_fingerprints(
    conn: db.Conn,
    plates: Sequence[str],
    days: Sequence[date],
    starts: Sequence[datetime],
    ends: Sequence[datetime],
    *,
    gap: timedelta,
    params_key: str,
) -> list[DayFingerprint]:
    """Every plate x day, each day [start, end) in the caller's time zone; the
    positions within `gap` of the day count too (the midnight cut uses them)."""
    rows = conn.execute(
        query("routes_fingerprints"),
        {
            "plates": list(plates),
            "days": list(days),
            "starts": list(starts),
            "ends": list(ends),
            "gap": gap,
            "params_key": params_key,
        },
    ).fetchall()
    return [
        DayFingerprint(placa, day, int(day_rows), int(invalid_rows), fingerprint, bool(unchanged))
        for placa, day, day_rows, invalid_rows, fingerprint, unchanged in rows
    ]


def load_positions(
    conn: db.Conn, plates: Sequence[str], lo: datetime, hi: datetime
) -> dict[str, Columns]:
    """Valid positions of `plates` in [lo, hi) as columns in time order, per plate:
    (POSIX seconds, lat, lon, speed km/h, ignition, odometer km, address)."""
    # Binary results: floats and booleans arrive without text parsing.
    with conn.cursor(binary=True) as cur:
        cur.execute(query("routes_load_positions"), {"plates": list(plates), "lo": lo, "hi": hi})
        return {row[0]: row[1:] for row in cur}


def provider_trips(
    conn: db.Conn, plates: Sequence[str], days: Sequence[date]
) -> dict[tuple[str, date], list[tuple[datetime, datetime | None, float | None]]]:
    """The provider's trips of `plates` on `days` per (plate, day), in start order:
    (data_inicio_conducao, data_fim_conducao, distancia_conducao km)."""
    found: dict[tuple[str, date], list[tuple[datetime, datetime | None, float | None]]] = {}
    for placa, day, start, end, km in conn.execute(
        query("routes_provider_trips"), {"plates": list(plates), "days": list(days)}
    ):
        found.setdefault((placa, day), []).append((start, end, km))
    return found


def _jsonb(value: object) -> Jsonb | None:
    return None if value is None else Jsonb(value, dumps=orjson.dumps)


def store_days(conn: db.Conn, days: Sequence[StoredDay], params: Mapping[str, object]) -> None:
    """Replace the routes rows of `days` and, through the cascade, their trips,
    stops and day summaries, in one transaction; `params` is stored beside
    each route and the day summaries (route_day_summaries) are written from
    the stored routes.

    COPY straight into the tables: an upsert would need a staging table, which
    costs a second write (and compression) of every day's JSON. Advisory locks
    on the batch's keys, taken in key order, make two runs over one day wait
    for each other instead of colliding on the primary key.
    """
    params_json = _jsonb(params)
    keys = sorted((d.placa, d.day) for d in days)
    key_params = {"plates": [k[0] for k in keys], "days": [k[1] for k in keys]}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("routes_lock_days"), key_params)
        cur.execute(query("routes_delete_days"), key_params)
        with cur.copy(query("routes_copy_routes")) as copy:
            copy.set_types(_ROUTE_TYPES)
            for d in days:
                copy.write_row(
                    (
                        d.placa, d.day, _jsonb(d.points), _jsonb(d.geojson), _jsonb(d.simplified),
                        *d.stats, _jsonb(d.comparison), d.fingerprint, params_json,
                    )
                )  # fmt: skip
        with cur.copy(query("routes_copy_trips")) as copy:
            copy.set_types(_TRIP_TYPES)
            for d in days:
                for t in d.trips:
                    copy.write_row((d.placa, d.day, *t))
        with cur.copy(query("routes_copy_stops")) as copy:
            copy.set_types(_STOP_TYPES)
            for d in days:
                for s in d.stops:
                    copy.write_row((d.placa, d.day, *s))
        # From the rows just written, so a summary is exactly its route's.
        cur.execute(query("routes_store_summaries"), key_params)


class RouteWriter:
    """Stores batches of days (`store_days`) on its own connection and thread,
    one transaction each.

    At most `depth` batches wait, so memory stays bounded whatever the run's
    size. An error in the writer is raised again at the next submit or at close.
    """

    def __init__(self, target: db.Target, params: Mapping[str, object], depth: int = 2) -> None:
        self._target = target
        self._params = params
        self._queue: queue.Queue[Sequence[StoredDay] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="etrack-routes-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with db.connection(self._target, autocommit=True) as conn:
                while (item := self._queue.get()) is not None:
                    if self._error is None:
                        store_days(conn, item, self._params)
        except BaseException as exc:  # raised again in the caller's thread
            self._error = exc
            # Keep draining so a producer blocked on a full queue wakes up.
            while self._queue.get() is not None:
                pass

    def submit(self, days: Sequence[StoredDay]) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(days)

    def close(self) -> None:
        """Wait for every submitted batch; raise the writer's error, if any."""
        self._finish()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Stop the thread without raising (after an error elsewhere)."""
        self._finish()

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
