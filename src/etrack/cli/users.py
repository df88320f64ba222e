"""`etrack users|tokens|share|audit`: the people and integrations of the web UI,
their API tokens, share links of one vehicle-day, and the audit log (docs/users.md).

The checks, hashing and audit rows are etrack.access.users'; this wires
options to them. Each command is one transaction. Secrets are read from a
hidden prompt or stdin (never an argument, which `ps` and shell histories
show) and a new token or link is printed once, here, and stored hashed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

import typer

from etrack.access.users import (
    add_user,
    check_login,
    check_role,
    create_share,
    create_token,
    disable_totp,
    enroll_totp,
    remove_user,
    revoke_share,
    revoke_token,
    set_active,
    set_password,
    update_user,
)
from etrack.cli.common import (
    database,
    echo,
    read_day,
    read_plate,
    records_csv,
    require_known_plates,
    settings,
)
from etrack.config import load_accounts
from etrack.errors import UsageError
from etrack.store import db
from etrack.store import users as store
from etrack.store.audit import AuditRow, current_actor, list_audit, prune_audit, record
from etrack.store.retention import cutoff_for
from etrack.store.users import ShareLink, TokenRow, User

__all__ = ["audit_app", "register", "share_app", "tokens_app", "users_app"]

users_app = typer.Typer(
    help="People and integrations of the web UI: roles admin, manager, viewer, api; "
    "scope by accounts and fleets.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    help="API tokens (Authorization: Bearer): shown once, stored hashed, revocable.",
    no_args_is_help=True,
)
share_app = typer.Typer(
    help="Read-only links to one vehicle-day, expiring, revocable.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="The audit log: who changed what, when, from where.",
    no_args_is_help=True,
)

# Where a share link points when ETRACK_PUBLIC_URL is unset: `etrack web`'s default.
LOCAL_URL = "http://127.0.0.1:5001"
FORMATS = ("table", "csv")
USER_FIELDS = ("login", "name", "role", "scope", "active", "2fa", "created", "last_login")
AUDIT_FIELDS = ("id", "at", "actor", "address", "action", "target", "ok", "detail")

LoginArg = Annotated[str, typer.Argument(help="The user's login (an e-mail address).")]
RoleOpt = Annotated[str, typer.Option("--role", help="admin, manager, viewer or api.")]
AccountsOpt = Annotated[
    str | None,
    typer.Option(
        "--accounts", help="Comma-separated accounts the user sees (ETRACK_ACCOUNTS_FILE)."
    ),
]
FleetsOpt = Annotated[
    str | None,
    typer.Option("--fleets", help="Comma-separated fleets (terminals.frota) the user sees."),
]
NameOpt = Annotated[str | None, typer.Option("--name", help="Display name.")]
FormatOpt = Annotated[
    str, typer.Option("--format", help="table or csv (UTF-8 with BOM, for Excel).")
]


# ------------------------------------------------------------------ helpers
def _split(text: str | None) -> list[str]:
    return [] if text is None else [part.strip() for part in text.split(",") if part.strip()]


def _known_accounts() -> list[str]:
    return [account.name for account in load_accounts(settings())]


def _format(output: str) -> str:
    if output not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {output!r}")
    return output


def _when(value: datetime | None, empty: str = "-") -> str:
    if value is None:
        return empty
    return value.astimezone(settings().tz).strftime("%Y-%m-%d %H:%M")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(settings().tz).isoformat()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    return "\n".join(lines) + "\n"


def _read_password(prompt: str) -> str:
    """A password from a hidden prompt (typed twice) or, when stdin is not a
    terminal (a script, a pipe), its first line."""
    if sys.stdin is not None and sys.stdin.isatty():
        return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline() if sys.stdin is not None else ""
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise UsageError("password: expected one line on stdin (or run it in a terminal)")
    return password


def _user(conn: db.Conn, login: str) -> User:
    found = store.get_user(conn, login.strip().lower())
    if found is None:
        raise UsageError(f"no user {login!r} (see `etrack users list`)")
    return found.user


def _scope(user: User) -> str:
    parts = []
    if user.accounts:
        parts.append(f"accounts {','.join(user.accounts)}")
    if user.fleets:
        parts.append(f"fleets {','.join(user.fleets)}")
    if user.role == "api" and user.can_write:
        parts.append("write")
    return "; ".join(parts) or "everything"


# -------------------------------------------------------------------- users
@users_app.command("add")
def users_add(
    login: LoginArg,
    role: RoleOpt,
    accounts: AccountsOpt = None,
    fleets: FleetsOpt = None,
    name: NameOpt = None,
    write: Annotated[
        bool, typer.Option("--write", help="api users: may change data too (default read only).")
    ] = False,
) -> None:
    """Add a user; the password is asked (or read from stdin's first line); api users take none."""
    checked, kind = check_login(login), check_role(role)
    target = database()
    # Refused before the password is typed: a login taken.
    with db.connection(target) as conn:
        if store.get_user(conn, checked) is not None:
            raise UsageError(f"user {checked} exists already (etrack users list)")
    password = None if kind == "api" else _read_password("Password")
    with db.connection(target) as conn:
        user = add_user(
            conn,
            checked,
            role=kind,
            password=password,
            accounts=_split(accounts),
            fleets=_split(fleets),
            name=name or "",
            can_write=write,
            known_accounts=_known_accounts(),
        )
    echo(f"user {user.login} added: {user.role}, {_scope(user)}")
    if user.role == "api":
        echo(f"an api user signs in with tokens: etrack tokens create --user {user.login}")


@users_app.command("list")
def users_list(output: FormatOpt = "table") -> None:
    """The users: role, scope, active, second factor, created, last login (never a secret)."""
    _format(output)
    with db.connection(database()) as conn:
        users = store.list_users(conn)
    if output == "csv":
        records = [
            {
                "login": u.login,
                "name": u.name,
                "role": u.role,
                "scope": _scope(u),
                "active": "yes" if u.active else "no",
                "2fa": "yes" if u.has_totp else "no",
                "created": _iso(u.created_at),
                "last_login": _iso(u.last_login_at),
            }
            for u in users
        ]
        typer.echo(records_csv(records, USER_FIELDS), nl=False)
        return
    if not users:
        echo("no users (etrack users add LOGIN --role admin adds the first)")
        return
    header = ("login", "name", "role", "scope", "active", "2fa", "created", "last login")
    rows = [
        (
            u.login,
            u.name or "-",
            u.role,
            _scope(u),
            "yes" if u.active else "no",
            "yes" if u.has_totp else "no",
            _when(u.created_at),
            _when(u.last_login_at, "never"),
        )
        for u in users
    ]
    typer.echo(_table(header, rows), nl=False)


@users_app.command("passwd")
def users_passwd(login: LoginArg) -> None:
    """Set a new password (asked, or stdin's first line); the user's sessions end."""
    target = database()
    with db.connection(target) as conn:
        user = _user(conn, login)
    if user.role == "api":
        raise UsageError(f"{user.login} is an api user: it has tokens, not a password")
    password = _read_password(f"New password of {user.login}")
    with db.connection(target) as conn:
        set_password(conn, user.login, password)
    echo(f"password of {user.login} changed; their sessions ended")


def _set_active(login: str, active: bool) -> None:
    with db.connection(database()) as conn:
        user = _user(conn, login)
        changed = set_active(conn, user.login, active)
    state = "enabled" if active else "disabled"
    if not changed:
        echo(f"user {user.login} unchanged (already {state})")
        return
    ended = "" if active else "; their sessions and tokens stop working now"
    echo(f"user {user.login} {state}{ended}")


@users_app.command("disable")
def users_disable(login: LoginArg) -> None:
    """Disable a user: their sessions and tokens stop at once; nothing is deleted."""
    _set_active(login, False)


@users_app.command("enable")
def users_enable(login: LoginArg) -> None:
    """Enable a disabled user again (their unrevoked tokens work again)."""
    _set_active(login, True)


@users_app.command("remove")
def users_remove(login: LoginArg) -> None:
    """Remove a user with their tokens (the audit rows stay)."""
    with db.connection(database()) as conn:
        removed = remove_user(conn, login)
    if not removed:
        raise UsageError(f"no user {login!r} (already removed?)")
    echo(f"user {login.strip().lower()} removed")


@users_app.command("set")
def users_set(
    login: LoginArg,
    role: Annotated[
        str | None, typer.Option("--role", help="admin, manager, viewer or api.")
    ] = None,
    accounts: AccountsOpt = None,
    fleets: FleetsOpt = None,
    name: NameOpt = None,
    write: Annotated[
        bool | None,
        typer.Option("--write/--read-only", help="api users: may change data, or not."),
    ] = None,
) -> None:
    """Change a user's role, scope or name (what is not given stays); their sessions end."""
    with db.connection(database()) as conn:
        user = _user(conn, login)
        changed = update_user(
            conn,
            user.login,
            role=role,
            accounts=None if accounts is None else _split(accounts),
            fleets=None if fleets is None else _split(fleets),
            name=name,
            can_write=write,
            known_accounts=_known_accounts(),
        )
        after = _user(conn, user.login)
    if not changed:
        echo(f"user {user.login} unchanged")
        return
    echo(f"user {after.login} changed: {after.role}, {_scope(after)}; their sessions ended")


@users_app.command("totp")
def users_totp(
    login: LoginArg,
    off: Annotated[bool, typer.Option("--off", help="Remove the second factor.")] = False,
) -> None:
    """Enroll an admin in a TOTP second factor (a new secret, shown once), or --off."""
    with db.connection(database()) as conn:
        user = _user(conn, login)
        if off:
            changed = disable_totp(conn, user.login)
        else:
            secret, uri = enroll_totp(conn, user.login)
    if off:
        echo(f"second factor of {user.login} {'removed' if changed else 'unchanged (none)'}")
        return
    # The only time they are shown: the authenticator app needs one of them.
    echo(f"second factor of {user.login} enrolled (shown once; add it to an authenticator app):")
    echo(f"secret: {secret}")
    echo(f"uri: {uri}")


# ------------------------------------------------------------------- tokens
@tokens_app.command("create")
def tokens_create(
    user: Annotated[str, typer.Option("--user", help="The token's user (login).")],
    expires: Annotated[
        str, typer.Option("--expires", help="90d, 12w, 6m, 1y from now, or never.")
    ] = "90d",
    label: Annotated[str, typer.Option("--label", help="What the token is for.")] = "",
) -> None:
    """Create a token for a user: printed once, stored hashed (sha256)."""
    with db.connection(database()) as conn:
        made = create_token(conn, user, expires=expires, label=label)
    until = _when(made.expires_at, "never")
    echo(f"token {made.id} for {user.strip().lower()}, expires {until} (shown once, keep it safe):")
    echo(made.clear)


def _token_row(t: TokenRow) -> tuple[str, ...]:
    return (
        str(t.id),
        t.login,
        t.prefix,
        t.label or "-",
        _when(t.created_at),
        _when(t.expires_at, "never"),
        _when(t.revoked_at),
        _when(t.last_used_at, "never"),
        t.last_used_from or "-",
    )


@tokens_app.command("list")
def tokens_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
) -> None:
    """The tokens (their first characters only): created, expires, revoked, last use."""
    with db.connection(database()) as conn:
        if user is not None:
            _user(conn, user)
        tokens = store.list_tokens(conn, None if user is None else user.strip().lower())
    if not tokens:
        echo("no tokens")
        return
    header = ("id", "user", "prefix", "label", "created", "expires", "revoked", "last used", "from")
    typer.echo(_table(header, [_token_row(t) for t in tokens]), nl=False)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, typer.Argument(metavar="ID", help="The token's id (tokens list).")],
) -> None:
    """Revoke a token: it stops working at once."""
    with db.connection(database()) as conn:
        if not any(t.id == token_id for t in store.list_tokens(conn)):
            raise UsageError(f"no token {token_id} (see `etrack tokens list`)")
        changed = revoke_token(conn, token_id)
    echo(f"token {token_id} {'revoked' if changed else 'unchanged (already revoked)'}")


# -------------------------------------------------------------- share links
@share_app.command("create")
def share_create(
    plate: Annotated[str, typer.Argument(help="Plate, e.g. ABC1234.")],
    day: Annotated[str, typer.Option("--date", help="The local day shown.")],
    days: Annotated[
        int | None,
        typer.Option("--days", help="Days the link stays valid (default ETRACK_SHARE_LINK_DAYS)."),
    ] = None,
) -> None:
    """Create a read-only link to one vehicle's day: the URL is printed once."""
    current = settings()
    placa, when = read_plate(plate), read_day(day)
    target = database()
    require_known_plates(target, [placa])
    with db.connection(target) as conn:
        made = create_share(
            conn,
            placa,
            when,
            days=current.etrack_share_link_days if days is None else days,
            created_by=current_actor().name,
        )
    base = (current.etrack_web_public_url or LOCAL_URL).rstrip("/")
    echo(
        f"share link {made.id} of {placa} {when.isoformat()}, expires {_when(made.expires_at)} (shown once):"
    )
    echo(f"{base}/share/{made.clear}")


def _share_state(link: ShareLink, now: datetime) -> str:
    if link.revoked_at is not None:
        return "revoked"
    return "expired" if link.expires_at <= now else "live"


@share_app.command("list")
def share_list(
    plate: Annotated[str | None, typer.Option("--plate", help="Only this plate's links.")] = None,
    day: Annotated[str | None, typer.Option("--date", help="Only links to this day.")] = None,
) -> None:
    """The share links (never their tokens): day, state, expiry, uses."""
    placa = None if plate is None else read_plate(plate)
    when = None if day is None else read_day(day)
    with db.connection(database()) as conn:
        links = store.list_shares(conn, placa, when)
    if not links:
        echo("no share links")
        return
    moment = datetime.now(UTC)
    header = (
        "id",
        "plate",
        "day",
        "state",
        "created by",
        "created",
        "expires",
        "uses",
        "last used",
    )
    rows = [
        (
            str(s.id),
            s.placa,
            s.rota_date.isoformat(),
            _share_state(s, moment),
            s.created_by,
            _when(s.created_at),
            _when(s.expires_at),
            str(s.uses),
            _when(s.last_used_at, "never"),
        )
        for s in links
    ]
    typer.echo(_table(header, rows), nl=False)


@share_app.command("revoke")
def share_revoke(
    share_id: Annotated[int, typer.Argument(metavar="ID", help="The link's id (share list).")],
) -> None:
    """Revoke a share link: it stops working at once."""
    with db.connection(database()) as conn:
        if store.get_share(conn, share_id) is None:
            raise UsageError(f"no share link {share_id} (see `etrack share list`)")
        changed = revoke_share(conn, share_id)
    echo(f"share link {share_id} {'revoked' if changed else 'unchanged (already revoked)'}")


# -------------------------------------------------------------------- audit
def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), settings().tz)


def _audit_record(row: AuditRow) -> dict[str, object]:
    return {
        "id": row.id,
        "at": _iso(row.at),
        "actor": row.actor,
        "address": row.address,
        "action": row.action,
        "target": row.target,
        "ok": "yes" if row.ok else "no",
        "detail": json.dumps(row.detail, ensure_ascii=False, sort_keys=True) if row.detail else "",
    }


@audit_app.command("list")
def audit_list(
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only this actor (a login, cli:USER, ...).")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only actions starting so (user., token.create).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="From this local day.")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="To this local day (included).")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only what failed.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 100,
    output: FormatOpt = "table",
) -> None:
    """The audit rows, newest first, filtered."""
    _format(output)
    if limit < 1:
        raise UsageError(f"--limit: expected at least 1, got {limit}")
    lo = None if since is None else _day_start(read_day(since, "since"))
    hi = None if until is None else _day_start(read_day(until, "until") + timedelta(days=1))
    with db.connection(database()) as conn:
        rows = list_audit(
            conn,
            actor=actor,
            action=action,
            since=lo,
            until=hi,
            failed=True if failed else None,
            limit=limit,
        )
    records = [_audit_record(r) for r in rows]
    if output == "csv":
        typer.echo(records_csv(records, AUDIT_FIELDS), nl=False)
        return
    if not rows:
        echo("no audit rows")
        return
    header = ("at", "actor", "from", "action", "target", "ok", "detail")
    table = [
        (
            _when(r.at),
            r.actor,
            r.address or "-",
            r.action,
            r.target or "-",
            "yes" if r.ok else "no",
            str(rec["detail"]),
        )
        for r, rec in zip(rows, records, strict=True)
    ]
    typer.echo(_table(header, table), nl=False)


@audit_app.command("prune")
def audit_prune() -> None:
    """Delete the audit rows older than ETRACK_AUDIT_RETENTION (from local midnight); re-runs delete nothing more."""
    current = settings()
    retention = current.etrack_audit_retention
    if retention is None:
        echo("ETRACK_AUDIT_RETENTION is empty: every audit row is kept")
        return
    cutoff = cutoff_for(retention, current.tz)
    with db.connection(database()) as conn:
        deleted = prune_audit(conn, cutoff)
        if deleted:
            record(
                conn, "audit.prune", None, detail={"deleted": deleted, "before": cutoff.isoformat()}
            )
    echo(
        f"audit: {deleted} rows before {_when(cutoff)} deleted (ETRACK_AUDIT_RETENTION={retention})"
    )


def register(app: typer.Typer) -> None:
    """Add the `users`, `tokens`, `share` and `audit` groups (once: calling again is harmless)."""
    taken = {info.name for info in app.registered_groups}
    for name, group in (
        ("users", users_app),
        ("tokens", tokens_app),
        ("share", share_app),
        ("audit", audit_app),
    ):
        if name not in taken:
            app.add_typer(group, name=name)
