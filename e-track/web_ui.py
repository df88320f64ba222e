"""Seed-compatible web UI.

    python3 e-track/web_ui.py [--host 127.0.0.1] [--port 5001]
    DISABLE_UI_SCHEDULER=1 gunicorn -w 1 -b 0.0.0.0:5001 e-track.web_ui:app
    DISABLE_UI_SCHEDULER=1 gunicorn -k uvicorn.workers.UvicornWorker -w 2 -b 0.0.0.0:5001 e-track.web_ui:asgi_app

`app` is WSGI (gunicorn's default sync worker, through a2wsgi); `asgi_app` is
the FastAPI app itself, for uvicorn workers. Both are built on first access,
so importing this module costs nothing until a server asks for one.
Listening on anything but 127.0.0.1 needs ETRACK_WEB_USER and
ETRACK_WEB_PASSWORD: vehicle positions are personal data.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bootstrap import ensure_etrack

ensure_etrack()

from etrack.web.entry import asgi_app_from_env, main, wsgi_app_from_env  # noqa: E402


def __getattr__(name: str) -> Any:
    # gunicorn resolves `e-track.web_ui:app` with getattr: build on demand.
    if name == "app":
        return wsgi_app_from_env()
    if name == "asgi_app":
        return asgi_app_from_env()
    raise AttributeError(name)


if __name__ == "__main__":
    main()
