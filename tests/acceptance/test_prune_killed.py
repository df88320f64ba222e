"""`etrack prune --raw-only` killed with SIGKILL in the middle of a month,
then run again: the batches committed before the kill stay, the one in
flight is rolled back, and the re-run clears exactly what was left. In the
end every row older than the cutoff has lost its raw JSON, every newer row
kept it, and nothing else changed.

A second session holds a row lock on one position of the second old month,
so the prune is certain to be mid-run (its batches of the first month and of
that month's earlier slices committed, the next batch waiting) when it is
killed: no race with a prune that finishes first."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from acceptance.test_backfill_support import one, rows, run_etrack, start_etrack, wait_until
from etrack.config import Duration
from etrack.store.retention import cutoff_for
from fixtures_db import subprocess_env
from integration.test_prune import fill_month

pytestmark = pytest.mark.slow

TZ = UTC
OLD_MONTHS = (datetime(2024, 9, 1, tzinfo=UTC), datetime(2024, 10, 1, tzinfo=UTC))
ROWS_PER_MONTH = 4_000
BATCH = 100
# The row the blocker locks: the middle of October's.
LOCKED_AT = datetime(2024, 10, 1, tzinfo=UTC) + (ROWS_PER_MONTH // 2 // 20) * timedelta(minutes=1)

# Every column, raw as a digest: what must not change but raw (before the cutoff).
STATE = (
    "SELECT placa, data_transmissao, data_gravacao, latitude, longitude, velocidade, ignicao,"
    " odometro, odometro_can, horimetro, bateria, logradouro, quality, ingested_at, updated_at,"
    " md5(raw::text) FROM positions ORDER BY placa, data_transmissao"
)


def prune_args(cutoff_days: int) -> list[str]:
    return ["prune", "--raw-only", "--older-than", f"{cutoff_days}d", "--batch", str(BATCH)]


def load(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET search_path TO e_track, public")
        for start in OLD_MONTHS:
            fill_month(conn, start, ROWS_PER_MONTH, plates=20)
        # Around the cutoff (30 days ago) and after it: 10 days of 20 plates, hourly.
        recent = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=35)
        conn.execute("SELECT ensure_positions_partition(%s)", (recent + timedelta(days=10),))
        fill_month(conn, recent, 10 * 24 * 20, plates=20, every=timedelta(hours=1))
        conn.execute("ANALYZE positions")


def test_a_killed_raw_prune_rerun_clears_exactly_the_old_rows(
    database_url: str, tmp_path: Path
) -> None:
    load(database_url)
    env = subprocess_env(DATABASE_URL=database_url, ETRAC_TIMEZONE="UTC")
    cutoff = cutoff_for(Duration(30, "d"), TZ)
    before = {r[:2]: r for r in rows(database_url, STATE)}
    old = sum(1 for key in before if key[1] < cutoff)
    assert 2 * ROWS_PER_MONTH < old < len(before)  # rows on both sides of the cutoff

    blocker = psycopg.connect(database_url)
    blocker.execute("SET search_path TO e_track, public")
    locked = blocker.execute(
        "SELECT placa FROM positions WHERE data_transmissao = %s ORDER BY placa LIMIT 1 FOR UPDATE",
        (LOCKED_AT,),
    ).fetchall()
    assert locked, "no row to lock"
    proc = start_etrack(*prune_args(30), env=env, cwd=tmp_path)
    try:
        waiting: Any = wait_until(
            lambda: one(
                database_url,
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE 'UPDATE%%raw = NULL%%'",
            ),
            deadline_s=60,
            what="the prune's batch waiting on the locked row",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:  # pragma: no cover - only when the wait above failed
            proc.kill()
            proc.wait(timeout=30)
        blocker.rollback()
        blocker.close()
    assert proc.returncode == -signal.SIGKILL
    # The orphaned server session rolls its batch back and ends (it lost its
    # client); until then it holds the prune lock.
    wait_until(
        lambda: one(
            database_url, "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = %s", (waiting,)
        ),
        deadline_s=60,
        what="the killed prune's session to end",
    )

    killed = {r[:2]: r for r in rows(database_url, STATE)}
    cleared = [k for k in killed if killed[k][-1] is None]
    left = [k for k in killed if k[1] < cutoff and killed[k][-1] is not None]
    # Mid-run: September's batches and October's first ones committed, the rest not.
    assert cleared, "no batch committed before the kill"
    assert all(k[1] <= LOCKED_AT for k in cleared)
    assert left, "the prune had finished before the kill"
    assert all(killed[k] == before[k] for k in killed if k not in cleared), (
        "a row changed outside the committed batches"
    )

    again = run_etrack(*prune_args(30), env=env, cwd=tmp_path, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"total: raw JSON of {len(left):,} rows cleared" in again.stdout, again.stdout
    assert "rows cleared in" in again.stdout  # the progress lines

    after = {r[:2]: r for r in rows(database_url, STATE)}
    assert after.keys() == before.keys()
    for key, row in after.items():
        if key[1] < cutoff:
            assert row[-1] is None, key
            assert row[:-1] == before[key][:-1], key
        else:
            assert row == before[key], key
    third = run_etrack(*prune_args(30), env=env, cwd=tmp_path, timeout=120)
    assert third.returncode == 0, third.stdout + third.stderr
    assert third.stdout.strip().endswith("nothing to prune"), third.stdout
    assert {r[:2]: r for r in rows(database_url, STATE)} == after
