"""Every run of every job: kind, arguments, start, end, status, counts, error.

Worker jobs are recorded by `record_job`, a Procrastinate worker middleware
wrapped around every task; command-line runs (`etrack daily`, `etrack
backfill`) by `recorded_run`. A task reports what it did by returning an
`Outcome`; an exception is a failure, with its text (secrets removed).

A process killed with `kill -9` leaves its run 'running'. The stalled-job
recovery marks the runs of the jobs it retries 'interrupted'; for the rest,
`list_runs` shows 'interrupted' when the run's job is no longer running, or
when its process is gone (same host only). That recovery, `recover_stalled_jobs`,
is here too: the worker runs it at start and on a schedule, a backfill's
in-process worker while it waits.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from procrastinate import JobContext

from etrack.errors import EtrackError
from etrack.jobs.env import EtrackApp, fetch_all, fetch_one, job_app, run_sql
from etrack.logs import redact, secrets_of

if TYPE_CHECKING:
    from procrastinate.worker import Worker

__all__ = [
    "Outcome",
    "RunRow",
    "describe_error",
    "list_runs",
    "mark_interrupted",
    "quiet_expected_failures",
    "record_job",
    "recorded_run",
    "recover_stalled_jobs",
]

logger = logging.getLogger("etrack.jobs.runs")

ERROR_CHARS = 2000
HOST = socket.gethostname()


@dataclass(slots=True)
class Outcome:
    """What a run did: returned by tasks, filled in by command-line runs."""

    status: str = "succeeded"  # or 'skipped' (nothing to do), or 'failed' (see error)
    counts: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    error: str | None = None

    def as_result(self) -> dict[str, Any]:
        # Procrastinate logs a job's result: keep it small and JSON-friendly.
        return {"status": self.status, "counts": self.counts, "summary": self.summary}


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    kind: str
    args: dict[str, Any]
    job_id: int | None
    host: str | None
    pid: int | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, Any] | None
    summary: str | None
    error: str | None


class ExpectedFailureLine(logging.Filter):
    """Procrastinate logs a failed job with its traceback. For an etrack
    error (the API is down, a plate unknown: raised on purpose, with a
    message that says it all) the traceback is noise, one screenful per
    failed partition: keep the one line, with the error's first line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], EtrackError):
            exc = record.exc_info[1]
            lines = str(exc).strip().splitlines()
            first = lines[0] if lines else ""
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {first}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


_PROCRASTINATE_WORKER_LOG = "procrastinate.worker"


def quiet_expected_failures() -> None:
    """Install ExpectedFailureLine on Procrastinate's worker logger (once)."""
    worker_log = logging.getLogger(_PROCRASTINATE_WORKER_LOG)
    if not any(isinstance(f, ExpectedFailureLine) for f in worker_log.filters):
        worker_log.addFilter(ExpectedFailureLine())


def describe_error(exc: BaseException, secrets: list[str]) -> str:
    """One readable paragraph: the exception's class and message, secrets removed."""
    message = str(exc).strip()
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return redact(text, secrets)[:ERROR_CHARS]


async def start_run(
    app: EtrackApp, *, kind: str, args: dict[str, Any], job_id: int | None = None
) -> int:
    row = await fetch_one(
        app,
        "jobs_run_start",
        kind=kind,
        args=args,
        job_id=job_id,
        host=HOST,
        pid=os.getpid(),
    )
    assert row is not None
    return int(row["id"])


async def finish_run(
    app: EtrackApp,
    run_id: int,
    *,
    status: str,
    counts: dict[str, Any] | None = None,
    summary: str | None = None,
    error: str | None = None,
) -> None:
    await run_sql(
        app,
        "jobs_run_finish",
        id=run_id,
        status=status,
        counts=counts or {},
        summary=summary,
        error=error,
    )


@asynccontextmanager
async def recorded_run(app: EtrackApp, kind: str, args: dict[str, Any]) -> AsyncIterator[Outcome]:
    """Record a command-line run around the block; the block fills the Outcome."""
    outcome = Outcome()
    run_id = await start_run(app, kind=kind, args=args)
    try:
        yield outcome
    except BaseException as exc:
        await finish_run(
            app,
            run_id,
            status="failed",
            counts=outcome.counts,
            summary=outcome.summary or None,
            error=describe_error(exc, secrets_of(app.env.settings)),
        )
        raise
    await finish_run(
        app,
        run_id,
        status=outcome.status,
        counts=outcome.counts,
        summary=outcome.summary or None,
        error=outcome.error,
    )


async def record_job(
    call_next: Callable[[], Awaitable[Any]], context: JobContext, worker: Worker
) -> Any:
    """Worker middleware: record the job's run around it."""
    app = job_app(context)
    job = context.job
    kind = job.task_name.removeprefix("etrack.")
    args = dict(job.task_kwargs)
    try:
        run_id = await start_run(app, kind=kind, args=args, job_id=job.id)
    except Exception:
        # The record is a convenience; a failing insert must not fail the job.
        logger.exception("could not record the start of job %s", job.id)
        return await call_next()
    try:
        result = await call_next()
    except BaseException as exc:
        await _finish_quietly(
            app,
            run_id,
            status="failed",
            error=describe_error(exc, secrets_of(app.env.settings)),
        )
        raise
    outcome = result if isinstance(result, dict) else {}
    await _finish_quietly(
        app,
        run_id,
        status=str(outcome.get("status") or "succeeded"),
        counts=outcome.get("counts") or {},
        summary=outcome.get("summary") or None,
    )
    return result


async def _finish_quietly(app: EtrackApp, run_id: int, **fields: Any) -> None:
    try:
        await finish_run(app, run_id, **fields)
    except Exception:
        logger.exception("could not record the end of run %s", run_id)


async def mark_interrupted(app: EtrackApp, job_ids: list[int], reason: str) -> int:
    """Close the open runs of jobs whose worker died."""
    if not job_ids:
        return 0
    rows = await fetch_all(app, "jobs_runs_interrupt", job_ids=job_ids, error=reason)
    return len(rows)


async def list_runs(app: EtrackApp, *, failed_only: bool = False, limit: int = 20) -> list[RunRow]:
    """The newest runs first, with dead 'running' ones shown as 'interrupted'."""
    rows = await fetch_all(app, "jobs_runs_list", failed_only=failed_only, limit=limit)
    runs = [_with_dead_process(_run_row(row)) for row in rows]
    if failed_only:
        runs = [run for run in runs if run.status in ("failed", "interrupted")]
    return runs


def _run_row(row: dict[str, Any]) -> RunRow:
    return RunRow(
        id=int(row["id"]),
        kind=str(row["kind"]),
        args=dict(row["args"] or {}),
        job_id=row["job_id"],
        host=row["host"],
        pid=row["pid"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=str(row["status"]),
        counts=row["counts"],
        summary=row["summary"],
        error=row["error"],
    )


def _with_dead_process(run: RunRow) -> RunRow:
    if run.status != "running" or run.job_id is not None or run.host != HOST or not run.pid:
        return run
    if _process_alive(run.pid):
        return run
    return replace(
        run,
        status="interrupted",
        error=run.error or "the process ended without recording an end (killed?)",
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def recover_stalled_jobs(app: EtrackApp, *, queue: str | None = None) -> Outcome:
    """Put back in the queue the jobs of workers that stopped beating (killed
    with kill -9, machine lost): without this they would stay 'doing' forever."""
    manager = app.job_manager
    stalled = await manager.get_stalled_jobs(
        queue=queue, seconds_since_heartbeat=app.env.tuning.stalled_after_s
    )
    retried: list[int] = []
    for job in stalled:
        try:
            await manager.retry_job(job)
        except Exception:
            # Another worker's recovery may have won the race, or the job
            # finished meanwhile: the others still deserve their retry.
            logger.warning("could not retry stalled job %s", job.id, exc_info=True)
            continue
        assert job.id is not None
        retried.append(job.id)
    if retried:
        logger.warning("retried %d stalled job(s): %s", len(retried), retried)
        await mark_interrupted(
            app, retried, "its worker stopped responding (killed?); the job was retried"
        )
    return Outcome(
        status="succeeded" if retried else "skipped",
        counts={"retried": len(retried)},
        summary=f"{len(retried)} stalled job(s) retried",
    )
