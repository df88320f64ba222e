"""Resumable, distributed backfill: one (plate, local day) partition per job.

A partition's state lives in `backfill_partitions`, keyed by (placa, day)
only: whatever backfill asked for it, a day already fetched is skipped (unless
--force), so re-running a command, or a new range overlapping an old one,
only does what is missing. `history_at` / `trips_at` say what is stored; a
job claims its partition before fetching, so two jobs never fetch one day at
once, and a job whose worker died hands it over to the next job for that day.

Flow: `plan` (resolve plates, register the partitions, enqueue a job for
each one with work left and no live job) under ETRAC_BACKFILL_LOCK_ID, then
workers (this process's, or `etrack worker` anywhere) run `work_partition`;
when the last partition of a backfill settles (done, partial, or failed
for good), a `backfill_routes` job computes the routes of its range.

A partition fetched before its day was over in the account's time zone, plus
ETRACK_LATE_DATA_MARGIN_S for positions that trackers upload late, is only
'partial': what came is stored and its routes computed, but the next backfill
over that day fetches it again. A backfill controller (`work_off`) holds an
advisory lock while its worker runs: a re-run that finds it free knows the
controller died and takes its partitions back at once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as clock_time
from typing import Any

from procrastinate import exceptions as pexc
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy
from procrastinate.types import JSONValue

from etrack.config import Account
from etrack.dates import day_range
from etrack.drivers.compute import JornadaParams, compute_drivers
from etrack.errors import CredentialsRefused
from etrack.events.compute import compute_events
from etrack.events.params import EventParams
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.jobs.accounts import (
    breaker,
    credentials_refused,
    mark_refused,
    plate_accounts,
    spread,
)
from etrack.jobs.alerts import queue_alerts
from etrack.jobs.daily import fetch_latest_once, fleet_plates
from etrack.jobs.env import EtrackApp, fetch_all, fetch_one, run_sql, session_lock
from etrack.jobs.names import BACKFILL_PARTITION, BACKFILL_QUEUE, BACKFILL_ROUTES
from etrack.jobs.runs import (
    Outcome,
    describe_error,
    mark_interrupted,
    record_job,
    recover_stalled_jobs,
)
from etrack.logs import format_moment, redact, secrets_of
from etrack.store import db
from etrack.store.audit import current_actor
from etrack.store.queries import query
from etrack.store.stats import analyze_new_partitions_at
from etrack.trips.compute import RoutesSummary, compute_routes
from etrack.trips.params import RouteParams

__all__ = [
    "CREDENTIALS_REFUSED",
    "BackfillRequest",
    "BackfillStatus",
    "Counts",
    "EnqueueResult",
    "PlateSummary",
    "compute_backfill_routes",
    "counts",
    "enqueue",
    "finish_ready",
    "plan",
    "refusal",
    "retry_failed",
    "status",
    "summarize",
    "work_off",
    "work_partition",
]

logger = logging.getLogger("etrack.jobs.backfill")

FAILURES_SHOWN = 20

# How the error of a partition not fetched because its account's credentials
# were refused begins (`refusal` finds it; a rerun fetches it again).
CREDENTIALS_REFUSED = "credentials refused for account"

# The first key of the two-key advisory locks that backfill controllers hold
# (see `work_off`); the second is the controller's own random key. Two-key
# locks never collide with the one-key ETRAC_*_LOCK_ID ones.
CONTROLLER_LOCK_NAMESPACE = 0x45_54_42_46  # "ETBF"
# The JobContext.additional_context entry naming the controller's lock.
CONTROLLER_CONTEXT = "etrack_controller_lock"


def utc_now() -> datetime:
    """The clock that decides whether a fetched day was over (tests set it)."""
    return datetime.now(UTC)


def day_is_final(day: date, account: Account, margin_s: float, at: datetime) -> bool:
    """Whether a fetch sent at `at` saw all of `day`: the day had ended in
    the account's time zone at least `margin_s` seconds before."""
    end = datetime.combine(day + timedelta(days=1), clock_time(0), account.timezone)
    return at >= end + timedelta(seconds=margin_s)


@dataclass(frozen=True, slots=True)
class BackfillRequest:
    date_start: date
    date_end: date
    plates: list[str] | None  # None: every plate in terminals, after a fetch_latest
    with_trips: bool = False
    force: bool = False
    batch_size: int = 50
    account: str | None = None  # with plates None: only this account's fleet

    @property
    def days(self) -> list[date]:
        return day_range(self.date_start, self.date_end)


@dataclass(frozen=True, slots=True)
class Backfill:
    id: int
    date_start: date
    date_end: date
    plates: list[str]
    with_trips: bool
    created_at: datetime
    finished_at: datetime | None
    routes_summary: str | None
    routes_job_id: int | None

    @property
    def partitions(self) -> int:
        return len(self.plates) * ((self.date_end - self.date_start).days + 1)

    def describe(self) -> str:
        return (
            f"backfill #{self.id}: {self.date_start.isoformat()}..{self.date_end.isoformat()}, "
            f"{len(self.plates)} plates ({self.partitions} partitions)"
            + (", with trips" if self.with_trips else "")
        )


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    backfill: Backfill
    total: int
    done: int
    queued: int  # new jobs
    waiting: int  # partitions whose job was already queued or running
    recovered: int  # jobs of dead workers put back in the queue

    def line(self) -> str:
        return (
            f"{self.backfill.describe()}: {self.done} already done, {self.queued} enqueued"
            + (f", {self.waiting} already queued or running" if self.waiting else "")
            + (f", {self.recovered} recovered from dead workers" if self.recovered else "")
        )


@dataclass(frozen=True, slots=True)
class Counts:
    total: int = 0
    done: int = 0
    partial: int = 0  # fetched before the day was over: fetched again by the next run
    running: int = 0
    pending: int = 0
    failed: int = 0
    retrying: int = 0
    rows: int = 0

    @property
    def settled(self) -> int:
        return self.done + self.partial + self.failed - self.retrying

    def line(self) -> str:
        failed = f"failed {self.failed}" + (
            f" ({self.retrying} to be retried)" if self.retrying else ""
        )
        partial = (
            f", {self.partial} partial (day not over: fetched again by the next backfill)"
            if self.partial
            else ""
        )
        return (
            f"{self.done}/{self.total} partitions done{partial}, running {self.running}, "
            f"pending {self.pending}, {failed}; {self.rows} rows fetched"
        )


@dataclass(frozen=True, slots=True)
class Failure:
    placa: str
    day: date
    attempts: int
    will_retry: bool
    error: str
    at: datetime


@dataclass(frozen=True, slots=True)
class BackfillStatus:
    backfill: Backfill
    counts: Counts
    failures: list[Failure]
    routes_job_status: str | None

    def lines(self, tz: tzinfo = UTC) -> list[str]:
        b = self.backfill
        state = f"finished {_at(b.finished_at, tz)}" if b.finished_at else "in progress"
        out = [f"{b.describe()}, created {_at(b.created_at, tz)}, {state}"]
        out.append("  " + self.counts.line())
        if b.routes_summary:
            out.append("  " + b.routes_summary)
        elif self.routes_job_status:
            out.append(f"  routes job: {self.routes_job_status}")
        if self.failures:
            out.append("  failures:")
            for f in self.failures:
                again = "retrying" if f.will_retry else "gave up"
                first = f.error.splitlines()[0] if f.error else ""
                out.append(
                    f"    {f.placa} {f.day.isoformat()}  attempt {f.attempts}, {again}: {first}"
                )
            if self.counts.failed > len(self.failures):
                out.append(f"    ... and {self.counts.failed - len(self.failures)} more")
        return out


def _at(moment: datetime, tz: tzinfo) -> str:
    return format_moment(moment, tz)


@dataclass(frozen=True, slots=True)
class PlateSummary:
    placa: str
    days: int
    days_with_routes: int
    points: int
    distance_km: float


# ------------------------------------------------------------------ records
def _backfill(row: dict[str, Any]) -> Backfill:
    return Backfill(
        id=int(row["id"]),
        date_start=row["date_start"],
        date_end=row["date_end"],
        plates=list(row["plates"]),
        with_trips=bool(row["with_trips"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        routes_summary=row["routes_summary"],
        routes_job_id=row["routes_job_id"],
    )


async def load_backfill(app: EtrackApp, backfill_id: int | None) -> Backfill | None:
    """A backfill by id, or the newest one."""
    if backfill_id is None:
        row = await fetch_one(app, "jobs_backfill_last")
    else:
        row = await fetch_one(app, "jobs_backfill_get", id=backfill_id)
    return _backfill(row) if row else None


def _member_params(backfill: Backfill) -> dict[str, Any]:
    return {"plates": backfill.plates, "start": backfill.date_start, "end": backfill.date_end}


# ---------------------------------------------------------------- planning
async def resolve_plates(
    app: EtrackApp, plates: list[str] | None, account: str | None = None
) -> list[str]:
    """The request's plates, or the fleet (of every account, or of one)
    after a fetch_latest."""
    if plates is not None:
        return sorted(set(plates))
    await fetch_latest_once(app, account)
    return await fleet_plates(app, app.env.accounts(account))


async def open_backfill(app: EtrackApp, request: BackfillRequest, plates: list[str]) -> Backfill:
    """The unfinished backfill of exactly this request (a re-run resumes it
    under the same id), or a new one."""
    params = {
        "start": request.date_start,
        "end": request.date_end,
        "plates": plates,
        "with_trips": request.with_trips,
    }
    row = await fetch_one(app, "jobs_backfill_find_open", **params)
    if row is None:
        # Audited by the same statement (a resumed one is not started again).
        actor = current_actor()
        row = await fetch_one(
            app, "jobs_backfill_create", actor=actor.name, address=actor.address, **params
        )
    assert row is not None
    return _backfill(row)


async def enqueue(
    app: EtrackApp, backfill: Backfill, *, force: bool = False, batch_size: int = 500
) -> EnqueueResult:
    """Register the backfill's partitions and give each one with work left a
    live job: jobs already queued or running are left alone, jobs of dead
    workers are put back in the queue, and the rest get a new job."""
    members = _member_params(backfill)
    await run_sql(
        app, "jobs_partitions_register", id=backfill.id, want_trips=backfill.with_trips, **members
    )
    if force:
        await run_sql(app, "jobs_partitions_force", **members)
    rows = await fetch_all(
        app, "jobs_partitions_open", stalled_after=app.env.tuning.stalled_after_s, **members
    )
    gone = await _controllers_gone(app, rows)
    # A free lock vouches for its worker, and so for every job that worker
    # was running (a job killed before it claimed its partition too).
    dead_workers = {row["worker_id"] for row in rows if row["controller_lock"] in gone}
    fresh: list[tuple[str, date]] = []
    waiting = recovered = 0
    dead: list[int] = []
    for row in rows:
        live = not row["stalled"] and row["worker_id"] not in dead_workers
        if row["job_status"] == "todo" or (row["job_status"] == "doing" and live):
            waiting += 1
        elif row["job_status"] == "doing":
            if await _retry_job(app, int(row["job_id"])):
                recovered += 1
                dead.append(int(row["job_id"]))
            else:
                fresh.append((row["placa"], row["day"]))
        else:
            fresh.append((row["placa"], row["day"]))
    fresh = await spread(app, fresh)
    for start in range(0, len(fresh), max(1, batch_size)):
        chunk = fresh[start : start + batch_size]
        arguments: list[dict[str, JSONValue]] = [
            {"placa": placa, "day": day.isoformat()} for placa, day in chunk
        ]
        job_ids = await app.configure_task(BACKFILL_PARTITION).batch_defer_async(*arguments)
        await run_sql(
            app,
            "jobs_partitions_queued",
            plates=[placa for placa, _ in chunk],
            days=[day for _, day in chunk],
            job_ids=job_ids,
        )
    if dead:
        await mark_interrupted(
            app, dead, "its worker's process is gone (killed?); the job was retried"
        )
    await run_sql(app, "jobs_backfill_enqueued", id=backfill.id)
    return EnqueueResult(
        backfill=backfill,
        total=backfill.partitions,
        done=backfill.partitions - len(rows),
        queued=len(fresh),
        waiting=waiting,
        recovered=recovered,
    )


async def _controllers_gone(app: EtrackApp, rows: list[dict[str, Any]]) -> set[int]:
    """The controller locks of running partitions that nobody holds any
    more: those controllers' processes are gone (a live one holds its lock
    on its own session until its worker has stopped)."""
    keys = sorted(
        {
            int(row["controller_lock"])
            for row in rows
            if row["job_status"] == "doing" and row["controller_lock"] is not None
        }
    )
    if not keys:
        return set()
    found = await fetch_all(
        app, "jobs_controllers_gone", keys=keys, namespace=CONTROLLER_LOCK_NAMESPACE
    )
    return {int(row["controller_lock"]) for row in found}


async def _retry_job(app: EtrackApp, job_id: int) -> bool:
    try:
        await app.job_manager.retry_job_by_id_async(job_id=job_id, retry_at=datetime.now(UTC))
    except Exception:
        # Another process may have recovered or finished it meanwhile.
        logger.warning("could not put job %s back in the queue", job_id, exc_info=True)
        return False
    return True


async def plan(
    app: EtrackApp, request: BackfillRequest, *, on_wait: Callable[[], None] | None = None
) -> EnqueueResult:
    """Resolve plates and enqueue, holding ETRAC_BACKFILL_LOCK_ID so two
    controllers never enqueue at once (workers run in parallel regardless)."""
    settings = app.env.settings
    plates = await resolve_plates(app, request.plates, request.account)
    async with session_lock(app.env.target, settings.etrac_backfill_lock_id) as got:
        if got:
            return await _plan_locked(app, request, plates)
    if on_wait is not None:
        on_wait()
    async with session_lock(app.env.target, settings.etrac_backfill_lock_id, wait=True):
        return await _plan_locked(app, request, plates)


async def _plan_locked(
    app: EtrackApp, request: BackfillRequest, plates: list[str]
) -> EnqueueResult:
    backfill = await open_backfill(app, request, plates)
    result = await enqueue(app, backfill, force=request.force, batch_size=request.batch_size * 10)
    await finish_ready(app, backfill_id=backfill.id)
    return result


# --------------------------------------------------------- one partition
async def work_partition(
    app: EtrackApp,
    *,
    job: Job,
    placa: str,
    day: date,
    retry: BaseRetryStrategy,
    controller_lock: int | None = None,
) -> Outcome:
    """Fetch what one partition lacks (history, and trips when asked for),
    then settle it: done, or partial when its day was not over yet; a
    failure is recorded on it, visible while it lasts. `controller_lock`:
    the lock of the backfill controller whose worker runs this job."""
    assert job.id is not None
    where = {"placa": placa, "day": day, "job_id": job.id}
    claim = await fetch_one(app, "jobs_partition_claim", controller_lock=controller_lock, **where)
    if claim is None:
        await run_sql(app, "jobs_partition_settle", **where)
        await finish_ready(app, placa=placa, day=day)
        return Outcome(status="skipped", summary=f"{placa} {day}: done, or taken by another job")
    counts: dict[str, Any] = {}
    settled = False
    account = (await plate_accounts(app, [placa]))[placa]
    # Taken before the first request: what a request sent earlier saw.
    final = day_is_final(day, account, app.env.settings.etrack_late_data_margin_s, utc_now())
    gate = breaker(app.env, account)
    try:
        collector = await app.env.shared_collector(account)
        if claim["need_history"]:
            stats = await gate.call(lambda: collector.fetch_history_day(placa, day))
            counts.update(received=stats.received, inserted=stats.inserted)
            if final and not claim["need_trips"]:
                # History stored and the partition settled in one statement.
                await run_sql(
                    app,
                    "jobs_partition_history_settled",
                    received=stats.received,
                    inserted=stats.inserted,
                    **where,
                )
                settled = True
            elif final:
                await run_sql(
                    app,
                    "jobs_partition_history_done",
                    received=stats.received,
                    inserted=stats.inserted,
                    **where,
                )
        if claim["need_trips"]:
            trips = await gate.call(lambda: collector.fetch_trips(placa, day))
            counts.update(trips=trips.received)
            if final:
                await run_sql(app, "jobs_partition_trips_done", trips=trips.received, **where)
    except Exception as exc:
        if credentials_refused(exc):
            return await _refused(app, account, exc, placa=placa, day=day, where=where)
        gave_up = retry.get_retry_decision(exception=exc, job=job) is None
        await run_sql(
            app,
            "jobs_partition_failed",
            error=describe_error(exc, secrets_of(app.env.settings, account)),
            will_retry=not gave_up,
            **where,
        )
        if gave_up:
            await finish_ready(app, placa=placa, day=day)
        raise
    if settled:
        await finish_ready(app, placa=placa, day=day)
        return Outcome(counts=counts, summary=f"{placa} {day.isoformat()}: {counts}")
    if not final:
        await run_sql(
            app,
            "jobs_partition_partial",
            received=counts.get("received", 0),
            inserted=counts.get("inserted", 0),
            trips=counts.get("trips"),
            **where,
        )
        await finish_ready(app, placa=placa, day=day)
        return Outcome(
            counts={**counts, "partial": True},
            summary=f"{placa} {day.isoformat()}: {counts}; the day was not over: partial",
        )
    await run_sql(app, "jobs_partition_done", **where)
    await finish_ready(app, placa=placa, day=day)
    return Outcome(counts=counts, summary=f"{placa} {day.isoformat()}: {counts}")


async def _refused(
    app: EtrackApp,
    account: Account,
    exc: Exception,
    *,
    placa: str,
    day: date,
    where: dict[str, Any],
) -> Outcome:
    """Settle a partition whose account's credentials were refused: failed for
    good with one reason shared by all the account's partitions (a rerun with
    fixed credentials fetches them). Not raised: the account's refusal is
    expected, reported once by the breaker and by the command, not once per
    partition in the worker's log with its traceback."""
    if not isinstance(exc, CredentialsRefused):
        # The one request that was refused: the others were not sent.
        await mark_refused(app, account, exc)
    reason = exc.reason if isinstance(exc, CredentialsRefused) else str(exc)
    error = redact(
        f"{CREDENTIALS_REFUSED} {account.name}: {reason}", secrets_of(app.env.settings, account)
    )
    await run_sql(app, "jobs_partition_failed", error=error, will_retry=False, **where)
    await finish_ready(app, placa=placa, day=day)
    return Outcome(status="failed", summary=f"{placa} {day.isoformat()}: {error}", error=error)


async def refusal(app: EtrackApp, backfill: Backfill) -> str | None:
    """Why the backfill's partitions failed when it is because credentials
    were refused (the newest such failure's reason), else None."""
    for failure in (await status(app, backfill.id) or _no_status(backfill)).failures:
        if failure.error.startswith(CREDENTIALS_REFUSED) and not failure.will_retry:
            return failure.error
    return None


def _no_status(backfill: Backfill) -> BackfillStatus:
    return BackfillStatus(backfill=backfill, counts=Counts(), failures=[], routes_job_status=None)


async def finish_ready(
    app: EtrackApp,
    *,
    placa: str | None = None,
    day: date | None = None,
    backfill_id: int | None = None,
) -> list[int]:
    """Defer the routes job of every backfill (holding this partition, or
    this one) whose partitions have all settled; returns their ids."""
    rows = await fetch_all(app, "jobs_backfills_ready", placa=placa, day=day, id=backfill_id)
    ready: list[int] = []
    for row in rows:
        backfill_id = int(row["id"])
        try:
            job_id = await app.configure_task(
                BACKFILL_ROUTES, queueing_lock=f"etrack-backfill-routes:{backfill_id}"
            ).defer_async(backfill_id=backfill_id)
        except pexc.AlreadyEnqueued:
            continue
        await run_sql(app, "jobs_backfill_routes_job", id=backfill_id, job_id=job_id)
        ready.append(backfill_id)
    return ready


async def compute_backfill_routes(app: EtrackApp, backfill_id: int) -> Outcome:
    """The routes of a backfill's plates and days (unchanged days skipped),
    and of the days just outside it whose midnight neighbours arrived."""
    backfill = await load_backfill(app, backfill_id)
    if backfill is None:
        return Outcome(status="skipped", summary=f"backfill #{backfill_id} no longer exists")
    settled = await counts(app, backfill)
    if settled.failed and not (settled.done or settled.partial):
        # Every partition failed (credentials refused, the API down): no
        # position came, so no route can have changed.
        line = f"routes: not computed, none of the {settled.total} partitions was fetched"
        await run_sql(app, "jobs_backfill_finished", id=backfill_id, summary=line)
        return Outcome(status="skipped", summary=line)
    target, params = app.env.target, RouteParams.from_settings(app.env.settings)
    days = day_range(backfill.date_start, backfill.date_end)
    # A backfill fills whole months that may never have been analyzed.
    await asyncio.to_thread(analyze_new_partitions_at, target)
    inside = await asyncio.to_thread(
        compute_routes,
        target,
        params,
        plates=backfill.plates,
        days=days,
        batch_plate_days=max(100, app.env.settings.etrac_batch_size * 2),
    )
    edges = [backfill.date_start - timedelta(days=1), backfill.date_end + timedelta(days=1)]
    outside = await asyncio.to_thread(compute_routes, target, params, plates=None, days=edges)
    line = inside.line()
    if outside.computed:
        line += f" (+{outside.computed} neighbouring days recomputed)"
    # The day before too: an event running over midnight starts there.
    events = await asyncio.to_thread(
        compute_events,
        target,
        backfill.plates,
        backfill.date_start - timedelta(days=1),
        backfill.date_end,
        EventParams.from_settings(app.env.settings),
    )
    line += f"; {events.line()}"
    visits = await asyncio.to_thread(
        compute_visits,
        target,
        backfill.plates,
        backfill.date_start - timedelta(days=1),
        backfill.date_end,
        VisitParams.from_settings(app.env.settings),
    )
    line += f"; {visits.line()}"
    drivers = await asyncio.to_thread(
        compute_drivers,
        target,
        backfill.plates,
        backfill.date_start - timedelta(days=1),
        backfill.date_end,
        JornadaParams.from_settings(app.env.settings),
    )
    line += f"; {drivers.line()}"
    # Only events younger than ETRACK_ALERT_MAX_AGE go out: a backfill of old
    # days sends nothing (etrack alerts replay does, on purpose).
    await queue_alerts(app)
    await run_sql(app, "jobs_backfill_finished", id=backfill_id, summary=line)
    return Outcome(counts=_routes_counts(inside), summary=line)


def _routes_counts(summary: RoutesSummary) -> dict[str, Any]:
    return {
        "computed": summary.computed,
        "skipped": summary.skipped,
        "empty": summary.empty,
        "points": summary.points,
    }


# ---------------------------------------------------------------- reading
async def counts(app: EtrackApp, backfill: Backfill) -> Counts:
    row = await fetch_one(app, "jobs_backfill_counts", **_member_params(backfill))
    if row is None:
        return Counts()
    return Counts(**{name: int(row[name] or 0) for name in Counts.__dataclass_fields__})


async def status(app: EtrackApp, backfill_id: int | None = None) -> BackfillStatus | None:
    backfill = await load_backfill(app, backfill_id)
    if backfill is None:
        return None
    members = _member_params(backfill)
    failures = [
        Failure(
            placa=row["placa"],
            day=row["day"],
            attempts=int(row["attempts"]),
            will_retry=bool(row["will_retry"]),
            error=row["error"] or "",
            at=row["updated_at"],
        )
        for row in await fetch_all(app, "jobs_backfill_failures", limit=FAILURES_SHOWN, **members)
    ]
    job_status = None
    if backfill.routes_job_id is not None:
        row = await fetch_one(app, "jobs_job_status", id=backfill.routes_job_id)
        job_status = str(row["status"]) if row else None
    return BackfillStatus(
        backfill=backfill,
        counts=await counts(app, backfill),
        failures=failures,
        routes_job_status=job_status,
    )


async def summarize(
    app: EtrackApp, *, plates: Sequence[str] | None, date_start: date, date_end: date
) -> list[PlateSummary]:
    """The seed's summarize_backfill: per plate, days with routes and points."""
    if plates is None:
        plates = [str(row["placa"]) for row in await fetch_all(app, "jobs_fleet_plates")]
    rows = await fetch_all(
        app, "jobs_backfill_summary", plates=list(plates), start=date_start, end=date_end
    )
    return [
        PlateSummary(
            placa=str(row["placa"]),
            days=(date_end - date_start).days + 1,
            days_with_routes=int(row["days_with_routes"]),
            points=int(row["points"]),
            distance_km=float(row["distance_m"]) / 1000.0,
        )
        for row in rows
    ]


def summary_lines(rows: Sequence[PlateSummary]) -> list[str]:
    """The summary as plain text lines (a table, then a total)."""
    lines = [f"{'placa':<9} {'days with routes':>16} {'points':>9} {'km':>10}"]
    for row in rows:
        lines.append(
            f"{row.placa:<9} {f'{row.days_with_routes}/{row.days}':>16} {row.points:>9} "
            f"{row.distance_km:>10.1f}"
        )
    with_routes = sum(r.days_with_routes for r in rows)
    points = sum(r.points for r in rows)
    lines.append(
        f"total: {len(rows)} plates, {with_routes} plate-days with routes, {points} points"
    )
    return lines


# ------------------------------------------------------------- re-running
async def retry_failed(app: EtrackApp, backfill_id: int | None) -> tuple[Backfill, int] | None:
    """Put a backfill's partitions that failed for good back in the queue."""
    backfill = await load_backfill(app, backfill_id)
    if backfill is None:
        return None
    rows = await fetch_all(app, "jobs_partitions_reset_failed", **_member_params(backfill))
    if rows:
        await run_sql(app, "jobs_backfill_reopen", id=backfill.id)
        await enqueue(app, backfill)
    return backfill, len(rows)


# ----------------------------------------------------------- working off
ProgressCallback = Callable[[Counts], None]


async def work_off(
    app: EtrackApp,
    backfill: Backfill,
    *,
    concurrency: int,
    on_progress: ProgressCallback | None = None,
    poll_s: float = 0.5,
) -> bool:
    """Run a worker in this process on the backfill queue until this
    backfill's partitions have settled and its routes are computed; False
    if it was interrupted (a signal stopped the worker) first."""
    tuning = app.env.tuning
    lock_conn, lock_key = await _hold_controller_lock(app)
    # Cancelling run_worker_async stops the worker gracefully: running jobs
    # finish, nothing new is fetched.
    running = asyncio.create_task(
        app.run_worker_async(
            queues=[BACKFILL_QUEUE],
            name="backfill",
            concurrency=concurrency,
            fetch_job_polling_interval=tuning.poll_s,
            update_heartbeat_interval=tuning.heartbeat_s,
            stalled_worker_timeout=tuning.stalled_after_s,
            worker_middleware=[record_job],
            additional_context={CONTROLLER_CONTEXT: lock_key},
        ),
        name="backfill worker",
    )
    next_recovery = time.monotonic() + tuning.heartbeat_s
    try:
        while not running.done():
            current = await load_backfill(app, backfill.id)
            assert current is not None
            progress = await counts(app, current)
            if on_progress is not None:
                on_progress(progress)
            if current.finished_at is not None or await _routes_failed(app, current):
                return True
            if time.monotonic() >= next_recovery:
                # Partitions held by dead workers (a killed earlier run) come back.
                await recover_stalled_jobs(app, queue=BACKFILL_QUEUE)
                if progress.settled == progress.total:
                    await finish_ready(app, backfill_id=backfill.id)
                next_recovery = time.monotonic() + tuning.heartbeat_s
            # Once every partition has settled only the routes job is left:
            # look often, so the command ends when it does, not up to poll_s later.
            settled = progress.settled == progress.total
            await asyncio.wait({running}, timeout=min(poll_s, 0.05) if settled else poll_s)
        return False
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        # Only once the worker has stopped: a free lock means "no job of
        # this controller is running".
        await lock_conn.close()


async def _hold_controller_lock(app: EtrackApp) -> tuple[db.AsyncConn, int]:
    """A fresh controller lock, held on a dedicated session (never a pooled
    one: closing it, or the process dying, must release it)."""
    conn = await db.connect_async(app.env.target, autocommit=True)
    try:
        while True:
            key = secrets.randbelow(2**31 - 1) + 1
            cursor = await conn.execute(
                query("jobs_controller_lock").encode(),
                {"namespace": CONTROLLER_LOCK_NAMESPACE, "key": key},
            )
            row = await cursor.fetchone()
            if row and row[0]:
                return conn, key
            # Another live controller drew the same key: draw again.
    except BaseException:
        await conn.close()
        raise


async def _routes_failed(app: EtrackApp, backfill: Backfill) -> bool:
    if backfill.routes_job_id is None:
        return False
    row = await fetch_one(app, "jobs_job_status", id=backfill.routes_job_id)
    return row is not None and row["status"] == "failed"
