"""`etrack settings`: the effective settings (secrets masked) or a .env.example."""

from __future__ import annotations

from typing import Annotated

import typer

from etrack.cli.common import echo, settings
from etrack.config import documented_settings, render_env_example

__all__ = ["register", "show_settings"]


def show_settings(
    env_example: Annotated[
        bool, typer.Option("--env-example", help="Print a .env.example documenting every variable.")
    ] = False,
) -> None:
    """Show the effective settings (secrets masked) or a documented .env.example."""
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


def register(app: typer.Typer) -> None:
    """Add `settings` to the `etrack` app (once: calling again is harmless)."""
    if "settings" not in {info.name for info in app.registered_commands}:
        app.command("settings")(show_settings)
