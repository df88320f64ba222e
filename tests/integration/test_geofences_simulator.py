"""Geofence visits against the simulator's own ground truth: the simulator
served over real HTTP, fetched by the real collector into a real PostgreSQL,
fences around the fleet's real stopping places (`stop_fences`) imported as
`etrack geofences import` reads them, visits computed; every visit the
model says happened is found, its arrival and departure within one sampling
interval of the truth, and no stored visit lacks a true counterpart.

The exceptions: two cut by the edges of the fetched data (two days),
- the stop going on at the first fetched position (the vehicle parked there
  since the evening before, or since before its rest days) is stored
  arriving at that position;
- the stop going on at the last fetched position (the night after the last
  day) is stored open;
and a drive-through: a vehicle held by a traffic light inside another
place's circle for min_s or more made a visit by the definition, with no
stop; it must lie inside one of the vehicle's true trips and be short.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr

from etrack.collect import open_collector
from etrack.config import Settings
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.geofences.imports import parse_fences
from etrack.simulator.fences import FENCE_GROUP, MOVING_SAMPLE_GAP_S, stop_fences, true_visits
from etrack.simulator.server import SimulatorHandle
from etrack.store import db
from etrack.store import geofences as store
from fixtures_simulator import MakeSimulator

TZ = ZoneInfo("America/Sao_Paulo")
DAYS = [date(2025, 1, 6), date(2025, 1, 7)]  # Monday, Tuesday; the simulator's now is 8 Jan noon
PARAMS = VisitParams(min_s=120.0, max_gap_s=3600.0, tz=TZ)
TOLERANCE = timedelta(seconds=MOVING_SAMPLE_GAP_S)


def sim_settings(settings: Settings, sim: SimulatorHandle) -> Settings:
    return settings.model_copy(
        update={
            "etrac_api_base": sim.base_url,
            "etrac_user": sim.user,
            "etrac_key": SecretStr(sim.key),
            "etrac_rate_limit": 500.0,
        }
    )


def fetch(settings: Settings, target: db.Target, plates: list[str]) -> None:
    async def run() -> None:
        async with open_collector(settings, target) as collector:
            for plate in plates:
                for day in DAYS:
                    await collector.fetch_history_day(plate, day)

    asyncio.run(run())


def stored_rows(conn: db.Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, placa, fence, arrive_ts, depart_ts, dwell_s, computed_at"
        " FROM geofence_visits ORDER BY placa, arrive_ts, fence"
    ).fetchall()


def data_span(conn: db.Conn, plate: str) -> tuple[datetime, datetime]:
    row = conn.execute(
        "SELECT min(data_transmissao), max(data_transmissao) FROM positions"
        " WHERE placa = %s AND quality = 'valid'",
        [plate],
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_visits_match_the_simulators_ground_truth(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=6)
    fleet = sim.fleet
    plates = sorted(fleet.plates())
    fetch(sim_settings(settings, sim), target, plates)
    collection = stop_fences(fleet, DAYS, plates=plates)
    fences = parse_fences(json.dumps(collection), "geojson", source="simulador.geojson", group=None)
    assert len(fences) == len(collection["features"]) > len(plates)
    assert {fence.group for fence in fences} == {FENCE_GROUP}
    store.upsert_fences(conn, fences)

    first = compute_visits(target, plates, DAYS[0], DAYS[-1], PARAMS)
    assert first.written == first.visits > 0
    rows = stored_rows(conn)
    stored: dict[str, list[tuple[str, datetime, datetime | None]]] = {}
    for _id, placa, fence, arrive, depart, _dwell, _at in rows:
        stored.setdefault(placa, []).append((fence, arrive, depart))

    matched = cut_at_start = cut_at_end = drive_through = 0
    for plate in plates:
        begin, end = data_span(conn, plate)
        # A week before too: the stop going on when the fetched data begins
        # (it began the evening before the first day, or before a weekend).
        truth = [
            visit
            for day in [DAYS[0] - timedelta(days=k) for k in range(7, 0, -1)] + DAYS
            for visit in true_visits(fleet, plate, day, collection)
            if visit[2] > begin and visit[1] <= end
        ]
        left = list(stored.get(plate, []))
        for fence, arrive, depart in truth:
            candidates = [v for v in left if v[0] == fence]
            if arrive < begin:
                expected_arrive = begin
                cut_at_start += 1
            else:
                expected_arrive = arrive
            found = [v for v in candidates if abs(v[1] - expected_arrive) <= TOLERANCE]
            assert len(found) == 1, (plate, fence, arrive, depart, candidates)
            visit = found[0]
            left.remove(visit)
            if depart > end:
                assert visit[2] is None, (plate, visit, depart)
                cut_at_end += 1
            else:
                assert visit[2] is not None, (plate, visit, depart)
                assert abs(visit[2] - depart) <= TOLERANCE, (plate, visit, depart)
            matched += 1
        # What is left must be a drive-through: no stop, but a traffic light
        # inside another place's circle kept the vehicle there min_s or more.
        trips = [trip for day in DAYS for trip in fleet.true_trips(plate, day)]
        for visit in left:
            assert visit[2] is not None, (plate, visit)
            assert visit[2] - visit[1] < timedelta(minutes=10), (plate, visit)
            assert any(trip.start < visit[1] and visit[2] < trip.end for trip in trips), (
                f"{plate}: a stored visit with no true counterpart: {visit}"
            )
        drive_through += len(left)
    assert matched + drive_through == len(rows)
    assert drive_through <= len(rows) // 20
    # Each plate's first and last stop (in each circle holding its place).
    assert cut_at_start >= len(plates)
    assert cut_at_end >= len(plates)
    assert matched > 4 * len(plates)

    again = compute_visits(target, plates, DAYS[0], DAYS[-1], PARAMS)
    assert (again.written, again.deleted, again.unchanged) == (0, 0, first.visits)
    assert stored_rows(conn) == rows
