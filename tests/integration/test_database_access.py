"""Connecting: unreachable servers, secret redaction, the embedded server."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

import psycopg
import pytest

from etrack.errors import DatabaseUnavailable, is_transient
from etrack.logs import RedactSecrets, redact
from etrack.store import db, embedded
from fixtures_db import subprocess_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_etrack(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etrack", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


@pytest.mark.parametrize("how", ["url", "pg"])
def test_unreachable_server_is_one_line_exit_3_without_password(tmp_path: Path, how: str) -> None:
    port = free_port()
    if how == "url":
        env = subprocess_env(DATABASE_URL=f"postgresql://bob:pw-9f8e7d@127.0.0.1:{port}/fleet")
    else:
        env = subprocess_env(
            PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="bob", PGPASSWORD="pw-9f8e7d"
        )
    result = run_etrack("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"etrack: error: cannot reach PostgreSQL at 127.0.0.1:{port}")
    assert "pw-9f8e7d" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_debug_level_shows_the_traceback(tmp_path: Path) -> None:
    env = subprocess_env(
        DATABASE_URL=f"postgresql://bob:pw-9f8e7d@127.0.0.1:{free_port()}/fleet",
        ETRAC_LOG_LEVEL="DEBUG",
    )
    result = run_etrack("db", "upgrade", env=env, cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "pw-9f8e7d" not in result.stderr


def test_url_of_an_external_server_is_printed_without_password(
    tmp_path: Path, database_url: str
) -> None:
    with_password = database_url.replace(
        "postgresql://postgres", "postgresql://postgres:pw-1a2b3c", 1
    )
    url = redact(with_password, [])
    assert "pw-1a2b3c" not in url
    assert "***" in url or "pw-1a2b3c" not in with_password


def test_redaction_filter_scrubs_logged_secrets(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("etrack.test-redaction")
    handler_filter = RedactSecrets(["key-abc-123"])
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="etrack.test-redaction"):
            logger.info("calling with key %s", "key-abc-123")
            logger.info("dsn postgresql://u:pw-xyz@h/d")
    finally:
        logger.removeFilter(handler_filter)
    text = caplog.text
    assert "key-abc-123" not in text
    assert "pw-xyz" not in text
    assert text.count("***") == 2


def unreachable(port: int) -> db.Target:
    return db.Target(f"postgresql://bob:pw-5e6f@127.0.0.1:{port}/fleet", "e_track", embedded=False)


def assert_unavailable(error: DatabaseUnavailable, target: db.Target) -> None:
    message = str(error)
    assert message.startswith(f"cannot reach PostgreSQL at {target.describe().split(' ')[0]}")
    assert "pw-" not in message
    assert "\n" not in message
    assert is_transient(error)


def terminate(target: db.Target, pid: int) -> None:
    with db.connection(target, autocommit=True) as killer:
        killer.execute("SELECT pg_terminate_backend(%s)", (pid,))


def lose_the_connection(target: db.Target, block: AbstractContextManager[db.Conn]) -> None:
    with block as conn:
        terminate(target, conn.info.backend_pid)
        conn.execute("SELECT 1")


def cancel_a_query(target: db.Target) -> None:
    with db.connection(target) as conn:
        conn.execute("SET statement_timeout = 1")
        conn.execute("SELECT pg_sleep(1)")


def test_a_connection_lost_inside_the_block_is_database_unavailable(target: db.Target) -> None:
    with pytest.raises(DatabaseUnavailable) as error:
        lose_the_connection(target, db.connection(target))
    assert_unavailable(error.value, target)


def test_sql_errors_inside_the_block_are_not_outages(target: db.Target) -> None:
    # QueryCanceled is an OperationalError too, but the server is fine.
    with pytest.raises(psycopg.errors.QueryCanceled):
        cancel_a_query(target)


def test_every_session_gets_the_same_options(target: db.Target) -> None:
    assert db.session_options("fleet") == "-c search_path=fleet,public -c timezone=UTC -c jit=off"
    with db.connection(target) as conn:
        row = conn.execute("SELECT current_setting('search_path'), current_setting('TimeZone')")
        assert row.fetchone() == (f"{target.schema},public", "UTC")


@pytest.mark.slow
def test_pools_turn_outages_into_database_unavailable(target: db.Target) -> None:
    with pytest.raises(DatabaseUnavailable) as error:
        db.make_pool(unreachable(free_port()))
    assert "pw-" not in str(error.value)
    pool = db.make_pool(target, max_size=1)
    try:
        with pytest.raises(DatabaseUnavailable) as error:
            lose_the_connection(target, pool.connection())
        assert_unavailable(error.value, target)
        with pool.connection() as conn:  # the pool replaced the broken connection
            assert conn.execute("SHOW search_path").fetchone() == (f"{target.schema},public",)
    finally:
        pool.close()


def test_async_connections_and_pools_turn_outages_into_database_unavailable(
    target: db.Target,
) -> None:
    down = unreachable(free_port())

    async def go() -> None:
        with pytest.raises(DatabaseUnavailable) as error:
            await db.connect_async(down)
        assert_unavailable(error.value, down)
        pool = db.AsyncPool(down, min_size=1, max_size=1, open=False, timeout=1)
        await pool.open(wait=False)
        try:
            with pytest.raises(DatabaseUnavailable) as error:
                async with pool.connection():
                    pass
            assert_unavailable(error.value, down)
        finally:
            await pool.close()
        live = db.AsyncPool(target, min_size=1, max_size=1, open=False, timeout=10)
        await live.open(wait=True)
        try:
            async with live.connection() as conn:
                cursor = await conn.execute("SHOW search_path")
                assert await cursor.fetchone() == (f"{target.schema},public",)
        finally:
            await live.close()

    asyncio.run(go())


def test_target_repr_hides_the_password() -> None:
    target = db.Target("postgresql://u:pw-0000@h:5/d", "e_track", embedded=False)
    assert "pw-0000" not in repr(target)
    assert "h:5" in repr(target)


@pytest.mark.slow
def test_embedded_start_status_stop(tmp_path: Path) -> None:
    # Outside pytest's basetemp, which concurrent pytest runs prune.
    data_dir = Path(tempfile.mkdtemp(prefix="etrack-embedded-test-")) / "data"
    env = subprocess_env(ETRACK_DATA_DIR=str(data_dir))
    try:
        status = run_etrack("db", "status", env=env, cwd=tmp_path)
        assert status.returncode == 0, status.stderr
        assert "(stopped)" in status.stdout

        # Two commands at once on a fresh data dir share one server.
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "etrack", "db", "upgrade"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        assert sum("applied" in out for out, _ in outputs) == 1, outputs

        state = embedded.status(data_dir)
        assert state.running
        assert state.pid is not None

        status = run_etrack("db", "status", env=env, cwd=tmp_path)
        assert "(running)" in status.stdout
        assert "current" in status.stdout

        url = run_etrack("db", "url", env=env, cwd=tmp_path)
        assert url.returncode == 0
        assert url.stdout.strip().startswith("postgresql://")

        stop = run_etrack("db", "stop", env=env, cwd=tmp_path)
        assert stop.returncode == 0, stop.stderr
        assert "stopped" in stop.stdout
        assert not embedded.status(data_dir).running

        again = run_etrack("db", "stop", env=env, cwd=tmp_path)
        assert "was not running" in again.stdout

        start = run_etrack("db", "start", env=env, cwd=tmp_path)
        assert start.returncode == 0, start.stderr
        assert embedded.status(data_dir).running
        # The data survived the restart.
        status = run_etrack("db", "status", env=env, cwd=tmp_path)
        assert "current" in status.stdout
    finally:
        embedded.destroy(data_dir)
    assert not embedded.status(data_dir).running
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_embedded_commands_refuse_when_an_external_server_is_set(tmp_path: Path) -> None:
    result = run_etrack("db", "start", env=subprocess_env(PGHOST="127.0.0.1"), cwd=tmp_path)
    assert result.returncode == 2
    assert "embedded PostgreSQL is only for when none is set" in result.stderr
