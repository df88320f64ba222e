"""Versioned schema migrations: plain SQL files applied in order.

Files are `sql/migrations/NNNN_name.sql`. `upgrade` takes a session advisory
lock on a dedicated connection (never through a pooler), so two processes
upgrading at once apply each migration exactly once; each migration runs in
its own transaction together with its bookkeeping row.
"""

from __future__ import annotations

import logging
import re
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources

from psycopg import sql

from etrack.errors import SchemaNotCurrent
from etrack.store import db
from etrack.store.queries import query

logger = logging.getLogger("etrack.store.migrations")

_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True, slots=True)
class UpgradeResult:
    applied: list[Migration]
    version: int


def available() -> list[Migration]:
    folder = resources.files("etrack").joinpath("store/sql/migrations")
    found = []
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number: {versions}")
    return found


def latest_version() -> int:
    migrations = available()
    return migrations[-1].version if migrations else 0


def lock_key(schema: str) -> int:
    # A stable 63-bit key per schema, so two etrack schemas in one database
    # do not block each other.
    return zlib.crc32(f"etrack-migrations:{schema}".encode()) & 0x7FFFFFFF


def current_version(conn: db.Conn) -> int | None:
    """Applied version, or None when etrack was never installed here."""
    row = conn.execute(query("migrations_table_exists")).fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute(query("current_schema_version")).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def upgrade(target: db.Target) -> UpgradeResult:
    applied: list[Migration] = []
    with db.connection(target, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (lock_key(target.schema),))
        try:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(target.schema))
            )
            conn.execute(query("create_migrations_table"))
            done = {int(str(row[0])) for row in conn.execute(query("applied_migrations"))}
            for migration in available():
                if migration.version in done:
                    continue
                logger.info("applying migration %04d_%s", migration.version, migration.name)
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        query("record_migration"),
                        {"version": migration.version, "name": migration.name},
                    )
                applied.append(migration)
            ensure_partitions_ahead(conn)
            install_job_queue(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(target.schema),))
        version = current_version(conn) or 0
    return UpgradeResult(applied=applied, version=version)


def job_queue_installed(conn: db.Conn) -> bool:
    """Whether Procrastinate's tables exist in the etrack schema itself (one
    installed for another application in `public` must not be shared)."""
    row = conn.execute(query("job_queue_installed")).fetchone()
    return bool(row and row[0])


def install_job_queue(conn: db.Conn) -> bool:
    """Install Procrastinate's schema (the job queue) when missing; True if it did.

    It goes into the first schema of the search_path, the etrack schema. Its
    own versioning is Procrastinate's business: etrack pins a major version.
    """
    if job_queue_installed(conn):
        return False
    from procrastinate.schema import SchemaManager

    logger.info("installing the job queue (procrastinate) schema")
    with conn.transaction():
        conn.execute(SchemaManager.get_schema().encode())
    return True


def ensure_partitions_ahead(conn: db.Conn, *, months_ahead: int = 2) -> None:
    """Create this month's and the next months' position partitions."""
    now = datetime.now(UTC)
    for month in range(months_ahead + 1):
        conn.execute(query("ensure_positions_partition"), {"ts": now + timedelta(days=31 * month)})


def check_current(target: db.Target, *, auto_upgrade: bool) -> None:
    """Raise SchemaNotCurrent unless the schema is current (or upgrade it)."""
    with db.connection(target, autocommit=True) as conn:
        version = current_version(conn)
    if version == latest_version():
        return
    if version is not None and version > latest_version():
        raise SchemaNotCurrent(
            f"the database schema is at version {version}, newer than this etrack "
            f"({latest_version()}): upgrade etrack"
        )
    if auto_upgrade:
        upgrade(target)
        return
    found = "not installed" if version is None else f"at version {version}"
    raise SchemaNotCurrent(
        f"the etrack schema {target.schema!r} in {target.describe()} is {found}, "
        f"this etrack needs version {latest_version()}: run `etrack db upgrade`"
    )
