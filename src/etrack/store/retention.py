"""Retention: forget positions (or only their raw JSON) older than a cutoff.

positions is partitioned by month, so old data goes a whole month at a time
with `DROP TABLE` of the partition: instant, no row-by-row delete, no bloat
for vacuum to chase. A month is dropped only when it lies entirely before
the cutoff; the month holding the cutoff waits until it does. Rows of the
default partition (timestamps far outside any month, e.g. a tracker with a
broken clock) are deleted row by row, since that partition also holds recent
rows.

`raw_only` keeps every row and sets `raw` to NULL instead, exactly up to the
cutoff, partition by partition and in bounded batches: time slices of the
month, oldest first, each at most `batch` rows in its own transaction
(`etrack prune --batch`, default DEFAULT_BATCH), the slice's pages found
through the BRIN index on data_transmissao (migration 0007), the slice
length adapted to keep batches near `batch` rows. After the month's batches,
and every quarter of a big month on the way, a plain VACUUM (not FULL)
makes the space of the old row versions free, so the next batches and the
next days' prunes reuse it instead of growing the month. A month cleared
whole is marked (a table comment) so later runs do not scan it again.

Why batched UPDATEs rather than building a new partition and swapping it in
(detach, attach): detaching a partition takes an ACCESS EXCLUSIVE lock on
positions itself (DETACH ... CONCURRENTLY is refused while positions has its
default partition), and attaching one scans it and the default partition to
check the bounds, so every reader and the ingest would wait; rows a backfill
writes into the month during the copy would be lost or need a second pass;
the copy needs the month's size again on disk; and a kill during the copy
throws it all away. Batches hold only row locks on rows nobody writes (old
positions), never block the ingest or the readers, and a kill loses at most
the batch in flight: `raw IS NOT NULL` makes a re-run write only what is
left (it re-reads the slices already cleared, through the index, without
writing them). The price is that a past month's freed space stays inside
the month (plain VACUUM gives back only empty pages at its end): the month
stops growing, and space returns to the disk when the month is dropped.

Routes, their trips and stops and the provider's trip summaries are kept
unless `routes=True`: they are small and what people report on for years.

`prune()` is what `etrack prune` and the worker's daily task run; it is
idempotent (a second run finds nothing to do) and `dry_run` changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import psycopg
from psycopg import sql

from etrack.config import Duration, Settings
from etrack.store import audit, db
from etrack.store.queries import query

__all__ = [
    "DEFAULT_BATCH",
    "RAW_CLEARED_MARK",
    "Action",
    "PruneReport",
    "cutoff_for",
    "prune",
    "prune_audit_with_settings",
    "prune_with_settings",
]

logger = logging.getLogger("etrack.store.retention")

# The comment prune leaves on a month whose raw JSON it cleared entirely.
RAW_CLEARED_MARK = "etrack retention: raw JSON cleared"

# Rows per transaction when clearing raw JSON: big enough that the per-batch
# cost (a round trip, a commit, the slice's BRIN scan) is noise, small enough
# that a batch holds its row locks for well under a second and a kill loses
# little.
DEFAULT_BATCH = 20_000
# Progress lines at most this often (and at the end of each month).
PROGRESS_EVERY_S = 5.0
# Intermediate plain VACUUMs of a big month: after each quarter of its rows.
VACUUMS_PER_MONTH = 4
COUNT_AT_MOST_ROWS = 5_000_000
"""A dry run counts the raw JSON of the month holding the cutoff exactly up to
this many rows in the month, and estimates it from statistics above: counting
half of a 10,000-vehicle month (440 million rows) would take minutes."""

Progress = Callable[[str], None]


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
            amount.append(_size(self.bytes))
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
    vacuum: bool = True,
    batch: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> PruneReport:
    """Drop (or, with `raw_only`, clear the raw JSON of) positions older than `cutoff`.

    `cutoff` must be aware; give it in ETRAC_TIMEZONE so that route days
    (`routes=True`) are cut at local midnight (days before `cutoff.date()`).
    Each step runs in its own short transaction when `conn` is in
    autocommit mode or idle; a partition that stays locked by other
    sessions `attempts` times is skipped and reported, for the next run.
    With `raw_only`, each month is cleared in batches of at most `batch`
    rows (one transaction each when `conn` is in autocommit mode), with a
    line to `progress` every PROGRESS_EVERY_S and at the end of each month;
    `vacuum` then runs a plain VACUUM of the month (needs an autocommit
    connection: VACUUM cannot run inside a transaction).
    """
    if batch < 1:
        raise ValueError("batch must be at least one row")
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
                action = _clear_raw(
                    conn,
                    part,
                    cutoff,
                    dry_run=dry_run,
                    vacuum=vacuum,
                    lock_timeout_s=lock_timeout_s,
                    batch=batch,
                    progress=progress,
                )
            elif blocked and part.upper is not None and part.upper <= cutoff:
                # Every drop waits for the same lock on positions: once one
                # timed out, the others would too.
                action = Action(part.name, "skip", note="positions is busy; left for the next run")
            else:
                action = _drop(conn, part, cutoff, dry_run, lock_timeout_s, max(1, attempts))
                blocked = blocked or action.verb == "skip"
            report.actions.append(action)
        report.actions.append(_prune_rejects(conn, cutoff, raw_only, dry_run))
        if not raw_only:
            report.actions.append(_prune_latest(conn, cutoff, dry_run))
        if routes:
            report.actions.extend(_prune_routes(conn, cutoff.date(), dry_run))
    finally:
        with conn.transaction():
            conn.execute(query("retention_unlock"))
    if not dry_run and _pruned(report):
        # Its own transaction: the prune is many (one per month, per batch);
        # the row says what the whole pass did, once it is done.
        with conn.transaction():
            audit.record(conn, "data.prune", "positions", detail=_prune_detail(report))
    for action in report.actions:
        if action.verb == "skip" or (action.verb != "keep" and action.rows):
            logger.info("%s", action.line(dry_run))
    return report


def _pruned(report: PruneReport) -> bool:
    """Whether the pass changed anything: a month dropped (even one the
    statistics thought empty) or rows deleted or cleared."""
    return report.changed or any(a.done and a.verb == "drop" for a in report.actions)


def _prune_detail(report: PruneReport) -> dict[str, object]:
    return {
        "cutoff": report.cutoff.isoformat(),
        "raw_only": report.raw_only,
        "routes": report.routes,
        **report.counts(),
    }


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


def _relation(conn: db.Conn, part: _Partition) -> dict[str, str]:
    return {"relation": part.ident.as_string(conn)}


def _summarize_brin(conn: db.Conn, part: _Partition, lock_timeout_s: float) -> None:
    """Summarize what the BRIN index of the month lacks. Only a help: when the
    month is busy (its lock is that of VACUUM) the counts and batches work
    without it, reading more."""
    try:
        with conn.transaction():
            conn.execute(query("retention_lock_timeout"), {"timeout": f"{lock_timeout_s}s"})
            conn.execute(query("retention_summarize_brin"), _relation(conn, part))
    except psycopg.errors.LockNotAvailable:
        logger.info("%s is busy: its BRIN index is left as it is", part.name)


def _raw_rows(
    conn: db.Conn, part: _Partition, cutoff: datetime, *, whole: bool
) -> tuple[int, bool]:
    """(rows whose raw JSON a prune would clear, whether estimated). A whole
    month, all of which goes, is estimated from its statistics once it has
    some; the month holding the cutoff is counted through the BRIN index,
    unless it is larger than COUNT_AT_MOST_ROWS."""
    with conn.transaction():
        if whole:
            row = conn.execute(query("retention_raw_estimate"), _relation(conn, part)).fetchone()
            if row is not None and row[0] is not None:
                return int(row[0]), True
        elif part.estimated_rows > COUNT_AT_MOST_ROWS:
            explained = conn.execute(
                _statement("retention_count_estimate", partition=part.ident), {"cutoff": cutoff}
            ).fetchone()
            assert explained is not None
            plan = explained[0]
            return int(plan[0]["Plan"]["Plan Rows"]), True
    return _count(conn, part, cutoff)[1], False


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
    *,
    dry_run: bool,
    vacuum: bool,
    lock_timeout_s: float,
    batch: int,
    progress: Progress | None,
) -> Action:
    if part.lower is None or part.upper is None:
        return Action(part.name, "keep", note="unbounded partition, not etrack's")
    if part.lower >= cutoff:
        return Action(part.name, "keep", note="newer")
    whole = part.upper <= cutoff
    if whole and (part.note or "").startswith(RAW_CLEARED_MARK):
        return Action(part.name, "keep", note="raw JSON already cleared")
    _summarize_brin(conn, part, lock_timeout_s)
    if dry_run:
        then = f"in batches of {batch:,} rows, then VACUUM" if vacuum else ""
        rows, estimated = _raw_rows(conn, part, cutoff, whole=whole)
        note = ", ".join(filter(None, ("estimated from statistics" if estimated else "", then)))
        return Action(part.name, "clear raw", rows=rows, note=note)
    batches = _Batches(conn, part, min(part.upper, cutoff), batch, lock_timeout_s, progress)
    try:
        batches.run(vacuum=vacuum and conn.autocommit)
    except psycopg.errors.LockNotAvailable:
        logger.warning("%s: rows locked by another session; left for the next run", part.name)
        return Action(
            part.name,
            "clear raw",
            rows=batches.cleared,
            done=True,
            note="stopped at rows locked by another session (lock timeout); "
            "the next run does the rest",
        )
    note = "" if whole else "rows before the cutoff"
    if vacuum and not conn.autocommit:
        note = ", ".join(
            filter(None, (note, "not vacuumed (VACUUM needs an autocommit connection)"))
        )
    elif vacuum and batches.cleared and not batches.vacuumed:
        # Not marked: the next run vacuums it (its batches then find nothing).
        note = ", ".join(filter(None, (note, "VACUUM postponed: the month is busy (lock timeout)")))
        return Action(part.name, "clear raw", rows=batches.cleared, done=True, note=note)
    if whole:
        with conn.transaction():
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            conn.execute(
                _statement(
                    "retention_mark_partition",
                    partition=part.ident,
                    note=sql.Literal(f"{RAW_CLEARED_MARK} on {stamp}"),
                )
            )
    return Action(part.name, "clear raw", rows=batches.cleared, done=True, note=note)


class _Batches:
    """Clears one month's raw JSON before `end`: time slices, oldest first,
    at most `batch` rows per transaction.

    The slice length starts at the month's span times `batch` over its
    estimated rows and adapts: halved while a slice fills its batch (that
    slice is then taken again: rows are left in it), doubled when one comes
    back a quarter full or less (night hours, a slice already cleared by an
    earlier, killed run).
    """

    def __init__(
        self,
        conn: db.Conn,
        part: _Partition,
        end: datetime,
        batch: int,
        lock_timeout_s: float,
        progress: Progress | None,
    ) -> None:
        assert part.lower is not None
        assert part.upper is not None
        self.lower, self.span = part.lower, part.upper - part.lower
        self.conn, self.part, self.end, self.batch = conn, part, end, batch
        self.lock_timeout_s, self.progress = lock_timeout_s, progress
        self.cleared = 0
        self.vacuumed = False
        rows = part.estimated_rows
        self.step = self.span * batch / rows if rows > 0 else timedelta(hours=1)
        self.step = min(max(self.step, _MIN_STEP), self.span)
        # A never-analyzed month (-1) gets one VACUUM, at its end.
        self.vacuum_every = max(batch, part.estimated_rows // VACUUMS_PER_MONTH)
        self.statement = _statement("retention_clear_raw_batch", partition=part.ident)

    def run(self, *, vacuum: bool) -> None:
        lo = self.lower
        since_vacuum = batches = 0
        last_line = time.monotonic()
        while lo < self.end:
            hi = min(lo + self.step, self.end)
            with self.conn.transaction():
                self.conn.execute(
                    query("retention_lock_timeout"), {"timeout": f"{self.lock_timeout_s}s"}
                )
                cur = self.conn.execute(self.statement, {"lo": lo, "hi": hi, "limit": self.batch})
                n = max(cur.rowcount, 0)
            self.cleared += n
            since_vacuum += n
            batches += 1
            if n >= self.batch:
                # Rows are left in [lo, hi): take it again, in a shorter slice.
                self.step = max(self.step / 2, _MIN_STEP)
            else:
                lo = hi
                if n * 4 <= self.batch:
                    self.step = min(self.step * 2, self.span)
            if vacuum and since_vacuum >= self.vacuum_every and lo < self.end:
                self._vacuum()
                since_vacuum = 0
            now = time.monotonic()
            if now - last_line >= PROGRESS_EVERY_S:
                last_line = now
                upto = lo.isoformat(" ", "minutes")
                self._say(
                    f"{self.part.name}: {self.cleared:,} rows cleared up to {upto} ({batches} batches)"
                )
        if vacuum and self.cleared:
            self.vacuumed = self._vacuum()
        self._say(f"{self.part.name}: {self.cleared:,} rows cleared in {batches} batches")

    def _say(self, line: str) -> None:
        # The command prints its progress; the worker's task logs it.
        if self.progress is not None:
            self.progress(line)
        else:
            logger.info("%s", line)

    def _vacuum(self) -> bool:
        """Plain VACUUM of the month; False when another session kept it busy."""
        conn = self.conn
        conn.execute(
            query("retention_session_lock_timeout"), {"timeout": f"{self.lock_timeout_s}s"}
        )
        try:
            conn.execute(_statement("retention_vacuum_partition", partition=self.part.ident))
        except psycopg.errors.LockNotAvailable:
            logger.warning("%s is busy: VACUUM left for the next run", self.part.name)
            return False
        finally:
            conn.execute(query("retention_reset_lock_timeout"))
        return True


# The shortest slice: below it, rows of one second are taken batch by batch.
_MIN_STEP = timedelta(seconds=1)


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


def _prune_latest(conn: db.Conn, cutoff: datetime, dry_run: bool) -> Action:
    # A vehicle silent since before the cutoff: its last position is personal
    # data like the rest of its history, and goes with it.
    with conn.transaction():
        if dry_run:
            row = conn.execute(query("retention_count_latest"), {"cutoff": cutoff}).fetchone()
            return Action("latest_positions", "delete", rows=int(row[0]) if row else 0)
        changed = conn.execute(query("retention_delete_latest"), {"cutoff": cutoff}).rowcount
    return Action("latest_positions", "delete", rows=max(changed, 0), done=True)


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


def prune_audit_with_settings(
    conn: db.Conn, settings: Settings, *, now: datetime | None = None
) -> int:
    """Delete the audit rows older than ETRACK_AUDIT_RETENTION (cut at local
    midnight like the positions: every run of a day deletes up to the same
    moment); the rows deleted, 0 when it is unset. The deletion is audited
    ("audit.prune") in its own transaction, when rows went."""
    if settings.etrack_audit_retention is None:
        return 0
    before = cutoff_for(settings.etrack_audit_retention, settings.tz, now=now)
    with conn.transaction():
        deleted = max(audit.prune_audit(conn, before), 0)
        if deleted:
            audit.record(
                conn, "audit.prune", "audit", detail={"before": before.isoformat(), "rows": deleted}
            )
    return deleted
