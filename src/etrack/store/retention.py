"""Retention: forget positions (or only their raw JSON) older than a cutoff.

positions is partitioned by month, so old data goes a whole month at a time
with `DROP TABLE` of the partition: instant, no row-by-row delete, no bloat
for vacuum to chase. A month is dropped only when it lies entirely before
the cutoff; the month holding the cutoff waits until it does. Rows of the
default partition (timestamps far outside any month, e.g. a tracker with a
broken clock) are deleted row by row, since that partition also holds recent
rows. `raw_only` keeps every row and sets `raw` to NULL instead, exactly up
to the cutoff. A month cleared whole is then compacted (`VACUUM FULL` of that
partition: a past month takes no new rows, so the space would never be
reused) and marked (a table comment) so later runs do not scan it again.

Routes, their trips and stops and the provider's trip summaries are kept
unless `routes=True`: they are small and what people report on for years.

`prune()` is what `etrack prune` and the worker's daily task run; it is
idempotent (a second run finds nothing to do) and `dry_run` changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import psycopg
from psycopg import sql

from etrack.config import Duration, Settings
from etrack.store import db
from etrack.store.queries import query

__all__ = [
    "RAW_CLEARED_MARK",
    "Action",
    "PruneReport",
    "cutoff_for",
    "prune",
    "prune_with_settings",
]

logger = logging.getLogger("etrack.store.retention")

# The comment prune leaves on a month whose raw JSON it cleared entirely.
RAW_CLEARED_MARK = "etrack retention: raw JSON cleared"


# ------------------------------------------------------------------ cutoff
def cutoff_for(duration: Duration, tz: tzinfo, *, now: datetime | None = None) -> datetime:
    """Local midnight starting the day `duration` before today (in `tz`).

    A day boundary, not `now - duration`: every run of the same day gets the
    same cutoff (a re-run changes nothing), and routes, which are per local
    day, are cut where the positions are.
    """
    day = duration.before((now or datetime.now(UTC)).astimezone(tz).date())
    return datetime(day.year, day.month, day.day, tzinfo=tz)


# ------------------------------------------------------------------ report
@dataclass(frozen=True, slots=True)
class Action:
    """What prune did (or would do) to one partition or table."""

    target: str
    verb: str  # drop, delete, clear raw, keep, skip
    rows: int | None = None
    bytes: int | None = None
    done: bool = False
    note: str = ""

    def line(self, dry_run: bool) -> str:
        amount = []
        if self.rows is not None:
            amount.append(f"{self.rows:,} rows")
        if self.bytes is not None:
            freed = " freed" if self.verb == "clear raw" else ""
            amount.append(_size(self.bytes) + freed)
        size = f" ({', '.join(amount)})" if amount else ""
        note = f": {self.note}" if self.note else ""
        if self.verb in ("keep", "skip"):
            return f"{self.verb} {self.target}{size}{note}"
        verb = {"drop": "dropped", "delete": "deleted rows of", "clear raw": "cleared raw in"}[
            self.verb
        ]
        if dry_run:
            verb = "would " + {"drop": "drop", "delete": "delete rows of"}.get(
                self.verb, "clear raw in"
            )
        elif not self.done:
            verb = f"could not {self.verb}"
        return f"{verb} {self.target}{size}{note}"


@dataclass(slots=True)
class PruneReport:
    """The outcome of one prune pass, for printing and for the job record."""

    cutoff: datetime
    raw_only: bool
    dry_run: bool
    routes: bool
    actions: list[Action] = field(default_factory=list)
    busy: bool = False

    @property
    def changed(self) -> bool:
        return any(a.done and a.verb not in ("keep", "skip") and a.rows != 0 for a in self.actions)

    def counts(self) -> dict[str, int]:
        """Totals, for job records and metrics."""
        done = [a for a in self.actions if a.done or self.dry_run]
        return {
            "partitions_dropped": sum(1 for a in done if a.verb == "drop"),
            "rows_dropped": sum(a.rows or 0 for a in done if a.verb == "drop"),
            "bytes_dropped": sum(a.bytes or 0 for a in done if a.verb == "drop"),
            "rows_deleted": sum(a.rows or 0 for a in done if a.verb == "delete"),
            "raw_cleared": sum(a.rows or 0 for a in done if a.verb == "clear raw"),
            "failed": sum(1 for a in self.actions if a.verb == "skip" and not self.dry_run),
        }

    def header(self) -> str:
        what = "clear raw JSON of positions" if self.raw_only else "drop positions"
        extra = " and routes, trips, stops" if self.routes else ""
        dry = " (dry run: nothing changes)" if self.dry_run else ""
        return f"prune: {what}{extra} older than {self.cutoff.isoformat(' ', 'minutes')}{dry}"

    def lines(self) -> list[str]:
        if self.busy:
            return [self.header(), "another prune is running on this database; nothing done"]
        out = [self.header()]
        out += [a.line(self.dry_run) for a in self.actions]
        totals = self.counts()
        if not any(a.verb not in ("keep", "skip") and a.rows != 0 for a in self.actions):
            out.append("nothing to prune")
        elif self.raw_only:
            out.append(f"total: raw JSON of {totals['raw_cleared']:,} rows cleared" + _would(self))
        else:
            out.append(
                f"total: {totals['partitions_dropped']} partition(s) dropped "
                f"({totals['rows_dropped']:,} rows, {_size(totals['bytes_dropped'])}), "
                f"{totals['rows_deleted']:,} rows deleted" + _would(self)
            )
        return out


def _would(report: PruneReport) -> str:
    return " (would be: dry run)" if report.dry_run else ""


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# ------------------------------------------------------------------- prune
@dataclass(frozen=True, slots=True)
class _Partition:
    schema: str
    name: str
    is_default: bool
    lower: datetime | None
    upper: datetime | None
    estimated_rows: int
    bytes: int
    note: str | None

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def _statement(name: str, **parts: sql.Composable) -> sql.Composed:
    return sql.SQL(query(name)).format(**parts)


def prune(
    conn: db.Conn,
    cutoff: datetime,
    *,
    raw_only: bool = False,
    dry_run: bool = False,
    routes: bool = False,
    lock_timeout_s: float = 5.0,
    attempts: int = 3,
    compact: bool = True,
) -> PruneReport:
    """Drop (or, with `raw_only`, clear the raw JSON of) positions older than `cutoff`.

    `cutoff` must be aware; give it in ETRAC_TIMEZONE so that route days
    (`routes=True`) are cut at local midnight (days before `cutoff.date()`).
    Each step runs in its own short transaction when `conn` is in
    autocommit mode or idle; a partition that stays locked by other
    sessions `attempts` times is skipped and reported, for the next run.
    `compact` rewrites a month whose raw JSON was cleared whole (needs an
    autocommit connection: VACUUM cannot run inside a transaction).
    """
    if cutoff.tzinfo is None:
        raise ValueError("prune needs an aware cutoff (with a time zone)")
    if raw_only and routes:
        raise ValueError("routes are not pruned with raw_only (they hold no raw JSON)")
    report = PruneReport(cutoff=cutoff, raw_only=raw_only, dry_run=dry_run, routes=routes)
    with conn.transaction():
        row = conn.execute(query("retention_try_lock")).fetchone()
    if not (row and row[0]):
        report.busy = True
        return report
    try:
        blocked = False
        for part in _partitions(conn):
            if part.is_default:
                action = _prune_default(conn, part, cutoff, raw_only, dry_run)
            elif raw_only:
                action = _clear_raw(conn, part, cutoff, dry_run, compact, lock_timeout_s)
            elif blocked and part.upper is not None and part.upper <= cutoff:
                # Every drop waits for the same lock on positions: once one
                # timed out, the others would too.
                action = Action(part.name, "skip", note="positions is busy; left for the next run")
            else:
                action = _drop(conn, part, cutoff, dry_run, lock_timeout_s, max(1, attempts))
                blocked = blocked or action.verb == "skip"
            report.actions.append(action)
        report.actions.append(_prune_rejects(conn, cutoff, raw_only, dry_run))
        if routes:
            report.actions.extend(_prune_routes(conn, cutoff.date(), dry_run))
    finally:
        with conn.transaction():
            conn.execute(query("retention_unlock"))
    for action in report.actions:
        if action.verb == "skip" or (action.verb != "keep" and action.rows):
            logger.info("%s", action.line(dry_run))
    return report


def _partitions(conn: db.Conn) -> list[_Partition]:
    with conn.transaction():
        rows = conn.execute(query("retention_partitions")).fetchall()
    return [
        _Partition(
            schema=str(r[0]),
            name=str(r[1]),
            is_default=bool(r[2]),
            lower=r[3],
            upper=r[4],
            estimated_rows=int(r[5]),
            bytes=int(r[6]),
            note=r[7],
        )
        for r in rows
    ]


def _count(conn: db.Conn, part: _Partition, cutoff: datetime) -> tuple[int, int]:
    with conn.transaction():
        row = conn.execute(
            _statement("retention_count_partition", partition=part.ident), {"cutoff": cutoff}
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _drop(
    conn: db.Conn,
    part: _Partition,
    cutoff: datetime,
    dry_run: bool,
    lock_timeout_s: float,
    attempts: int,
) -> Action:
    if part.upper is None:
        return Action(part.name, "keep", note="unbounded partition, not etrack's")
    if part.upper > cutoff:
        note = "" if (part.lower is None or part.lower >= cutoff) else "holds rows after the cutoff"
        return Action(part.name, "keep", note=note or "newer")
    rows = part.estimated_rows
    if rows < 0:
        # Never analyzed: the planner has no estimate, so count (once).
        rows = _count(conn, part, cutoff)[0]
    if dry_run:
        return Action(part.name, "drop", rows=rows, bytes=part.bytes)
    for attempt in range(attempts):
        try:
            with conn.transaction():
                conn.execute(query("retention_lock_timeout"), {"timeout": f"{lock_timeout_s}s"})
                conn.execute(_statement("retention_drop_partition", partition=part.ident))
            return Action(part.name, "drop", rows=rows, bytes=part.bytes, done=True)
        except psycopg.errors.LockNotAvailable:
            logger.warning("%s is busy (attempt %d of %d)", part.name, attempt + 1, attempts)
            if attempt + 1 < attempts:
                time.sleep(min(30.0, 2.0**attempt))
    return Action(part.name, "skip", rows=rows, note="busy (lock timeout); left for the next run")


def _clear_raw(
    conn: db.Conn,
    part: _Partition,
    cutoff: datetime,
    dry_run: bool,
    compact: bool,
    lock_timeout_s: float,
) -> Action:
    if part.lower is None or part.upper is None:
        return Action(part.name, "keep", note="unbounded partition, not etrack's")
    if part.lower >= cutoff:
        return Action(part.name, "keep", note="newer")
    whole = part.upper <= cutoff
    if whole and (part.note or "").startswith(RAW_CLEARED_MARK):
        return Action(part.name, "keep", note="raw JSON already cleared")
    if dry_run:
        then = "then VACUUM FULL" if whole and compact else ""
        return Action(part.name, "clear raw", rows=_count(conn, part, cutoff)[1], note=then)
    with conn.transaction():
        cleared = max(
            conn.execute(
                _statement("retention_clear_partition_raw", partition=part.ident),
                {"cutoff": cutoff},
            ).rowcount,
            0,
        )
    if not whole:
        return Action(
            part.name, "clear raw", rows=cleared, done=True, note="rows before the cutoff"
        )
    freed: int | None = None
    note = ""
    if compact and conn.autocommit:
        freed = _compact(conn, part, lock_timeout_s)
        if freed is None:
            # Not marked: the next run compacts it (its UPDATE then finds nothing).
            note = "compaction postponed: the month is busy (lock timeout)"
            return Action(part.name, "clear raw", rows=cleared, done=True, note=note)
    elif compact:
        note = "not compacted (VACUUM FULL needs an autocommit connection)"
    with conn.transaction():
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        conn.execute(
            _statement(
                "retention_mark_partition",
                partition=part.ident,
                note=sql.Literal(f"{RAW_CLEARED_MARK} on {stamp}"),
            )
        )
    return Action(part.name, "clear raw", rows=cleared, bytes=freed, done=True, note=note)


def _compact(conn: db.Conn, part: _Partition, lock_timeout_s: float) -> int | None:
    """VACUUM FULL one partition; the bytes it gave back, or None when busy."""
    conn.execute(query("retention_session_lock_timeout"), {"timeout": f"{lock_timeout_s}s"})
    try:
        conn.execute(_statement("retention_compact_partition", partition=part.ident))
    except psycopg.errors.LockNotAvailable:
        logger.warning("%s is busy: compaction left for the next run", part.name)
        return None
    finally:
        conn.execute(query("retention_reset_lock_timeout"))
    row = conn.execute(
        query("retention_partition_bytes"), {"schema": part.schema, "name": part.name}
    ).fetchone()
    assert row is not None
    return max(part.bytes - int(row[0]), 0)


def _prune_default(
    conn: db.Conn, part: _Partition, cutoff: datetime, raw_only: bool, dry_run: bool
) -> Action:
    # (what it does, its statement, which of _count's numbers it would touch)
    verb, statement, counted = (
        ("clear raw", "retention_clear_partition_raw", 1)
        if raw_only
        else ("delete", "retention_delete_partition_rows", 0)
    )
    if dry_run:
        return Action(part.name, verb, rows=_count(conn, part, cutoff)[counted])
    with conn.transaction():
        changed = conn.execute(
            _statement(statement, partition=part.ident), {"cutoff": cutoff}
        ).rowcount
    return Action(part.name, verb, rows=max(changed, 0), done=True)


def _prune_rejects(conn: db.Conn, cutoff: datetime, raw_only: bool, dry_run: bool) -> Action:
    # Rejected rows carry the same personal data as positions, in `raw`.
    with conn.transaction():
        if dry_run:
            row = conn.execute(query("retention_count_rejects"), {"cutoff": cutoff}).fetchone()
            assert row is not None
            rows = int(row[1] if raw_only else row[0])
            return Action("position_rejects", "clear raw" if raw_only else "delete", rows=rows)
        name = "retention_clear_rejects_raw" if raw_only else "retention_delete_rejects"
        changed = conn.execute(query(name), {"cutoff": cutoff}).rowcount
    return Action(
        "position_rejects", "clear raw" if raw_only else "delete", rows=max(changed, 0), done=True
    )


_ROUTE_TABLES: Sequence[tuple[str, str]] = (
    ("route_stops", "retention_delete_route_stops"),
    ("route_trips", "retention_delete_route_trips"),
    ("routes", "retention_delete_routes"),
    ("trips", "retention_delete_trips"),
)


def _prune_routes(conn: db.Conn, before: date, dry_run: bool) -> list[Action]:
    note = f"days before {before.isoformat()}"
    if dry_run:
        with conn.transaction():
            row = conn.execute(query("retention_count_routes"), {"day": before}).fetchone()
        assert row is not None
        return [
            Action(table, "delete", rows=int(n), note=note)
            for (table, _), n in zip(_ROUTE_TABLES, row, strict=True)
        ]
    actions = []
    # One transaction: a reader never sees a route without its trips and stops.
    with conn.transaction():
        for table, statement in _ROUTE_TABLES:
            deleted = conn.execute(query(statement), {"day": before}).rowcount
            actions.append(Action(table, "delete", rows=max(deleted, 0), done=True, note=note))
    return actions


# --------------------------------------------------------------- settings
def prune_with_settings(
    conn: db.Conn,
    settings: Settings,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    **options: Any,
) -> list[PruneReport]:
    """The retention the settings ask for: drop months older than
    ETRACK_RETENTION, then clear the raw JSON older than ETRACK_RETENTION_RAW.
    Either unset skips its pass; both unset returns []. For the daily task."""
    reports: list[PruneReport] = []
    if settings.etrack_retention is not None:
        cutoff = cutoff_for(settings.etrack_retention, settings.tz, now=now)
        reports.append(prune(conn, cutoff, dry_run=dry_run, **options))
    if settings.etrack_retention_raw is not None:
        cutoff = cutoff_for(settings.etrack_retention_raw, settings.tz, now=now)
        reports.append(prune(conn, cutoff, raw_only=True, dry_run=dry_run, **options))
    return reports
