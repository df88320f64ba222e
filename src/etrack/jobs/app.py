"""The Procrastinate App of etrack, bound to one database and the settings.

`make_app(env, schedule=...)` builds an App whose tasks are etrack's
(etrack.jobs.tasks), whose connector talks to the etrack schema (Procrastinate's
tables live there too: `etrack db upgrade` installs them), and which carries
the `JobEnv`: settings, target, tuning, and the resources the tasks of one
process share (the API client under the shared rate limiter, a connection pool).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, LiteralString

import psycopg
from procrastinate import App, PsycopgConnector

from etrack.collect import Collector
from etrack.config import Settings
from etrack.provider.client import EtracClient
from etrack.provider.ratelimit import PgRateLimiter, account_key, async_conninfo
from etrack.store import db, migrations
from etrack.store.accounts import Account, load_accounts, select_accounts
from etrack.store.queries import query

__all__ = [
    "EtrackApp",
    "JobEnv",
    "JobTuning",
    "fetch_all",
    "fetch_one",
    "make_app",
    "open_app",
    "pool_sizes",
    "require_job_queue",
    "run_sql",
    "session_lock",
]

logger = logging.getLogger("etrack.jobs")


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
        current = (account or self.account()).settings
        pause = current.etrac_rate_sleep if min_interval is None else min_interval
        return PgRateLimiter(
            self.target,
            account_key(current.etrac_user),
            current.etrac_rate_limit,
            min_interval=pause,
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
        client = EtracClient.from_settings(account.settings, limiter=limiter)
        pool = await asyncio.to_thread(
            db.make_pool, self.target, min_size=1, max_size=pool_size or self.pool_size
        )
        try:
            yield Collector(account.settings, client, pool, account=account.name)
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
            client = EtracClient.from_settings(account.settings, limiter=limiter)
            pool = await asyncio.to_thread(
                db.make_pool, self.target, min_size=1, max_size=self.pool_size
            )
            collector = Collector(account.settings, client, pool, account=account.name)
            self._collectors[account.name] = (account.fingerprint, collector, limiter)
            return collector

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


def pool_sizes(concurrency: int) -> tuple[int, int]:
    """(collector pool, Procrastinate pool) sizes for `concurrency` jobs at once.

    Capped: jobs hold a connection only for short writes, and a few workers
    with a large concurrency must not exhaust the server's max_connections.
    """
    collector = min(concurrency, 8) + 1
    return collector, collector + 3


def make_app(env: JobEnv, *, schedule: bool = False, max_pool: int = 10) -> EtrackApp:
    """The App with etrack's tasks; `schedule` adds the periodic ones (only
    `etrack worker` needs them: a backfill's in-process worker must not
    schedule anything)."""
    from etrack.jobs import tasks

    connector = PsycopgConnector(
        conninfo=async_conninfo(env.target),
        min_size=1,
        max_size=max_pool,
        kwargs={"connect_timeout": 10},
    )
    app = EtrackApp(env=env, connector=connector)
    tasks.register(app, schedule=schedule)
    return app


@asynccontextmanager
async def open_app(
    env: JobEnv, *, schedule: bool = False, max_pool: int = 10
) -> AsyncIterator[EtrackApp]:
    """An opened App; the shared resources of `env` are closed with it."""
    await asyncio.to_thread(require_job_queue, env.target)
    app = make_app(env, schedule=schedule, max_pool=max_pool)
    try:
        async with app.open_async():
            yield app
    finally:
        await env.aclose()


def require_job_queue(target: db.Target) -> None:
    """Refuse to run jobs on a database without Procrastinate's tables."""
    with db.connection(target, autocommit=True) as conn:
        installed = migrations.job_queue_installed(conn)
    if not installed:
        raise db.SchemaNotCurrent(
            f"the job queue is not installed in schema {target.schema!r} of "
            f"{target.describe()}: run `etrack db upgrade`"
        )


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
    try:
        conn = await psycopg.AsyncConnection.connect(
            async_conninfo(target), autocommit=True, connect_timeout=10
        )
    except psycopg.OperationalError:
        raise db.DatabaseUnavailable(f"cannot reach PostgreSQL at {target.describe()}") from None
    try:
        name = "jobs_advisory_lock" if wait else "jobs_try_advisory_lock"
        cursor = await conn.execute(query(name).encode(), {"lock_id": lock_id})
        row = await cursor.fetchone()
        yield bool(row[0]) if row and row[0] is not None else wait
    finally:
        await conn.close()


# ------------------------------------------------------- queries.sql helpers
def _sql(name: str) -> LiteralString:
    # Procrastinate's connector only takes literal SQL; ours comes from the
    # package's queries.sql, never from input.
    return query(name)


async def fetch_all(app: App, name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows (as dicts) of the queries.sql block `name`, through the App's pool."""
    return await app.connector.execute_query_all_async(_sql(name), **params)


async def fetch_one(app: App, name: str, **params: Any) -> dict[str, Any] | None:
    rows = await fetch_all(app, name, **params)
    return rows[0] if rows else None


async def run_sql(app: App, name: str, **params: Any) -> None:
    await app.connector.execute_query_async(_sql(name), **params)
