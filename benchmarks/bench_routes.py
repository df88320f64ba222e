"""Route computation throughput: positions in PostgreSQL -> stored routes, trips, stops.

Side by side in one run, over the same plate-days:

- read: merely reading the positions `compute_routes` needs, with the same
  query and the same batches, into Python tuples (the floor).
- compute: `compute_routes(..., force=True)`: fingerprints, load,
  per-point computation, provider comparison, upsert of `routes` and
  replacement of `route_trips`/`route_stops`.
- skip: the same run again without force: every day unchanged.

The positions are the built-in simulator's (default quirks: jumps and no-fix
rows stored flagged), written with etrack.store.positions. Each timing is the best of
`--repeat` runs, alternating read and compute so both see the same cache.

Usage: python benchmarks/bench_routes.py [--vehicles 350] [--days 3] [--repeat 3]
Target: compute <= 3 x read.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database

from etrack.model import Position
from etrack.simulator.config import FleetConfig
from etrack.simulator.fleet import Fleet
from etrack.store import db
from etrack.store import positions as ingest
from etrack.store.routes import load_positions
from etrack.trips.compute import compute_routes
from etrack.trips.day import day_bounds
from etrack.trips.params import RouteParams

FIRST_DAY = date(2025, 3, 3)  # a Monday: most vehicles work
BATCH_PLATE_DAYS = 100


def load(target: db.Target, fleet: Fleet, days: list[date]) -> int:
    stored = 0
    keeper = ingest.PartitionKeeper()
    with db.connection(target, autocommit=True) as conn:
        for plate in fleet.plates():
            batch: list[Position] = []
            # One day either side: context for the midnight cut, as in real data.
            for day in [days[0] - timedelta(days=1), *days, days[-1] + timedelta(days=1)]:
                for e in fleet.expected_positions(plate, day):
                    batch.append(
                        Position(
                            e.placa, e.data_transmissao, e.latitude, e.longitude, e.velocidade,
                            e.ignicao, e.odometro, None, e.horimetro, e.bateria, e.logradouro,
                            None, None, None, None, e.placa, e.quality, {},
                        )
                    )  # fmt: skip
            stored += ingest.store_positions(conn, batch, partitions=keeper).inserted
        conn.execute("VACUUM ANALYZE positions")
    return stored


def read_only(target: db.Target, params: RouteParams, plates: list[str], days: list[date]) -> int:
    """The positions compute_routes loads, with its function and batch shape, and nothing else."""
    rows = 0
    gap = timedelta(seconds=params.max_gap_s)
    per_batch = max(1, BATCH_PLATE_DAYS // len(days))
    lo = datetime.fromtimestamp(day_bounds(days[0], params.tz)[0], UTC) - gap
    hi = datetime.fromtimestamp(day_bounds(days[-1], params.tz)[1], UTC) + gap
    with db.connection(target, autocommit=True) as conn:
        for p in range(0, len(plates), per_batch):
            columns = load_positions(conn, plates[p : p + per_batch], lo, hi)
            rows += sum(len(c[0]) for c in columns.values())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=350)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    days = [FIRST_DAY + timedelta(days=k) for k in range(args.days)]
    fleet = Fleet(FleetConfig(seed=11, vehicles=args.vehicles, history_start=date(2024, 1, 1)))
    params = RouteParams()
    with bench_database("etrack_bench_routes") as target:
        started = time.perf_counter()
        stored = load(target, fleet, days)
        print(f"stored {stored} positions in {time.perf_counter() - started:.1f} s")
        plates = sorted(fleet.plates())
        plate_days = len(plates) * len(days)
        read_times: list[float] = []
        compute_times: list[float] = []
        rows = 0
        summary = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = read_only(target, params, plates, days)
            read_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            summary = compute_routes(
                target,
                params,
                plates=plates,
                days=days,
                force=True,
                batch_plate_days=BATCH_PLATE_DAYS,
            )
            compute_times.append(time.perf_counter() - t0)
        assert summary is not None
        t0 = time.perf_counter()
        again = compute_routes(target, params, plates=plates, days=days)
        skip_time = time.perf_counter() - t0
        read, compute = min(read_times), min(compute_times)
        print(f"{plate_days} plate-days, {rows} valid positions read (with midnight context)")
        print(f"read only:          {read:.3f} s  ({rows / read:,.0f} rows/s)")
        print(f"compute and store:  {compute:.3f} s  ({summary.line()})")
        print(f"unchanged re-run:   {skip_time:.3f} s  ({again.line()})")
        print(f"ratio compute/read: {compute / read:.2f} (target <= 3)")


if __name__ == "__main__":
    main()
