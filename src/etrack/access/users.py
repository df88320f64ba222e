"""Adding and changing users, tokens and share links, with their checks and
audit rows: what `etrack users|tokens|share` and the Users page both call.

Every function takes a connection and changes state in its transaction,
recording the audit row in the same one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyotp

from etrack.access.passwords import check_new_password, hash_password, needs_rehash
from etrack.config import parse_duration
from etrack.errors import UsageError
from etrack.store import db
from etrack.store import users as store
from etrack.store.audit import record
from etrack.store.users import ROLES, Role, User

__all__ = [
    "TOKEN_PREFIX",
    "NewSecret",
    "add_user",
    "bootstrap_admin",
    "check_login",
    "check_role",
    "create_share",
    "create_token",
    "disable_totp",
    "enroll_totp",
    "expiry",
    "hash_token",
    "remove_user",
    "revoke_share",
    "revoke_token",
    "set_active",
    "set_password",
    "update_user",
    "verify_totp",
]

# Not secrets: the marks that tell a token or a link apart in a log or a leak scanner.
TOKEN_PREFIX = "etk_"  # noqa: S105
SHARE_PREFIX = "shr_"
_LOGIN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class NewSecret:
    """A token or link made now: `clear` is shown once and never stored."""

    id: int
    clear: str
    expires_at: datetime | None


def hash_token(clear: str) -> bytes:
    # A token carries 256 random bits: a fast hash is as good as a slow one.
    return hashlib.sha256(clear.encode()).digest()


def check_login(text: str) -> str:
    login = text.strip().lower()
    if not _LOGIN.match(login):
        raise UsageError(f"login: expected an e-mail address (like ana@example.com), got {text!r}")
    return login


def check_role(text: str) -> Role:
    for role in ROLES:
        if text == role:
            return role
    raise UsageError(f"role: expected one of {', '.join(ROLES)}, got {text!r}")


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted({v.strip() for v in values if v.strip()}))


def _check_scope(
    role: Role,
    accounts: Sequence[str],
    fleets: Sequence[str],
    known_accounts: Sequence[str] | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    wanted, groups = _names(accounts), _names(fleets)
    if known_accounts is not None:
        unknown = [a for a in wanted if a not in known_accounts]
        if unknown:
            raise UsageError(
                f"--accounts: no account {', '.join(unknown)} (known: {', '.join(known_accounts)})"
            )
    if role != "admin" and not wanted and not groups:
        raise UsageError(
            f"a {role} needs a scope: give --accounts A,B and/or --fleets F,G "
            "(only an admin sees every vehicle)"
        )
    return wanted, groups


def _existing(conn: db.Conn, login: str) -> store.UserSecrets:
    found = store.get_user(conn, login.strip().lower())
    if found is None:
        raise UsageError(f"no user {login!r} (see `etrack users list`)")
    return found


def _active_admins(conn: db.Conn) -> list[User]:
    return [u for u in store.list_users(conn) if u.role == "admin" and u.active]


def _keeps_an_admin(conn: db.Conn, user: User, what: str) -> None:
    admins = _active_admins(conn)
    if user.role == "admin" and user.active and [a.id for a in admins] == [user.id]:
        raise UsageError(f"{what} {user.login}: it is the last active admin; add another first")


def add_user(
    conn: db.Conn,
    login: str,
    *,
    role: str,
    password: str | None,
    accounts: Sequence[str] = (),
    fleets: Sequence[str] = (),
    name: str = "",
    can_write: bool = False,
    known_accounts: Sequence[str] | None = None,
) -> User:
    checked = check_login(login)
    kind = check_role(role)
    wanted, groups = _check_scope(kind, accounts, fleets, known_accounts)
    if kind == "api":
        if password:
            raise UsageError("an api user has no password: it uses tokens (etrack tokens create)")
        hashed = None
    else:
        if not password:
            raise UsageError(f"a {kind} needs a password (asked at the prompt, or on stdin)")
        hashed = hash_password(check_new_password(password))
    if can_write and kind != "api":
        raise UsageError("--write is for api users (admins and managers write already)")
    made = store.add_user(
        conn,
        login=checked,
        name=name.strip(),
        role=kind,
        accounts=wanted,
        fleets=groups,
        password_hash=hashed,
        can_write=can_write,
    )
    if made is None:
        raise UsageError(f"user {checked} exists already (etrack users list)")
    detail = {"role": kind, "accounts": list(wanted), "fleets": list(groups), "write": can_write}
    record(conn, "user.add", checked, detail=detail)
    found = store.get_user(conn, checked)
    assert found is not None
    return found.user


def update_user(
    conn: db.Conn,
    login: str,
    *,
    role: str | None = None,
    accounts: Sequence[str] | None = None,
    fleets: Sequence[str] | None = None,
    name: str | None = None,
    can_write: bool | None = None,
    known_accounts: Sequence[str] | None = None,
) -> bool:
    """Whether it changed; the user's sessions end when it did."""
    user = _existing(conn, login).user
    kind = check_role(role) if role is not None else user.role
    wanted, groups = _check_scope(
        kind,
        user.accounts if accounts is None else accounts,
        user.fleets if fleets is None else fleets,
        known_accounts,
    )
    if kind != "admin":
        _keeps_an_admin(conn, user, "making a non-admin of")
    write = user.can_write if can_write is None else can_write
    changed = store.update_user(
        conn,
        user.login,
        role=kind,
        accounts=wanted,
        fleets=groups,
        name=user.name if name is None else name.strip(),
        can_write=write and kind == "api",
    )
    if changed:
        detail = {"role": kind, "accounts": list(wanted), "fleets": list(groups)}
        record(conn, "user.update", user.login, detail=detail)
    return changed


def set_password(conn: db.Conn, login: str, password: str) -> None:
    user = _existing(conn, login).user
    if user.role == "api":
        raise UsageError(f"{user.login} is an api user: it has tokens, not a password")
    store.set_password(conn, user.login, hash_password(check_new_password(password)))
    record(conn, "user.passwd", user.login)


def set_active(conn: db.Conn, login: str, active: bool) -> bool:
    user = _existing(conn, login).user
    if not active:
        _keeps_an_admin(conn, user, "disabling")
    changed = store.set_active(conn, user.login, active)
    if changed:
        record(conn, "user.enable" if active else "user.disable", user.login)
    return changed


def remove_user(conn: db.Conn, login: str) -> bool:
    found = store.get_user(conn, login.strip().lower())
    if found is None:
        return False
    _keeps_an_admin(conn, found.user, "removing")
    store.remove_user(conn, found.user.login)
    record(conn, "user.remove", found.user.login)
    return True


def bootstrap_admin(conn: db.Conn, login: str, stored: str) -> bool:
    """The single-admin shortcut: with no user yet, ETRACK_WEB_USER and
    ETRACK_WEB_PASSWORD (plain or a pbkdf2 hash) become the first admin.
    A plain password is hashed with argon2 here; a hash is kept as given."""
    if store.count_users(conn) > 0:
        return False
    hashed = hash_password(stored) if not stored.startswith("pbkdf2_sha256$") else stored
    made = store.add_user(
        conn,
        login=login.strip().lower(),
        name="",
        role="admin",
        accounts=(),
        fleets=(),
        password_hash=hashed,
    )
    if made is not None:
        record(conn, "user.add", login.strip().lower(), detail={"role": "admin", "from": "env"})
    return made is not None


def rehash_if_needed(conn: db.Conn, user: User, password: str, stored: str) -> None:
    """After a successful login with a pbkdf2/plain value: store argon2 instead."""
    if needs_rehash(stored):
        store.rehash(conn, user.id, hash_password(password))


# --------------------------------------------------------------- tokens
def expiry(text: str | None, *, now: datetime | None = None) -> datetime | None:
    """90d, 12w, 6m, 1y from now; None or 'never' for no expiry."""
    if text is None or text.strip().lower() in ("", "never"):
        return None
    try:
        period = parse_duration(text.strip())
    except ValueError as exc:
        raise UsageError(f"--expires: {exc}") from None
    moment = now or datetime.now(UTC)
    days = (moment.date() - period.before(moment.date())).days
    return moment + timedelta(days=days)


def create_token(
    conn: db.Conn, login: str, *, expires: str | None = "90d", label: str = ""
) -> NewSecret:
    found = _existing(conn, login)
    if not found.user.active:
        raise UsageError(f"{found.user.login} is disabled: enable it first")
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    until = expiry(expires)
    token_id = store.add_token(
        conn,
        user_id=found.user.id,
        token_hash=hash_token(clear),
        prefix=clear[: len(TOKEN_PREFIX) + 6],
        label=label.strip(),
        expires_at=until,
    )
    record(conn, "token.create", found.user.login, detail={"token": token_id, "id": token_id})
    return NewSecret(token_id, clear, until)


def revoke_token(conn: db.Conn, token_id: int) -> bool:
    changed = store.revoke_token(conn, token_id)
    if changed:
        record(conn, "token.revoke", str(token_id))
    return changed


# ---------------------------------------------------------- share links
def create_share(conn: db.Conn, placa: str, day: date, *, days: int, created_by: str) -> NewSecret:
    if days < 1 or days > 365:
        raise UsageError(f"expires: expected 1 to 365 days, got {days}")
    clear = SHARE_PREFIX + secrets.token_urlsafe(32)
    until = datetime.now(UTC) + timedelta(days=days)
    share_id = store.add_share(
        conn,
        token_hash=hash_token(clear),
        placa=placa,
        rota_date=day,
        created_by=created_by,
        expires_at=until,
    )
    record(conn, "share.create", f"{placa} {day.isoformat()}", detail={"id": share_id})
    return NewSecret(share_id, clear, until)


def revoke_share(conn: db.Conn, share_id: int) -> bool:
    found = store.get_share(conn, share_id)
    changed = store.revoke_share(conn, share_id)
    if changed and found is not None:
        target = f"{found.placa} {found.rota_date.isoformat()}"
        record(conn, "share.revoke", target, detail={"id": share_id})
    return changed


# ------------------------------------------------------------------ TOTP
def enroll_totp(conn: db.Conn, login: str, *, issuer: str = "etrack") -> tuple[str, str]:
    """A new second-factor secret for an admin: (secret, otpauth:// URI), shown once."""
    user = _existing(conn, login).user
    if user.role != "admin":
        raise UsageError(f"{user.login}: the second factor is for admins")
    secret = pyotp.random_base32()
    store.set_totp(conn, user.login, secret)
    record(conn, "user.totp", user.login, detail={"enabled": True})
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.login, issuer_name=issuer)


def disable_totp(conn: db.Conn, login: str) -> bool:
    user = _existing(conn, login).user
    changed = user.has_totp and store.set_totp(conn, user.login, None)
    if changed:
        record(conn, "user.totp", user.login, detail={"enabled": False})
    return changed


def verify_totp(secret: str, code: str) -> bool:
    digits = "".join(code.split())
    # One step either side: phones' clocks drift.
    return digits.isdigit() and pyotp.TOTP(secret).verify(digits, valid_window=1)
