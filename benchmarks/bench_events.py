"""Event computation vs route computation over the same plate-days, side by side.

In one run, over the same stored positions (the built-in simulator's, default
quirks, loaded as benchmarks/bench_routes.py loads them):

- routes: `compute_routes(..., force=True)`, the whole route pipeline.
- events: `compute_events(...)` for the same plates and days: load, every
  detector, the start details, the idempotent replacement of the events.
  The first run inserts every event; the next ones find them unchanged and
  write nothing (routes, forced, rewrite every day each time).

The two computations alternate, `--repeat` times each, so both see the same
cache; min / median / max are printed for each.

`--limited-fences N` first stores N fences with a speed limit of 40 km/h
(bench_visits' fences: at the fleet's stopping places and anywhere in its
region), so the events also read the positions' places and test them
against the fences for the overspeed zones.

Usage: python benchmarks/bench_events.py [--vehicles 350] [--days 3] [--repeat 3] [--limited-fences N]
Target: events median <= 0.5 x routes median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database
from bench_routes import BATCH_PLATE_DAYS, FIRST_DAY, load
from bench_visits import make_fences

from etrack.events.compute import compute_events
from etrack.events.params import EventParams, Thresholds
from etrack.geofences.imports import parse_fences
from etrack.simulator.config import FleetConfig
from etrack.simulator.fleet import Fleet
from etrack.store import db
from etrack.store.geofences import upsert_fences
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams


def spread(times: list[float]) -> str:
    return (
        f"min {min(times):.3f} s  median {statistics.median(times):.3f} s  max {max(times):.3f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=350)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limited-fences", type=int, default=0)
    args = parser.parse_args()
    days: list[date] = [FIRST_DAY + timedelta(days=k) for k in range(args.days)]
    fleet = Fleet(FleetConfig(seed=11, vehicles=args.vehicles, history_start=date(2024, 1, 1)))
    route_params = RouteParams()
    event_params = EventParams(base=Thresholds(tz=route_params.tz))
    with bench_database("etrack_bench_events") as target:
        started = time.perf_counter()
        stored = load(target, fleet, days)
        print(f"stored {stored} positions in {time.perf_counter() - started:.1f} s")
        if args.limited_fences:
            collection = make_fences(fleet, days, args.limited_fences)
            for feature in collection["features"]:
                feature["properties"]["speed_limit_kmh"] = 40
            fences = parse_fences(json.dumps(collection), "geojson", source="bench", group=None)
            with db.connection(target, autocommit=True) as conn:
                upsert_fences(conn, fences)
            print(f"{len(fences)} fences with a speed limit of 40 km/h")
        plates = sorted(fleet.plates())
        routes_times: list[float] = []
        events_times: list[float] = []
        routes_line = events_line = ""
        first_line = ""
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            routes = compute_routes(
                target,
                route_params,
                plates=plates,
                days=days,
                force=True,
                batch_plate_days=BATCH_PLATE_DAYS,
            )
            routes_times.append(time.perf_counter() - t0)
            routes_line = routes.line()
            t0 = time.perf_counter()
            events = compute_events(target, plates, days[0], days[-1], event_params)
            events_times.append(time.perf_counter() - t0)
            events_line = events.line()
            first_line = first_line or events_line
        print(f"{len(plates) * len(days)} plate-days ({len(plates)} vehicles x {len(days)} days)")
        print(f"routes: {spread(routes_times)}  ({routes_line})")
        print(f"events: {spread(events_times)}")
        print(f"  first run ({events_times[0]:.3f} s, every event new): {first_line}")
        print(f"  last run ({events_times[-1]:.3f} s, every event unchanged): {events_line}")
        ratio = statistics.median(events_times) / statistics.median(routes_times)
        print(f"ratio events/routes (medians): {ratio:.2f} (target <= 0.5)")


if __name__ == "__main__":
    main()
