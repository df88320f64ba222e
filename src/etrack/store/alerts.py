"""Alert rules in the database: add, get, list (with their delivery counts),
pause or resume, remove, and the record of every delivery attempt.

The SQL side of `etrack alerts` (docs/alerts.md). What gets queued and the
delivery itself are jobs (etrack.jobs.alerts), through the job App's pool,
with their SQL in the same file (store/sql/alerts.sql).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from psycopg.rows import dict_row

from etrack.store import audit, db
from etrack.store.queries import query

__all__ = [
    "DeliveryRow",
    "RuleRow",
    "RuleSpec",
    "RuleSummary",
    "add_rule",
    "get_rule",
    "list_deliveries",
    "list_rules",
    "remove_rule",
    "rule_from_row",
    "set_rule_active",
]


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as written (checked by etrack.alerts.rules.check_rule), what
    `add_rule` stores. The secret signs webhook bodies: kept out of the repr,
    so that no log line or traceback ever shows it."""

    name: str
    kinds: tuple[str, ...]
    plates: tuple[str, ...] | None
    fleets: tuple[str, ...] | None
    # The fences whose events the rule takes (events whose `rule` is
    # 'fence:NAME'); None: any event, fence or not.
    fences: tuple[str, ...] | None
    min_value: float | None
    channel: str
    url: str | None
    secret: str | None = field(repr=False)
    emails: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class RuleRow(RuleSpec):
    """One row of `alert_rules`: the rule and its state."""

    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RuleSummary:
    """A rule with its deliveries by state and the newest error of one not sent."""

    rule: RuleRow
    queued: int
    sent: int
    failed: int
    last_error: str | None


class DeliveryRow(NamedTuple):
    """One attempt of `deliveries`."""

    rule: str
    event_id: uuid.UUID
    attempt: int
    status: str
    http_status: int | None
    error: str | None
    at: datetime


def _texts(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(item) for item in value)


def rule_from_row(row: dict[str, Any]) -> RuleRow:
    """A RuleRow from a row carrying alert_rules' columns (by name)."""
    return RuleRow(
        name=str(row["name"]),
        kinds=tuple(str(kind) for kind in row["kinds"]),
        plates=_texts(row["plates"]),
        fleets=_texts(row["fleets"]),
        fences=_texts(row["fences"]),
        min_value=None if row["min_value"] is None else float(row["min_value"]),
        channel=str(row["channel"]),
        url=row["url"],
        secret=row["secret"],
        emails=_texts(row["emails"]),
        active=bool(row["active"]),
        created_at=row["created_at"],
    )


def add_rule(conn: db.Conn, rule: RuleSpec) -> bool:
    """Insert a rule; False when a rule of that name exists (left unchanged).
    Audited with the rule's own transaction ("rule.add")."""
    with conn.transaction():
        row = conn.execute(
            query("alerts_rule_add"),
            {
                "name": rule.name,
                "kinds": list(rule.kinds),
                "plates": None if rule.plates is None else list(rule.plates),
                "fleets": None if rule.fleets is None else list(rule.fleets),
                "fences": None if rule.fences is None else list(rule.fences),
                "min_value": rule.min_value,
                "channel": rule.channel,
                "url": rule.url,
                "secret": rule.secret,
                "emails": None if rule.emails is None else list(rule.emails),
            },
        ).fetchone()
        if row is not None:
            audit.record(conn, "rule.add", rule.name, detail=_rule_detail(rule))
    return row is not None


def _rule_detail(rule: RuleSpec) -> dict[str, object]:
    """What the audit keeps of a rule: never its URL (one may carry
    credentials, user:password@host or a token in the path) nor its secret."""
    return {
        "kinds": list(rule.kinds),
        "plates": None if rule.plates is None else list(rule.plates),
        "fleets": None if rule.fleets is None else list(rule.fleets),
        "fences": None if rule.fences is None else list(rule.fences),
        "min_value": rule.min_value,
        "channel": rule.channel,
        "webhook": rule.url is not None,
        "emails": None if rule.emails is None else list(rule.emails),
    }


def get_rule(conn: db.Conn, name: str) -> RuleRow | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("alerts_rule_get"), {"name": name}).fetchone()
    return None if row is None else rule_from_row(row)


def list_rules(conn: db.Conn) -> list[RuleSummary]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("alerts_rules_list")).fetchall()
    return [
        RuleSummary(
            rule=rule_from_row(row),
            queued=int(row["queued"]),
            sent=int(row["sent"]),
            failed=int(row["failed"]),
            last_error=row["last_error"],
        )
        for row in rows
    ]


def remove_rule(conn: db.Conn, name: str) -> bool:
    """Delete a rule with its queued and past deliveries; False when unknown."""
    with conn.transaction():
        rule = get_rule(conn, name)
        found = conn.execute(query("alerts_rule_remove"), {"name": name}).fetchone() is not None
        if found:
            detail = _rule_detail(rule) if rule is not None else None
            audit.record(conn, "rule.remove", name, detail=detail)
    return found


def set_rule_active(conn: db.Conn, name: str, active: bool) -> bool:
    """Pause (False) or resume (True) a rule; False when unknown. A paused rule
    queues no new event, and what it had queued waits for the resume
    (docs/alerts.md, "Pause and resume"). Audited only when the state changes:
    pausing a paused rule writes no audit row."""
    with conn.transaction():
        before = get_rule(conn, name)
        found = conn.execute(
            query("alerts_rule_set_active"), {"name": name, "active": active}
        ).fetchone()
        if found is not None and (before is None or before.active != active):
            audit.record(conn, "rule.resume" if active else "rule.pause", name)
    return found is not None


def list_deliveries(conn: db.Conn, rule: str) -> list[DeliveryRow]:
    """Every attempt of a rule, oldest first."""
    rows = conn.execute(query("alerts_deliveries_list"), {"rule": rule}).fetchall()
    return [DeliveryRow(*row) for row in rows]
