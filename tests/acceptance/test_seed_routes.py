"""The seed's route command lines: --compute-route-plate/--compute-route-date and
--compute-routes-current-day-all, against the simulator and a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

from fixtures_db import subprocess_env
from fixtures_simulator import MakeSimulator

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = str(ROOT / "e-track" / "collector.py")


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, COLLECTOR, *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_compute_route_plate_for_a_day(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=3)
    env = subprocess_env(
        DATABASE_URL=database_url, ETRAC_API_BASE=sim.base_url,
        ETRAC_USER=sim.user, ETRAC_KEY=sim.key, ETRAC_RATE_LIMIT="200",
    )  # fmt: skip
    vehicle = sim.fleet.vehicles()[0]
    day = date(2025, 1, 6)
    fetched = run(
        "--fetch-history", vehicle.display_plate, "--date", "06/01/2025", env=env, cwd=tmp_path
    )
    assert fetched.returncode == 0, fetched.stderr
    first = run(
        "--compute-route-plate", vehicle.display_plate, "--compute-route-date", "06/01/2025",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "1 plate-days computed" in first.stdout
    again = run(
        "--compute-route-plate", vehicle.placa, "--compute-route-date", "2025-01-06",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert "0 plate-days computed, 1 skipped unchanged" in again.stdout
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT point_count, distance_m, trip_count FROM e_track.routes"
            " WHERE placa = %s AND rota_date = %s",
            (vehicle.placa, day),
        ).fetchone()
    assert row is not None
    true_km = sim.fleet.true_distance_m(vehicle.placa, day) / 1000
    assert row[0] > 100
    assert abs(row[1] / 1000 - true_km) <= 0.02 * true_km + 0.05
    assert row[2] == len(sim.fleet.true_trips(vehicle.placa, day))


def test_compute_routes_current_day_all_refreshes_latest(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=4, now=None)  # real clock: "today" is today
    env = subprocess_env(
        DATABASE_URL=database_url, ETRAC_API_BASE=sim.base_url,
        ETRAC_USER=sim.user, ETRAC_KEY=sim.key, ETRAC_RATE_LIMIT="200",
    )  # fmt: skip
    result = run("--compute-routes-current-day-all", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("fetched: received 4, inserted 4")
    today = datetime.now(ZoneInfo("America/Sao_Paulo")).date()
    with psycopg.connect(database_url) as conn:
        days = conn.execute(
            "SELECT count(*) FROM e_track.routes WHERE rota_date = %s", (today,)
        ).fetchone()
    latest_today = sum(
        1
        for row in sim.fleet.latest_rows()
        if row["data_transmissao"].startswith(today.strftime("%d/%m/%Y"))
    )
    assert days == (latest_today,)


def test_plates_file_limits_the_routes(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=3)
    env = subprocess_env(
        DATABASE_URL=database_url, ETRAC_API_BASE=sim.base_url,
        ETRAC_USER=sim.user, ETRAC_KEY=sim.key, ETRAC_RATE_LIMIT="200",
    )  # fmt: skip
    plates = sim.fleet.plates()
    for plate in plates:
        assert (
            run("--fetch-history", plate, "--date", "2025-01-06", env=env, cwd=tmp_path).returncode
            == 0
        )
    (tmp_path / "plates.txt").write_text(f"# two of three\n{plates[0]}\n{plates[1]}\n")
    result = run(
        "--compute-routes-current-day-all", "--plates-file", "plates.txt", "--date", "2025-01-06",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2 plate-days computed" in result.stdout
