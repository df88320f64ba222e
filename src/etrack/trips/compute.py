"""Routes in the database: load positions, compute (etrack.trips.detect), store, skip unchanged days.

A run works in batches of plate-days (some plates x a run of consecutive
days). Per batch: one query fingerprints every plate-day (positions of the day
widened by the data gap, the provider's trips, the parameters) and compares it
with the stored route's; one query loads the valid positions of the stale
plate-days; one loads the provider's trips; then one transaction replaces
the `routes` rows with their `route_trips` and `route_stops` (delete, then
COPY: the cascade takes the old trips and stops).

The fingerprint is read before the positions, so a backfill landing in
between leaves a stored fingerprint older than the data used: the next run
sees the difference and recomputes, never the reverse. It is the row count,
the newest ingested_at/updated_at and the newest timestamp: a stored row
changed in place by a transaction that began before the previous run's
fingerprint yet committed after it can go unnoticed until the day changes
again (ingest only ever fills fields a row lacked, so little is lost).
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, TypeVar

import orjson
from psycopg.types.json import Jsonb

from etrack.provider import parse as records
from etrack.store import db
from etrack.store.queries import query
from etrack.trips.detect import (
    Columns,
    DayRoute,
    ProviderTrip,
    RouteParams,
    compare_with_provider,
    compute_sorted,
    day_bounds,
    empty_route,
)

__all__ = ["RoutesSummary", "compute_routes", "fleet_day_summary", "load_positions"]

logger = logging.getLogger("etrack.trips.detect")

_ROUTE_TYPES = [
    "text", "date", "jsonb", "jsonb", "jsonb", "timestamptz", "timestamptz", "int4", "int4",
    "float8", "float8", "int4", "int4", "int4", "float8", "float8", "int4", "int4", "int4",
    "jsonb", "text", "jsonb",
]  # fmt: skip
_TRIP_TYPES = [
    "text", "date", "int4", "timestamptz", "timestamptz", "float8", "float8", "float8",
    "float8", "text", "text", "float8", "int4", "float8", "float8",
]  # fmt: skip
_STOP_TYPES = [
    "text", "date", "int4", "timestamptz", "timestamptz", "float8", "float8", "text", "int4",
    "int4",
]  # fmt: skip


@dataclass(slots=True)
class RoutesSummary:
    """What a run did; `line()` is the command's one-line summary."""

    computed: int = 0
    skipped: int = 0
    empty: int = 0
    trips: int = 0
    stops: int = 0
    points: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"routes: {self.computed} plate-days computed, {self.skipped} skipped unchanged, "
            f"{self.empty} empty; {self.trips} trips, {self.stops} stops, "
            f"{self.points} points in {self.seconds:.1f} s"
        )


@dataclass(frozen=True, slots=True)
class _Stale:
    placa: str
    day: date
    invalid_rows: int
    fingerprint: str


_Computed = list[tuple[_Stale, DayRoute, "dict[str, Any] | None"]]


def compute_routes(
    target_or_conn: db.Target | db.Conn,
    params: RouteParams | None = None,
    *,
    plates: Sequence[str] | None,
    days: Sequence[date],
    force: bool = False,
    batch_plate_days: int = 100,
    progress: Callable[[RoutesSummary], None] | None = None,
) -> RoutesSummary:
    """Compute and store the routes of `plates` (None: every plate with positions
    on a day) for `days`; days whose inputs did not change are skipped unless
    `force`. `progress` is called after each batch with the running summary.

    Given a Target, two connections work at once: one thread reads the next
    batch while this one computes the current one, and another thread stores
    the previous one (PostgreSQL parsing its JSON meanwhile). Given a
    connection, everything runs on it, one step after the other. Plates are
    canonicalized (records.canonical_plate raises InvalidPlate on a bad one).
    """
    params = params or RouteParams()
    summary = RoutesSummary()
    started = time.perf_counter()
    wanted_days = sorted(set(days))
    wanted_plates = None if plates is None else [records.canonical_plate(p) for p in plates]

    def read_all(conn: db.Conn) -> Generator[_Loaded, None, None]:
        for batch_plates, batch_days in _batches(
            conn, params, wanted_plates, wanted_days, batch_plate_days
        ):
            yield _load_batch(
                conn, params, batch_plates, batch_days, force=force, auto=wanted_plates is None
            )

    def computed_batches(loaded_batches: Iterator[_Loaded]) -> Iterator[_Computed]:
        for loaded in loaded_batches:
            summary.skipped += loaded.skipped
            computed = _compute_without_gc(loaded, params)
            if computed:
                yield computed
                _count(summary, computed)
            if progress is not None:
                summary.seconds = time.perf_counter() - started
                progress(summary)

    if isinstance(target_or_conn, db.Target):
        writer = _Writer(target_or_conn, params)
        loaded_batches = _in_background(target_or_conn, read_all)
        try:
            for computed in computed_batches(loaded_batches):
                writer.submit(computed)
            writer.close()
        finally:
            loaded_batches.close()
            writer.abandon()
    else:
        conn = target_or_conn
        for computed in computed_batches(read_all(conn)):
            _store(conn, params, computed)
    summary.seconds = time.perf_counter() - started
    logger.info("%s", summary.line())
    return summary


_T = TypeVar("_T")


def _in_background(
    target: db.Target, produce: Callable[[db.Conn], Iterator[_T]], depth: int = 2
) -> Generator[_T, None, None]:
    """The items of `produce(conn)`, made ahead on a thread with a connection of its own.

    At most `depth` items wait. Closing the generator stops the thread.
    """
    items: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: int, value: object) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def run() -> None:
        try:
            with db.connection(target, autocommit=True) as conn:
                for item in produce(conn):
                    if not put(_ITEM, item):
                        return
            put(_END, None)
        except BaseException as exc:  # raised again in the consumer's thread
            put(_ERROR, exc)

    thread = threading.Thread(target=run, name="etrack-routes-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join()


_ITEM, _END, _ERROR = 0, 1, 2


@dataclass(slots=True)
class _Loaded:
    """One batch as read: the stale plate-days and everything needed to compute them."""

    stale: list[_Stale]
    skipped: int
    columns: dict[str, Columns]
    provider: dict[tuple[str, date], list[ProviderTrip]]


def _count(summary: RoutesSummary, computed: _Computed) -> None:
    for _item, route, _comparison in computed:
        summary.computed += 1
        summary.empty += route.empty
        summary.trips += len(route.trips)
        summary.stops += len(route.stops)
        summary.points += route.point_count


class _Writer:
    """Stores computed batches on its own connection and thread, one transaction each.

    At most `depth` batches wait, so memory stays bounded whatever the run's
    size. An error in the writer is raised again at the next submit or at close.
    """

    def __init__(self, target: db.Target, params: RouteParams, depth: int = 2) -> None:
        self._target = target
        self._params = params
        self._queue: queue.Queue[_Computed | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="etrack-routes-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with db.connection(self._target, autocommit=True) as conn:
                while (item := self._queue.get()) is not None:
                    if self._error is None:
                        _store(conn, self._params, item)
        except BaseException as exc:  # raised again in the caller's thread
            self._error = exc
            # Keep draining so a producer blocked on a full queue wakes up.
            while self._queue.get() is not None:
                pass

    def submit(self, computed: _Computed) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(computed)

    def close(self) -> None:
        self._finish()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()


def _day_runs(days: list[date]) -> list[list[date]]:
    runs: list[list[date]] = []
    for day in days:
        if runs and (day - runs[-1][-1]).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def _batches(
    conn: db.Conn,
    params: RouteParams,
    plates: Sequence[str] | None,
    days: list[date],
    batch_plate_days: int,
) -> Iterator[tuple[list[str], list[date]]]:
    """(plates, consecutive days) batches of about `batch_plate_days` plate-days."""
    size = max(1, batch_plate_days)
    for run in _day_runs(days):
        per_batch = min(len(run), size)
        for d in range(0, len(run), per_batch):
            chunk_days = run[d : d + per_batch]
            if plates is None:
                lo, _ = day_bounds(chunk_days[0], params.tz)
                _, hi = day_bounds(chunk_days[-1], params.tz)
                rows = conn.execute(
                    query("routes_plates_with_positions"),
                    {"lo": _utc(lo), "hi": _utc(hi)},
                ).fetchall()
                chunk_plates = [str(r[0]) for r in rows]
            else:
                chunk_plates = sorted(set(plates))
            step = max(1, size // len(chunk_days))
            for p in range(0, len(chunk_plates), step):
                yield chunk_plates[p : p + step], chunk_days


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def _load_batch(
    conn: db.Conn,
    params: RouteParams,
    plates: list[str],
    days: list[date],
    *,
    force: bool,
    auto: bool,
) -> _Loaded:
    """Fingerprint the batch's plate-days, then read what the stale ones need."""
    loaded = _Loaded([], 0, {}, {})
    if not plates:
        return loaded
    gap = timedelta(seconds=params.max_gap_s)
    bounds = [day_bounds(day, params.tz) for day in days]
    rows = conn.execute(
        query("routes_fingerprints"),
        {
            "plates": plates,
            "days": days,
            "starts": [_utc(start) for start, _ in bounds],
            "ends": [_utc(end) for _, end in bounds],
            "gap": gap,
            "params_key": params.key(),
        },
    ).fetchall()
    for placa, day, day_rows, invalid_rows, fingerprint, unchanged in rows:
        if auto and not day_rows:
            continue
        if unchanged and not force:
            loaded.skipped += 1
            continue
        loaded.stale.append(_Stale(placa, day, int(invalid_rows), fingerprint))
    if not loaded.stale:
        return loaded
    stale_plates = sorted({s.placa for s in loaded.stale})
    loaded.columns = load_positions(
        conn, stale_plates, _utc(bounds[0][0]) - gap, _utc(bounds[-1][1]) + gap
    )
    for placa, day, start, end, km in conn.execute(
        query("routes_provider_trips"), {"plates": stale_plates, "days": days}
    ):
        loaded.provider.setdefault((placa, day), []).append((start, end, km))
    return loaded


def _compute_without_gc(loaded: _Loaded, params: RouteParams) -> _Computed:
    # A batch allocates a tuple per point and keeps them all: the cyclic
    # garbage collector would rescan them over and over (a quarter of the
    # computing time) for cycles this code never makes.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _compute(loaded, params)
    finally:
        if enabled:
            gc.enable()


def _compute(loaded: _Loaded, params: RouteParams) -> _Computed:
    computed: _Computed = []
    for item in loaded.stale:
        cols = loaded.columns.get(item.placa)
        route = empty_route(item.day) if cols is None else compute_sorted(*cols, item.day, params)
        comparison = compare_with_provider(
            route.trips, loaded.provider.get((item.placa, item.day), []), params
        )
        computed.append((item, route, comparison))
    return computed


def load_positions(
    conn: db.Conn, plates: Sequence[str], lo: datetime, hi: datetime
) -> dict[str, Columns]:
    """Valid positions of `plates` in [lo, hi) as columns in time order, per plate:
    (POSIX seconds, lat, lon, speed km/h, ignition, odometer km, address)."""
    # Binary results: floats and booleans arrive without text parsing.
    with conn.cursor(binary=True) as cur:
        cur.execute(query("routes_load_positions"), {"plates": list(plates), "lo": lo, "hi": hi})
        return {row[0]: row[1:] for row in cur}


def _jsonb(value: object) -> Jsonb | None:
    return None if value is None else Jsonb(value, dumps=orjson.dumps)


def _store(conn: db.Conn, params: RouteParams, computed: _Computed) -> None:
    """Replace the batch's routes rows and, through the cascade, their trips and
    stops, in one transaction.

    COPY straight into the tables: an upsert would need a staging table, which
    costs a second write (and compression) of every day's JSON. Advisory locks
    on the batch's keys, taken in key order, make two runs over one day wait
    for each other instead of colliding on the primary key.
    """
    params_json = _jsonb(
        {
            "mode": params.mode,
            "trip_distance_m": params.trip_distance_m,
            "stop_duration_s": params.stop_duration_s,
            "max_gap_s": params.max_gap_s,
            "moving_speed_kmh": params.moving_speed_kmh,
            "speed_limit_kmh": params.speed_limit_kmh,
            "simplify_tolerance_m": params.simplify_tolerance_m,
            "timezone": _zone_name(params.tz),
        }
    )
    keys = sorted((item.placa, item.day) for item, _, _ in computed)
    key_params = {"plates": [k[0] for k in keys], "days": [k[1] for k in keys]}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(query("routes_lock_days"), key_params)
        cur.execute(query("routes_delete_days"), key_params)
        with cur.copy(query("routes_copy_routes")) as copy:
            copy.set_types(_ROUTE_TYPES)
            for item, r, comparison in computed:
                copy.write_row(
                    (
                        item.placa, item.day, _jsonb(r.points), _jsonb(r.geojson),
                        _jsonb(r.simplified), r.start_ts, r.end_ts, r.point_count,
                        item.invalid_rows, r.distance_m, r.odometer_m, r.driving_s, r.idle_s,
                        r.parked_s, r.max_speed_kmh, r.avg_speed_kmh, r.over_limit_s,
                        len(r.trips), len(r.stops), _jsonb(comparison), item.fingerprint,
                        params_json,
                    )
                )  # fmt: skip
        with cur.copy(query("routes_copy_trips")) as copy:
            copy.set_types(_TRIP_TYPES)
            for item, r, _ in computed:
                for t in r.trips:
                    copy.write_row(
                        (
                            item.placa, item.day, t.seq, t.start_ts, t.end_ts, t.start_lat,
                            t.start_lon, t.end_lat, t.end_lon, t.start_address, t.end_address,
                            t.distance_m, t.duration_s, t.max_speed_kmh, t.avg_speed_kmh,
                        )
                    )  # fmt: skip
        with cur.copy(query("routes_copy_stops")) as copy:
            copy.set_types(_STOP_TYPES)
            for item, r, _ in computed:
                for s in r.stops:
                    copy.write_row(
                        (
                            item.placa, item.day, s.seq, s.start_ts, s.end_ts, s.latitude,
                            s.longitude, s.address, s.duration_s, s.ignition_on_s,
                        )
                    )  # fmt: skip


def fleet_day_summary(
    conn: db.Conn, first: date, last: date, plates: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """The fleet day summary rows (route_day_summary) for [first, last], as dicts."""
    cur = conn.execute(
        query("routes_fleet_day_summary"),
        {"first": first, "last": last, "plates": list(plates) if plates is not None else None},
    )
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
