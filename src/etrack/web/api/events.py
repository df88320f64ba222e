"""Events (overspeed, idle, after hours, low battery, late data, offline) over a
range of local days, in pages (docs/events.md)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.events.detect import KINDS
from etrack.web.api.common import ERRORS, encoded
from etrack.web.days import today
from etrack.web.deps import Web
from etrack.web.events import event_filter
from etrack.web.inputs import day_or_error, plates_or_error

__all__ = ["router"]

router = APIRouter()

MAX_EVENT_ROWS = 5000
"""The largest page /api/events serves; more come in pages (`next`)."""

Kind = StrEnum("Kind", {k: k for k in KINDS})  # type: ignore[misc]  # built from the registry


class EventOut(BaseModel):
    id: UUID
    placa: str
    kind: str
    start_ts: datetime
    end_ts: datetime | None = Field(description="null only while the event is open (offline now)")
    duration_s: float | None
    value: float | None = Field(description="The peak: top km/h, minutes, lowest volts...")
    limit_value: float | None
    latitude: float | None
    longitude: float | None
    logradouro: str | None
    driver: str | None
    rule: str | None = Field(description="Thresholds' source: settings, fleet:NAME, vehicle:PLACA")


class EventPage(BaseModel):
    """One page of events: `count` rows of `total`, and how to get the next."""

    start: date
    end: date
    count: int
    total: int = Field(description="Events in the whole listing (every page)")
    limit: int = Field(description="Largest page asked for")
    rows: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )
    next: str | None = Field(description="The next page's URL (path and query); null on the last")


# Microseconds since the epoch, a stored plate and a kind: nothing else reaches the query.
_CURSOR = re.compile(r"(-?[0-9]{1,20})_([0-9A-Za-z-]{1,40})_([a-z_]{1,40})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cursor_of(start_ts: datetime, placa: str, kind: str) -> str:
    """The key of a page's last row, as the next page's `cursor`."""
    micros = (start_ts - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{placa}_{kind}"


def cursor_or_error(text: str) -> tuple[datetime, str, str]:
    match = _CURSOR.fullmatch(text)
    if match is None:
        raise HTTPException(422, "cursor: not one this API gave (next_cursor)")
    try:
        at = _EPOCH + timedelta(microseconds=int(match[1]))
    except OverflowError:
        raise HTTPException(422, "cursor: not one this API gave (next_cursor)") from None
    return at, match[2], match[3]


@router.get(
    "/api/events",
    response_model=EventPage,
    tags=["events"],
    summary="Events starting on a range of local days (and offline events still open), in pages",
    description=(
        "Rows in (start_ts, placa, kind) order, at most `limit` per page. `total` counts the "
        "whole listing; while `next` is not null, fetch it (or repeat the query with "
        "`cursor=next_cursor`) for the following rows. Only the vehicles of the request's "
        "accounts are listed."
    ),
    responses=ERRORS,
)
async def events(
    request: Request,
    web: Web,
    date_start: Annotated[
        str | None, Query(max_length=40, description="First local day (default today)")
    ] = None,
    date_end: Annotated[
        str | None,
        Query(max_length=40, description="Last local day, included (default date_start)"),
    ] = None,
    plate: Annotated[
        list[str] | None, Query(description="Plates (repeat or comma-separate)")
    ] = None,
    kind: Annotated[Kind | None, Query(description="Only this kind")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENT_ROWS, description="Rows per page")] = 1000,
    cursor: Annotated[
        str | None,
        Query(max_length=120, description="The previous page's next_cursor (default: first page)"),
    ] = None,
) -> Response:
    reader = await web.reader()
    first = day_or_error(date_start, name="date_start") if date_start else today(reader)
    last = day_or_error(date_end, name="date_end") if date_end else first
    wanted = await event_filter(
        reader, first, last, plates_or_error(plate), None if kind is None else str(kind.value)
    )
    after = cursor_or_error(cursor) if cursor else (datetime.min.replace(tzinfo=UTC), "", "")
    args = wanted.args()
    total = int(await reader.scalar("web_events_count", args) or 0)
    rows = await reader.rows(
        "web_events_page",
        # One row more than the page: whether a next page exists, without a second query.
        {**args, "after_ts": after[0], "after_placa": after[1], "after_kind": after[2],
         "limit": limit + 1},
    )  # fmt: skip
    next_cursor = None
    next_url = None
    if len(rows) > limit:
        del rows[limit:]
        last_row = rows[-1]
        next_cursor = cursor_of(last_row["start_ts"], last_row["placa"], last_row["kind"])
        url = request.url.include_query_params(cursor=next_cursor)
        next_url = f"{url.path}?{url.query}"
    for row in rows:
        row["id"] = str(row["id"])
        for name in ("start_ts", "end_ts"):
            if row[name] is not None:
                row[name] = row[name].astimezone(reader.params.tz)
    return encoded(
        {
            "start": first,
            "end": last,
            "count": len(rows),
            "total": total,
            "limit": limit,
            "rows": rows,
            "next_cursor": next_cursor,
            "next": next_url,
        }
    )
