"""Poisoned answers (issue 13, points 3, 9 and the "no data beside rows" part of
10): the real client against the simulator's hostile mode over HTTP, through
the collector into real PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from etrack.collect import Collector, open_collector
from etrack.config import Settings
from etrack.errors import AnswerTooLarge, exit_code_for
from etrack.model import canonical_plate
from etrack.provider.client import CHUNK_BYTES, TOO_DEEP
from etrack.provider.parse import NOT_AN_OBJECT, NUMBER_OUT_OF_RANGE
from etrack.simulator.server import SimulatorHandle
from etrack.simulator.wire import DEEP_LEVELS, NOT_OBJECTS
from etrack.store import db
from fixtures_simulator import SIMULATOR_NOW, MakeSimulator

ROW_POISONS = ("surrogate", "huge_integer", "huge_float", "deep")


def hostile_settings(settings: Settings, sim: SimulatorHandle, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "etrac_api_base": sim.base_url,
            "etrac_user": sim.user,
            "etrac_key": SecretStr(sim.key),
            "etrac_rate_limit": 500.0,
            "etrac_max_attempts": 3,
            **extra,
        }
    )


def served_plates(sim: SimulatorHandle) -> list[str]:
    """The plates of `/ultimas-posicoes`, in the order the simulator serves them."""
    return [canonical_plate(row["placa"]) for row in sim.fleet.latest_rows()]


def rejects(target: db.Target) -> list[tuple[str, str | None, str, str]]:
    with db.connection(target) as conn:
        rows = conn.execute(
            "SELECT reason, placa, message, endpoint FROM position_rejects ORDER BY id"
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def test_a_poisoned_fleet_answer_stores_the_good_vehicles_and_rejects_the_bad_rows(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=8, poison=(*ROW_POISONS, "not_object"))
    plates = served_plates(sim)
    assert len(plates) == 8
    surrogate, huge_integer, huge_float, deep, *clean = plates

    async def run() -> Collector:
        async with open_collector(hostile_settings(settings, sim), target) as collector:
            await collector.fetch_latest()
            return collector

    collector = asyncio.run(run())
    stats = collector.summary.positions
    # One request, no retry: a poisoned row is no reason to ask again.
    assert collector.client.stats.requests == 1
    assert sim.stats().faults["poisoned"] == 1
    assert stats.inserted == 1 + len(clean)
    assert stats.rejected == 3 + len(NOT_OBJECTS)

    with db.connection(target) as conn:
        stored = {
            str(r[0]): (r[1], r[2], r[3])
            for r in conn.execute(
                "SELECT placa, logradouro, raw->>'logradouro', raw->>'descricao' FROM positions"
            )
        }
        descricao = dict(conn.execute("SELECT placa, descricao FROM terminals").fetchall())
        raw_deep = conn.execute(
            "SELECT jsonb_typeof(raw), length(raw #>> '{}') FROM position_rejects"
            " WHERE reason = %s",
            (TOO_DEEP,),
        ).fetchone()
    assert set(stored) == {surrogate, *clean}
    # The lone surrogate is replaced in the text and kept as its escape in the raw.
    logradouro, raw_logradouro, raw_descricao = stored[surrogate]
    assert logradouro is not None
    assert logradouro.endswith("\ufffd")
    assert raw_logradouro.endswith("\\ud800")
    assert raw_descricao.startswith("\\udc00")
    assert descricao[surrogate].startswith("\ufffd")

    found = rejects(target)
    by_plate = {placa: (reason, message) for reason, placa, message, _ in found if placa}
    assert by_plate[huge_integer][0] == NUMBER_OUT_OF_RANGE
    assert "velocidade" in by_plate[huge_integer][1]
    assert "5000 characters" in by_plate[huge_integer][1]
    assert by_plate[huge_float] == (
        NUMBER_OUT_OF_RANGE,
        "odometro: 1e400 is out of range, expected a number within +-1.8e308",
    )
    assert by_plate[deep][0] == TOO_DEEP
    assert [reason for reason, placa, _, _ in found if placa is None] == [NOT_AN_OBJECT] * len(
        NOT_OBJECTS
    )
    assert {endpoint for *_, endpoint in found} == {"/ultimas-posicoes"}
    # The deep row is kept whole, as the text the provider sent.
    assert raw_deep is not None
    assert raw_deep[0] == "string"
    assert raw_deep[1] > 2 * DEEP_LEVELS


def test_poisoned_history_keeps_the_days_other_rows(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=1, poison=("deep", "surrogate", "not_object"))
    plate = sim.fleet.plates()[0]
    day = SIMULATOR_NOW.date().replace(day=SIMULATOR_NOW.day - 1)
    served = sim.fleet.history_rows(plate, day)
    assert len(served) > 100

    async def run() -> int:
        async with open_collector(hostile_settings(settings, sim), target) as collector:
            stats = await collector.fetch_history_day(plate, day)
            assert collector.client.stats.requests == 1
            return stats.rejected

    rejected = asyncio.run(run())
    assert rejected == 1 + len(NOT_OBJECTS)
    with db.connection(target) as conn:
        count = conn.execute("SELECT count(*) FROM positions").fetchone()
        replaced = conn.execute(
            "SELECT count(*) FROM positions WHERE logradouro LIKE %s", ("%\ufffd",)
        ).fetchone()
    expected = {(e.placa, e.data_transmissao) for e in sim.fleet.expected_positions(plate, day)}
    # Every position but the one of the too-deep row (row 0) is stored.
    assert count is not None
    assert len(expected) - 1 <= count[0] <= len(expected)
    assert replaced == (1,)
    assert [r[0] for r in rejects(target)].count(TOO_DEEP) == 1


@pytest.mark.parametrize("endpoint", ["latest", "history"])
def test_no_data_erro_beside_real_rows_stores_the_rows(
    endpoint: str, make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=3, poison=("no_data_erro",))
    plate = sim.fleet.plates()[0]
    day = SIMULATOR_NOW.date()

    async def run() -> int:
        async with open_collector(hostile_settings(settings, sim), target) as collector:
            if endpoint == "latest":
                return (await collector.fetch_latest()).inserted
            return (await collector.fetch_history_day(plate, day)).inserted

    inserted = asyncio.run(run())
    expected = 3 if endpoint == "latest" else len(sim.fleet.expected_positions(plate, day))
    assert sim.stats().faults["poisoned"] == 1
    assert expected > 0
    assert inserted == expected


def test_a_gzip_bomb_fails_at_the_cap_with_one_clear_line(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    cap = 1 << 20
    sim = make_simulator(vehicles=2, poison=("gzip_bomb",), bomb_bytes=64 << 20)
    current = hostile_settings(settings, sim, etrac_max_answer_bytes=cap)

    async def run() -> tuple[Collector, AnswerTooLarge]:
        async with open_collector(current, target) as collector:
            with pytest.raises(AnswerTooLarge) as info:
                await collector.fetch_latest()
            return collector, info.value

    collector, error = asyncio.run(run())
    client = collector.client.stats
    # Not retried (the same bomb would come again), and read no further than the
    # cap plus one decompression step: memory stays bounded whatever the bomb.
    assert (client.requests, client.failures) == (1, 1)
    assert cap < client.bytes_decoded <= cap + CHUNK_BYTES
    assert sim.stats().faults["gzip_bomb"] == 1
    message = str(error)
    assert "\n" not in message
    assert "ETRAC_MAX_ANSWER_BYTES" in message
    assert "1,048,576 bytes" in message
    assert "/monitoramento/ultimas-posicoes" in message
    assert exit_code_for(error) == 1
    assert not error.transient
    with db.connection(target) as conn:
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (0,)
