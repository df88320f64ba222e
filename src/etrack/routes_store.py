"""Routes in the database: load positions, compute (etrack.routes), store, skip unchanged days.

A run works in batches of plate-days (some plates x a run of consecutive
days). Per batch: one query fingerprints every plate-day (positions of the day
widened by the data gap, the provider's trips, the parameters) and compares it
with the stored route's; one query loads the valid positions of the stale
plate-days; one loads the provider's trips; then one transaction upserts the
`routes` rows and replaces their `route_trips` and `route_stops`.

The fingerprint is read before the positions, so a backfill landing in
between leaves a stored fingerprint older than the data used: the next run
sees the difference and recomputes, never the reverse. It is the row count,
the newest ingested_at/updated_at and the newest timestamp: a stored row
changed in place by a transaction that began before the previous run's
fingerprint yet committed after it can go unnoticed until the day changes
again (ingest only ever fills fields a row lacked, so little is lost).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import orjson

from etrack import db
from etrack.queries import query
from etrack.routes import (
    DayRoute,
    ProviderTrip,
    RouteParams,
    compare_with_provider,
    compute_sorted,
    day_bounds,
    empty_route,
)

__all__ = ["RoutesSummary", "compute_routes", "fleet_day_summary"]

logger = logging.getLogger("etrack.routes")

_ROUTE_TYPES = [
    "text", "date", "text", "text", "text", "timestamptz", "timestamptz", "int4", "int4",
    "float8", "float8", "int4", "int4", "int4", "float8", "float8", "int4", "int4", "int4",
    "text", "text", "text",
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
    `force`. `progress` is called after each batch with the running summary."""
    params = params or RouteParams()
    summary = RoutesSummary()
    started = time.perf_counter()
    wanted_days = sorted(set(days))
    with _open(target_or_conn) as conn:
        for batch_plates, batch_days in _batches(
            conn, params, plates, wanted_days, batch_plate_days
        ):
            _run_batch(conn, params, batch_plates, batch_days, force, summary, auto=plates is None)
            summary.seconds = time.perf_counter() - started
            if progress is not None:
                progress(summary)
    summary.seconds = time.perf_counter() - started
    logger.info("%s", summary.line())
    return summary


@contextmanager
def _open(target_or_conn: db.Target | db.Conn) -> Iterator[db.Conn]:
    if isinstance(target_or_conn, db.Target):
        with db.connection(target_or_conn, autocommit=True) as conn:
            yield conn
    else:
        yield target_or_conn


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


def _run_batch(
    conn: db.Conn,
    params: RouteParams,
    plates: list[str],
    days: list[date],
    force: bool,
    summary: RoutesSummary,
    *,
    auto: bool,
) -> None:
    if not plates:
        return
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
    stale: list[_Stale] = []
    for placa, day, day_rows, invalid_rows, fingerprint, unchanged in rows:
        if auto and not day_rows:
            continue
        if unchanged and not force:
            summary.skipped += 1
            continue
        stale.append(_Stale(placa, day, int(invalid_rows), fingerprint))
    if not stale:
        return
    stale_plates = sorted({s.placa for s in stale})
    window = {"lo": _utc(bounds[0][0]) - gap, "hi": _utc(bounds[-1][1]) + gap}
    positions = conn.execute(
        query("routes_load_positions"), {"plates": stale_plates, **window}
    ).fetchall()
    provider: dict[tuple[str, date], list[ProviderTrip]] = {}
    for placa, day, start, end, km in conn.execute(
        query("routes_provider_trips"), {"plates": stale_plates, "days": days}
    ):
        provider.setdefault((placa, day), []).append((start, end, km))

    columns = _plate_columns(positions)
    del positions
    computed: list[tuple[_Stale, DayRoute, dict[str, Any] | None]] = []
    for item in stale:
        cols = columns.get(item.placa)
        route = empty_route(item.day) if cols is None else compute_sorted(*cols, item.day, params)
        comparison = compare_with_provider(
            route.trips, provider.get((item.placa, item.day), []), params
        )
        computed.append((item, route, comparison))
    _store(conn, params, computed)
    for _item, route, _comparison in computed:
        summary.computed += 1
        summary.empty += route.empty
        summary.trips += len(route.trips)
        summary.stops += len(route.stops)
        summary.points += route.point_count


_Columns = tuple[
    Sequence[float],
    Sequence[float],
    Sequence[float],
    Sequence[float | None],
    Sequence[bool | None],
    Sequence[float | None],
    Sequence[str | None],
]


def _plate_columns(rows: list[tuple[Any, ...]]) -> dict[str, _Columns]:
    """Rows in plate and time order -> per plate, the columns compute_sorted takes."""
    if not rows:
        return {}
    placas, ts, lats, lons, speeds, ignitions, odometers, addresses = zip(*rows, strict=True)
    out: dict[str, _Columns] = {}
    start = 0
    n = len(placas)
    while start < n:
        placa = placas[start]
        # Rows come grouped by plate: find this plate's last row by galloping.
        end = start + 1
        step = 1
        while end < n and placas[end] == placa:
            end = min(n, end + step)
            step *= 2
        while end > start and placas[end - 1] != placa:
            end -= 1
        out[placa] = (
            ts[start:end],
            lats[start:end],
            lons[start:end],
            speeds[start:end],
            ignitions[start:end],
            odometers[start:end],
            addresses[start:end],
        )
        start = end
    return out


def _store(
    conn: db.Conn,
    params: RouteParams,
    computed: list[tuple[_Stale, DayRoute, dict[str, Any] | None]],
) -> None:
    """Upsert the routes rows and replace their trips and stops, in one transaction."""
    params_json = orjson.dumps(
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
    ).decode()
    dumps = orjson.dumps
    with conn.transaction():
        conn.execute(query("routes_create_staging"))
        with conn.cursor() as cur:
            with cur.copy(query("routes_copy_staging")) as copy:
                copy.set_types(_ROUTE_TYPES)
                for item, r, comparison in computed:
                    copy.write_row(
                        (
                            item.placa, item.day, dumps(r.points).decode(),
                            dumps(r.geojson).decode() if r.geojson else None,
                            dumps(r.simplified).decode() if r.simplified else None,
                            r.start_ts, r.end_ts, r.point_count, item.invalid_rows,
                            r.distance_m, r.odometer_m, r.driving_s, r.idle_s, r.parked_s,
                            r.max_speed_kmh, r.avg_speed_kmh, r.over_limit_s, len(r.trips),
                            len(r.stops),
                            dumps(comparison).decode() if comparison is not None else None,
                            item.fingerprint, params_json,
                        )
                    )  # fmt: skip
            cur.execute(query("routes_upsert_from_staging"))
            cur.execute(query("routes_delete_trips"))
            cur.execute(query("routes_delete_stops"))
            with cur.copy(query("routes_copy_trips")) as copy:
                copy.set_types(_TRIP_TYPES)
                for item, r, _ in computed:
                    for t in r.trips:
                        copy.write_row(
                            (
                                item.placa, item.day, t.seq, t.start_ts, t.end_ts, t.start_lat,
                                t.start_lon, t.end_lat, t.end_lon, t.start_address,
                                t.end_address, t.distance_m, t.duration_s, t.max_speed_kmh,
                                t.avg_speed_kmh,
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
