"""Storage per position: bytes per million positions, with and without the raw JSON.

The positions are the built-in simulator's history answers (API-shaped rows,
its default quirks included), through the collector's own path:
parse_positions -> flag_sequence -> ingest.store_positions, so `raw`
holds exactly what the collector stores. Sizes are PostgreSQL's own
(pg_relation_size / pg_table_size / pg_indexes_size of every month
partition of positions) after VACUUM ANALYZE.

Then the raw JSON is cleared with etrack.store.retention (raw_only, which compacts each
whole month with VACUUM FULL) and the same sizes are read again. Last, the
routes of those days are computed and the routes, route_trips and route_stops
tables measured per plate-day.

Usage: python benchmarks/bench_storage.py [--vehicles 200] [--days 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database

from etrack.model import Position
from etrack.provider.parse import parse_positions
from etrack.quality import flag_sequence
from etrack.simulator.config import FleetConfig
from etrack.simulator.fleet import Fleet
from etrack.store import db
from etrack.store import positions as ingest
from etrack.store.retention import prune
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams

TZ = ZoneInfo("America/Sao_Paulo")
FIRST_DAY = date(2025, 3, 3)  # a Monday; all in March: whole months to clear
MILLION = 1_000_000

SIZES = """
SELECT count(*) AS partitions,
       coalesce(sum(pg_relation_size(c.oid)), 0) AS heap,
       coalesce(sum(pg_table_size(c.oid) - pg_relation_size(c.oid)), 0) AS toast_and_maps,
       coalesce(sum(pg_indexes_size(c.oid)), 0) AS indexes,
       coalesce(sum(pg_total_relation_size(c.oid)), 0) AS total
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'positions'::regclass
"""


def load(target: db.Target, fleet: Fleet, days: list[date]) -> tuple[int, float]:
    now = datetime.now(TZ)
    keeper = ingest.PartitionKeeper()
    stored = 0
    started = time.perf_counter()
    with db.connection(target, autocommit=True) as conn:
        for plate in fleet.plates():
            batch: list[Position] = []
            for day in days:
                parsed = parse_positions(
                    fleet.history_rows(plate, day), TZ, now=now, future_tolerance_s=600
                )
                batch.extend(flag_sequence(parsed.positions, jump_speed_kmh=300))
            stored += ingest.store_positions(conn, batch, partitions=keeper).inserted
        conn.execute("VACUUM ANALYZE positions")
    return stored, time.perf_counter() - started


def sizes(target: db.Target) -> dict[str, int]:
    with db.connection(target, autocommit=True) as conn:
        cur = conn.execute(SIZES)
        row = cur.fetchone()
        assert row is not None
        assert cur.description is not None
        return {col.name: int(value) for col, value in zip(cur.description, row, strict=True)}


def per_million(value: int, rows: int) -> str:
    return f"{value / rows * MILLION / 1024**2:7.1f} MiB"


def show(label: str, measured: dict[str, int], rows: int) -> None:
    print(
        f"{label}: {measured['total'] / rows:6.1f} bytes/position = "
        f"{per_million(measured['total'], rows)} per million "
        f"(heap {per_million(measured['heap'], rows)}, TOAST+maps "
        f"{per_million(measured['toast_and_maps'], rows)}, indexes "
        f"{per_million(measured['indexes'], rows)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    days = [FIRST_DAY + timedelta(days=k) for k in range(args.days)]
    fleet = Fleet(FleetConfig(seed=7, vehicles=args.vehicles, history_start=date(2024, 1, 1)))
    with bench_database("etrack_bench_storage") as target:
        rows, took = load(target, fleet, days)
        print(
            f"{rows:,} positions ({args.vehicles} vehicles x {args.days} days, "
            f"{rows / (args.vehicles * args.days):.0f} per vehicle-day) stored in {took:.1f} s"
        )
        with db.connection(target, autocommit=True) as conn:
            raw = conn.execute(
                "SELECT avg(pg_column_size(raw)), avg(octet_length(raw::text)) FROM positions"
            ).fetchone()
        assert raw is not None
        print(f"raw JSON: {raw[0]:.0f} bytes stored (jsonb) per position, {raw[1]:.0f} as text")
        with_raw = sizes(target)
        show("with raw JSON   ", with_raw, rows)

        cutoff = datetime(days[-1].year, days[-1].month, 1, tzinfo=TZ) + timedelta(days=32)
        cutoff = cutoff.replace(day=1)
        with db.connection(target, autocommit=True) as conn:
            started = time.perf_counter()
            report = prune(conn, cutoff, raw_only=True)
            cleared_in = time.perf_counter() - started
        cleared = report.counts()["raw_cleared"]
        print(
            f"etrack prune --raw-only: {cleared:,} rows cleared and compacted in {cleared_in:.1f} s"
        )
        without = sizes(target)
        show("without raw JSON", without, rows)
        print(
            f"raw JSON share of the positions storage: {1 - without['total'] / with_raw['total']:.0%}"
        )

        plate_days = args.vehicles * args.days
        compute_routes(target, RouteParams(tz=TZ), plates=None, days=days, force=True)
        with db.connection(target, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE routes, route_trips, route_stops")
            row = conn.execute(
                "SELECT pg_total_relation_size('routes'), pg_total_relation_size('route_trips'),"
                " pg_total_relation_size('route_stops'), (SELECT count(*) FROM routes),"
                " (SELECT sum(point_count) FROM routes)"
            ).fetchone()
        assert row is not None
        total = sum(int(v) for v in row[:3])
        print(
            f"routes + route_trips + route_stops: {total / plate_days / 1024:.1f} KiB per plate-day "
            f"({int(row[3]):,} routes; routes {int(row[0]) / plate_days / 1024:.1f} KiB, trips "
            f"{int(row[1]) / plate_days / 1024:.2f} KiB, stops {int(row[2]) / plate_days / 1024:.2f} KiB)"
            f" = {total / int(row[4]):.0f} bytes per valid point of a route"
        )


if __name__ == "__main__":
    main()
