"""`etrack routes compute`: routes, trips and stops per plate and local day,
optionally after fetching the latest positions or the days' history."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime
from typing import Annotated

import typer

from etrack.cli.common import (
    AccountOpt,
    DateOpt,
    PlatesFileOpt,
    chosen_accounts,
    database,
    echo,
    echo_summary,
    read_days,
    read_plates,
    require_known_plates,
    settings,
    summary_printed_here,
)
from etrack.collect import open_collector
from etrack.config import Account, load_accounts
from etrack.drivers.compute import JornadaParams, compute_drivers
from etrack.errors import EtrackError, MissingCredentials, UnknownPlate, is_transient
from etrack.events.compute import compute_events
from etrack.events.params import EventParams
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.store import db
from etrack.store.accounts import owners, plates_of
from etrack.store.stats import analyze_new_partitions_at
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams

__all__ = ["register", "routes_app"]

logger = logging.getLogger("etrack.cli")

routes_app = typer.Typer(
    help="Routes, trips and stops per plate and local day.", no_args_is_help=True
)

PlatesOpt = Annotated[
    str | None, typer.Option("--plates", help="Comma-separated plates (default: every plate).")
]


@routes_app.command("compute")
def routes_compute(
    date: DateOpt = None,
    date_start: Annotated[
        str | None, typer.Option("--date-start", help="First day of a range.")
    ] = None,
    date_end: Annotated[
        str | None, typer.Option("--date-end", help="Last day of a range (included).")
    ] = None,
    plates: PlatesOpt = None,
    plates_file: PlatesFileOpt = None,
    refresh_latest: Annotated[
        bool,
        typer.Option(
            "--refresh-latest/--no-refresh-latest",
            help="Fetch the fleet's latest positions first (as the seed's "
            "--compute-routes-current-day-all did); skipped with a warning when the API cannot be used.",
        ),
    ] = False,
    with_history: Annotated[
        bool,
        typer.Option("--with-history", help="Fetch each plate's history for the days first."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Recompute days whose positions did not change.")
    ] = False,
    account: AccountOpt = None,
) -> None:
    """Compute and store routes, trips and stops (default: today, every plate with positions)."""
    current = settings()
    days = read_days(date, date_start, date_end, default=datetime.now(current.tz).date())
    chosen = read_plates(plates, plates_file)
    accounts = chosen_accounts(account)
    target = database()
    if refresh_latest or with_history:
        _fetch_before_routes(
            accounts, target, chosen, days, latest=refresh_latest, history=with_history
        )
    # After the fetch: a plate the API knows is stored by it.
    require_known_plates(target, chosen)
    if chosen is None and account is not None:
        with db.connection(target) as conn:
            chosen = plates_of(conn, load_accounts(current), accounts)
    analyze_new_partitions_at(target)
    events_params = EventParams.from_settings(current)
    with summary_printed_here("etrack.trips"):
        summary = compute_routes(
            target, RouteParams.from_settings(current), plates=chosen, days=days, force=force
        )
    echo_summary(summary.line())
    echo_summary(compute_events(target, chosen, days[0], days[-1], events_params).line())
    visits = compute_visits(target, chosen, days[0], days[-1], VisitParams.from_settings(current))
    echo_summary(visits.line())
    # The trips were rewritten: who drove them, again (it survives --force).
    with summary_printed_here("etrack.drivers"):
        drivers = compute_drivers(
            target, chosen, days[0], days[-1], JornadaParams.from_settings(current)
        )
    echo_summary(drivers.line())


def _fetch_before_routes(
    accounts: list[Account],
    target: db.Target,
    plates: list[str] | None,
    days: list[date],
    *,
    latest: bool,
    history: bool,
) -> None:
    current = settings()

    def account_plates(account: Account) -> list[str]:
        with db.connection(target) as conn:
            if plates is None:
                return plates_of(conn, accounts, [account])
            found = owners(conn, accounts, plates)
        return [p for p in plates if found[p].name == account.name]

    async def one(account: Account) -> str:
        async with open_collector(
            current.for_account(account), target, account=account.name
        ) as collector:
            if latest:
                await collector.fetch_latest()
            if history:
                for plate in await asyncio.to_thread(account_plates, account):
                    for day in days:
                        try:
                            await collector.fetch_history_day(plate, day)
                        except UnknownPlate as exc:
                            raise exc.naming(plate) from None
            return collector.summary.line()

    async def go() -> str:
        lines = await asyncio.gather(*(one(a) for a in accounts))
        if len(accounts) == 1:
            return lines[0]
        return " | ".join(f"{a.name}: {line}" for a, line in zip(accounts, lines, strict=True))

    try:
        echo(f"fetched: {asyncio.run(go())}")
    except MissingCredentials:
        logger.warning(
            "ETRAC_USER/ETRAC_KEY not set: computing routes from the positions already stored"
        )
    except EtrackError as exc:
        if not is_transient(exc):
            raise
        logger.warning("could not refresh from the API (%s); computing from stored positions", exc)


def register(app: typer.Typer) -> None:
    """Add the `routes` group to the `etrack` app (once: calling again is harmless)."""
    if "routes" not in {info.name for info in app.registered_groups}:
        app.add_typer(routes_app, name="routes")
