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

The slots are spaced by the row's pace, which adapts (etrack.pace): after
each answer the limiter locks the row, runs the controller on it and saves
the result, so every process of the account speeds up and backs off
together, and the next run starts at the pace this one ended with.

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
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Protocol, TypeVar, runtime_checkable

import psycopg
from pyrate_limiter import AbstractBucket, InMemoryBucket, Limiter, Rate

from etrack.errors import DatabaseUnavailable
from etrack.pace import Answer, PaceBounds, PaceState, initial_state, observe
from etrack.store import db, rates
from etrack.store.rates import account_key

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

    async def record(
        self, latency_s: float, *, throttled: bool, retry_after_s: float | None = None
    ) -> None:
        """Learn from one answer: how long it took, and whether it was a 429."""


class UnlimitedLimiter:
    """A limiter that never waits, for tests and one-off scripts."""

    async def acquire(self) -> None:
        return None

    def penalize(self, seconds: float) -> None:
        return None

    async def record(
        self, latency_s: float, *, throttled: bool, retry_after_s: float | None = None
    ) -> None:
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

    async def record(
        self, latency_s: float, *, throttled: bool, retry_after_s: float | None = None
    ) -> None:
        # A fixed pace: what adapts is the shared one (PgRateLimiter), which
        # keeps what it learns for the next run.
        return None

    def close(self) -> None:
        """Stop pyrate's background leak thread."""
        self._limiter.close()


logger = logging.getLogger("etrack.provider.ratelimit")

T = TypeVar("T")

LIVE_S = 30.0
"""A pace saved less than this long ago belongs to a run still going: a
process joining it takes the pace as it is instead of starting a new segment."""
BOUND_WAIT_S = 0.005
"""A request that waited longer than this for its slot was held by the pace."""
DB_TIMEOUT_S = 8.0
"""The longest one pace step may take on the database (the session's own
timeouts stop it sooner): past it, this process paces on its own."""
DB_RETRY_S = 5.0
"""After the shared row failed, how long this process paces on its own before
trying the row again (not once per request while PostgreSQL is down)."""

_rate_bound: ContextVar[bool] = ContextVar("etrack_rate_bound", default=True)
"""Per request (the asyncio task that acquired, then records): whether it
queued for its slot. A plain attribute would be the last request's, not this one's."""


class PgRateLimiter:
    """`etrack.provider.ratelimit.RateLimiter` backed by a PostgreSQL row.

    Without *bounds*, a fixed pace of *per_second*. With them, the pace starts
    where the account's row left it (or at ``bounds.start``) and adapts.

    One limiter per process and event loop; it owns two autocommit
    connections (slots, and the pace's transactions), opened on first use and
    reopened once if they broke.
    """

    def __init__(
        self,
        target: db.Target,
        account: str,
        per_second: float,
        *,
        min_interval: float = 0.0,
        bounds: PaceBounds | None = None,
        join_within_s: float = LIVE_S,
    ) -> None:
        if not per_second > 0:
            raise ValueError(f"per_second must be > 0, got {per_second!r}")
        if min_interval < 0:
            raise ValueError(f"min_interval must be >= 0, got {min_interval!r}")
        self._target = target
        self.account = account
        self.bounds = bounds or PaceBounds(
            start=per_second, floor=per_second, ceiling=per_second, adapt=False
        )
        self.interval = 1.0 / self.bounds.start
        self.min_interval = min_interval
        self.join_within_s = join_within_s
        self.pace: PaceState | None = None
        """The pace as this process last saw it (None before the first answer)."""
        self._conn: db.AsyncConn | None = None
        self._pace_conn: db.AsyncConn | None = None
        self._lock: asyncio.Lock | None = None
        self._pace_lock: asyncio.Lock | None = None
        self._started = False
        self.used = False
        """True once a request went through this limiter."""
        self._next_local = 0.0
        self._local_slot = 0.0
        self._db_down_until = 0.0
        self._paused_until = 0.0
        self._pending: set[asyncio.Task[None]] = set()
        self._warned = False

    def __repr__(self) -> str:
        return (
            f"PgRateLimiter(account={self.account!r}, per_second={self.rate:g}, "
            f"min_interval={self.min_interval!r}, adapt={self.bounds.adapt})"
        )

    @property
    def rate(self) -> float:
        """The account's current pace, requests/s, as this process last saw it."""
        return 1.0 / self.interval

    # ------------------------------------------------------------ protocol
    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        entered = time.monotonic()
        # Held through the sleep: the local pause is measured from the moment
        # the previous request of this process was actually let through, and
        # each process keeps at most one slot reserved ahead, which keeps the
        # account's slots shared fairly between processes.
        async with self._lock:
            # A loop, not one sleep: a 429 seen meanwhile may extend the pause.
            while (local := max(self._next_local, self._paused_until) - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(local)
            wait = await self._shared_wait()
            if wait is None:
                wait = self._local_wait()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_local = time.monotonic() + self.min_interval
        _rate_bound.set(time.monotonic() - entered > BOUND_WAIT_S)
        self.used = True

    async def _shared_wait(self) -> float | None:
        """The wait for a slot of the account's row; None when the database
        does not answer (then this process paces on its own for a while)."""
        if time.monotonic() < self._db_down_until:
            return None
        try:
            if not self._started and self.bounds.adapt:
                await self._start()
            wait = await self.reserve()
        except (psycopg.Error, DatabaseUnavailable, TimeoutError) as exc:
            self._db_failed("the shared API pace is out of reach", exc)
            return None
        self._warned = False
        return wait

    def _local_wait(self) -> float:
        """This process's own slots at the last pace it saw: during an outage
        of PostgreSQL requests go on, as fast as before, never faster."""
        now = time.monotonic()
        slot = max(now, self._local_slot)
        self._local_slot = slot + self.interval
        return slot - now

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

    async def record(
        self, latency_s: float, *, throttled: bool, retry_after_s: float | None = None
    ) -> None:
        if not self.bounds.adapt or time.monotonic() < self._db_down_until:
            # A fixed pace learns nothing, and leaves the learned one alone.
            return
        if self._pace_lock is None:
            self._pace_lock = asyncio.Lock()
        rate_bound = _rate_bound.get()

        async def step(conn: db.AsyncConn) -> PaceState:
            async with conn.transaction():
                locked = await rates.lock(conn, self.account)
                state = locked.pace or initial_state(self.bounds, None, locked.now)
                answer = Answer(
                    at=locked.now,
                    latency_s=latency_s,
                    throttled=throttled,
                    retry_after_s=retry_after_s,
                    rate_bound=rate_bound,
                )
                state = observe(state, answer, self.bounds)
                await rates.save(conn, self.account, state)
                return state

        async with self._pace_lock:
            try:
                self._seen(await self._run(step, pace=True))
                logger.debug(
                    "pace of %s: %.2f/s after a %s in %.0f ms%s",
                    self.account,
                    self.rate,
                    "429" if throttled else "success",
                    latency_s * 1000,
                    "" if rate_bound else " (not rate-bound)",
                )
            except (psycopg.Error, DatabaseUnavailable, TimeoutError) as exc:
                # The request itself succeeded or failed on its own; losing one
                # lesson only slows the learning.
                self._db_failed("could not update the shared API pace", exc)

    # ------------------------------------------------------------ database
    async def reserve(self) -> float:
        """Reserve the next slot; seconds to wait until it."""
        fixed = not self.bounds.adapt
        wait, rate = await self._run(
            lambda conn: rates.reserve(conn, self.account, self.interval, fixed=fixed), pace=False
        )
        if rate is not None and rate > 0:
            self.interval = 1.0 / rate
        return wait

    async def _start(self) -> None:
        """Begin this process's run on the account's row: the learned pace,
        or the configured start; a run in progress is joined as it is."""

        async def begin(conn: db.AsyncConn) -> PaceState:
            async with conn.transaction():
                locked = await rates.lock(conn, self.account)
                live = locked.idle_s is not None and locked.idle_s < self.join_within_s
                if locked.pace is not None and live and self.bounds.adapt:
                    return locked.pace
                state = initial_state(self.bounds, locked.pace, locked.now)
                await rates.save(conn, self.account, state)
                return state

        self._seen(await self._run(begin, pace=True))
        self._started = True

    def _seen(self, state: PaceState) -> None:
        self.pace = state
        self.interval = 1.0 / state.rate

    async def _push(self, seconds: float) -> None:
        try:
            await self._run(
                lambda conn: rates.penalize(conn, self.account, seconds, self.interval),
                pace=False,
            )
        except (psycopg.Error, DatabaseUnavailable) as exc:
            # The local pause still holds this process back.
            self._warn("could not share a rate-limit pause", exc)

    def _db_failed(self, what: str, exc: BaseException) -> None:
        self._db_down_until = time.monotonic() + DB_RETRY_S
        self._warn(what, exc)

    def _warn(self, what: str, exc: BaseException) -> None:
        # Once per outage (reset by the next success): not once per request.
        if not self._warned:
            self._warned = True
            logger.warning(
                "%s (%s); this process paces on its own at %.2f/s meanwhile",
                what,
                type(exc).__name__,
                self.rate,
            )

    async def _run(self, work: Callable[[db.AsyncConn], Awaitable[T]], *, pace: bool) -> T:
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(DB_TIMEOUT_S):
                    conn = await self._connection(pace=pace)
                    return await work(conn)
            except TimeoutError:
                await self._drop(pace=pace)
                raise
            except psycopg.OperationalError:
                await self._drop(pace=pace)
                if attempt == 2:
                    with db.outage_as_unavailable(self._target):
                        raise
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _connection(self, *, pace: bool) -> db.AsyncConn:
        conn = self._pace_conn if pace else self._conn
        if conn is None or conn.closed:
            conn = await db.connect_async(self._target)
            await rates.prepare_session(conn)
            if pace:
                self._pace_conn = conn
            else:
                self._conn = conn
        return conn

    async def _drop(self, *, pace: bool) -> None:
        conn = self._pace_conn if pace else self._conn
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
        if pace:
            self._pace_conn = None
        else:
            self._conn = None

    async def flush(self) -> None:
        """Wait until penalties told so far have reached the shared row."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def aclose(self) -> None:
        await self.flush()
        await self._drop(pace=False)
        await self._drop(pace=True)
