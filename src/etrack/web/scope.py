"""Which vehicles a web request may see.

The request's principal (etrack.web.auth) brings its scope: the user's
accounts and fleets, within ETRACK_WEB_ACCOUNTS (which restricts the whole
server), or a share link's one plate. `?account=NAME` narrows a page to one
account (never widening the scope). The scope is set per request by
`AccountScopeMiddleware` and applied by the Reader to every row it returns,
so no handler can forget it.
"""

from __future__ import annotations

from contextvars import ContextVar
from urllib.parse import parse_qs, quote, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etrack.access.principal import EVERYTHING, Principal
from etrack.access.principal import Scope as VehicleScope

__all__ = [
    "AccountScopeMiddleware",
    "current_principal",
    "current_scope",
    "principal_var",
    "selected_account",
]

# Set by etrack.web.auth for each request: who is asking.
principal_var: ContextVar[Principal | None] = ContextVar("etrack_principal", default=None)


def current_principal() -> Principal:
    """The request's principal; outside a request (tests, the CLI) the local owner."""
    found = principal_var.get()
    return found if found is not None else Principal.local(None)


# An empty set of accounts: no account at all (an unknown name).
_scope: ContextVar[VehicleScope] = ContextVar("etrack_account_scope", default=EVERYTHING)
_selected: ContextVar[str | None] = ContextVar("etrack_selected_account", default=None)


def current_scope() -> VehicleScope:
    return _scope.get()


def selected_account() -> str | None:
    """The account picked with ?account= (for the pages' filter)."""
    return _selected.get()


COOKIE = "etrack_account"


def _cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, text = part.strip().partition("=")
                if key == COOKIE:
                    return unquote(text).strip() or None
    return None


class AccountScopeMiddleware:
    """Pure ASGI, so the scope set here is the one the handler's task sees."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        asked = query.get("account")
        # The choice sticks (a cookie), so following links keeps the filter;
        # ?account= (empty) clears it.
        picked = asked[0].strip() or None if asked is not None else _cookie(scope)
        scope_of_principal = current_principal().scope
        narrowed = scope_of_principal.within(frozenset({picked}) if picked else None)
        token = _scope.set(narrowed)
        chosen = _selected.set(picked)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and asked is not None:
                value = quote(picked or "")
                age = 365 * 86400 if picked else 0
                cookie = f"{COOKIE}={value}; Path=/; Max-Age={age}; SameSite=Lax; HttpOnly"
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())],
                }
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie)
        finally:
            _scope.reset(token)
            _selected.reset(chosen)
