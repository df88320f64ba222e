"""What every `etrack` command group shares: the settings of this invocation,
the database, output, the options several groups take, and the reading of
the user's input (days, plates), where a bad value becomes a `UsageError`
(one line, exit code 2).

This module imports no other module of etrack.cli: the groups build on it.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from etrack.config import (
    Account,
    Settings,
    env_files,
    load_accounts,
    load_settings,
    select_accounts,
)
from etrack.dates import DATE_FORMS, day_range, parse_day, parse_plate, parse_plates
from etrack.errors import CredentialsError, UsageError
from etrack.logs import format_moment
from etrack.store import db, migrations
from etrack.store.accounts import owners
from etrack.store.positions import known_plates
from etrack.web.exports import safe_text

__all__ = [
    "AccountOpt",
    "AllPlatesOpt",
    "DateOpt",
    "PlateArg",
    "PlatesFileOpt",
    "RangeEndOpt",
    "RangeStartOpt",
    "api_accounts",
    "chosen_accounts",
    "database",
    "echo",
    "echo_summary",
    "moment",
    "read_day",
    "read_days",
    "read_plate",
    "read_plates",
    "records_csv",
    "reload_settings",
    "require_credentials",
    "require_known_plates",
    "settings",
    "summary_printed_here",
    "user_input",
]

T = TypeVar("T")

# ------------------------------------------------------------------ options
PlateArg = Annotated[str, typer.Argument(help="Plate, e.g. ABC1234, ABC-1234 or Mercosul ABC1D23.")]
DateOpt = Annotated[str | None, typer.Option("--date", help=f"Local day: {DATE_FORMS}.")]
# The range options of the commands computing or listing over days (events, visits).
RangeStartOpt = Annotated[str | None, typer.Option("--date-start", help="First day of a range.")]
RangeEndOpt = Annotated[
    str | None, typer.Option("--date-end", help="Last day of a range (included).")
]
AllPlatesOpt = Annotated[
    str | None, typer.Option("--plates", help="Comma-separated plates (default: every plate).")
]
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


def require_credentials(accounts: Sequence[Account]) -> None:
    """Refuse at once, before the database is opened (which can mean starting
    the embedded server and migrating), to call the API for an account
    without ETRAC_USER/ETRAC_KEY; saying where the settings were looked for."""
    for account in accounts:
        if not account.user or account.key is None or not account.key.get_secret_value():
            looked = ", ".join(str(path) for path in env_files())
            raise CredentialsError(
                "ETRAC_USER and ETRAC_KEY must be set to call the eTrac API "
                f"(looked in the environment and in {looked})"
            )


def api_accounts(account: str | None, plate: str | None = None) -> list[Account]:
    """`chosen_accounts` for a command that calls the API: credentials checked first."""
    require_credentials(select_accounts(load_accounts(settings()), account))
    return chosen_accounts(account, plate)


def echo(message: str) -> None:
    typer.echo(message)


def moment(value: datetime) -> str:
    """A moment as CLI output shows it: local time (ETRAC_TIMEZONE), to the
    second, with the zone."""
    return format_moment(value, settings().tz)


def _stdout_is_the_log() -> bool:
    # cron's `>> file 2>&1`: stdout and stderr are one file that is not a
    # terminal, so the summary sits among timestamped log lines.
    try:
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False  # captured streams (tests, CliRunner) have no descriptor
    return not sys.stdout.isatty() and (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)


def echo_summary(line: str) -> None:
    """A command's summary line, printed once on stdout; stamped like the
    log lines when stdout is a log file shared with them (cron)."""
    if _stdout_is_the_log():
        line = f"{moment(datetime.now(UTC))} {line}"
    echo(line)


@contextmanager
def summary_printed_here(*loggers: str) -> Iterator[None]:
    """While a command runs a step whose loggers log its summary at INFO, and
    prints that summary itself: hold those INFO lines back so the summary is
    said once (warnings still show; ETRAC_LOG_LEVEL=DEBUG shows all)."""
    held = [logging.getLogger(name) for name in loggers]
    before = [logger.level for logger in held]
    for logger in held:
        if not logger.isEnabledFor(logging.DEBUG):
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(held, before, strict=True):
            logger.setLevel(level)


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


def require_known_plates(target: db.Target, plates: list[str] | None) -> None:
    """UsageError naming the plates typed that this database has never seen
    (every fetch stores its plates in terminals): work on them would only
    find nothing."""
    if not plates:
        return
    with db.connection(target) as conn:
        known = set(known_plates(conn))
    unknown = [placa for placa in plates if placa not in known]
    if unknown:
        which = "plate" if len(unknown) == 1 else "plates"
        raise UsageError(
            f"unknown {which} {', '.join(unknown)}: not in this database's vehicles "
            "(etrack fetch-latest lists the fleet)"
        )


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


def records_csv(records: Sequence[Mapping[str, object]], fields: Sequence[str]) -> str:
    """Listing records as CSV for Excel: a BOM first (else it reads "São" as
    "SÃ£o"), CRLF lines, empty cells for None, text cells that cannot run as
    formulas (etrack.web.exports.safe_text)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(fields)
    for record in records:
        writer.writerow(
            [
                "" if v is None else safe_text(v) if isinstance(v, str) else v
                for v in (record[name] for name in fields)
            ]
        )
    return "\ufeff" + buffer.getvalue()
