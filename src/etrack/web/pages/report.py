"""The fleet report page: one row per vehicle over a day or range, sortable,
with its CSV and XLSX downloads and the fleet-summary PDF (served by the API)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from etrack.reports.csvfile import default_dialect
from etrack.web.deps import Web, language
from etrack.web.exports import REPORT_COLUMNS
from etrack.web.pages.render import render
from etrack.web.reports import REPORT_SORTS, report_headers, report_rows, report_totals

__all__ = ["router"]

router = APIRouter()


@router.get("/report", response_class=HTMLResponse)
async def report_page(
    request: Request,
    web: Web,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    frota: Annotated[str | None, Query(max_length=200)] = None,
    sort: Annotated[str, Query(max_length=40)] = "placa",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> Response:
    sort = sort if sort in REPORT_SORTS else "placa"
    reader = await web.reader()
    first, last, rows = await report_rows(reader, start, end, frota, sort, order)
    base = {"start": first.isoformat(), "end": last.isoformat(), "frota": frota or ""}
    sort_links = {
        name: "/report?"
        + urlencode(
            {**base, "sort": name, "order": "desc" if sort == name and order == "asc" else "asc"}
        )
        for name, _ in REPORT_COLUMNS
    }
    export_query = urlencode({**base, "sort": sort, "order": order})
    lang = language(request, web)
    # The fleet-summary report of the same days and fleet, for the PDF.
    pdf_query = urlencode(
        {
            "date_start": first.isoformat(),
            "date_end": last.isoformat(),
            **({"fleet": frota} if frota else {}),
            "lang": lang,
        }
    )
    return render(
        request,
        "report.html",
        {
            "page": "report",
            "rows": rows,
            "first": first,
            "last": last,
            "frota": frota or "",
            "fleets": await reader.fleets(),
            "sort": sort,
            "order": order,
            "columns": REPORT_COLUMNS,
            "headers": report_headers(lang, clock=True),
            "sort_links": sort_links,
            # The page language's dialect, named: a click opens in that Excel.
            "csv_url": f"/api/report/export/csv?{export_query}&dialect={default_dialect(lang)}",
            "xlsx_url": f"/api/report/export/xlsx?{export_query}",
            "pdf_url": f"/api/reports/fleet-summary/export/pdf?{pdf_query}",
            "totals": report_totals(rows),
        },
    )
