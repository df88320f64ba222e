"""Planner statistics and session options: a new month's partition is
analyzed once it holds rows, and every etrack session runs without JIT."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from etrack.store import db
from etrack.store.stats import analyze_new_partitions, analyze_new_partitions_at


def reltuples(conn: db.Conn, name: str) -> float:
    row = conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (name,)
    ).fetchone()
    assert row is not None
    return float(row[0])


def test_a_new_month_is_analyzed_once_it_holds_rows(target: db.Target, conn: db.Conn) -> None:
    full = conn.execute(
        "SELECT ensure_positions_partition(%s)", (datetime(2031, 3, 10, tzinfo=UTC),)
    ).fetchone()
    empty = conn.execute(
        "SELECT ensure_positions_partition(%s)", (datetime(2031, 4, 10, tzinfo=UTC),)
    ).fetchone()
    assert full is not None
    assert empty is not None
    conn.execute(
        "INSERT INTO positions (placa, data_transmissao, latitude, longitude)"
        " SELECT 'ABC1D23', timestamptz '2031-03-01 00:00Z' + n * interval '1 minute', -23.5, -46.6"
        " FROM generate_series(0, 1999) AS n"
    )
    assert reltuples(conn, full[0]) < 0  # never analyzed: the planner would guess

    assert analyze_new_partitions_at(target) == [full[0]]
    assert reltuples(conn, full[0]) == 2000
    assert reltuples(conn, empty[0]) < 0  # an empty month: nothing to learn yet
    assert analyze_new_partitions(conn) == []  # twice: nothing more to do


def test_sessions_run_without_jit_and_the_web_with_report_memory(target: db.Target) -> None:
    with db.connection(target) as plain:
        row = plain.execute("SELECT current_setting('jit'), current_setting('work_mem')").fetchone()
    assert row is not None
    assert row[0] == "off"

    async def web_settings() -> tuple[str, str, str]:
        pool = db.AsyncPool(target, application_name="etrack-web", interactive=True, open=False)
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT current_setting('jit'), current_setting('work_mem'),"
                    " current_setting('plan_cache_mode')"
                )
                found = await cursor.fetchone()
        finally:
            await pool.close()
        assert found is not None
        return str(found[0]), str(found[1]), str(found[2])

    assert asyncio.run(web_settings()) == ("off", db.INTERACTIVE_WORK_MEM, "force_custom_plan")
