"""One daily run at a time, one periodic fetch per tick, and a worker killed
with kill -9 mid-job does not leave its job stuck."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
from pathlib import Path

from acceptance.test_backfill_support import (
    ROOT,
    jobs_env,
    one,
    prepare_database,
    rows,
    run_etrack,
    start_etrack,
    stop,
    wait_until,
)
from fixtures_simulator import MakeSimulator

BUSY = "another daily run is active (advisory lock ETRAC_DAILY_LOCK_ID=123456789); nothing done"


def test_four_daily_runs_at_once_one_works(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=6, latency_ms=300)
    prepare_database(database_url)
    # Slow enough (13 calls at 2/s) that all four overlap.
    env = jobs_env(sim, database_url, ETRAC_RATE_LIMIT="2")
    procs = [start_etrack("daily", "--date", "2025-01-07", env=env, cwd=tmp_path) for _ in range(4)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], outputs
    worked = [out for out, _ in outputs if out.startswith("daily 2025-01-07: 6 plates;")]
    refused = [out for out, _ in outputs if out.strip() == BUSY]
    assert (len(worked), len(refused)) == (1, 3), outputs
    assert sim.stats().max_history_fetches() == 1
    assert one(database_url, "SELECT count(*) FROM daily_runs WHERE day = '2025-01-07'") == 1


def test_the_seed_runner_runs_the_daily(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=2)
    env = jobs_env(sim, database_url)
    result = subprocess.run(
        [sys.executable, str(ROOT / "e-track" / "daily_routes_runner.py"), "--date", "2025-01-07"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("daily 2025-01-07: 2 plates;")
    runs = rows(database_url, "SELECT kind, status, args ->> 'day' FROM job_runs")
    assert runs == [("daily", "succeeded", "2025-01-07")]


def test_the_periodic_fetch_runs_once_per_tick_with_three_workers(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=3)
    prepare_database(database_url)
    env = jobs_env(sim, database_url, ETRACK_FETCH_CRON="* * * * * */2")  # every 2 seconds
    workers = [start_etrack("worker", env=env, cwd=tmp_path) for _ in range(3)]

    def ticks() -> list[tuple[str, int]]:
        return rows(
            database_url,
            "SELECT args ->> 'timestamp', count(*) FROM job_runs"
            " WHERE kind = 'fetch_latest' GROUP BY 1 ORDER BY 1",
        )

    try:
        wait_until(
            lambda: one(database_url, "SELECT count(*) FROM procrastinate_workers") == 3,
            deadline_s=30,
            what="three workers",
        )
        wait_until(lambda: len(ticks()) >= 4, deadline_s=30, what="four ticks")
    finally:
        outcomes = [stop(worker) for worker in workers]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], outcomes
    counted = ticks()
    assert all(count == 1 for _, count in counted), counted
    stamps = sorted(int(stamp) for stamp, _ in counted)
    assert all(b - a == 2 for a, b in itertools.pairwise(stamps[1:])), stamps
    jobs = rows(
        database_url,
        "SELECT args ->> 'timestamp', count(*) FROM procrastinate_jobs"
        " WHERE task_name = 'etrack.fetch_latest' GROUP BY 1 HAVING count(*) > 1",
    )
    assert jobs == []
    # Scheduled runs also log to the seed's files.
    log = (tmp_path / "e-track" / "logs" / "fetch_latest.log").read_text()
    assert "fetch latest: received 3" in log


def test_a_job_of_a_worker_killed_with_kill_9_is_brought_back_and_completes(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=1, latency_ms=4000)  # the job is mid-request when killed
    placa = sim.fleet.plates()[0]
    prepare_database(database_url)
    env = jobs_env(sim, database_url)
    enqueued = run_etrack(
        "backfill",
        "--date-start",
        "2025-01-06",
        "--date-end",
        "2025-01-06",
        "--plates",
        placa,
        "--enqueue-only",
        env=env,
        cwd=tmp_path,
    )
    assert enqueued.returncode == 0, enqueued.stderr
    doomed = start_etrack("worker", "--queue", "backfill", env=env, cwd=tmp_path)
    job_id = wait_until(
        lambda: one(
            database_url,
            "SELECT id FROM procrastinate_jobs WHERE task_name = 'etrack.backfill_partition'"
            " AND status = 'doing'",
        ),
        deadline_s=30,
        what="the partition job to start",
    )
    # Killed mid-request, not between Procrastinate's 'doing' and the run
    # record: wait for the run the job records before it calls the API.
    wait_until(
        lambda: (
            one(
                database_url,
                "SELECT count(*) FROM job_runs WHERE kind = 'backfill_partition'"
                " AND status = 'running'",
            )
            == 1
        ),
        deadline_s=30,
        what="the partition's run to be recorded",
    )
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=30)
    assert (
        one(database_url, "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,))
        == "doing"
    )

    rescuer = start_etrack("worker", env=env, cwd=tmp_path)
    try:
        wait_until(
            lambda: one(
                database_url,
                "SELECT status::text = 'succeeded' FROM procrastinate_jobs WHERE id = %s",
                (job_id,),
            ),
            deadline_s=45,
            what="the stalled job to complete",
        )
    finally:
        code, out, err = stop(rescuer)
    assert code == 0, out + err
    assert one(database_url, "SELECT state FROM backfill_partitions") == "done"
    runs = rows(
        database_url,
        "SELECT status FROM job_runs WHERE kind = 'backfill_partition' ORDER BY id",
    )
    assert runs == [("interrupted",), ("succeeded",)]
    interrupted = one(database_url, "SELECT error FROM job_runs WHERE status = 'interrupted'")
    assert "worker stopped responding" in interrupted
    failed = run_etrack("jobs", "--failed", env=env, cwd=tmp_path)
    assert "interrupted backfill_partition" in failed.stdout
    assert "worker stopped responding" in failed.stdout
