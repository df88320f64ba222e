"""Per-account request pacing for the eTrac API.

The client only needs :class:`RateLimiter`: something to await before each
HTTP request, and something to tell when the provider answered 429. Two
implementations: :class:`PyrateLimiter` keeps its state in this process;
:class:`PgRateLimiter` keeps one account's budget in a `rate_limits` row so
every process on one database shares it.

The shared budget: `next_slot` is the first instant not yet promised to
anybody. Each request reserves a slot with a single `INSERT ... ON CONFLICT
DO UPDATE ... RETURNING` (an atomic read-modify-write under the row lock,
using the database clock so that the machines' clocks never matter) and then
sleeps until its slot. A 429 pushes `next_slot` forward for everybody.

`min_interval` is the seed's ETRAC_RATE_SLEEP / `--sleep`: a minimum pause
between two requests of *this* process, kept locally on purpose (it paces one
worker; the row paces the account).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any, Protocol, runtime_checkable

import psycopg
from pyrate_limiter import AbstractBucket, InMemoryBucket, Limiter, Rate

from etrack.errors import DatabaseUnavailable
from etrack.store import db
from etrack.store.queries import query

__all__ = [
    "PgRateLimiter",
    "PyrateLimiter",
    "RateLimiter",
    "UnlimitedLimiter",
    "account_key",
    "rate_for",
]


@runtime_checkable
class RateLimiter(Protocol):
    """What :class:`etrack.provider.client.EtracClient` needs from a limiter."""

    async def acquire(self) -> None:
        """Return once one more request may be sent."""

    def penalize(self, seconds: float) -> None:
        """Hold every request back for *seconds* (the provider said 429)."""


class UnlimitedLimiter:
    """A limiter that never waits, for tests and one-off scripts."""

    async def acquire(self) -> None:
        return None

    def penalize(self, seconds: float) -> None:
        return None

    def __repr__(self) -> str:
        return "UnlimitedLimiter()"


def rate_for(per_second: float) -> Rate:
    """Turn a possibly fractional requests-per-second into a pyrate ``Rate``.

    pyrate counts whole requests per window of milliseconds, so 2.5/s becomes
    2 per 800 ms and 0.5/s becomes 1 per 2000 ms: the same average, and bursts
    never exceed the whole part of the rate.
    """
    if not per_second > 0 or math.isinf(per_second):
        raise ValueError(f"expected a positive, finite requests/second, got {per_second!r}")
    limit = max(1, math.floor(per_second))
    return Rate(limit, max(1, round(limit * 1000 / per_second)))


class PyrateLimiter:
    """Requests per second for one account, plus a per-worker minimum gap.

    *per_second* is the account's budget, enforced by pyrate-limiter's
    sliding-window log: no window of the rate's interval ever sees more than
    its limit, whatever the number of asyncio tasks sharing this object (or,
    with a shared *bucket*, of processes sharing the bucket).

    *min_interval* is the seed's ``ETRAC_RATE_SLEEP``: a pause between two
    requests of this worker. It stays in this process on purpose: it paces
    one worker, while the rate paces the account.

    :meth:`penalize` makes every later :meth:`acquire` of this object wait
    until the provider's ``Retry-After`` has passed, so that one task's 429
    slows the whole worker down instead of each task discovering it alone.
    """

    def __init__(
        self,
        per_second: float,
        *,
        min_interval: float = 0.0,
        bucket: AbstractBucket | None = None,
        name: str = "etrac",
    ) -> None:
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval!r}")
        self._per_second = per_second
        self._min_interval = min_interval
        self._name = name
        self._limiter = Limiter(
            bucket if bucket is not None else InMemoryBucket([rate_for(per_second)])
        )
        self._next_at = 0.0
        self._paused_until = 0.0
        # An asyncio.Lock binds to the loop that first waits on it, and a sync
        # caller may drive us from successive loops: keep one lock per loop.
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (
            f"PyrateLimiter(per_second={self._per_second!r}, "
            f"min_interval={self._min_interval!r}, name={self._name!r})"
        )

    async def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        # One waiter at a time: the minimum gap and the pause must be measured
        # from the moment the previous request was actually let through.
        async with self._lock:
            # A penalty may arrive while we sleep: look again before going on.
            while True:
                wait = max(self._next_at, self._paused_until) - time.monotonic()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if not await self._limiter.try_acquire_async(self._name):
                # Only possible if the bucket's rates cannot admit one request.
                raise RuntimeError(f"rate limiter {self._name!r} can never admit a request")
            self._next_at = time.monotonic() + self._min_interval

    def penalize(self, seconds: float) -> None:
        if seconds > 0:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def close(self) -> None:
        """Stop pyrate's background leak thread."""
        self._limiter.close()


logger = logging.getLogger("etrack.provider.ratelimit")


def account_key(user: str | None) -> str:
    """The row of one account: its user e-mail (not a secret), case-folded."""
    return (user or "anonymous").strip().lower()


class PgRateLimiter:
    """`etrack.provider.ratelimit.RateLimiter` backed by a PostgreSQL row.

    One limiter per process and event loop; it owns one autocommit connection,
    opened on first use and reopened once if it broke.
    """

    def __init__(
        self,
        target: db.Target,
        account: str,
        per_second: float,
        *,
        min_interval: float = 0.0,
    ) -> None:
        if not per_second > 0:
            raise ValueError(f"per_second must be > 0, got {per_second!r}")
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval!r}")
        self._target = target
        self.account = account
        self.interval = 1.0 / per_second
        self.min_interval = min_interval
        self._conn: db.AsyncConn | None = None
        self._lock: asyncio.Lock | None = None
        self._next_local = 0.0
        self._paused_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return (
            f"PgRateLimiter(account={self.account!r}, per_second={1 / self.interval:g}, "
            f"min_interval={self.min_interval!r})"
        )

    # ------------------------------------------------------------ protocol
    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        # Held through the sleep: the local pause is measured from the moment
        # the previous request of this process was actually let through, and
        # each process keeps at most one slot reserved ahead, which keeps the
        # account's slots shared fairly between processes.
        async with self._lock:
            # A loop, not one sleep: a 429 seen meanwhile may extend the pause.
            while (local := max(self._next_local, self._paused_until) - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(local)
            wait = await self.reserve()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_local = time.monotonic() + self.min_interval

    def penalize(self, seconds: float) -> None:
        if seconds <= 0:
            return
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        # The client calls this from a synchronous hook; the shared row is
        # pushed in the background so every process holds back, not only us.
        task = loop.create_task(self._push(seconds))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # ------------------------------------------------------------ database
    async def reserve(self) -> float:
        """Reserve the next slot; seconds to wait until it."""
        row = await self._execute(
            query("jobs_rate_reserve"), {"account": self.account, "interval": self.interval}
        )
        return float(row[0]) if row and row[0] is not None else 0.0

    async def _push(self, seconds: float) -> None:
        try:
            await self._execute(
                query("jobs_rate_penalize"),
                {"account": self.account, "seconds": seconds, "interval": self.interval},
            )
        except (psycopg.Error, DatabaseUnavailable) as exc:
            # The local pause still holds this process back.
            logger.warning("could not share a rate-limit pause: %s", type(exc).__name__)

    async def _execute(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        for attempt in (1, 2):
            conn = await self._connection()
            try:
                cursor = await conn.execute(sql.encode(), params)
                return await cursor.fetchone()
            except psycopg.OperationalError:
                await self._drop()
                if attempt == 2:
                    with db.outage_as_unavailable(self._target):
                        raise
        return None  # pragma: no cover - the loop returns or raises

    async def _connection(self) -> db.AsyncConn:
        if self._conn is None or self._conn.closed:
            self._conn = await db.connect_async(self._target)
        return self._conn

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
        self._conn = None

    async def flush(self) -> None:
        """Wait until penalties told so far have reached the shared row."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def aclose(self) -> None:
        await self.flush()
        await self._drop()
