"""`etrack fetch-latest|fetch-plate|fetch-history|fetch-trips`: one fetch step
of the collector, for each account concerned, with its summary line."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated

import typer

from etrack.cli.common import (
    AccountOpt,
    DateOpt,
    PlateArg,
    api_accounts,
    chosen_accounts,
    database,
    echo_summary,
    read_day,
    read_plate,
    settings,
    user_input,
)
from etrack.collect import Collector, open_collector, run_forever
from etrack.config import Account
from etrack.dates import DATE_FORMS, parse_moment, range_error
from etrack.errors import CredentialsError, UnknownPlate, UsageError
from etrack.events.compute import compute_events
from etrack.events.params import EventParams
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.store import db
from etrack.store.accounts import mark_failing, mark_ok

__all__ = ["register", "run_collector"]


def run_collector(
    step: Callable[[Collector], Awaitable[object]],
    *,
    account: str | None = None,
    plate: str | None = None,
) -> None:
    """Run one fetch step for each account (at once, each under its own
    budget) and print its summary line; one account's failure does not stop
    the others, and is raised (exit code) once they are done."""
    accounts = api_accounts(account, plate)
    target = database()
    current = settings()

    async def one(chosen: Account) -> str:
        async with open_collector(
            current.for_account(chosen), target, account=chosen.name
        ) as collector:
            try:
                await step(collector)
            except CredentialsError as exc:
                with db.connection(target) as conn:
                    mark_failing(conn, chosen, str(exc), current.etrack_account_retry_s)
                raise
            except UnknownPlate as exc:
                if plate is None:
                    raise
                raise exc.naming(plate, chosen.name if len(accounts) > 1 else None) from None
            with db.connection(target) as conn:
                mark_ok(conn, chosen)
            return collector.summary.line()

    async def go() -> list[str | BaseException]:
        return await asyncio.gather(*(one(a) for a in accounts), return_exceptions=True)

    results = asyncio.run(go())
    errors = [r for r in results if isinstance(r, BaseException)]
    for chosen, result in zip(accounts, results, strict=True):
        if len(accounts) == 1:
            if isinstance(result, str):
                echo_summary(result)
        elif isinstance(result, str):
            echo_summary(f"{chosen.name}: {result}")
        else:
            typer.echo(f"{chosen.name}: failed: {result}", err=True)
    if errors:
        raise errors[0]


def fetch_latest(
    loop: Annotated[
        bool, typer.Option("--loop", help="Keep fetching every --interval seconds.")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=1, help="Seconds between fetches with --loop.")
    ] = 120.0,
    account: AccountOpt = None,
) -> None:
    """Latest position of every vehicle into positions; new plates into terminals."""
    if not loop:
        run_collector(lambda c: c.fetch_latest(), account=account)
        return
    if account is not None or len(api_accounts(None)) > 1:
        raise UsageError(
            "--loop collects one account; with several, run `etrack worker` (it fetches every "
            "account on ETRACK_FETCH_CRON)"
        )
    run_forever(settings(), interval=interval, database=database)


def fetch_plate(plate: PlateArg, account: AccountOpt = None) -> None:
    """One vehicle's latest position (asked of the account that lists it)."""
    placa = read_plate(plate)
    run_collector(lambda c: c.fetch_plate(placa), account=account, plate=placa)


def fetch_history(
    plate: PlateArg,
    date: DateOpt = None,
    date_start: Annotated[
        str | None,
        typer.Option("--date-start", help="Start: a day, or a local time 'YYYY-MM-DD HH:MM[:SS]'."),
    ] = None,
    date_end: Annotated[
        str | None,
        typer.Option("--date-end", help="End: a day (included), or a local time (excluded)."),
    ] = None,
    account: AccountOpt = None,
) -> None:
    """History of one plate for a day (--date) or any range (split into 24 h calls)."""
    placa = read_plate(plate)
    # Times typed are local to the account that lists the plate.
    tz = chosen_accounts(account, placa)[0].timezone
    if date is not None and (date_start or date_end):
        raise UsageError("give either --date or --date-start/--date-end, not both")
    params = EventParams.from_settings(settings())
    if date is not None:
        one_day = read_day(date)
        run_collector(lambda c: c.fetch_history_day(placa, one_day), account=account, plate=placa)
        echo_summary(compute_events(database(), [placa], one_day, one_day, params).line())
        echo_summary(
            compute_visits(
                database(), [placa], one_day, one_day, VisitParams.from_settings(settings())
            ).line()
        )
        return
    if not (date_start and date_end):
        raise UsageError("fetch-history needs --date D, or both --date-start and --date-end")
    start = user_input(lambda: parse_moment(date_start, tz, option="date-start"))
    end = user_input(lambda: parse_moment(date_end, tz, option="date-end", end=True))
    reversed_range = range_error(
        start, end, start="--date-start", end="--date-end", shown=(date_start, date_end)
    )
    if reversed_range is not None:
        raise UsageError(reversed_range)
    run_collector(lambda c: c.fetch_history_range(placa, start, end), account=account, plate=placa)
    first, last = start.astimezone(tz).date(), (end - timedelta(seconds=1)).astimezone(tz).date()
    echo_summary(compute_events(database(), [placa], first, last, params).line())
    echo_summary(
        compute_visits(
            database(), [placa], first, last, VisitParams.from_settings(settings())
        ).line()
    )


def fetch_trips(
    plate: PlateArg,
    date: Annotated[str, typer.Option("--date", help=f"Local day: {DATE_FORMS}.")],
    account: AccountOpt = None,
) -> None:
    """The provider's trip summaries (resumoviagens) of one plate and day into trips."""
    placa = read_plate(plate)
    one_day = read_day(date)
    run_collector(lambda c: c.fetch_trips(placa, one_day), account=account, plate=placa)


def register(app: typer.Typer) -> None:
    """Add the fetch commands to the `etrack` app (once: calling again is harmless)."""
    commands = {info.name for info in app.registered_commands}
    for name, function in (
        ("fetch-latest", fetch_latest),
        ("fetch-plate", fetch_plate),
        ("fetch-history", fetch_history),
        ("fetch-trips", fetch_trips),
    ):
        if name not in commands:
            app.command(name)(function)
