"""`etrack web`: serve the web UI and JSON API, or hash a password for it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from etrack.cli.common import echo, settings
from etrack.errors import EXIT_UNREACHABLE, UsageError
from etrack.web.app import serve
from etrack.web.entry import listen_problem
from etrack.web.security import hash_password as make_hash

__all__ = ["register", "web"]


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
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise UsageError("--hash-password: give the password on stdin")
        echo(make_hash(password))
        return
    problem = listen_problem(host, port)
    if problem is not None:
        # Before serve(): nothing (database, scheduler) has started yet.
        typer.echo(f"etrack: error: {problem}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE)
    serve(settings(), host, port)


def register(app: typer.Typer) -> None:
    """Add `web` to the `etrack` app (once: calling again is harmless)."""
    if "web" not in {info.name for info in app.registered_commands}:
        app.command("web")(web)
