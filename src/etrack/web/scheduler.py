"""The scheduler embedded in the web process: the jobs layer's worker (periodic
fetch of latest positions, the daily run, stalled-job recovery, backfill
partitions) run as an asyncio task beside the UI.

Several web workers may each run one: Procrastinate deduplicates the periodic
ticks in the database, so each task still runs once per tick. DISABLE_UI_SCHEDULER=1
leaves it off (systemd, cron or `etrack worker` run the jobs instead).

A database outage does not stop it: the worker's supervisor (etrack.jobs.worker)
waits for PostgreSQL and starts again, telling each state change here, so the
page header and /healthz show "reconnecting" meanwhile. Only an error no
waiting can fix (an outdated schema, runs failing while the database
answers) leaves it "failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from etrack.config import Settings
from etrack.jobs.env import JobEnv
from etrack.jobs.worker import run_worker
from etrack.store import db

__all__ = ["EmbeddedScheduler"]

logger = logging.getLogger("etrack.web.scheduler")

STOP_TIMEOUT_S = 30.0


class EmbeddedScheduler:
    """States: disabled, starting, running, reconnecting (the database does
    not answer), restarting (a run failed; the next starts after a pause),
    stopped, failed (the last three with a reason)."""

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

    @property
    def down(self) -> bool:
        """Enabled but not doing its work: /healthz answers 503. Starting is
        not down yet (a web server just started is still healthy)."""
        return self.enabled and self.state not in ("running", "starting")

    def describe(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "state": self.state, "reason": self.reason}

    async def start(self) -> None:
        if not self.enabled or self._task is not None:
            return
        self.state = "starting"
        self._task = asyncio.create_task(self._run(), name="etrack-embedded-worker")

    async def _run(self) -> None:
        concurrency = self.settings.etrack_worker_concurrency
        try:
            env = JobEnv(self.settings, self.target)
            logger.info("embedded scheduler starting (worker concurrency %d)", concurrency)
            # `etrack worker`'s loop without its signal handlers: the web
            # server owns SIGINT/SIGTERM and stops this task through the lifespan.
            await run_worker(
                env,
                concurrency=concurrency,
                max_pool=concurrency + 6,
                name="etrack-web",
                install_signal_handlers=False,
                on_state=self._on_state,
            )
        except asyncio.CancelledError:
            self.state = "stopped"
            raise
        except Exception as exc:
            logger.exception("the embedded scheduler stopped")
            self._fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        self.state = "stopped"

    def _on_state(self, state: str, reason: str | None) -> None:
        # The worker logs each change itself (naming the server); the reason
        # shown on pages never does.
        self.state = state
        self.reason = reason

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
        if self.state not in ("disabled", "failed"):
            self.state = "stopped"
