"""Helpers shared by the jobs acceptance tests (this module holds no test).

Commands run as a user runs them: `python -m etrack ...` in a subprocess,
against the simulator running in the test process (so it outlives a killed
command) and a real PostgreSQL.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from etrack.simulator.server import SimulatorHandle
from fixtures_db import subprocess_env
from fixtures_jobs import FAST_ENV

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]


def etrack_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "etrack", *args]


def jobs_env(sim: SimulatorHandle, database_url: str, **extra: str) -> dict[str, str]:
    settings = {
        "DATABASE_URL": database_url,
        "ETRAC_API_BASE": sim.base_url,
        "ETRAC_USER": sim.user,
        "ETRAC_KEY": sim.key,
        "ETRAC_RATE_LIMIT": "200",
        **FAST_ENV,
    }
    return subprocess_env(**{**settings, **extra})


def run_etrack(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        etrack_argv(*args),
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_etrack(*args: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        etrack_argv(*args),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    """SIGTERM, then the exit code and output."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def wait_until(check: Callable[[], T | None], *, deadline_s: float, what: str) -> T:
    """Poll `check` until it returns something truthy (or fail at the deadline)."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # the polling interval, not a wait for the event


def rows(database_url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET search_path TO e_track, public")
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]


def one(database_url: str, sql: str, params: Any = None) -> Any:
    found = rows(database_url, sql, params)
    return found[0][0] if found else None


def prepare_database(database_url: str) -> None:
    """Month partitions of the simulator's data made up front (two jobs
    storing a month's first rows at once can race creating its partition and
    retry, fetching twice), and recent daily runs marked done so that starting
    workers has no real-date catch-up to do."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET search_path TO e_track, public")
        conn.execute("SELECT ensure_positions_partition('2024-12-15 00:00+00')")
        conn.execute("SELECT ensure_positions_partition('2025-01-15 00:00+00')")
        today = datetime.now(UTC).date()
        for back in range(4):
            conn.execute(
                "INSERT INTO daily_runs (day, plates) VALUES (%s, 0) ON CONFLICT DO NOTHING",
                (today - timedelta(days=back),),
            )


def write_plates(folder: Path, plates: list[str]) -> Path:
    path = folder / "plates.txt"
    path.write_text("# plates to backfill\n" + "\n".join(plates) + "\n")
    return path


# What a correct run stores, without the columns that record when it happened.
SNAPSHOT_QUERIES = {
    "positions": "SELECT placa, data_transmissao, data_gravacao, latitude, longitude, velocidade,"
    " ignicao, odometro, odometro_can, horimetro, bateria, logradouro, quality, raw::text"
    " FROM positions ORDER BY 1, 2",
    "trips": "SELECT placa, data_inicio_conducao, data_fim_conducao, rota_date,"
    " distancia_conducao, duracao_conducao, raw::text FROM trips ORDER BY 1, 2",
    "terminals": "SELECT placa, placa_raw, descricao, frota, equipamento_serial,"
    " last_position_ts FROM terminals ORDER BY 1",
    "routes": "SELECT placa, rota_date, points::text, geojson::text, start_ts, end_ts,"
    " point_count, invalid_count, distance_m, trip_count, stop_count FROM routes ORDER BY 1, 2",
    "route_trips": "SELECT placa, rota_date, seq, start_ts, end_ts, distance_m FROM route_trips"
    " ORDER BY 1, 2, 3",
    "route_stops": "SELECT placa, rota_date, seq, start_ts, end_ts, latitude, longitude"
    " FROM route_stops ORDER BY 1, 2, 3",
}


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    return {name: rows(database_url, sql) for name, sql in SNAPSHOT_QUERIES.items()}
