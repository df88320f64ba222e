"""A backfill controller killed with SIGKILL, run again at once: the new
controller sees that the old one's advisory lock is free (its process is
gone) and takes its running partitions back at once, instead of waiting
ETRACK_JOB_STALLED_AFTER_S for heartbeats that will never come."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from acceptance.test_backfill_support import (
    jobs_env,
    one,
    prepare_database,
    rows,
    run_etrack,
    start_etrack,
    wait_until,
    write_plates,
)
from fixtures_simulator import MakeSimulator

VEHICLES = 6
DAYS = ("2025-01-04", "2025-01-06")  # 18 partitions


def test_a_rerun_recovers_a_killed_controllers_jobs_at_once(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=VEHICLES, latency_ms=400)
    plates_file = write_plates(tmp_path, sim.fleet.plates())
    args = [
        "backfill",
        "--date-start",
        DAYS[0],
        "--date-end",
        DAYS[1],
        "--plates-file",
        str(plates_file),
        "--concurrency",
        "4",
    ]
    # Production timings for dead workers: 60 s without a heartbeat.
    env = jobs_env(sim, database_url, ETRACK_JOB_HEARTBEAT_S="10", ETRACK_JOB_STALLED_AFTER_S="60")
    prepare_database(database_url)

    proc = start_etrack(*args, env=env, cwd=tmp_path)
    try:
        wait_until(
            lambda: one(
                database_url, "SELECT count(*) FROM backfill_partitions WHERE state = 'running'"
            ),
            deadline_s=60,
            what="a partition being fetched",
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    held = one(
        database_url,
        "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND queue_name = 'backfill'",
    )
    assert held, "the killed controller held no running job"

    started = time.monotonic()
    again = run_etrack(*args, env=env, cwd=tmp_path, timeout=40)
    took = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{held} recovered from dead workers" in again.stdout, again.stdout
    assert took < 30, took  # not the 60 s of ETRACK_JOB_STALLED_AFTER_S
    states = rows(database_url, "SELECT state, count(*) FROM backfill_partitions GROUP BY 1")
    assert states == [("done", VEHICLES * 3)]
    interrupted = one(database_url, "SELECT count(*) FROM job_runs WHERE status = 'interrupted'")
    # A job killed before its run was recorded has no run to close.
    assert 1 <= interrupted <= held
