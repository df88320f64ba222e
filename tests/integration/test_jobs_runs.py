"""Run records, stalled-job recovery and the worker with its schedule and
log files, in-process against a real PostgreSQL (and the simulator)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import pytest

from etrack.config import Settings, parse_duration
from etrack.errors import SchemaNotCurrent
from etrack.jobs.app import open_app, require_job_queue
from etrack.jobs.env import EtrackApp, JobEnv
from etrack.jobs.names import FETCH_LATEST, PRUNE_RETENTION
from etrack.jobs.runs import list_runs, recorded_run, recover_stalled_jobs
from etrack.jobs.worker import run_worker
from etrack.store import db, migrations
from fixtures_jobs import FAST
from fixtures_simulator import MakeSimulator

T = TypeVar("T")


def with_app(settings: Settings, target: db.Target, work: Callable[[EtrackApp], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_app(JobEnv(settings, target, FAST)) as app:
            return await work(app)

    return asyncio.run(go())


def test_upgrade_installs_the_job_queue_in_the_etrack_schema(conn: db.Conn) -> None:
    assert migrations.job_queue_installed(conn)
    row = conn.execute("SELECT to_regclass('e_track.procrastinate_jobs') IS NOT NULL").fetchone()
    assert row == (True,)
    assert not migrations.install_job_queue(conn)  # twice is a no-op


def test_jobs_refuse_a_database_without_the_job_queue(empty_database_url: str) -> None:
    target = db.Target(empty_database_url, "e_track", embedded=False)
    with pytest.raises(SchemaNotCurrent, match="run `etrack db upgrade`"):
        require_job_queue(target)


def test_command_runs_are_recorded_with_their_outcome(
    settings: Settings, target: db.Target
) -> None:
    async def work(app: EtrackApp) -> list[Any]:
        async with recorded_run(app, "daily", {"day": "2025-01-07"}) as outcome:
            outcome.counts = {"plates": 3}
            outcome.summary = "daily 2025-01-07: 3 plates"
        with pytest.raises(RuntimeError):
            async with recorded_run(app, "backfill", {"plates": 2}):
                raise RuntimeError(f"boom with {settings.database_url.get_secret_value()}")  # type: ignore[union-attr]
        return [await list_runs(app), await list_runs(app, failed_only=True)]

    every, failed = with_app(settings, target, work)
    assert [(r.kind, r.status) for r in every] == [("backfill", "failed"), ("daily", "succeeded")]
    assert every[1].counts == {"plates": 3}
    assert every[1].finished_at is not None
    assert [r.kind for r in failed] == ["backfill"]
    assert failed[0].error is not None
    assert failed[0].error.startswith("RuntimeError: boom with")
    # Secrets never reach the record.
    assert "postgresql://" not in failed[0].error or "***" in failed[0].error


def test_a_run_whose_process_died_shows_as_interrupted(
    settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    gone = os.getpid() + 1
    while True:
        try:
            os.kill(gone, 0)
        except ProcessLookupError:
            break
        gone += 1
    conn.execute(
        "INSERT INTO job_runs (kind, host, pid) VALUES ('daily', %s, %s)",
        (__import__("socket").gethostname(), gone),
    )
    runs = with_app(settings, target, lambda app: list_runs(app, failed_only=True))
    assert [(r.kind, r.status) for r in runs] == [("daily", "interrupted")]


def test_jobs_of_a_dead_worker_are_retried(
    settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    async def work(app: EtrackApp) -> tuple[Any, ...]:
        job_id = await app.configure_task(FETCH_LATEST).defer_async(timestamp=0)
        worker_id = await app.job_manager.register_worker()
        job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
        assert job is not None
        assert job.id == job_id
        conn.execute(
            "INSERT INTO job_runs (kind, job_id, host, pid) VALUES ('fetch_latest', %s, 'h', 1)",
            (job_id,),
        )
        alive = await recover_stalled_jobs(app)
        conn.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
            " WHERE id = %s",
            (worker_id,),
        )
        dead = await recover_stalled_jobs(app)
        status = await app.job_manager.get_job_status_async(job_id)
        return alive.counts, dead.counts, status.value

    alive, dead, status = with_app(settings, target, work)
    assert alive == {"retried": 0}
    assert dead == {"retried": 1}
    assert status == "todo"
    row = conn.execute("SELECT status, error FROM job_runs").fetchone()
    assert row is not None
    assert row[0] == "interrupted"
    assert "worker stopped responding" in row[1]


def test_the_worker_runs_the_schedule_and_logs_to_files(
    make_simulator: MakeSimulator,
    settings: Settings,
    target: db.Target,
    conn: db.Conn,
    tmp_path: Path,
) -> None:
    sim = make_simulator(vehicles=2)
    current = settings.model_copy(
        update={
            "etrac_api_base": sim.base_url,
            "etrac_user": sim.user,
            "etrac_key": pydantic.SecretStr(sim.key),
            "etrac_rate_limit": 100.0,
            "etrack_fetch_cron": "* * * * * */1",
            "etrack_log_dir": tmp_path / "logs",
        }
    )
    # Nothing to catch up: the daily runs of the last days are done.
    today = datetime.now(UTC).date()
    for back in range(1, 4):
        conn.execute(
            "INSERT INTO daily_runs (day, plates) VALUES (%s, 2)", (today - timedelta(days=back),)
        )

    def fetch_runs() -> int:
        row = conn.execute(
            "SELECT count(*) FROM job_runs WHERE kind = 'fetch_latest' AND status = 'succeeded'"
        ).fetchone()
        return int(row[0]) if row else 0

    async def run() -> None:
        worker = asyncio.create_task(run_worker(JobEnv(current, target, FAST), concurrency=2))
        deadline = time.monotonic() + 30
        while fetch_runs() < 2 and time.monotonic() < deadline and not worker.done():
            await asyncio.wait({worker}, timeout=0.1)
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    asyncio.run(run())
    assert fetch_runs() >= 2
    log = (tmp_path / "logs" / "fetch_latest.log").read_text()
    assert "fetch latest: received 2" in log
    assert (tmp_path / "logs" / "compute_routes.log").exists()
    assert sim.key not in log


def test_the_retention_task_drops_old_months_and_is_recorded(
    settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    conn.execute("SELECT ensure_positions_partition('2020-01-15 00:00+00')")
    conn.execute(
        "INSERT INTO positions (placa, data_transmissao, latitude, longitude) VALUES"
        " ('ABC1234', '2020-01-15 10:00+00', -23.5, -46.6),"
        " ('ABC1234', now() - interval '1 day', -23.5, -46.6)"
    )
    current = settings.model_copy(update={"etrack_retention": parse_duration("24m")})

    async def work() -> None:
        async with open_app(JobEnv(current, target, FAST), schedule=True) as app:
            await app.configure_task(PRUNE_RETENTION).defer_async(timestamp=0)
            await app.run_worker_async(
                queues=["etrack"], wait=False, install_signal_handlers=False, listen_notify=False
            )

    asyncio.run(work())
    assert conn.execute("SELECT count(*) FROM positions").fetchone() == (1,)
    assert conn.execute("SELECT to_regclass('positions_y2020m01')").fetchone() == (None,)
    status = conn.execute(
        "SELECT status FROM procrastinate_jobs WHERE task_name = %s", (PRUNE_RETENTION,)
    ).fetchone()
    assert status == ("succeeded",)
