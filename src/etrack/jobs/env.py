"""What etrack's jobs run with: the settings, the database, the worker's
timings and the resources the jobs of one process share, carried by the
Procrastinate App (`EtrackApp.env`); and the few ways a job talks to the
database through that App.

Every other module of the jobs layer builds on this one; the App with its
tasks is put together in etrack.jobs.app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from procrastinate import App, JobContext, PsycopgConnector
from procrastinate import exceptions as pexc

from etrack.collect import Collector
from etrack.config import Account, Settings, load_accounts, select_accounts
from etrack.errors import DatabaseUnavailable
from etrack.provider.client import EtracClient
from etrack.provider.ratelimit import PgRateLimiter, account_key
from etrack.store import db
from etrack.store.queries import query

__all__ = [
    "EtrackApp",
    "JobEnv",
    "JobTuning",
    "fetch_all",
    "fetch_one",
    "job_app",
    "load_tuning",
    "run_sql",
    "session_lock",
]


@dataclass(frozen=True, slots=True)
class JobTuning:
    """Worker timings (ETRACK_JOB_* settings). The defaults suit production;
    tests shorten them."""

    poll_s: float
    heartbeat_s: float
    stalled_after_s: float
    recover_cron: str


def load_tuning(settings: Settings) -> JobTuning:
    return JobTuning(
        poll_s=settings.etrack_job_poll_s,
        heartbeat_s=settings.etrack_job_heartbeat_s,
        stalled_after_s=settings.etrack_job_stalled_after_s,
        recover_cron=settings.etrack_job_recover_cron,
    )


class JobEnv:
    """What etrack's tasks need, shared by the jobs of one worker process."""

    def __init__(
        self,
        settings: Settings,
        target: db.Target,
        tuning: JobTuning | None = None,
        *,
        pool_size: int = 4,
    ) -> None:
        self.settings = settings
        self.target = target
        self.tuning = tuning or load_tuning(settings)
        self.pool_size = pool_size
        # One shared collector per account (own client, own limiter row),
        # rebuilt when the account's entry in the accounts file changes.
        self._collectors: dict[str, tuple[str, Collector, PgRateLimiter]] = {}
        self._retired: list[tuple[str, Collector, PgRateLimiter]] = []
        self._collector_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"JobEnv({self.target!r})"

    def accounts(self, name: str | None = None) -> list[Account]:
        """The configured accounts (the file is read again each time), or
        the one named."""
        return select_accounts(load_accounts(self.settings), name)

    def account(self, name: str | None = None) -> Account:
        """One account by name; None: the first (the only one without a file)."""
        accounts = self.accounts(name)
        return accounts[0]

    def limiter(
        self, account: Account | None = None, *, min_interval: float | None = None
    ) -> PgRateLimiter:
        """A new limiter on the account's shared row (one per client)."""
        current = self.settings.for_account(account or self.account())
        pause = current.etrac_rate_sleep if min_interval is None else min_interval
        return PgRateLimiter(
            self.target,
            account_key(current.etrac_user),
            current.etrac_rate_limit,
            min_interval=pause,
            bounds=current.pace_bounds,
        )

    @asynccontextmanager
    async def new_collector(
        self,
        account: Account | None = None,
        *,
        min_interval: float | None = None,
        pool_size: int | None = None,
    ) -> AsyncIterator[Collector]:
        """A Collector of its own (own summary), paced by the shared limiter."""
        account = account or self.account()
        limiter = self.limiter(account, min_interval=min_interval)
        current = self.settings.for_account(account)
        client = EtracClient.from_settings(current, limiter=limiter)
        pool = await asyncio.to_thread(
            db.make_pool, self.target, min_size=1, max_size=pool_size or self.pool_size
        )
        try:
            yield Collector(current, client, pool, account=account.name)
        finally:
            await client.aclose()
            await limiter.aclose()
            await asyncio.to_thread(pool.close)

    async def shared_collector(self, account: Account | None = None) -> Collector:
        """The process-wide Collector of one account for the worker's short
        jobs (partitions, fetch latest). Its summary mixes jobs: read the
        returned stats instead."""
        account = account or self.account()
        if self._collector_lock is None:
            self._collector_lock = asyncio.Lock()
        async with self._collector_lock:
            held = self._collectors.get(account.name)
            if held is not None and held[0] == account.fingerprint:
                return held[1]
            if held is not None:
                # Jobs may still be using it: closed with the env, not now.
                self._retired.append(held)
            limiter = self.limiter(account)
            current = self.settings.for_account(account)
            client = EtracClient.from_settings(current, limiter=limiter)
            pool = await asyncio.to_thread(
                db.make_pool, self.target, min_size=1, max_size=self.pool_size
            )
            collector = Collector(current, client, pool, account=account.name)
            self._collectors[account.name] = (account.fingerprint, collector, limiter)
            return collector

    def pace(self) -> float | None:
        """The API pace this process sends at now (requests/s, summed over
        its accounts), as its limiters last saw it; None before any request."""
        seen = [limiter.rate for _, _, limiter in self._collectors.values() if limiter.used]
        return sum(seen) if seen else None

    @staticmethod
    async def _close(collector: Collector, limiter: PgRateLimiter) -> None:
        await collector.client.aclose()
        await asyncio.to_thread(collector.pool.close)
        await limiter.aclose()

    async def aclose(self) -> None:
        held = [*self._collectors.values(), *self._retired]
        self._collectors, self._retired = {}, []
        for _, collector, limiter in held:
            await self._close(collector, limiter)


class EtrackApp(App):
    """A Procrastinate App that carries etrack's JobEnv for its tasks."""

    def __init__(self, *, env: JobEnv, connector: PsycopgConnector) -> None:
        super().__init__(connector=connector)
        self.env = env


def job_app(context: JobContext) -> EtrackApp:
    """The App a task or a worker middleware runs in (etrack.jobs.app makes
    only EtrackApps)."""
    app = context.app
    assert isinstance(app, EtrackApp), type(app)
    return app


@asynccontextmanager
async def session_lock(
    target: db.Target, lock_id: int, *, wait: bool = False
) -> AsyncIterator[bool]:
    """Hold the advisory lock `lock_id` for the block; yields whether we got it.

    A session lock on a dedicated connection, not a pooled one: a pooler
    could hand the session (and the lock) to someone else, and a pooled
    connection outlives the block. Closing the connection releases it, and
    so does the server when the process dies.
    """
    conn = await db.connect_async(target, autocommit=True)
    try:
        name = "jobs_advisory_lock" if wait else "jobs_try_advisory_lock"
        cursor = await conn.execute(query(name).encode(), {"lock_id": lock_id})
        row = await cursor.fetchone()
        yield bool(row[0]) if row and row[0] is not None else wait
    finally:
        await conn.close()


# ---------------------------------------------------------- named SQL blocks
@contextmanager
def _outage_is_unavailable(app: EtrackApp) -> Iterator[None]:
    # Procrastinate's connector wraps every psycopg error in its own
    # ConnectorException. Behind it, an outage (the server went away, the pool
    # timed out) is converted here, once, like store.db does for our own
    # connections: the worker retries the job and the web answers 503.
    try:
        yield
    except pexc.ConnectorException as exc:
        cause = exc.__cause__
        if isinstance(cause, psycopg.OperationalError) and db.is_outage(cause):
            raise DatabaseUnavailable(
                f"cannot reach PostgreSQL at {app.env.target.describe()}"
            ) from exc
        raise


async def fetch_all(app: EtrackApp, name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows (as dicts) of the named SQL block `name`, through the App's pool."""
    with _outage_is_unavailable(app):
        return await app.connector.execute_query_all_async(query(name), **params)


async def fetch_one(app: EtrackApp, name: str, **params: Any) -> dict[str, Any] | None:
    rows = await fetch_all(app, name, **params)
    return rows[0] if rows else None


async def run_sql(app: EtrackApp, name: str, **params: Any) -> None:
    with _outage_is_unavailable(app):
        await app.connector.execute_query_async(query(name), **params)
