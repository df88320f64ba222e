"""The `etrack` command line. It only wires settings to the steps; the work
lives in the modules it calls."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from etrack import __version__
from etrack.config import Settings, SettingsError, load_settings
from etrack.store import db, embedded, migrations

# Exit codes a script can rely on (documented in docs/cli.md).
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_SCHEMA = 4

app = typer.Typer(
    name="etrack",
    help="eTrac fleet GPS data into PostgreSQL: collector, backfill, scheduler, routes and a map UI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="Manage the database: embedded server, schema migrations.", no_args_is_help=True
)
app.add_typer(db_app, name="db")

logger = logging.getLogger("etrack.cli")

T = TypeVar("T")


class UsageProblem(Exception):
    """Bad input from the user: one line, exit code 2."""


_settings: list[Settings] = []


def settings() -> Settings:
    """The settings of this invocation (loaded once, in the callback)."""
    if not _settings:
        _settings.append(load_settings())
    return _settings[-1]


def database(*, need_schema: bool = True) -> db.Target:
    """Resolve the database and make sure the schema is current.

    The embedded database is the user's own: we upgrade it automatically. An
    external server is shared with other etrack processes of maybe another
    version, so there we ask for an explicit `etrack db upgrade`.
    """
    current = settings()
    target = db.resolve_target(current)
    if need_schema:
        migrations.check_current(target, auto_upgrade=target.embedded)
    return target


def echo(message: str) -> None:
    typer.echo(message)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    if version:
        echo(f"etrack {__version__}")
        raise typer.Exit()
    from etrack.logs import setup_logging

    _settings.clear()
    setup_logging(settings())


@app.command("settings")
def show_settings(
    env_example: Annotated[
        bool, typer.Option("--env-example", help="Print a .env.example documenting every variable.")
    ] = False,
) -> None:
    """Show the effective settings (secrets masked) or a documented .env.example."""
    from etrack.config import documented_settings, render_env_example

    if env_example:
        typer.echo(render_env_example(), nl=False)
        return
    current = settings()
    for variable, _default, _description, secret in documented_settings():
        value = getattr(current, variable.lower())
        if value is None:
            shown = "(unset)"
        elif secret:
            shown = "***"
        else:
            shown = str(value)
        echo(f"{variable}={shown}")


# ---------------------------------------------------------------- db commands
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
        server = conn.execute("SHOW server_version").fetchone()
        version = migrations.current_version(conn)
    if not current.uses_embedded_database:
        echo(f"database: {target.describe()} (PostgreSQL {server[0] if server else '?'})")
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
        echo(db.redact(target.conninfo, db_secrets(current)))


def db_secrets(current: Settings) -> list[str]:
    from etrack.logs import secrets_of

    return [
        s
        for s in secrets_of(current)
        if s != (current.database_url.get_secret_value() if current.database_url else None)
    ]


def _require_embedded(current: Settings) -> None:
    if not current.uses_embedded_database:
        raise UsageProblem(
            "DATABASE_URL or PG* variables are set, so etrack uses that server; "
            "the embedded PostgreSQL is only for when none is set"
        )


# ------------------------------------------------------------ fetch commands
PlateArg = Annotated[str, typer.Argument(help="Plate, e.g. ABC1234, ABC-1234 or Mercosul ABC1D23.")]
DateOpt = Annotated[str | None, typer.Option("--date", help="Local day: YYYY-MM-DD or DD/MM/YYYY.")]


def _plate(text: str) -> str:
    from etrack.dates import parse_plate

    try:
        return parse_plate(text)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


def _user_input(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


AccountOpt = Annotated[
    str | None,
    typer.Option("--account", help="Only this account (ETRACK_ACCOUNTS_FILE); default: all."),
]


def chosen_accounts(account: str | None, plate: str | None = None) -> list[Any]:
    """The accounts a command works on: the one named, the one that lists
    `plate`, or all."""
    from etrack.store.accounts import load_accounts, owners, select_accounts

    accounts = load_accounts(settings())
    if account is not None or plate is None or len(accounts) == 1:
        return select_accounts(accounts, account)
    with db.connection(database()) as conn:
        return [owners(conn, accounts, [plate])[plate]]


def run_collector(
    step: Callable[[Any], Awaitable[object]],
    *,
    account: str | None = None,
    plate: str | None = None,
) -> None:
    """Run one fetch step for each account (at once, each under its own
    budget) and print its summary line; one account's failure does not stop
    the others, and is raised (exit code) once they are done."""
    from etrack.collect import open_collector
    from etrack.provider.client import AuthenticationError, MissingCredentials
    from etrack.store.accounts import mark_failing, mark_ok

    accounts = chosen_accounts(account, plate)
    target = database()
    current = settings()

    async def one(chosen: Any) -> str:
        async with open_collector(chosen.settings, target, account=chosen.name) as collector:
            try:
                await step(collector)
            except (AuthenticationError, MissingCredentials) as exc:
                with db.connection(target) as conn:
                    mark_failing(conn, chosen, str(exc), current.etrack_account_retry_s)
                raise
            with db.connection(target) as conn:
                mark_ok(conn, chosen)
            return collector.summary.line()

    async def go() -> list[str | BaseException]:
        return await asyncio.gather(*(one(a) for a in accounts), return_exceptions=True)

    results = asyncio.run(go())
    errors = [r for r in results if isinstance(r, BaseException)]
    for chosen, result in zip(accounts, results, strict=True):
        if len(accounts) == 1:
            if isinstance(result, str):
                echo(result)
        elif isinstance(result, str):
            echo(f"{chosen.name}: {result}")
        else:
            typer.echo(f"{chosen.name}: failed: {result}", err=True)
    if errors:
        raise errors[0]


@app.command("fetch-latest")
def fetch_latest(
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep fetching every --interval seconds.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between fetches with --loop.")
    ] = 120.0,
    account: AccountOpt = None,
) -> None:
    """Latest position of every vehicle into positions; new plates into terminals."""
    if not loop:
        run_collector(lambda c: c.fetch_latest(), account=account)
        return
    from etrack.collect import run_forever

    if account is not None or len(chosen_accounts(None)) > 1:
        raise UsageProblem(
            "--loop collects one account; with several, run `etrack worker` (it fetches every "
            "account on ETRACK_FETCH_CRON)"
        )
    run_forever(settings(), interval=interval, database=database)


@app.command("fetch-plate")
def fetch_plate(plate: PlateArg, account: AccountOpt = None) -> None:
    """One vehicle's latest position (asked of the account that lists it)."""
    placa = _plate(plate)
    run_collector(lambda c: c.fetch_plate(placa), account=account, plate=placa)


@app.command("fetch-history")
def fetch_history(
    plate: PlateArg,
    date: DateOpt = None,
    date_start: Annotated[
        str | None,
        typer.Option("--date-start", help="Start: a day, or a local time 'YYYY-MM-DD HH:MM[:SS]'."),
    ] = None,
    date_end: Annotated[
        str | None,
        typer.Option("--date-end", help="End: a day (included), or a local time (excluded)."),
    ] = None,
    account: AccountOpt = None,
) -> None:
    """History of one plate for a day (--date) or any range (split into 24 h calls)."""
    from etrack.dates import parse_day, parse_moment

    placa = _plate(plate)
    # Times typed are local to the account that lists the plate.
    tz = chosen_accounts(account, placa)[0].settings.tz
    if date is not None and (date_start or date_end):
        raise UsageProblem("give either --date or --date-start/--date-end, not both")
    if date is not None:
        day = _user_input(lambda: parse_day(date))
        run_collector(lambda c: c.fetch_history_day(placa, day), account=account, plate=placa)
        return
    if not (date_start and date_end):
        raise UsageProblem("fetch-history needs --date D, or both --date-start and --date-end")
    start = _user_input(lambda: parse_moment(date_start, tz, option="date-start"))
    end = _user_input(lambda: parse_moment(date_end, tz, option="date-end", end=True))
    if end <= start:
        raise UsageProblem(f"--date-end {date_end!r} is not after --date-start {date_start!r}")
    run_collector(lambda c: c.fetch_history_range(placa, start, end), account=account, plate=placa)


@app.command("fetch-trips")
def fetch_trips(
    plate: PlateArg,
    date: Annotated[str, typer.Option("--date", help="Local day: YYYY-MM-DD or DD/MM/YYYY.")],
    account: AccountOpt = None,
) -> None:
    """The provider's trip summaries (resumoviagens) of one plate and day into trips."""
    from etrack.dates import parse_day

    placa = _plate(plate)
    day = _user_input(lambda: parse_day(date))
    run_collector(lambda c: c.fetch_trips(placa, day), account=account, plate=placa)


@app.command("web")
def web(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = 5001,
    hash_password: Annotated[
        bool,
        typer.Option(
            "--hash-password",
            help="Read a password from stdin, print its hash for ETRACK_WEB_PASSWORD, and exit.",
        ),
    ] = False,
) -> None:
    """Serve the web UI and JSON API (with the scheduler unless DISABLE_UI_SCHEDULER=1)."""
    if hash_password:
        from etrack.web.security import hash_password as make_hash

        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise UsageProblem("--hash-password: give the password on stdin")
        echo(make_hash(password))
        return
    from etrack.web.app import serve

    current = settings()
    try:
        serve(current, host, port)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


@app.command("demo")
def demo_command(
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port of the web UI.")
    ] = 5001,
    host: Annotated[str, typer.Option("--host", help="Address of the web UI.")] = "127.0.0.1",
    vehicles: Annotated[
        int, typer.Option("--vehicles", min=1, max=5000, help="Simulated fleet size.")
    ] = 25,
    days: Annotated[
        int, typer.Option("--days", min=1, max=60, help="Days to backfill before today.")
    ] = 7,
) -> None:
    """Everything on this machine, no account, no database: an embedded PostgreSQL of its
    own, the eTrac simulator, a backfill of the last days, the worker and the web UI.
    Prints the URL when ready; Ctrl-C stops everything; running it again reuses the data."""
    from etrack.cli import demo as demo_module
    from etrack.cli.jobs import backfill_here

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise UsageProblem(
            "the demo serves simulated data without a login: keep --host on loopback"
        )
    current = settings()
    plan = demo_module.DemoPlan(
        vehicles=vehicles,
        days=days,
        host=host,
        port=port,
        data_dir=current.etrack_data_dir / "demo",
    )
    demo_module.run(current, plan, say=echo, backfill=backfill_here)


def _register_simulator() -> None:
    from etrack.simulator import server as simulator

    app.command(
        "simulator", help="Run the built-in eTrac API simulator (for demos, tests, benchmarks)."
    )(simulator.command)


_register_simulator()


def _register_jobs() -> None:
    from etrack.cli.jobs import register

    register(app)


_register_jobs()


def _register_ops() -> None:
    from etrack.cli.ops import register

    register(app)


_register_ops()


def _register_accounts() -> None:
    from etrack.cli.accounts import register

    register(app)


_register_accounts()


# ------------------------------------------------------------------- routes
routes_app = typer.Typer(
    help="Routes, trips and stops per plate and local day.", no_args_is_help=True
)
app.add_typer(routes_app, name="routes")

PlatesOpt = Annotated[
    str | None, typer.Option("--plates", help="Comma-separated plates (default: every plate).")
]
PlatesFileOpt = Annotated[
    Path | None, typer.Option("--plates-file", help="File with one plate per line (# comments).")
]


def _days(
    date: str | None, date_start: str | None, date_end: str | None, *, default: Any
) -> list[Any]:
    from etrack.dates import day_range, parse_day

    if date is not None and (date_start or date_end):
        raise UsageProblem("give either --date or --date-start/--date-end, not both")
    if date is not None:
        return [_user_input(lambda: parse_day(date))]
    if date_start or date_end:
        if not (date_start and date_end):
            raise UsageProblem("--date-start and --date-end go together")
        start = _user_input(lambda: parse_day(date_start, option="date-start"))
        end = _user_input(lambda: parse_day(date_end, option="date-end"))
        return _user_input(lambda: day_range(start, end))
    return [default]


@routes_app.command("compute")
def routes_compute(
    date: DateOpt = None,
    date_start: Annotated[
        str | None, typer.Option("--date-start", help="First day of a range.")
    ] = None,
    date_end: Annotated[
        str | None, typer.Option("--date-end", help="Last day of a range (included).")
    ] = None,
    plates: PlatesOpt = None,
    plates_file: PlatesFileOpt = None,
    refresh_latest: Annotated[
        bool,
        typer.Option(
            "--refresh-latest/--no-refresh-latest",
            help="Fetch the fleet's latest positions first (as the seed's "
            "--compute-routes-current-day-all did); skipped with a warning when the API cannot be used.",
        ),
    ] = False,
    with_history: Annotated[
        bool,
        typer.Option("--with-history", help="Fetch each plate's history for the days first."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Recompute days whose positions did not change.")
    ] = False,
    account: AccountOpt = None,
) -> None:
    """Compute and store routes, trips and stops (default: today, every plate with positions)."""
    from datetime import datetime as _datetime

    from etrack.dates import parse_plates
    from etrack.trips.compute import compute_routes
    from etrack.trips.detect import RouteParams

    current = settings()
    days = _days(date, date_start, date_end, default=_datetime.now(current.tz).date())
    chosen = _user_input(lambda: parse_plates(plates, plates_file))
    accounts = chosen_accounts(account)
    target = database()
    if refresh_latest or with_history:
        _fetch_before_routes(
            accounts, target, chosen, days, latest=refresh_latest, history=with_history
        )
    if chosen is None and account is not None:
        from etrack.store.accounts import load_accounts, plates_of

        with db.connection(target) as conn:
            chosen = plates_of(conn, load_accounts(current), accounts)
    summary = compute_routes(
        target, RouteParams.from_settings(current), plates=chosen, days=days, force=force
    )
    echo(summary.line())


def _fetch_before_routes(
    accounts: list[Any],
    target: db.Target,
    plates: list[str] | None,
    days: list[Any],
    *,
    latest: bool,
    history: bool,
) -> None:
    from etrack.collect import TRANSIENT, open_collector
    from etrack.provider.client import ApiUnavailable, MissingCredentials
    from etrack.store.accounts import owners, plates_of

    def account_plates(account: Any) -> list[str]:
        with db.connection(target) as conn:
            if plates is None:
                return plates_of(conn, accounts, [account])
            found = owners(conn, accounts, plates)
        return [p for p in plates if found[p].name == account.name]

    async def one(account: Any) -> str:
        async with open_collector(account.settings, target, account=account.name) as collector:
            if latest:
                await collector.fetch_latest()
            if history:
                for plate in await asyncio.to_thread(account_plates, account):
                    for day in days:
                        await collector.fetch_history_day(plate, day)
            return collector.summary.line()

    async def go() -> str:
        lines = await asyncio.gather(*(one(a) for a in accounts))
        if len(accounts) == 1:
            return lines[0]
        return " | ".join(f"{a.name}: {line}" for a, line in zip(accounts, lines, strict=True))

    try:
        echo(f"fetched: {asyncio.run(go())}")
    except MissingCredentials:
        logger.warning(
            "ETRAC_USER/ETRAC_KEY not set: computing routes from the positions already stored"
        )
    except (ApiUnavailable, *TRANSIENT) as exc:
        logger.warning("could not refresh from the API (%s); computing from stored positions", exc)


# ------------------------------------------------------------------- entry
def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"etrack: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None, *, prog_name: str | None = None) -> None:
    debug = os.environ.get("ETRAC_LOG_LEVEL", "").upper() == "DEBUG"
    try:
        # Standalone mode: typer reports usage errors itself (exit 2) and
        # exits; our own exceptions come through to be turned into one line.
        app(args=argv, prog_name=prog_name)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except (SettingsError, UsageProblem) as exc:
        fail(str(exc), EXIT_USAGE)
    except db.DatabaseUnavailable as exc:
        if debug:
            raise
        fail(str(exc), EXIT_UNREACHABLE)
    except db.SchemaNotCurrent as exc:
        fail(str(exc), EXIT_SCHEMA)
    except Exception as exc:
        from etrack.provider import client as api

        if debug:
            raise
        if isinstance(exc, api.MissingCredentials | api.AuthenticationError):
            fail(str(exc), EXIT_USAGE)
        if isinstance(exc, api.ApiUnavailable):
            fail(str(exc), EXIT_UNREACHABLE)
        if isinstance(exc, api.EtracError):
            fail(str(exc), EXIT_FAILURE)
        raise
