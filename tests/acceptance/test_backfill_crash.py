"""A backfill killed with SIGKILL at a random moment, then run again, ends
with exactly what a run without the crash stores; no partition is fetched
more than twice (once before the crash, once after)."""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path

from acceptance.test_backfill_support import (
    jobs_env,
    one,
    prepare_database,
    rows,
    run_etrack,
    snapshot,
    start_etrack,
    wait_until,
    write_plates,
)
from etrack.store import db, migrations
from fixtures_simulator import MakeSimulator

VEHICLES = 20
DAYS = ("2025-01-02", "2025-01-06")  # 5 days: 100 partitions


def backfill_args(plates_file: Path) -> list[str]:
    return [
        "backfill",
        "--date-start",
        DAYS[0],
        "--date-end",
        DAYS[1],
        "--plates-file",
        str(plates_file),
        "--sleep",
        "0",
        "--concurrency",
        "8",
    ]


def test_a_killed_backfill_resumes_to_the_same_result(
    make_simulator: MakeSimulator, database_url: str, empty_database_url: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("ETRACK_TEST_CRASH_SEED", random.randrange(1_000_000)))
    print(f"crash seed {seed} (set ETRACK_TEST_CRASH_SEED to replay)")
    chance = random.Random(seed)
    sim = make_simulator(vehicles=VEHICLES, latency_ms=40)
    plates_file = write_plates(tmp_path, sim.fleet.plates())
    args = backfill_args(plates_file)
    env = jobs_env(sim, database_url, ETRAC_RATE_LIMIT="60")
    prepare_database(database_url)

    # Kill at a random point of the work: after 0..95 of 100 partitions are done.
    kill_after = chance.randint(0, 95)
    proc = start_etrack(*args, env=env, cwd=tmp_path)
    try:
        wait_until(
            lambda: (
                (
                    one(
                        database_url,
                        "SELECT count(*) FROM backfill_partitions WHERE state = 'done'",
                    )
                    or 0
                )
                >= kill_after
                and one(database_url, "SELECT count(*) FROM backfills")
            ),
            deadline_s=60,
            what=f"{kill_after} partitions done",
        )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    again = run_etrack(*args, env=env, cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{VEHICLES} plates ({VEHICLES * 5} partitions)" in again.stdout
    assert f"total: {VEHICLES} plates," in again.stdout

    stats = sim.stats()
    assert len(stats.history_fetches) == VEHICLES * 5
    assert stats.max_history_fetches() <= 2, stats.history_fetches.most_common(3)
    states = rows(database_url, "SELECT state, count(*) FROM backfill_partitions GROUP BY 1")
    assert states == [("done", VEHICLES * 5)]

    # The same command on a fresh database, never interrupted.
    reference_sim = make_simulator(vehicles=VEHICLES)
    migrations.upgrade(db.Target(empty_database_url, "e_track", embedded=False))
    prepare_database(empty_database_url)
    clean_env = jobs_env(reference_sim, empty_database_url, ETRAC_RATE_LIMIT="500")
    clean = run_etrack(*args, env=clean_env, cwd=tmp_path, timeout=120)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    crashed, expected = snapshot(database_url), snapshot(empty_database_url)
    for table in expected:
        assert crashed[table] == expected[table], table
    assert len(expected["positions"]) > 1000
    assert len(expected["routes"]) == VEHICLES * 5
