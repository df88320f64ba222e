"""Geofence visits over the whole stored history, as jobs: one per calendar month.

A fence created or changed from the web (POST /api/geofences, the Geofences
page) must be applied to every stored position, maybe two years of them: far
too long for a request. `queue_history_visits(app)` reads the span of the
stored valid positions and `queue_visits(app, first_day, last_day)` defers one
`etrack.compute_visits` job per calendar month of it (local days of
ETRAC_TIMEZONE). Each job runs `etrack.geofences.compute.compute_visits` over
its month against every stored fence, so it is idempotent: a month computed
twice writes nothing the second time, and months may run in any order.

Locks (names in etrack.jobs.names):
- a `queueing_lock` per month: while a month's job waits in the queue, a
  second one is not queued (it would do the same work: a job reads the fences
  when it runs, not when it was queued). A month whose job is already running
  does get a new one: the running job may have read the fences before the
  change;
- a `lock` per month: two jobs of one month run one after the other.
No retry strategy: Procrastinate puts a retried job back in the queue under
its queueing lock, which fails while another job of the month waits there. A
failed month shows on the Jobs page; saving the fence again, or
`etrack geofences visits-compute`, computes it.

Each run is recorded in job_runs (kind `compute_visits`, the month in its
arguments) with the computation's summary line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from procrastinate import JobContext
from procrastinate import exceptions as pexc

from etrack.events.compute import compute_events
from etrack.events.params import EventParams
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.jobs.env import EtrackApp, job_app
from etrack.jobs.names import COMPUTE_VISITS, VISITS_LOCK
from etrack.jobs.runs import Outcome
from etrack.store import db
from etrack.store.geofences import history_span

__all__ = [
    "compute_visits_job",
    "history_days",
    "month_chunks",
    "queue_history_visits",
    "queue_visits",
    "visits_lock",
]

logger = logging.getLogger("etrack.jobs.visits")

EVENTS_SUFFIX = ":events"


def month_chunks(first_day: date, last_day: date) -> Iterator[tuple[date, date]]:
    """(first, last) day of each calendar month that first_day..last_day
    touches, clipped to the range."""
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    start = first_day
    while start <= last_day:
        next_month = (start.replace(day=1) + timedelta(days=32)).replace(day=1)
        end = min(last_day, next_month - timedelta(days=1))
        yield start, end
        start = next_month


def visits_lock(first_day: date) -> str:
    """The lock (and queueing lock) of the month holding `first_day`."""
    return f"{VISITS_LOCK}:{first_day.replace(day=1).isoformat()}"


async def queue_visits(
    app: EtrackApp, first_day: date, last_day: date, *, events: bool = False
) -> list[int]:
    """Defer one compute_visits job per month of first_day..last_day; the ids
    of the jobs deferred (a month whose job still waits in the queue gets none).
    `events`: the jobs recompute the month's events too (a fence's speed
    limit, or a limited fence's shape, changed: the overspeed events follow);
    such a job has locks of its own, so a waiting visits-only job of the
    month does not keep it out of the queue."""
    ids: list[int] = []
    for first, last in month_chunks(first_day, last_day):
        lock = visits_lock(first) + (EVENTS_SUFFIX if events else "")
        deferrer = app.configure_task(COMPUTE_VISITS, lock=lock, queueing_lock=lock)
        try:
            job_id = await deferrer.defer_async(
                first_day=first.isoformat(),
                last_day=last.isoformat(),
                **({"events": True} if events else {}),
            )
        except pexc.AlreadyEnqueued:
            continue
        ids.append(job_id)
    if ids:
        logger.info("queued %d compute_visits job(s) for %s..%s", len(ids), first_day, last_day)
    return ids


def history_days(target: db.Target, params: VisitParams) -> tuple[date, date] | None:
    """The local days of the first and last valid position stored; None without any."""
    with db.connection(target, autocommit=True) as conn:
        span = history_span(conn)
    if span is None:
        return None
    return span[0].astimezone(params.tz).date(), span[1].astimezone(params.tz).date()


async def queue_history_visits(app: EtrackApp, *, events: bool = False) -> list[int]:
    """queue_visits over the whole stored history (nothing without positions)."""
    params = VisitParams.from_settings(app.env.settings)
    days = await asyncio.to_thread(history_days, app.env.target, params)
    if days is None:
        return []
    return await queue_visits(app, *days, events=events)


async def compute_visits_job(
    context: JobContext, first_day: str, last_day: str, events: bool = False
) -> dict[str, Any]:
    """The task: the visits of the local days first_day..last_day (one month),
    and with `events` that month's events (under the fences' speed limits)."""
    app = job_app(context)
    first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
    params = VisitParams.from_settings(app.env.settings)
    summary = await asyncio.to_thread(compute_visits, app.env.target, None, first, last, params)
    if events:
        event_params = EventParams.from_settings(app.env.settings)
        await asyncio.to_thread(compute_events, app.env.target, None, first, last, event_params)
    # No counts: the summary line holds them, and the Jobs page shows it
    # translated (etrack.web.i18n), where counts would be shown instead.
    return Outcome(
        status="succeeded" if summary.fences or events else "skipped",
        summary=f"{first}..{last}: {summary.line()}",
    ).as_result()
