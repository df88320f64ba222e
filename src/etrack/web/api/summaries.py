"""Day summaries per plate and day, and the fleet report with its downloads."""

from __future__ import annotations

import re
from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.web import exports
from etrack.web.api.common import ERRORS, DialectQuery, attachment, download_dialect, encoded
from etrack.web.days import today
from etrack.web.deps import Web, WebContext, language
from etrack.web.inputs import day_range_or_error, plates_or_error
from etrack.web.reports import MAX_SUMMARY_DAYS, report_headers, report_rows

__all__ = ["router"]

router = APIRouter()

# The largest page /api/summaries serves; longer ranges come in pages (`next`).
MAX_SUMMARY_ROWS = 20000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class SummaryList(BaseModel):
    start: date
    end: date
    count: int
    rows: list[dict[str, Any]]


class SummaryPage(SummaryList):
    """One page of day summaries: `count` rows of `total`, and how to get the next."""

    total: int = Field(description="Day summaries in the whole range (every page)")
    limit: int = Field(description="Largest page asked for")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )
    next: str | None = Field(description="The next page's URL (path and query); null on the last")


class ReportExport(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


# The report's columns (etrack.web.reports.REPORT_SORTS), spelled out for the
# OpenAPI document.
class SortKey(StrEnum):
    placa = "placa"
    descricao = "descricao"
    frota = "frota"
    days = "days"
    distance_km = "distance_km"
    driving_h = "driving_h"
    idle_h = "idle_h"
    parked_h = "parked_h"
    max_speed_kmh = "max_speed_kmh"
    over_limit_h = "over_limit_h"
    trip_count = "trip_count"
    event_count = "event_count"


class ReportQuery(BaseModel):
    """The report's days, fleet and order: one query for the JSON and its downloads."""

    start: str | None = Field(None, max_length=40)
    end: str | None = Field(None, max_length=40)
    frota: str | None = Field(None, max_length=200)
    sort: SortKey = SortKey.placa
    order: str = Field("asc", pattern="^(asc|desc)$")


async def query_report(
    web: WebContext, query: ReportQuery
) -> tuple[date, date, list[dict[str, Any]]]:
    return await report_rows(
        await web.reader(), query.start, query.end, query.frota, query.sort.value, query.order
    )


# A day and a stored plate (letters, digits, maybe a hyphen): nothing else
# reaches the query.
_CURSOR = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}_[0-9A-Za-z-]{1,40}")


def cursor_of(day: date, placa: str) -> str:
    """The key of a page's last row, as the next page's `cursor`."""
    return f"{day.isoformat()}_{placa}"


def cursor_or_error(text: str) -> tuple[date, str]:
    """A `cursor` back to its (rota_date, placa) key."""
    problem = "cursor: not one this API gave (next_cursor)"
    if _CURSOR.fullmatch(text) is None:
        raise HTTPException(422, problem)
    try:
        return date.fromisoformat(text[:10]), text[11:]
    except ValueError:
        raise HTTPException(422, problem) from None


@router.get(
    "/api/summaries",
    response_model=SummaryPage,
    tags=["summaries"],
    summary="Day summaries (route_day_summary) per plate and day over a range, in pages",
    description=(
        "Rows in (rota_date, placa) order, at most `limit` per page. `total` counts the "
        "whole range; while `next` is not null, fetch it (or repeat the query with "
        "`cursor=next_cursor`) for the following rows."
    ),
    responses=ERRORS,
)
async def summaries(
    request: Request,
    web: Web,
    start: Annotated[
        str | None, Query(max_length=40, description="First day (default yesterday)")
    ] = None,
    end: Annotated[
        str | None, Query(max_length=40, description="Last day, included (default start)")
    ] = None,
    plate: Annotated[
        list[str] | None, Query(description="Plates (repeat or comma-separate)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SUMMARY_ROWS, description="Rows per page")] = 5000,
    cursor: Annotated[
        str | None,
        Query(max_length=80, description="The previous page's next_cursor (default: first page)"),
    ] = None,
) -> Response:
    reader = await web.reader()
    first, last = day_range_or_error(
        start, end, default=today(reader) - timedelta(days=1), max_days=MAX_SUMMARY_DAYS
    )
    plates = plates_or_error(plate)
    # The account scope goes into the query: filtering the rows afterwards
    # would leave pages short and the total wrong.
    visible = await reader.visible_plates()
    if visible is not None:
        plates = sorted(visible.intersection(plates) if plates is not None else visible)
    after_date, after_placa = cursor_or_error(cursor) if cursor else (first, "")
    args: dict[str, Any] = {"first": first, "last": last, "plates": plates}
    total = int(await reader.scalar("web_day_summaries_count", args) or 0)
    rows = await reader.rows(
        "web_day_summaries_page",
        # One row more than the page: whether a next page exists, without a second query.
        {**args, "after_date": after_date, "after_placa": after_placa, "limit": limit + 1},
    )
    next_cursor = None
    next_url = None
    if len(rows) > limit:
        del rows[limit:]
        next_cursor = cursor_of(rows[-1]["rota_date"], rows[-1]["placa"])
        url = request.url.include_query_params(cursor=next_cursor)
        next_url = f"{url.path}?{url.query}"
    return encoded(
        {
            "start": first,
            "end": last,
            "count": len(rows),
            "rows": rows,
            "total": total,
            "limit": limit,
            "next_cursor": next_cursor,
            "next": next_url,
        }
    )


@router.get(
    "/api/report",
    response_model=SummaryList,
    tags=["summaries"],
    summary="The fleet report: one row per vehicle over a day or range",
    responses=ERRORS,
)
async def report(web: Web, query: Annotated[ReportQuery, Query()]) -> Response:
    first, last, rows = await query_report(web, query)
    return encoded({"start": first, "end": last, "count": len(rows), "rows": rows})


@router.get(
    "/api/report/export/{fmt}",
    tags=["summaries"],
    summary="Download the fleet report as CSV or XLSX (CSV: ?dialect=excel-br|rfc4180)",
    responses={
        **ERRORS,
        200: {"content": {"text/csv": {}, XLSX: {}}, "description": "The file"},
    },
)
async def report_export(
    request: Request,
    web: Web,
    fmt: ReportExport,
    query: Annotated[ReportQuery, Query()],
    dialect: DialectQuery = None,
) -> Response:
    first, last, rows = await query_report(web, query)
    name = f"frota_{first.isoformat()}_{last.isoformat()}.{fmt.value}"
    headers = report_headers(language(request, web))
    if fmt is ReportExport.csv:
        body = exports.report_csv(rows, download_dialect(request, dialect), headers)
        return attachment(body, "text/csv; charset=utf-8", name)
    return attachment(exports.report_xlsx(rows, headers, first, last), XLSX, name)
