"""Scheduled reports as jobs: exactly one delivered report per schedule and
period, with any number of workers.

A periodic tick (`etrack.report_tick`, ETRACK_REPORT_CRON, every minute by
default) runs `queue_reports`: for every active schedule, the periods whose
sending time has come (etrack.reports.periods.due_periods: those missed
while no worker ran too), inserted into `report_runs` in one statement
(reports_runs_queue in store/sql/reports.sql). Only the inserter of a pair
gets it back, with the 'queued' runs that lost their job; each gets a job
`etrack.send_report`. This mirrors the alerts' delivery (etrack.jobs.alerts):
- the `report_runs` primary key: two ticks at once (two workers, a tick and
  `etrack reports tick`) insert each period once;
- the job's `lock` (etrack-report:ID:PERIOD) runs two jobs of one period one
  after the other, never at once;
- the job reads the run's state first: 'sent' or 'failed' means a duplicate
  job, and it does nothing.
A failed attempt raises, and the task's retry strategy (ETRACK_REPORT_ATTEMPTS,
ETRACK_REPORT_RETRY_S doubling) tries again; the last marks the period
'failed' with its error (`etrack reports schedule list`, the Jobs page). A
worker killed after the SMTP server took the message but before 'sent' was
written sends it again on recovery: delivery is at least once on the wire,
and the message's Message-ID (the webhook's Idempotency-Key) names the
schedule and period, so a copy can be told.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from procrastinate.jobs import Job

from etrack.alerts.outcome import SendResult
from etrack.errors import EXIT_UNREACHABLE, EtrackError, is_transient
from etrack.jobs.env import EtrackApp, fetch_all, fetch_one, run_sql
from etrack.jobs.names import SEND_REPORT
from etrack.jobs.runs import Outcome
from etrack.reports.periods import due_periods, every_of
from etrack.reports.render import Attachment, check_dialect, check_formats
from etrack.reports.schedules import (
    Delivery,
    deliver,
    produce,
    report_context,
    run_key,
    schedule_request,
)
from etrack.reports.table import Report
from etrack.store import db
from etrack.store.reports import ScheduleRow, get_schedule, list_schedules

__all__ = [
    "ReportNotDelivered",
    "ReportRefused",
    "queue_reports",
    "report_lock",
    "send_report_once",
]

logger = logging.getLogger("etrack.jobs.reports")


class ReportNotDelivered(EtrackError):
    """An attempt failed (SMTP error, non-2xx, timeout): retried with backoff;
    at the command line, after the last attempt, the service is unreachable."""

    transient = True
    exit_code = EXIT_UNREACHABLE


class ReportRefused(EtrackError):
    """The report cannot be sent as configured (no ETRACK_SMTP_URL, a private
    webhook address refused): no retry can help."""


def report_lock(schedule_id: int, period_start: date) -> str:
    return f"etrack-report:{run_key(schedule_id, period_start)}"


def _active_schedules(target: db.Target) -> list[ScheduleRow]:
    with db.connection(target) as conn:
        return list_schedules(conn, active_only=True)


async def queue_reports(app: EtrackApp, now: datetime | None = None) -> int:
    """Queue the periods due of every active schedule; how many jobs were
    deferred (0 when nothing is due: one small statement)."""
    moment = now or datetime.now(UTC)
    schedules = await asyncio.to_thread(_active_schedules, app.env.target)
    ids: list[int] = []
    starts: list[date] = []
    ends: list[date] = []
    for schedule in schedules:
        every = every_of(schedule.every)
        tz = ZoneInfo(schedule.timezone)
        for first, last in due_periods(every, schedule.first_period, schedule.at_local, tz, moment):
            ids.append(schedule.id)
            starts.append(first)
            ends.append(last)
    rows = await fetch_all(app, "reports_runs_queue", schedules=ids, starts=starts, ends=ends)
    for row in rows:
        schedule_id, period_start = int(row["schedule_id"]), row["period_start"]
        deferrer = app.configure_task(SEND_REPORT, lock=report_lock(schedule_id, period_start))
        job_id = await deferrer.defer_async(
            schedule_id=schedule_id, period_start=period_start.isoformat()
        )
        await run_sql(
            app,
            "reports_run_set_job",
            schedule_id=schedule_id,
            period_start=period_start,
            job_id=job_id,
        )
    if rows:
        logger.info("queued %d scheduled reports", len(rows))
    return len(rows)


async def send_report_once(
    app: EtrackApp, job: Job, schedule_id: int, period_start: str
) -> Outcome:
    """The task's work: one attempt at a schedule's period."""
    settings = app.env.settings
    start = date.fromisoformat(period_start)
    key = run_key(schedule_id, start)
    state = await fetch_one(app, "reports_run_state", schedule_id=schedule_id, period_start=start)
    if state is None:
        return Outcome(status="skipped", summary=f"report {key}: the schedule is gone")
    if state["state"] != "queued":
        return Outcome(status="skipped", summary=f"report {key}: already {state['state']}")

    def read() -> ScheduleRow | None:
        with db.connection(app.env.target) as conn:
            return get_schedule(conn, schedule_id)

    schedule = await asyncio.to_thread(read)
    if schedule is None:
        return Outcome(status="skipped", summary=f"report {key}: the schedule is gone")
    if not schedule.active:
        # Paused: the period stays queued and goes out once resumed.
        return Outcome(status="skipped", summary=f"report {key}: paused, the period waits")
    row = await fetch_one(
        app, "reports_run_start", schedule_id=schedule_id, period_start=start, job_id=job.id
    )
    if row is None:
        return Outcome(status="skipped", summary=f"report {key}: already done")
    attempt = int(row["attempts"])
    period = (start, row["period_end"])
    found = schedule

    def build() -> tuple[Report, list[Attachment]]:
        with db.connection(app.env.target) as conn:
            return produce(
                conn,
                schedule_request(found, period),
                report_context(conn, app.env.settings, found.account, ZoneInfo(found.timezone)),
                check_formats(",".join(found.formats)),
                found.lang,
                check_dialect(found.csv_dialect),
            )

    try:
        report, files = await asyncio.to_thread(build)
        result = await deliver(report, files, Delivery.of(schedule), settings, key)
    except EtrackError as exc:
        result = SendResult(ok=False, error=str(exc), permanent=not is_transient(exc))
    except Exception as exc:
        # Anything unforeseen is a failed attempt like any other: recorded,
        # retried, then 'failed', never a period queued forever without an error.
        logger.warning("report %s: unexpected %s", key, type(exc).__name__)
        result = SendResult(ok=False, error=f"unexpected {type(exc).__name__} while sending")
    last = result.ok or result.permanent or job.attempts + 1 >= settings.etrack_report_attempts
    await run_sql(
        app,
        "reports_run_record",
        schedule_id=schedule_id,
        period_start=start,
        state="sent" if result.ok else "failed" if last else "queued",
        error=None if result.ok else result.error,
    )
    if result.ok:
        return Outcome(
            counts={"attempt": attempt},
            summary=f"report {key} ({schedule.kind} {period[0]}..{period[1]}) sent, attempt {attempt}",
        )
    message = f"report {key}, attempt {attempt}: {result.error}"
    if result.permanent:
        raise ReportRefused(message)
    raise ReportNotDelivered(message)
