"""People, API tokens, share links and login throttling in the database
(migration 0016). Checks and hashing are etrack.access; this only stores.

The web reads the same named queries over its async pool (etrack.web.auth);
the rows become the same `User` through `user_from_row`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, cast

from psycopg.rows import dict_row

from etrack.store import db
from etrack.store.queries import query

__all__ = [
    "ROLES",
    "Role",
    "ShareLink",
    "TokenRow",
    "User",
    "UserSecrets",
    "add_share",
    "add_token",
    "add_user",
    "count_users",
    "get_share",
    "get_user",
    "list_shares",
    "list_tokens",
    "list_users",
    "rehash",
    "remove_user",
    "revoke_share",
    "revoke_token",
    "set_active",
    "set_password",
    "set_totp",
    "share_from_row",
    "update_user",
    "user_from_row",
]

Role = Literal["admin", "manager", "viewer", "api"]
ROLES: tuple[Role, ...] = ("admin", "manager", "viewer", "api")
Row = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class User:
    """A person or an integration; never carries a secret."""

    id: int
    login: str
    name: str
    role: Role
    accounts: tuple[str, ...]
    fleets: tuple[str, ...]
    can_write: bool
    active: bool
    session_epoch: int
    created_at: datetime | None
    last_login_at: datetime | None
    has_totp: bool = False

    @property
    def unscoped(self) -> bool:
        return not self.accounts and not self.fleets


@dataclass(frozen=True, slots=True)
class UserSecrets:
    """What the login check needs; repr shows neither secret."""

    user: User
    password_hash: str | None = field(repr=False)
    totp_secret: str | None = field(repr=False)


def _texts(value: object) -> tuple[str, ...]:
    return tuple(str(v) for v in cast(Sequence[object], value or ()))


def user_from_row(row: Row) -> User:
    return User(
        id=int(cast(int, row["id"])),
        login=str(row["login"]),
        name=str(row["name"] or ""),
        role=cast(Role, row["role"]),
        accounts=_texts(row["accounts"]),
        fleets=_texts(row["fleets"]),
        can_write=bool(row["can_write"]),
        active=bool(row["active"]),
        session_epoch=int(cast(int, row["session_epoch"])),
        created_at=cast(datetime | None, row.get("created_at")),
        last_login_at=cast(datetime | None, row.get("last_login_at")),
        has_totp=row.get("totp_secret") is not None,
    )


def secrets_from_row(row: Row) -> UserSecrets:
    hashed, totp = row.get("password_hash"), row.get("totp_secret")
    return UserSecrets(
        user_from_row(row),
        password_hash=str(hashed) if hashed is not None else None,
        totp_secret=str(totp) if totp else None,
    )


def _rows(conn: db.Conn, name: str, params: Mapping[str, object]) -> list[dict[str, object]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cast(list[dict[str, object]], cur.execute(query(name), params).fetchall())


def _one(conn: db.Conn, name: str, params: Mapping[str, object]) -> dict[str, object] | None:
    found = _rows(conn, name, params)
    return found[0] if found else None


# ---------------------------------------------------------------- users
def count_users(conn: db.Conn) -> int:
    row = _one(conn, "users_count", {})
    return int(cast(int, row["n"])) if row else 0


def add_user(
    conn: db.Conn,
    *,
    login: str,
    name: str,
    role: Role,
    accounts: Sequence[str],
    fleets: Sequence[str],
    password_hash: str | None,
    can_write: bool = False,
) -> int | None:
    """The new user's id; None when the login exists already."""
    row = _one(
        conn,
        "users_add",
        {
            "login": login,
            "name": name,
            "password_hash": password_hash,
            "role": role,
            "accounts": list(accounts),
            "fleets": list(fleets),
            "can_write": can_write,
        },
    )
    return int(cast(int, row["id"])) if row else None


def get_user(conn: db.Conn, login: str) -> UserSecrets | None:
    row = _one(conn, "users_get", {"login": login})
    return secrets_from_row(row) if row else None


def list_users(conn: db.Conn) -> list[User]:
    return [user_from_row(r) for r in _rows(conn, "users_list", {})]


def _changed(conn: db.Conn, name: str, params: Mapping[str, object]) -> bool:
    return _one(conn, name, params) is not None


def set_password(conn: db.Conn, login: str, password_hash: str) -> bool:
    return _changed(conn, "users_set_password", {"login": login, "password_hash": password_hash})


def rehash(conn: db.Conn, user_id: int, password_hash: str) -> None:
    conn.execute(query("users_rehash"), {"id": user_id, "password_hash": password_hash})


def set_active(conn: db.Conn, login: str, active: bool) -> bool:
    """Whether it changed (disabling a disabled user changes nothing)."""
    return _changed(conn, "users_set_active", {"login": login, "active": active})


def update_user(
    conn: db.Conn,
    login: str,
    *,
    role: Role,
    accounts: Sequence[str],
    fleets: Sequence[str],
    name: str,
    can_write: bool,
) -> bool:
    params = {
        "login": login,
        "role": role,
        "accounts": list(accounts),
        "fleets": list(fleets),
        "name": name,
        "can_write": can_write,
    }
    return _changed(conn, "users_update", params)


def set_totp(conn: db.Conn, login: str, secret: str | None) -> bool:
    return _changed(conn, "users_set_totp", {"login": login, "secret": secret})


def remove_user(conn: db.Conn, login: str) -> bool:
    return _changed(conn, "users_remove", {"login": login})


# --------------------------------------------------------------- tokens
@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    login: str
    prefix: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    last_used_from: str | None


def add_token(
    conn: db.Conn,
    *,
    user_id: int,
    token_hash: bytes,
    prefix: str,
    label: str,
    expires_at: datetime | None,
) -> int:
    row = _one(
        conn,
        "tokens_add",
        {
            "user_id": user_id,
            "token_hash": token_hash,
            "prefix": prefix,
            "label": label,
            "expires_at": expires_at,
        },
    )
    assert row is not None
    return int(cast(int, row["id"]))


def list_tokens(conn: db.Conn, login: str | None = None) -> list[TokenRow]:
    rows = _rows(conn, "tokens_list", {"login": login})
    return [TokenRow(**cast(dict[str, "str | int | datetime | None"], r)) for r in rows]  # type: ignore[arg-type]


def revoke_token(conn: db.Conn, token_id: int) -> bool:
    return _changed(conn, "tokens_revoke", {"id": token_id})


# ---------------------------------------------------------- share links
@dataclass(frozen=True, slots=True)
class ShareLink:
    id: int
    placa: str
    rota_date: date
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    uses: int


def share_from_row(row: Row) -> ShareLink:
    return ShareLink(
        id=int(cast(int, row["id"])),
        placa=str(row["placa"]),
        rota_date=cast(date, row["rota_date"]),
        created_by=str(row["created_by"]),
        created_at=cast(datetime, row["created_at"]),
        expires_at=cast(datetime, row["expires_at"]),
        revoked_at=cast(datetime | None, row["revoked_at"]),
        last_used_at=cast(datetime | None, row["last_used_at"]),
        uses=int(cast(int, row["uses"])),
    )


def add_share(
    conn: db.Conn,
    *,
    token_hash: bytes,
    placa: str,
    rota_date: date,
    created_by: str,
    expires_at: datetime,
) -> int:
    row = _one(
        conn,
        "shares_add",
        {
            "token_hash": token_hash,
            "placa": placa,
            "rota_date": rota_date,
            "created_by": created_by,
            "expires_at": expires_at,
        },
    )
    assert row is not None
    return int(cast(int, row["id"]))


def get_share(conn: db.Conn, share_id: int) -> ShareLink | None:
    row = _one(conn, "shares_by_id", {"id": share_id})
    return share_from_row(row) if row else None


def list_shares(
    conn: db.Conn, placa: str | None = None, rota_date: date | None = None
) -> list[ShareLink]:
    rows = _rows(conn, "shares_list", {"placa": placa, "rota_date": rota_date})
    return [share_from_row(r) for r in rows]


def revoke_share(conn: db.Conn, share_id: int) -> bool:
    return _changed(conn, "shares_revoke", {"id": share_id})
