"""What `etrack daily` and `etrack routes compute` print, run as a user (or
cron) runs them: each summary once, log lines stamped in local time with
the zone, and the summary stamped too when stdout is the log file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from etrack.simulator.server import SimulatorHandle
from fixtures_db import subprocess_env
from fixtures_simulator import MakeSimulator

# 2026-12-02 02:45:30 -03 (the simulator's fleet is in America/Sao_Paulo).
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d -03"
LOG_LINE = re.compile(rf"^{STAMP} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def _env(sim: SimulatorHandle, database_url: str) -> dict[str, str]:
    return subprocess_env(
        DATABASE_URL=database_url,
        ETRAC_API_BASE=sim.base_url,
        ETRAC_USER=sim.user,
        ETRAC_KEY=sim.key,
        ETRAC_TIMEZONE="America/Sao_Paulo",
        ETRAC_LOG_LEVEL="INFO",
    )


def _etrack(
    *args: str, env: dict[str, str], cwd: Path, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "etrack", *args],
        env=env,
        cwd=cwd,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )


@pytest.fixture
def fetched_day(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> tuple[dict[str, str], subprocess.CompletedProcess[str]]:
    """2025-01-07 of two vehicles, through `etrack daily` (its result kept)."""
    sim = make_simulator(vehicles=2)
    env = _env(sim, database_url)
    daily = _etrack("daily", "--date", "2025-01-07", env=env, cwd=tmp_path, capture_output=True)
    assert daily.returncode == 0, daily.stderr
    return env, daily


def test_daily_says_its_summary_once(
    fetched_day: tuple[dict[str, str], subprocess.CompletedProcess[str]],
) -> None:
    _env, daily = fetched_day
    assert daily.stdout.count("\n") == 1
    assert daily.stdout.startswith("daily 2025-01-07: 2 plates;")
    everything = daily.stdout + daily.stderr
    assert everything.count("plate-days computed") == 1, everything
    for line in daily.stderr.splitlines():
        assert LOG_LINE.match(line), line


def test_routes_compute_says_its_summary_once(
    fetched_day: tuple[dict[str, str], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    env, _daily = fetched_day
    result = _etrack(
        "routes",
        "compute",
        "--date",
        "2025-01-07",
        "--force",
        env=env,
        cwd=tmp_path,
        capture_output=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("routes: 2 plate-days computed")
    assert (result.stdout + result.stderr).count("plate-days computed") == 1
    for line in result.stderr.splitlines():
        assert LOG_LINE.match(line), line


def test_in_a_cron_log_the_summary_is_stamped_like_the_log_lines(
    fetched_day: tuple[dict[str, str], subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    env, _daily = fetched_day
    log = tmp_path / "etrac_routes.log"
    with log.open("a") as out:  # as cron's `>> log 2>&1`
        result = _etrack(
            "routes",
            "compute",
            "--date",
            "2025-01-07",
            "--force",
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    assert result.returncode == 0
    lines = log.read_text().splitlines()
    summaries = [line for line in lines if "plate-days computed" in line]
    assert len(summaries) == 1, lines
    assert re.match(rf"^{STAMP} routes: 2 plate-days computed", summaries[0])


def test_backfill_says_the_routes_once(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=2)
    result = _etrack(
        "backfill", "--date-start", "2025-01-06", "--date-end", "2025-01-07",
        env=_env(sim, database_url), cwd=tmp_path, capture_output=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).count("plate-days computed") == 1, result
    # stderr holds the progress bar too; its log lines are stamped.
    for line in result.stderr.splitlines():
        assert LOG_LINE.match(line) or line.startswith("backfill ") or not line.strip(), line


def test_in_a_cron_log_fetch_latest_is_stamped(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=2)
    log = tmp_path / "etrac_fetch_latest.log"
    with log.open("a") as out:  # as cron's `>> log 2>&1`
        result = _etrack(
            "fetch-latest", env=_env(sim, database_url), cwd=tmp_path,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    assert result.returncode == 0, log.read_text()
    summaries = [line for line in log.read_text().splitlines() if "received 2" in line]
    assert len(summaries) == 1, log.read_text()
    assert re.match(rf"^{STAMP} received 2, inserted 2", summaries[0])
