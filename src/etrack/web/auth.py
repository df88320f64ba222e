"""Who a request is, and what it may do (docs/users.md).

`AuthMiddleware` turns every request into a `Principal` (etrack.access) or an
answer that says how to log in:

- No user in the database (and no ETRACK_WEB_USER/PASSWORD to create the
  first admin from): only loopback connections are served, as the owner of
  the machine (admin, every account of ETRACK_WEB_ACCOUNTS); anything over
  the network gets 403 saying how to add a user.
- Once any user exists nothing is served without a login, loopback included:
  a session from /login, HTTP Basic for scripts, `Authorization: Bearer` with
  an API token, or a share link's session (one vehicle-day, read only).
- The user row is read again on every request: a disabled user, a changed
  password (the session's epoch), a revoked or expired token stop at once.
- Sessions end after ETRACK_WEB_SESSION_IDLE_S unused or
  ETRACK_WEB_SESSION_MAX_S after the login.
- viewers and api users (unless granted) may only read: any other method is
  403; /users and /audit are for admins. A share link reaches its vehicle's
  day and nothing else (404 for the rest, as for a vehicle out of scope).

The principal and the audit actor are set in context variables for the
handler; the account scope middleware (etrack.web.scope) narrows the
principal's scope with the page's ?account= choice.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, cast
from urllib.parse import quote

from psycopg.rows import dict_row
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etrack.access.passwords import DUMMY_HASH, verify_password
from etrack.access.principal import Principal
from etrack.access.principal import Scope as VehicleScope
from etrack.access.users import bootstrap_admin, hash_token, rehash_if_needed
from etrack.config import Settings
from etrack.errors import DatabaseUnavailable
from etrack.store import db
from etrack.store import users as store
from etrack.store.audit import Actor, acting, audit_params
from etrack.store.queries import query
from etrack.store.users import User, share_from_row, user_from_row
from etrack.web import i18n
from etrack.web.scope import current_principal, principal_var
from etrack.web.security import (
    LOCKED_MESSAGE,
    AuthConfig,
    LoginGuard,
    LoginResult,
    auth_config,
    client_address,
    is_loopback,
    remote_refusal_page,
)

__all__ = [
    "ADMIN_PREFIXES",
    "SESSION_EPOCH",
    "SESSION_SHARE",
    "SESSION_UID",
    "AuthMiddleware",
    "Directory",
    "current_principal",
    "start_session",
]

logger = logging.getLogger("etrack.web.auth")

SESSION_UID = "uid"
SESSION_EPOCH = "epoch"
SESSION_STARTED = "iat"
SESSION_SEEN = "seen"
SESSION_SHARE = "share"
# The session's last use is written back at most this often (each write
# sends the cookie again).
SEEN_EVERY_S = 60
# A token's last use (and its token.use audit row) is written at most this
# often (as sql/users.sql tokens_touch).
TOKEN_TOUCH_S = 60
ADMIN_PREFIXES = ("/users", "/audit", "/api/users", "/api/audit")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a read-only principal may still post: leaving, its own password.
SELF_SERVICE = frozenset({"/logout", "/account/password"})
OPEN_PREFIXES = (
    "/static/",
    "/login",
    "/healthz",
    "/metrics",
    "/favicon.ico",
    "/api/openapi.json",
    "/share/",
)
OPEN_PATHS = frozenset({"/login", "/openapi.json", "/docs"})


def _now() -> float:
    """The wall clock of the sessions' timeouts (a seam for their tests)."""
    return time.time()


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


# ------------------------------------------------------------- directory
class Directory:
    """The users as the web sees them: reads over the app's async pool (one
    short query per request), the password check in a thread (argon2 is
    slow on purpose) over a connection of its own."""

    def __init__(self, settings: Settings, target: db.Target, pool: Any) -> None:
        self.settings = settings
        self.target = target
        # A callable returning the opened pool (the web context opens it lazily).
        self._pool = pool
        self.env: AuthConfig = auth_config(settings)
        self._any_users: tuple[float, bool] | None = None
        self._bootstrapped = False

    async def _rows(self, name: str, params: Mapping[str, object]) -> list[dict[str, Any]]:
        pool = await self._pool()
        async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query(name), params)
            if cur.description is None:
                return []
            return cast(list[dict[str, Any]], await cur.fetchall())

    async def any_users(self) -> bool:
        """Whether a login is needed (kept 2 s; the first call creates the
        admin of ETRACK_WEB_USER/PASSWORD when there is no user yet)."""
        if not self._bootstrapped and self.env.configured:
            await asyncio.to_thread(self._bootstrap)
            self._bootstrapped = True
        cached = self._any_users
        if cached is not None and (cached[1] or time.monotonic() - cached[0] < 2.0):
            return cached[1]
        rows = await self._rows("users_count", {})
        found = bool(rows and int(rows[0]["n"]) > 0)
        self._any_users = (time.monotonic(), found)
        return found

    def _bootstrap(self) -> None:
        assert self.env.user is not None
        assert self.env.password is not None
        with db.connection(self.target) as conn, acting(Actor("env:ETRACK_WEB_USER", "local")):
            if bootstrap_admin(conn, self.env.user, self.env.password):
                logger.info("created the admin %s from ETRACK_WEB_USER", self.env.user.lower())

    async def user(self, user_id: int) -> User | None:
        rows = await self._rows("users_get_by_id", {"id": user_id})
        return user_from_row(rows[0]) if rows else None

    async def token_user(self, clear: str, address: str) -> User | None:
        rows = await self._rows("tokens_owner", {"token_hash": hash_token(clear)})
        if not rows:
            return None
        user = user_from_row(rows[0])
        token_id = int(rows[0]["token_id"])
        used = rows[0]["token_used_at"]
        if used is not None and _now() - used.timestamp() < TOKEN_TOUCH_S:
            # Its last use is recent: no write (a polling script calls often).
            return user
        touched = await self._rows("tokens_touch", {"id": token_id, "address": address})
        if touched:
            # Once a minute per token, as its last use: a polling script does
            # not write a row per call.
            await self.audit("token.use", str(token_id), True, {}, Actor(user.login, address))
        return user

    async def share(self, clear: str) -> store.ShareLink | None:
        rows = await self._rows("shares_get", {"token_hash": hash_token(clear)})
        return share_from_row(rows[0]) if rows else None

    async def share_live(self, share_id: int) -> store.ShareLink | None:
        rows = await self._rows("shares_by_id", {"id": share_id})
        if not rows:
            return None
        link = share_from_row(rows[0])
        if link.revoked_at is not None or link.expires_at.timestamp() <= _now():
            return None
        return link

    async def audit(
        self,
        action: str,
        target: str | None,
        ok: bool,
        detail: Mapping[str, object] | None,
        actor: Actor,
    ) -> None:
        await self._rows("audit_add", audit_params(action, target, ok, detail, actor))

    async def touch_login(self, user_id: int) -> None:
        await self._rows("users_touch_login", {"id": user_id})

    def check_password(self, login: str, password: str) -> store.UserSecrets | None:
        """The user when `password` is theirs (sync: runs in a password thread).

        The login of ETRACK_WEB_USER, while ETRACK_WEB_PASSWORD is set, has
        that password (the single-admin shortcut: change it there). An
        unknown login costs a verification too, so timing tells nothing."""
        name = login.strip().lower()[:200]
        with db.connection(self.target) as conn:
            found = store.get_user(conn, name)
            env_login = self.env.configured and self.env.user is not None
            if env_login and hmac.compare_digest(name, (self.env.user or "").lower()):
                assert self.env.password is not None
                ok = verify_password(password, self.env.password)
                return found if ok and found is not None else None
            if found is None or found.password_hash is None:
                verify_password(password, DUMMY_HASH)
                return None
            if not verify_password(password, found.password_hash):
                return None
            rehash_if_needed(conn, found.user, password, found.password_hash)
            return found


# --------------------------------------------------------------- sessions
def start_session(connection: HTTPConnection, user: User) -> None:
    """A fresh session for `user` (a new cookie: no fixation)."""
    now = int(_now())
    connection.session.clear()
    connection.session.update(
        {SESSION_UID: user.id, SESSION_EPOCH: user.session_epoch, SESSION_STARTED: now,
         SESSION_SEEN: now}
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class ShareSession:
    id: int
    placa: str
    day: date


def share_paths(placa: str, day: date) -> tuple[str, str]:
    """The page and the API prefix one share link reaches."""
    quoted = quote(placa, safe="")
    return f"/vehicles/{quoted}/{day.isoformat()}", f"/api/vehicles/{quoted}/days/{day.isoformat()}"


def _share_allows(path: str, placa: str, day: date) -> bool:
    page, api = share_paths(placa, day)
    for variant in (path, quote(path, safe="/")):
        if variant in (page, api) or variant.startswith(api + "/"):
            return True
    return False


# ------------------------------------------------------------- middleware
class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        directory: Directory,
        guard: LoginGuard,
        server_accounts: frozenset[str] | None,
        idle_s: int,
        max_s: int,
        default_lang: str = i18n.DEFAULT_LANGUAGE,
        unavailable: Callable[[Scope], Response],
    ) -> None:
        self.app = app
        # The app's own 503 (its error page in the UI's language).
        self.unavailable = unavailable
        self.directory = directory
        self.guard = guard
        self.server_accounts = server_accounts
        self.idle_s = idle_s
        self.max_s = max_s
        self.default_lang = default_lang
        self.warned_remote = False
        # Basic headers proven right (hash -> user id): argon2 is slow on
        # purpose and a script sends the same header with every call. The
        # user row is still read on every request.
        self._basic_ok: dict[bytes, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if is_open(scope["path"]):
            token = principal_var.set(await self._open_principal(HTTPConnection(scope)))
            try:
                await self.app(scope, receive, send)
            finally:
                principal_var.reset(token)
            return
        connection = HTTPConnection(scope)
        try:
            found = await self._principal(connection)
        except DatabaseUnavailable as exc:
            # Answered here, outside the app's error handlers: the same 503
            # they give (the error's own message names the server: log only).
            logger.warning("unavailable for %s: %s", scope.get("path", ""), exc)
            found = self.unavailable(scope)
        if isinstance(found, Response):
            await found(scope, receive, send)
            return
        refusal = self._authorize(found, connection)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        token = principal_var.set(found)
        try:
            with acting(Actor(found.name, client_address(scope))):
                await self.app(scope, receive, send)
        finally:
            principal_var.reset(token)

    # -- who
    async def _open_principal(self, connection: HTTPConnection) -> Principal:
        """Who reads an open page (no login needed): the logged-in user when
        the request carries a session or a token, so its few rows (the
        accounts of /healthz, the account filter) stay in their scope;
        without one, nobody: no account at all once users exist, the
        server's accounts before (the owner of the machine)."""
        server = VehicleScope(self.server_accounts)
        if connection.url.path.startswith("/static/"):
            return Principal("anonymous", "viewer", server, "local")
        try:
            if not await self.directory.any_users():
                return Principal("anonymous", "viewer", server, "local")
            header = connection.headers.get("authorization", "")
            if header[:7].lower() == "bearer ":
                address = client_address(connection.scope)
                user = await self.directory.token_user(header[7:].strip(), address)
                if user is not None:
                    return Principal.of_user(user, "token", self.server_accounts)
            else:
                found = await self._session(connection)
                if found is not None:
                    return found
        except DatabaseUnavailable:
            # /healthz must answer (degraded) through an outage.
            return Principal("anonymous", "viewer", server, "local")
        return Principal("anonymous", "viewer", VehicleScope(accounts=frozenset()), "local")

    async def _principal(self, connection: HTTPConnection) -> Principal | Response:
        scope = connection.scope
        if not await self.directory.any_users():
            server = scope.get("server")
            if server and is_loopback(str(server[0])):
                return Principal.local(self.server_accounts)
            return self._refuse_unconfigured(scope)
        header = connection.headers.get("authorization", "")
        address = client_address(scope)
        if header[:7].lower() == "bearer ":
            user = await self.directory.token_user(header[7:].strip(), address)
            if user is None:
                await self.directory.audit(
                    "token.refused", None, False, {}, Actor("anonymous", address)
                )
                return _unauthorized("the API token is unknown, revoked or expired")
            return Principal.of_user(user, "token", self.server_accounts)
        session = await self._session(connection)
        if session is not None:
            return session
        if header[:6].lower() == "basic ":
            return await self._basic(connection, header, address)
        return _challenge(connection)

    async def _session(self, connection: HTTPConnection) -> Principal | None:
        session = connection.session
        shared = session.get(SESSION_SHARE)
        if isinstance(shared, dict):
            link = await self.directory.share_live(int(shared.get("id", 0)))
            if link is None:
                session.clear()
                return None
            return Principal(
                f"share:{link.id}",
                "viewer",
                VehicleScope(plates=frozenset({link.placa})),
                "share",
                share_day=link.rota_date,
                share_id=link.id,
            )
        uid = session.get(SESSION_UID)
        if not isinstance(uid, int):
            return None
        now = int(_now())
        started = int(session.get(SESSION_STARTED, 0))
        seen = int(session.get(SESSION_SEEN, 0))
        user = await self.directory.user(uid)
        if (
            user is None
            or not user.active
            or user.session_epoch != session.get(SESSION_EPOCH)
            or now - started > self.max_s
            or now - seen > self.idle_s
        ):
            session.clear()
            return None
        if now - seen >= SEEN_EVERY_S:
            session[SESSION_SEEN] = now
        return Principal.of_user(user, "session", self.server_accounts)

    async def _basic(
        self, connection: HTTPConnection, header: str, address: str
    ) -> Principal | Response:
        key = hashlib.sha256(header.encode()).digest()
        known = self._basic_ok.get(key)
        if known is not None:
            user = await self.directory.user(known)
            if user is not None and user.active:
                return Principal.of_user(user, "basic", self.server_accounts)
            del self._basic_ok[key]
        try:
            login, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return _challenge(connection)
        result = await self.guard.check(login, password, address, via="basic")
        await self.directory.audit(
            "login.basic"
            if result.ok
            else ("login.throttled" if result.locked else "login.failure"),
            login.strip().lower()[:200],
            result.ok,
            {"via": "basic"},
            Actor(login.strip().lower()[:200] if result.ok else "anonymous", address),
        )
        if result.locked:
            return _locked(connection.scope, result)
        if not result.ok or result.user is None:
            return _challenge(connection)
        if result.user.has_totp:
            return _unauthorized(
                "this account has a second factor: log in at /login, or use an API token"
            )
        if len(self._basic_ok) > 1000:
            self._basic_ok.clear()
        self._basic_ok[key] = result.user.id
        return Principal.of_user(result.user, "basic", self.server_accounts)

    # -- what
    def _authorize(self, principal: Principal, connection: HTTPConnection) -> Response | None:
        path = connection.url.path
        method = connection.scope.get("method", "GET")
        if principal.via == "share":
            assert principal.share_day is not None
            assert principal.scope.plates is not None
            (placa,) = tuple(principal.scope.plates)
            if method not in READ_METHODS or not _share_allows(path, placa, principal.share_day):
                return _refuse(connection.scope, 404, "not found")
            return None
        if path.startswith(ADMIN_PREFIXES) and not principal.is_admin:
            return _refuse(
                connection.scope, 403, "only an admin may see or change users and the audit"
            )
        if method not in READ_METHODS and path not in SELF_SERVICE and not principal.may_write:
            return _refuse(
                connection.scope,
                403,
                f"read only: a {principal.role} may look, not change anything",
            )
        return None

    def _refuse_unconfigured(self, scope: Scope) -> Response:
        if not self.warned_remote:
            self.warned_remote = True
            server = scope.get("server")
            logger.warning(
                "refused %s from %s: a connection over the network (to %s) needs a login; "
                "add a user (etrack users add LOGIN --role admin) or set ETRACK_WEB_USER and "
                "ETRACK_WEB_PASSWORD",
                str(scope.get("path", ""))[:80],
                client_address(scope),
                str(server[0]) if server else "an unknown address",
            )
        message = (
            "login required: this server has no user yet and answers only loopback "
            "connections; add one (etrack users add LOGIN --role admin) or set ETRACK_WEB_USER "
            "and ETRACK_WEB_PASSWORD for access over the network"
        )
        if _wants_json(scope):
            return JSONResponse({"detail": message}, status_code=403)
        connection = HTTPConnection(scope)
        asked = connection.query_params.get("lang") or connection.cookies.get(i18n.LANG_COOKIE)
        return remote_refusal_page(i18n.pick_language(asked, self.default_lang))


def _wants_json(scope: Scope) -> bool:
    return str(scope.get("path", "")).startswith("/api")


def _refuse(scope: Scope, status: int, message: str) -> Response:
    if _wants_json(scope):
        return JSONResponse({"detail": message}, status_code=status)
    return PlainTextResponse(message, status_code=status)


def _unauthorized(message: str) -> Response:
    return JSONResponse(
        {"detail": message},
        status_code=401,
        headers={
            "WWW-Authenticate": 'Bearer realm="etrack", Basic realm="etrack", charset="UTF-8"'
        },
    )


def _locked(scope: Scope, result: LoginResult) -> Response:
    message = LOCKED_MESSAGE.format(seconds=result.retry_after_s)
    headers = {"Retry-After": str(result.retry_after_s)}
    if _wants_json(scope):
        return JSONResponse({"detail": message}, status_code=429, headers=headers)
    return PlainTextResponse(message, status_code=429, headers=headers)


def _challenge(connection: HTTPConnection) -> Response:
    if _wants_json(connection.scope):
        return JSONResponse(
            {"detail": "login required (session cookie from /login, HTTP Basic, or an API token)"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="etrack", charset="UTF-8"'},
        )
    target = connection.url.path + (f"?{connection.url.query}" if connection.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


_SECURE = re.compile(rb";\s*secure\b", re.IGNORECASE)


class SecureCookieMiddleware:
    """Marks every cookie Secure when the request came over https (directly,
    or through a proxy trusted with ETRACK_WEB_TRUST_PROXY)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value + b"; Secure")
                    if name.lower() == b"set-cookie" and not _SECURE.search(value)
                    else (name, value)
                    for name, value in message.get("headers", [])
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secure)
