"""The web UI's process entry points outside `etrack web`: the seed's
`python3 e-track/web_ui.py` and `gunicorn e-track.web_ui:app`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from fastapi import FastAPI

from etrack.config import Settings, load_settings
from etrack.errors import EtrackError, exit_code_for
from etrack.logs import setup_logging
from etrack.store import db, migrations
from etrack.web.app import DEFAULT_PORT, create_app, serve, wsgi_app

__all__ = ["asgi_app_from_env", "main", "wsgi_app_from_env"]

logger = logging.getLogger("etrack.web")

T = TypeVar("T")


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
    try:
        settings = load_settings()
        setup_logging(settings)
        serve(settings, args.host, args.port)
    except KeyboardInterrupt as exc:
        sys.exit(exit_code_for(exc))
    except EtrackError as exc:
        sys.stderr.write(f"etrack web: error: {exc}\n")
        sys.exit(exit_code_for(exc))
