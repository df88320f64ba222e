"""`etrack worker`: a Procrastinate worker running etrack's tasks and schedule.

Any number of workers, on any number of machines, share one PostgreSQL. At
start a worker puts back in the queue the jobs of dead workers
(etrack.jobs.runs.recover_stalled_jobs), and defers the daily runs a stopped
machine missed (etrack.jobs.daily.defer_catch_up).
Scheduled runs also log to rotated files under ETRACK_LOG_DIR.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path

from etrack.config import Settings
from etrack.jobs.app import open_app
from etrack.jobs.daily import defer_catch_up
from etrack.jobs.env import JobEnv
from etrack.jobs.names import BACKFILL_QUEUE, ETRACK_QUEUE
from etrack.jobs.runs import record_job, recover_stalled_jobs
from etrack.logs import RedactSecrets, secrets_of

__all__ = ["LOG_FILES", "remove_file_logging", "run_worker", "setup_file_logging"]

logger = logging.getLogger("etrack.jobs.worker")

# File -> loggers writing to it (the seed's names).
LOG_FILES: dict[str, tuple[str, ...]] = {
    "fetch_latest.log": ("etrack.jobs.fetch_latest",),
    "compute_routes.log": ("etrack.jobs.daily", "etrack.trips"),
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


async def run_worker(
    env: JobEnv,
    *,
    concurrency: int,
    queues: list[str] | None = None,
    max_pool: int = 10,
    name: str = "etrack",
    install_signal_handlers: bool = True,
) -> None:
    """Run until SIGINT/SIGTERM (which let running jobs finish), or until
    cancelled: a host that owns the signals itself (the web server) passes
    install_signal_handlers=False and cancels the task to stop it."""
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
                name=name,
                concurrency=concurrency,
                fetch_job_polling_interval=tuning.poll_s,
                update_heartbeat_interval=tuning.heartbeat_s,
                stalled_worker_timeout=tuning.stalled_after_s,
                worker_middleware=[record_job],
                install_signal_handlers=install_signal_handlers,
            )
    finally:
        remove_file_logging(handlers)
