"""The API pace of each account in its `rate_limits` row (sql/rates.sql).

The row is shared by every process and machine of one database: the slot
clock (`next_slot`) that spaces requests, and the pace controller's state
(etrack.pace) that decides how far apart. The controller itself is
pure (etrack.pace); this module moves its state in and out of the row. Async functions serve the limiter; sync ones the CLI and the web.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from etrack.config import Account
from etrack.pace import PaceState
from etrack.store.db import AsyncConn, Conn
from etrack.store.queries import query

__all__ = [
    "AccountRate",
    "LockedRate",
    "account_key",
    "account_rates",
    "forget",
    "lock",
    "now",
    "paces_of",
    "penalize",
    "prepare_session",
    "reserve",
    "save",
]


@dataclass(frozen=True)
class LockedRate:
    """One account's row, locked for the rest of the transaction."""

    pace: PaceState | None
    """None: no pace stored yet (a new account, or a row from before 0006)."""
    now: float
    """The database clock, epoch seconds."""
    idle_s: float | None
    """Seconds since the pace was last saved (None: never)."""


@dataclass(frozen=True)
class AccountRate:
    """What `etrack accounts`, /metrics and the Jobs page show of one pace."""

    account: str
    rate: float | None
    throttled_at_rate: float | None
    latency_s: float | None
    baseline_s: float | None
    requests: int
    throttled: int
    updated_at: datetime | None
    eased_at_rate: float | None = None

    @property
    def learning(self) -> bool:
        return self.throttled_at_rate is None and self.eased_at_rate is None


def account_key(user: str | None) -> str:
    """The row of one account: its user e-mail (not a secret), case-folded.
    Keyed by login, not by account name: two names for one login share the
    provider's one budget."""
    return (user or "anonymous").strip().lower()


async def reserve(
    conn: AsyncConn, account: str, interval: float, *, fixed: bool = False
) -> tuple[float, float | None]:
    """Reserve the account's next slot: (seconds to wait for it, the pace).
    *interval* is used when the row has no pace yet, or always when *fixed*
    (which then returns no pace and leaves the learned one alone)."""
    cursor = await conn.execute(
        query("rates_reserve"), {"account": account, "interval": interval, "fixed": fixed}
    )
    row = await cursor.fetchone()
    if row is None:  # pragma: no cover - INSERT ... RETURNING always returns
        return 0.0, None
    wait = float(row[0]) if row[0] is not None else 0.0
    return wait, float(row[1]) if row[1] is not None else None


async def penalize(conn: AsyncConn, account: str, seconds: float, interval: float) -> None:
    await conn.execute(
        query("rates_penalize"), {"account": account, "seconds": seconds, "interval": interval}
    )


async def prepare_session(conn: AsyncConn) -> None:
    """Timeouts on a limiter's connection (see the rates_session block)."""
    await conn.execute(query("rates_session"))


async def now(conn: AsyncConn) -> float:
    cursor = await conn.execute(query("rates_now"))
    row = await cursor.fetchone()
    return float(row[0]) if row is not None else 0.0


async def lock(conn: AsyncConn, account: str) -> LockedRate:
    """The account's pace, row-locked (call inside a transaction); with the
    database clock's now."""
    cursor = await conn.execute(query("rates_lock"), {"account": account})
    row = await cursor.fetchone()
    if row is None:
        return LockedRate(None, await now(conn), None)
    idle = float(row[11]) if row[11] is not None else None
    if row[0] is None:
        return LockedRate(None, float(row[10]), idle)
    pace = PaceState(
        rate=float(row[0]),
        throttled_at_rate=_float(row[1]),
        segment_start=float(row[2]) if row[2] is not None else float(row[10]),
        recent_ok=tuple(float(value) for value in row[3] or ()),
        grown_at=_float(row[4]),
        decreased_at=_float(row[5]),
        latency_s=_float(row[6]),
        baseline_s=_float(row[7]),
        requests=int(row[8]),
        throttled=int(row[9]),
        eased_at_rate=_float(row[12]),
        recent_latency=tuple(float(value) for value in row[13] or ()),
    )
    return LockedRate(pace, float(row[10]), idle)


async def save(conn: AsyncConn, account: str, pace: PaceState) -> None:
    await conn.execute(
        query("rates_save"),
        {
            "account": account,
            "rate": pace.rate,
            "throttled_at_rate": pace.throttled_at_rate,
            "segment_start": pace.segment_start,
            "recent_ok": list(pace.recent_ok),
            "grown_at": pace.grown_at,
            "decreased_at": pace.decreased_at,
            "latency_s": pace.latency_s,
            "baseline_s": pace.baseline_s,
            "requests": pace.requests,
            "throttled": pace.throttled,
            "eased_at_rate": pace.eased_at_rate,
            "recent_latency": list(pace.recent_latency),
        },
    )


def account_rates(conn: Conn, accounts: Sequence[str] | None = None) -> list[AccountRate]:
    """Every stored pace (or those of *accounts*: rate-limit keys, see
    etrack.provider.ratelimit.account_key)."""
    rows = conn.execute(query("rates_all")).fetchall()
    found = [
        AccountRate(
            account=str(row[0]),
            rate=_float(row[1]),
            throttled_at_rate=_float(row[2]),
            latency_s=_float(row[3]),
            baseline_s=_float(row[4]),
            requests=int(row[5]),
            throttled=int(row[6]),
            updated_at=row[7],
            eased_at_rate=_float(row[8]),
        )
        for row in rows
    ]
    if accounts is None:
        return found
    wanted = set(accounts)
    return [rate for rate in found if rate.account in wanted]


def paces_of(conn: Conn, accounts: Sequence[Account]) -> dict[str, AccountRate]:
    """Account name -> its stored pace, for the accounts that have one."""
    by_key = {rate.account: rate for rate in account_rates(conn)}
    found = {}
    for account in accounts:
        rate = by_key.get(account_key(account.user))
        if rate is not None:
            found[account.name] = rate
    return found


def forget(conn: Conn, account: str) -> bool:
    """Drop what was learned of the account's pace; True if there was a row."""
    cursor = conn.execute(query("rates_forget"), {"account": account})
    return cursor.rowcount > 0


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
