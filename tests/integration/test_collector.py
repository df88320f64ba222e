"""The collector end to end: real client -> real simulator over HTTP -> real
PostgreSQL, checked against the simulator's ground truth."""

from __future__ import annotations

import asyncio
import math
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from etrack.collect import Collector, open_collector
from etrack.config import Settings
from etrack.provider.client import EtracClient
from etrack.provider.ratelimit import UnlimitedLimiter
from etrack.simulator.server import SimulatorHandle
from etrack.store import db
from fixtures_simulator import MakeSimulator

DAYS = [date(2025, 1, 5), date(2025, 1, 6), date(2025, 1, 7)]


def collector_settings(settings: Settings, sim: SimulatorHandle) -> Settings:
    return settings.model_copy(
        update={
            "etrac_api_base": sim.base_url,
            "etrac_user": sim.user,
            "etrac_key": __import__("pydantic").SecretStr(sim.key),
            "etrac_rate_limit": 500.0,
        }
    )


async def fetch_all(collector: Collector, plates: list[str], days: list[date]) -> None:
    gate = asyncio.Semaphore(8)

    async def one(plate: str, day: date) -> None:
        async with gate:
            await collector.fetch_history_day(plate, day)

    await asyncio.gather(*(one(p, d) for p in plates for d in days))


def stored_rows(target: db.Target) -> dict[tuple[str, Any], tuple[Any, ...]]:
    with db.connection(target) as conn:
        rows = conn.execute(
            "SELECT placa, data_transmissao, latitude, longitude, velocidade, ignicao, odometro,"
            " quality, logradouro FROM positions"
        ).fetchall()
    return {(r[0], r[1]): tuple(r[2:]) for r in rows}


@pytest.mark.slow
def test_fleet_history_is_stored_exactly_once(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=50)
    current = collector_settings(settings, sim)
    plates = sim.fleet.plates()
    assert len(plates) == 50

    async def run() -> tuple[int, int]:
        async with open_collector(current, target) as collector:
            await fetch_all(collector, plates, DAYS)
            first = collector.summary.positions.inserted
        async with open_collector(current, target) as collector:
            await fetch_all(collector, plates, DAYS)
            return first, collector.summary.positions.inserted

    first_inserted, second_inserted = asyncio.run(run())
    stored = stored_rows(target)

    expected = [e for p in plates for d in DAYS for e in sim.fleet.expected_positions(p, d)]
    assert first_inserted == len(expected)
    assert second_inserted == 0
    assert len(stored) == len(expected)
    by_quality: dict[str, int] = {}
    for e in expected:
        row = stored[(e.placa, e.data_transmissao)]
        lat, lon, speed, ignition, odometer, quality, address = row
        assert quality == e.quality, (e, row)
        by_quality[quality] = by_quality.get(quality, 0) + 1
        if e.quality == "valid":
            assert math.isclose(lat, e.latitude, abs_tol=1e-6)
            assert math.isclose(lon, e.longitude, abs_tol=1e-6)
            assert math.isclose(speed, e.velocidade, abs_tol=0.01)
            assert ignition == e.ignicao
            assert math.isclose(odometer, e.odometro, abs_tol=0.01)
            assert address == e.logradouro
    # The default quirks are on: the data has every kind of flag.
    assert by_quality.get("no_fix", 0) > 0
    assert by_quality.get("jump", 0) > 0


def test_timestamps_are_local_strings_in_sao_paulo(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=2)
    current = collector_settings(settings, sim)
    plate = sim.fleet.plates()[0]

    async def run() -> None:
        async with open_collector(current, target) as collector:
            await collector.fetch_history_day(plate, DAYS[0])

    asyncio.run(run())
    served = {
        row["data_transmissao"]
        for row in sim.fleet.history_rows(plate, DAYS[0])
        if isinstance(row, dict)
    }
    with db.connection(target) as conn:
        conn.execute("SET timezone = 'America/Sao_Paulo'")
        local = {
            r[0]
            for r in conn.execute(
                "SELECT to_char(data_transmissao, 'DD/MM/YYYY HH24:MI:SS') FROM positions"
            )
        }
    assert local == served


def test_fetch_trips_twice_keeps_one_copy(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=5)
    current = collector_settings(settings, sim)
    plate = next(p for p in sim.fleet.plates() if sim.fleet.trip_summaries(p, DAYS[1]))
    expected = len(sim.fleet.trip_summaries(plate, DAYS[1]))

    async def run() -> tuple[int, int]:
        async with open_collector(current, target) as collector:
            first = await collector.fetch_trips(plate, DAYS[1])
            second = await collector.fetch_trips(plate, DAYS[1])
            return first.inserted, second.inserted

    assert asyncio.run(run()) == (expected, 0)
    with db.connection(target) as conn:
        assert conn.execute("SELECT count(*) FROM trips").fetchone() == (expected,)
        rota = conn.execute("SELECT DISTINCT rota_date FROM trips").fetchall()
    assert rota == [(DAYS[1],)]


def test_fetch_latest_discovers_the_fleet(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=12)
    current = collector_settings(settings, sim)

    async def run() -> str:
        async with open_collector(current, target) as collector:
            await collector.fetch_latest()
            await collector.fetch_latest()
            return collector.summary.line()

    line = asyncio.run(run())
    assert line.startswith("received 24, inserted 12, already present 12")
    with db.connection(target) as conn:
        plates = {r[0] for r in conn.execute("SELECT placa FROM terminals")}
        described = conn.execute(
            "SELECT count(*) FROM terminals WHERE descricao IS NOT NULL AND frota IS NOT NULL"
        ).fetchone()
    assert plates == set(sim.fleet.plates())
    assert described == (12,)


def test_history_range_is_split_without_gap_or_overlap(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    from datetime import datetime

    sim = make_simulator(vehicles=3)
    current = collector_settings(settings, sim)
    plate = sim.fleet.plates()[0]
    tz = current.tz
    start = datetime(2025, 1, 5, 6, 30, tzinfo=tz)
    end = datetime(2025, 1, 7, 18, 0, tzinfo=tz)

    async def run() -> None:
        async with open_collector(current, target) as collector:
            await collector.fetch_history_range(plate, start, end)

    asyncio.run(run())
    expected = {
        e.data_transmissao
        for d in DAYS
        for e in sim.fleet.expected_positions(plate, d)
        if start <= e.data_transmissao < end
    }
    with db.connection(target) as conn:
        stored = {r[0] for r in conn.execute("SELECT data_transmissao FROM positions")}
    assert stored == expected
    calls = sim.stats()
    assert calls is not None


@pytest.mark.parametrize("days_back", [1])
def test_nothing_after_now_is_stored(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target, days_back: int
) -> None:
    sim = make_simulator(vehicles=2)
    current = collector_settings(settings, sim)
    plate = sim.fleet.plates()[0]
    today = sim.fleet.now().date()

    async def run() -> None:
        async with open_collector(current, target) as collector:
            await collector.fetch_history_day(plate, today)
            await collector.fetch_history_day(plate, today - timedelta(days=days_back))

    asyncio.run(run())
    with db.connection(target) as conn:
        newest = conn.execute("SELECT max(data_transmissao) FROM positions").fetchone()
    assert newest is not None
    assert newest[0] <= sim.fleet.now()


def test_control_characters_in_a_history_answer_never_fail_its_batch(
    settings: Settings, target: db.Target
) -> None:
    # The terminal block goes through the parser like the rows: a NUL (which
    # PostgreSQL text refuses) is stripped, the text "null" is no value.
    terminal = {"placa": "ABC-1234", "descricao": "Caminhão\x00 Baú", "frota": " NULL "}
    rows = [
        {
            "placa": "ABC1234",
            "data_transmissao": f"07/01/2025 08:{minute:02d}:00",
            "latitude": f"{-23.55 + minute * 0.001:.6f}",
            "longitude": "-46.633308",
            "velocidade": "30",
            "ignicao": "1",
            "logradouro": "Rua A\x00\nCentro",
        }
        for minute in range(5)
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/ultimasposicoesterminal")
        body = {"code_header": 200, "terminal": terminal, "posicoes": rows}
        return httpx.Response(200, json=body)

    client = EtracClient(
        "http://etrac.test/monitoramento",
        "frota@example.com",
        "key",
        tz=settings.tz,
        limiter=UnlimitedLimiter(),
        transport=httpx.MockTransport(answer),
    )
    pool = db.make_pool(target)

    async def run() -> tuple[int, int]:
        try:
            stats = await Collector(settings, client, pool).fetch_history_day("ABC1234", DAYS[2])
        finally:
            await client.aclose()
        return stats.inserted, stats.rejected

    try:
        assert asyncio.run(run()) == (5, 0)
    finally:
        pool.close()
    with db.connection(target) as conn:
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (5,)
        described = conn.execute("SELECT placa, descricao, frota FROM terminals").fetchall()
        addresses = {r[0] for r in conn.execute("SELECT logradouro FROM positions")}
    assert described == [("ABC1234", "Caminhão Baú", None)]
    assert addresses == {"Rua A Centro"}
