"""docs/queries.md stays true: every ```sql block runs against a database
loaded from the simulator through the real collector (history, trips, latest
positions) and the real route computation, and returns rows."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from etrack.collect import open_collector
from etrack.config import Settings
from etrack.simulator.server import build_config, run_in_thread
from etrack.store import db
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams
from fixtures_db import SCHEMA, with_database

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "queries.md"
TZ = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2025, 1, 8, 12, 0, tzinfo=TZ)
DAYS = [date(2025, 1, 5), date(2025, 1, 6), date(2025, 1, 7)]
DAY = date(2025, 1, 6)  # a Monday: most of the fleet drives

_BLOCK = re.compile(r"^```sql\n(.*?)^```", re.MULTILINE | re.DOTALL)
_VARIABLE = re.compile(r"(?<!:):'(\w+)'")
_SET = re.compile(r"^\\set (\w+) '([^']*)'$", re.MULTILINE)


def doc_blocks() -> list[str]:
    return [match.group(1).strip() for match in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def doc_variables() -> dict[str, str]:
    """The `\\set name 'value'` lines the document tells readers to run first."""
    return dict(_SET.findall(DOC.read_text(encoding="utf-8")))


def block_title(block: str) -> str:
    first = block.splitlines()[0]
    return first.removeprefix("--").strip() if first.startswith("--") else first[:60]


def with_values(block: str, values: dict[str, str]) -> str:
    """What psql does with :'name': the value as a quoted literal."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"queries.md uses :'{name}', which the test does not know")
        return "'" + values[name].replace("'", "''") + "'"

    return _VARIABLE.sub(one, block)


@pytest.fixture(scope="module")
def fleet_database(pg_server_url: str, template_database: str) -> Iterator[tuple[db.Target, str]]:
    """A database of this module's own: 10 simulated vehicles, three days of
    history and trips, the latest positions, and the routes of those days.
    Yields the target and a plate that drove on DAY."""
    name = f"etrack_queries_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    target = db.Target(with_database(pg_server_url, name), SCHEMA, embedded=False)
    try:
        with run_in_thread(build_config(seed=42, vehicles=10, now=NOW)) as sim:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=target.conninfo,
                etrac_api_base=sim.base_url,
                etrac_user=sim.user,
                etrac_key=SecretStr(sim.key),
                etrac_rate_limit=500.0,
            )
            plates = sim.fleet.plates()

            async def collect() -> None:
                async with open_collector(settings, target) as collector:
                    await collector.fetch_latest()
                    for plate in plates:
                        for day in DAYS:
                            await collector.fetch_history_day(plate, day)
                            await collector.fetch_trips(plate, day)

            asyncio.run(collect())
            driver = next(p for p in sorted(plates) if sim.fleet.true_trips(p, DAY))
        compute_routes(target, RouteParams.from_settings(settings), plates=None, days=DAYS)
        yield target, driver
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_the_document_has_the_promised_queries() -> None:
    blocks = doc_blocks()
    assert len(blocks) >= 10
    titles = " | ".join(block_title(b).lower() for b in blocks)
    for topic in (
        "positions per plate",
        "geojson",
        "idle",
        "silent",
        "speeding",
        "distance per fleet",
    ):
        assert topic in titles, topic
    for block in blocks:
        assert block.startswith("--"), (
            f"each query starts with a comment saying what it answers: {block[:80]}"
        )
        assert block.rstrip().endswith(";"), f"psql needs the ';': {block_title(block)}"
    assert set(doc_variables()) >= {"placa", "day"}


@pytest.mark.parametrize(
    "index", range(len(doc_blocks())), ids=lambda i: block_title(doc_blocks()[i])
)
def test_query_returns_rows(fleet_database: tuple[db.Target, str], index: int) -> None:
    target, plate = fleet_database
    block = doc_blocks()[index]
    values = {**doc_variables(), "placa": plate, "day": DAY.isoformat()}
    statement = with_values(block, values)
    # As a psql user would run it: default search_path, names qualified in the text.
    with psycopg.connect(target.conninfo, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'America/Sao_Paulo'")
        rows = conn.execute(statement.encode()).fetchall()
    assert rows, f"no rows: {block_title(block)}"
    assert all(any(value is not None for value in row) for row in rows)
