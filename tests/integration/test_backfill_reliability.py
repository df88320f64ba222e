"""Backfill reliability (issue 13): a day fetched before it was over is not
done, and a dead API is not hammered. Real simulator over HTTP, real
PostgreSQL, Procrastinate's real worker in-process."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any

import pytest

from etrack.config import Settings
from etrack.errors import ApiCircuitOpen, ApiUnavailable, UnknownPlate
from etrack.jobs import backfill as bf
from etrack.jobs.accounts import Breaker
from etrack.jobs.env import EtrackApp
from etrack.store import db
from fixtures_simulator import SIMULATOR_NOW, SIMULATOR_TZ, MakeSimulator
from integration.test_jobs_backfill import backfill_now, job_settings, with_app

YESTERDAY, TODAY = date(2025, 1, 7), date(2025, 1, 8)  # the simulator's now: 08/01 12:00


def states(conn: db.Conn) -> dict[tuple[str, date], tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT placa, day, state, history_at IS NOT NULL FROM backfill_partitions"
    ).fetchall()
    return {(r[0], r[1]): (r[2], r[3]) for r in rows}


def stored(conn: db.Conn, placa: str, day: date) -> int:
    start = datetime.combine(day, datetime.min.time(), SIMULATOR_TZ)
    end = datetime.combine(date.fromordinal(day.toordinal() + 1), datetime.min.time(), SIMULATOR_TZ)
    row = conn.execute(
        "SELECT count(*) FROM positions WHERE placa = %s"
        " AND data_transmissao >= %s AND data_transmissao < %s",
        (placa, start, end),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_day_fetched_before_it_was_over_is_fetched_again_later(
    make_simulator: MakeSimulator,
    settings: Settings,
    target: db.Target,
    conn: db.Conn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn.execute("SELECT ensure_positions_partition('2025-01-15 00:00+00')")
    days = (YESTERDAY, TODAY)

    # At noon of the 8th: the 7th is over (and past the margin), the 8th is not.
    noon = make_simulator(vehicles=3)
    plates = noon.fleet.plates()
    monkeypatch.setattr(bf, "utc_now", lambda: SIMULATOR_NOW)
    first = with_app(
        job_settings(settings, noon), target, lambda app: backfill_now(app, None, days)
    )
    assert (first.done, first.queued) == (0, 6)
    found = states(conn)
    assert {found[(p, YESTERDAY)] for p in plates} == {("done", True)}
    assert {found[(p, TODAY)] for p in plates} == {("partial", False)}
    partial_rows = {p: stored(conn, p, TODAY) for p in plates}
    assert all(partial_rows.values())  # half a day arrived...
    finished = conn.execute("SELECT count(*) FROM backfills WHERE finished_at IS NOT NULL")
    assert finished.fetchone() == (1,)  # ...and the backfill settled (routes computed)

    # At 01:00 on the 9th the day is over, but late positions may still come
    # (ETRACK_LATE_DATA_MARGIN_S, 3 h by default): fetched again, still partial.
    night = make_simulator(vehicles=3, now=datetime(2025, 1, 9, 1, 0, tzinfo=SIMULATOR_TZ))
    monkeypatch.setattr(bf, "utc_now", lambda: datetime(2025, 1, 9, 1, 0, tzinfo=SIMULATOR_TZ))
    second = with_app(
        job_settings(settings, night), target, lambda app: backfill_now(app, plates, days)
    )
    assert (second.done, second.queued) == (3, 3)
    assert {d for _, d in night.stats().history_fetches} == {TODAY}
    assert {states(conn)[(p, TODAY)] for p in plates} == {("partial", False)}

    # The next morning, past the margin: fetched once more, now done for good.
    morning = make_simulator(vehicles=3, now=datetime(2025, 1, 9, 8, 0, tzinfo=SIMULATOR_TZ))
    monkeypatch.setattr(bf, "utc_now", lambda: datetime(2025, 1, 9, 8, 0, tzinfo=SIMULATOR_TZ))
    third = with_app(
        job_settings(settings, morning), target, lambda app: backfill_now(app, plates, days)
    )
    assert (third.done, third.queued) == (3, 3)
    assert {d for _, d in morning.stats().history_fetches} == {TODAY}
    assert {states(conn)[(p, TODAY)] for p in plates} == {("done", True)}
    for placa in plates:
        whole_day = len(morning.fleet.expected_positions(placa, TODAY))
        assert stored(conn, placa, TODAY) == whole_day > partial_rows[placa], placa

    # Done now: a fourth run fetches nothing.
    morning.reset_stats()
    fourth = with_app(
        job_settings(settings, morning), target, lambda app: backfill_now(app, plates, days)
    )
    assert (fourth.done, fourth.queued) == (6, 0)
    assert morning.stats().history_fetches == {}


def test_the_margin_is_a_setting(
    make_simulator: MakeSimulator,
    settings: Settings,
    target: db.Target,
    conn: db.Conn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn.execute("SELECT ensure_positions_partition('2025-01-15 00:00+00')")
    sim = make_simulator(vehicles=1, now=datetime(2025, 1, 9, 0, 30, tzinfo=SIMULATOR_TZ))
    monkeypatch.setattr(bf, "utc_now", lambda: datetime(2025, 1, 9, 0, 30, tzinfo=SIMULATOR_TZ))
    assert settings.etrack_late_data_margin_s == 10800.0  # the default: 3 h
    current = job_settings(settings, sim, etrack_late_data_margin_s=600.0)
    with_app(current, target, lambda app: backfill_now(app, None, (TODAY, TODAY)))
    assert set(states(conn).values()) == {("done", True)}


# --------------------------------------------------------------- breaker
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_failures_in_a_row_then_probes_once() -> None:
    clock = Clock()
    gate = Breaker("acme", threshold=2, wait_s=30.0, clock=clock)
    sent: list[str] = []

    async def down() -> None:
        sent.append("down")
        raise ApiUnavailable("/x", 5, "HTTP 503")

    async def up() -> str:
        sent.append("up")
        return "ok"

    async def refused() -> None:
        sent.append("refused")
        raise UnknownPlate("Placa não encontrada", 404, "/x")

    async def scenario() -> None:
        for _ in range(2):
            with pytest.raises(ApiUnavailable):
                await gate.call(down)
        assert gate.is_open
        with pytest.raises(ApiCircuitOpen) as refusal:
            await gate.call(up)
        assert "account acme" in str(refusal.value)
        assert refusal.value.retry_after_s == 30.0
        assert sent == ["down", "down"]  # nothing sent while open

        clock.now = 31.0  # the probe fails: open again, for another wait
        with pytest.raises(ApiUnavailable):
            await gate.call(down)
        with pytest.raises(ApiCircuitOpen):
            await gate.call(up)
        assert sent == ["down", "down", "down"]

        # Calls arriving during a probe wait for its outcome, then go out.
        clock.now = 62.0
        release = asyncio.Event()

        async def slow_up() -> str:
            await release.wait()
            return await up()

        probe = asyncio.create_task(gate.call(slow_up))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(gate.call(up))
        await asyncio.sleep(0)
        assert not waiter.done()
        release.set()
        assert await probe == "ok"
        assert await waiter == "ok"
        assert not gate.is_open

        # Any answer resets the count: a refusal is not an outage.
        with pytest.raises(ApiUnavailable):
            await gate.call(down)
        with pytest.raises(UnknownPlate):
            await gate.call(refused)
        with pytest.raises(ApiUnavailable):
            await gate.call(down)
        assert not gate.is_open

    asyncio.run(scenario())


@pytest.mark.slow
def test_a_backfill_against_a_dead_api_sends_few_requests(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=2, error_rate=1.0)
    plates = sim.fleet.plates()
    current = job_settings(
        settings,
        sim,
        etrac_max_attempts=2,
        etrack_api_breaker_failures=2,
        etrack_api_breaker_wait_s=1.0,
    )
    days = (date(2025, 1, 4), date(2025, 1, 8))  # 10 partitions

    async def run(app: EtrackApp) -> bf.BackfillStatus | None:
        result = await bf.plan(app, bf.BackfillRequest(days[0], days[1], plates))
        assert await bf.work_off(app, result.backfill, concurrency=2, poll_s=0.1)
        return await bf.status(app, result.backfill.id)

    found = with_app(current, target, run)
    assert found is not None
    assert (found.counts.failed, found.counts.retrying) == (10, 0)
    sent = sim.stats().count("ultimasposicoesterminal")
    # Without the breaker: 10 partitions x 6 job attempts x 2 client attempts.
    assert sent <= 40, sent  # of 120; about 20 when the machine is idle
    errors = {f.error.split(":")[0] for f in found.failures}
    assert errors <= {"ApiUnavailable", "ApiCircuitOpen"}, errors
