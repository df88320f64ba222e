"""The login throttle, CSRF, the Host and query checks, and the headers
every answer carries. Who a request is: etrack.web.auth.

Vehicle positions are personal data (LGPD). Rules:

- Users log in (etrack.web.auth); without any user only connections that
  arrived on a loopback address are served. The address is the connection's
  local one, taken from the socket (uvicorn's scope["server"]; under gunicorn,
  web_ui.py copies it from the socket), never from the Host header.
- Passwords are argon2 hashes (etrack.access.passwords); ETRACK_WEB_PASSWORD
  may hold a `pbkdf2_sha256$iterations$salt$hash` (`hash_password`) or plain
  text; either way compared in constant time. The check runs in a thread, a
  few at a time (`LoginGuard`): the hash is slow on purpose and would
  otherwise stall the event loop for everyone.
- Failed logins slow down, never lock out (`LoginGuard`): an address that
  failed ETRACK_WEB_LOGIN_FREE_FAILURES times waits ETRACK_WEB_LOGIN_LOCK_S
  between attempts, doubling; a login's own failures only add a short delay,
  so its owner still gets in from another address.
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
from urllib.parse import parse_qsl, urlsplit

import anyio
import anyio.to_thread
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etrack.access.passwords import PBKDF2_ITERATIONS, hash_pbkdf2, verify_password
from etrack.config import Settings
from etrack.store.users import User, UserSecrets
from etrack.web import i18n
from etrack.web.metrics import WebMetrics

__all__ = [
    "AuthConfig",
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

SESSION_CSRF = "csrf"


# -------------------------------------------------------------- passwords
def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The value to put in ETRACK_WEB_PASSWORD instead of the password itself."""
    return hash_pbkdf2(password, iterations=iterations)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    user: str | None
    password: str | None

    @property
    def configured(self) -> bool:
        return bool(self.user and self.password)


def auth_config(settings: Settings) -> AuthConfig:
    password = settings.etrack_web_password
    return AuthConfig(
        user=settings.etrack_web_user or None,
        password=(password.get_secret_value() if password is not None else None) or None,
    )


# ------------------------------------------------------ login throttling
LOCKED_MESSAGE = "Muitas tentativas de login falharam. Tente novamente em {seconds} s."
# A login name's own failures slow its every check by up to this much, from
# any address; they never refuse it (the owner must still get in).
USER_DELAY_MAX_S = 1.0
Verify = Callable[[str, str], "UserSecrets | None"]


@dataclass(frozen=True, slots=True)
class LoginResult:
    ok: bool
    # > 0: this address (or this login from this address) must wait this
    # long; the password was not checked at all.
    retry_after: float = 0.0
    user: User | None = None

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
    """Checks passwords off the event loop, `threads` at a time, and slows
    guessing down without ever locking the owner out.

    Kept in memory, per web process (a small table of failures by key, at
    most MAX_KEYS): after `free` failures from a client address (any login),
    or of one login from one address, that key must wait `lock_s` before the
    next attempt, doubled by each further failure up to `lock_max_s`;
    attempts while waiting are refused unchecked (429 with Retry-After; they
    cost no CPU and do not extend the wait). A login's failures from every
    address only add a delay of up to USER_DELAY_MAX_S to its checks: the
    right password from another address still gets in. Failures older than
    `lock_max_s` are forgotten; a success forgets its keys.
    """

    # An attacker inventing user names must not grow this without bound.
    MAX_KEYS = 10_000

    def __init__(
        self,
        verify: Verify,
        *,
        free: int = 5,
        lock_s: float = 1.0,
        lock_max_s: float = 900.0,
        threads: int = 2,
        metrics: WebMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verify = verify
        self.free = free
        self.lock_s = lock_s
        self.lock_max_s = lock_max_s
        self.metrics = metrics
        self.clock = clock
        # Two limiters: `_turn` is held while a request re-checks the wait and
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
    def from_settings(
        cls, settings: Settings, verify: Verify, metrics: WebMetrics | None = None
    ) -> LoginGuard:
        return cls(
            verify,
            free=settings.etrack_web_login_free_failures,
            lock_s=settings.etrack_web_login_lock_s,
            lock_max_s=settings.etrack_web_login_lock_max_s,
            threads=settings.etrack_web_password_threads,
            metrics=metrics,
        )

    @staticmethod
    def _keys(user: str, address: str) -> tuple[str, str]:
        """The keys that wait: the address, and this login from it."""
        # repr(): the user name is the client's text, and goes into the log.
        return f"address {address[:64]}", f"user {user.lower()[:64]!r} from {address[:64]}"

    @staticmethod
    def _user_key(user: str) -> str:
        return f"user {user.lower()[:64]!r}"

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until this user, from this address, may try again (0: now)."""
        now = self.clock()
        waits = [
            found.locked_until - now
            for key in self._keys(user, address)
            if (found := self._failures.get(key)) is not None
        ]
        return max([0.0, *waits])

    def delay(self, user: str) -> float:
        """The slow-down of this login's next check, from any address."""
        found = self._failures.get(self._user_key(user))
        if found is None or found.count < self.free or self.clock() - found.last > self.lock_max_s:
            return 0.0
        return min(USER_DELAY_MAX_S, 0.05 * 2.0 ** min(found.count - self.free, 10))

    @property
    def waiting(self) -> int:
        """Requests waiting for a password thread."""
        return int(self._turn.statistics().tasks_waiting)

    def locked_count(self) -> float:
        now = self.clock()
        return float(sum(1 for f in self._failures.values() if f.locked_until > now))

    async def check(self, user: str, password: str, address: str, *, via: str) -> LoginResult:
        """Whether `user`/`password` is a login; `via` (form, basic) labels the metrics."""
        wait = self.retry_after(user, address)
        if wait > 0:
            return self._refused(via, wait)
        slow = self.delay(user)
        if slow > 0:
            # The slow-down itself, not a wait for something: guessing one
            # login from many addresses goes no faster than this.
            await anyio.sleep(slow)
        async with self._turn:
            # A wait may have started while this request waited its turn.
            wait = self.retry_after(user, address)
            if wait > 0:
                return self._refused(via, wait)
            self.running += 1
            self.peak = max(self.peak, self.running)
            try:
                found = await anyio.to_thread.run_sync(
                    self.verify, user, password, limiter=self._threads
                )
            finally:
                self.running -= 1
        if found is not None and found.user.active:
            for key in (*self._keys(user, address), self._user_key(user)):
                self._failures.pop(key, None)
            return LoginResult(True, user=found.user)
        self._failed(user, address, via)
        return LoginResult(False)

    def note_failure(self, user: str, address: str, *, via: str) -> None:
        """A failure found after the password (a wrong second-factor code)."""
        self._failed(user, address, via)

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
        waiting = self._keys(user, address)
        for key in (*waiting, self._user_key(user)):
            found = self._failures.setdefault(key, _Failures())
            if now - found.last > self.lock_max_s:
                found.count = 0
            found.count += 1
            found.last = now
            if key in waiting and found.count >= self.free:
                # min(): 2 ** a large count would overflow the float.
                exponent = min(found.count - self.free, 40)
                lock = min(self.lock_max_s, self.lock_s * 2.0**exponent)
                found.locked_until = now + lock
                locked.append(f"{key} waits {lock:g} s after {found.count} failures")
        if locked:
            logger.warning("web login (%s) slowed down: %s", via, "; ".join(locked))

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


def _wants_json(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith("/api")


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
