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
import typer.core

from etrack import __version__
from etrack.cli import (
    accounts,
    alerts,
    db,
    demo,
    drivers,
    events,
    fetch,
    geofences,
    jobs,
    ops,
    reports,
    routes,
    users,
    web,
)
from etrack.cli import settings as settings_command
from etrack.cli.common import echo, reload_settings
from etrack.errors import DatabaseUnavailable, EtrackError, ProviderError, exit_code_for
from etrack.logs import setup_logging
from etrack.store.audit import cli_actor, set_actor

__all__ = ["app", "main"]


class _PanelOrder(typer.core.TyperGroup):
    """Help lists the panels in the order their first command comes, and
    Typer puts groups after commands: list by panel (stable, so each panel
    keeps the registration order)."""

    # typer.Context: what Typer passes, a subclass of its vendored click's.
    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        order = {panel: index for index, panel in enumerate(PANELS)}
        return sorted(
            super().list_commands(ctx), key=lambda name: order.get(_PANEL_OF.get(name, ""), 99)
        )


app = typer.Typer(
    name="etrack",
    cls=_PanelOrder,
    help="eTrac fleet GPS data into PostgreSQL: collector, backfill, scheduler, routes and a map UI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    # Eager: runs while the options are parsed, before click asks for a
    # command ("Missing command.") and before any setting is read.
    if value:
        echo(f"etrack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Show the version and exit.",
            callback=_show_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    setup_logging(reload_settings())
    # Every change this command makes is audited as cli:<os user>.
    set_actor(cli_actor())


# Within each help panel (PANELS below), commands keep this order.
settings_command.register(app)
db.register(app)
fetch.register(app)
web.register(app)
demo.register(app)
jobs.register(app)
ops.register(app)
accounts.register(app)
routes.register(app)
events.register(app)
alerts.register(app)
geofences.register(app)
drivers.register(app)
reports.register(app)
users.register(app)

# `etrack --help` groups the commands in these panels (Portuguese, like the
# seed's users); a command missing here would land alone under "Commands",
# which tests/unit/test_cli_presentation.py refuses.
PANELS: dict[str, tuple[str, ...]] = {
    "Coleta": ("fetch-latest", "fetch-plate", "fetch-history", "fetch-trips", "backfill", "daily"),
    "Processamento": ("routes", "events", "alerts", "geofences", "visits", "drivers", "reports"),
    "Serviços": ("web", "worker", "simulator", "demo"),
    "Administração": (
        "settings",
        "db",
        "accounts",
        "jobs",
        "prune",
        "deploy",
        "users",
        "tokens",
        "share",
        "audit",
    ),
}
_PANEL_OF = {name: panel for panel, names in PANELS.items() for name in names}
for _command in app.registered_commands:
    _command.rich_help_panel = _PANEL_OF.get(_command.name or "", _command.rich_help_panel)
for _group in app.registered_groups:
    _group.rich_help_panel = _PANEL_OF.get(_group.name or "", _group.rich_help_panel)


def _display_type_rich(self: typer.core.TyperOption, ctx: typer.Context) -> str | None:
    # Typer's rich help shows the type of every option, flags included
    # (`--force <bool>`); a flag takes no value, so it shows none, as in
    # click's plain help.
    if self.is_flag:
        return None
    return _typer_display_type_rich(self, ctx)


_typer_display_type_rich = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _display_type_rich  # type: ignore[method-assign, assignment]

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
