"""The Visits report page: the fence visits of some days, per fence and
vehicle (number of visits, total and average dwell), then per day (first
arrival, last departure, the day's stops that fell inside the fence), with
CSV and XLSX downloads of the same rows.

Visits are the stored ones (geofence_visits, computed by etrack.geofences):
a visit overlapping the days counts with its whole dwell; it belongs to the
local day of its arrival (a visit begun before the first day, to the first
day). Stops are the stored routes' (route_stops), tested against each fence
with `shapes.FenceShape.contains`: a day without a stored route (today) has
no stops here yet. Reads go through the web Reader, so the account scope
drops other accounts' vehicles.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import HTMLResponse, Response

from etrack.dates import range_error
from etrack.geofences.shapes import FenceShape
from etrack.model import Fence
from etrack.reports.csvfile import default_dialect
from etrack.web.api.common import DialectQuery, download_dialect
from etrack.web.days import today
from etrack.web.deps import Web, WebContext, language
from etrack.web.exports import visits_csv, visits_xlsx
from etrack.web.inputs import day_or_error, plates_or_error
from etrack.web.pages.geofences import stored_fences
from etrack.web.pages.render import render

__all__ = ["DayRow", "VisitReport", "VisitSummary", "router", "visit_report"]

router = APIRouter()

MAX_VISIT_DAYS = 366


@dataclass(slots=True)
class VisitSummary:
    """One fence and one vehicle over the days."""

    fence: str
    group: str | None
    placa: str
    visits: int = 0
    dwell_s: float = 0.0
    open_visits: int = 0

    @property
    def average_s(self) -> float | None:
        return self.dwell_s / self.visits if self.visits else None


@dataclass(slots=True)
class DayRow:
    """One fence, one vehicle, one local day."""

    day: date
    fence: str
    group: str | None
    placa: str
    visits: int = 0
    dwell_s: float = 0.0
    first_arrival: datetime | None = None
    last_departure: datetime | None = None
    still_inside: bool = False
    stops: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VisitReport:
    first: date
    last: date
    summaries: list[VisitSummary]
    days: list[DayRow]

    @property
    def total_visits(self) -> int:
        return sum(s.visits for s in self.summaries)


async def visit_report(
    web: WebContext,
    start: str | None,
    end: str | None,
    fence: str | None,
    plate: str | None,
) -> VisitReport:
    reader = await web.reader()
    last = day_or_error(end, name="end") if end else today(reader)
    first = day_or_error(start, name="start") if start else last - timedelta(days=6)
    reversed_range = range_error(first, last, start="start", end="end")
    if reversed_range is not None:
        raise HTTPException(400, reversed_range)
    if (last - first).days + 1 > MAX_VISIT_DAYS:
        raise HTTPException(400, f"the range may span at most {MAX_VISIT_DAYS} days")
    plates = plates_or_error([plate] if plate and plate.strip() else None)
    visible = await reader.visible_plates()
    if visible is not None:
        plates = sorted(visible.intersection(plates) if plates is not None else visible)
    tz = reader.params.tz
    lo = datetime.combine(first, datetime.min.time(), tz)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    fence = fence or None
    visits = await reader.rows(
        "web_visits_range", {"lo": lo, "hi": hi, "plates": plates, "fence": fence}
    )
    stops = await reader.rows("web_stops_range", {"first": first, "last": last, "plates": plates})
    fences = [f for f in await stored_fences(web) if fence is None or f.name == fence]
    groups = {f.name: f.group for f in fences}

    summaries: dict[tuple[str, str], VisitSummary] = {}
    days: dict[tuple[date, str, str], DayRow] = {}

    def day_row(day: date, name: str, placa: str) -> DayRow:
        key = (day, name, placa)
        if key not in days:
            days[key] = DayRow(day, name, groups.get(name), placa)
        return days[key]

    for v in visits:
        name, placa = str(v["fence"]), str(v["placa"])
        summary = summaries.setdefault((name, placa), VisitSummary(name, v["fence_group"], placa))
        summary.visits += 1
        summary.dwell_s += float(v["dwell_s"])
        arrive: datetime = v["arrive_ts"]
        depart: datetime | None = v["depart_ts"]
        if depart is None:
            summary.open_visits += 1
        row = day_row(max(arrive.astimezone(tz).date(), first), name, placa)
        row.visits += 1
        row.dwell_s += float(v["dwell_s"])
        if row.first_arrival is None or arrive < row.first_arrival:
            row.first_arrival = arrive
        if depart is None:
            row.still_inside = True
        elif row.last_departure is None or depart > row.last_departure:
            row.last_departure = depart

    # Off the event loop: every fence against every stop of the days.
    for name, stop in await asyncio.to_thread(_stops_inside, fences, stops):
        day_row(stop["rota_date"], name, str(stop["placa"])).stops.append(stop)

    ordered_summaries = sorted(summaries.values(), key=lambda s: (s.fence, s.placa))
    ordered_days = sorted(days.values(), key=lambda d: (d.day, d.fence, d.placa))
    return VisitReport(first, last, ordered_summaries, ordered_days)


def _stops_inside(
    fences: Sequence[Fence], stops: Sequence[dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """(fence name, stop) for each stop inside each fence (FenceShape.contains)."""
    if not stops or not fences:
        return []
    lats = np.asarray([float(s["latitude"]) for s in stops])
    lons = np.asarray([float(s["longitude"]) for s in stops])
    found: list[tuple[str, dict[str, Any]]] = []
    for fence in fences:
        try:
            shape = FenceShape.of(fence)
        except ValueError:
            continue  # a stored fence today's checks refuse
        found.extend(
            (fence.name, stops[int(k)]) for k in np.flatnonzero(shape.contains(lats, lons))
        )
    return found


def _query(report: VisitReport, fence: str | None, plate: str | None) -> dict[str, str]:
    return {
        "start": report.first.isoformat(),
        "end": report.last.isoformat(),
        **({"fence": fence} if fence else {}),
        **({"plate": plate} if plate else {}),
    }


Start = Annotated[str | None, Query(max_length=40)]
FenceName = Annotated[str | None, Query(max_length=200)]
Plate = Annotated[str | None, Query(max_length=2000)]


@router.get("/visits", response_class=HTMLResponse)
async def visits_page(
    request: Request,
    web: Web,
    start: Start = None,
    end: Start = None,
    fence: FenceName = None,
    plate: Plate = None,
) -> Response:
    """Default: the last seven days up to today."""
    report = await visit_report(web, start, end, fence, plate)
    query = urlencode(_query(report, fence, plate))
    names = [f.name for f in await stored_fences(web)]
    return render(
        request,
        "visits.html",
        {
            "page": "visits",
            "report": report,
            "first": report.first,
            "last": report.last,
            "fence": fence or "",
            "plate": plate or "",
            "fence_names": names,
            # The link names the page language's dialect: a person clicking
            # gets what their Excel opens (a script asking nothing keeps rfc4180).
            "csv_url": f"/visits/export/csv?{query}&dialect={default_dialect(language(request, web))}",
            "xlsx_url": f"/visits/export/xlsx?{query}",
        },
    )


def _download(body: bytes, media_type: str, name: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/visits/export/{fmt}")
async def visits_export(
    request: Request,
    web: Web,
    fmt: str,
    start: Start = None,
    end: Start = None,
    fence: FenceName = None,
    plate: Plate = None,
    dialect: DialectQuery = None,
) -> Response:
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(404, f"no export format {fmt!r}: csv or xlsx")
    report = await visit_report(web, start, end, fence, plate)
    reader = await web.reader()
    tz = reader.params.tz
    name = f"visitas_{report.first.isoformat()}_{report.last.isoformat()}.{fmt}"
    rows = _export_rows(report.days)
    lang = language(request, web)
    if fmt == "csv":
        body = visits_csv(rows, tz, download_dialect(request, dialect), lang)
        return _download(body, "text/csv; charset=utf-8", name)
    summaries = [
        {
            "fence": s.fence,
            "group": s.group,
            "placa": s.placa,
            "visits": s.visits,
            "dwell_s": s.dwell_s,
            "average_dwell_s": s.average_s,
        }
        for s in report.summaries
    ]
    body = visits_xlsx(rows, summaries, tz, lang, report.first, report.last)
    return _download(
        body, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", name
    )


def _export_rows(days: Sequence[DayRow]) -> list[dict[str, Any]]:
    return [
        {
            "day": d.day,
            "fence": d.fence,
            "group": d.group,
            "placa": d.placa,
            "visits": d.visits,
            "dwell_s": d.dwell_s,
            "first_arrival": d.first_arrival,
            "last_departure": None if d.still_inside else d.last_departure,
            "stops_inside": len(d.stops),
            "stops_inside_s": sum(float(s["duration_s"] or 0) for s in d.stops),
        }
        for d in days
    ]
