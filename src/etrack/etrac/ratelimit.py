"""Per-account request pacing for the eTrac API.

The client only needs :class:`RateLimiter`: something to await before each
HTTP request, and something to tell when the provider answered 429. The
default :class:`PyrateLimiter` keeps its state in this process; pass a
``pyrate_limiter`` bucket (for instance a ``PostgresBucket``) to share one
account's budget between every worker process that reaches the same database.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Protocol, runtime_checkable

from pyrate_limiter import AbstractBucket, InMemoryBucket, Limiter, Rate

__all__ = ["PyrateLimiter", "RateLimiter", "UnlimitedLimiter", "rate_for"]


@runtime_checkable
class RateLimiter(Protocol):
    """What :class:`etrack.etrac.client.EtracClient` needs from a limiter."""

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
