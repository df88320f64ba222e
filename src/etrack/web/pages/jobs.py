"""The Jobs page: accounts' state, recent runs, backfills, and the forms that
enqueue a backfill, retry its failed partitions or fetch latest positions now."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.dates import range_error
from etrack.errors import SchemaNotCurrent
from etrack.web.days import today
from etrack.web.deps import Web
from etrack.web.inputs import day_or_error, plates_or_error
from etrack.web.pages.render import render
from etrack.web.security import valid_csrf

__all__ = ["router"]

router = APIRouter()

FLASH = "flash"


def flash(request: Request, message: str) -> None:
    request.session[FLASH] = message[:500]


# The hidden field every form of the pages carries (checked by require_csrf).
Csrf = Annotated[str, Form(alias="csrf_token", max_length=200)]


def require_csrf(request: Request, token: str) -> None:
    if not valid_csrf(request, token):
        raise HTTPException(403, "the form expired: reload the page and try again")


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(
    request: Request, web: Web, maintenance: Annotated[bool, Query()] = False
) -> Response:
    """`?maintenance=1` also lists the housekeeping runs (hidden by default)."""
    reader = await web.reader()
    values: dict[str, Any] = {
        "page": "jobs",
        "maintenance": maintenance,
        "runs": [],
        "backfills": [],
        "accounts": [],
        "unavailable": None,
        "message": request.session.pop(FLASH, None),
        "yesterday": today(reader) - timedelta(days=1),
    }
    try:
        values["accounts"] = await reader.account_states(web.account_names(), web.account_logins())
        values["runs"] = await web.jobs.runs(limit=30, reader=reader, maintenance=maintenance)
        values["backfills"] = await web.jobs.backfills(reader)
    except SchemaNotCurrent as exc:
        # The job queue is not installed: the page says so instead of failing.
        values["unavailable"] = str(exc)
    return render(request, "jobs.html", values)


@router.post("/jobs/backfill")
async def jobs_start_backfill(
    request: Request,
    web: Web,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    date_start: Annotated[str, Form(max_length=40)] = "",
    date_end: Annotated[str, Form(max_length=40)] = "",
    plates: Annotated[str, Form(max_length=20000)] = "",
    with_trips: Annotated[str | None, Form(max_length=10)] = None,
) -> Response:
    require_csrf(request, csrf)
    first = day_or_error(date_start, name="date_start")
    last = day_or_error(date_end, name="date_end") if date_end else first
    reversed_range = range_error(first, last, start="date_start", end="date_end")
    if reversed_range is not None:
        raise HTTPException(400, reversed_range)
    if (last - first).days >= 366:
        raise HTTPException(400, "a backfill from the UI may span at most 366 days")
    wanted = plates_or_error([plates] if plates.strip() else None, name="plates")
    visible = await (await web.reader()).visible_plates()
    if visible is not None:
        # A user limited to some accounts backfills only their vehicles.
        wanted = sorted(visible) if wanted is None else [p for p in wanted if p in visible]
        if not wanted:
            raise HTTPException(400, "plates: none of these vehicles is visible to you")
    result = await web.jobs.start_backfill(first, last, wanted, with_trips=bool(with_trips))
    flash(request, result.line())
    return RedirectResponse("/jobs", status_code=303)


# How far back a scoped user's retry looks for their backfill.
MAX_RETRY_LOOKUP = 100


@router.post("/jobs/backfills/{backfill_id}/retry")
async def jobs_retry_failed(
    request: Request,
    web: Web,
    backfill_id: int,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
) -> Response:
    require_csrf(request, csrf)
    reader = await web.reader()
    visible = await reader.visible_plates()
    if visible is not None:
        # Another scope's backfill does not exist for this user.
        mine = await web.jobs.backfills(reader, limit=MAX_RETRY_LOOKUP)
        if not any(s.backfill.id == backfill_id and s.backfill.plates for s in mine):
            raise HTTPException(404, f"no backfill #{backfill_id}")
    retried = await web.jobs.retry_failed(backfill_id)
    if retried is None:
        raise HTTPException(404, f"no backfill #{backfill_id}")
    flash(request, f"backfill #{backfill_id}: {retried} failed partition(s) queued again")
    return RedirectResponse("/jobs", status_code=303)


@router.post("/jobs/fetch-latest")
async def jobs_fetch_latest(
    request: Request,
    web: Web,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
) -> Response:
    require_csrf(request, csrf)
    job_id = await web.jobs.fetch_latest_now()
    flash(request, f"fetch_latest queued (job {job_id})")
    return RedirectResponse("/jobs", status_code=303)
