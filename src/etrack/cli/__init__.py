"""The `etrack` command line. It only wires settings to the steps; the work
lives in the modules it calls.

This module is the root app and `main()`: one module per command group adds
its commands (etrack.cli.fetch, .db, .routes, ...), on the helpers of
etrack.cli.common. The groups never import this module.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer

from etrack import __version__
from etrack.cli import (
    accounts,
    db,
    demo,
    fetch,
    jobs,
    ops,
    routes,
    web,
)
from etrack.cli import settings as settings_command
from etrack.cli.common import echo, reload_settings
from etrack.errors import DatabaseUnavailable, EtrackError, ProviderError, exit_code_for
from etrack.logs import setup_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="etrack",
    help="eTrac fleet GPS data into PostgreSQL: collector, backfill, scheduler, routes and a map UI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    if version:
        echo(f"etrack {__version__}")
        raise typer.Exit()
    setup_logging(reload_settings())


# The order here is the order of `etrack --help`: commands as registered,
# then the groups as registered.
settings_command.register(app)
db.register(app)
fetch.register(app)
web.register(app)
demo.register(app)
jobs.register(app)
ops.register(app)
accounts.register(app)
routes.register(app)

# With ETRAC_LOG_LEVEL=DEBUG these keep their traceback: they come from
# outside etrack (PostgreSQL, the eTrac API), where the chain of causes helps.
_TRACEBACK_WHEN_DEBUGGING = (DatabaseUnavailable, ProviderError)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"etrack: error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None, *, prog_name: str | None = None) -> None:
    debug = os.environ.get("ETRAC_LOG_LEVEL", "").upper() == "DEBUG"
    try:
        # Standalone mode: typer reports usage errors itself (exit 2) and
        # exits; our own exceptions come through to be turned into one line.
        app(args=argv, prog_name=prog_name)
    except KeyboardInterrupt as exc:
        _fail("interrupted", exit_code_for(exc))
    except EtrackError as exc:
        if debug and isinstance(exc, _TRACEBACK_WHEN_DEBUGGING):
            raise
        _fail(str(exc), exit_code_for(exc))
