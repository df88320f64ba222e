"""Which accounts' vehicles a web request may see.

ETRACK_WEB_ACCOUNTS restricts the whole web server (UI and API) to some
accounts; `?account=NAME` narrows a page to one account (never widening the
restriction). The scope is set per request by `AccountScopeMiddleware` and
applied by the Reader to every row it returns, so no handler can forget it.
"""

from __future__ import annotations

from contextvars import ContextVar
from urllib.parse import parse_qs, quote, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccountScopeMiddleware", "current_scope", "selected_account"]

# None: every account. An empty set: no account at all (an unknown name).
_scope: ContextVar[frozenset[str] | None] = ContextVar("etrack_account_scope", default=None)
_selected: ContextVar[str | None] = ContextVar("etrack_selected_account", default=None)


def current_scope() -> frozenset[str] | None:
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

    def __init__(self, app: ASGIApp, *, allowed: frozenset[str] | None) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        asked = query.get("account")
        # The choice sticks (a cookie), so following links keeps the filter;
        # ?account= (empty) clears it.
        picked = asked[0].strip() or None if asked is not None else _cookie(scope)
        accounts = self.allowed
        if picked is not None:
            accounts = frozenset({picked}) & (self.allowed or frozenset({picked}))
        token = _scope.set(accounts)
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
