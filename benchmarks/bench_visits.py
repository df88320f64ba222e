"""Geofence visits against the bare read of the same positions, side by side.

1,000 fences x 350 vehicles x 3 days of history: the built-in simulator's
positions (default quirks: jumps and no-fix rows stored flagged), written with
etrack.store.positions as benchmarks/bench_routes.py loads them (a day either
side for context). The fences (fixed rng seed), imported through
`parse_fences(..., "geojson")` and `upsert_fences`:

- around the fleet's real stopping places (`etrack.simulator.fences`):
  circles of 100-250 m and convex polygons (5-8 corners, 120-300 m from the
  place), 60 % of the fences;
- random ones anywhere in the fleet's region: circles of 100 m-1.5 km and
  convex polygons of 200 m-2 km, the other 40 %.

In each round, alternating so both see the same cache:

- read: `etrack.store.geofences.load_tracks` for the very plate batches
  (`PLATES_PER_BATCH`) and the window compute_visits reads (the range and a
  day either side): the positions, as arrays, and nothing else;
- visits, fresh: `compute_visits(target, plates, first_day, last_day)` with
  no visit stored (deleted, untimed, before each round): the same read plus
  the spans, the stored visits begun earlier, the STRtree tests, the visit
  rules, every visit and its enter/exit events written;
- visits, rerun: the same call again: every visit found unchanged, nothing
  written.

min / median / max of `--repeat` rounds; `--profile` runs one more
fresh compute_visits under cProfile and prints where its time goes.

Usage: python benchmarks/bench_visits.py [--vehicles 350] [--days 3] [--fences 1000] [--repeat 3] [--profile]
Target: each visits median <= 2 x read median.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import random
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database
from bench_routes import FIRST_DAY, load

from etrack.geofences.compute import MARGIN, PLATES_PER_BATCH, VisitParams, compute_visits
from etrack.geofences.compute import day_bounds as visit_bounds
from etrack.geofences.imports import parse_fences
from etrack.simulator.config import FleetConfig, Region
from etrack.simulator.dayplan import EARTH_RADIUS_M
from etrack.simulator.fences import stop_places
from etrack.simulator.fleet import Fleet
from etrack.store import db
from etrack.store import geofences as store
from etrack.trips.params import RouteParams

SEED = 1017
STOP_SHARE = 0.6


def spread(times: list[float]) -> str:
    return (
        f"min {min(times):.3f} s  median {statistics.median(times):.3f} s  max {max(times):.3f} s"
    )


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> list[float]:
    """[lon, lat] of a point so many metres north and east (local flat earth: fine at 2 km)."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return [round(lon + dlon, 7), round(lat + dlat, 7)]


def _polygon(rng: random.Random, lat: float, lon: float, low_m: float, high_m: float) -> Any:
    """A convex polygon about (lat, lon): corners at increasing angles on a
    circle of one radius (so never self-intersecting)."""
    corners = rng.randint(5, 8)
    radius = rng.uniform(low_m, high_m)
    turn = rng.uniform(0, 2 * math.pi)
    ring = [
        _offset(
            lat,
            lon,
            radius * math.cos(turn + 2 * math.pi * k / corners),
            radius * math.sin(turn + 2 * math.pi * k / corners),
        )
        for k in range(corners)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _feature(name: str, geometry: Any, radius_m: float | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"name": name, "group": "bench"}
    if radius_m is not None:
        properties["radius_m"] = round(radius_m, 1)
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def make_fences(fleet: Fleet, days: list[date], count: int) -> dict[str, Any]:
    rng = random.Random(SEED)
    places = stop_places(fleet, days)
    at_stops = rng.sample(places, min(len(places), round(count * STOP_SHARE)))
    features = []
    for place in at_stops:
        if rng.random() < 0.5:
            point = {"type": "Point", "coordinates": [place.longitude, place.latitude]}
            features.append(_feature(place.name, point, rng.uniform(100, 250)))
        else:
            geometry = _polygon(rng, place.latitude, place.longitude, 120, 300)
            features.append(_feature(place.name, geometry))
    region: Region = fleet.region
    for number in range(1, count - len(features) + 1):
        lat = rng.uniform(region.lat_min, region.lat_max)
        lon = rng.uniform(region.lon_min, region.lon_max)
        name = f"Área {number}"
        if rng.random() < 0.5:
            point = {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
            features.append(_feature(name, point, rng.uniform(100, 1500)))
        else:
            features.append(_feature(name, _polygon(rng, lat, lon, 200, 2000)))
    return {"type": "FeatureCollection", "features": features}


def read_only(target: db.Target, plates: list[str], days: list[date], params: VisitParams) -> int:
    """The positions compute_visits reads: its batches, its window, its function."""
    lo, hi = visit_bounds(days[0], days[-1], params.tz)
    rows = 0
    with db.connection(target, autocommit=True) as conn:
        for start in range(0, len(plates), PLATES_PER_BATCH):
            tracks = store.load_tracks(
                conn, plates[start : start + PLATES_PER_BATCH], lo - MARGIN, hi + MARGIN
            )
            rows += sum(len(track[0]) for track in tracks.values())
    return rows


def forget_visits(target: db.Target) -> None:
    """No visit and no fence event stored: the next computation is a first one
    (a fence applied to a history it has not seen)."""
    with db.connection(target, autocommit=True) as conn:
        conn.execute("DELETE FROM geofence_visits")
        conn.execute("DELETE FROM events WHERE kind IN ('geofence_enter', 'geofence_exit')")
        conn.execute("VACUUM ANALYZE geofence_visits")
        conn.execute("VACUUM ANALYZE events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=350)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--fences", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    days = [FIRST_DAY + timedelta(days=k) for k in range(args.days)]
    fleet = Fleet(FleetConfig(seed=11, vehicles=args.vehicles, history_start=date(2024, 1, 1)))
    params = VisitParams(tz=RouteParams().tz)
    with bench_database("etrack_bench_visits") as target:
        started = time.perf_counter()
        stored = load(target, fleet, days)
        print(f"stored {stored} positions in {time.perf_counter() - started:.1f} s")
        collection = make_fences(fleet, days, args.fences)
        fences = parse_fences(json.dumps(collection), "geojson", source="bench", group=None)
        kinds = {kind: sum(f.kind == kind for f in fences) for kind in ("circle", "polygon")}
        with db.connection(target, autocommit=True) as conn:
            store.upsert_fences(conn, fences)
        print(
            f"{len(fences)} fences ({kinds['circle']} circles, {kinds['polygon']} polygons; "
            f"{round(args.fences * STOP_SHARE)} at stopping places)"
        )
        plates = sorted(fleet.plates())
        read_times: list[float] = []
        fresh_times: list[float] = []
        again_times: list[float] = []
        rows = 0
        fresh_line = again_line = ""
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            rows = read_only(target, plates, days, params)
            read_times.append(time.perf_counter() - t0)
            forget_visits(target)
            t0 = time.perf_counter()
            fresh_line = compute_visits(target, plates, days[0], days[-1], params).line()
            fresh_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            again_line = compute_visits(target, plates, days[0], days[-1], params).line()
            again_times.append(time.perf_counter() - t0)
        print(
            f"{len(plates)} vehicles x {len(days)} days x {len(fences)} fences; "
            f"{rows} valid positions read (range and a day either side)"
        )
        read = statistics.median(read_times)
        print(f"read:           {spread(read_times)}")
        print(f"visits, fresh:  {spread(fresh_times)}")
        print(f"  {fresh_line}")
        print(f"visits, rerun:  {spread(again_times)}")
        print(f"  {again_line}")
        print(
            f"ratio visits/read (medians): fresh {statistics.median(fresh_times) / read:.2f}, "
            f"rerun {statistics.median(again_times) / read:.2f} (target <= 2)"
        )
        if args.profile:
            forget_visits(target)
            profiler = cProfile.Profile()
            profiler.enable()
            compute_visits(target, plates, days[0], days[-1], params)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("cumulative").print_stats(25)
            stats.sort_stats("tottime").print_stats(15)
            print(out.getvalue())


if __name__ == "__main__":
    main()
