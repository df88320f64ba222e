"""The scheduler embedded in the web process: the jobs layer's worker (periodic
fetch of latest positions, the daily run, stalled-job recovery, backfill
partitions) run as an asyncio task beside the UI.

Several web workers may each run one: Procrastinate deduplicates the periodic
ticks in the database, so each task still runs once per tick. DISABLE_UI_SCHEDULER=1
leaves it off (systemd, cron or `etrack worker` run the jobs instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from typing import Any, cast

from etrack.config import Settings
from etrack.store import db

__all__ = ["EmbeddedScheduler"]

logger = logging.getLogger("etrack.web.scheduler")

STOP_TIMEOUT_S = 30.0


class EmbeddedScheduler:
    """States: disabled, starting, running, stopped, failed (with a reason)."""

    def __init__(self, settings: Settings, target: db.Target, *, enabled: bool) -> None:
        self.settings = settings
        self.target = target
        self.enabled = enabled
        self.state = "disabled" if not enabled else "stopped"
        self.reason: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.state == "running"

    def describe(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "state": self.state, "reason": self.reason}

    async def start(self) -> None:
        if not self.enabled or self._task is not None:
            return
        self.state = "starting"
        self._task = asyncio.create_task(self._run(), name="etrack-embedded-worker")

    async def _run(self) -> None:
        try:
            from etrack.jobs.app import JobEnv
        except ImportError as exc:
            self._fail(f"the jobs layer is not available: {exc}")
            return
        concurrency = self.settings.etrack_worker_concurrency
        try:
            env = JobEnv(self.settings, self.target)
            self.state = "running"
            logger.info("embedded scheduler started (worker concurrency %d)", concurrency)
            await _run_worker(env, concurrency)
        except asyncio.CancelledError:
            self.state = "stopped"
            raise
        except Exception as exc:
            logger.exception("the embedded scheduler stopped")
            self._fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        self.state = "stopped"

    def _fail(self, reason: str) -> None:
        self.state = "failed"
        self.reason = reason
        logger.warning("embedded scheduler not running: %s", reason)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # Procrastinate lets running jobs finish on cancellation; do not wait forever.
        with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
            await asyncio.wait_for(task, STOP_TIMEOUT_S)
        if self.state in ("running", "starting"):
            self.state = "stopped"


async def _run_worker(env: Any, concurrency: int) -> None:
    """`etrack worker`'s loop without its signal handlers: the web server owns
    SIGINT/SIGTERM, and stops this task through the lifespan instead."""
    from etrack.jobs import worker

    run = worker.run_worker
    if "install_signal_handlers" in inspect.signature(run).parameters:
        # A newer jobs layer takes the flag itself.
        await cast(Any, run)(env, concurrency=concurrency, install_signal_handlers=False)
        return
    # Same steps as worker.run_worker, with install_signal_handlers=False.
    from etrack.jobs.app import open_app
    from etrack.jobs.daily import defer_catch_up
    from etrack.jobs.runs import record_job
    from etrack.jobs.tasks import BACKFILL_QUEUE, ETRACK_QUEUE

    handlers = worker.setup_file_logging(env.settings)
    tuning = env.tuning
    try:
        async with open_app(env, schedule=True, max_pool=concurrency + 6) as app:
            await worker.recover_stalled_jobs(app)
            await defer_catch_up(app)
            await app.run_worker_async(
                queues=[ETRACK_QUEUE, BACKFILL_QUEUE],
                name="etrack-web",
                concurrency=concurrency,
                fetch_job_polling_interval=tuning.poll_s,
                update_heartbeat_interval=tuning.heartbeat_s,
                stalled_worker_timeout=tuning.stalled_after_s,
                worker_middleware=[record_job],
                install_signal_handlers=False,
            )
    finally:
        worker.remove_file_logging(handlers)
