"""Several eTrac accounts in one installation.

Accounts come from the TOML file ETRACK_ACCOUNTS_FILE:

    [accounts.north]
    user = "fleet@north.example"
    key_env = "NORTH_ETRAC_KEY"      # or: key = "..."
    api_base = "https://api.etrac.com.br/monitoramento"   # default ETRAC_API_BASE
    timezone = "America/Manaus"      # default ETRAC_TIMEZONE
    rate_limit = 5                   # requests per second, default ETRAC_RATE_LIMIT

Without the file, the one account of ETRAC_USER / ETRAC_KEY is `default`, so a
single-account installation behaves exactly as before. The file is read again
on every use (it is small): fixing a key, in the file or in the environment
variable it names, needs no restart.

Each account is turned into a copy of the Settings with its ETRAC_* values,
so every fetch step, client and limiter works unchanged on one account.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from etrack.config import Settings, SettingsError, describe_validation_error
from etrack.store.queries import query

__all__ = [
    "DEFAULT_ACCOUNT",
    "Account",
    "AccountsError",
    "load_accounts",
    "select_accounts",
]

DEFAULT_ACCOUNT = "default"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_KEYS = {"user", "key", "key_env", "api_base", "timezone", "rate_limit"}


class AccountsError(SettingsError):
    """The accounts file cannot be used (one line naming the file), or an
    unknown account was asked for."""


@dataclass(frozen=True, slots=True)
class Account:
    """One eTrac login and its own settings (credentials, zone, budget)."""

    name: str
    settings: Settings

    @property
    def user(self) -> str | None:
        return self.settings.etrac_user

    @property
    def rate_limit(self) -> float:
        return self.settings.etrac_rate_limit

    @property
    def fingerprint(self) -> str:
        """Changes when the credentials or the API base change: a failing
        account whose entry changed is tried again at once. A digest, so the
        key itself is never stored."""
        key = self.settings.etrac_key.get_secret_value() if self.settings.etrac_key else ""
        text = f"{self.user}\0{key}\0{self.settings.etrac_api_base}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_accounts(settings: Settings) -> list[Account]:
    """The configured accounts, in the file's order (or the one `default`)."""
    path = settings.etrack_accounts_file
    if path is None:
        return [Account(DEFAULT_ACCOUNT, settings)]
    return _read_file(Path(path), settings)


def select_accounts(accounts: Sequence[Account], name: str | None) -> list[Account]:
    """All accounts, or the one named by `--account NAME`."""
    if name is None:
        return list(accounts)
    chosen = [account for account in accounts if account.name == name]
    if not chosen:
        known = ", ".join(account.name for account in accounts)
        raise AccountsError(f"unknown account {name!r}; accounts: {known}")
    return chosen


def _read_file(path: Path, settings: Settings) -> list[Account]:
    def problem(message: str) -> AccountsError:
        return AccountsError(f"accounts file {path}: {message}")

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise problem("no such file") from None
    except OSError as exc:
        raise problem(f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise problem("not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise problem(f"not valid TOML: {exc}") from None
    table = data.get("accounts")
    if not isinstance(table, dict) or not table:
        raise problem("expected one [accounts.NAME] table per account, found none")
    unknown = set(data) - {"accounts"}
    if unknown:
        raise problem(f"unknown top-level key {sorted(unknown)[0]!r} (only [accounts.NAME])")
    accounts: list[Account] = []
    users: dict[str, str] = {}
    for name, entry in table.items():
        if not _NAME.match(name):
            raise problem(f"account name {name!r}: expected lower-case letters, digits, '-' or '_'")
        if not isinstance(entry, dict):
            raise problem(f"account {name!r}: expected a table [accounts.{name}]")
        account = _account(name, entry, settings, problem)
        user = (account.user or "").casefold()
        if user in users:
            raise problem(f"accounts {users[user]!r} and {name!r} have the same user")
        users[user] = name
        accounts.append(account)
    return accounts


def _account(name: str, entry: dict[str, Any], settings: Settings, problem: Any) -> Account:
    extra = set(entry) - _KEYS
    if extra:
        raise problem(f"account {name!r}: unknown key {sorted(extra)[0]!r}")
    user = entry.get("user")
    if not isinstance(user, str) or not user.strip():
        raise problem(f"account {name!r}: 'user' (the eTrac login e-mail) is missing")
    if ("key" in entry) == ("key_env" in entry):
        raise problem(f"account {name!r}: give exactly one of 'key' or 'key_env'")
    if "key" in entry:
        key = entry["key"]
        if not isinstance(key, str) or not key:
            raise problem(f"account {name!r}: 'key' must be a non-empty string")
    else:
        variable = entry["key_env"]
        if not isinstance(variable, str) or not variable:
            raise problem(f"account {name!r}: 'key_env' must name an environment variable")
        key = os.environ.get(variable, "")
        if not key:
            raise problem(f"account {name!r}: environment variable {variable} is not set")
    update: dict[str, Any] = {"etrac_user": user.strip(), "etrac_key": SecretStr(key)}
    for field, setting in (
        ("api_base", "etrac_api_base"),
        ("timezone", "etrac_timezone"),
        ("rate_limit", "etrac_rate_limit"),
    ):
        if field in entry:
            update[setting] = entry[field]
    values = {**settings.model_dump(), **update}
    try:
        # Validated like the environment variables they stand for.
        # Every field is given, so neither the environment nor .env can
        # override the account's values.
        account_settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    except ValidationError as exc:
        line = describe_validation_error(exc)
        for field, setting in (
            ("api_base", "ETRAC_API_BASE"),
            ("timezone", "ETRAC_TIMEZONE"),
            ("rate_limit", "ETRAC_RATE_LIMIT"),
        ):
            line = line.replace(f"setting {setting}", field)
        raise problem(f"account {name!r}: {line.removeprefix('invalid ')}") from None
    return Account(name, account_settings)


# ------------------------------------------------------------------ health
@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as `etrack accounts`, /healthz and the Jobs page show it."""

    name: str
    state: str  # 'ok', 'failing', or 'unknown' (never fetched yet)
    reason: str | None
    vehicles: int
    rate_limit: float | None
    last_success_at: Any
    retry_at: Any
    configured: bool


def fallback_account(accounts: Sequence[Account]) -> str:
    """Where plates stored before accounts existed belong: the first account."""
    return accounts[0].name if accounts else DEFAULT_ACCOUNT


def owners(conn: Any, accounts: Sequence[Account], plates: Sequence[str]) -> dict[str, Account]:
    """The account to ask about each plate: the one that lists it now, else
    the first (a plate nobody listed yet, or an account no longer configured)."""
    by_name = {account.name: account for account in accounts}
    rows = conn.execute(query("accounts_plate_owners"), {"plates": list(plates)}).fetchall()
    listed = {str(row[0]): row[1] for row in rows}
    first = accounts[0]
    return {placa: by_name.get(listed.get(placa) or first.name, first) for placa in plates}


def plates_of(conn: Any, accounts: Sequence[Account], chosen: Sequence[Account]) -> list[str]:
    rows = conn.execute(
        query("accounts_plates"),
        {"fallback": fallback_account(accounts), "accounts": [a.name for a in chosen]},
    ).fetchall()
    return [str(row[0]) for row in rows]


def mark_ok(conn: Any, account: Account) -> None:
    with conn.transaction():
        conn.execute(
            query("accounts_mark_ok"), {"account": account.name, "fingerprint": account.fingerprint}
        )


def mark_failing(conn: Any, account: Account, reason: str, retry_s: float) -> None:
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


def states(conn: Any, accounts: Sequence[Account]) -> list[AccountState]:
    """Every configured account (and any recorded one no longer configured)."""
    fallback = fallback_account(accounts)
    cursor = conn.execute(query("accounts_states"), {"fallback": fallback})
    names = [column.name for column in cursor.description]
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
