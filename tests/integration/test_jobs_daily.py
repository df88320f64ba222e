"""The daily run and its catch-up, in-process against the simulator and a
real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar

import pydantic
import pytest

from etrack.config import Settings
from etrack.errors import DailyBusy
from etrack.jobs.app import open_app
from etrack.jobs.daily import DailyOptions, defer_catch_up, run_daily, run_daily_job
from etrack.jobs.env import EtrackApp, JobEnv, session_lock
from etrack.jobs.names import DAILY
from etrack.simulator.server import SimulatorHandle
from etrack.store import db
from fixtures_jobs import FAST
from fixtures_simulator import SIMULATOR_TZ, MakeSimulator

T = TypeVar("T")
DAY = date(2025, 1, 7)


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
        async with open_app(JobEnv(settings, target, FAST)) as app:
            return await work(app)

    return asyncio.run(go())


def test_the_daily_run_fetches_everything_and_marks_the_day(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=3)
    current = job_settings(settings, sim)

    result = with_app(current, target, lambda app: run_daily(app, DailyOptions(day=DAY)))

    assert result.plates == 3
    assert result.complete
    assert result.routes.computed >= 3
    assert result.line().startswith("daily 2025-01-07: 3 plates; received ")
    stats = sim.stats()
    assert set(stats.history_fetches) == {(p, DAY) for p in sim.fleet.plates()}
    assert set(stats.trip_fetches) == {(p, DAY) for p in sim.fleet.plates()}
    assert stats.count("ultimas-posicoes") == 1
    assert conn.execute("SELECT day, plates FROM daily_runs").fetchall() == [(DAY, 3)]
    routes = conn.execute("SELECT count(*) FROM routes WHERE rota_date = %s", (DAY,)).fetchone()
    assert routes == (3,)


def test_a_run_for_some_plates_does_not_mark_the_day(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=3)
    current = job_settings(settings, sim)
    plates = [sim.fleet.plates()[0], "ZZZ9Z99"]

    result = with_app(
        current, target, lambda app: run_daily(app, DailyOptions(day=DAY, plates=plates))
    )

    assert list(result.failed) == ["ZZZ9Z99"]
    assert "UnknownPlate" in result.failed["ZZZ9Z99"]
    assert sim.stats().count("ultimas-posicoes") == 0
    assert conn.execute("SELECT count(*) FROM daily_runs").fetchone() == (0,)
    # No route is stored for a plate whose day could not be fetched.
    assert conn.execute("SELECT count(*) FROM routes WHERE placa = 'ZZZ9Z99'").fetchone() == (0,)


def test_a_second_run_while_one_holds_the_lock_is_refused(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=1)
    current = job_settings(settings, sim)

    async def blocked(app: EtrackApp) -> str:
        async with session_lock(target, current.etrac_daily_lock_id) as got:
            assert got
            with pytest.raises(DailyBusy) as busy:
                await run_daily(app, DailyOptions(day=DAY))
        return str(busy.value)

    message = with_app(current, target, blocked)
    assert message.startswith("another daily run is active (advisory lock ETRAC_DAILY_LOCK_ID=")
    assert sim.stats().total == 0


def test_the_daily_job_skips_a_day_already_done(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=1)
    conn.execute("INSERT INTO daily_runs (day, plates) VALUES (%s, 1)", (DAY,))
    outcome = with_app(job_settings(settings, sim), target, lambda app: run_daily_job(app, DAY))
    assert outcome.status == "skipped"
    assert sim.stats().total == 0


def test_catch_up_defers_each_missed_day_once(
    settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    conn.execute("INSERT INTO daily_runs (day, plates) VALUES ('2025-01-04', 3)")
    now = datetime(2025, 1, 8, 9, 0, tzinfo=SIMULATOR_TZ)

    async def twice(app: EtrackApp) -> list[list[date]]:
        # Several workers starting at once.
        return list(await asyncio.gather(*(defer_catch_up(app, now=now) for _ in range(3))))

    deferred = with_app(settings, target, twice)
    assert sorted(d for each in deferred for d in each) == [
        date(2025, 1, 5),
        date(2025, 1, 6),
        date(2025, 1, 7),
    ]
    queued = conn.execute(
        "SELECT args ->> 'day' FROM procrastinate_jobs WHERE task_name = %s ORDER BY 1", (DAILY,)
    ).fetchall()
    assert queued == [("2025-01-05",), ("2025-01-06",), ("2025-01-07",)]
    # A worker starting later defers nothing new while those wait.
    assert with_app(settings, target, lambda app: defer_catch_up(app, now=now)) == []
