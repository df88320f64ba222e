"""The Drivers pages (issue 18): the drivers with their month (working days,
driving, working time, overtime, violations) and the trips nobody is
attributed to ("sem motorista"); a driver's page, the month's calendar and
each working day's timeline (driving, breaks, short stops, the rest before)
with its violations named by their article; the month's ficha de
trabalho to download (etrack.drivers.ficha, PDF and XLSX).

The working days are etrack.drivers.compute's (docs/drivers.md), dated by
their start. A driver belongs to no account, the vehicles do: a limited
server (ETRACK_WEB_ACCOUNTS, ?account=) shows only the working days with a
trip on its vehicles, and only those trips (api.drivers.visible_days).
"""

from __future__ import annotations

import asyncio
import calendar
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.dates import parse_moment
from etrack.drivers import ficha as sheets
from etrack.drivers.compute import JornadaParams, assign_period, day_bounds, driver_days
from etrack.drivers.identity import read_document
from etrack.drivers.workday import DriverDay, Violation
from etrack.errors import UsageError
from etrack.model import canonical_plate
from etrack.store import db
from etrack.store import drivers as store
from etrack.web import i18n
from etrack.web.api.drivers import visible_days
from etrack.web.days import today
from etrack.web.deps import Web, language, require_every_account
from etrack.web.pages.jobs import FLASH, Csrf, flash, require_csrf
from etrack.web.pages.render import render
from etrack.web.scope import current_principal, selected_account

__all__ = ["DriverMonth", "Segment", "month_or_error", "router", "timeline", "violation_text"]

router = APIRouter()

MONTH = re.compile(r"^(\d{4})-(\d{2})$")

VIOLATION_KEYS = {
    "uninterrupted_driving": "driver_violation_uninterrupted",
    "rest_in_driving": "driver_violation_rest_in_driving",
    "daily_rest": "driver_violation_daily_rest",
    "working_time": "driver_violation_working_time",
}


def month_or_error(text: str | None, reader_today: date) -> tuple[date, date]:
    """?month=YYYY-MM (default: the reader's month) -> its first and last day."""
    if text is None or not text.strip():
        first = reader_today.replace(day=1)
    else:
        found = MONTH.match(text.strip())
        year, month = (int(found[1]), int(found[2])) if found else (0, 0)
        if not found or not 1 <= month <= 12 or year < 1900:
            raise HTTPException(400, f"month must be YYYY-MM (2025-03), not {text.strip()!r}")
        first = date(year, month, 1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first, last


def _shift(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def hm(seconds: float) -> str:
    """A limit or an excess as the law writes it: 19800 -> '5h30', 39600 -> '11h'."""
    minutes = round(max(0.0, seconds) / 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}" if rest else f"{hours}h"


def violation_text(violation: Violation, day: date, tz: tzinfo, lang: str) -> str:
    """'Direção ininterrupta acima de 5h30 às 14:32 (+0h42) — CTB art. 67-C, caput'."""
    local = violation.at.astimezone(tz)
    moment = local.strftime("%H:%M")
    if local.date() != day:
        moment = f"{local.strftime('%d/%m' if lang == 'pt-BR' else '%m-%d')} {moment}"
    what = i18n.translate(VIOLATION_KEYS[violation.rule], lang).format(limit=hm(violation.limit_s))
    minutes = round(max(0.0, violation.excess_s) / 60)
    excess = f"+{minutes // 60}h{minutes % 60:02d}"
    at_word = i18n.translate("driver_at", lang)
    return f"{what} {at_word} {moment} ({excess}) — {violation.article}"


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of a working day's timeline, as a share of its length."""

    kind: str  # driving | break | stop
    start: datetime
    end: datetime
    left: float
    width: float
    placa: str = ""

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def timeline(day: DriverDay) -> list[Segment]:
    """Driving (each trip), breaks and the short stops between trips, from the
    day's first activity to its last, in time order."""
    span = max(1.0, (day.end - day.start).total_seconds())

    def segment(kind: str, start: datetime, end: datetime, placa: str = "") -> Segment:
        left = (start - day.start).total_seconds() / span * 100
        width = max(0.0, (end - start).total_seconds()) / span * 100
        return Segment(kind, start, end, round(left, 3), round(width, 3), placa)

    pieces = [segment("driving", a.start, a.end, a.placa) for a in day.activities]
    breaks = {(s, e) for s, e in day.breaks}
    pieces += [segment("break", s, e) for s, e in day.breaks]
    ordered = sorted(day.activities, key=lambda a: (a.start, a.end))
    reached = ordered[0].end if ordered else day.start
    for activity in ordered[1:]:
        if activity.start > reached and (reached, activity.start) not in breaks:
            pieces.append(segment("stop", reached, activity.start))
        reached = max(reached, activity.end)
    return sorted(pieces, key=lambda p: (p.start, p.kind != "driving"))


@dataclass(slots=True)
class Totals:
    days: int = 0
    driving_s: float = 0.0
    working_s: float = 0.0
    overtime_s: float = 0.0
    violations: int = 0

    def add(self, day: DriverDay) -> None:
        self.days += 1
        self.driving_s += day.driving_s
        self.working_s += day.working_s
        self.overtime_s += day.overtime_s
        self.violations += len(day.violations)


@dataclass(slots=True)
class CalendarCell:
    day: date | None
    driving_s: float = 0.0
    violations: int = 0
    working: bool = False


@dataclass(slots=True)
class DriverMonth:
    first: date
    last: date
    days: list[DriverDay]
    totals: Totals = field(default_factory=Totals)

    def weeks(self) -> list[list[CalendarCell]]:
        """Monday-first weeks of the month, blank cells outside it."""
        by_day: dict[date, CalendarCell] = {}
        for d in self.days:
            cell = by_day.setdefault(d.day, CalendarCell(d.day))
            cell.working = True
            cell.driving_s += d.driving_s
            cell.violations += len(d.violations)
        cells = [CalendarCell(None) for _ in range(self.first.weekday())]
        day = self.first
        while day <= self.last:
            cells.append(by_day.get(day, CalendarCell(day)))
            day += timedelta(days=1)
        while len(cells) % 7:
            cells.append(CalendarCell(None))
        return [cells[k : k + 7] for k in range(0, len(cells), 7)]


Month = Annotated[str | None, Query(max_length=40, description="YYYY-MM")]


def _month_links(first: date) -> dict[str, str]:
    return {
        "month": f"{first:%Y-%m}",
        "prev_month": f"{_shift(first, -1):%Y-%m}",
        "next_month": f"{_shift(first, 1):%Y-%m}",
    }


def driver_url(driver_id: str) -> str:
    return f"/drivers/{quote(driver_id, safe='')}"


@router.get("/drivers", response_class=HTMLResponse)
async def drivers_page(request: Request, web: Web, month: Month = None) -> Response:
    """Every driver's month: default this month."""
    reader = await web.reader()
    first, last = month_or_error(month, today(reader))
    params = JornadaParams.from_settings(web.settings)
    visible = await reader.visible_plates()
    lo, hi = day_bounds(first, last, params.tz)

    def read(conn: db.Conn) -> tuple[list[store.DriverRow], list[DriverDay], tuple[int, float]]:
        return (
            store.list_drivers(conn),
            driver_days(conn, first, last, params),
            store.unattributed(conn, lo, hi, None if visible is None else sorted(visible)),
        )

    rows, days, (nobody_trips, nobody_s) = await web.in_db(read)
    totals: dict[str, Totals] = {}
    for day in visible_days(days, visible):
        totals.setdefault(day.driver_id, Totals()).add(day)
    listed = [
        {"row": row, "url": driver_url(row.id), "totals": totals.get(row.id, Totals())}
        for row in rows
        if visible is None or row.id in totals
    ]
    return render(
        request,
        "drivers.html",
        {
            "page": "drivers",
            "first": first,
            "last": last,
            **_month_links(first),
            "drivers": listed,
            "nobody_trips": nobody_trips,
            "nobody_s": nobody_s,
        },
    )


DriverId = Annotated[str, Path(max_length=200, description="The driver's id")]


async def _driver_month(
    web: Web, driver_id: str, month: str | None
) -> tuple[store.DriverRow, DriverMonth, JornadaParams]:
    reader = await web.reader()
    first, last = month_or_error(month, today(reader))
    params = JornadaParams.from_settings(web.settings)
    visible = await reader.visible_plates()

    def read(conn: db.Conn) -> tuple[store.DriverRow | None, list[DriverDay]]:
        row = store.get_driver(conn, driver_id)
        if row is None:
            return None, []
        return row, driver_days(conn, first, last, params, [row.id])

    row, days = await web.in_db(read)
    if row is None:
        raise HTTPException(404, f"no driver {driver_id!r}")
    shown = visible_days(days, visible)
    # A driver is in a limited scope when they drove one of its vehicles in
    # the range; any other is no business of it (404, as a vehicle).
    if visible is not None and not shown:
        raise HTTPException(404, f"no driver {driver_id!r}")
    result = DriverMonth(first, last, shown)
    for day in shown:
        result.totals.add(day)
    return row, result, params


def ficha_name(row: store.DriverRow, first: date, ext: str) -> str:
    """ficha-JOAO-DA-SILVA-2025-03.pdf: the name in plain ASCII, upper case."""
    plain = unicodedata.normalize("NFKD", row.name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9]+", "-", plain).strip("-").upper() or "MOTORISTA"
    return f"ficha-{slug}-{first:%Y-%m}.{ext}"


async def _ficha(web: Web, driver_id: str, month: str | None, ext: str) -> Response:
    row, result, params = await _driver_month(web, driver_id, month)
    sheet = sheets.Ficha(
        driver_id=row.id,
        driver_name=row.name,
        document=row.document,
        frota=row.frota,
        company=selected_account(),
        month=result.first,
        days=tuple(result.days),
        tz=params.tz,
    )
    if ext == "pdf":
        body, media = sheets.ficha_pdf(sheet), "application/pdf"
    else:
        body = sheets.ficha_xlsx(sheet)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    name = ficha_name(row, result.first, ext)
    return Response(
        body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


# Before the driver page: its path parameter would take ".../ficha.pdf" too.
@router.get("/drivers/{driver_id}/ficha.pdf")
async def ficha_pdf(web: Web, driver_id: DriverId, month: Month = None) -> Response:
    return await _ficha(web, driver_id, month, "pdf")


@router.get("/drivers/{driver_id}/ficha.xlsx")
async def ficha_xlsx(web: Web, driver_id: DriverId, month: Month = None) -> Response:
    return await _ficha(web, driver_id, month, "xlsx")


@router.get("/drivers/{driver_id:path}", response_class=HTMLResponse)
async def driver_page(
    request: Request, web: Web, driver_id: DriverId, month: Month = None
) -> Response:
    message = request.session.pop(FLASH, None)
    return await _driver_render(request, web, driver_id, month, message=message)


async def _driver_render(
    request: Request,
    web: Web,
    driver_id: str,
    month: str | None,
    *,
    message: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    row, result, params = await _driver_month(web, driver_id, month)
    lang = language(request, web)
    tz = params.tz
    days = [
        {
            "day": d,
            "segments": timeline(d),
            "violations": [violation_text(v, d.day, tz, lang) for v in d.violations],
        }
        for d in result.days
    ]
    assignments = await web.in_db(lambda conn: store.list_assignments(conn, row.id))
    url = driver_url(row.id)
    return render(
        request,
        "driver.html",
        {
            "page": "drivers",
            "driver": row,
            "driver_url": url,
            "month_data": result,
            "first": result.first,
            "last": result.last,
            **_month_links(result.first),
            "weeks": result.weeks(),
            "days": days,
            "ficha_pdf": f"{url}/ficha.pdf?month={result.first:%Y-%m}",
            "ficha_xlsx": f"{url}/ficha.xlsx?month={result.first:%Y-%m}",
            # Drivers are shared by every account, as fences are.
            "editable": web.settings.web_accounts is None
            and current_principal().may_write
            and current_principal().scope.everything,
            "assignments": assignments,
            "message": message,
            "error": error,
        },
        status_code=status,
    )


@router.post("/drivers/{driver_id:path}/edit")
async def driver_edit(
    request: Request,
    web: Web,
    driver_id: DriverId,
    name: Annotated[str, Form(max_length=200)] = "",
    document: Annotated[str, Form(max_length=40)] = "",
    fleet: Annotated[str, Form(max_length=200)] = "",
    active: Annotated[str, Form(max_length=5)] = "",
    csrf: Csrf = "",
) -> Response:
    """Name, document (CPF checked), fleet and active flag, as `etrack drivers set|rename`."""
    require_csrf(request, csrf)
    require_every_account(web, "drivers")
    row = await web.in_db(lambda conn: store.get_driver(conn, driver_id))
    if row is None:
        raise HTTPException(404, f"no driver {driver_id!r}")
    shown = " ".join(name.split())
    try:
        if not shown:
            raise UsageError("name: expected a name")
        changed = row._replace(
            name=shown,
            document=read_document(document),
            frota=fleet.strip() or None,
            active=active == "1",
        )
    except UsageError as exc:
        return await _driver_render(request, web, driver_id, None, error=str(exc), status=400)
    written = await web.in_db(lambda conn: store.update_driver(conn, changed))
    flash(request, f"driver {row.id} {'updated' if written else 'unchanged'}")
    return RedirectResponse(driver_url(row.id), status_code=303)


@router.post("/drivers/{driver_id:path}/assign")
async def driver_assign(
    request: Request,
    web: Web,
    driver_id: DriverId,
    plate: Annotated[str, Form(max_length=20)] = "",
    start: Annotated[str, Form(max_length=40)] = "",
    end: Annotated[str, Form(max_length=40)] = "",
    csrf: Csrf = "",
) -> Response:
    """Put the driver on a vehicle for a period, as `etrack drivers assign`."""
    require_csrf(request, csrf)
    require_every_account(web, "drivers")
    row = await web.in_db(lambda conn: store.get_driver(conn, driver_id))
    if row is None:
        raise HTTPException(404, f"no driver {driver_id!r}")
    params = JornadaParams.from_settings(web.settings)
    tz = web.settings.tz
    try:
        placa = canonical_plate(plate)
        from_ts = parse_moment(start, tz, option="from")
        to_ts = parse_moment(end, tz, option="to")
        written, _ = await asyncio.to_thread(
            assign_period, web.target, row.id, placa, from_ts, to_ts, params
        )
    except (UsageError, ValueError) as exc:
        return await _driver_render(request, web, driver_id, None, error=str(exc), status=400)
    flash(
        request,
        f"driver {row.id} on {placa} from {from_ts:%Y-%m-%d %H:%M} to {to_ts:%Y-%m-%d %H:%M}: "
        f"{'stored' if written else 'unchanged'}",
    )
    return RedirectResponse(driver_url(row.id), status_code=303)
