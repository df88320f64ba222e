"""etrack's Procrastinate tasks and their schedule, as a Blueprint.

Tasks only wire: the work is in etrack.jobs.daily / backfill / runs. Each
returns an `Outcome` (as a dict) that the run record keeps. etrack.jobs.app
adds `blueprint(...)` to every App it makes; the names are etrack.jobs.names.

A new Blueprint per App, not one at module level: adding a blueprint to an
App binds its tasks to that App (a task defers through its own App), and one
process may hold several Apps at once (the web's enqueueing App beside its
embedded worker); the periodic crons also come from the settings.

Queues: `etrack` for the scheduled jobs and the daily run, `backfill` for
backfill partitions and their routes (a backfill's in-process worker only
listens there). `etrack worker` listens to both.

Schedule (Procrastinate defers each tick once, whatever the number of
workers: the database refuses a second job for the same task and tick):

- fetch latest positions: ETRACK_FETCH_CRON (default every 2 minutes);
- the daily run: ETRACK_DAILY_AT local time of ETRAC_TIMEZONE, for yesterday;
- stalled-job recovery: ETRACK_JOB_RECOVER_CRON (default every minute);
- retention (when ETRACK_RETENTION, ETRACK_RETENTION_RAW or
  ETRACK_AUDIT_RETENTION is set): 03:30 local;
- the scheduled reports' tick: ETRACK_REPORT_CRON (default every minute).

Procrastinate evaluates crons on UTC timestamps, so local times are turned
into UTC when the worker starts. Caveat: in a zone with daylight saving time
the conversion uses the offset of the next occurrence; a worker that keeps
running across a change of offset runs the daily job one hour early or late
until it restarts (the day it processes is still right: it is taken from the
tick's local date). America/Sao_Paulo has had no DST since 2019.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, ParamSpec, TypeVar

from procrastinate import Blueprint, JobContext, RetryDecision
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy

from etrack.config import Settings
from etrack.errors import ApiCircuitOpen, EtrackError, is_transient
from etrack.jobs.alerts import deliver_alert_once
from etrack.jobs.backfill import CONTROLLER_CONTEXT, compute_backfill_routes, work_partition
from etrack.jobs.daily import fetch_latest_once, run_daily_job
from etrack.jobs.env import JobTuning, job_app
from etrack.jobs.names import (
    BACKFILL_PARTITION,
    BACKFILL_QUEUE,
    BACKFILL_ROUTES,
    COMPUTE_VISITS,
    DAILY,
    DAILY_LOCK,
    DAILY_SCHEDULED,
    DELIVER_ALERT,
    ETRACK_QUEUE,
    FETCH_LATEST,
    PRUNE_RETENTION,
    RECOVER_STALLED,
    REPORT_TICK,
    SEND_REPORT,
)
from etrack.jobs.reports import queue_reports, send_report_once
from etrack.jobs.runs import Outcome, quiet_expected_failures, recover_stalled_jobs
from etrack.jobs.visits import compute_visits_job
from etrack.store import db
from etrack.store.audit import Actor, acting
from etrack.store.retention import PruneReport, prune_audit_with_settings, prune_with_settings

__all__ = [
    "DAILY_RETRY",
    "PARTITION_RETRY",
    "ROUTES_RETRY",
    "Backoff",
    "alert_retry",
    "blueprint",
    "daily_cron",
    "local_cron_to_utc",
    "local_day_before",
    "report_retry",
]

logger = logging.getLogger("etrack.jobs")

P = ParamSpec("P")
R = TypeVar("R")

PRUNE_CRON = "30 3 * * *"  # local time of ETRAC_TIMEZONE


# ------------------------------------------------------------------ retries
class Backoff(BaseRetryStrategy):
    """Retry up to `attempts` runs in all, waiting first_s, 2*first_s, ...
    (at most max_s).

    An etrack error says itself whether asking again can fix it (its class's
    `transient`): a permanent one is final at once. Any other exception (a
    library error nobody converted, a bug) is retried within the attempts,
    as a passing glitch may be behind it.
    """

    def __init__(self, *, attempts: int, first_s: float, max_s: float) -> None:
        self.attempts = attempts
        self.first_s = first_s
        self.max_s = max_s

    def __repr__(self) -> str:
        return f"Backoff(attempts={self.attempts}, first_s={self.first_s}, max_s={self.max_s})"

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        # job.attempts counts the runs before this one.
        permanent = isinstance(exception, EtrackError) and not is_transient(exception)
        if job.attempts + 1 >= self.attempts or permanent:
            return None
        wait = min(self.max_s, self.first_s * 2**job.attempts)
        if isinstance(exception, ApiCircuitOpen):
            # Not sent: trying before the breaker's next probe would only
            # spend an attempt without a chance.
            wait = max(wait, exception.retry_after_s)
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=wait))


PARTITION_RETRY = Backoff(attempts=6, first_s=1.0, max_s=60.0)
DAILY_RETRY = Backoff(attempts=5, first_s=60.0, max_s=900.0)
ROUTES_RETRY = Backoff(attempts=4, first_s=5.0, max_s=120.0)
ALERT_RETRY_MAX_S = 3600.0


def alert_retry(settings: Settings) -> Backoff:
    """An alert's attempts (ETRACK_ALERT_ATTEMPTS), waiting ETRACK_ALERT_RETRY_S
    and doubling up to an hour: a receiver down for a while still gets it."""
    first = settings.etrack_alert_retry_s
    return Backoff(
        attempts=settings.etrack_alert_attempts, first_s=first, max_s=max(first, ALERT_RETRY_MAX_S)
    )


# ----------------------------------------------------------------- schedule
def report_retry(settings: Settings) -> Backoff:
    """A scheduled report's attempts (ETRACK_REPORT_ATTEMPTS), waiting
    ETRACK_REPORT_RETRY_S and doubling up to an hour."""
    first = settings.etrack_report_retry_s
    return Backoff(
        attempts=settings.etrack_report_attempts, first_s=first, max_s=max(first, ALERT_RETRY_MAX_S)
    )


def daily_cron(daily_at: str, tz: tzinfo, *, now: datetime | None = None) -> str:
    """The UTC cron of a local HH:MM, with the offset of its next occurrence."""
    hour, minute = (int(part) for part in daily_at.split(":"))
    local_now = (now or datetime.now(UTC)).astimezone(tz)
    moment = datetime.combine(local_now.date(), time(hour, minute), tz)
    if moment <= local_now:
        moment = datetime.combine(local_now.date() + timedelta(days=1), time(hour, minute), tz)
    utc = moment.astimezone(UTC)
    return f"{utc.minute} {utc.hour} * * *"


def local_cron_to_utc(cron: str, tz: tzinfo, *, now: datetime | None = None) -> str:
    """A cron written in local time, for Procrastinate's UTC evaluation.

    Only the hour field depends on the zone: `*`-hour crons (every N minutes
    or seconds) are unchanged. A restricted hour field is shifted by the
    current whole-hour offset; a zone with a fractional offset, or a day
    field that the shift would move across midnight, is left as written, in
    UTC, with a warning.
    """
    fields = cron.split()
    if len(fields) not in (5, 6) or fields[1] == "*":
        return cron
    offset = (now or datetime.now(UTC)).astimezone(tz).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    if minutes % 60:
        logger.warning("cron %r is read in UTC: the zone's offset is not whole hours", cron)
        return cron
    hours = _expand_hours(fields[1])
    if hours is None:
        logger.warning("cron %r is read in UTC: its hour field is not understood", cron)
        return cron
    shifted = sorted({(hour - minutes // 60) % 24 for hour in hours})
    crosses = any(not 0 <= hour - minutes // 60 < 24 for hour in hours)
    if crosses and (fields[2] != "*" or fields[4] != "*"):
        logger.warning("cron %r is read in UTC: shifting it would change its day", cron)
        return cron
    fields[1] = ",".join(str(hour) for hour in shifted)
    return " ".join(fields)


def _expand_hours(field: str) -> list[int] | None:
    hours: set[int] = set()
    for item in field.split(","):
        spec, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if spec == "*":
                first, last = 0, 23
            elif "-" in spec:
                first, last = (int(part) for part in spec.split("-", 1))
            else:
                first = int(spec)
                last = 23 if step_text else first
        except ValueError:
            return None
        if not (0 <= first <= last <= 23) or step < 1:
            return None
        hours.update(range(first, last + 1, step))
    return sorted(hours)


def local_day_before(timestamp: int, tz: tzinfo) -> date:
    """The local day a daily tick processes: the one before the tick's."""
    return datetime.fromtimestamp(timestamp, tz).date() - timedelta(days=1)


# -------------------------------------------------------------------- tasks
async def fetch_latest(context: JobContext, timestamp: int) -> dict[str, Any]:
    return (await fetch_latest_once(job_app(context))).as_result()


async def daily_scheduled(context: JobContext, timestamp: int) -> dict[str, Any]:
    app = job_app(context)
    day = local_day_before(timestamp, app.env.settings.tz)
    return (await run_daily_job(app, day)).as_result()


async def daily(context: JobContext, day: str) -> dict[str, Any]:
    return (await run_daily_job(job_app(context), date.fromisoformat(day))).as_result()


async def recover_stalled(context: JobContext, timestamp: int) -> dict[str, Any]:
    return (await recover_stalled_jobs(job_app(context))).as_result()


async def prune_retention(context: JobContext, timestamp: int) -> dict[str, Any]:
    """Apply ETRACK_RETENTION / ETRACK_RETENTION_RAW (LGPD: tracks are personal
    data), and ETRACK_AUDIT_RETENTION to the audit log."""
    app = job_app(context)

    def work() -> tuple[list[PruneReport], int]:
        # Autocommit: each batch commits on its own, and VACUUM cannot run in a transaction.
        with db.connection(app.env.target, autocommit=True) as conn:
            reports = prune_with_settings(conn, app.env.settings)
            return reports, prune_audit_with_settings(conn, app.env.settings)

    reports, audit_rows = await asyncio.to_thread(work)
    if not reports and app.env.settings.etrack_audit_retention is None:
        return Outcome(status="skipped", summary="no retention configured").as_result()
    counts: dict[str, Any] = {}
    for report in reports:
        for key, value in report.counts().items():
            counts[key] = counts.get(key, 0) + value if isinstance(value, int) else value
    counts["audit_rows_deleted"] = audit_rows
    busy = any(report.busy for report in reports)
    lines = [line for report in reports for line in report.lines()]
    lines.append(f"audit: {audit_rows} rows older than ETRACK_AUDIT_RETENTION deleted")
    return Outcome(
        status="failed" if busy else "succeeded",
        counts=counts,
        summary="; ".join(lines)[:2000],
        error="another prune held the lock or a month stayed busy; retried tomorrow"
        if busy
        else None,
    ).as_result()


async def backfill_partition(context: JobContext, placa: str, day: str) -> dict[str, Any]:
    job = context.job
    assert job.id is not None
    # Set by a backfill controller's own worker (etrack.jobs.backfill.work_off).
    lock = context.additional_context.get(CONTROLLER_CONTEXT)
    outcome = await work_partition(
        job_app(context),
        job=job,
        placa=placa,
        day=date.fromisoformat(day),
        retry=PARTITION_RETRY,
        controller_lock=int(lock) if lock is not None else None,
    )
    return outcome.as_result()


async def backfill_routes(context: JobContext, backfill_id: int) -> dict[str, Any]:
    return (await compute_backfill_routes(job_app(context), backfill_id)).as_result()


async def deliver_alert(context: JobContext, rule: str, event_id: str) -> dict[str, Any]:
    outcome = await deliver_alert_once(job_app(context), context.job, rule, event_id)
    return outcome.as_result()


async def report_tick(context: JobContext, timestamp: int) -> dict[str, Any]:
    queued = await queue_reports(job_app(context))
    return Outcome(
        status="succeeded" if queued else "skipped",
        counts={"queued": queued},
        summary=f"{queued} report periods queued",
    ).as_result()


async def send_report(context: JobContext, schedule_id: int, period_start: str) -> dict[str, Any]:
    outcome = await send_report_once(job_app(context), context.job, schedule_id, period_start)
    return outcome.as_result()


_WORKER = Actor("worker")


def _as_worker(task: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """The task run as the worker: what it changes is audited with actor
    "worker", whichever process runs it (`etrack worker`, the web's embedded
    worker, a backfill's own), not the command or request that started it."""

    @functools.wraps(task)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with acting(_WORKER):
            return await task(*args, **kwargs)

    return run


def blueprint(settings: Settings, tuning: JobTuning, *, schedule: bool) -> Blueprint:
    """etrack's tasks, for one App; with `schedule`, their periodic ticks too."""
    # Every worker runs an App made with this blueprint: its failed jobs log
    # one line each, not a traceback (etrack.jobs.runs).
    quiet_expected_failures()
    tasks = Blueprint()
    fetch = tasks.task(name=FETCH_LATEST, queue=ETRACK_QUEUE, pass_context=True)(
        _as_worker(fetch_latest)
    )
    daily_tick = tasks.task(
        name=DAILY_SCHEDULED,
        queue=ETRACK_QUEUE,
        pass_context=True,
        lock=DAILY_LOCK,
        retry=DAILY_RETRY,
    )(_as_worker(daily_scheduled))
    tasks.task(
        name=DAILY, queue=ETRACK_QUEUE, pass_context=True, lock=DAILY_LOCK, retry=DAILY_RETRY
    )(_as_worker(daily))
    recover = tasks.task(name=RECOVER_STALLED, queue=ETRACK_QUEUE, pass_context=True)(
        _as_worker(recover_stalled)
    )
    prune = tasks.task(name=PRUNE_RETENTION, queue=ETRACK_QUEUE, pass_context=True)(
        _as_worker(prune_retention)
    )
    tasks.task(
        name=BACKFILL_PARTITION, queue=BACKFILL_QUEUE, pass_context=True, retry=PARTITION_RETRY
    )(_as_worker(backfill_partition))
    tasks.task(name=BACKFILL_ROUTES, queue=BACKFILL_QUEUE, pass_context=True, retry=ROUTES_RETRY)(
        _as_worker(backfill_routes)
    )
    tasks.task(
        name=DELIVER_ALERT, queue=ETRACK_QUEUE, pass_context=True, retry=alert_retry(settings)
    )(_as_worker(deliver_alert))
    tick = tasks.task(name=REPORT_TICK, queue=ETRACK_QUEUE, pass_context=True)(
        _as_worker(report_tick)
    )
    tasks.task(
        name=SEND_REPORT, queue=ETRACK_QUEUE, pass_context=True, retry=report_retry(settings)
    )(_as_worker(send_report))
    # Locks per month are set when deferring (etrack.jobs.visits.queue_visits).
    tasks.task(name=COMPUTE_VISITS, queue=ETRACK_QUEUE, pass_context=True)(
        _as_worker(compute_visits_job)
    )
    if not schedule:
        return tasks
    tz = settings.tz
    # A queueing lock: while a tick's job still waits (workers busy or
    # down), later ticks are not piled up behind it.
    tasks.periodic(
        cron=local_cron_to_utc(settings.etrack_fetch_cron, tz),
        periodic_id="fetch_latest",
        queueing_lock="etrack-fetch-latest",
    )(fetch)
    tasks.periodic(cron=daily_cron(settings.etrack_daily_at, tz), periodic_id="daily")(daily_tick)
    tasks.periodic(
        cron=tuning.recover_cron, periodic_id="recover_stalled", queueing_lock="etrack-recover"
    )(recover)
    tasks.periodic(
        cron=local_cron_to_utc(settings.etrack_report_cron, tz),
        periodic_id="report_tick",
        queueing_lock="etrack-report-tick",
    )(tick)
    if (
        settings.etrack_retention
        or settings.etrack_retention_raw
        or settings.etrack_audit_retention
    ):
        # Nightly, after the daily run, when nobody is looking at old months.
        tasks.periodic(
            cron=local_cron_to_utc(PRUNE_CRON, tz),
            periodic_id="prune_retention",
            queueing_lock="etrack-prune",
        )(prune)
    return tasks
