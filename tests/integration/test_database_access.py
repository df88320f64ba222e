"""Connecting: unreachable servers, secret redaction, the embedded server."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from etrack.logs import RedactSecrets
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
    url = db.redact(with_password, [])
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


def test_target_repr_hides_the_password() -> None:
    target = db.Target("postgresql://u:pw-0000@h:5/d", "e_track", embedded=False)
    assert "pw-0000" not in repr(target)
    assert "h:5" in repr(target)


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
