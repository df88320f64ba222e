"""The audit log (migration 0016): who did what, when, from where.

Who is the request's or the command's actor, set once where it enters
(etrack.web.auth for a request, etrack.cli for a command, the worker for its
tasks) in a context variable, so the store functions that change state record
it without every caller passing it along. `record` writes in the caller's
transaction: a change and its audit row commit together or not at all.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from etrack.store import db
from etrack.store.queries import query

__all__ = [
    "Actor",
    "AuditRow",
    "acting",
    "audit_params",
    "cli_actor",
    "current_actor",
    "list_audit",
    "prune_audit",
    "record",
    "set_actor",
]


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    address: str | None = None


_SYSTEM = Actor("system")
_actor: ContextVar[Actor | None] = ContextVar("etrack_actor", default=None)


def current_actor() -> Actor:
    return _actor.get() or _SYSTEM


@contextmanager
def acting(actor: Actor) -> Iterator[Actor]:
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def set_actor(actor: Actor) -> None:
    """For an entry point that runs one command per process (the CLI)."""
    _actor.set(actor)


def cli_actor() -> Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(f"cli:{who}", "local")


# Values an audit row must never hold, whatever a caller passes in `detail`.
_SECRET_KEYS = frozenset({"password", "password_hash", "token", "token_hash", "secret", "totp"})


def _clean(detail: Mapping[str, object] | None) -> dict[str, object]:
    return {k: v for k, v in (detail or {}).items() if k not in _SECRET_KEYS}


def record(
    conn: db.Conn,
    action: str,
    target: str | None = None,
    *,
    ok: bool = True,
    detail: Mapping[str, object] | None = None,
    actor: Actor | None = None,
) -> None:
    params = audit_params(action, target, ok, detail, actor or current_actor())
    conn.execute(query("audit_add"), params)


def audit_params(
    action: str,
    target: str | None,
    ok: bool,
    detail: Mapping[str, object] | None,
    actor: Actor,
) -> dict[str, object]:
    """The audit_add parameters (also for the web's async connection)."""
    return {
        "actor": actor.name,
        "address": actor.address,
        "action": action,
        "target": target,
        "ok": ok,
        "detail": Jsonb(_clean(detail)),
    }


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    address: str | None
    action: str
    target: str | None
    ok: bool
    detail: dict[str, object]


def list_audit(
    conn: db.Conn,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    failed: bool | None = None,
    limit: int = 500,
) -> list[AuditRow]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            query("audit_list"),
            {
                "actor": actor,
                "action": action,
                "since": since,
                "until": until,
                "failed": failed,
                "limit": limit,
            },
        ).fetchall()
    return [AuditRow(**cast(dict[str, object], r)) for r in rows]  # type: ignore[arg-type]


def prune_audit(conn: db.Conn, before: datetime) -> int:
    """Rows older than `before` deleted (the retention setting's cutoff)."""
    return conn.execute(query("audit_prune"), {"before": before}).rowcount
