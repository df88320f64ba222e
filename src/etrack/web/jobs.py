"""The Jobs page's link to the jobs layer (etrack.jobs): recent runs, backfill
progress, and the actions (start a backfill, retry failed partitions, fetch
latest positions now). The web only enqueues: workers run the jobs (the
embedded scheduler of a web process, or `etrack worker` anywhere)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from datetime import date
from typing import Any

from etrack.config import Settings
from etrack.store import db
from etrack.web.reader import Reader, hide_plates

__all__ = ["JobsClient", "JobsUnavailable"]

RECENT_BACKFILLS = 10


class JobsUnavailable(Exception):
    """The job queue cannot be used (not installed, or the jobs layer is missing)."""


class JobsClient:
    """A Procrastinate App of this web process for enqueueing and reading
    (no worker, no schedule), opened on first use."""

    def __init__(self, settings: Settings, target: db.Target) -> None:
        self.settings = settings
        self.target = target
        self._stack: contextlib.AsyncExitStack | None = None
        self._app: Any = None
        self._lock = asyncio.Lock()

    async def app(self) -> Any:
        if self._app is not None:
            return self._app
        async with self._lock:
            if self._app is None:
                try:
                    from etrack.jobs.app import JobEnv, open_app
                except ImportError as exc:
                    raise JobsUnavailable(f"the jobs layer is not available: {exc}") from None
                stack = contextlib.AsyncExitStack()
                try:
                    self._app = await stack.enter_async_context(
                        open_app(JobEnv(self.settings, self.target), schedule=False, max_pool=4)
                    )
                except db.SchemaNotCurrent as exc:
                    await stack.aclose()
                    raise JobsUnavailable(str(exc)) from None
                self._stack = stack
        return self._app

    async def close(self) -> None:
        stack, self._stack, self._app = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def runs(
        self, *, failed_only: bool = False, limit: int = 30, reader: Reader | None = None
    ) -> list[Any]:
        from etrack.jobs.runs import list_runs

        found = await list_runs(await self.app(), failed_only=failed_only, limit=limit)
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

    async def backfills(self, reader: Reader, limit: int = RECENT_BACKFILLS) -> list[Any]:
        from etrack.jobs.backfill import status

        app = await self.app()
        rows = await reader.rows("web_jobs_backfills_recent", {"limit": limit})
        found = [await status(app, int(row["id"])) for row in rows]
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
    ) -> Any:
        from etrack.jobs.backfill import BackfillRequest, plan

        request = BackfillRequest(
            date_start=first, date_end=last, plates=plates, with_trips=with_trips
        )
        return await plan(await self.app(), request)

    async def retry_failed(self, backfill_id: int) -> int | None:
        from etrack.jobs.backfill import retry_failed

        result = await retry_failed(await self.app(), backfill_id)
        return None if result is None else result[1]

    async def fetch_latest_now(self) -> int:
        from etrack.jobs.tasks import FETCH_LATEST

        app = await self.app()
        job_id: int = await app.configure_task(FETCH_LATEST).defer_async(timestamp=int(time.time()))
        return job_id
