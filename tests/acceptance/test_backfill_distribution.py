"""Two `etrack worker` processes work off a backfill enqueued with
--enqueue-only: each partition is done once, both workers take part, and
together they stay within the account's rate limit."""

from __future__ import annotations

from pathlib import Path

from acceptance.test_backfill_support import (
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

RATE = 10


def test_workers_split_a_backfill_within_the_rate_limit(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=10, latency_ms=100, rate_limit_per_s=RATE)
    plates = sim.fleet.plates()
    prepare_database(database_url)
    # The rate told and fixed: this is about the shared budget holding across
    # processes (the adaptive pace is tests/integration/test_pace_simulator.py).
    env = jobs_env(sim, database_url, ETRAC_RATE_LIMIT=str(RATE), ETRAC_RATE_ADAPT="0")
    workers = [
        start_etrack("worker", "--concurrency", "4", env=env, cwd=tmp_path) for _ in range(2)
    ]
    try:
        wait_until(
            lambda: one(database_url, "SELECT count(*) FROM procrastinate_workers") == 2,
            deadline_s=30,
            what="two workers registered",
        )
        enqueued = run_etrack(
            "backfill",
            "--date-start",
            "2025-01-04",
            "--date-end",
            "2025-01-07",
            "--plates",
            ",".join(plates),
            "--enqueue-only",
            env=env,
            cwd=tmp_path,
        )
        assert enqueued.returncode == 0, enqueued.stdout + enqueued.stderr
        assert "0 already done, 40 enqueued" in enqueued.stdout
        wait_until(
            lambda: one(database_url, "SELECT finished_at IS NOT NULL FROM backfills"),
            deadline_s=60,
            what="the backfill to finish",
        )
    finally:
        outcomes = [stop(worker) for worker in workers]
    assert [code for code, _, _ in outcomes] == [0, 0], outcomes

    stats = sim.stats()
    assert len(stats.history_fetches) == 40
    assert stats.max_history_fetches() == 1
    assert stats.count(status=429) < 0.01 * stats.total, stats.requests
    by_worker = rows(
        database_url,
        "SELECT pid, count(*) FROM job_runs WHERE kind = 'backfill_partition'"
        " AND status = 'succeeded' GROUP BY pid",
    )
    assert len(by_worker) == 2, by_worker
    assert sum(count for _, count in by_worker) == 40
    done = one(database_url, "SELECT count(*) FROM backfill_partitions WHERE state = 'done'")
    assert done == 40
    routes = one(
        database_url,
        "SELECT count(*) FROM routes WHERE rota_date BETWEEN '2025-01-04' AND '2025-01-07'",
    )
    assert routes == 40

    status = run_etrack("backfill", "status", env=env, cwd=tmp_path)
    assert "40/40 partitions done" in status.stdout
    assert "routes: 40 plate-days computed" in status.stdout
