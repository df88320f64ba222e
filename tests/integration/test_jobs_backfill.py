"""Backfill steps in-process: real simulator over HTTP, real PostgreSQL,
Procrastinate's real worker on the backfill queue."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, TypeVar

import pydantic
import pytest

from etrack.config import Settings
from etrack.jobs import backfill as bf
from etrack.jobs.app import open_app
from etrack.jobs.env import EtrackApp, JobEnv, fetch_all
from etrack.jobs.names import BACKFILL_PARTITION
from etrack.jobs.tasks import PARTITION_RETRY
from etrack.simulator.server import SimulatorHandle
from etrack.store import db
from fixtures_jobs import FAST
from fixtures_simulator import MakeSimulator

T = TypeVar("T")

DAYS = (date(2025, 1, 5), date(2025, 1, 7))


def job_settings(settings: Settings, sim: SimulatorHandle, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "etrac_api_base": sim.base_url,
            "etrac_user": sim.user,
            "etrac_key": pydantic.SecretStr(sim.key),
            "etrac_rate_limit": 200.0,
            **extra,
        }
    )


def with_app(settings: Settings, target: db.Target, work: Callable[[EtrackApp], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_app(JobEnv(settings, target, FAST, pool_size=5)) as app:
            return await work(app)

    return asyncio.run(go())


async def backfill_now(
    app: EtrackApp, plates: list[str] | None, days: tuple[date, date] = DAYS, **options: Any
) -> bf.EnqueueResult:
    request = bf.BackfillRequest(date_start=days[0], date_end=days[1], plates=plates, **options)
    result = await bf.plan(app, request)
    assert await bf.work_off(app, result.backfill, concurrency=4, poll_s=0.1)
    return result


@pytest.fixture(autouse=True)
def _month_partitions(conn: db.Conn) -> None:
    # Two jobs storing the first rows of a month at once can race creating
    # its partition (DuplicateTable, then a job retry that fetches again);
    # create the simulator's months up front so fetch counts stay exact.
    conn.execute("SELECT ensure_positions_partition('2025-01-15 00:00+00')")
    conn.execute("SELECT ensure_positions_partition('2024-12-15 00:00+00')")


def partitions(conn: db.Conn) -> dict[tuple[str, date], tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT placa, day, state, history_at IS NOT NULL, trips_at IS NOT NULL"
        " FROM backfill_partitions"
    ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


def test_a_backfill_fetches_each_partition_once_and_computes_routes(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=4)
    plates = sim.fleet.plates()
    current = job_settings(settings, sim)

    result = with_app(current, target, lambda app: backfill_now(app, None))

    assert result.queued == 12
    assert set(partitions(conn).values()) == {("done", True, False)}
    stats = sim.stats()
    assert stats.max_history_fetches() == 1
    assert len(stats.history_fetches) == 12
    expected = sum(len(sim.fleet.expected_positions(p, d)) for p in plates for d in bf_days())
    stored = conn.execute(
        "SELECT count(*) FROM positions WHERE data_transmissao >= '2025-01-05 03:00+00'"
        " AND data_transmissao < '2025-01-08 03:00+00'"
    ).fetchone()
    assert stored == (expected,)
    routes = conn.execute(
        "SELECT count(*) FROM routes WHERE rota_date BETWEEN '2025-01-05' AND '2025-01-07'"
    ).fetchone()
    assert routes == (12,)
    finished = conn.execute(
        "SELECT finished_at IS NOT NULL, routes_summary FROM backfills"
    ).fetchone()
    assert finished is not None
    assert finished[0]
    assert "12 plate-days computed" in finished[1]


def bf_days() -> list[date]:
    return [date(2025, 1, 5), date(2025, 1, 6), date(2025, 1, 7)]


def test_an_overlapping_backfill_skips_done_days_and_force_refetches(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=3)
    plates = sim.fleet.plates()
    current = job_settings(settings, sim)
    with_app(current, target, lambda app: backfill_now(app, plates))
    sim.reset_stats()

    wider = with_app(
        current, target, lambda app: backfill_now(app, plates, (date(2025, 1, 4), date(2025, 1, 7)))
    )
    assert (wider.done, wider.queued) == (9, 3)
    assert {d for _, d in sim.stats().history_fetches} == {date(2025, 1, 4)}

    sim.reset_stats()
    forced = with_app(current, target, lambda app: backfill_now(app, plates[:1], force=True))
    assert forced.queued == 3
    assert sim.stats().max_history_fetches() == 1
    assert len(sim.stats().history_fetches) == 3


def test_trips_asked_later_fetch_only_the_trips(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=2)
    plates = sim.fleet.plates()
    current = job_settings(settings, sim)
    with_app(current, target, lambda app: backfill_now(app, plates))
    sim.reset_stats()

    with_app(current, target, lambda app: backfill_now(app, plates, with_trips=True))

    stats = sim.stats()
    assert stats.history_fetches == {}
    assert len(stats.trip_fetches) == 6
    assert set(partitions(conn).values()) == {("done", True, True)}
    trips = conn.execute("SELECT count(*) FROM trips").fetchone()
    expected = sum(len(sim.fleet.trip_summaries(p, d)) for p in plates for d in bf_days())
    assert trips == (expected,)


def test_two_jobs_for_one_partition_fetch_it_once(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=1, latency_ms=300)
    placa = sim.fleet.plates()[0]
    current = job_settings(settings, sim)

    async def race(app: EtrackApp) -> list[str]:
        backfill = await bf.open_backfill(
            app, bf.BackfillRequest(DAYS[0], DAYS[0], [placa]), [placa]
        )
        await bf.enqueue(app, backfill)
        deferrer = app.configure_task(BACKFILL_PARTITION)
        ids = [await deferrer.defer_async(placa=placa, day=DAYS[0].isoformat()) for _ in range(2)]
        jobs = [await app.job_manager.fetch_job(queues=None, worker_id=None) for _ in ids]  # type: ignore[arg-type]
        outcomes = await asyncio.gather(
            *(
                bf.work_partition(app, job=job, placa=placa, day=DAYS[0], retry=PARTITION_RETRY)
                for job in jobs
                if job is not None
            )
        )
        return sorted(o.status for o in outcomes)

    assert with_app(current, target, race) == ["skipped", "succeeded"]
    assert sim.stats().max_history_fetches() == 1


def test_failures_are_recorded_then_retry_failed_finishes_them(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=2)
    plates = [*sim.fleet.plates(), "ZZZ9Z99"]  # not in the fleet: refused for good
    current = job_settings(settings, sim)

    async def run(app: EtrackApp) -> bf.BackfillStatus | None:
        request = bf.BackfillRequest(DAYS[0], DAYS[0], plates)
        result = await bf.plan(app, request)
        assert await bf.work_off(app, result.backfill, concurrency=4, poll_s=0.1)
        return await bf.status(app, result.backfill.id)

    found = with_app(current, target, run)
    assert found is not None
    assert (found.counts.done, found.counts.failed, found.counts.retrying) == (2, 1, 0)
    assert found.failures[0].placa == "ZZZ9Z99"
    assert "UnknownPlate" in found.failures[0].error
    text = "\n".join(found.lines())
    assert "ZZZ9Z99 2025-01-05  attempt 1, gave up: UnknownPlate" in text
    assert found.backfill.finished_at is not None  # settled: routes computed anyway

    async def again(app: EtrackApp) -> tuple[int, list[dict[str, Any]]]:
        retried = await bf.retry_failed(app, None)
        assert retried is not None
        rows = await fetch_all(app, "jobs_backfill_get", id=retried[0].id)
        return retried[1], rows

    count, rows = with_app(current, target, again)
    assert count == 1
    assert rows[0]["finished_at"] is None
