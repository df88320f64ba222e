"""A fence's speed limit in the overspeed events, over a real PostgreSQL:
inside it the fence's limit replaces the vehicle's, the event names the fence
(`rule` 'fence:NAME', what alert rules by fence match), and importing or
deleting a limited fence through the CLI recomputes the events of the whole
stored history; a second import changes nothing."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from etrack.events.compute import compute_events
from etrack.events.params import EventParams, Thresholds
from etrack.model import VALID, Fence, Position
from etrack.store import db
from etrack.store import geofences as fence_store
from etrack.store import positions as ingest
from fixtures_cli import RunEtrack

TZ = ZoneInfo("America/Sao_Paulo")
DAY = date(2025, 3, 4)
NOON = datetime(2025, 3, 4, 12, 0, tzinfo=TZ)
PLATE = "ABC1D23"
CENTER = (-23.55, -46.63)
DEG_M = math.radians(1.0) * 6378137.0
PARAMS = EventParams(base=Thresholds(overspeed_min_s=0.0, tz=TZ))
SCHOOL = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [CENTER[1], CENTER[0]]},
    "properties": {"name": "Escola", "radius_m": 300, "speed_limit_kmh": 30},
}


def at(north_m: float, speed: float, when: datetime, index: int) -> Position:
    lat = CENTER[0] + north_m / DEG_M
    return Position(
        PLATE, when, lat, CENTER[1], speed, True, 1000.0 + index, None, None, 12.5,
        f"Rua {index}", "Van", "Entregas", None, when + timedelta(seconds=5), PLATE, VALID, {},
    )  # fmt: skip


def drive(points: Sequence[tuple[float, float]]) -> list[Position]:
    """(metres north of the school, km/h), one a minute from noon."""
    return [
        at(north, speed, NOON + timedelta(minutes=k), k) for k, (north, speed) in enumerate(points)
    ]


# 50 km/h throughout: under the vehicle's 80, over the school's 30 for the
# three positions inside it (0, 100 and 200 m from its centre).
THROUGH = [(2000.0, 50.0), (1000.0, 50.0), (200.0, 50.0), (100.0, 50.0), (0.0, 50.0)]
THROUGH += [(-1000.0, 50.0), (-2000.0, 50.0)]


def overspeeds(conn: db.Conn) -> list[tuple[datetime, datetime, float, float, str]]:
    rows = conn.execute(
        "SELECT start_ts, end_ts, value, limit_value, rule FROM events"
        " WHERE kind = 'overspeed' ORDER BY start_ts"
    ).fetchall()
    return [(a, b, float(v), float(lim), str(r)) for a, b, v, lim, r in rows]


def test_inside_a_limited_fence_its_limit_decides_and_names_the_fence(
    conn: db.Conn, target: db.Target
) -> None:
    ingest.store_positions(conn, drive(THROUGH))
    compute_events(target, None, DAY, DAY, PARAMS)
    assert overspeeds(conn) == []
    school = Fence("Escola", "circle", SCHOOL["geometry"], 300.0, speed_limit_kmh=30.0)
    fence_store.upsert_fences(conn, [school])
    compute_events(target, None, DAY, DAY, PARAMS)
    # From the first position inside (12:02) to the first one out (12:05).
    assert overspeeds(conn) == [
        (NOON + timedelta(minutes=2), NOON + timedelta(minutes=5), 50.0, 30.0, "fence:Escola")
    ]
    again = compute_events(target, None, DAY, DAY, PARAMS)
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    # A fence without a limit changes nothing; nor does a higher limit
    # overlapping the school (the lowest one holds).
    wide = Fence("Bairro", "circle", SCHOOL["geometry"], 5000.0, speed_limit_kmh=60.0)
    fence_store.upsert_fences(conn, [wide, Fence("Cliente", "circle", SCHOOL["geometry"], 900.0)])
    compute_events(target, None, DAY, DAY, PARAMS)
    assert [row[4] for row in overspeeds(conn)] == ["fence:Escola"]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ETRACK_OVERSPEED_MIN_S", "0")
    monkeypatch.setenv("ETRAC_TIMEZONE", "America/Sao_Paulo")


def write(tmp_path: Path, features: list[dict[str, Any]]) -> Path:
    path = tmp_path / "fences.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    return path


def test_importing_and_deleting_a_limited_fence_recomputes_the_overspeed_events(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    ingest.store_positions(conn, drive(THROUGH))
    code, _, err = run_etrack("events", "compute", "--date", DAY.isoformat())
    assert code == 0, err
    assert overspeeds(conn) == []
    path = write(tmp_path, [SCHOOL])
    code, out, err = run_etrack("geofences", "import", str(path))
    assert code == 0, err
    assert [(row[3], row[4]) for row in overspeeds(conn)] == [(30.0, "fence:Escola")]
    # The same file again: nothing changed, nothing computed.
    before = conn.execute("SELECT id, computed_at FROM events ORDER BY id").fetchall()
    code, out, err = run_etrack("geofences", "import", str(path))
    assert code == 0, err
    assert "nothing to compute" in out
    assert conn.execute("SELECT id, computed_at FROM events ORDER BY id").fetchall() == before
    # A higher limit: the event goes (50 is under 60).
    faster = {**SCHOOL, "properties": {**SCHOOL["properties"], "speed_limit_kmh": 60}}
    code, out, err = run_etrack("geofences", "import", str(write(tmp_path, [faster])))
    assert code == 0, err
    assert overspeeds(conn) == []
    code, out, err = run_etrack("geofences", "import", str(write(tmp_path, [SCHOOL])))
    assert code == 0, err
    assert len(overspeeds(conn)) == 1
    # Deleted: the vehicles' own limit (80) again, and 50 is under it.
    code, out, err = run_etrack("geofences", "delete", "Escola")
    assert code == 0, err
    assert "without the speed limit of Escola" in out
    assert overspeeds(conn) == []


def test_a_position_stored_between_the_two_reads_is_in_no_zone() -> None:
    """The places are a second read of the same rows; a row that arrived in
    between has no place: it is in no zone, and the others keep theirs."""
    import numpy as np

    from etrack.events.compute import _track
    from etrack.geofences.shapes import FenceIndex

    school = Fence("Escola", "circle", SCHOOL["geometry"], 300.0, speed_limit_kmh=30.0)
    ts = [0.0, 60.0, 120.0]
    cols = (ts, [50.0] * 3, [True] * 3, [12.5] * 3, [5.0] * 3)
    # The places lack t=60 (stored after they were read).
    places = (np.array([0.0, 120.0]), np.array([CENTER[0]] * 2), np.array([CENTER[1]] * 2))
    track = _track(cols, (FenceIndex([school]), places))
    assert track.zone is not None
    assert track.zone_limit is not None
    assert track.zone.tolist() == [0, -1, 0]
    assert track.zone_limit[[0, 2]].tolist() == [30.0, 30.0]
