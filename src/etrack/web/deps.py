"""What every handler gets from the request: the app's shared context (one
per app, built by etrack.web.app) and the language of the answer.

Route modules depend on this module, never on the app factory: the factory
imports them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request

from etrack.access.principal import Principal
from etrack.config import Settings, load_accounts
from etrack.errors import AccountsError
from etrack.store import db
from etrack.store.rates import account_key
from etrack.trips.params import RouteParams
from etrack.web import i18n
from etrack.web.auth import Directory, current_principal
from etrack.web.jobs import JobsClient
from etrack.web.metrics import WebMetrics
from etrack.web.reader import BodyCache, FleetCache, Reader, open_pool
from etrack.web.scheduler import EmbeddedScheduler
from etrack.web.security import LoginGuard

__all__ = [
    "LANG_COOKIE",
    "Web",
    "WebContext",
    "Who",
    "context",
    "language",
    "managed_plates",
    "principal",
    "require_every_account",
]

LANG_COOKIE = i18n.LANG_COOKIE
T = TypeVar("T")


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
    # The login rule's guard (set by the app factory): the login form and the
    # HTTP Basic check share its lock-outs and its password threads.
    login_guard: LoginGuard | None = None
    directory: Directory | None = None
    routes: BodyCache = field(default_factory=BodyCache)
    pool: db.AsyncPool | None = None
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

    def account_logins(self) -> dict[str, str]:
        """Account name -> the key of its API pace row (its login)."""
        try:
            accounts = load_accounts(self.settings)
        except AccountsError:
            return {self.fallback_account: account_key(self.settings.etrac_user)}
        return {account.name: account_key(account.user) for account in accounts}

    async def in_db(self, work: Callable[[db.Conn], T]) -> T:
        """`work` (a sync store function) over one short connection of its
        own, in a thread, committed at the end: for the rare writes of the
        pages and the API (rules, fences), which share the CLI's store code
        rather than a second, async copy of its SQL."""

        def run() -> T:
            with db.connection(self.target) as conn:
                return work(conn)

        return await asyncio.to_thread(run)

    async def fleet(self) -> FleetCache:
        await self.reader()
        assert self._fleet is not None
        return self._fleet

    async def close(self) -> None:
        pool, self.pool, self._reader, self._fleet = self.pool, None, None, None
        if pool is not None:
            await pool.close()


def require_every_account(web: WebContext, what: str, *, managers: bool = False) -> None:
    """403 unless this request reaches every account: `what` (drivers) is
    shared by all of them, and changing it changes every account's data.

    With `managers`, a manager of some fleets may change it too (fences:
    places, not personal data; the visits they give stay in each scope)."""
    if web.settings.web_accounts is not None:
        raise HTTPException(
            403, f"{what} are shared by every account: this server may not change them"
        )
    who = current_principal()
    if not who.scope.everything and not (managers and who.role == "manager"):
        raise HTTPException(
            403, f"{what} are shared by every account: only an admin may change them"
        )


async def managed_plates(web: WebContext) -> frozenset[str] | None:
    """The plates the request's user may manage (rules, schedules): their
    scope, not narrowed by the page's ?account= view filter (a cookie that
    must not take rules away from them); None: every vehicle."""
    scope = current_principal().scope
    if scope.everything:
        return None
    return await (await web.reader()).plates_of(scope)


def principal() -> Principal:
    return current_principal()


Who = Annotated[Principal, Depends(principal)]


def context(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


Web = Annotated[WebContext, Depends(context)]


def language(request: Request, web: WebContext) -> str:
    """?lang=, else the language cookie, else ETRACK_UI_LANG."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return i18n.pick_language(asked, web.default_lang)
