"""`etrack accounts [list|check]`: the configured eTrac accounts and their health."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from etrack.cli.common import database, echo, require_credentials, settings
from etrack.config import Account, load_accounts, select_accounts
from etrack.errors import CredentialsError, exit_code_for
from etrack.logs import format_moment, redact, secrets_of
from etrack.provider.client import EtracClient
from etrack.store import db, rates
from etrack.store.accounts import mark_failing, mark_ok, states

__all__ = ["accounts_app", "register"]

accounts_app = typer.Typer(
    help="eTrac accounts (ETRACK_ACCOUNTS_FILE): fleet size, last fetch, rate limit, state.",
    invoke_without_command=True,
)

AccountOpt = Annotated[
    str | None, typer.Option("--account", help="Only this account; default: all.")
]


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return format_moment(moment, settings().tz)


@accounts_app.callback()
def _accounts(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        list_accounts(None)


@accounts_app.command("list")
def list_accounts(account: AccountOpt = None) -> None:
    """Each account: vehicles, last successful fetch, rate limit, state."""
    accounts = load_accounts(settings())
    chosen = {a.name for a in select_accounts(accounts, account)}
    with db.connection(database()) as conn:
        rows = [row for row in states(conn, accounts) if row.name in chosen or not account]
        paces = rates.paces_of(conn, accounts)
    header = (
        f"{'account':<16} {'vehicles':>8}  {'last success':<24}  {'start':>5}  "
        f"{'pace/s':>6}  {'learned':<8}  {'429s/requests':>14}  {'latency':>7}  state"
    )
    echo(header)
    for row in rows:
        start = f"{row.rate_limit:g}" if row.rate_limit is not None else "-"
        pace = paces.get(row.name)
        state = row.state if row.configured else f"{row.state} (not configured)"
        if row.state == "failing":
            state += f": {row.reason}; next try {_when(row.retry_at)}"
        echo(
            f"{row.name:<16} {row.vehicles:>8}  {_when(row.last_success_at):<24}  {start:>5}  "
            f"{_pace_columns(pace)}  {state}"
        )


def _taught_by(pace: rates.AccountRate) -> str:
    if pace.throttled_at_rate is not None:
        return f"last 429 at {pace.throttled_at_rate:.2f}/s"
    if pace.eased_at_rate is not None:
        return f"eased at {pace.eased_at_rate:.2f}/s when latency climbed (no 429 yet)"
    return "still growing (no 429 yet)"


def _pace_columns(pace: rates.AccountRate | None) -> str:
    """Current pace, whether a 429 taught it (or it is still growing), the
    429 count and the answers' latency."""
    if pace is None or pace.rate is None:
        return f"{'-':>6}  {'-':<8}  {'-':>14}  {'-':>7}"
    learned = "learning" if pace.learning else "yes"
    counts = f"{pace.throttled}/{pace.requests}"
    latency = f"{pace.latency_s * 1000:.0f} ms" if pace.latency_s is not None else "-"
    return f"{pace.rate:>6.2f}  {learned:<8}  {counts:>14}  {latency:>7}"


@accounts_app.command("rate")
def account_rate(
    account: AccountOpt = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset", help="Forget the learned pace: the next run starts at ETRAC_RATE_LIMIT."
        ),
    ] = False,
) -> None:
    """Each account's API pace: what it starts at, what it learned, its
    bounds (ETRAC_RATE_LIMIT, ETRAC_RATE_MIN, ETRAC_RATE_MAX, ETRAC_RATE_ADAPT)."""
    current = settings()
    accounts = select_accounts(load_accounts(current), account)
    with db.connection(database()) as conn:
        paces = rates.paces_of(conn, accounts)
        for chosen in accounts:
            bounds = current.for_account(chosen).pace_bounds
            mode = "adaptive" if bounds.adapt else "fixed"
            pace = paces.get(chosen.name)
            if reset:
                forgot = rates.forget(conn, rates.account_key(chosen.user))
                what = "forgot its learned pace" if forgot else "had no learned pace"
                echo(f"{chosen.name}: {what}; the next run starts at {bounds.start:g}/s")
                continue
            now = (
                "not measured yet"
                if pace is None or pace.rate is None
                else (
                    f"{pace.rate:.2f}/s, "
                    + _taught_by(pace)
                    + f", {pace.throttled} 429s in {pace.requests} requests"
                )
            )
            echo(
                f"{chosen.name}: {mode}, start {bounds.start:g}/s, between {bounds.floor:g} and "
                f"{bounds.ceiling:g}/s; now {now}"
            )


@accounts_app.command("check")
def check_accounts(account: AccountOpt = None) -> None:
    """Call the API once per account (latest positions) and report; exit 2
    if credentials are refused, 3 if the API is unreachable, 1 for any other
    failure (with several accounts failing, the highest)."""
    current = settings()
    accounts = select_accounts(load_accounts(current), account)
    require_credentials(accounts)  # before the database
    target = database()

    async def one(chosen: Account) -> tuple[int, str]:
        secrets = secrets_of(current, chosen)
        try:
            async with EtracClient.from_settings(current.for_account(chosen)) as client:
                rows = await client.latest_positions()
        except CredentialsError as exc:
            reason = redact(str(exc), secrets)
            await asyncio.to_thread(_mark_failing, target, chosen, reason)
            return exit_code_for(exc), f"credentials refused: {reason}"
        except Exception as exc:
            # Whatever went wrong is this account's line of the report; the
            # other accounts are still checked.
            reason = redact(f"{type(exc).__name__}: {exc}", secrets)
            return exit_code_for(exc), f"failed: {reason}"
        await asyncio.to_thread(_mark_ok, target, chosen)
        return 0, f"ok, {len(rows)} vehicles"

    async def go() -> list[tuple[int, str]]:
        return await asyncio.gather(*(one(a) for a in accounts))

    results = asyncio.run(go())
    for chosen, (_, line) in zip(accounts, results, strict=True):
        echo(f"{chosen.name}: {line}")
    code = max(code for code, _ in results)
    if code:
        raise typer.Exit(code)


def _mark_ok(target: db.Target, account: Account) -> None:
    with db.connection(target) as conn:
        mark_ok(conn, account)


def _mark_failing(target: db.Target, account: Account, reason: str) -> None:
    with db.connection(target) as conn:
        mark_failing(conn, account, reason, settings().etrack_account_retry_s)


def register(app: typer.Typer) -> None:
    """Add the `accounts` group to the `etrack` app (once: calling again is harmless)."""
    if "accounts" not in {info.name for info in app.registered_groups}:
        app.add_typer(accounts_app, name="accounts")
