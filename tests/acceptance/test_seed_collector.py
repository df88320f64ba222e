"""The seed's own command lines, run as a user would: `python3 e-track/collector.py ...`
against the simulator over HTTP and a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from etrack.simulator.server import SimulatorHandle
from fixtures_db import subprocess_env
from fixtures_simulator import MakeSimulator

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = str(ROOT / "e-track" / "collector.py")


def env_for(sim: SimulatorHandle, database_url: str, **extra: str) -> dict[str, str]:
    return subprocess_env(
        DATABASE_URL=database_url,
        ETRAC_API_BASE=sim.base_url,
        ETRAC_USER=sim.user,
        ETRAC_KEY=sim.key,
        ETRAC_RATE_LIMIT="200",
        **extra,
    )


def collector(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, COLLECTOR, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM e_track.{table}").fetchone()
    assert row is not None
    return int(row[0])


def test_seed_fetch_commands_work_and_are_idempotent(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=6)
    env = env_for(sim, database_url)
    plate = sim.fleet.vehicles()[0].display_plate

    latest = collector("--fetch-latest", env=env, cwd=tmp_path)
    assert latest.returncode == 0, latest.stderr
    assert latest.stdout.startswith("received 6, inserted 6,")
    assert count(database_url, "terminals") == 6

    plate_run = collector("--fetch-plate", plate, env=env, cwd=tmp_path)
    assert plate_run.returncode == 0, plate_run.stderr
    assert "inserted 0" in plate_run.stdout  # same point as fetch-latest stored

    day = collector("--fetch-history", plate, "--date", "06/01/2025", env=env, cwd=tmp_path)
    assert day.returncode == 0, day.stderr
    stored_after_day = count(database_url, "positions")
    assert stored_after_day > 50

    again = collector("--fetch-history", plate, "--date", "2025-01-06", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert ", inserted 0," in again.stdout
    assert count(database_url, "positions") == stored_after_day

    ranged = collector(
        "--fetch-history",
        plate,
        "--date-start",
        "2025-01-04",
        "--date-end",
        "2025-01-05",
        env=env,
        cwd=tmp_path,
    )
    assert ranged.returncode == 0, ranged.stderr
    assert "API calls 2" in ranged.stdout

    trips = collector("--fetch-trips", plate, "--date", "06/01/2025", env=env, cwd=tmp_path)
    assert trips.returncode == 0, trips.stderr
    trips_again = collector("--fetch-trips", plate, "--date", "06/01/2025", env=env, cwd=tmp_path)
    assert ", inserted 0," in trips_again.stdout
    assert count(database_url, "trips") == len(
        sim.fleet.trip_summaries(
            sim.fleet.vehicles()[0].placa, __import__("datetime").date(2025, 1, 6)
        )
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fetch-plate", "ABCD-12"], "expected a Brazilian plate like ABC1234 or ABC1D23"),
        (
            ["--fetch-history", "ABC1234", "--date", "2025-13-01"],
            "--date: 2025-13-01 is not a day of the calendar",
        ),
        (["--fetch-trips", "ABC1234"], "--fetch-trips needs --date"),
        (["--fetch-history", "ABC1234"], "needs --date D, or both --date-start and --date-end"),
        (["--fetch-latest", "--fetch-plate", "ABC1234"], "not allowed with argument"),
    ],
)
def test_bad_input_is_exit_2_before_any_call(
    simulator: SimulatorHandle, database_url: str, tmp_path: Path, args: list[str], message: str
) -> None:
    simulator.reset_stats()
    result = collector(*args, env=env_for(simulator, database_url), cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert simulator.stats().total == 0


def test_bad_credentials_name_the_variables(
    simulator: SimulatorHandle, database_url: str, tmp_path: Path
) -> None:
    env = env_for(simulator, database_url)
    env["ETRAC_KEY"] = "wrong-key-5150"
    result = collector("--fetch-latest", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "ETRAC_USER and ETRAC_KEY" in result.stderr
    assert "wrong-key-5150" not in result.stderr + result.stdout


def test_credentials_in_the_api_base_are_one_line_exit_2(
    simulator: SimulatorHandle, database_url: str, tmp_path: Path
) -> None:
    host = simulator.base_url.split("://", 1)[1]
    env = env_for(simulator, database_url)
    env["ETRAC_API_BASE"] = f"http://{simulator.user}:secret-7431@{host}"
    result = collector("--fetch-latest", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "ETRAC_API_BASE" in lines[0]
    assert "secret-7431" not in result.stderr + result.stdout
    assert simulator.stats().total == 0


def test_unreachable_api_is_exit_3(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = subprocess_env(
        DATABASE_URL=database_url,
        ETRAC_API_BASE=f"http://127.0.0.1:{port}/monitoramento",
        ETRAC_USER="u@x.com",
        ETRAC_KEY="k-4242",
        ETRAC_MAX_ATTEMPTS="2",
    )
    result = collector("--fetch-latest", env=env, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert len(result.stderr.strip().splitlines()) >= 1
    assert "k-4242" not in result.stderr
    assert "Traceback" not in result.stderr


def test_dotenv_in_the_working_directory_is_read(
    simulator: SimulatorHandle, database_url: str, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        f"ETRAC_API_BASE={simulator.base_url}\nETRAC_USER={simulator.user}\n"
        f"ETRAC_KEY={simulator.key}\nDATABASE_URL={database_url}\n"
    )
    result = collector("--fetch-latest", env=subprocess_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("received 10, inserted 10")


def read_until(proc: subprocess.Popen[str], needle: str, deadline_s: float) -> list[str]:
    """Read stdout lines until one contains `needle` (or fail at the deadline)."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + deadline_s
    os.set_blocking(proc.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if needle in line:
                return seen
            continue
        if proc.poll() is not None:
            break
        time.sleep(0.05)  # poll interval while waiting for the next line, not a wait-for
    raise AssertionError(f"{needle!r} not seen in time; got {seen!r}")


def test_loop_rides_out_an_unreadable_answer(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    """A gzip bomb fails its cycle (exit would make systemd restart into the
    same answer); the loop goes on and the next good answer is stored."""
    sim = make_simulator(vehicles=4)
    env = env_for(sim, database_url, ETRAC_MAX_ANSWER_BYTES="65536")
    proc = subprocess.Popen(
        [sys.executable, COLLECTOR, "--fetch-latest", "--loop", "--interval", "1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_until(proc, "cycle 1: received 4, inserted 4", 60)
        sim.set_faults(poison=("gzip_bomb",), bomb_bytes=8 << 20)
        read_until(proc, "failed (AnswerTooLarge)", 60)
        sim.set_faults(poison=())
        read_until(proc, ": received 4,", 60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert sim.stats().faults["gzip_bomb"] >= 1


def test_loop_survives_an_outage_and_stops_on_sigterm(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=4)
    env = env_for(sim, database_url, ETRAC_MAX_ATTEMPTS="2", ETRAC_TIMEOUT="2")
    proc = subprocess.Popen(
        [sys.executable, COLLECTOR, "--fetch-latest", "--loop", "--interval", "1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        read_until(proc, "cycle 1: received 4, inserted 4", 60)
        sim.set_faults(error_rate=1.0)
        read_until(proc, "failed (ApiUnavailable)", 60)
        sim.set_faults(error_rate=0.0)
        read_until(proc, ": received 4,", 60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert count(database_url, "terminals") == 4
