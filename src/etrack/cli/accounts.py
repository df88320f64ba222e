"""`etrack accounts [list|check]`: the configured eTrac accounts and their health."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import typer

from etrack import cli as root
from etrack.store import db

__all__ = ["register"]

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
    return moment.astimezone(root.settings().tz).strftime("%Y-%m-%d %H:%M:%S")


@accounts_app.callback()
def _accounts(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        list_accounts(None)


@accounts_app.command("list")
def list_accounts(account: AccountOpt = None) -> None:
    """Each account: vehicles, last successful fetch, rate limit, state."""
    from etrack.store.accounts import load_accounts, select_accounts, states

    accounts = load_accounts(root.settings())
    chosen = {a.name for a in select_accounts(accounts, account)}
    with db.connection(root.database()) as conn:
        rows = [row for row in states(conn, accounts) if row.name in chosen or not account]
    header = f"{'account':<16} {'vehicles':>8}  {'last success':<19}  {'req/s':>6}  state"
    root.echo(header)
    for row in rows:
        rate = f"{row.rate_limit:g}" if row.rate_limit is not None else "-"
        state = row.state if row.configured else f"{row.state} (not configured)"
        if row.state == "failing":
            state += f": {row.reason}; next try {_when(row.retry_at)}"
        root.echo(
            f"{row.name:<16} {row.vehicles:>8}  {_when(row.last_success_at):<19}  {rate:>6}  {state}"
        )


@accounts_app.command("check")
def check_accounts(account: AccountOpt = None) -> None:
    """Call the API once per account (latest positions) and report; exit 1
    if any account fails."""
    from etrack.logs import secrets_of
    from etrack.provider.client import AuthenticationError, EtracClient, MissingCredentials
    from etrack.store.accounts import load_accounts, mark_failing, mark_ok, select_accounts

    current = root.settings()
    accounts = select_accounts(load_accounts(current), account)
    target = root.database()

    async def one(chosen: Any) -> tuple[bool, str]:
        try:
            async with EtracClient.from_settings(chosen.settings) as client:
                rows = await client.latest_positions()
        except (AuthenticationError, MissingCredentials) as exc:
            reason = db.redact(str(exc), secrets_of(chosen.settings))
            await asyncio.to_thread(_mark, target, mark_failing, chosen, reason, current)
            return False, f"credentials refused: {reason}"
        except Exception as exc:
            return (
                False,
                f"failed: {db.redact(f'{type(exc).__name__}: {exc}', secrets_of(chosen.settings))}",
            )
        await asyncio.to_thread(_mark, target, mark_ok, chosen, None, current)
        return True, f"ok, {len(rows)} vehicles"

    async def go() -> list[tuple[bool, str]]:
        return await asyncio.gather(*(one(a) for a in accounts))

    results = asyncio.run(go())
    for chosen, (_, line) in zip(accounts, results, strict=True):
        root.echo(f"{chosen.name}: {line}")
    if not all(ok for ok, _ in results):
        raise typer.Exit(root.EXIT_FAILURE)


def _mark(target: db.Target, how: Any, account: Any, reason: str | None, current: Any) -> None:
    with db.connection(target) as conn:
        if reason is None:
            how(conn, account)
        else:
            how(conn, account, reason, current.etrack_account_retry_s)


def register(app: typer.Typer) -> None:
    if "accounts" not in {info.name for info in app.registered_groups}:
        app.add_typer(accounts_app, name="accounts")
