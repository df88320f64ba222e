"""The FastAPI app: JSON API under /api, HTML pages, static assets, and the
embedded scheduler.

`create_app(settings, target)` builds it; `serve(settings, host, port)` runs it
with uvicorn (`etrack web`); `wsgi_app(...)` wraps it for gunicorn's default
WSGI worker (`e-track/web_ui.py`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.templating import Jinja2Templates
from psycopg_pool import AsyncConnectionPool
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import JSONResponse, Response
from starlette.staticfiles import StaticFiles

from etrack import __version__
from etrack.config import Settings
from etrack.store import db
from etrack.store.accounts import AccountsError, fallback_account, load_accounts
from etrack.trips.detect import RouteParams
from etrack.web import i18n
from etrack.web.jobs import JobsClient
from etrack.web.metrics import MetricsMiddleware, WebMetrics
from etrack.web.reader import BodyCache, FleetCache, Reader, is_unavailable, open_pool
from etrack.web.scheduler import EmbeddedScheduler
from etrack.web.scope import AccountScopeMiddleware
from etrack.web.security import (
    AuthMiddleware,
    SecurityHeadersMiddleware,
    auth_config,
    is_loopback,
    load_secret_key,
)

__all__ = ["WebContext", "create_app", "serve", "wsgi_app"]

logger = logging.getLogger("etrack.web")

DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_TILE_ATTRIBUTION = "&copy; OpenStreetMap contributors"
DEFAULT_PORT = 5001
WEB_DIR = Path(__file__).parent


def setting(settings: Settings, name: str, default: Any) -> Any:
    """A web setting the settings object may not define yet (see the report)."""
    value = getattr(settings, name, None)
    if value is None:
        return default
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    return value


@dataclass(slots=True)
class WebContext:
    """Everything the handlers share, one per app."""

    settings: Settings
    target: db.Target
    params: RouteParams
    scheduler: EmbeddedScheduler
    jobs: JobsClient
    tile_url: str
    tile_attribution: str
    default_lang: str
    fallback_account: str = "default"
    metrics: WebMetrics = field(default_factory=WebMetrics)
    routes: BodyCache = field(default_factory=BodyCache)
    pool: AsyncConnectionPool | None = None
    _reader: Reader | None = None
    _fleet: FleetCache | None = None
    _lock: asyncio.Lock | None = None

    async def reader(self) -> Reader:
        """The database reader; the pool opens on first use when no lifespan ran."""
        if self._reader is None:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if self._reader is None:
                    self.pool = await open_pool(self.target)
                    self._reader = Reader(
                        self.pool, self.params, fallback_account=self.fallback_account
                    )
                    self._fleet = FleetCache(self._reader)
        assert self._reader is not None
        return self._reader

    def account_names(self) -> list[str]:
        """The configured accounts (the file is read again: it may change)."""
        try:
            return [account.name for account in load_accounts(self.settings)]
        except AccountsError:
            return [self.fallback_account]

    async def fleet(self) -> FleetCache:
        await self.reader()
        assert self._fleet is not None
        return self._fleet

    async def close(self) -> None:
        pool, self.pool, self._reader, self._fleet = self.pool, None, None, None
        if pool is not None:
            await pool.close()


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    found.env.globals.update(
        fmt_number=i18n.format_number,
        fmt_day=i18n.format_day,
        fmt_moment=i18n.format_moment,
        fmt_duration=i18n.format_duration,
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
        tile_url=str(setting(settings, "etrack_tile_url", DEFAULT_TILE_URL)),
        tile_attribution=str(
            setting(settings, "etrack_tile_attribution", DEFAULT_TILE_ATTRIBUTION)
        ),
        default_lang=i18n.pick_language(setting(settings, "etrack_ui_lang", None), "pt-BR"),
        fallback_account=fallback_account(load_accounts(settings)),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
        # The interactive docs load their code from a CDN: off (no CDN, by design).
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.web = context
    app.state.templates = templates()

    from etrack.web import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    _mount_static(app)
    _error_handlers(app)

    # Outermost first: headers wrap everything, then metrics, then the
    # session the auth check reads.
    # Innermost: the account scope must be set in the handler's own context.
    app.add_middleware(AccountScopeMiddleware, allowed=settings.web_accounts)
    app.add_middleware(AuthMiddleware, config=auth_config(settings))
    app.add_middleware(
        SessionMiddleware,
        secret_key=load_secret_key(settings),
        session_cookie="etrack_session",
        max_age=12 * 3600,
        same_site="lax",
    )
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    app.add_middleware(SecurityHeadersMiddleware, tile_url=context.tile_url)
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


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or request.url.path in ("/healthz",)


def _error_handlers(app: FastAPI) -> None:
    from etrack.web.pages import error_page

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
        if is_unavailable(exc):
            logger.warning("database unavailable for %s: %s", request.url.path, exc)
            status, message = 503, "database unavailable, try again in a moment"
        else:
            # The client gets an id to quote, never the traceback.
            incident = uuid.uuid4().hex[:12]
            logger.exception("error %s answering %s %s", incident, request.method, request.url.path)
            status, message = 500, f"internal error (incident {incident}, see the server log)"
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=status)
        return error_page(request, status, message)

    app.add_exception_handler(HTTPException, http_error)
    from starlette.exceptions import HTTPException as StarletteHTTPException

    app.add_exception_handler(StarletteHTTPException, _starlette_error(http_error))
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(Exception, unexpected)


def _starlette_error(handler: Any) -> Any:
    async def convert(request: Request, exc: Exception) -> Response:
        status = int(getattr(exc, "status_code", 500))
        detail = getattr(exc, "detail", "error")
        result: Response = await handler(request, HTTPException(status, detail))
        return result

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
    import uvicorn

    from etrack.store import migrations

    if not is_loopback(host) and not auth_config(settings).configured:
        raise ValueError(
            f"--host {host} makes the UI reachable from the network: set ETRACK_WEB_USER and "
            "ETRACK_WEB_PASSWORD (vehicle positions are personal data), or listen on 127.0.0.1"
        )
    target = db.resolve_target(settings)
    migrations.check_current(target, auto_upgrade=target.embedded)
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


def wsgi_app(settings: Settings, target: db.Target) -> Any:
    """The app as WSGI for gunicorn's default worker (a2wsgi).

    a2wsgi runs the ASGI app on an event loop thread of its own but does not
    run the lifespan, so this runs it on that loop: the pool and the embedded
    scheduler start with the worker process and stop when it exits.
    """
    from a2wsgi import ASGIMiddleware

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

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        sock = environ.get("gunicorn.socket")
        address: Any = None
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
