"""Route reconstruction against the simulator's ground truth.

50 vehicles x 3 days of the simulator's expected positions (default quirks:
no-fix rows and GPS jumps stored with their quality flags) go into the
database through etrack.store.positions, no HTTP; then compute_routes, then every
stored day is compared with `Fleet.true_trips` and `Fleet.true_distance_m`.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from etrack.model import Position
from etrack.simulator.config import FleetConfig, QuirkConfig
from etrack.simulator.fleet import Fleet
from etrack.store import db
from etrack.store import positions as ingest
from etrack.trips.compute import compute_routes
from etrack.trips.day import compute_sorted
from etrack.trips.params import RouteParams

TZ = ZoneInfo("America/Sao_Paulo")
DAYS = [date(2025, 3, 4), date(2025, 3, 5), date(2025, 3, 6)]
NOW = datetime(2025, 3, 12, 12, 0, tzinfo=TZ)
VEHICLES = 50
START_TOLERANCE_S = 120
TRIP_DISTANCE_TOLERANCE = 0.05
DAY_DISTANCE_TOLERANCE = 0.02


def position(e: Any) -> Position:
    return Position(
        e.placa, e.data_transmissao, e.latitude, e.longitude, e.velocidade, e.ignicao,
        e.odometro, None, e.horimetro, e.bateria, e.logradouro, None, None, None, None,
        e.placa, e.quality, {},
    )  # fmt: skip


def match(ours: list[Any], truth: list[Any]) -> int:
    """How many true trips one of ours finds: start and end within 2 minutes,
    distance within 5%; each of ours counts once."""
    found = 0
    used: set[int] = set()
    for true in truth:
        for k, trip in enumerate(ours):
            if k in used:
                continue
            if (
                abs((trip.start - true.start).total_seconds()) <= START_TOLERANCE_S
                and abs((trip.end - true.end).total_seconds()) <= START_TOLERANCE_S
                and abs(trip.distance_m - true.distance_m)
                <= TRIP_DISTANCE_TOLERANCE * true.distance_m
            ):
                used.add(k)
                found += 1
                break
    return found


class StoredTrip:
    def __init__(self, start: datetime, end: datetime, distance_m: float) -> None:
        self.start, self.end, self.distance_m = start, end, distance_m


@pytest.mark.slow
def test_trips_and_distances_match_the_ground_truth(target: db.Target) -> None:
    fleet = Fleet(FleetConfig(seed=2024, vehicles=VEHICLES, now=NOW))
    plates = fleet.plates()
    # The day before and after too: the midnight context real data would have.
    stored_days = [DAYS[0] - timedelta(days=1), *DAYS, DAYS[-1] + timedelta(days=1)]
    flags: dict[str, int] = {}
    with db.connection(target, autocommit=True) as conn:
        keeper = ingest.PartitionKeeper()
        for plate in plates:
            batch = [position(e) for d in stored_days for e in fleet.expected_positions(plate, d)]
            stats = ingest.store_positions(conn, batch, partitions=keeper)
            for flag, n in stats.flags.items():
                flags[flag] = flags.get(flag, 0) + n
    # The quirks are really there: flagged rows stored beside the valid ones.
    assert flags.get("no_fix", 0) > 20
    assert flags.get("jump", 0) > 20

    started = time.perf_counter()
    summary = compute_routes(target, RouteParams(tz=TZ), plates=plates, days=DAYS)
    elapsed = time.perf_counter() - started
    assert summary.computed == VEHICLES * len(DAYS)

    with db.connection(target, autocommit=True) as conn:
        stored: dict[tuple[str, date], list[StoredTrip]] = {}
        for placa, day, start, end, distance in conn.execute(
            "SELECT placa, rota_date, start_ts, end_ts, distance_m FROM route_trips"
            " ORDER BY placa, rota_date, seq"
        ):
            stored.setdefault((placa, day), []).append(StoredTrip(start, end, distance))
        distances = {
            (r[0], r[1]): r[2]
            for r in conn.execute("SELECT placa, rota_date, distance_m FROM routes")
        }

    true_count = ours_count = found = 0
    worst_day = 0.0
    for plate in plates:
        for day in DAYS:
            truth = fleet.true_trips(plate, day)
            ours = stored.get((plate, day), [])
            true_count += len(truth)
            ours_count += len(ours)
            found += match(ours, truth)
            true_m = fleet.true_distance_m(plate, day)
            if true_m > 0:
                worst_day = max(worst_day, abs(distances[(plate, day)] - true_m) / true_m)
            else:
                assert distances[(plate, day)] < 50  # parked all day: GPS noise at most
    recall = found / true_count
    precision = found / ours_count
    print(
        f"\n{true_count} true trips, {ours_count} found, {found} matched:"
        f" recall {recall:.4f}, precision {precision:.4f};"
        f" worst daily distance error {worst_day:.3%}; compute {elapsed:.1f} s"
    )
    assert true_count > 300
    assert recall >= 0.95
    assert precision >= 0.95
    assert worst_day <= DAY_DISTANCE_TOLERANCE


def test_jumps_and_no_fix_rows_change_nothing_in_the_distance(target: db.Target) -> None:
    noisy = Fleet(
        FleetConfig(
            seed=99,
            vehicles=8,
            now=NOW,
            quirks=QuirkConfig(no_fix_rate=0.05, jump_rate=0.05),
        )
    )
    clean = noisy.with_quirks(QuirkConfig.none())
    plates = noisy.plates()
    with db.connection(target, autocommit=True) as conn:
        for plate in plates:
            batch = [position(e) for d in DAYS for e in noisy.expected_positions(plate, d)]
            assert any(p.quality == "jump" for p in batch)
            ingest.store_positions(conn, batch)
        compute_routes(conn, RouteParams(tz=TZ), plates=plates, days=DAYS)
        stored = {
            (r[0], r[1]): r[2:]
            for r in conn.execute("SELECT placa, rota_date, distance_m, trip_count FROM routes")
        }
    for plate in plates:
        points = [
            (e.data_transmissao.timestamp(), e.latitude, e.longitude, e.velocidade, e.ignicao,
             e.odometro, e.logradouro)
            for d in DAYS
            for e in clean.expected_positions(plate, d)
        ]  # fmt: skip
        # The clean track is valid, in time order, one point per timestamp: the
        # columns storage would read.
        columns = tuple(zip(*points, strict=True))
        for day in DAYS:
            route = compute_sorted(*columns, day, RouteParams(tz=TZ))
            distance, trip_count = stored[(plate, day)]
            assert distance == pytest.approx(route.distance_m, rel=1e-12, abs=1e-6)
            assert trip_count == len(route.trips)
            true_m = clean.true_distance_m(plate, day)
            assert distance == pytest.approx(true_m, rel=DAY_DISTANCE_TOLERANCE, abs=50)
