"""One request pace per eTrac account, shared by every process on one database.

The account's budget lives in one `rate_limits` row: `next_slot` is the first
instant not yet promised to anybody. Each request reserves a slot with a
single `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` (an atomic
read-modify-write under the row lock, using the database clock so that the
machines' clocks never matter) and then sleeps until its slot. A 429 pushes
`next_slot` forward for everybody.

`min_interval` is the seed's ETRAC_RATE_SLEEP / `--sleep`: a minimum pause
between two requests of *this* process, kept locally on purpose (it paces one
worker; the row paces the account).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import psycopg

from etrack import db
from etrack.queries import query

__all__ = ["PgRateLimiter", "account_key"]

logger = logging.getLogger("etrack.jobs.ratelimit")

AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


def account_key(user: str | None) -> str:
    """The row of one account: its user e-mail (not a secret), case-folded."""
    return (user or "anonymous").strip().lower()


def async_conninfo(target: db.Target) -> str:
    """Connection string with etrack's search_path and UTC, for async connections."""
    return psycopg.conninfo.make_conninfo(
        target.conninfo,
        options=f"-c search_path={target.schema},public -c timezone=UTC",
        application_name="etrack",
    )


class PgRateLimiter:
    """`etrack.etrac.ratelimit.RateLimiter` backed by a PostgreSQL row.

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
        self._conn: AsyncConn | None = None
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
        except (psycopg.Error, db.DatabaseUnavailable) as exc:
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
                    raise
        return None  # pragma: no cover - the loop returns or raises

    async def _connection(self) -> AsyncConn:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(
                    async_conninfo(self._target), autocommit=True, connect_timeout=10
                )
            except psycopg.OperationalError:
                raise db.DatabaseUnavailable(
                    f"cannot reach PostgreSQL at {self._target.describe()}"
                ) from None
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
