"""The web UI's process entry points outside `etrack web`: the seed's
`python3 e-track/web_ui.py` and `gunicorn e-track.web_ui:app`."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import cache
from typing import Any

from etrack.config import Settings, SettingsError, load_settings
from etrack.store import db, migrations

__all__ = ["asgi_app_from_env", "main", "wsgi_app_from_env"]

logger = logging.getLogger("etrack.web")


def _prepare() -> tuple[Settings, db.Target]:
    from etrack.logs import setup_logging

    settings = load_settings()
    setup_logging(settings)
    target = db.resolve_target(settings)
    migrations.check_current(target, auto_upgrade=target.embedded)
    return settings, target


def _explained(fn: Any) -> Any:
    try:
        return fn()
    except (SettingsError, db.DatabaseUnavailable, db.SchemaNotCurrent) as exc:
        # gunicorn would print a traceback; the cause fits on one line.
        logger.error("etrack web cannot start: %s", exc)
        raise SystemExit(f"etrack web: error: {exc}") from None


@cache
def wsgi_app_from_env() -> Any:
    """The WSGI app for gunicorn's default worker (built once per process)."""
    from etrack.web.app import wsgi_app

    return _explained(lambda: wsgi_app(*_prepare()))


@cache
def asgi_app_from_env() -> Any:
    """The ASGI app for uvicorn workers (built once per process)."""
    from etrack.web.app import create_app

    return _explained(lambda: create_app(*_prepare()))


def main(argv: list[str] | None = None) -> None:
    """`python3 e-track/web_ui.py [--host H] [--port P]`."""
    from etrack.web.app import DEFAULT_PORT, serve

    parser = argparse.ArgumentParser(prog="web_ui.py", description="e-Track web UI")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    args = parser.parse_args(argv)
    try:
        from etrack.logs import setup_logging

        settings = load_settings()
        setup_logging(settings)
        serve(settings, args.host, args.port)
    except (SettingsError, ValueError) as exc:
        sys.exit(_fail(str(exc), 2))
    except db.DatabaseUnavailable as exc:
        sys.exit(_fail(str(exc), 3))
    except db.SchemaNotCurrent as exc:
        sys.exit(_fail(str(exc), 4))
    except KeyboardInterrupt:
        sys.exit(130)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"etrack web: error: {message}\n")
    return code
