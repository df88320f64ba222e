"""The jobs commands: worker, jobs, daily, backfill (+ status, retry-failed,
summary). They only wire options to etrack.jobs; `register(app)` adds them to
the `etrack` Typer app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from etrack.cli.common import (
    AccountOpt,
    PlatesFileOpt,
    api_accounts,
    chosen_accounts,
    database,
    echo,
    echo_summary,
    read_day,
    read_plates,
    require_credentials,
    settings,
    summary_printed_here,
    user_input,
)
from etrack.config import Settings, load_accounts
from etrack.dates import DATE_FORMS, day_range
from etrack.errors import EXIT_FAILURE, EXIT_INTERRUPTED, CredentialsError, DailyBusy, UsageError
from etrack.jobs import backfill as bf
from etrack.jobs.app import open_app, pool_sizes
from etrack.jobs.backfill import BackfillRequest, Counts
from etrack.jobs.daily import DailyOptions, run_daily
from etrack.jobs.env import EtrackApp, JobEnv
from etrack.jobs.runs import list_runs, recorded_run
from etrack.jobs.worker import run_worker
from etrack.logs import format_moment
from etrack.store import db

__all__ = ["backfill_app", "backfill_here", "register"]

T = TypeVar("T")

PlatesOpt = Annotated[
    str | None, typer.Option("--plates", help="Comma-separated plates (default: the whole fleet).")
]
SleepOpt = Annotated[
    float | None,
    typer.Option(
        "--sleep",
        min=0,
        help="Minimum pause between two requests of this process (ETRAC_RATE_SLEEP).",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option("--batch-size", min=1, help="Plates per batch (ETRAC_BATCH_SIZE)."),
]
DateStartOpt = Annotated[str, typer.Option("--date-start", help=f"First local day: {DATE_FORMS}.")]
DateEndOpt = Annotated[str, typer.Option("--date-end", help="Last local day (included).")]

backfill_app = typer.Typer(
    help="Resumable backfill of history (and trips) per plate and day, then routes.",
    invoke_without_command=True,
    no_args_is_help=False,
)


# ----------------------------------------------------------------- helpers
def _settings(sleep: float | None = None) -> Settings:
    current = settings()
    if sleep is not None:
        current = current.model_copy(update={"etrac_rate_sleep": sleep})
    return current


def _with_app(
    work: Callable[[EtrackApp], Awaitable[T]],
    *,
    sleep: float | None = None,
    pool_size: int = 4,
    max_pool: int = 6,
) -> T:
    env = JobEnv(_settings(sleep), database(), pool_size=pool_size)

    async def go() -> T:
        async with open_app(env, max_pool=max_pool) as app:
            return await work(app)

    return asyncio.run(go())


def _account(name: str | None) -> str | None:
    """`--account NAME`, checked against the accounts file (exit 2 if unknown)."""
    if name is not None:
        chosen_accounts(name)
    return name


def _yesterday(current: Settings) -> date:
    return datetime.now(UTC).astimezone(current.tz).date() - timedelta(days=1)


# ------------------------------------------------------------------ worker
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, max=64, help="Jobs run at once (ETRACK_WORKER_CONCURRENCY)."
        ),
    ] = None,
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", help="Only these queues (etrack, backfill); default: all."),
    ] = None,
) -> None:
    """Run a worker: scheduled fetches, the daily run, backfill partitions.

    Start as many as you like, on as many machines as you like: they share
    the database. Stop with Ctrl-C or SIGTERM (running jobs finish first).
    """

    current = settings()
    # A malformed accounts file, or no credentials, is refused at start (exit
    # 2, before the database is opened), not job by job.
    require_credentials(load_accounts(current))
    slots = concurrency or current.etrack_worker_concurrency
    collector_pool, job_pool = pool_sizes(slots)
    env = JobEnv(current, database(), pool_size=collector_pool)
    asyncio.run(run_worker(env, concurrency=slots, queues=queue or None, max_pool=job_pool))


# -------------------------------------------------------------------- jobs
def jobs(
    failed: Annotated[
        bool, typer.Option("--failed", help="Only failed or interrupted runs.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs, newest first.")] = 20,
) -> None:
    """List the recorded runs of every job (worker jobs and commands)."""

    runs = _with_app(lambda app: list_runs(app, failed_only=failed, limit=limit))
    if not runs:
        echo("no failed runs recorded" if failed else "no runs recorded yet")
        return
    tz = settings().tz
    for run in runs:
        took = (
            f"{(run.finished_at - run.started_at).total_seconds():.1f} s"
            if run.finished_at
            else "-"
        )
        args = " ".join(f"{k}={v}" for k, v in sorted(run.args.items()))
        started = format_moment(run.started_at, tz)
        echo(f"#{run.id} {started} {run.status:<11} {run.kind} {args} ({took})")
        detail = run.error if run.status in ("failed", "interrupted") else run.summary
        if detail:
            echo("    " + detail.strip().splitlines()[-1 if run.error else 0][:300])


# ------------------------------------------------------------------- daily
def daily(
    date_text: Annotated[
        str | None, typer.Option("--date", help="Local day (default: yesterday).")
    ] = None,
    plates: PlatesOpt = None,
    plates_file: PlatesFileOpt = None,
    sleep: SleepOpt = None,
    batch_size: BatchOpt = None,
    account: AccountOpt = None,
) -> None:
    """Yesterday's (or --date's) history, provider trips and routes of every
    plate. One run at a time (ETRAC_DAILY_LOCK_ID): a second exits 0 saying so."""

    current = settings()
    day = read_day(date_text, "date") if date_text else _yesterday(current)
    options = DailyOptions(
        day=day,
        plates=read_plates(plates, plates_file),
        sleep=sleep,
        batch_size=batch_size,
        account=_account(account),
    )

    async def go(app: EtrackApp) -> tuple[str, int]:
        args: dict[str, Any] = {"day": day.isoformat()}
        if options.plates is not None:
            args["plates"] = len(options.plates)
        if options.account is not None:
            args["account"] = options.account
        try:
            async with recorded_run(app, "daily", args) as outcome:
                result = await run_daily(app, options)
                done = result.outcome()
                outcome.status, outcome.counts = done.status, done.counts
                outcome.summary, outcome.error = done.summary, done.error
        except DailyBusy as busy:
            return str(busy), 0
        return result.line(), EXIT_FAILURE if result.failed else 0

    api_accounts(account)  # credentials before the database
    with summary_printed_here("etrack.trips", "etrack.jobs.daily"):
        line, code = _with_app(go, sleep=sleep)
    echo_summary(line)
    if code:
        raise typer.Exit(code)


# ---------------------------------------------------------------- backfill
@backfill_app.callback()
def backfill(
    ctx: typer.Context,
    date_start: Annotated[
        str | None, typer.Option("--date-start", help=f"First local day: {DATE_FORMS}.")
    ] = None,
    date_end: Annotated[
        str | None, typer.Option("--date-end", help="Last local day (included).")
    ] = None,
    plates: PlatesOpt = None,
    plates_file: PlatesFileOpt = None,
    sleep: SleepOpt = None,
    batch_size: BatchOpt = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=256, help="Partitions worked at once here.")
    ] = 16,
    with_trips: Annotated[
        bool, typer.Option("--with-trips", help="Also fetch the provider's trips of each day.")
    ] = False,
    enqueue_only: Annotated[
        bool,
        typer.Option("--enqueue-only", help="Only enqueue; `etrack worker` processes do the work."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Fetch again partitions already done.")
    ] = False,
    account: AccountOpt = None,
) -> None:
    """Backfill --date-start..--date-end for some plates (default: the whole
    fleet). Resumable: running it again only does what is missing.

    Subcommands: status [ID], retry-failed [ID], summary."""
    if ctx.invoked_subcommand is not None:
        return
    if date_start is None or date_end is None:
        raise UsageError(
            "backfill needs --date-start and --date-end (or a subcommand: status, retry-failed, summary)"
        )

    current = settings()
    first, last = read_day(date_start, "date-start"), read_day(date_end, "date-end")
    user_input(lambda: day_range(first, last))
    request = BackfillRequest(
        date_start=first,
        date_end=last,
        plates=read_plates(plates, plates_file),
        with_trips=with_trips,
        force=force,
        batch_size=batch_size or current.etrac_batch_size,
        account=_account(account),
    )
    if not enqueue_only:  # else the workers call the API, with their own settings
        api_accounts(account)
    collector_pool, job_pool = pool_sizes(concurrency)
    with summary_printed_here("etrack.trips"):  # the status lines below say the routes
        code = _with_app(
            lambda app: _backfill(app, request, concurrency=concurrency, enqueue_only=enqueue_only),
            sleep=sleep,
            pool_size=collector_pool,
            max_pool=job_pool,
        )
    if code:
        raise typer.Exit(code)


async def _backfill(
    app: EtrackApp, request: BackfillRequest, *, concurrency: int, enqueue_only: bool
) -> int:

    args: dict[str, Any] = {
        "date_start": request.date_start.isoformat(),
        "date_end": request.date_end.isoformat(),
        "plates": len(request.plates) if request.plates is not None else "fleet",
        "with_trips": request.with_trips,
        "force": request.force,
        "enqueue_only": enqueue_only,
    }
    if request.account is not None:
        args["account"] = request.account
    async with recorded_run(app, "backfill", args) as outcome:
        result = await bf.plan(
            app,
            request,
            on_wait=lambda: echo("waiting for another backfill controller to finish enqueueing..."),
        )
        echo(result.line())
        outcome.counts = {
            "partitions": result.total,
            "done": result.done,
            "enqueued": result.queued,
        }
        if enqueue_only:
            outcome.summary = result.line()
            echo(
                f"left to `etrack worker` processes; follow with `etrack backfill status {result.backfill.id}`"
            )
            return 0
        code, summary = await _work_and_report(app, result.backfill.id, concurrency)
        outcome.summary = summary
        if code == EXIT_INTERRUPTED:
            outcome.status, outcome.error = "failed", "interrupted: " + summary
        return code


def backfill_here(
    current: Settings, target: db.Target, first: date, last: date, *, concurrency: int = 16
) -> int:
    """Backfill the whole fleet over first..last in this process (what
    `etrack backfill` does); the exit code. `etrack demo` uses it."""

    request = BackfillRequest(
        date_start=first,
        date_end=last,
        plates=None,
        with_trips=True,
        force=False,
        batch_size=current.etrac_batch_size,
    )
    collector_pool, job_pool = pool_sizes(concurrency)
    env = JobEnv(current, target, pool_size=collector_pool)

    async def go() -> int:
        async with open_app(env, max_pool=job_pool) as app:
            return await _backfill(app, request, concurrency=concurrency, enqueue_only=False)

    return asyncio.run(go())


async def _work_and_report(app: EtrackApp, backfill_id: int, concurrency: int) -> tuple[int, str]:
    """Work the backfill off here, then print its status and summary; the
    exit code and a one-line summary."""

    current = await bf.load_backfill(app, backfill_id)
    assert current is not None
    with _ProgressBar(current.partitions, pace=app.env.pace) as bar:
        finished = await bf.work_off(app, current, concurrency=concurrency, on_progress=bar.update)
    final = await bf.status(app, backfill_id)
    assert final is not None
    summary = f"backfill #{backfill_id}: {final.counts.line()}"
    if not finished:
        echo(f"interrupted: {summary}; run the same command again to resume")
        return EXIT_INTERRUPTED, summary
    refused = await bf.refusal(app, final.backfill)
    if refused is not None:
        # One line for the account, not one per partition (exit 2, as fetch-latest).
        echo(final.lines(settings().tz)[0])
        echo("  " + final.counts.line())
        raise CredentialsError(
            f"backfill #{backfill_id}: {refused}; {final.counts.failed} partition(s) not "
            "fetched: run the same command again once the credentials are fixed"
        )
    for line in final.lines(settings().tz):
        echo(line)
    b = final.backfill
    if b.finished_at is None:
        echo(
            f"the routes of backfill #{backfill_id} could not be computed (see `etrack jobs --failed`)"
        )
        return EXIT_FAILURE, summary
    rows = await bf.summarize(app, plates=b.plates, date_start=b.date_start, date_end=b.date_end)
    for line in bf.summary_lines(rows):
        echo(line)
    return (EXIT_FAILURE if final.counts.failed else 0), summary


class _ProgressBar:
    """A rich progress bar on stderr: partitions done/total, rows, rate, ETA, errors."""

    def __init__(self, total: int, *, pace: Callable[[], float | None]) -> None:
        self._pace = pace
        self._progress = Progress(
            TextColumn("backfill"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]} rows"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[pace]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[errors]}"),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(
            "backfill", total=total, rows=0, rate="", pace="", errors=""
        )

    def __enter__(self) -> _ProgressBar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, counts: Counts) -> None:
        task = self._progress.tasks[0]
        speed = task.speed
        self._progress.update(
            self._task,
            completed=counts.done,
            total=counts.total,
            rows=counts.rows,
            rate=f"{speed:.1f} partitions/s" if speed else "",
            pace=f"API {pace:.1f} req/s" if (pace := self._pace()) else "",
            errors=(
                f"errors {counts.failed}"
                + (f" ({counts.retrying} retrying)" if counts.retrying else "")
                if counts.failed
                else ""
            ),
        )


@backfill_app.command("status")
def backfill_status(
    backfill_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="Backfill id (default: the last one).")
    ] = None,
) -> None:
    """Progress of the last (or a given) backfill, with current failures."""

    found = _with_app(lambda app: bf.status(app, backfill_id))
    if found is None:
        raise UsageError(
            "no backfill recorded yet" if backfill_id is None else f"no backfill #{backfill_id}"
        )
    for line in found.lines(settings().tz):
        echo(line)


@backfill_app.command("retry-failed")
def backfill_retry_failed(
    backfill_id: Annotated[
        int | None, typer.Argument(metavar="[ID]", help="Backfill id (default: the last one).")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=256, help="Partitions worked at once here.")
    ] = 16,
    enqueue_only: Annotated[
        bool, typer.Option("--enqueue-only", help="Only enqueue; `etrack worker` does the work.")
    ] = False,
) -> None:
    """Put the partitions that failed for good back in the queue (and work them off)."""

    async def go(app: EtrackApp) -> int:
        found = await bf.retry_failed(app, backfill_id)
        if found is None:
            raise UsageError(
                "no backfill recorded yet" if backfill_id is None else f"no backfill #{backfill_id}"
            )
        backfill, count = found
        echo(f"backfill #{backfill.id}: {count} failed partition(s) enqueued again")
        if enqueue_only or not count:
            return 0
        code, _summary = await _work_and_report(app, backfill.id, concurrency)
        return code

    collector_pool, job_pool = pool_sizes(concurrency)
    code = _with_app(go, pool_size=collector_pool, max_pool=job_pool)
    if code:
        raise typer.Exit(code)


@backfill_app.command("summary")
def backfill_summary(
    date_start: DateStartOpt,
    date_end: DateEndOpt,
    plates: PlatesOpt = None,
    plates_file: PlatesFileOpt = None,
) -> None:
    """Per plate: days with routes and points over a range (summarize_backfill.py)."""

    first, last = read_day(date_start, "date-start"), read_day(date_end, "date-end")
    user_input(lambda: day_range(first, last))
    chosen = read_plates(plates, plates_file)
    rows = _with_app(lambda app: bf.summarize(app, plates=chosen, date_start=first, date_end=last))
    for line in bf.summary_lines(rows):
        echo(line)


# ---------------------------------------------------------------- register
def register(app: typer.Typer) -> None:
    """Add the jobs commands to the `etrack` app (once: calling again is harmless)."""
    commands = {info.name for info in app.registered_commands}
    groups = {info.name for info in app.registered_groups}
    for name, function in (("worker", worker), ("jobs", jobs), ("daily", daily)):
        if name not in commands:
            app.command(name)(function)
    if "backfill" not in groups:
        app.add_typer(backfill_app, name="backfill")
