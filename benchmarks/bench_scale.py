"""Per-vehicle and per-day costs at 1M and 10M positions: do they stay flat?

For each size a fresh database (benchmarks/_db.py: ETRACK_BENCH_DATABASE_URL,
else an embedded PostgreSQL) is filled by benchmarks/_fleetdata.py: 2,000
vehicles x 100 positions per plate-day, 5 days (1M) or 50 days (10M) ending on
the same day (yesterday in São Paulo), with terminals, latest_positions, the
stored routes and day summaries (compute_routes) and ANALYZE; how long loading
takes is printed. Then each of these is measured `--repeat` times (min /
median / max):

- fleet snapshot cold: GET /api/vehicles through the real app in-process
  (etrack.web.create_app over httpx.ASGITransport) with the web's 5 s fleet
  snapshot cleared before each request: the Reader's query on
  latest_positions + terminals and the FleetSnapshot encoding, plus the app's
  middleware. PostgreSQL's buffers are warm (the snapshot is what a busy
  server pays every 5 s).
- one vehicle-day: GET /api/vehicles/{plate}/days/{day}/route, a different
  stored plate-day each repetition (seeded RNG): no body-cache hit.
- month fleet report: GET /api/report over the last 30 days ending on the last
  loaded day (at 1M the database holds only 5 of those days).
- a day's routes for the fleet: compute_routes(force=True) of every plate on
  the last loaded day (recomputed and stored again each repetition).
- a new day's ingest: etrack.store.positions.store_positions, one call (one
  transaction) per plate-day as a backfill stores them, for every plate on a
  day after the loaded ones (a new day each repetition: fresh rows), rows/s.
- prune dry run: etrack.store.retention.prune(raw_only=True, dry_run=True)
  with the cutoff at local midnight in the middle of the loaded days.
- a day's events for the fleet: compute_events of every plate on the last
  loaded day, that day's events deleted before each repetition.
- visits for a day: not built yet (geofences, issue 17).

Then the 10M/1M ratio of each median (first and last size given) against the
targets of issue 15. `--explain` prints the plans (EXPLAIN ANALYZE, BUFFERS)
of the report, summaries and prune-count queries at the last size.

Usage:
    ETRACK_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_scale.py [--sizes 1M,10M] [--vehicles 2000]
        [--rows-per-day 100] [--repeat 5] [--explain]

`--sizes` are position counts (k/M suffixes); the days loaded are
size / (vehicles x rows per day). Small check: --vehicles 200 --sizes 20k,200k.
Takes about 10 minutes at the full sizes on 2 cores (most of it loading 10M
rows and computing 100,000 routes), about a minute at the small check.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _db import bench_database
from _fleetdata import TZ, Fleet, day_rows, default_end_day, load_fleet

from etrack.config import Settings
from etrack.events.compute import compute_events
from etrack.events.params import EventParams
from etrack.model import Position
from etrack.store import db
from etrack.store import positions as ingest
from etrack.store.queries import query
from etrack.store.retention import prune
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams
from etrack.web import create_app

BASE = "http://127.0.0.1:5001"  # a Host the app's Host check lets through
VEHICLES = 2000
ROWS_PER_DAY = 100


@dataclass(slots=True)
class Timing:
    name: str
    seconds: list[float] = field(default_factory=list)
    rows: int = 0  # per repetition, for a rate
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def line(self) -> str:
        ms = [s * 1000 for s in self.seconds]
        text = (
            f"{self.name:<28} min {min(ms):9.1f}  median {statistics.median(ms):9.1f}  "
            f"max {max(ms):9.1f} ms"
        )
        if self.rows:
            text += f"  ({self.rows / self.median:,.0f} rows/s at the median)"
        if self.note:
            text += f"  [{self.note}]"
        return text


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


def label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1_000 and size % 1_000 == 0:
        return f"{size // 1_000}k"
    return str(size)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


async def web_timings(
    target: db.Target, fleet: Fleet, repeat: int, rng: random.Random
) -> list[Timing]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(target.conninfo),
        etrack_data_dir=Path(tempfile.mkdtemp(prefix="etrack-bench-scale-")),
    )
    app = create_app(settings, target, scheduler=False)
    web = app.state.web
    snapshot = Timing("fleet snapshot cold")
    vehicle_day = Timing("one vehicle-day (route)")
    report = Timing("month fleet report")
    first = fleet.end_day - timedelta(days=29)
    report_url = f"/api/report?start={first.isoformat()}&end={fleet.end_day.isoformat()}"
    plate_days = rng.sample(
        [(p, d) for p in fleet.plates for d in fleet.days], min(repeat, len(fleet.plates))
    )
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:

            async def get(path: str) -> httpx.Response:
                response = await client.get(path)
                assert response.status_code == 200, (path, response.status_code, response.text)
                return response

            await get("/api/vehicles")  # opens the pool: not measured
            cache = await web.fleet()
            for _ in range(repeat):
                cache.clear()
                started = time.perf_counter()
                body = (await get("/api/vehicles")).json()
                snapshot.seconds.append(time.perf_counter() - started)
                assert body["count"] == len(fleet.plates), body["count"]
            for n in range(repeat):
                placa, day = plate_days[n % len(plate_days)]
                started = time.perf_counter()
                feature = (await get(f"/api/vehicles/{placa}/days/{day.isoformat()}/route")).json()
                vehicle_day.seconds.append(time.perf_counter() - started)
                assert feature["properties"]["point_count"] == fleet.rows_per_day
            for _ in range(repeat):
                started = time.perf_counter()
                rows = (await get(report_url)).json()
                report.seconds.append(time.perf_counter() - started)
                assert rows["count"] == len(fleet.plates), rows["count"]
    finally:
        await web.close()
    return [snapshot, vehicle_day, report]


def routes_timing(target: db.Target, fleet: Fleet, repeat: int) -> Timing:
    timing = Timing("a day's routes (fleet)")
    params = RouteParams(tz=TZ)
    for _ in range(repeat):
        summary = None

        def run() -> None:
            nonlocal summary
            summary = compute_routes(
                target, params, plates=fleet.plates, days=[fleet.end_day], force=True
            )

        timing.seconds.append(timed(run))
        assert summary is not None
        assert summary.computed == len(fleet.plates), summary
    return timing


def events_timing(target: db.Target, fleet: Fleet, repeat: int) -> Timing:
    """compute_events of every plate on the last loaded day, that day's events
    deleted before each repetition (all found and written again, as the
    daily run does for a new day)."""
    timing = Timing("a day's events (fleet)")
    settings = Settings(_env_file=None, etrac_timezone=TZ.key)  # type: ignore[call-arg]
    params = EventParams.from_settings(settings)
    lo = datetime.combine(fleet.end_day, datetime.min.time(), TZ)
    with db.connection(target, autocommit=True) as conn:
        for _ in range(repeat):
            conn.execute(
                "DELETE FROM events WHERE start_ts >= %s AND start_ts < %s",
                (lo, lo + timedelta(days=1)),
            )
            summary = None

            def run() -> None:
                nonlocal summary
                summary = compute_events(target, fleet.plates, fleet.end_day, fleet.end_day, params)

            timing.seconds.append(timed(run))
            assert summary is not None
            assert summary.events > 0, summary
            timing.note = f"{summary.events:,} events: " + ", ".join(
                f"{k} {n:,}" for k, n in summary.by_kind.items() if n
            )
    return timing


def prune_timing(target: db.Target, fleet: Fleet, repeat: int) -> tuple[Timing, str]:
    timing = Timing("prune --raw-only dry run")
    middle = fleet.days[len(fleet.days) // 2]
    cutoff = datetime.combine(middle, datetime.min.time(), TZ)
    counts: dict[str, int] = {}
    with db.connection(target, autocommit=True) as conn:
        for _ in range(repeat):
            started = time.perf_counter()
            report = prune(conn, cutoff, raw_only=True, dry_run=True)
            timing.seconds.append(time.perf_counter() - started)
            counts = report.counts()
    return timing, f"cutoff {cutoff.isoformat(' ', 'minutes')}: {counts['raw_cleared']:,} rows"


def ingest_timing(target: db.Target, fleet: Fleet, repeat: int) -> Timing:
    timing = Timing("a new day's ingest")
    keeper = ingest.PartitionKeeper()
    with db.connection(target, autocommit=True) as conn:
        new_days = [fleet.end_day + timedelta(days=1 + n) for n in range(repeat)]
        keeper.ensure(
            conn,
            [
                datetime.combine(d, datetime.min.time(), TZ).astimezone(UTC)
                for d in [*new_days, new_days[-1] + timedelta(days=1)]
            ],
        )
        for day in new_days:
            batches = day_rows(conn, fleet, day)
            timing.rows = sum(len(b) for b in batches)

            def run(batches: list[list[Position]] = batches) -> None:
                for batch in batches:
                    ingest.store_positions(conn, batch, partitions=keeper)

            timing.seconds.append(timed(run))
    return timing


EXPLAINED = ("web_fleet_report", "web_day_summaries_count", "web_day_summaries_page")


def explain(target: db.Target, fleet: Fleet) -> None:
    first = fleet.end_day - timedelta(days=29)
    args = {
        "first": first,
        "last": fleet.end_day,
        "frota": None,
        "plates": None,
        "after_date": fleet.end_day - timedelta(days=2),
        "after_placa": fleet.plates[len(fleet.plates) // 2],
        "limit": 5001,
    }
    conninfo = db.session_conninfo(target, interactive=True)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for name in EXPLAINED:
            print(f"--- EXPLAIN {name}")
            for (line,) in conn.execute(
                b"EXPLAIN (ANALYZE, BUFFERS) " + query(name).encode(), args
            ):
                print("   ", line)
        middle = fleet.days[len(fleet.days) // 2]
        cutoff = datetime.combine(middle, datetime.min.time(), TZ)
        part = "positions_y" + cutoff.astimezone(UTC).strftime("%Ym%m")
        print(f"--- EXPLAIN retention_count_partition on {part} (the month holding the cutoff)")
        sql = query("retention_count_partition").replace("{partition}", part)
        for (line,) in conn.execute(
            b"EXPLAIN (ANALYZE, BUFFERS) " + sql.encode(), {"cutoff": cutoff}
        ):
            print("   ", line)


def run_size(size: int, args: argparse.Namespace, end_day: date, last: bool) -> dict[str, Timing]:
    days = max(1, size // (args.vehicles * args.rows_per_day))
    print(f"\n== {label(size)} positions: {args.vehicles:,} vehicles x {days} days x "
          f"{args.rows_per_day} rows ==")  # fmt: skip
    with bench_database("etrack_bench_scale") as target:
        fleet = load_fleet(
            target, vehicles=args.vehicles, days=days, rows_per_day=args.rows_per_day,
            end_day=end_day,
        )  # fmt: skip
        for line in fleet.lines():
            print(line)
        with db.connection(target, autocommit=True) as conn:
            sizes = conn.execute(
                "SELECT pg_size_pretty(pg_database_size(current_database())),"
                " pg_size_pretty(sum(pg_total_relation_size(inhrelid)))"
                " FROM pg_inherits WHERE inhparent = 'positions'::regclass"
            ).fetchone()
            assert sizes is not None
            print(f"database {sizes[0]}, positions (all partitions, indexes) {sizes[1]}")
        rng = random.Random(size)
        timings = asyncio.run(web_timings(target, fleet, args.repeat, rng))
        timings.append(routes_timing(target, fleet, args.repeat))
        timings.append(events_timing(target, fleet, args.repeat))
        prune_t, prune_note = prune_timing(target, fleet, args.repeat)
        timings.append(prune_t)
        timings.append(ingest_timing(target, fleet, args.repeat))
        for t in timings:
            print(t.line() + (f"  [{prune_note}]" if t is prune_t else ""))
        print(f"{'visits for a day':<28} n/a (geofences not built yet: issue 17)")
        if args.explain and last:
            explain(target, fleet)
    return {t.name: t for t in timings}


# name -> (kind, limit): "ratio" (10M/1M median) or "abs" (seconds at the last size).
TARGETS: dict[str, list[tuple[str, float]]] = {
    "fleet snapshot cold": [("ratio", 1.3), ("abs", 0.050)],
    "one vehicle-day (route)": [("ratio", 1.3)],
    "month fleet report": [("abs", 0.100)],
    "a day's routes (fleet)": [("ratio", 1.3)],
    "a day's events (fleet)": [("ratio", 1.3)],
    "a new day's ingest": [("ratio", 1.3)],
    "prune --raw-only dry run": [("abs", 1.0)],
}


def summary(results: dict[int, dict[str, Timing]], vehicles: int) -> bool:
    sizes = sorted(results)
    small, big = sizes[0], sizes[-1]
    a, b = label(small), label(big)
    print(f"\n== {b}/{a} (medians) and the targets of issue 15 ==")
    print(f"{'':<28} {a:>10} {b:>10} {'ratio':>7}  target")
    ok = True
    for name, targets in TARGETS.items():
        lo, hi = results[small][name].median, results[big][name].median
        ratio = hi / lo if lo else float("inf")
        verdicts = []
        for kind, limit in targets:
            if kind == "ratio":
                if small == big:
                    continue
                met = ratio <= limit
                verdicts.append(f"ratio <= {limit}: {'met' if met else 'NOT met'}")
            else:
                met = hi <= limit
                at = "" if vehicles == VEHICLES else f" (target is for {VEHICLES:,} vehicles)"
                verdicts.append(
                    f"<= {limit * 1000:.0f} ms at {b}: {'met' if met else 'NOT met'}{at}"
                )
            ok &= met
        print(
            f"{name:<28} {lo * 1000:8.1f}ms {hi * 1000:8.1f}ms {ratio:7.2f}  " + "; ".join(verdicts)
        )
    print(f"{'visits for a day':<28} n/a (geofences not built yet: issue 17)")
    print(f"(month report: at {a} the last 30 days hold only the loaded days)")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,10M", help="position counts, e.g. 20k,200k")
    parser.add_argument("--vehicles", type=int, default=VEHICLES)
    parser.add_argument("--rows-per-day", type=int, default=ROWS_PER_DAY)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--explain", action="store_true", help="plans of the key queries")
    args = parser.parse_args()
    print("command:", " ".join([".venv/bin/python", "benchmarks/bench_scale.py", *sys.argv[1:]]))
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    end_day = default_end_day()
    started = time.perf_counter()
    results: dict[int, dict[str, Timing]] = {}
    for n, size in enumerate(sizes):
        results[size] = run_size(size, args, end_day, last=n == len(sizes) - 1)
    ok = summary(results, args.vehicles)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
