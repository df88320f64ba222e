"""Who may see the UI, and the headers every answer carries.

Vehicle positions are personal data (LGPD). Rules:

- With ETRACK_WEB_USER/ETRACK_WEB_PASSWORD set, every page and API call needs
  a login (a session cookie from /login, or HTTP Basic for scripts).
- Without them, only connections that arrived on a loopback address are
  served; anything reaching the server through a network interface gets 403
  saying to set them. The address is the connection's local one, taken from
  the socket (uvicorn's scope["server"]; under gunicorn, web_ui.py copies it
  from the socket), never from the Host header.
- The password may be stored as `pbkdf2_sha256$iterations$salt$hash`
  (`hash_password`) or in plain text; either way it is compared in constant time.
  The check runs in a thread, a few at a time (`LoginGuard`): pbkdf2 is slow on
  purpose and would otherwise stall the event loop for everyone.
- Failed logins lock out: after ETRACK_WEB_LOGIN_FREE_FAILURES failures for a
  user name or from a client address, that key is locked (a temporary lock,
  not a delay) for ETRACK_WEB_LOGIN_LOCK_S, doubling with each further
  failure; while locked even the right password gets 429 with Retry-After.
- Without a login, a request that reached a loopback address must name a
  loopback host (localhost, 127.0.0.1, [::1]) or one of
  ETRACK_WEB_ALLOWED_HOSTS in its Host header, else 400: a web page the user
  visits cannot rebind its own DNS name to 127.0.0.1 and read the fleet.
- A control character (NUL...) in a query parameter is a 400 naming it.
- Forms carry a CSRF token bound to the session.
- /static, /login, /healthz, /metrics, /api/openapi.json, /openapi.json and
  /docs are open: they hold no personal data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import ipaddress
import logging
import math
import os
import secrets
import shlex
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import anyio
import anyio.to_thread
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etrack.config import Settings
from etrack.web import i18n
from etrack.web.metrics import WebMetrics

__all__ = [
    "AuthConfig",
    "AuthMiddleware",
    "HostCheckMiddleware",
    "LoginGuard",
    "LoginResult",
    "QueryTextMiddleware",
    "SecurityHeadersMiddleware",
    "client_address",
    "content_security_policy",
    "csrf_token",
    "hash_password",
    "is_loopback",
    "load_secret_key",
    "valid_csrf",
    "verify_password",
]

logger = logging.getLogger("etrack.web.security")

PBKDF2_ITERATIONS = 600_000
SESSION_USER = "user"
SESSION_CSRF = "csrf"
OPEN_PREFIXES = (
    "/static/",
    "/login",
    "/healthz",
    "/metrics",
    "/favicon.ico",
    "/api/openapi.json",
)
# Open like /api/openapi.json, matched exactly: FastAPI's conventional paths
# of the API document and its page (no personal data).
OPEN_PATHS = frozenset({"/login", "/openapi.json", "/docs"})


# -------------------------------------------------------------- passwords
def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The value to put in ETRACK_WEB_PASSWORD instead of the password itself."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def verify_password(given: str, stored: str) -> bool:
    """Constant-time check of `given` against a pbkdf2 hash or a plain password."""
    if stored.startswith("pbkdf2_sha256$"):
        try:
            _, iterations, salt, expected = stored.split("$", 3)
            digest = hashlib.pbkdf2_hmac("sha256", given.encode(), salt.encode(), int(iterations))
        except ValueError:
            return False
        return hmac.compare_digest(base64.b64encode(digest).decode(), expected)
    # Hash both sides first so the comparison time does not depend on the
    # lengths either.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(stored.encode()).digest()
    )


@dataclass(frozen=True, slots=True)
class AuthConfig:
    user: str | None
    password: str | None

    @property
    def configured(self) -> bool:
        return bool(self.user and self.password)

    def check(self, user: str, password: str) -> bool:
        if not self.configured:
            return False
        assert self.user is not None
        assert self.password is not None
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        # Always verify the password, so a wrong user costs the same time.
        password_ok = verify_password(password, self.password)
        return user_ok and password_ok


def auth_config(settings: Settings) -> AuthConfig:
    password = settings.etrack_web_password
    return AuthConfig(
        user=settings.etrack_web_user or None,
        password=(password.get_secret_value() if password is not None else None) or None,
    )


# ------------------------------------------------------ login throttling
LOCKED_MESSAGE = "Muitas tentativas de login falharam. Tente novamente em {seconds} s."


@dataclass(frozen=True, slots=True)
class LoginResult:
    ok: bool
    # > 0: the user or the address is locked for this long; the password was
    # not checked at all.
    retry_after: float = 0.0

    @property
    def locked(self) -> bool:
        return self.retry_after > 0

    @property
    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.retry_after))


@dataclass(slots=True)
class _Failures:
    count: int = 0
    last: float = 0.0
    locked_until: float = 0.0


class LoginGuard:
    """Checks passwords off the event loop, `threads` at a time, and locks out
    a user name or a client address after repeated failures.

    A temporary lock, not a delay: after `free` failures a key is locked for
    `lock_s`, doubled by each further failure up to `lock_max_s`. Attempts
    while locked are refused without checking the password: they cost no CPU,
    do not extend the lock, and even the right password must wait. Failures
    older than `lock_max_s` are forgotten; a success forgets both keys.
    """

    # An attacker inventing user names must not grow this without bound.
    MAX_KEYS = 10_000

    def __init__(
        self,
        config: AuthConfig,
        *,
        free: int = 5,
        lock_s: float = 1.0,
        lock_max_s: float = 900.0,
        threads: int = 2,
        metrics: WebMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.free = free
        self.lock_s = lock_s
        self.lock_max_s = lock_max_s
        self.metrics = metrics
        self.clock = clock
        # Two limiters: `_turn` is held while a request re-checks the lock and
        # hashes; `_threads` is what anyio's worker threads borrow (one
        # limiter for both would need two tokens per request and deadlock).
        self._turn = anyio.CapacityLimiter(threads)
        self._threads = anyio.CapacityLimiter(threads)
        self._failures: dict[str, _Failures] = {}
        self.running = 0
        self.peak = 0
        if metrics is not None:
            metrics.login_locked.set_function(self.locked_count)
            metrics.password_checks.set_function(lambda: float(self.running))

    @classmethod
    def from_settings(cls, settings: Settings, metrics: WebMetrics | None = None) -> LoginGuard:
        return cls(
            auth_config(settings),
            free=settings.etrack_web_login_free_failures,
            lock_s=settings.etrack_web_login_lock_s,
            lock_max_s=settings.etrack_web_login_lock_max_s,
            threads=settings.etrack_web_password_threads,
            metrics=metrics,
        )

    @staticmethod
    def _keys(user: str, address: str) -> tuple[str, str]:
        # repr(): the user name is the client's text, and goes into the log.
        return f"user {user[:64]!r}", f"address {address[:64]}"

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until this user, from this address, may try again (0: now)."""
        now = self.clock()
        waits = [
            found.locked_until - now
            for key in self._keys(user, address)
            if (found := self._failures.get(key)) is not None
        ]
        return max([0.0, *waits])

    @property
    def waiting(self) -> int:
        """Requests waiting for a password thread."""
        return int(self._turn.statistics().tasks_waiting)

    def locked_count(self) -> float:
        now = self.clock()
        return float(sum(1 for f in self._failures.values() if f.locked_until > now))

    async def check(self, user: str, password: str, address: str, *, via: str) -> LoginResult:
        """Whether `user`/`password` is the configured login; `via` (form,
        basic) labels the metrics."""
        wait = self.retry_after(user, address)
        if wait > 0:
            return self._refused(via, wait)
        async with self._turn:
            # A lock may have started while this request waited its turn.
            wait = self.retry_after(user, address)
            if wait > 0:
                return self._refused(via, wait)
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                ok = await anyio.to_thread.run_sync(
                    self.config.check, user, password, limiter=self._threads
                )
            finally:
                self.running -= 1
        if ok:
            for key in self._keys(user, address):
                self._failures.pop(key, None)
        else:
            self._failed(user, address, via)
        return LoginResult(ok)

    def _refused(self, via: str, wait: float) -> LoginResult:
        if self.metrics is not None:
            self.metrics.login_refused.labels(via).inc()
        return LoginResult(False, wait)

    def _failed(self, user: str, address: str, via: str) -> None:
        now = self.clock()
        if self.metrics is not None:
            self.metrics.login_failures.labels(via).inc()
        if len(self._failures) >= self.MAX_KEYS:
            self._forget(now)
        locked: list[str] = []
        for key in self._keys(user, address):
            found = self._failures.setdefault(key, _Failures())
            if now - found.last > self.lock_max_s:
                found.count = 0
            found.count += 1
            found.last = now
            if found.count >= self.free:
                # min(): 2 ** a large count would overflow the float.
                exponent = min(found.count - self.free, 40)
                lock = min(self.lock_max_s, self.lock_s * 2.0**exponent)
                found.locked_until = now + lock
                locked.append(f"{key} for {lock:g} s after {found.count} failures")
        if locked:
            logger.warning("web login (%s) locked: %s", via, "; ".join(locked))

    def _forget(self, now: float) -> None:
        stale = [
            key
            for key, found in self._failures.items()
            if found.locked_until <= now and now - found.last > self.lock_max_s
        ]
        for key in stale:
            del self._failures[key]
        if len(self._failures) >= self.MAX_KEYS:
            # Still full of fresh keys: keep the newer half.
            newest = sorted(self._failures.items(), key=lambda item: item[1].last)
            self._failures = dict(newest[len(newest) // 2 :])


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


# ------------------------------------------------------------ secret key
def load_secret_key(settings: Settings) -> str:
    """ETRACK_SECRET_KEY, else a key generated once into the data directory
    (shared by every worker process of this machine, kept across restarts so
    sessions survive them)."""
    configured = settings.etrack_secret_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    folder = Path(settings.etrack_data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "web-secret-key"
    try:
        # O_EXCL: of two workers starting at once, one writes, the other reads.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_urlsafe(48))
    return _read_key(path)


def _read_key(path: Path) -> str:
    for _ in range(50):
        key = path.read_text(encoding="utf-8").strip()
        if key:
            return key
        # The other process created the file and is about to write it.
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: delete it or set ETRACK_SECRET_KEY")


# ----------------------------------------------------------------- CSRF
def csrf_token(connection: HTTPConnection) -> str:
    """This session's CSRF token (made on first use)."""
    session = connection.session
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


def valid_csrf(connection: HTTPConnection, given: str | None) -> bool:
    expected = connection.session.get(SESSION_CSRF)
    if not isinstance(expected, str) or not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


# ----------------------------------------------------------- who may pass
def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AuthMiddleware:
    """Lets through logged-in sessions, valid HTTP Basic, open paths, and
    (without configured credentials) loopback connections; answers the rest."""

    def __init__(
        self,
        app: ASGIApp,
        config: AuthConfig,
        guard: LoginGuard | None = None,
        *,
        default_lang: str = i18n.DEFAULT_LANGUAGE,
    ) -> None:
        self.app = app
        self.config = config
        self.guard = guard if guard is not None else LoginGuard(config)
        self.default_lang = default_lang
        # The first refused network connection is logged (once per process):
        # the operator learns why remote users see 403.
        self.warned_remote = False
        # Basic credentials already verified: pbkdf2 is slow on purpose, and
        # a script sends the same header with every call.
        self._basic_ok: set[bytes] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        if not self.config.configured:
            server = scope.get("server")
            if server and is_loopback(str(server[0])):
                await self.app(scope, receive, send)
                return
            if not self.warned_remote:
                self.warned_remote = True
                logger.warning(
                    "refused %s from %s: a connection over the network (to %s) needs a login; "
                    "set ETRACK_WEB_USER and ETRACK_WEB_PASSWORD to allow remote access",
                    scope.get("path", "")[:80],
                    client_address(scope),
                    str(server[0]) if server else "an unknown address",
                )
            response = self._refuse_unconfigured(scope, self.default_lang)
            await response(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if connection.session.get(SESSION_USER) == self.config.user:
            await self.app(scope, receive, send)
            return
        basic = await self._basic(connection)
        if basic is not None and basic.ok:
            await self.app(scope, receive, send)
            return
        if basic is not None and basic.locked:
            await self._locked(scope, basic)(scope, receive, send)
            return
        await self._challenge(connection)(scope, receive, send)

    @staticmethod
    def _open(path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    async def _basic(self, connection: HTTPConnection) -> LoginResult | None:
        """None without a Basic header."""
        header = connection.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return None
        key = hashlib.sha256(header.encode()).digest()
        if key in self._basic_ok:
            # Proven right before: a lock-out caused by someone else's guesses
            # must not stop a script that knows the password.
            return LoginResult(True)
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return LoginResult(False)
        result = await self.guard.check(
            user, password, client_address(connection.scope), via="basic"
        )
        if not result.ok:
            return result
        if len(self._basic_ok) > 1000:
            self._basic_ok.clear()
        self._basic_ok.add(key)
        return result

    @staticmethod
    def _locked(scope: Scope, result: LoginResult) -> Response:
        message = LOCKED_MESSAGE.format(seconds=result.retry_after_s)
        headers = {"Retry-After": str(result.retry_after_s)}
        if _wants_json(scope):
            return JSONResponse({"detail": message}, status_code=429, headers=headers)
        return PlainTextResponse(message, status_code=429, headers=headers)

    @staticmethod
    def _refuse_unconfigured(scope: Scope, default_lang: str) -> Response:
        message = (
            "login required: this server has no login configured and answers only loopback "
            "connections; set ETRACK_WEB_USER and ETRACK_WEB_PASSWORD for access over the network"
        )
        if _wants_json(scope):
            return JSONResponse({"detail": message}, status_code=403)
        connection = HTTPConnection(scope)
        asked = connection.query_params.get("lang") or connection.cookies.get(i18n.LANG_COOKIE)
        return remote_refusal_page(i18n.pick_language(asked, default_lang))

    @staticmethod
    def _challenge(connection: HTTPConnection) -> Response:
        if _wants_json(connection.scope):
            return JSONResponse(
                {"detail": "login required (session cookie from /login, or HTTP Basic)"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="etrack", charset="UTF-8"'},
            )
        target = connection.url.path + (f"?{connection.url.query}" if connection.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _wants_json(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith("/api")


def remote_refusal_page(lang: str) -> HTMLResponse:
    """The 403 a browser gets over the network without a configured login.

    A page of its own, not the app's templates: it is answered before the
    request reaches the app (no session, no page context)."""
    title = html.escape(i18n.translate("remote_needs_login_title", lang))
    text = html.escape(i18n.translate("remote_needs_login", lang))
    body = (
        f'<!doctype html>\n<html lang="{lang}">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>403 · {title}</title>"
        '<link rel="stylesheet" href="/static/app/app.css"></head>\n'
        f'<body><main><section class="panel narrow"><h1>403 · {title}</h1>'
        f'<p class="error-message" id="error-message">{text}</p></section></main></body></html>\n'
    )
    return HTMLResponse(body, status_code=403)


def _refuse(scope: Scope, status: int, message: str) -> Response:
    if _wants_json(scope) or scope.get("path") == "/healthz":
        return JSONResponse({"detail": message}, status_code=status)
    return PlainTextResponse(message, status_code=status)


# ------------------------------------------------------- Host and query
def host_name(header: str) -> str:
    """The name in a Host header: lower-cased, without the port or the
    brackets of an IPv6 address."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        name, _, port = value.partition(":")
        if port.isdigit() or not port:
            return name
    return value


class HostCheckMiddleware:
    """Answers 400 to a Host header that is not loopback nor configured.

    Without a login this is what stops DNS rebinding: a page on
    evil.example.com whose name now resolves to 127.0.0.1 reaches the server
    as a loopback connection, but its Host header still says evil.example.com.
    It applies to connections that arrived on loopback (the others are
    refused by the login rule, except open paths without personal data).
    With a login it applies only when ETRACK_WEB_ALLOWED_HOSTS is set. A
    request without a Host header (HTTP/1.0, never a browser) passes.
    """

    def __init__(self, app: ASGIApp, *, allowed: Iterable[str], login: bool) -> None:
        self.app = app
        self.allowed = frozenset(host_name(name) for name in allowed)
        self.login = login

    def _applies(self, scope: Scope) -> bool:
        if self.login:
            return bool(self.allowed)
        server = scope.get("server")
        return server is not None and is_loopback(str(server[0]))

    def allows(self, header: str) -> bool:
        name = host_name(header)
        return is_loopback(name) or name in self.allowed or "*" in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self._applies(scope):
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("host")
        if header is None or self.allows(header):
            await self.app(scope, receive, send)
            return
        server = scope.get("server") or ("", None)
        port = f":{server[1]}" if server[1] else ""
        shown = header[:80]
        logger.warning("refused Host header %r (not loopback nor ETRACK_WEB_ALLOWED_HOSTS)", shown)
        message = (
            f"Host {shown!r} is not served here: open http://127.0.0.1{port}/ or "
            f"http://localhost{port}/, or add the name to ETRACK_WEB_ALLOWED_HOSTS"
        )
        await _refuse(scope, 400, message)(scope, receive, send)


def bad_query_text(query_string: bytes) -> str | None:
    """What is wrong with a query string holding a control character, or None.

    Such a character is never meaningful in a parameter, and PostgreSQL
    refuses a NUL in text: without this check it surfaced as a 500."""
    text = query_string.decode("latin-1")
    for name, value in parse_qsl(text, keep_blank_values=True):
        for char in name + value:
            if unicodedata.category(char) == "Cc":
                return (
                    f"query parameter {name[:40]!r} contains the control character "
                    f"U+{ord(char):04X}: send printable text only"
                )
    return None


class QueryTextMiddleware:
    """400, naming the parameter, for a control character in the query."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = bad_query_text(scope.get("query_string", b""))
            if problem is not None:
                await _refuse(scope, 400, problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def safe_next(value: str | None) -> str:
    """A same-site path to return to after login (never another host)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


# --------------------------------------------------------------- headers
def tile_source(tile_url: str) -> str | None:
    """The CSP source allowing the tile server: https://{s}.tile.x/... -> https://*.tile.x."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url.replace("{s}", "tilesubdomain"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.replace("tilesubdomain", "*")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def content_security_policy(tile_url: str) -> str:
    images = " ".join(s for s in ("'self'", "data:", tile_source(tile_url)) if s)
    return "; ".join(
        (
            "default-src 'self'",
            f"img-src {images}",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP answer; personal data is never cached."""

    def __init__(self, app: ASGIApp, *, tile_url: str) -> None:
        self.app = app
        self.headers: list[tuple[str, str]] = [
            ("content-security-policy", content_security_policy(tile_url)),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "same-origin"),
            ("permissions-policy", "geolocation=(), camera=(), microphone=()"),
            ("cross-origin-opener-policy", "same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers:
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("strict-transport-security", "max-age=31536000")
                if static:
                    headers.setdefault("cache-control", "public, max-age=3600")
                else:
                    headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def bind_hosts(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The hosts a server process was told to listen on, as far as its command
    line says: gunicorn's -b/--bind (also in GUNICORN_CMD_ARGS), uvicorn's
    --host. Empty when it does not say (then nothing is assumed)."""
    words = [*argv[1:], *shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))]
    found: list[str] = []
    for index, word in enumerate(words):
        value: str | None = None
        for flag in ("-b", "--bind", "--host"):
            if word == flag and index + 1 < len(words):
                value = words[index + 1]
            elif word.startswith(flag + "="):
                value = word[len(flag) + 1 :]
            elif flag == "-b" and word.startswith("-b") and len(word) > 2 and word[2] != "-":
                value = word[2:]
        if value is None:
            continue
        if value.startswith(("unix:", "fd://")):
            continue
        found.append(host_name(value) if not value.startswith("[") else value[1:].partition("]")[0])
    return found


def remote_without_login_warning(
    config: AuthConfig, argv: Sequence[str], environ: Mapping[str, str]
) -> str | None:
    """The line to log at start when this process listens on a network
    address without a login configured (connections from there get 403)."""
    if config.configured:
        return None
    remote = [host for host in bind_hosts(argv, environ) if not is_loopback(host)]
    if not remote:
        return None
    return (
        f"listening on {', '.join(remote)} without ETRACK_WEB_USER/ETRACK_WEB_PASSWORD: "
        "connections over the network are refused (403) until both are set; "
        "only this machine (127.0.0.1) is served"
    )


def loopback_hosts(hosts: Iterable[str]) -> bool:
    return all(is_loopback(h) for h in hosts)
