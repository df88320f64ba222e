"""Retention on a real PostgreSQL: months of positions in their partitions,
rows in the default partition, routes; prune drops exactly the months
entirely older than the cutoff, clears raw JSON exactly up to it, and a dry
run or a second run changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql

from etrack import model as records
from etrack.config import Duration, Settings, parse_duration
from etrack.errors import EXIT_USAGE
from etrack.store import db
from etrack.store import positions as ingest
from etrack.store.queries import query
from etrack.store.retention import (
    RAW_CLEARED_MARK,
    cutoff_for,
    prune,
    prune_with_settings,
)

TZ = ZoneInfo("America/Sao_Paulo")
PLATES = ("ABC1234", "XYZ1D23")
MONTHS = [(2024, 9), (2024, 10), (2024, 11), (2024, 12), (2025, 1)]
CUTOFF = datetime(2024, 12, 15, tzinfo=TZ)  # inside December
OLD_MONTHS = {"positions_y2024m09", "positions_y2024m10", "positions_y2024m11"}
# A tracker with a broken clock: outside any month partition etrack creates.
ANCIENT = datetime(1999, 6, 1, 12, 0, tzinfo=UTC)
FAR_FUTURE = datetime(2099, 6, 1, 12, 0, tzinfo=UTC)


def position(placa: str, ts: datetime, n: int) -> records.Position:
    return records.Position(
        placa, ts, -23.55 + n * 1e-4, -46.63, 40.0, True, 1000.0 + n, None, None, None,
        "Av. Paulista", "Truck", "Fleet A", None, None, placa, "valid",
        {"placa": placa, "n": n, "data_transmissao": ts.isoformat()},
    )  # fmt: skip


def load(conn: db.Conn) -> None:
    batch = []
    n = 0
    for year, month in MONTHS:
        for day in (1, 10, 20, 28):
            for placa in PLATES:
                ts = datetime(year, month, day, 12, 0, tzinfo=TZ)
                batch.append(position(placa, ts, n))
                n += 1
    batch += [position(PLATES[0], ANCIENT, n), position(PLATES[0], FAR_FUTURE, n + 1)]
    stats = ingest.store_positions(conn, batch, partitions=ingest.PartitionKeeper())
    assert stats.inserted == len(batch)
    conn.execute(
        "INSERT INTO position_rejects (raw_hash, reason, raw, received_at) VALUES"
        " ('a', 'bad_timestamp', '{\"x\": 1}', '2024-10-01'),"
        " ('b', 'bad_timestamp', '{\"x\": 2}', '2025-01-02')"
    )
    for day in (date(2024, 12, 13), date(2024, 12, 14), date(2024, 12, 15), date(2025, 1, 2)):
        for placa in PLATES:
            conn.execute("INSERT INTO routes (placa, rota_date) VALUES (%s, %s)", (placa, day))
            conn.execute(
                "INSERT INTO route_trips (placa, rota_date, seq, start_ts, end_ts, distance_m,"
                " duration_s) VALUES (%s, %s, 1, now(), now(), 1000, 60)",
                (placa, day),
            )
            conn.execute(
                "INSERT INTO route_stops (placa, rota_date, seq, start_ts, end_ts, duration_s)"
                " VALUES (%s, %s, 1, now(), now(), 600)",
                (placa, day),
            )
            conn.execute(
                "INSERT INTO trips (placa, data_inicio_conducao, rota_date) VALUES (%s, %s, %s)",
                (placa, datetime(day.year, day.month, day.day, 8, tzinfo=TZ), day),
            )


def snapshot(conn: db.Conn) -> dict[str, Any]:
    """Every partition with its rows (and how many hold raw), and the other tables."""
    parts = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'positions'::regclass ORDER BY 1"
        )
    ]
    state: dict[str, Any] = {}
    for part in parts:
        state[part] = conn.execute(
            f"SELECT count(*), count(raw), min(data_transmissao), max(data_transmissao) FROM {part}"
        ).fetchone()
    for table in ("routes", "route_trips", "route_stops", "trips"):
        state[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    state["rejects"] = conn.execute("SELECT count(*), count(raw) FROM position_rejects").fetchone()
    return state


@pytest.fixture
def loaded(conn: db.Conn) -> db.Conn:
    load(conn)
    return conn


# ---------------------------------------------------------------- durations
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", Duration(90, "d")),
        ("12w", Duration(12, "w")),
        ("24m", Duration(24, "m")),
        ("24MO", Duration(24, "m")),
        (" 2y ", Duration(2, "y")),
    ],
)
def test_durations(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "5", "3h", "-1d", "1.5y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|at least one day"):
        parse_duration(text)


def test_cutoff_is_local_midnight_and_clamps_months() -> None:
    now = datetime(2025, 3, 31, 2, 30, tzinfo=UTC)  # 30 March 23:30 in São Paulo
    assert cutoff_for(Duration(1, "m"), TZ, now=now) == datetime(2025, 2, 28, tzinfo=TZ)
    assert cutoff_for(Duration(2, "y"), TZ, now=now) == datetime(2023, 3, 30, tzinfo=TZ)
    assert cutoff_for(Duration(90, "d"), TZ, now=now) == datetime(2024, 12, 30, tzinfo=TZ)
    assert cutoff_for(Duration(1, "w"), TZ, now=now) == datetime(2025, 3, 23, tzinfo=TZ)
    # Same day, same cutoff: a re-run later that day has nothing new to do.
    later = now + timedelta(minutes=25)
    assert cutoff_for(Duration(90, "d"), TZ, now=later) == cutoff_for(
        Duration(90, "d"), TZ, now=now
    )


# -------------------------------------------------------------------- prune
def test_dry_run_changes_nothing(loaded: db.Conn) -> None:
    before = snapshot(loaded)
    report = prune(loaded, CUTOFF, dry_run=True, routes=True)
    assert snapshot(loaded) == before
    would_drop = {a.target for a in report.actions if a.verb == "drop"}
    assert would_drop == OLD_MONTHS
    text = "\n".join(report.lines())
    assert "would drop positions_y2024m10" in text
    assert "keep positions_y2024m12" in text
    assert "would delete rows of positions_default (1 rows)" in text
    assert report.counts()["rows_dropped"] == 3 * 4 * len(PLATES)
    assert not report.changed
    raw = prune(loaded, CUTOFF, raw_only=True, dry_run=True)
    assert snapshot(loaded) == before
    assert raw.counts()["raw_cleared"] == (3 * 4 + 2) * len(PLATES) + 1 + 1


def test_prune_drops_whole_old_months_only(loaded: db.Conn) -> None:
    before = snapshot(loaded)
    report = prune(loaded, CUTOFF)
    after = snapshot(loaded)
    assert report.changed
    assert {a.target for a in report.actions if a.verb == "drop" and a.done} == OLD_MONTHS
    for part in OLD_MONTHS:
        assert part not in after
    # The month holding the cutoff and everything newer: untouched, rows
    # before the cutoff included (only whole months go).
    for part, state in before.items():
        if part.startswith("positions_y") and part not in OLD_MONTHS:
            assert after[part] == state, part
    assert after["positions_y2024m12"][0] == 4 * len(PLATES)
    # Default partition: the ancient row went, the far-future one stayed.
    count, _raw, oldest, newest = after["positions_default"]
    assert (count, oldest, newest) == (1, FAR_FUTURE, FAR_FUTURE)
    # Routes and summaries kept without --routes; old rejects deleted.
    for table in ("routes", "route_trips", "route_stops", "trips"):
        assert after[table] == before[table]
    assert after["rejects"] == (1, 1)
    assert loaded.execute("SELECT count(*) FROM positions").fetchone() == (
        (2 * 4) * len(PLATES) + 1,
    )

    again = prune(loaded, CUTOFF)
    assert snapshot(loaded) == after
    assert not again.changed
    assert again.lines()[-1] == "nothing to prune"


def test_raw_only_clears_exactly_up_to_the_cutoff(loaded: db.Conn) -> None:
    before = snapshot(loaded)
    report = prune(loaded, CUTOFF, raw_only=True)
    after = snapshot(loaded)
    for part, state in before.items():
        if part.startswith("positions"):
            assert after[part][0] == state[0], f"{part}: rows must stay"
    for part in OLD_MONTHS:
        assert after[part][1] == 0, part
    december = loaded.execute(
        "SELECT count(*) FILTER (WHERE raw IS NULL AND data_transmissao < %(c)s),"
        "       count(*) FILTER (WHERE raw IS NOT NULL AND data_transmissao >= %(c)s),"
        "       count(*) FILTER (WHERE raw IS NOT NULL AND data_transmissao < %(c)s)"
        "  FROM positions_y2024m12",
        {"c": CUTOFF},
    ).fetchone()
    assert december == (2 * len(PLATES), 2 * len(PLATES), 0)
    assert after["positions_y2025m01"] == before["positions_y2025m01"]
    assert after["positions_default"][1] == 1  # the far-future row keeps its raw
    assert after["rejects"] == (2, 1)
    assert report.counts()["raw_cleared"] == (3 * 4 + 2) * len(PLATES) + 1 + 1
    marks = {
        r[0]
        for r in loaded.execute(
            "SELECT c.relname FROM pg_class c WHERE obj_description(c.oid, 'pg_class') LIKE %s",
            (RAW_CLEARED_MARK + "%",),
        )
    }
    assert marks == OLD_MONTHS  # December is not whole: checked again next time

    again = prune(loaded, CUTOFF, raw_only=True)
    assert snapshot(loaded) == after
    assert again.counts()["raw_cleared"] == 0
    assert "keep positions_y2024m10: raw JSON already cleared" in again.lines()


def month_bytes(conn: db.Conn, name: str) -> int:
    row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def heap_bytes(conn: db.Conn, name: str) -> int:
    row = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()
    assert row is not None
    return int(row[0])


FILL_SQL = """
INSERT INTO positions (placa, data_transmissao, latitude, longitude, velocidade, ignicao,
                       odometro, logradouro, quality, raw)
SELECT 'ABC' || lpad((g %% %(plates)s)::text, 4, '0'),
       %(start)s::timestamptz + (g / %(plates)s) * %(every)s::interval,
       -23.55 + (g %% 97) * 1e-4, -46.63, 40.0, true, 1000.0 + g, 'Av. Paulista', 'valid',
       jsonb_build_object('n', g, 'logradouro', 'Rua ' || repeat('x', %(pad)s))
  FROM generate_series(0, %(rows)s - 1) AS g
"""


def fill_month(
    conn: db.Conn,
    start: datetime,
    rows: int,
    *,
    plates: int = 50,
    every: timedelta = timedelta(minutes=1),
    pad: int = 400,
) -> None:
    """`rows` positions from `start` on, in time order (as the ingest
    appends them): `plates` vehicles, one position each every `every`."""
    conn.execute("SELECT ensure_positions_partition(%s)", (start,))
    conn.execute(
        FILL_SQL, {"start": start, "rows": rows, "plates": plates, "every": every, "pad": pad}
    )


def test_raw_only_is_batched_and_its_space_is_reused(loaded: db.Conn) -> None:
    """Every transaction clears at most `batch` rows; a plain VACUUM then
    frees the old row versions' space, which the month's next rows reuse
    (a past month must not keep growing)."""
    fill_month(loaded, datetime(2024, 10, 2, tzinfo=UTC), 3000)
    loaded.execute("VACUUM ANALYZE positions_y2024m10")
    before = month_bytes(loaded, "positions_y2024m10")
    lines: list[str] = []
    report = prune(loaded, CUTOFF, raw_only=True, batch=200, progress=lines.append)
    october = next(a for a in report.actions if a.target == "positions_y2024m10")
    assert (october.verb, october.rows, october.done) == ("clear raw", 3000 + 4 * len(PLATES), True)
    # Rows updated by one transaction share its xmin: no batch took more than 200.
    per_transaction = [
        int(r[1])
        for r in loaded.execute(
            "SELECT xmin::text, count(*) FROM positions_y2024m10 GROUP BY 1 ORDER BY 2 DESC"
        )
    ]
    assert max(per_transaction) <= 200
    assert len(per_transaction) >= (3000 + 8) / 200
    assert any(line.startswith("positions_y2024m10: 3,008 rows cleared in ") for line in lines)
    after = month_bytes(loaded, "positions_y2024m10")
    # Vacuumed along the way: at most the new versions of a quarter of the
    # month sit outside the space the old ones gave back.
    assert after < before * 1.3, (before, after)
    # The month's next rows (a backfill of a late day) go into the freed
    # space: the heap does not grow (its indexes do, by their new entries).
    heap = heap_bytes(loaded, "positions_y2024m10")
    fill_month(loaded, datetime(2024, 10, 20, tzinfo=UTC), 3000, pad=0)
    assert heap_bytes(loaded, "positions_y2024m10") == heap


def test_dry_run_count_reads_the_brin_index(loaded: db.Conn) -> None:
    """On the month holding the cutoff, the dry run counts the days before
    it through the BRIN index (a bitmap heap scan), not a scan of the month."""
    # 25 days of 100 plates, one position an hour.
    fill_month(
        loaded, datetime(2024, 12, 1, tzinfo=UTC), 60_000, plates=100, every=timedelta(hours=1)
    )
    loaded.execute("ANALYZE positions_y2024m12")
    count = sql.SQL(query("retention_count_partition")).format(
        partition=sql.Identifier("e_track", "positions_y2024m12")
    )
    plan = "\n".join(
        str(r[0])
        for r in loaded.execute(
            sql.SQL("EXPLAIN ") + count, {"cutoff": datetime(2024, 12, 3, tzinfo=UTC)}
        )
    )
    assert "Bitmap Index Scan on positions_y2024m12_data_transmissao_idx" in plan, plan
    assert "Seq Scan" not in plan, plan
    report = prune(loaded, datetime(2024, 12, 3, tzinfo=UTC), raw_only=True, dry_run=True)
    december = next(a for a in report.actions if a.target == "positions_y2024m12")
    # Two days of 100 plates, and load()'s two of 1 December.
    assert december.rows == 2 * 24 * 100 + len(PLATES)


def test_dry_run_summarizes_the_brin_index_it_counts_through(loaded: db.Conn) -> None:
    """A bulk load leaves BRIN ranges unsummarized (autovacuum's queue of
    requests overflows), and an unsummarized range matches any time range:
    the prune summarizes them before it counts, so only the days before the
    cutoff are read."""
    loaded.execute("ALTER TABLE positions_y2024m12 SET (autovacuum_enabled = off)")
    fill_month(
        loaded, datetime(2024, 12, 1, tzinfo=UTC), 20_000, plates=20, every=timedelta(hours=1)
    )
    loaded.execute("ANALYZE positions_y2024m12")
    cutoff = datetime(2024, 12, 3, tzinfo=UTC)
    report = prune(loaded, cutoff, raw_only=True, dry_run=True)
    december = next(a for a in report.actions if a.target == "positions_y2024m12")
    assert december.rows == 2 * 24 * 20 + len(PLATES)
    assert "estimated" not in (december.note or "")
    # Nothing left to summarize: the dry run did it.
    left = loaded.execute(
        "SELECT brin_summarize_new_values('positions_y2024m12_data_transmissao_idx')"
    ).fetchone()
    assert left == (0,)
    count = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + sql.SQL(
        query("retention_count_partition")
    ).format(partition=sql.Identifier("e_track", "positions_y2024m12"))
    row = loaded.execute(count, {"cutoff": cutoff}).fetchone()
    assert row is not None
    scan = row[0][0]["Plan"]["Plans"][0]
    # Lossy BRIN pages hold some rows after the cutoff, never the whole month.
    assert scan.get("Rows Removed by Index Recheck", 0) < 20_000 // 4, scan


def test_dry_run_estimates_whole_months_from_their_statistics(loaded: db.Conn) -> None:
    """A whole month goes entirely: the dry run reads its size from the
    planner's statistics instead of counting every row (at 10,000 vehicles a
    month is hundreds of millions of rows); a month never analyzed is counted."""
    loaded.execute("ALTER TABLE positions_y2024m10 SET (autovacuum_enabled = off)")
    fill_month(loaded, datetime(2024, 10, 2, tzinfo=UTC), 3000)
    counted = prune(loaded, CUTOFF, raw_only=True, dry_run=True)
    october = next(a for a in counted.actions if a.target == "positions_y2024m10")
    loaded.execute("ANALYZE positions_y2024m10")
    estimated = prune(loaded, CUTOFF, raw_only=True, dry_run=True)
    again = next(a for a in estimated.actions if a.target == "positions_y2024m10")
    assert "estimated from statistics" in (again.note or "")
    assert "estimated" not in (october.note or "")
    # ANALYZE of a small month samples every row: the estimate is the count.
    assert again.rows == october.rows == 3000 + 4 * len(PLATES)


def test_busy_month_is_vacuumed_by_the_next_run(loaded: db.Conn, target: db.Target) -> None:
    holder = db.connect(target)
    try:
        # What VACUUM waits for (another VACUUM, ANALYZE, an index build).
        holder.execute("LOCK TABLE positions_y2024m09 IN SHARE UPDATE EXCLUSIVE MODE")
        report = prune(loaded, CUTOFF, raw_only=True, lock_timeout_s=0.2)
    finally:
        holder.rollback()
        holder.close()
    september = next(a for a in report.actions if a.target == "positions_y2024m09")
    assert "VACUUM postponed" in september.note
    assert september.done  # the raw JSON is gone all the same
    assert loaded.execute("SELECT count(raw) FROM positions_y2024m09").fetchone() == (0,)
    again = prune(loaded, CUTOFF, raw_only=True)
    september = next(a for a in again.actions if a.target == "positions_y2024m09")
    assert (september.verb, september.rows, september.note) == ("clear raw", 0, "")
    third = prune(loaded, CUTOFF, raw_only=True)
    assert "keep positions_y2024m09: raw JSON already cleared" in third.lines()


def test_a_locked_row_stops_its_month_and_the_next_run_finishes(
    loaded: db.Conn, target: db.Target
) -> None:
    """A batch waits at most the lock timeout for a row another session
    holds; the month is reported stopped, the other months go on, and the
    next run clears what was left."""
    holder = db.connect(target)
    try:
        holder.execute(
            "SELECT 1 FROM positions_y2024m10 WHERE data_transmissao = %s AND placa = %s"
            " FOR UPDATE",
            (datetime(2024, 10, 20, 12, 0, tzinfo=TZ), PLATES[0]),
        )
        report = prune(loaded, CUTOFF, raw_only=True, batch=1, lock_timeout_s=0.2)
    finally:
        holder.rollback()
        holder.close()
    october = next(a for a in report.actions if a.target == "positions_y2024m10")
    assert "stopped at rows locked by another session" in october.note
    assert october.rows == 4  # the rows of 1 and 10 October, one batch each
    november = next(a for a in report.actions if a.target == "positions_y2024m11")
    assert (november.rows, november.note) == (4 * len(PLATES), "")
    assert loaded.execute("SELECT count(raw) FROM positions_y2024m10").fetchone() == (4,)
    again = prune(loaded, CUTOFF, raw_only=True)
    october = next(a for a in again.actions if a.target == "positions_y2024m10")
    assert (october.rows, october.note) == (4, "")
    assert loaded.execute("SELECT count(raw) FROM positions_y2024m10").fetchone() == (0,)


def test_inside_a_transaction_nothing_is_vacuumed(target: db.Target, loaded: db.Conn) -> None:
    with db.connection(target) as conn:  # not autocommit: the jobs layer may pass one
        report = prune(conn, CUTOFF, raw_only=True)
        conn.commit()
    october = next(a for a in report.actions if a.target == "positions_y2024m10")
    assert october.done
    assert "not vacuumed" in october.note
    assert loaded.execute("SELECT count(raw) FROM positions_y2024m10").fetchone() == (0,)


def test_routes_option_deletes_days_before_the_cutoff(loaded: db.Conn) -> None:
    report = prune(loaded, CUTOFF, routes=True)
    remaining = {
        table: sorted({r[0] for r in loaded.execute(f"SELECT DISTINCT rota_date FROM {table}")})
        for table in ("routes", "route_trips", "route_stops", "trips")
    }
    for table, days in remaining.items():
        assert days == [date(2024, 12, 15), date(2025, 1, 2)], table
    deleted = {a.target: a.rows for a in report.actions if a.target in remaining}
    assert deleted == {t: 2 * len(PLATES) for t in remaining}


def test_a_second_prune_waits_for_none(loaded: db.Conn, target: db.Target) -> None:
    with db.connection(target, autocommit=True) as other:
        other.execute(
            "SELECT pg_advisory_lock(hashtextextended('etrack.prune|' || current_schema(), 0))"
        )
        before = snapshot(loaded)
        report = prune(loaded, CUTOFF)
        assert report.busy
        assert "another prune is running" in report.lines()[-1]
        assert snapshot(loaded) == before


def test_a_busy_month_is_left_for_the_next_run(loaded: db.Conn, target: db.Target) -> None:
    reader = db.connect(target)
    try:
        # An open transaction reading positions holds a lock DROP TABLE must wait for.
        reader.execute("SELECT count(*) FROM positions")
        report = prune(loaded, CUTOFF, lock_timeout_s=0.2, attempts=1)
    finally:
        reader.rollback()
        reader.close()
    skipped = [a for a in report.actions if a.verb == "skip"]
    # The first month waited out its lock timeout; the others, behind the
    # same lock, were not tried.
    assert [a.target for a in skipped] == sorted(OLD_MONTHS)
    assert "busy (lock timeout)" in skipped[0].note
    assert report.counts()["failed"] == len(OLD_MONTHS)
    assert all(
        loaded.execute("SELECT to_regclass(%s)", (p,)).fetchone() != (None,) for p in OLD_MONTHS
    )
    done = prune(loaded, CUTOFF)
    assert {a.target for a in done.actions if a.verb == "drop" and a.done} == OLD_MONTHS
    assert all(
        loaded.execute("SELECT to_regclass(%s)", (p,)).fetchone() == (None,) for p in OLD_MONTHS
    )


def test_prune_with_settings_runs_both_passes(loaded: db.Conn, settings: Settings) -> None:
    now = datetime(2025, 1, 14, 12, tzinfo=TZ)
    none = prune_with_settings(loaded, settings, now=now)
    assert none == []
    configured = settings.model_copy(
        update={"etrack_retention": Duration(2, "m"), "etrack_retention_raw": Duration(30, "d")}
    )
    reports = prune_with_settings(loaded, configured, now=now)
    assert [r.raw_only for r in reports] == [False, True]
    assert reports[0].cutoff == datetime(2024, 11, 14, tzinfo=TZ)
    assert {a.target for a in reports[0].actions if a.verb == "drop"} == {
        "positions_y2024m09",
        "positions_y2024m10",
    }
    assert reports[1].cutoff == datetime(2024, 12, 15, tzinfo=TZ)


# ---------------------------------------------------------------------- CLI


def test_cli_dry_run_then_prune_then_nothing(
    loaded: db.Conn,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    run_etrack: Callable[..., tuple[int, str, str]],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    before = snapshot(loaded)
    # The test months are far enough back for a one-month cutoff, whatever today is.
    code, out, _ = run_etrack("prune", "--older-than", "1m", "--dry-run")
    assert code == 0, out
    assert snapshot(loaded) == before
    assert "dry run: nothing changes" in out
    for part in sorted(OLD_MONTHS | {"positions_y2024m12", "positions_y2025m01"}):
        assert f"would drop {part}" in out

    code, out, _ = run_etrack("prune", "--older-than", "1m")
    assert code == 0, out
    assert "dropped positions_y2024m09" in out
    assert loaded.execute("SELECT to_regclass('positions_y2025m01')").fetchone() == (None,)
    code, out, _ = run_etrack("prune", "--older-than", "1m")
    assert code == 0
    assert out.strip().endswith("nothing to prune")


def test_cli_defaults_come_from_the_settings(
    loaded: db.Conn,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    run_etrack: Callable[..., tuple[int, str, str]],
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, _ = run_etrack("prune", "--dry-run")
    assert (code, out.strip()) == (
        0,
        "nothing to prune: ETRACK_RETENTION and ETRACK_RETENTION_RAW are unset (or give --older-than)",
    )
    monkeypatch.setenv("ETRACK_RETENTION", "1m")
    monkeypatch.setenv("ETRACK_RETENTION_RAW", "1m")
    code, out, _ = run_etrack("prune", "--dry-run")
    assert code == 0
    assert "[ETRACK_RETENTION]" in out
    assert "[ETRACK_RETENTION_RAW]" in out
    code, _out, err = run_etrack("prune", "--raw-only", "--routes")
    assert code == EXIT_USAGE
    assert "--routes" in err
    code, _out, err = run_etrack("prune", "--older-than", "0d")
    assert code == EXIT_USAGE
    assert "at least one day" in err


def test_prune_does_not_block_on_concurrent_ingest(loaded: db.Conn, target: db.Target) -> None:
    """Ingest into current months while old months are dropped: both finish."""
    errors: list[BaseException] = []

    def ingest_now() -> None:
        try:
            with db.connection(target, autocommit=True) as other:
                now = datetime.now(UTC).replace(microsecond=0)
                batch = [position(PLATES[1], now - timedelta(minutes=m), m) for m in range(50)]
                ingest.store_positions(other, batch)
        except (psycopg.Error, AssertionError) as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=ingest_now)
    worker.start()
    prune(loaded, CUTOFF)
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert errors == []


def test_retention_removes_the_last_position_of_a_vehicle_silent_since_before_the_cutoff(
    loaded: db.Conn,
) -> None:
    loaded.execute(
        "INSERT INTO latest_positions (placa, data_transmissao, latitude, longitude)"
        " VALUES ('OLD1A11', %s, -23.5, -46.6)",
        (CUTOFF - timedelta(days=200),),
    )
    kept = loaded.execute(
        "SELECT placa FROM latest_positions WHERE data_transmissao >= %s ORDER BY 1", (CUTOFF,)
    ).fetchall()
    assert kept  # the fixture's vehicles report after the cutoff

    dry = prune(loaded, CUTOFF, dry_run=True)
    assert [a.rows for a in dry.actions if a.target == "latest_positions"] == [1]
    raw_only = prune(loaded, CUTOFF, raw_only=True)
    assert "latest_positions" not in {a.target for a in raw_only.actions}
    prune(loaded, CUTOFF)
    left = loaded.execute("SELECT placa FROM latest_positions ORDER BY 1").fetchall()
    assert left == kept  # the silent vehicle's last position went with its history
    again = prune(loaded, CUTOFF)
    assert [a.rows for a in again.actions if a.target == "latest_positions"] == [0]
