"""latest_positions: each vehicle's newest valid position, kept by the ingest,
filled by its migration, read by the fleet snapshot."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from etrack.config import Settings
from etrack.model import FUTURE, JUMP, NO_FIX, OUT_OF_RANGE, VALID, Position
from etrack.quality import flag_sequence
from etrack.store import db
from etrack.store import positions as ingest
from etrack.trips.params import RouteParams
from etrack.web import create_app
from etrack.web.reader import FleetCache, FleetSnapshot, Reader, open_pool

with warnings.catch_warnings():
    # Starlette's TestClient warns that it will move to httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LOCAL = "http://127.0.0.1:5001"
# Columns compared: every measurement of the row (raw and bookkeeping aside).
COLUMNS = (
    "placa, data_transmissao, data_gravacao, latitude, longitude, velocidade, ignicao,"
    " odometro, odometro_can, horimetro, bateria, logradouro"
)
# The newest valid row per plate, computed from positions: what the table must hold.
EXPECTED = (
    f"SELECT DISTINCT ON (placa) {COLUMNS} FROM positions WHERE quality = 'valid'"
    " ORDER BY placa, data_transmissao DESC"
)
STORED = f"SELECT {COLUMNS} FROM latest_positions ORDER BY placa"
BASE = datetime(2025, 5, 20, 11, 0, tzinfo=UTC)


def position(
    placa: str, minute: int, *, quality: str = VALID, velocidade: float | None = 40.0, **extra: Any
) -> Position:
    fields: dict[str, Any] = {
        "placa": placa,
        "data_transmissao": BASE + timedelta(minutes=minute),
        "latitude": -23.55 + minute * 0.001,
        "longitude": -46.63,
        "velocidade": velocidade,
        "ignicao": True,
        "odometro": 1000.0 + minute,
        "odometro_can": None,
        "horimetro": None,
        "bateria": 12.5,
        "logradouro": "Av. Paulista",
        "descricao": None,
        "frota": None,
        "equipamento_serial": None,
        "data_gravacao": None,
        "placa_raw": placa,
        "quality": quality,
        "raw": {"m": minute},
    }
    fields.update(extra)
    return Position(**fields)


def rows(conn: db.Conn, sql: str) -> list[tuple[Any, ...]]:
    return conn.execute(sql).fetchall()


def test_out_of_order_batches_never_move_it_back(conn: db.Conn) -> None:
    ingest.store_positions(conn, [position("ABC1234", m) for m in range(60, 70)])
    newest = rows(conn, STORED)
    assert [r[1] for r in newest] == [BASE + timedelta(minutes=69)]
    # Yesterday's backfill, and a newer point that is not valid: nothing moves.
    ingest.store_positions(conn, [position("ABC1234", m) for m in range(30)])
    ingest.store_positions(conn, [position("ABC1234", 90, quality=NO_FIX)])
    assert rows(conn, STORED) == newest
    # A newer valid point moves it forward.
    ingest.store_positions(conn, [position("ABC1234", 95, velocidade=None)])
    assert rows(conn, STORED) == rows(conn, EXPECTED)
    assert rows(conn, STORED)[0][1] == BASE + timedelta(minutes=95)


def test_a_later_answer_filling_the_newest_row_reaches_it(conn: db.Conn) -> None:
    ingest.store_positions(conn, [position("ABC1234", 5, velocidade=None, logradouro=None)])
    assert rows(conn, STORED)[0][5] is None
    stats = ingest.store_positions(conn, [position("ABC1234", 5, velocidade=33.0)])
    assert stats.updated == 1
    assert rows(conn, STORED) == rows(conn, EXPECTED)
    assert rows(conn, STORED)[0][5] == 33.0
    assert rows(conn, STORED)[0][11] == "Av. Paulista"


def test_a_rerun_changes_nothing(conn: db.Conn) -> None:
    batch = [position(plate, m) for plate in ("ABC1234", "DEF5G67") for m in range(10)]
    ingest.store_positions(conn, batch)
    before = rows(conn, "SELECT *, xmin::text FROM latest_positions ORDER BY placa")
    ingest.store_positions(conn, batch)
    assert rows(conn, "SELECT *, xmin::text FROM latest_positions ORDER BY placa") == before


def test_a_flagged_key_sent_again_as_valid_stays_out(conn: db.Conn) -> None:
    # The stored row keeps its first quality (the upsert never changes it),
    # so the table must not take the resent copy's "valid".
    ingest.store_positions(conn, [position("ABC1234", 1)])
    ingest.store_positions(conn, [position("ABC1234", 2, quality=JUMP)])
    ingest.store_positions(conn, [position("ABC1234", 2)])
    assert rows(conn, STORED)[0][1] == BASE + timedelta(minutes=1)
    assert rows(conn, STORED) == rows(conn, EXPECTED)


def test_the_migration_fills_it_from_stored_positions(conn: db.Conn) -> None:
    batch = [
        *(position("ABC1234", m) for m in range(20)),
        position("ABC1234", 25, quality=OUT_OF_RANGE),
        *(position("DEF5G67", m, quality=FUTURE) for m in range(3)),
        *(position("HIJ8K90", m) for m in (3, 1, 2)),
        # Another month partition.
        position("HIJ8K90", 60 * 24 * 20),
    ]
    ingest.store_positions(conn, batch)
    kept = rows(conn, STORED)
    assert [r[0] for r in kept] == ["ABC1234", "HIJ8K90"]
    sql = (
        resources.files("etrack")
        .joinpath("store/sql/migrations/0009_latest_positions.sql")
        .read_text(encoding="utf-8")
    )
    with conn.transaction():
        conn.execute("DROP TABLE latest_positions")
        conn.execute(sql.encode())
    assert rows(conn, STORED) == kept == rows(conn, EXPECTED)


def test_the_fleet_reads_the_table(settings: Settings, target: db.Target, conn: db.Conn) -> None:
    ingest.store_positions(
        conn,
        [
            *(position("ABC1234", m) for m in range(10)),
            position("ABC1234", 11, quality=NO_FIX),
            position("DEF5G67", 3, velocidade=0.0),
        ],
    )
    # Nothing in positions is read: the fleet shows what latest_positions holds.
    conn.execute("UPDATE latest_positions SET logradouro = 'from the table'")
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as client:
        body = client.get("/api/vehicles").json()
        one = client.get("/api/vehicles/DEF-5G67").json()
        missing = client.get("/api/vehicles/XYZ9999")
    by_plate = {v["placa"]: v for v in body["vehicles"]}
    assert body["count"] == 2
    assert {v["address"] for v in body["vehicles"]} == {"from the table"}
    # last_report is the newest of any quality; ts the newest valid.
    assert by_plate["ABC1234"]["last_report"] > by_plate["ABC1234"]["ts"]
    assert by_plate["ABC1234"]["lat"] == pytest.approx(-23.55 + 9 * 0.001)
    assert one == by_plate["DEF5G67"]
    assert missing.status_code == 404


def test_filters_come_from_the_same_snapshot(
    settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    # Positions relative to now, so each vehicle has the state its name says.
    fleet = {
        "MOV1A23": {"velocidade": 50.0},
        "IDL1A23": {"velocidade": 0.0},
        "OFF1A23": {"velocidade": 0.0, "ignicao": False},
    }
    for plate, extra in fleet.items():
        ingest.store_positions(
            conn,
            [
                position(plate, 0, data_transmissao=now - timedelta(minutes=1), **extra),
                position(plate, 0, data_transmissao=now - timedelta(minutes=2), frota="F1"),
            ],
        )
    ingest.store_positions(conn, [position("OLD1A23", 0, frota="F2")])
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as client:
        everything = client.get("/api/vehicles").json()
        states = {
            state: client.get("/api/vehicles", params={"state": state}).json()
            for state in ("moving", "idle", "off", "stale", "unknown")
        }
        by_plate = client.get("/api/vehicles", params={"plate": "o"}).json()
        zipped = client.get(
            "/api/vehicles", params={"state": "moving"}, headers={"accept-encoding": "gzip"}
        )
    assert {v["placa"]: v["state"] for v in everything["vehicles"]} == {
        "IDL1A23": "idle",
        "MOV1A23": "moving",
        "OFF1A23": "off",
        "OLD1A23": "stale",
    }
    for state, body in states.items():
        expected = [v for v in everything["vehicles"] if v["state"] == state]
        assert body["vehicles"] == expected
        assert body["count"] == len(expected)
        assert body["generated_at"] == everything["generated_at"]
    assert [v["placa"] for v in by_plate["vehicles"]] == ["MOV1A23", "OFF1A23", "OLD1A23"]
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == states["moving"]


@pytest.fixture
def cache(target: db.Target) -> Iterator[tuple[asyncio.Runner, FleetCache]]:
    with asyncio.Runner() as runner:
        pool = runner.run(open_pool(target, max_size=4))
        runner.run(pool.wait())
        yield runner, FleetCache(Reader(pool, RouteParams()), ttl_s=0.0)
        runner.run(pool.close())


async def waiting_on_a_lock(conn: psycopg.AsyncConnection[Any]) -> bool:
    """Whether some other session waits for a lock on latest_positions."""
    cur = await conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted"
        " AND relation = 'e_track.latest_positions'::regclass"
    )
    found = await cur.fetchone()
    return bool(found and found[0])


def test_a_refresh_holds_no_lock_over_other_requests(
    cache: tuple[asyncio.Runner, FleetCache], conn: db.Conn, database_url: str
) -> None:
    runner, fleet = cache
    ingest.store_positions(conn, [position("ABC1234", 1)])

    async def scenario(blocker: psycopg.AsyncConnection[Any]) -> None:
        first = await fleet.snapshot()
        assert [v.placa for v in first.vehicles] == ["ABC1234"]
        # Another session holds latest_positions: the next refresh waits on it.
        await blocker.execute("LOCK TABLE e_track.latest_positions IN ACCESS EXCLUSIVE MODE")
        refreshing = asyncio.create_task(fleet.snapshot())
        deadline = asyncio.get_running_loop().time() + 10
        while not await waiting_on_a_lock(blocker):
            assert asyncio.get_running_loop().time() < deadline, "the refresh never started"
            await asyncio.sleep(0.01)
        # Every other request meanwhile gets the previous snapshot at once.
        others = await asyncio.wait_for(
            asyncio.gather(*(fleet.snapshot() for _ in range(5))), timeout=5
        )
        assert all(other is first for other in others)
        assert not refreshing.done()
        await blocker.rollback()
        fresh = await asyncio.wait_for(refreshing, timeout=10)
        assert fresh is not first
        assert isinstance(fresh, FleetSnapshot)
        assert not fleet._refreshes

    async def run() -> None:
        async with await psycopg.AsyncConnection.connect(database_url) as blocker:
            await scenario(blocker)

    runner.run(run())


def test_a_failing_first_refresh_reaches_the_request(
    cache: tuple[asyncio.Runner, FleetCache], conn: db.Conn
) -> None:
    runner, fleet = cache
    ingest.store_positions(conn, [position("ABC1234", 1)])
    conn.execute("ALTER TABLE latest_positions RENAME TO latest_positions_away")
    with pytest.raises(psycopg.errors.UndefinedTable):
        runner.run(fleet.snapshot())
    assert not fleet._refreshes
    conn.execute("ALTER TABLE latest_positions_away RENAME TO latest_positions")
    assert [v.placa for v in runner.run(fleet.snapshot()).vehicles] == ["ABC1234"]


# ------------------------------------------------------------- the property
PLATES = ("ABC1234", "DEF5G67", "HIJ8K90")
# Minutes around a month's end, so batches also cross two partitions.
MONTH_END = datetime(2025, 5, 31, 23, 50, tzinfo=UTC)
QUALITIES = (VALID, VALID, VALID, NO_FIX, OUT_OF_RANGE, FUTURE, JUMP)


def maybe(values: Sequence[object]) -> st.SearchStrategy[Any]:
    return st.none() | st.sampled_from(values)


@st.composite
def positions(draw: st.DrawFn) -> Position:
    minute = draw(st.integers(0, 25))
    quality = draw(st.sampled_from(QUALITIES))
    # A valid point always has a fix (the parser flags it no_fix otherwise).
    latitudes = [-23.5, -23.6]
    return position(
        draw(st.sampled_from(PLATES)),
        minute,
        data_transmissao=MONTH_END + timedelta(minutes=minute),
        quality=quality,
        latitude=draw(st.sampled_from(latitudes) if quality == VALID else maybe(latitudes)),
        # Missing values, so that a later copy of a row fills them in.
        velocidade=draw(maybe([0.0, 35.5])),
        ignicao=draw(maybe([True, False])),
        odometro_can=draw(maybe([10.0])),
        logradouro=draw(maybe(["Rua A", "Rua B"])),
        data_gravacao=draw(st.none() | st.just(MONTH_END + timedelta(minutes=minute, seconds=5))),
    )


@st.composite
def ingests(draw: st.DrawFn) -> list[list[Position]]:
    """Batches in any order, some sent again later (a re-run, a retried answer)."""
    batches = draw(st.lists(st.lists(positions(), max_size=10), min_size=1, max_size=5))
    again = draw(st.lists(st.integers(0, len(batches) - 1), max_size=3))
    return [*batches, *(batches[i] for i in again)]


def test_it_is_the_newest_valid_position_after_any_ingests(conn: db.Conn) -> None:
    partitions = ingest.PartitionKeeper()
    # Profile-aware (tests/conftest.py): each example is a few transactions,
    # so a tenth of the profile's examples, and at least 50.
    examples = max(50, hyp_settings().max_examples // 10)

    @hyp_settings(
        max_examples=examples,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(ingests())
    def check(batches: list[list[Position]]) -> None:
        for table in ("positions", "latest_positions", "terminals", "position_rejects"):
            conn.execute(f"DELETE FROM {table}")
        for batch in batches:
            # As the collector does: the answer's sequence flags (in-batch
            # duplicates become `duplicate`), then the batch write.
            flagged = flag_sequence(batch, jump_speed_kmh=10_000)
            ingest.store_positions(conn, flagged, partitions=partitions)
        assert rows(conn, STORED) == rows(conn, EXPECTED)
        # Idempotent: the whole sequence again changes no row of the table.
        before = rows(conn, "SELECT *, xmin::text FROM latest_positions ORDER BY placa")
        for batch in batches:
            ingest.store_positions(
                conn, flag_sequence(batch, jump_speed_kmh=10_000), partitions=partitions
            )
        assert rows(conn, "SELECT *, xmin::text FROM latest_positions ORDER BY placa") == before

    check()
