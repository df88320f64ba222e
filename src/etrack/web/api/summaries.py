"""Day summaries per plate and day, and the fleet report with its downloads."""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.web import exports
from etrack.web.api.common import ERRORS, attachment, encoded
from etrack.web.days import today
from etrack.web.deps import Web, WebContext, language
from etrack.web.inputs import day_range_or_error, plates_or_error
from etrack.web.reports import MAX_SUMMARY_DAYS, report_headers, report_rows

__all__ = ["router"]

router = APIRouter()

MAX_SUMMARY_ROWS = 20000
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class SummaryList(BaseModel):
    start: date
    end: date
    count: int
    rows: list[dict[str, Any]]


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


@router.get(
    "/api/summaries",
    response_model=SummaryList,
    tags=["summaries"],
    summary="Day summaries (route_day_summary) per plate and day over a range",
    responses=ERRORS,
)
async def summaries(
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
    limit: Annotated[int, Query(ge=1, le=MAX_SUMMARY_ROWS)] = 5000,
) -> Response:
    reader = await web.reader()
    first, last = day_range_or_error(
        start, end, default=today(reader) - timedelta(days=1), max_days=MAX_SUMMARY_DAYS
    )
    rows = await reader.day_summaries(first, last, plates_or_error(plate), limit)
    return encoded({"start": first, "end": last, "count": len(rows), "rows": rows})


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
    summary="Download the fleet report as CSV or XLSX",
    responses={
        **ERRORS,
        200: {"content": {"text/csv": {}, XLSX: {}}, "description": "The file"},
    },
)
async def report_export(
    request: Request, web: Web, fmt: ReportExport, query: Annotated[ReportQuery, Query()]
) -> Response:
    first, last, rows = await query_report(web, query)
    name = f"frota_{first.isoformat()}_{last.isoformat()}.{fmt.value}"
    if fmt is ReportExport.csv:
        return attachment(exports.report_csv(rows), "text/csv; charset=utf-8", name)
    headers = report_headers(language(request, web))
    return attachment(exports.report_xlsx(rows, headers, first, last), XLSX, name)
