"""`etrack accounts [list|check]`: the configured eTrac accounts and their health."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import typer

from etrack.cli.common import database, echo, settings
from etrack.config import Account, load_accounts, select_accounts
from etrack.errors import EXIT_FAILURE, CredentialsError
from etrack.logs import redact, secrets_of
from etrack.provider.client import EtracClient
from etrack.store import db
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
    return moment.astimezone(settings().tz).strftime("%Y-%m-%d %H:%M:%S")


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
    header = f"{'account':<16} {'vehicles':>8}  {'last success':<19}  {'req/s':>6}  state"
    echo(header)
    for row in rows:
        rate = f"{row.rate_limit:g}" if row.rate_limit is not None else "-"
        state = row.state if row.configured else f"{row.state} (not configured)"
        if row.state == "failing":
            state += f": {row.reason}; next try {_when(row.retry_at)}"
        echo(
            f"{row.name:<16} {row.vehicles:>8}  {_when(row.last_success_at):<19}  {rate:>6}  {state}"
        )


@accounts_app.command("check")
def check_accounts(account: AccountOpt = None) -> None:
    """Call the API once per account (latest positions) and report; exit 1
    if any account fails."""
    current = settings()
    accounts = select_accounts(load_accounts(current), account)
    target = database()

    async def one(chosen: Account) -> tuple[bool, str]:
        secrets = secrets_of(current, chosen)
        try:
            async with EtracClient.from_settings(current.for_account(chosen)) as client:
                rows = await client.latest_positions()
        except CredentialsError as exc:
            reason = redact(str(exc), secrets)
            await asyncio.to_thread(_mark_failing, target, chosen, reason)
            return False, f"credentials refused: {reason}"
        except Exception as exc:
            # Whatever went wrong is this account's line of the report; the
            # other accounts are still checked.
            return False, f"failed: {redact(f'{type(exc).__name__}: {exc}', secrets)}"
        await asyncio.to_thread(_mark_ok, target, chosen)
        return True, f"ok, {len(rows)} vehicles"

    async def go() -> list[tuple[bool, str]]:
        return await asyncio.gather(*(one(a) for a in accounts))

    results = asyncio.run(go())
    for chosen, (_, line) in zip(accounts, results, strict=True):
        echo(f"{chosen.name}: {line}")
    if not all(ok for ok, _ in results):
        raise typer.Exit(EXIT_FAILURE)


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
