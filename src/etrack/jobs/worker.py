"""`etrack worker`: a Procrastinate worker running etrack's tasks and schedule.

Any number of workers, on any number of machines, share one PostgreSQL. At
start a worker puts back in the queue the jobs of dead workers, and defers
the daily runs a stopped machine missed (etrack.jobs.daily.defer_catch_up).
Scheduled runs also log to rotated files under ETRACK_LOG_DIR.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path

from etrack.config import Settings
from etrack.jobs.app import EtrackApp, JobEnv, open_app
from etrack.jobs.daily import defer_catch_up
from etrack.jobs.runs import Outcome, mark_interrupted, record_job
from etrack.jobs.tasks import BACKFILL_QUEUE, ETRACK_QUEUE
from etrack.logs import RedactSecrets, secrets_of

__all__ = ["LOG_FILES", "recover_stalled_jobs", "run_worker", "setup_file_logging"]

logger = logging.getLogger("etrack.jobs.worker")

# File -> loggers writing to it (the seed's names).
LOG_FILES: dict[str, tuple[str, ...]] = {
    "fetch_latest.log": ("etrack.jobs.fetch_latest",),
    "compute_routes.log": ("etrack.jobs.daily", "etrack.trips.detect"),
}
LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5


def setup_file_logging(settings: Settings) -> list[logging.Handler]:
    """Rotated log files of the scheduled runs; returns the handlers added."""
    folder = Path(settings.etrack_log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = []
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for filename, names in LOG_FILES.items():
        handler = RotatingFileHandler(
            folder / filename,
            maxBytes=LOG_FILE_BYTES,
            backupCount=LOG_FILE_BACKUPS,
            encoding="utf-8",
        )
        handler.setFormatter(formatter)
        handler.addFilter(RedactSecrets(secrets_of(settings)))
        handler.setLevel(logging.INFO)
        for name in names:
            named = logging.getLogger(name)
            named.addHandler(handler)
            if named.getEffectiveLevel() > logging.INFO:
                named.setLevel(logging.INFO)
        handlers.append(handler)
    return handlers


def remove_file_logging(handlers: Iterable[logging.Handler]) -> None:
    for handler in handlers:
        for names in LOG_FILES.values():
            for name in names:
                logging.getLogger(name).removeHandler(handler)
        handler.close()


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


async def run_worker(
    env: JobEnv, *, concurrency: int, queues: list[str] | None = None, max_pool: int = 10
) -> None:
    """Run until SIGINT/SIGTERM (which let running jobs finish)."""
    handlers = setup_file_logging(env.settings)
    tuning = env.tuning
    # Only workers that run the scheduled jobs schedule them: a fleet of
    # backfill-only workers would otherwise queue jobs nobody runs.
    scheduling = queues is None or ETRACK_QUEUE in queues
    try:
        async with open_app(env, schedule=scheduling, max_pool=max_pool) as app:
            await recover_stalled_jobs(app)
            if scheduling:
                await defer_catch_up(app)
            logger.info("worker started: concurrency %d, queues %s", concurrency, queues or "all")
            await app.run_worker_async(
                queues=queues or [ETRACK_QUEUE, BACKFILL_QUEUE],
                name="etrack",
                concurrency=concurrency,
                fetch_job_polling_interval=tuning.poll_s,
                update_heartbeat_interval=tuning.heartbeat_s,
                stalled_worker_timeout=tuning.stalled_after_s,
                worker_middleware=[record_job],
            )
    finally:
        remove_file_logging(handlers)
