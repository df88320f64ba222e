"""The app factory: the JSON API under /api, the HTML pages, static assets,
the middleware, the error answers, and the embedded scheduler.

`create_app(settings, target)` builds it; `serve(settings, host, port)` runs it
with uvicorn (`etrack web`); `wsgi_app(...)` wraps it for gunicorn's default
WSGI worker (`e-track/web_ui.py`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
from a2wsgi import ASGIMiddleware
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from etrack import __version__
from etrack.config import Settings, load_accounts
from etrack.errors import DatabaseUnavailable, EtrackError, UsageError, is_transient
from etrack.store import db, migrations
from etrack.store.accounts import fallback_account
from etrack.store.users import count_users
from etrack.trips.params import RouteParams
from etrack.web import api, i18n, pages
from etrack.web.auth import AuthMiddleware, Directory, SecureCookieMiddleware
from etrack.web.deps import WebContext
from etrack.web.jobs import JobsClient
from etrack.web.metrics import MetricsMiddleware
from etrack.web.pages.render import error_page
from etrack.web.scheduler import EmbeddedScheduler
from etrack.web.scope import AccountScopeMiddleware
from etrack.web.security import (
    HostCheckMiddleware,
    LoginGuard,
    QueryTextMiddleware,
    SecurityHeadersMiddleware,
    auth_config,
    is_loopback,
    load_secret_key,
    remote_without_login_warning,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["DEFAULT_PORT", "create_app", "serve", "wsgi_app"]

logger = logging.getLogger("etrack.web")

DEFAULT_PORT = 5001
WEB_DIR = Path(__file__).parent
# What a 503 asks the client to wait before trying again (an outage of the
# database usually lasts longer than one pool checkout timeout).
RETRY_AFTER_S = 30

Handler = Callable[[Request, Exception], Awaitable[Response]]


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    found.env.globals.update(
        fmt_number=i18n.format_number,
        fmt_day=i18n.format_day,
        fmt_moment=i18n.format_moment,
        fmt_duration=i18n.format_duration,
        fmt_hours=i18n.format_hours,
        job_kind=i18n.job_kind,
        job_status=i18n.job_status,
        describe_run=i18n.describe_run,
        backfill_progress=i18n.backfill_progress,
        event_kind=i18n.event_kind,
        event_value=i18n.event_value,
        version=__version__,
    )
    return found


def static_dir(package: str, *parts: str) -> Path | None:
    """A folder of files shipped by an installed package, or None without it."""
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        return None
    folder = Path(str(root.joinpath(*parts)))
    return folder if folder.is_dir() else None


def markercluster_dir() -> Path | None:
    try:
        from xstatic.pkg import leaflet_markercluster  # type: ignore[import-untyped]
    except ImportError:
        return None
    folder = Path(leaflet_markercluster.BASE_DIR)
    return folder if folder.is_dir() else None


def create_app(settings: Settings, target: db.Target, *, scheduler: bool | None = None) -> FastAPI:
    """The web app. `scheduler` None follows DISABLE_UI_SCHEDULER."""
    run_scheduler = (not settings.disable_ui_scheduler) if scheduler is None else scheduler
    context = WebContext(
        settings=settings,
        target=target,
        params=RouteParams.from_settings(settings),
        scheduler=EmbeddedScheduler(settings, target, enabled=run_scheduler),
        jobs=JobsClient(settings, target),
        tile_url=settings.etrack_tile_url,
        tile_attribution=settings.etrack_tile_attribution,
        default_lang=i18n.pick_language(settings.etrack_ui_lang, "pt-BR"),
        fallback_account=fallback_account(load_accounts(settings)),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Once per process, at start: gunicorn -b 0.0.0.0 without a login
        # would otherwise refuse every remote user in silence.
        warning = remote_without_login_warning(auth_config(settings), sys.argv, os.environ)
        if warning is not None:
            logger.warning("%s", warning)
        await context.reader()
        await context.scheduler.start()
        try:
            yield
        finally:
            await context.scheduler.stop()
            await context.jobs.close()
            await context.close()

    app = FastAPI(
        title="etrack",
        version=__version__,
        summary="Fleet positions, routes, trips, stops and jobs of an eTrac account.",
        openapi_url="/api/openapi.json",
        # FastAPI's interactive docs load their code from a CDN: off (no CDN, by
        # design); /docs and /openapi.json are etrack.web.pages.docs.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.web = context
    app.state.templates = templates()

    app.include_router(api.router)
    app.include_router(pages.router)
    _mount_static(app)
    _error_handlers(app)

    # Outermost first: headers wrap everything, then metrics, the Host and
    # query checks, then the session the auth check reads.
    # Innermost: the account scope must be set in the handler's own context.
    config = auth_config(settings)

    async def pool() -> db.AsyncPool:
        await context.reader()
        assert context.pool is not None
        return context.pool

    context.directory = Directory(settings, target, pool)
    context.login_guard = LoginGuard.from_settings(
        settings, context.directory.check_password, context.metrics
    )
    app.add_middleware(AccountScopeMiddleware)
    app.add_middleware(
        AuthMiddleware,
        directory=context.directory,
        guard=context.login_guard,
        server_accounts=settings.web_accounts,
        idle_s=settings.etrack_web_session_idle_s,
        max_s=settings.etrack_web_session_max_s,
        default_lang=context.default_lang,
        unavailable=_unavailable_answer,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=load_secret_key(settings),
        session_cookie="etrack_session",
        max_age=settings.etrack_web_session_max_s,
        same_site="lax",
    )
    app.add_middleware(SecureCookieMiddleware)
    # Before anything reads the request: a foreign Host (DNS rebinding) and
    # control characters in the query are refused first (and still counted).
    app.add_middleware(
        HostCheckMiddleware, allowed=settings.web_allowed_hosts, login=config.configured
    )
    app.add_middleware(QueryTextMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    app.add_middleware(SecurityHeadersMiddleware, tile_url=context.tile_url)
    if settings.etrack_web_trust_proxy:
        # Outermost: the scheme (https: Secure cookies, HSTS) and the client's
        # address (the audit, the login throttle) as the proxy saw them.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts="*")
    return app


def _mount_static(app: FastAPI) -> None:
    app.mount("/static/app", StaticFiles(directory=WEB_DIR / "static"), name="static")
    leaflet = static_dir("js_lib_leaflet", "static", "js_lib_leaflet")
    if leaflet is None:
        logger.warning("django-js-lib-leaflet is not installed: the maps cannot load Leaflet")
    else:
        app.mount("/static/leaflet", StaticFiles(directory=leaflet), name="leaflet")
    cluster = markercluster_dir()
    if cluster is not None:
        app.mount("/static/markercluster", StaticFiles(directory=cluster), name="markercluster")


def _unavailable_answer(scope: Scope) -> Response:
    """The 503 of an outage met before the app (the login's user lookup)."""
    request = Request(scope)
    message = "database unavailable, try again in a moment"
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=503, headers=headers)
    return error_page(request, 503, message, headers)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or request.url.path in ("/healthz",)


def _error_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if _wants_json(request):
            return JSONResponse(
                {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
            )
        return error_page(request, exc.status_code, str(exc.detail))

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        detail = describe_validation(exc)
        if _wants_json(request):
            return JSONResponse({"detail": detail}, status_code=422)
        return error_page(request, 400, detail)

    async def unexpected(request: Request, exc: Exception) -> Response:
        # The client gets an id to quote, never the traceback.
        incident = uuid.uuid4().hex[:12]
        logger.error(
            "error %s answering %s %s",
            incident,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        message = f"internal error (incident {incident}, see the server log)"
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=500)
        return error_page(request, 500, message)

    async def etrack_error(request: Request, exc: Exception) -> Response:
        # Keyed on the class's `transient`: an outage (the database does not
        # answer) is worth retrying later, anything else is a bug here.
        if not is_transient(exc):
            return await unexpected(request, exc)
        logger.warning("unavailable for %s: %s", request.url.path, exc)
        # The error's own message names the server: it stays in the log.
        if isinstance(exc, DatabaseUnavailable):
            message = "database unavailable, try again in a moment"
        else:
            message = "temporarily unavailable, try again in a moment"
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=503, headers=headers)
        return error_page(request, 503, message, headers)

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(StarletteHTTPException, _starlette_error(http_error))
    app.add_exception_handler(RequestValidationError, invalid_request)
    # EtrackError has a handler of its own, not only the catch-all: Starlette
    # answers the catch-all's errors and then raises them again to the
    # server, which would log a traceback for every request of an outage.
    app.add_exception_handler(EtrackError, etrack_error)
    app.add_exception_handler(Exception, unexpected)


def _starlette_error(handler: Handler) -> Handler:
    async def convert(request: Request, exc: Exception) -> Response:
        status = int(getattr(exc, "status_code", 500))
        detail = getattr(exc, "detail", "error")
        return await handler(request, HTTPException(status, detail))

    return convert


def describe_validation(exc: RequestValidationError) -> str:
    """One line per bad parameter: where it is and what was expected."""
    parts = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid value')}")
    return "; ".join(parts) or "invalid request"


# ------------------------------------------------------------------ serving
def serve(settings: Settings, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Run the UI with uvicorn until Ctrl-C (`etrack web`)."""
    target = db.resolve_target(settings)
    migrations.check_current(target, auto_upgrade=target.embedded)
    if not is_loopback(host) and not auth_config(settings).configured and not _has_users(target):
        raise UsageError(
            f"--host {host} makes the UI reachable from the network: add a user (etrack users "
            "add LOGIN --role admin) or set ETRACK_WEB_USER and ETRACK_WEB_PASSWORD (vehicle "
            "positions are personal data), or listen on 127.0.0.1"
        )
    app = create_app(settings, target)
    logger.info("etrack web on http://%s:%d", host, port)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=settings.etrac_log_level.lower(),
        proxy_headers=False,
        server_header=False,
        log_config=None,
    )


def _has_users(target: db.Target) -> bool:
    with db.connection(target) as conn:
        return count_users(conn) > 0


def wsgi_app(settings: Settings, target: db.Target) -> TrustedServerAddress:
    """The app as WSGI for gunicorn's default worker (a2wsgi).

    a2wsgi runs the ASGI app on an event loop thread of its own but does not
    run the lifespan, so this runs it on that loop: the pool and the embedded
    scheduler start with the worker process and stop when it exits.
    """
    app = create_app(settings, target)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="etrack-web-loop", daemon=True).start()
    lifespan = app.router.lifespan_context(app)
    asyncio.run_coroutine_threadsafe(lifespan.__aenter__(), loop).result(timeout=60)

    def shutdown() -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(lifespan.__aexit__(None, None, None), loop).result(
                timeout=30
            )
        loop.call_soon_threadsafe(loop.stop)

    atexit.register(shutdown)
    return TrustedServerAddress(ASGIMiddleware(app, loop=loop))  # type: ignore[arg-type]


class TrustedServerAddress:
    """Sets SERVER_NAME/SERVER_PORT from the connection's socket.

    WSGI servers fill them from the Host header, which the client chooses; the
    login rule (etrack.web.security) needs the address the connection really
    reached. gunicorn hands the socket over; without it the address is
    unknown, which the login rule treats as not loopback.
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        sock = environ.get("gunicorn.socket")
        address: object = None
        with contextlib.suppress(OSError, AttributeError):
            address = sock.getsockname() if sock is not None else None
        if isinstance(address, tuple) and len(address) >= 2:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = str(address[0]), str(address[1])
        elif isinstance(address, str):
            # A Unix socket: only processes on this machine can connect.
            environ["SERVER_NAME"], environ["SERVER_PORT"] = "127.0.0.1", "0"
        else:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = "unknown", "0"
        return self.app(environ, start_response)
