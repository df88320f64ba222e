"""The seed's backfill command lines, verbatim, through the thin files under
e-track/."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from acceptance.test_backfill_support import ROOT, jobs_env, prepare_database, write_plates
from fixtures_simulator import MakeSimulator


def seed_script(
    name: str, *args: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "e-track" / name), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_seeds_backfill_and_summary_lines_work(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=3)
    plates = sim.fleet.plates()[:1]
    write_plates(tmp_path, plates)
    prepare_database(database_url)
    env = jobs_env(sim, database_url)

    started = time.monotonic()
    backfill = seed_script(
        "backfill_controller.py",
        *[
            "--date-start",
            "2025-01-01",
            "--date-end",
            "2025-01-07",
            "--plates-file",
            "plates.txt",
            "--sleep",
            "0.5",
        ],
        env=env,
        cwd=tmp_path,
    )
    took = time.monotonic() - started
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    assert "1 plates (7 partitions)" in backfill.stdout
    assert "7/7 partitions done" in backfill.stdout
    assert took >= 6 * 0.5  # --sleep still paces the requests of one worker

    summary = seed_script(
        "summarize_backfill.py",
        *["--plates-file", "plates.txt", "--date-start", "2025-01-01", "--date-end", "2025-01-07"],
        env=env,
        cwd=tmp_path,
    )
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    assert lines[0].split()[:4] == ["placa", "days", "with", "routes"]
    assert lines[1].split()[:2] == [plates[0], "7/7"]
    assert lines[-1].startswith("total: 1 plates, 7 plate-days with routes, ")

    bad = seed_script("backfill_controller.py", "--date-start", "2025-01-01", env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert "--date-end" in bad.stderr
