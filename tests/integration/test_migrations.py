"""Schema migrations: order, idempotency, concurrency, and schema.sql parity."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from etrack.errors import SchemaNotCurrent
from etrack.store import db, migrations
from fixtures_db import SCHEMA, subprocess_env
from schema_catalog import describe_schema

ROOT = Path(__file__).resolve().parents[2]


def run_etrack(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etrack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_upgrade_twice_second_is_a_noop(empty_database_url: str) -> None:
    env = subprocess_env(DATABASE_URL=empty_database_url)
    first = run_etrack("db", "upgrade", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    with psycopg.connect(empty_database_url) as conn:
        before = describe_schema(conn, SCHEMA)
    second = run_etrack("db", "upgrade", env=env)
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    with psycopg.connect(empty_database_url) as conn:
        assert describe_schema(conn, SCHEMA) == before


def test_two_upgrades_at_once_apply_the_schema_once(empty_database_url: str) -> None:
    env = subprocess_env(DATABASE_URL=empty_database_url)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "etrack", "db", "upgrade"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    applied = [out for out, _ in outputs if "applied" in out]
    assert len(applied) == 1, outputs
    with psycopg.connect(empty_database_url) as conn:
        rows = conn.execute(f"SELECT version FROM {SCHEMA}.schema_migrations").fetchall()
    assert [r[0] for r in rows] == [m.version for m in migrations.available()]


def test_schema_sql_equals_the_migrations(empty_database_url: str, database_url: str) -> None:
    schema_sql = (ROOT / "e-track" / "schema.sql").read_text()
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute(schema_sql.encode())
        from_file = describe_schema(conn, SCHEMA)
    with psycopg.connect(database_url) as conn:
        from_migrations = describe_schema(conn, SCHEMA)
    assert from_file == from_migrations
    # And after psql -f schema.sql, `etrack db upgrade` has nothing to do.
    result = migrations.upgrade(db.Target(empty_database_url, SCHEMA, embedded=False))
    assert result.applied == []


def test_commands_needing_the_schema_say_run_upgrade(empty_database_url: str) -> None:
    target = db.Target(empty_database_url, SCHEMA, embedded=False)
    with pytest.raises(SchemaNotCurrent, match="run `etrack db upgrade`"):
        migrations.check_current(target, auto_upgrade=False)
    migrations.check_current(target, auto_upgrade=True)
    with db.connection(target) as conn:
        assert migrations.current_version(conn) == migrations.latest_version()


def test_db_status_reports_a_missing_schema(empty_database_url: str) -> None:
    result = run_etrack("db", "status", env=subprocess_env(DATABASE_URL=empty_database_url))
    assert result.returncode == 0, result.stderr
    assert "not installed" in result.stdout


def test_upgrade_creates_partitions_ahead(conn: db.Conn) -> None:
    now = datetime.now(UTC)
    expected = f"positions_y{now:%Y}m{now:%m}"
    names = {
        r[0]
        for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'positions_y%%' AND relkind = 'r'"
        )
    }
    assert expected in names
    assert len(names) >= 3


def test_a_position_far_outside_the_partitions_still_lands(
    conn: db.Conn,
) -> None:
    conn.execute(
        "INSERT INTO positions (placa, data_transmissao, latitude, longitude)"
        " VALUES ('ABC1234', '1999-03-04 10:00+00', -23.5, -46.6)"
    )
    row = conn.execute(
        "SELECT tableoid::regclass::text FROM positions WHERE placa = 'ABC1234'"
    ).fetchone()
    assert row is not None
    assert row[0].endswith("positions_default")
    # Creating that month later moves the row out of the default partition.
    conn.execute("SELECT ensure_positions_partition('1999-03-15 00:00+00')")
    row = conn.execute(
        "SELECT tableoid::regclass::text FROM positions WHERE placa = 'ABC1234'"
    ).fetchone()
    assert row is not None
    assert row[0].endswith("positions_y1999m03")
    count = conn.execute("SELECT count(*) FROM positions").fetchone()
    assert count == (1,)


def test_a_database_newer_than_etrack_is_refused(target: db.Target) -> None:
    with db.connection(target, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
    with pytest.raises(SchemaNotCurrent, match="newer than this etrack"):
        migrations.check_current(target, auto_upgrade=True)
