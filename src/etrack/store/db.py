"""Where the database is, and connections to it.

Target, in order: DATABASE_URL, else the PG* variables, else the embedded
PostgreSQL in the data directory (started on demand). Every connection gets
`search_path` set to the etrack schema, so the SQL in queries.sql and the
migrations uses unqualified names.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from etrack.config import Settings
from etrack.store import embedded

logger = logging.getLogger("etrack.store.db")

EMBEDDED_DATABASE = "etrack"

Conn: TypeAlias = psycopg.Connection[tuple[Any, ...]]


class DatabaseUnavailable(Exception):
    """PostgreSQL did not answer; the message names host/port, never a password."""


class SchemaNotCurrent(Exception):
    """The database schema is older than this etrack: run `etrack db upgrade`."""


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved connection target. `conninfo` may hold a password: never log it."""

    conninfo: str
    schema: str
    embedded: bool

    def describe(self) -> str:
        return describe_conninfo(self.conninfo)

    def __repr__(self) -> str:
        return f"Target({self.describe()!r}, schema={self.schema!r}, embedded={self.embedded})"


def describe_conninfo(conninfo: str) -> str:
    """host:port/dbname (user) without any password, for messages."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "an unparseable connection string"
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    place = f"socket {host}" if host.startswith("/") else f"{host}:{port}"
    extras = [f"database {params['dbname']}" if params.get("dbname") else ""]
    extras.append(f"user {params['user']}" if params.get("user") else "")
    described = ", ".join(e for e in extras if e)
    return f"{place} ({described})" if described else place


def redact(text: str, secrets: list[str]) -> str:
    """Remove secret values and URL passwords from a message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@", r"\1***@", text)


def resolve_target(settings: Settings, *, start_embedded: bool = True) -> Target:
    if settings.database_url is not None:
        conninfo = settings.database_url.get_secret_value()
        return Target(conninfo=conninfo, schema=settings.etrac_schema, embedded=False)
    if not settings.uses_embedded_database:
        conninfo = make_conninfo(
            "",
            host=settings.pghost,
            port=settings.pgport,
            dbname=settings.pgdatabase,
            user=settings.pguser,
            password=settings.pgpassword.get_secret_value() if settings.pgpassword else None,
        )
        return Target(conninfo=conninfo, schema=settings.etrac_schema, embedded=False)
    if not start_embedded:
        current = embedded.status(settings.etrack_data_dir)
        if current.url is None:
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL in {current.pgdata} is not running (etrack db start)"
            )
        return Target(_embedded_db_url(current.url), settings.etrac_schema, embedded=True)
    try:
        server_url = embedded.start(settings.etrack_data_dir)
    except embedded.EmbeddedError as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    _ensure_embedded_database(server_url)
    return Target(_embedded_db_url(server_url), settings.etrac_schema, embedded=True)


def _embedded_db_url(server_url: str) -> str:
    parts = urlsplit(server_url)
    return parts._replace(path=f"/{EMBEDDED_DATABASE}").geturl()


def _ensure_embedded_database(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if exists:
            return
        # Two commands may race to create it; the loser's error is harmless.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE)))


def _configure(schema: str) -> str:
    return f"-c search_path={schema},public -c timezone=UTC"


def connect(target: Target, *, autocommit: bool = False) -> Conn:
    """One connection with the etrack search_path, or DatabaseUnavailable."""
    try:
        return psycopg.connect(
            target.conninfo,
            autocommit=autocommit,
            options=_configure(target.schema),
            connect_timeout=10,
            application_name="etrack",
        )
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines()
        # psycopg says 'connection failed: connection to server at ... failed: REASON'.
        reason = lines[0].rsplit(": ", 1)[-1].strip() if lines else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot reach PostgreSQL at {target.describe()}: {redact(reason, [target.conninfo])}"
        ) from None


def make_pool(target: Target, *, min_size: int = 1, max_size: int = 4) -> ConnectionPool:
    conninfo = make_conninfo(
        target.conninfo, options=_configure(target.schema), application_name="etrack"
    )
    # A short checkout timeout: during an outage callers fail fast and retry
    # on their own schedule instead of hanging.
    pool = ConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=15,
        kwargs={"connect_timeout": 10},
        check=ConnectionPool.check_connection,
    )
    try:
        pool.open(wait=True, timeout=15)
    except PoolTimeout:
        pool.close()
        # Report the real cause with one direct attempt.
        connect(target).close()
        raise DatabaseUnavailable(f"cannot reach PostgreSQL at {target.describe()}") from None
    return pool


@contextlib.contextmanager
def connection(target: Target, *, autocommit: bool = False) -> Iterator[Conn]:
    conn = connect(target, autocommit=autocommit)
    try:
        with conn:
            yield conn
    finally:
        conn.close()
