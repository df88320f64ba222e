"""The web UI and JSON API: `create_app(settings, target)`, `serve(settings, host, port)`."""

from etrack.web.app import create_app, serve, wsgi_app

__all__ = ["create_app", "serve", "wsgi_app"]
