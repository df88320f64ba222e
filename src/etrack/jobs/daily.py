"""The daily run: yesterday's history, the provider's trips and the routes of
every plate; and the catch-up of days a stopped machine missed.

One run at a time, guarded by the advisory lock ETRAC_DAILY_LOCK_ID held by a
dedicated session (never through a pooler; released if the process dies). A
day counts as done in `daily_runs` only when every plate of the fleet was
fetched, so a failed or partial run leaves it for the retry or the catch-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from procrastinate import exceptions as pexc

from etrack.collect import Collector
from etrack.config import Account
from etrack.drivers.compute import JornadaParams, compute_drivers
from etrack.errors import DailyBusy, DailyIncomplete
from etrack.events.compute import EventsSummary, compute_events, detect_offline
from etrack.events.params import EventParams
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.jobs.accounts import AccountsRun, each_account, plate_accounts
from etrack.jobs.alerts import queue_alerts
from etrack.jobs.env import EtrackApp, fetch_all, run_sql, session_lock
from etrack.jobs.names import DAILY
from etrack.jobs.runs import Outcome, describe_error
from etrack.logs import secrets_of
from etrack.store.accounts import fallback_account
from etrack.store.stats import analyze_new_partitions_at
from etrack.trips.compute import RoutesSummary, compute_routes
from etrack.trips.params import RouteParams

__all__ = [
    "CATCH_UP_DAYS",
    "DailyOptions",
    "DailyResult",
    "defer_catch_up",
    "due_days",
    "fetch_latest_once",
    "run_daily",
    "run_daily_job",
]

logger = logging.getLogger("etrack.jobs.daily")
fetch_logger = logging.getLogger("etrack.jobs.fetch_latest")

CATCH_UP_DAYS = 7


@dataclass(frozen=True, slots=True)
class DailyOptions:
    day: date
    plates: list[str] | None = None  # None: the whole fleet, refreshed first
    sleep: float | None = None  # None: ETRAC_RATE_SLEEP
    batch_size: int | None = None  # None: ETRAC_BATCH_SIZE
    account: str | None = None  # None: every account


@dataclass(slots=True)
class DailyResult:
    day: date
    plates: int = 0
    fetch_line: str = ""
    routes: RoutesSummary = field(default_factory=RoutesSummary)
    events: EventsSummary | None = None
    failed: dict[str, str] = field(default_factory=dict)
    fleet: bool = True
    started: float = field(default_factory=time.monotonic)

    @property
    def complete(self) -> bool:
        return self.fleet and not self.failed

    def line(self) -> str:
        text = (
            f"daily {self.day.isoformat()}: {_plates(self.plates)}; {self.fetch_line}; "
            f"{self.routes.line()}"
        )
        if self.events is not None:
            text += f"; {self.events.line()}"
        if self.failed:
            text += f"; {_plates(len(self.failed))} failed: {self.failures()}"
        return text + f"; total {time.monotonic() - self.started:.1f} s"

    def failures(self, shown: int = 5) -> str:
        listed = ", ".join(
            f"{p} ({e.splitlines()[0][:120]})" for p, e in sorted(self.failed.items())[:shown]
        )
        more = f" and {len(self.failed) - shown} more" if len(self.failed) > shown else ""
        return listed + more

    def outcome(self) -> Outcome:
        return Outcome(
            status="failed" if self.failed else "succeeded",
            error=f"{_plates(len(self.failed))} failed: {self.failures()}" if self.failed else None,
            counts={
                "plates": self.plates,
                "failed": len(self.failed),
                "routes_computed": self.routes.computed,
                "points": self.routes.points,
            },
            summary=self.line(),
        )


def _plates(count: int) -> str:
    return f"{count} plate" if count == 1 else f"{count} plates"


# ------------------------------------------------------------------- steps
async def fetch_latest_once(app: EtrackApp, account: str | None = None) -> Outcome:
    """The periodic fetch of every vehicle's latest position, account by
    account; one failing account does not hold back the others."""

    async def one(chosen: Account) -> tuple[int, int, int, int, int]:
        collector = await app.env.shared_collector(chosen)
        stats = await collector.fetch_latest()
        return (stats.received, stats.inserted, stats.updated, stats.flagged, stats.rejected)

    run = await each_account(app, app.env.accounts(account), one)
    received, inserted, updated, flagged, rejected = (
        (sum(values) for values in zip(*run.results.values(), strict=True))
        if run.results
        else (0, 0, 0, 0, 0)
    )
    summary = (
        f"received {received}, inserted {inserted}, updated {updated}, "
        f"flagged invalid {flagged}, rejected {rejected}"
    )
    if len(run.results) + len(run.failed) + len(run.skipped) > 1 or run.skipped:
        summary += f"; accounts fetched {len(run.results)}"
    if run.failed or run.skipped:
        summary += "; " + run.notes()
    run.raise_if_all_failed()
    # Only when every account answered: a failing account's vehicles stop
    # moving forward in latest_positions, and would all turn "offline".
    if run.results and not run.failed and not run.skipped:
        offline = await asyncio.to_thread(
            detect_offline,
            app.env.target,
            datetime.now(UTC),
            EventParams.from_settings(app.env.settings),
        )
        summary += f"; {offline.line()}"
    elif run.results:
        summary += "; offline: not checked (an account did not answer)"
    if run.results:
        # Today's events over the latest samples, so an overspeed or an idle
        # reaches the alert rules within a fetch interval, not the next day.
        params = EventParams.from_settings(app.env.settings)
        today = datetime.now(app.env.settings.tz).date()
        live = await asyncio.to_thread(compute_events, app.env.target, None, today, today, params)
        if live.inserted or live.updated:
            summary += f"; events today: {live.inserted} new, {live.updated} updated"
        # Today's visits too: new positions extend or close the open ones,
        # and their enter/exit events reach the alert rules with the others.
        visits = await asyncio.to_thread(
            compute_visits,
            app.env.target,
            None,
            today,
            today,
            VisitParams.from_settings(app.env.settings),
        )
        if visits.written:
            summary += f"; visits today: {visits.written} written"
        # New events (these, offline ones, those of history fetched meanwhile)
        # to the alert rules; also re-queues deliveries a crash left unqueued.
        queued = await queue_alerts(app)
        if queued:
            summary += f"; alerts queued {queued}"
    fetch_logger.info("fetch latest: %s", summary)
    return Outcome(
        # Partly done is a success: the accounts that answered are stored, and
        # the failing ones are reported by their own state (etrack accounts).
        # Nothing fetched at all (every account failing) is not: /healthz
        # reads the last successful fetch as the freshness of the data.
        status="succeeded" if run.results else "failed",
        error=None if run.results else run.notes(),
        counts={
            "received": received,
            "inserted": inserted,
            "flagged": flagged,
            "accounts_failed": len(run.failed),
        },
        summary=summary,
    )


async def fleet_plates(app: EtrackApp, accounts: list[Account]) -> list[str]:
    """The plates of `accounts` (plates stored before accounts existed
    belong to the first configured one)."""
    rows = await fetch_all(
        app,
        "accounts_plates",
        fallback=fallback_account(app.env.accounts()),
        accounts=[a.name for a in accounts],
    )
    return [str(row["placa"]) for row in rows]


async def fetch_day(
    collector: Collector, plates: Sequence[str], day: date, *, batch_size: int, secrets: list[str]
) -> dict[str, str]:
    """History and provider trips of every plate for `day`; failures by plate.

    A batch of plates is in flight at once; the rate limiter, not the batch,
    paces the requests.
    """
    failed: dict[str, str] = {}

    async def one(placa: str) -> None:
        try:
            await collector.fetch_history_day(placa, day)
            await collector.fetch_trips(placa, day)
        except Exception as exc:
            failed[placa] = describe_error(exc, secrets)
            logger.warning("daily %s: %s failed: %s", day, placa, failed[placa])

    for start in range(0, len(plates), max(1, batch_size)):
        await asyncio.gather(*(one(p) for p in plates[start : start + batch_size]))
    return failed


async def compute_day_routes(app: EtrackApp, plates: Sequence[str], day: date) -> RoutesSummary:
    """The day's routes for `plates`, and the day before's where new data
    around midnight changed them (skipped when unchanged)."""
    target, params = app.env.target, RouteParams.from_settings(app.env.settings)
    # A new month's partition has no statistics yet: give the planner some first.
    await asyncio.to_thread(analyze_new_partitions_at, target)
    today = await asyncio.to_thread(compute_routes, target, params, plates=list(plates), days=[day])
    before = await asyncio.to_thread(
        compute_routes, target, params, plates=None, days=[day - timedelta(days=1)]
    )
    return _add_routes(today, before)


def _add_routes(a: RoutesSummary, b: RoutesSummary) -> RoutesSummary:
    return RoutesSummary(
        computed=a.computed + b.computed,
        skipped=a.skipped + b.skipped,
        empty=a.empty + b.empty,
        trips=a.trips + b.trips,
        stops=a.stops + b.stops,
        points=a.points + b.points,
        seconds=a.seconds + b.seconds,
    )


async def run_daily(app: EtrackApp, options: DailyOptions) -> DailyResult:
    """The whole daily run under the daily lock; DailyBusy if another has it."""
    settings = app.env.settings
    lock_id = settings.etrac_daily_lock_id
    async with session_lock(app.env.target, lock_id) as acquired:
        if not acquired:
            raise DailyBusy(lock_id)
        # Read before any work: a bad events file stops the run at once (exit 2).
        events_params = EventParams.from_settings(settings)
        result = DailyResult(
            day=options.day, fleet=options.plates is None and options.account is None
        )
        batch = options.batch_size or settings.etrac_batch_size
        chosen = app.env.accounts(options.account)
        given: dict[str, list[str]] | None = None
        if options.plates is not None:
            given = {}
            for placa, owner in (await plate_accounts(app, options.plates)).items():
                given.setdefault(owner.name, []).append(placa)
            chosen = [a for a in chosen if a.name in given]

        async def one(account: Account) -> tuple[list[str], dict[str, str], str]:
            async with app.env.new_collector(
                account, min_interval=options.sleep, pool_size=4
            ) as collector:
                if given is not None:
                    plates = given[account.name]
                else:
                    await collector.fetch_latest()
                    plates = await fleet_plates(app, [account])
                failed = await fetch_day(
                    collector,
                    plates,
                    options.day,
                    batch_size=batch,
                    secrets=secrets_of(app.env.settings, account),
                )
                return plates, failed, collector.summary.line()

        # Accounts in parallel, each under its own budget; a failing account
        # is tried too (once a day is cheap), and leaves the day incomplete.
        run: AccountsRun[tuple[list[str], dict[str, str], str]] = await each_account(
            app, chosen, one, skip_failing=False
        )
        run.raise_if_all_failed()
        plates = [p for done in run.results.values() for p in done[0]]
        for done in run.results.values():
            result.failed.update(done[1])
        for name, error in run.failed.items():
            result.failed[f"account {name}"] = error
        result.plates = len(plates)
        lines = [done[2] for done in run.results.values()]
        if len(chosen) > 1:
            lines = [f"{name}: {done[2]}" for name, done in sorted(run.results.items())]
        result.fetch_line = " | ".join(lines) if lines else "nothing fetched"
        fetched = [p for p in plates if p not in result.failed]
        result.routes = await compute_day_routes(app, fetched, options.day)
        # The day before too: an event running over midnight starts there.
        result.events = await asyncio.to_thread(
            compute_events,
            app.env.target,
            fetched,
            options.day - timedelta(days=1),
            options.day,
            events_params,
        )
        await asyncio.to_thread(
            compute_visits,
            app.env.target,
            fetched,
            options.day - timedelta(days=1),
            options.day,
            VisitParams.from_settings(app.env.settings),
        )
        # Who drove the day's trips, and their violations (a working day
        # begun the day before included).
        await asyncio.to_thread(
            compute_drivers,
            app.env.target,
            fetched,
            options.day - timedelta(days=1),
            options.day,
            JornadaParams.from_settings(app.env.settings),
        )
        await queue_alerts(app)
        if result.complete:
            await run_sql(
                app,
                "jobs_daily_done",
                day=options.day,
                plates=result.plates,
                summary=result.line(),
            )
        logger.info("%s", result.line())
        return result


async def run_daily_job(app: EtrackApp, day: date) -> Outcome:
    """The worker's daily job: skip a day already done, else run it."""
    done = await fetch_all(app, "jobs_daily_days", first=day, last=day)
    if done:
        return Outcome(status="skipped", summary=f"daily {day.isoformat()}: already done")
    result = await run_daily(app, DailyOptions(day=day))
    if result.failed:
        raise DailyIncomplete(result.line())
    return result.outcome()


# ---------------------------------------------------------------- catch-up
def due_days(
    now: datetime,
    daily_at: str,
    *,
    completed: set[date],
    horizon: int = CATCH_UP_DAYS,
) -> list[date]:
    """Local days whose daily run should have happened by `now` (local) and
    did not, oldest first.

    The run at HH:MM on day D processes D-1. Look back at most `horizon`
    days, and never before the day after the last completed one; with no
    completed day at all (a new install), only the last due day.
    """
    hour, minute = (int(part) for part in daily_at.split(":"))
    today = now.date()
    last_due = today - timedelta(days=1 if now.time() >= clock(hour, minute) else 2)
    if not completed:
        return [last_due]
    first = max(max(completed) + timedelta(days=1), last_due - timedelta(days=horizon - 1))
    days = []
    day = first
    while day <= last_due:
        if day not in completed:
            days.append(day)
        day += timedelta(days=1)
    return days


async def defer_catch_up(app: EtrackApp, *, now: datetime | None = None) -> list[date]:
    """Defer the daily job of every missed day (see `due_days`); several
    workers starting at once defer each day once (queueing lock, and days
    already queued or running are left alone)."""
    settings = app.env.settings
    local_now = (now or datetime.now(UTC)).astimezone(settings.tz)
    horizon_start = local_now.date() - timedelta(days=CATCH_UP_DAYS + 2)
    rows = await fetch_all(app, "jobs_daily_days", first=horizon_start, last=local_now.date())
    completed = {row["day"] for row in rows}
    if not completed:
        latest = await fetch_all(app, "jobs_daily_last")
        completed = {row["day"] for row in latest}
    queued = {str(row["day"]) for row in await fetch_all(app, "jobs_daily_queued", task_name=DAILY)}
    deferred: list[date] = []
    for day in due_days(local_now, settings.etrack_daily_at, completed=completed):
        if day.isoformat() in queued:
            continue
        try:
            await app.configure_task(
                DAILY, queueing_lock=f"etrack-daily:{day.isoformat()}"
            ).defer_async(day=day.isoformat())
        except pexc.AlreadyEnqueued:
            continue
        deferred.append(day)
    if deferred:
        logger.info("catch-up: deferred the daily run of %s", ", ".join(map(str, deferred)))
    return deferred
