"""`etrack settings`: the effective settings (secrets masked) or a .env.example.

Settings come from the environment, then from `.env` files
(`etrack.config.env_files`): the current directory's, then the project
root's, the nearest directory at or above the current one holding `e-track/`
or `pyproject.toml`, then the same found from the running script (the seed's
`e-track/*.py` or a checkout's `.venv/bin/etrack`). The first that sets a
variable wins; the missing-credentials error lists the files looked at."""

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
