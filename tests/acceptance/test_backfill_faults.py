"""With 20% of requests answered 5xx, 5% hanging, 5% truncated and a rate
limit, a backfill still stores exactly the ground truth; failures show in
`backfill status` while they last."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from pathlib import Path

from acceptance.test_backfill_support import (
    jobs_env,
    prepare_database,
    rows,
    run_etrack,
    start_etrack,
    stop,
)
from etrack.config import Settings
from etrack.jobs.app import open_app
from etrack.jobs.backfill import status
from etrack.jobs.env import JobEnv
from etrack.store import db
from fixtures_simulator import MakeSimulator

DAYS = [date(2025, 1, d) for d in (4, 5, 6, 7)]


def status_lines(settings: Settings, target: db.Target) -> list[str] | None:
    async def read() -> list[str] | None:
        async with open_app(JobEnv(settings, target)) as app:
            found = await status(app)
            return found.lines() if found else None

    return asyncio.run(read())


def test_a_backfill_through_faults_stores_the_ground_truth(
    make_simulator: MakeSimulator,
    database_url: str,
    target: db.Target,
    settings: Settings,
    tmp_path: Path,
) -> None:
    sim = make_simulator(
        vehicles=10,
        error_rate=0.20,
        hang_rate=0.05,
        truncate_rate=0.05,
        hang_seconds=30,
        rate_limit_per_s=25,
        fault_seed=7,
    )
    plates = sim.fleet.plates()
    prepare_database(database_url)
    env = jobs_env(
        sim,
        database_url,
        ETRAC_RATE_LIMIT="20",
        ETRAC_TIMEOUT="1",  # a hanging request is given up after 1 s
        ETRAC_MAX_ATTEMPTS="2",  # so that some partitions fail and get retried
    )
    proc = start_etrack(
        "backfill",
        "--date-start",
        DAYS[0].isoformat(),
        "--date-end",
        DAYS[-1].isoformat(),
        "--plates",
        ",".join(plates),
        "--with-trips",
        env=env,
        cwd=tmp_path,
    )
    seen_failures: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            lines = status_lines(settings, target) or []
            if "  failures:" in lines and not seen_failures:
                seen_failures = lines
        code, out, err = stop(proc, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, out + err
    assert seen_failures, "no failure was ever visible in backfill status"
    failure = seen_failures[seen_failures.index("  failures:") + 1]
    assert "retrying: " in failure
    assert any(kind in failure for kind in ("ApiUnavailable", "HTTP 50", "malformed JSON"))

    faults = sim.stats().faults
    assert faults["error_500"] + faults["error_503"] > 0
    assert faults["hang"] > 0
    assert faults["truncated"] > 0

    stored = {
        (r[0], r[1]): r[2]
        for r in rows(database_url, "SELECT placa, data_transmissao, quality FROM positions")
    }
    expected = {
        (e.placa, e.data_transmissao): e.quality
        for p in plates
        for d in DAYS
        for e in sim.fleet.expected_positions(p, d)
    }
    assert stored == expected
    trips = rows(database_url, "SELECT count(*) FROM trips")[0][0]
    assert trips == sum(len(sim.fleet.trip_summaries(p, d)) for p in plates for d in DAYS)

    final = run_etrack("backfill", "status", env=env, cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    assert f"{len(plates) * 4}/{len(plates) * 4} partitions done" in final.stdout
    assert "failed 0" in final.stdout
    assert "failures:" not in final.stdout
