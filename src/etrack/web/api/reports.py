"""The reports of etrack.reports over HTTP (issue 19): any kind's JSON rows,
and its XLSX, PDF or CSV file, as `etrack reports render` writes them.

Handlers only wire: the query becomes a `ReportRequest`, the report is built
and rendered by etrack.reports over one short connection in a thread (the
store's functions are synchronous), within the request's account scope: the
plates the Reader says this request may see become the context's `visible`,
so a kind never reads another account's vehicle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.responses import Response

from etrack.errors import UsageError
from etrack.reports.csvfile import CsvDialect, default_dialect, section_csv
from etrack.reports.kinds import KINDS, MAX_DAYS, ReportRequest, ReportScope, build_report
from etrack.reports.render import MEDIA_TYPES, check_formats, render, report_json
from etrack.reports.schedules import report_context
from etrack.reports.table import Report
from etrack.store import db
from etrack.web.api.common import ERRORS, Dialect, DialectQuery, attachment, encoded
from etrack.web.deps import Web, WebContext, language
from etrack.web.inputs import day_or_error, day_range_or_error, plates_or_error

__all__ = ["ReportParams", "report_file", "router"]

router = APIRouter()
T = TypeVar("T")


class ReportFormat(StrEnum):
    xlsx = "xlsx"
    pdf = "pdf"
    csv = "csv"


@dataclass(frozen=True, slots=True)
class ReportParams:
    """The query of a report: its period, its vehicles, by day or not."""

    first: str | None
    last: str | None
    day: str | None
    plates: list[str] | None
    fleet: str | None
    by_day: bool


def report_params(
    date_start: Annotated[
        str | None, Query(max_length=40, description="First local day (default yesterday)")
    ] = None,
    date_end: Annotated[
        str | None,
        Query(max_length=40, description="Last local day, included (default date_start)"),
    ] = None,
    day: Annotated[
        str | None,
        Query(alias="date", max_length=40, description="One local day (instead of the range)"),
    ] = None,
    plates: Annotated[
        list[str] | None,
        Query(description="Only these plates (repeat or comma-separate); vehicle-day: exactly one"),
    ] = None,
    fleet: Annotated[
        str | None, Query(max_length=200, description="Only the vehicles of this fleet")
    ] = None,
    by_day: Annotated[
        bool, Query(description="fleet-summary: one row per vehicle and day")
    ] = False,
) -> ReportParams:
    return ReportParams(date_start, date_end, day, plates, fleet, by_day)


Params = Annotated[ReportParams, Depends(report_params)]

KIND_DESCRIPTION = (
    f"Report kinds: {', '.join(KINDS)}. Durations are seconds, times ISO 8601 with the "
    "account's offset. vehicle-day needs one plate (`plates`) and one day (`date`)."
)


def kind_or_404(kind: str) -> str:
    if kind not in KINDS:
        raise HTTPException(404, f"no report kind {kind!r}: expected one of {', '.join(KINDS)}")
    return kind


def report_request(web: WebContext, kind: str, params: ReportParams) -> ReportRequest:
    """The query as a `ReportRequest`, or the HTTP error saying what is wrong."""
    kind_or_404(kind)
    if params.day is not None and (params.first is not None or params.last is not None):
        raise HTTPException(400, "give either date, or date_start and date_end, not both")
    if params.day is not None:
        first = last = day_or_error(params.day)
    else:
        yesterday = datetime.now(web.settings.tz).date() - timedelta(days=1)
        first, last = day_range_or_error(
            params.first, params.last, default=yesterday, max_days=MAX_DAYS
        )
    plates = plates_or_error(params.plates, name="plates")
    fleet = (params.fleet or "").strip() or None
    if plates is not None and fleet is not None:
        raise HTTPException(400, "plates and fleet: give one of them, not both")
    return ReportRequest(
        kind=kind,
        first=first,
        last=last,
        scope=ReportScope(plates=None if plates is None else tuple(plates), fleet=fleet),
        by_day=params.by_day,
    )


async def in_scope(web: WebContext, request: ReportRequest, then: Callable[[Report], T]) -> T:
    """Build the report within the request's account scope, and `then` (the
    rendering) in the same thread: a PDF of a month is CPU the event loop
    should not wait on. A UsageError of the kind (one plate for vehicle-day,
    a plate out of scope) is a 422 with its words."""
    visible = await (await web.reader()).visible_plates()

    def work(conn: db.Conn) -> T:
        ctx = report_context(conn, web.settings, None, web.settings.tz)
        return then(build_report(conn, request, replace(ctx, visible=visible)))

    try:
        return await web.in_db(work)
    except UsageError as exc:
        raise HTTPException(422, str(exc).removeprefix("--")) from None


def report_file(
    report: Report, fmt: str, lang: str, dialect: CsvDialect, section: str | None
) -> tuple[bytes, str, str]:
    """(body, media type, file name) of a report in one format. A CSV holds
    one section: `section`, else the first one."""
    if fmt != "csv":
        (file,) = render(report, check_formats(fmt), lang, dialect)
        return file.body, file.media_type, file.filename
    names = [s.name for s in report.sections]
    name = section or names[0]
    if name not in names:
        raise UsageError(
            f"section: {report.kind} has the sections {', '.join(names)}, not {name!r}"
        )
    stem = report.file_stem()
    filename = f"{stem}.csv" if len(names) == 1 else f"{stem}-{name}.csv"
    body = section_csv(report.section(name), report.tz, dialect, lang)
    return body, MEDIA_TYPES["csv"], filename


@router.get(
    "/api/reports/{kind}",
    tags=["reports"],
    summary="A report's sections as JSON: typed columns, rows and totals",
    description=KIND_DESCRIPTION,
    responses=ERRORS,
)
async def report_rows(web: Web, kind: str, params: Params) -> Response:
    request = report_request(web, kind, params)
    return encoded(await in_scope(web, request, report_json))


@router.get(
    "/api/reports/{kind}/export/{fmt}",
    tags=["reports"],
    summary="Download a report as XLSX, PDF or CSV (a CSV holds one section: `section`)",
    description=KIND_DESCRIPTION
    + " A CSV of a report with several sections (vehicle-day: trips, stops, points) is the "
    "first section's unless `section=NAME` is given. `lang` (pt-BR or en) picks the headers "
    "and formats; the CSV dialect defaults to excel-br for pt-BR, rfc4180 for en.",
    responses={
        **ERRORS,
        200: {
            "content": {MEDIA_TYPES["xlsx"]: {}, "application/pdf": {}, "text/csv": {}},
            "description": "The file, as an attachment",
        },
    },
)
async def report_export(
    request: Request,
    web: Web,
    kind: str,
    fmt: ReportFormat,
    params: Params,
    dialect: DialectQuery = None,
    section: Annotated[
        str | None, Query(max_length=40, description="CSV: the section to download")
    ] = None,
    lang: Annotated[
        str | None,
        Query(
            max_length=10,
            description="pt-BR or en: headers and formats (default: the language cookie, "
            "else ETRACK_UI_LANG)",
        ),
    ] = None,
) -> Response:
    # `lang` is declared for the API document; web.deps.language reads it.
    wanted = report_request(web, kind, params)
    lang = language(request, web)
    chosen: CsvDialect = (
        default_dialect(lang)
        if dialect is None
        else "excel-br"
        if dialect is Dialect.excel_br
        else "rfc4180"
    )
    body, media_type, name = await in_scope(
        web, wanted, lambda report: report_file(report, fmt.value, lang, chosen, section)
    )
    return attachment(body, media_type, name)
