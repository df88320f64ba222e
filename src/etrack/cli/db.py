"""`etrack db upgrade|status|start|stop|url`: the embedded server and the schema."""

from __future__ import annotations

import typer

from etrack.cli.common import database, echo, settings
from etrack.config import Settings
from etrack.errors import UsageError
from etrack.logs import redact, secrets_of
from etrack.store import db, embedded, migrations

__all__ = ["db_app", "register"]

db_app = typer.Typer(
    help="Manage the database: embedded server, schema migrations.", no_args_is_help=True
)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations (safe to run twice, or from two processes at once)."""
    target = database(need_schema=False)
    result = migrations.upgrade(target)
    if result.applied:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in result.applied)
        echo(
            f"applied {len(result.applied)} migration(s) to {target.describe()} schema {target.schema}: {names}"
        )
    else:
        echo(
            f"schema {target.schema} in {target.describe()} is current (version {result.version}); nothing to do"
        )


@db_app.command("status")
def db_status() -> None:
    """Show which database etrack uses, whether it answers, and the schema version."""
    current = settings()
    if current.uses_embedded_database:
        state = embedded.status(current.etrack_data_dir)
        running = "running" if state.running else "stopped"
        echo(
            f"database: embedded PostgreSQL {embedded.POSTGRES_VERSION} ({running}), data in {state.pgdata}"
        )
        if not state.running:
            echo(
                "schema: unknown while the server is stopped (any command starts it; or etrack db start)"
            )
            return
    target = db.resolve_target(current, start_embedded=False)
    with db.connection(target, autocommit=True) as conn:
        server = db.server_version(conn)
        version = migrations.current_version(conn)
    if not current.uses_embedded_database:
        echo(f"database: {target.describe()} (PostgreSQL {server})")
    latest = migrations.latest_version()
    if version is None:
        echo(f"schema {target.schema}: not installed (run etrack db upgrade)")
    elif version < latest:
        echo(
            f"schema {target.schema}: version {version}, {latest - version} migration(s) pending (run etrack db upgrade)"
        )
    else:
        echo(f"schema {target.schema}: version {version}, current")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (it keeps running until `etrack db stop`)."""
    current = settings()
    _require_embedded(current)
    target = db.resolve_target(current)
    state = embedded.status(current.etrack_data_dir)
    echo(
        f"embedded PostgreSQL running (pid {state.pid}), data in {state.pgdata}, url {target.conninfo}"
    )


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    current = settings()
    _require_embedded(current)
    if embedded.stop(current.etrack_data_dir):
        echo(f"embedded PostgreSQL stopped ({embedded.pgdata_path(current.etrack_data_dir)})")
    else:
        echo("embedded PostgreSQL was not running")


@db_app.command("url")
def db_url() -> None:
    """Print the connection URL (for psql and other tools; starts the embedded server)."""
    current = settings()
    target = db.resolve_target(current)
    if target.embedded:
        echo(target.conninfo)
    else:
        # An external URL may carry a password: print it without.
        echo(redact(target.conninfo, _secrets_but_the_url(current)))


def _secrets_but_the_url(current: Settings) -> list[str]:
    # The URL itself is a secret of the settings: redacting it whole would
    # print nothing useful; only the password inside it must go.
    url = current.database_url.get_secret_value() if current.database_url else None
    return [s for s in secrets_of(current) if s != url]


def _require_embedded(current: Settings) -> None:
    if not current.uses_embedded_database:
        raise UsageError(
            "DATABASE_URL or PG* variables are set, so etrack uses that server; "
            "the embedded PostgreSQL is only for when none is set"
        )


def register(app: typer.Typer) -> None:
    """Add the `db` group to the `etrack` app (once: calling again is harmless)."""
    if "db" not in {info.name for info in app.registered_groups}:
        app.add_typer(db_app, name="db")
