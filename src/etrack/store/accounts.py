"""What the database knows about each eTrac account: which plates it lists,
and whether its credentials work (`ok`, `failing` until `retry_at`).

The accounts themselves are configuration (`etrack.config.Account`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from etrack.config import DEFAULT_ACCOUNT, Account
from etrack.store.db import Conn
from etrack.store.queries import query

__all__ = [
    "AccountState",
    "fallback_account",
    "is_due",
    "mark_failing",
    "mark_ok",
    "note_plates",
    "owners",
    "owners_from",
    "plates_of",
    "record_plates",
    "states",
]


def record_plates(conn: Conn, account: str, plates: Sequence[str], *, listed: bool) -> None:
    """Note which account fetched these plates.

    The fleet list (`listed`) is the authority on which account sees a plate;
    a history answer only adopts plates nobody listed, so backfilling an old
    account never steals a moved plate.
    """
    with conn.transaction():
        note_plates(conn, account, plates, listed=listed)


def note_plates(conn: Conn, account: str, plates: Sequence[str], *, listed: bool) -> None:
    """`record_plates` inside the caller's transaction (the ingest's own)."""
    name = "accounts_claim_plates" if listed else "accounts_adopt_plates"
    conn.execute(query(name), {"account": account, "plates": list(plates)})


# ------------------------------------------------------------------ health
@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as `etrack accounts`, /healthz and the Jobs page show it."""

    name: str
    state: str  # 'ok', 'failing', or 'unknown' (never fetched yet)
    reason: str | None
    vehicles: int
    rate_limit: float | None
    last_success_at: datetime | None
    retry_at: datetime | None
    configured: bool


def fallback_account(accounts: Sequence[Account]) -> str:
    """Where plates stored before accounts existed belong: the first account."""
    return accounts[0].name if accounts else DEFAULT_ACCOUNT


def owners(conn: Conn, accounts: Sequence[Account], plates: Sequence[str]) -> dict[str, Account]:
    """The account to ask about each plate: the one that lists it now, else
    the first (a plate nobody listed yet, or an account no longer configured)."""
    if len(accounts) == 1:
        return owners_from(accounts, plates, {})
    rows = conn.execute(query("accounts_plate_owners"), {"plates": list(plates)}).fetchall()
    return owners_from(accounts, plates, {str(row[0]): row[1] for row in rows})


def owners_from(
    accounts: Sequence[Account], plates: Sequence[str], listed: Mapping[str, str | None]
) -> dict[str, Account]:
    """`owners` given what `accounts_plate_owners` found (plate -> account name)."""
    by_name = {account.name: account for account in accounts}
    first = accounts[0]
    return {placa: by_name.get(listed.get(placa) or first.name, first) for placa in plates}


def plates_of(conn: Conn, accounts: Sequence[Account], chosen: Sequence[Account]) -> list[str]:
    rows = conn.execute(
        query("accounts_plates"),
        {"fallback": fallback_account(accounts), "accounts": [a.name for a in chosen]},
    ).fetchall()
    return [str(row[0]) for row in rows]


def mark_ok(conn: Conn, account: Account) -> None:
    with conn.transaction():
        conn.execute(
            query("accounts_mark_ok"), {"account": account.name, "fingerprint": account.fingerprint}
        )


def mark_failing(conn: Conn, account: Account, reason: str, retry_s: float) -> None:
    with conn.transaction():
        conn.execute(
            query("accounts_mark_failing"),
            {
                "account": account.name,
                "reason": reason,
                "fingerprint": account.fingerprint,
                "retry_s": retry_s,
            },
        )


def is_due(row: dict[str, Any] | None, account: Account) -> bool:
    """Whether to try the account now: not failing, past its retry time, or
    its credentials changed since they were refused (fixed in the file)."""
    if row is None or row["state"] != "failing":
        return True
    return bool(row["due"]) or row["fingerprint"] != account.fingerprint


def states(conn: Conn, accounts: Sequence[Account]) -> list[AccountState]:
    """Every configured account (and any recorded one no longer configured)."""
    fallback = fallback_account(accounts)
    cursor = conn.execute(query("accounts_states"), {"fallback": fallback})
    names = [column.name for column in cursor.description or ()]
    recorded = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    sizes = {
        str(row[0]): int(row[1])
        for row in conn.execute(query("accounts_fleet_sizes"), {"fallback": fallback})
    }
    out: list[AccountState] = []
    for account in accounts:
        row = recorded.pop(account.name, None)
        out.append(
            AccountState(
                name=account.name,
                state=row["state"] if row else "unknown",
                reason=row["reason"] if row else None,
                vehicles=sizes.get(account.name, 0),
                rate_limit=account.rate_limit,
                last_success_at=row["last_success_at"] if row else None,
                retry_at=row["retry_at"] if row and row["state"] == "failing" else None,
                configured=True,
            )
        )
    for name, row in sorted(recorded.items()):
        out.append(
            AccountState(
                name=name,
                state=row["state"],
                reason=row["reason"],
                vehicles=sizes.get(name, 0),
                rate_limit=None,
                last_success_at=row["last_success_at"],
                retry_at=row["retry_at"],
                configured=False,
            )
        )
    return out
