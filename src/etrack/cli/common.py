"""What every `etrack` command group shares: the settings of this invocation,
the database, output, the options several groups take, and the reading of
the user's input (days, plates), where a bad value becomes a `UsageError`
(one line, exit code 2).

This module imports no other module of etrack.cli: the groups build on it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from etrack.config import Account, Settings, load_accounts, load_settings, select_accounts
from etrack.dates import day_range, parse_day, parse_plate, parse_plates
from etrack.errors import UsageError
from etrack.store import db, migrations
from etrack.store.accounts import owners

__all__ = [
    "AccountOpt",
    "DateOpt",
    "PlateArg",
    "PlatesFileOpt",
    "chosen_accounts",
    "database",
    "echo",
    "read_day",
    "read_days",
    "read_plate",
    "read_plates",
    "reload_settings",
    "settings",
    "user_input",
]

T = TypeVar("T")

# ------------------------------------------------------------------ options
PlateArg = Annotated[str, typer.Argument(help="Plate, e.g. ABC1234, ABC-1234 or Mercosul ABC1D23.")]
DateOpt = Annotated[str | None, typer.Option("--date", help="Local day: YYYY-MM-DD or DD/MM/YYYY.")]
AccountOpt = Annotated[
    str | None,
    typer.Option("--account", help="Only this account (ETRACK_ACCOUNTS_FILE); default: all."),
]
PlatesFileOpt = Annotated[
    Path | None, typer.Option("--plates-file", help="File with one plate per line (# comments).")
]


# ------------------------------------------------------- settings, database
_settings: list[Settings] = []


def settings() -> Settings:
    """The settings of this invocation (loaded once, in the root callback)."""
    if not _settings:
        _settings.append(load_settings())
    return _settings[-1]


def reload_settings() -> Settings:
    """Forget the settings of a previous invocation in this process and load them."""
    _settings.clear()
    return settings()


def database(*, need_schema: bool = True) -> db.Target:
    """Resolve the database and make sure the schema is current.

    The embedded database is the user's own: we upgrade it automatically. An
    external server is shared with other etrack processes of maybe another
    version, so there we ask for an explicit `etrack db upgrade`.
    """
    target = db.resolve_target(settings())
    if need_schema:
        migrations.check_current(target, auto_upgrade=target.embedded)
    return target


def chosen_accounts(account: str | None, plate: str | None = None) -> list[Account]:
    """The accounts a command works on: the one named, the one that lists
    `plate`, or all."""
    accounts = load_accounts(settings())
    if account is not None or plate is None or len(accounts) == 1:
        return select_accounts(accounts, account)
    with db.connection(database()) as conn:
        return [owners(conn, accounts, [plate])[plate]]


def echo(message: str) -> None:
    typer.echo(message)


# ------------------------------------------------------------ user's input
def user_input(fn: Callable[[], T]) -> T:
    """`fn()`, its ValueError (a parser refusing what the user typed) as a UsageError."""
    try:
        return fn()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def read_plate(text: str) -> str:
    return user_input(lambda: parse_plate(text))


def read_plates(given: str | None, plates_file: Path | None) -> list[str] | None:
    """--plates and --plates-file together; None when neither was given."""
    return user_input(lambda: parse_plates(given, plates_file))


def read_day(text: str, option: str = "date") -> date:
    return user_input(lambda: parse_day(text, option=option))


def read_days(
    date_text: str | None, date_start: str | None, date_end: str | None, *, default: date
) -> list[date]:
    """--date, or --date-start with --date-end, as the list of days; `default` alone
    when none is given."""
    if date_text is not None and (date_start or date_end):
        raise UsageError("give either --date or --date-start/--date-end, not both")
    if date_text is not None:
        return [read_day(date_text)]
    if date_start or date_end:
        if not (date_start and date_end):
            raise UsageError("--date-start and --date-end go together")
        start = read_day(date_start, "date-start")
        end = read_day(date_end, "date-end")
        return user_input(lambda: day_range(start, end))
    return [default]
