"""The Events page: what happened over some days (overspeed, idling, after
hours, low battery, late data, offline), counted by kind and by vehicle, and
the first events of the listing; the rest through GET /api/events."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from etrack.events.detect import KINDS
from etrack.web.days import today
from etrack.web.deps import Web
from etrack.web.events import event_filter, tallies
from etrack.web.inputs import day_or_error, plates_or_error
from etrack.web.pages.render import render

__all__ = ["router"]

router = APIRouter()

LISTED = 500
"""Events the page lists; the counts cover them all, the API pages through the rest."""


@router.get("/events", response_class=HTMLResponse)
async def events_page(
    request: Request,
    web: Web,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    plate: Annotated[str | None, Query(max_length=2000)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """Default: the last seven days up to today."""
    reader = await web.reader()
    last = day_or_error(end, name="end") if end else today(reader)
    first = day_or_error(start, name="start") if start else last - timedelta(days=6)
    plates = plates_or_error([plate] if plate and plate.strip() else None)
    wanted = await event_filter(reader, first, last, plates, kind or None, names=("start", "end"))
    counted = await tallies(reader, wanted)
    rows = await reader.rows("web_events_newest", {**wanted.args(), "limit": LISTED})
    query = {"start": first.isoformat(), "end": last.isoformat(), "plate": plate or ""}
    api_query = {
        "date_start": first.isoformat(),
        "date_end": last.isoformat(),
        **({"plate": plate} if plate else {}),
        **({"kind": kind} if kind else {}),
    }
    return render(
        request,
        "events.html",
        {
            "page": "events",
            "first": first,
            "last": last,
            "plate": plate or "",
            "kind": kind or "",
            "kinds": KINDS,
            "tallies": counted,
            "rows": rows,
            "listed": LISTED,
            "kind_url": lambda k: "/events?" + urlencode({**query, "kind": k}),
            "plate_url": lambda p: (
                "/events?" + urlencode({**query, "plate": p, "kind": kind or ""})
            ),
            "api_url": "/api/events?" + urlencode(api_query),
        },
    )
