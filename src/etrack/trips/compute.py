"""Routes in the database: load positions, compute, store, skip unchanged days.

The orchestration of a run: storage (`etrack.store.routes`) reads and
writes, `etrack.trips.day` computes each day, `etrack.trips.compare` sets it
beside the provider's trips.

A run works in batches of plate-days (some plates x a run of consecutive
days). Per batch: one query fingerprints every plate-day (positions of the day
widened by the data gap, the provider's trips, the parameters) and compares it
with the stored route's; one query loads the valid positions of the stale
plate-days; one loads the provider's trips; then one transaction replaces
the `routes` rows with their `route_trips` and `route_stops`.

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
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from etrack.model import canonical_plate
from etrack.store import db
from etrack.store import routes as store
from etrack.trips.compare import ProviderSpan, compare_with_provider
from etrack.trips.day import (
    compute_sorted,
    day_bounds,
    day_stats,
    empty_route,
    stop_rows,
    trip_rows,
)
from etrack.trips.params import RouteParams

__all__ = ["RoutesSummary", "compute_routes"]

# The package's name rather than the module's: the worker writes this logger
# to compute_routes.log whichever trips module logs.
logger = logging.getLogger("etrack.trips")


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


_Computed = list[store.StoredDay]


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
    canonicalized (canonical_plate raises InvalidPlate on a bad one).
    """
    params = params or RouteParams()
    stored_params = params.as_json()
    summary = RoutesSummary()
    started = time.perf_counter()
    wanted_days = sorted(set(days))
    wanted_plates = None if plates is None else [canonical_plate(p) for p in plates]

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
        writer = store.RouteWriter(target_or_conn, stored_params)
        loaded_batches = db.read_ahead(target_or_conn, read_all, name="etrack-routes-reader")
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
            store.store_days(conn, computed, stored_params)
    summary.seconds = time.perf_counter() - started
    logger.info("%s", summary.line())
    return summary


@dataclass(slots=True)
class _Loaded:
    """One batch as read: the stale plate-days and everything needed to compute them."""

    stale: list[_Stale]
    skipped: int
    columns: dict[str, store.Columns]
    provider: dict[tuple[str, date], list[ProviderSpan]]


def _count(summary: RoutesSummary, computed: _Computed) -> None:
    for day in computed:
        stats = day.stats
        summary.computed += 1
        summary.empty += stats.point_count == 0
        summary.trips += stats.trip_count
        summary.stops += stats.stop_count
        summary.points += stats.point_count


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
                chunk_plates = store.plates_with_positions(conn, _utc(lo), _utc(hi))
            else:
                chunk_plates = sorted(set(plates))
            step = max(1, size // len(chunk_days))
            for p in range(0, len(chunk_plates), step):
                yield chunk_plates[p : p + step], chunk_days


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


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
    fingerprints = store.day_fingerprints(
        conn,
        plates,
        days,
        [_utc(start) for start, _ in bounds],
        [_utc(end) for _, end in bounds],
        gap=gap,
        params_key=params.key(),
    )
    for f in fingerprints:
        if auto and not f.day_rows:
            continue
        if f.unchanged and not force:
            loaded.skipped += 1
            continue
        loaded.stale.append(_Stale(f.placa, f.day, f.invalid_rows, f.fingerprint))
    if not loaded.stale:
        return loaded
    stale_plates = sorted({s.placa for s in loaded.stale})
    loaded.columns = store.load_positions(
        conn, stale_plates, _utc(bounds[0][0]) - gap, _utc(bounds[-1][1]) + gap
    )
    loaded.provider = store.provider_trips(conn, stale_plates, days)
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
        computed.append(
            store.StoredDay(
                placa=item.placa,
                day=item.day,
                points=route.points,
                geojson=route.geojson,
                simplified=route.simplified,
                stats=day_stats(route, item.invalid_rows),
                trips=trip_rows(route),
                stops=stop_rows(route),
                comparison=comparison,
                fingerprint=item.fingerprint,
            )
        )
    return computed
