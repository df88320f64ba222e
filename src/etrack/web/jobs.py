"""The Jobs page's link to the jobs layer (etrack.jobs): recent runs, backfill
progress, and the actions (start a backfill, retry failed partitions, fetch
latest positions now). The web only enqueues: workers run the jobs (the
embedded scheduler of a web process, or `etrack worker` anywhere).

Without the job queue's tables (`etrack db upgrade` not run) every call
raises etrack.errors.SchemaNotCurrent, which the page shows and the API
answers with 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from datetime import date

from etrack.config import Settings
from etrack.jobs import backfill
from etrack.jobs.app import open_app
from etrack.jobs.env import EtrackApp, JobEnv
from etrack.jobs.names import FETCH_LATEST
from etrack.jobs.runs import RunRow, list_runs
from etrack.store import db
from etrack.web.i18n import MAINTENANCE_KINDS
from etrack.web.reader import Reader, hide_plates

__all__ = ["JobsClient"]

RECENT_BACKFILLS = 10
# Without the housekeeping runs, read this many times the rows shown: between
# two runs a user started there may be hours of one-a-minute maintenance.
MAINTENANCE_OVERFETCH = 20
MAX_RUNS_READ = 1000


class JobsClient:
    """A Procrastinate App of this web process for enqueueing and reading
    (no worker, no schedule), opened on first use."""

    def __init__(self, settings: Settings, target: db.Target) -> None:
        self.settings = settings
        self.target = target
        self._stack: contextlib.AsyncExitStack | None = None
        self._app: EtrackApp | None = None
        self._lock = asyncio.Lock()

    async def app(self) -> EtrackApp:
        if self._app is not None:
            return self._app
        async with self._lock:
            if self._app is None:
                stack = contextlib.AsyncExitStack()
                # Nothing to close when opening fails: the stack holds only what opened.
                self._app = await stack.enter_async_context(
                    open_app(JobEnv(self.settings, self.target), schedule=False, max_pool=4)
                )
                self._stack = stack
        return self._app

    async def close(self) -> None:
        stack, self._stack, self._app = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def runs(
        self,
        *,
        failed_only: bool = False,
        limit: int = 30,
        reader: Reader | None = None,
        maintenance: bool = True,
    ) -> list[RunRow]:
        """The newest runs; `maintenance=False` leaves out the housekeeping
        ones (i18n.MAINTENANCE_KINDS), which otherwise fill the page: one
        recover_stalled a minute."""
        wanted = limit if maintenance else min(limit * MAINTENANCE_OVERFETCH, MAX_RUNS_READ)
        found = await list_runs(await self.app(), failed_only=failed_only, limit=wanted)
        if not maintenance:
            found = [run for run in found if run.kind not in MAINTENANCE_KINDS][:limit]
        visible = await reader.visible_plates() if reader is not None else None
        if visible is None:
            return found
        # Summaries name plates (a daily run's failures): mask other accounts'.
        return [
            replace(
                run,
                summary=hide_plates(run.summary, visible),
                error=hide_plates(run.error, visible),
            )
            for run in found
            # A run about one plate (a backfill partition) of another account
            # is not this scope's business at all.
            if not isinstance(run.args.get("placa"), str) or run.args["placa"] in visible
        ]

    async def backfills(
        self, reader: Reader, limit: int = RECENT_BACKFILLS
    ) -> list[backfill.BackfillStatus]:
        app = await self.app()
        rows = await reader.rows("web_jobs_backfills_recent", {"limit": limit})
        found = [await backfill.status(app, int(row["id"])) for row in rows]
        visible = await reader.visible_plates()
        out = [s for s in found if s is not None]
        if visible is None:
            return out
        # A backfill spans accounts: show only this scope's part of it.
        return [
            replace(
                s,
                backfill=replace(s.backfill, plates=[p for p in s.backfill.plates if p in visible]),
                failures=[f for f in s.failures if f.placa in visible],
            )
            for s in out
            if any(p in visible for p in s.backfill.plates)
        ]

    async def start_backfill(
        self, first: date, last: date, plates: list[str] | None, *, with_trips: bool
    ) -> backfill.EnqueueResult:
        request = backfill.BackfillRequest(
            date_start=first, date_end=last, plates=plates, with_trips=with_trips
        )
        return await backfill.plan(await self.app(), request)

    async def retry_failed(self, backfill_id: int) -> int | None:
        result = await backfill.retry_failed(await self.app(), backfill_id)
        return None if result is None else result[1]

    async def fetch_latest_now(self) -> int:
        app = await self.app()
        job_id: int = await app.configure_task(FETCH_LATEST).defer_async(timestamp=int(time.time()))
        return job_id
