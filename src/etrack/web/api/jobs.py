"""Recent job runs and backfills with their progress."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from starlette.responses import Response

from etrack.errors import SchemaNotCurrent
from etrack.jobs.backfill import BackfillStatus
from etrack.web.api.common import Problem, encoded
from etrack.web.deps import Web, WebContext

__all__ = ["router"]

router = APIRouter()

NOT_INSTALLED: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "The job queue is not installed"}
}


async def jobs_or_503(web: WebContext) -> None:
    try:
        await web.jobs.app()
    except SchemaNotCurrent as exc:
        raise HTTPException(503, str(exc)) from None


@router.get(
    "/api/jobs/runs",
    tags=["jobs"],
    summary="Recent job runs (newest first) with status, counts, summary and error",
    responses=NOT_INSTALLED,
)
async def job_runs(
    web: Web,
    failed: Annotated[bool, Query(description="Only failed runs")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    await jobs_or_503(web)
    runs = await web.jobs.runs(failed_only=failed, limit=limit, reader=await web.reader())
    return encoded({"count": len(runs), "runs": runs})


@router.get(
    "/api/backfills",
    tags=["jobs"],
    summary="The newest backfills with their progress (partitions done, running, failed...)",
    responses=NOT_INSTALLED,
)
async def backfills(web: Web, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    await jobs_or_503(web)
    found = await web.jobs.backfills(await web.reader(), limit)
    return encoded({"count": len(found), "backfills": [backfill_json(s) for s in found]})


def backfill_json(state: BackfillStatus) -> dict[str, Any]:
    b, c = state.backfill, state.counts
    return {
        "id": b.id,
        "date_start": b.date_start,
        "date_end": b.date_end,
        "plates": b.plates,
        "with_trips": b.with_trips,
        "created_at": b.created_at,
        "finished_at": b.finished_at,
        "routes_summary": b.routes_summary,
        "routes_job_status": state.routes_job_status,
        "partitions": {
            "total": c.total,
            "done": c.done,
            "running": c.running,
            "pending": c.pending,
            "failed": c.failed,
            "retrying": c.retrying,
        },
        "rows_fetched": c.rows,
        "failures": state.failures,
    }
