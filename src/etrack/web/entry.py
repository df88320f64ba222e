"""The web UI's process entry points outside `etrack web`: the seed's
`python3 e-track/web_ui.py` and `gunicorn e-track.web_ui:app`."""

from __future__ import annotations

import argparse
import errno
import logging
import socket
import sys
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from fastapi import FastAPI

from etrack.config import Settings, load_settings
from etrack.errors import EXIT_UNREACHABLE, EtrackError, exit_code_for
from etrack.logs import setup_logging
from etrack.store import db, migrations
from etrack.web.app import DEFAULT_PORT, create_app, serve, wsgi_app

__all__ = ["asgi_app_from_env", "listen_problem", "main", "wsgi_app_from_env"]

logger = logging.getLogger("etrack.web")

T = TypeVar("T")


def listen_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port, or None when it can.

    A bind test before anything starts (database, scheduler): uvicorn would
    find out only after them, in the middle of their logs. SO_REUSEADDR as
    uvicorn sets it, so a port left in TIME_WAIT is not taken for busy.
    """
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )[0]
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port}: unknown address ({exc.strerror})"
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (
                    f"cannot listen on {host}:{port}: address already in use "
                    "(another etrack web? choose a free port with --port)"
                )
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def _prepare() -> tuple[Settings, db.Target]:
    settings = load_settings()
    setup_logging(settings)
    target = db.resolve_target(settings)
    migrations.check_current(target, auto_upgrade=target.embedded)
    return settings, target


def _explained(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except EtrackError as exc:
        # gunicorn would print a traceback; the cause fits on one line.
        logger.error("etrack web cannot start: %s", exc)
        raise SystemExit(f"etrack web: error: {exc}") from None


@cache
def wsgi_app_from_env() -> Any:
    """The WSGI app for gunicorn's default worker (built once per process)."""
    return _explained(lambda: wsgi_app(*_prepare()))


@cache
def asgi_app_from_env() -> FastAPI:
    """The ASGI app for uvicorn workers (built once per process)."""
    return _explained(lambda: create_app(*_prepare()))


def main(argv: list[str] | None = None) -> None:
    """`python3 e-track/web_ui.py [--host H] [--port P]`; exit codes as `etrack`'s."""
    parser = argparse.ArgumentParser(prog="web_ui.py", description="e-Track web UI")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    args = parser.parse_args(argv)
    problem = listen_problem(args.host, args.port)
    if problem is not None:
        sys.stderr.write(f"etrack web: error: {problem}\n")
        sys.exit(EXIT_UNREACHABLE)
    try:
        settings = load_settings()
        setup_logging(settings)
        serve(settings, args.host, args.port)
    except KeyboardInterrupt as exc:
        sys.exit(exit_code_for(exc))
    except EtrackError as exc:
        sys.stderr.write(f"etrack web: error: {exc}\n")
        sys.exit(exit_code_for(exc))
