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
- Forms carry a CSRF token bound to the session.
- /static, /login, /healthz, /metrics and /api/openapi.json are open: they
  hold no personal data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etrack.config import Settings

__all__ = [
    "AuthConfig",
    "AuthMiddleware",
    "SecurityHeadersMiddleware",
    "content_security_policy",
    "csrf_token",
    "hash_password",
    "is_loopback",
    "load_secret_key",
    "valid_csrf",
    "verify_password",
]

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

    def __init__(self, app: ASGIApp, config: AuthConfig) -> None:
        self.app = app
        self.config = config
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
            response = self._refuse_unconfigured(scope)
            await response(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        if connection.session.get(SESSION_USER) == self.config.user or self._basic(connection):
            await self.app(scope, receive, send)
            return
        await self._challenge(connection)(scope, receive, send)

    @staticmethod
    def _open(path: str) -> bool:
        return path == "/login" or path.startswith(OPEN_PREFIXES)

    def _basic(self, connection: HTTPConnection) -> bool:
        header = connection.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        key = hashlib.sha256(header.encode()).digest()
        if key in self._basic_ok:
            return True
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        if not self.config.check(user, password):
            return False
        if len(self._basic_ok) > 1000:
            self._basic_ok.clear()
        self._basic_ok.add(key)
        return True

    @staticmethod
    def _refuse_unconfigured(scope: Scope) -> Response:
        message = (
            "login required: this server is reachable from the network; "
            "set ETRACK_WEB_USER and ETRACK_WEB_PASSWORD"
        )
        if _wants_json(scope):
            return JSONResponse({"detail": message}, status_code=403)
        return PlainTextResponse(message, status_code=403)

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


def loopback_hosts(hosts: Iterable[str]) -> bool:
    return all(is_loopback(h) for h in hosts)
