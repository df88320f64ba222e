"""The HTML pages: fleet map, vehicle day, fleet report, data browser, login.

Pages are rendered on the server with what they show first (lists, tables,
figures); the maps and the chart are drawn by the page scripts from JSON
embedded in the page or fetched from /api.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.web import i18n
from etrack.web.app import WebContext
from etrack.web.days import DayData, load_day, today
from etrack.web.exports import REPORT_COLUMNS, dumps
from etrack.web.inputs import day_or_error, plate_or_error
from etrack.web.scope import selected_account
from etrack.web.security import (
    SESSION_USER,
    auth_config,
    csrf_token,
    safe_next,
    valid_csrf,
)

router = APIRouter(include_in_schema=False)

LANG_COOKIE = "etrack_lang"
DB_PAGE = 100


def context(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


Web = Annotated[WebContext, Depends(context)]


def language(request: Request, web: WebContext) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return i18n.pick_language(asked, web.default_lang)


def render(
    request: Request, template: str, values: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    web = context(request)
    lang = language(request, web)
    config = {
        "lang": lang,
        "tz": web.settings.etrac_timezone,
        "tileUrl": web.tile_url,
        "tileAttribution": web.tile_attribution,
        "messages": i18n.catalog(lang),
    }
    other = "en" if lang == "pt-BR" else "pt-BR"
    query = dict(request.query_params)
    query["lang"] = other
    base = {
        "request": request,
        "lang": lang,
        "t": lambda key: i18n.translate(key, lang),
        "tz": web.settings.tz,
        "tz_name": web.settings.etrac_timezone,
        "scheduler": web.scheduler.describe(),
        "csrf_token": csrf_token(request),
        "logged_in": bool(request.session.get(SESSION_USER)),
        "login_enabled": auth_config(web.settings).configured,
        "other_lang_url": f"{request.url.path}?{urlencode(query)}",
        "config_json": script_json(config),
        "account_names": [
            n
            for n in web.account_names()
            if web.settings.web_accounts is None or n in web.settings.web_accounts
        ],
        "selected_account": selected_account(),
        "page_path": request.url.path,
    }
    response = request.app.state.templates.TemplateResponse(
        request, template, {**base, **values}, status_code=status_code
    )
    if request.query_params.get("lang"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    assert isinstance(response, HTMLResponse)
    return response


def script_json(value: Any) -> str:
    """JSON safe inside <script type="application/json"> (no '</script>' possible)."""
    text = dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def error_page(request: Request, status: int, message: str) -> Response:
    try:
        return render(
            request, "error.html", {"status": status, "message": message}, status_code=status
        )
    except Exception:
        # The error page itself must never fail (no session, no templates...).
        return HTMLResponse(f"<h1>{status}</h1>", status_code=status)


def day_url(placa: str, day: date) -> str:
    return f"/vehicles/{placa}/{day.isoformat()}"


# -------------------------------------------------------------- fleet map
@router.get("/", response_class=HTMLResponse)
async def fleet_map(request: Request, web: Web) -> Response:
    fleets = await (await web.reader()).fleets()
    return render(request, "fleet.html", {"page": "fleet", "fleets": fleets})


@router.get("/map")
async def seed_map(
    request: Request,
    web: Web,
    plate: Annotated[str | None, Query(max_length=20)] = None,
    day: Annotated[str | None, Query(alias="date", max_length=40)] = None,
) -> Response:
    """The seed's URL: the fleet map, or with ?plate= that vehicle's day."""
    if not plate:
        return await fleet_map(request, web)
    return await seed_map_route(request, web, plate, day)


@router.get("/map-route")
async def seed_map_route(
    request: Request,
    web: Web,
    plate: Annotated[str | None, Query(max_length=20)] = None,
    day: Annotated[str | None, Query(alias="date", max_length=40)] = None,
) -> Response:
    if not plate:
        raise HTTPException(400, "plate: expected a plate like ABC1234 or ABC1D23 (?plate=)")
    placa = plate_or_error(plate)
    which = day_or_error(day) if day else today(await web.reader())
    return RedirectResponse(day_url(placa, which), status_code=303)


# ------------------------------------------------------------ vehicle day
@router.get("/vehicles/{plate}")
async def vehicle_today(web: Web, plate: str) -> Response:
    placa = plate_or_error(plate)
    return RedirectResponse(day_url(placa, today(await web.reader())), status_code=303)


@router.get("/vehicles/{plate}/go")
async def vehicle_day_picker(
    plate: str, day: Annotated[str, Query(alias="date", max_length=40)] = ""
) -> Response:
    """The day picker's form target (a GET form cannot put the day in the path)."""
    placa = plate_or_error(plate)
    return RedirectResponse(day_url(placa, day_or_error(day)), status_code=303)


@router.get("/vehicles/{plate}/{day}", response_class=HTMLResponse)
async def vehicle_day(request: Request, web: Web, plate: str, day: str) -> Response:
    placa = plate_or_error(plate)
    which = day_or_error(day, name="day")
    reader = await web.reader()
    vehicle, data = await asyncio.gather(reader.vehicle(placa), load_day(reader, placa, which))
    if vehicle is None and data is None:
        raise HTTPException(404, f"no vehicle {placa}")
    values = {
        "page": "vehicle",
        "placa": placa,
        "vehicle": vehicle or {},
        "day": which,
        "data": data,
        "previous_url": day_url(placa, which - timedelta(days=1)),
        "next_url": day_url(placa, which + timedelta(days=1)),
        "is_today": which >= today(reader),
        "day_json": script_json(data.as_json() if data is not None else None),
        "comparison": comparison_rows(data) if data is not None else [],
        "export_base": f"/api/vehicles/{placa}/days/{which.isoformat()}/export",
    }
    return render(request, "vehicle.html", values)


def comparison_rows(data: DayData) -> list[dict[str, Any]]:
    """The provider's trips beside ours, one row per provider trip plus ours left unmatched."""
    comparison = data.comparison or {}
    by_seq = {t["seq"]: t for t in data.trips}
    rows: list[dict[str, Any]] = []
    for pair in comparison.get("pairs", []):
        ours = by_seq.get(pair.get("seq"))
        rows.append(
            {
                "provider_start": _instant(pair.get("provider_start")),
                "provider_end": _instant(pair.get("provider_end")),
                "provider_km": _km(pair.get("provider_distance_m")),
                "ours": ours,
                "agrees": bool(pair.get("agrees")),
            }
        )
    for seq in comparison.get("unmatched_ours", []):
        rows.append(
            {
                "provider_start": None,
                "provider_end": None,
                "provider_km": None,
                "ours": by_seq.get(seq),
                "agrees": False,
            }
        )
    return rows


def _instant(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def _km(metres: Any) -> float | None:
    return None if metres is None else float(metres) / 1000.0


# ------------------------------------------------------------------ report
def report_headers(lang: str) -> dict[str, str]:
    def t(key: str) -> str:
        return i18n.translate(key, lang)

    return {
        "placa": t("plate"),
        "descricao": t("description"),
        "frota": t("fleet"),
        "days": t("days"),
        "distance_km": f"{t('distance')} (km)",
        "driving_h": f"{t('driving')} (h)",
        "idle_h": f"{t('idle')} (h)",
        "parked_h": f"{t('parked')} (h)",
        "max_speed_kmh": f"{t('max_speed')} (km/h)",
        "over_limit_h": f"{t('over_limit')} (h)",
        "trip_count": t("trips"),
    }


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
    from etrack.web.api import REPORT_SORTS, report_rows

    sort = sort if sort in REPORT_SORTS else "placa"
    first, last, rows = await report_rows(web, start, end, frota, sort, order)
    reader = await web.reader()
    base = {"start": first.isoformat(), "end": last.isoformat(), "frota": frota or ""}
    sort_links = {
        name: "/report?"
        + urlencode(
            {**base, "sort": name, "order": "desc" if sort == name and order == "asc" else "asc"}
        )
        for name, _ in REPORT_COLUMNS
    }
    export_query = urlencode({**base, "sort": sort, "order": order})
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
            "headers": report_headers(language(request, web)),
            "sort_links": sort_links,
            "csv_url": f"/api/report/export/csv?{export_query}",
            "xlsx_url": f"/api/report/export/xlsx?{export_query}",
            "totals": report_totals(rows),
        },
    )


def report_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    sums = ("days", "distance_km", "driving_h", "idle_h", "parked_h", "over_limit_h", "trip_count")
    totals: dict[str, Any] = {name: sum(float(r[name] or 0) for r in rows) for name in sums}
    speeds = [float(r["max_speed_kmh"]) for r in rows if r.get("max_speed_kmh") is not None]
    totals["max_speed_kmh"] = max(speeds) if speeds else None
    return totals


# --------------------------------------------------------- data browser
RESOURCES: dict[str, dict[str, Any]] = {
    "terminals": {
        "list": "web_db_terminals",
        "of_plate": None,
        "detail": "web_db_terminal",
        "key": None,
        "key_kind": None,
    },
    "positions": {
        "list": "web_db_positions",
        "of_plate": "web_db_positions_of_plate",
        "detail": "web_db_position",
        "key": "data_transmissao",
        "key_kind": "timestamptz",
    },
    "trips": {
        "list": "web_db_trips",
        "of_plate": "web_db_trips_of_plate",
        "detail": "web_db_trip",
        "key": "data_inicio_conducao",
        "key_kind": "timestamptz",
    },
    "routes": {
        "list": "web_db_routes",
        "of_plate": "web_db_routes_of_plate",
        "detail": "web_db_route",
        "key": "rota_date",
        "key_kind": "date",
    },
}


def row_id(resource: str, row: dict[str, Any]) -> str:
    """`PLATE` or `PLATE@KEY` (KEY an ISO timestamp or date): the row's natural key."""
    key = RESOURCES[resource]["key"]
    if key is None:
        return str(row["placa"])
    value = row[key]
    return f"{row['placa']}@{value.isoformat()}"


def parse_row_id(resource: str, text: str) -> tuple[str, Any]:
    spec = RESOURCES[resource]
    placa_text, _, key_text = text.partition("@")
    placa = plate_or_error(placa_text, name="id")
    if spec["key"] is None:
        return placa, None
    try:
        if spec["key_kind"] == "date":
            return placa, date.fromisoformat(key_text)
        moment = datetime.fromisoformat(key_text)
    except ValueError:
        raise HTTPException(
            422, f"id: expected PLATE@{spec['key_kind']} (ISO 8601), got {text[:60]!r}"
        ) from None
    if moment.tzinfo is None:
        raise HTTPException(422, "id: expected the time with its UTC offset")
    return placa, moment


def resource_or_404(resource: str) -> dict[str, Any]:
    spec = RESOURCES.get(resource)
    if spec is None:
        raise HTTPException(404, f"no table {resource!r}; tables: {', '.join(RESOURCES)}")
    return spec


@router.get("/db", response_class=HTMLResponse)
async def db_index(request: Request) -> Response:
    return render(request, "db_index.html", {"page": "db", "resources": list(RESOURCES)})


@router.get("/db/{resource}", response_class=HTMLResponse)
async def db_table(
    request: Request,
    web: Web,
    resource: str,
    plate: Annotated[str | None, Query(max_length=20)] = None,
    after: Annotated[str | None, Query(max_length=80)] = None,
) -> Response:
    spec = resource_or_404(resource)
    placa = plate_or_error(plate) if plate else None
    after_placa, after_key = "", None
    if after:
        after_placa, after_key = parse_row_id(resource, after)
    args: dict[str, Any] = {
        "limit": DB_PAGE + 1,
        "after_placa": after_placa,
        "after_key": after_key.isoformat() if after_key is not None else "-infinity",
        "placa": placa,
    }
    name = spec["list"]
    if placa and spec["of_plate"]:
        name = spec["of_plate"]
    rows = await (await web.reader()).rows(name, args)
    more = len(rows) > DB_PAGE
    rows = rows[:DB_PAGE]
    next_url = None
    if more and rows:
        next_query = {"after": row_id(resource, rows[-1])}
        if placa:
            next_query["plate"] = placa
        next_url = f"/db/{resource}?{urlencode(next_query)}"
    return render(
        request,
        "db_table.html",
        {
            "page": "db",
            "resource": resource,
            "resources": list(RESOURCES),
            "columns": list(rows[0].keys()) if rows else [],
            "rows": [(quote(row_id(resource, r), safe="@"), r) for r in rows],
            "plate": placa or "",
            "next_url": next_url,
            "first_url": f"/db/{resource}" + (f"?plate={placa}" if placa else ""),
        },
    )


@router.get("/db/{resource}/{row}", response_class=HTMLResponse)
async def db_row(request: Request, web: Web, resource: str, row: str) -> Response:
    spec = resource_or_404(resource)
    placa, key = parse_row_id(resource, row)
    args = {"placa": placa, "key": key.isoformat() if key is not None else None}
    found = await (await web.reader()).row(spec["detail"], args)
    if found is None:
        raise HTTPException(404, f"no {resource} row {row}")
    fields = [(name, pretty(value)) for name, value in found.items()]
    return render(
        request,
        "db_row.html",
        {"page": "db", "resource": resource, "row_id": row, "fields": fields},
    )


def pretty(value: Any) -> str:
    if isinstance(value, dict | list):
        return dumps(value).decode() if len(str(value)) > 2000 else _indent(value)
    return "" if value is None else str(value)


def _indent(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


# ------------------------------------------------------------------ login
@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> Response:
    return render(
        request, "login.html", {"page": "login", "next": safe_next(next), "failed": False}
    )


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    web: Web,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    config = auth_config(web.settings)
    if not valid_csrf(request, csrf):
        raise HTTPException(403, "the form expired: reload the page and try again")
    ok = await asyncio.to_thread(config.check, username, password)
    if not ok:
        # Slow down guessing; the check itself is constant-time.
        await asyncio.sleep(0.5)
        return render(
            request,
            "login.html",
            {"page": "login", "next": safe_next(next), "failed": True},
            status_code=401,
        )
    request.session.clear()
    request.session[SESSION_USER] = config.user
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
async def logout(
    request: Request, csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = ""
) -> Response:
    if not valid_csrf(request, csrf):
        raise HTTPException(403, "the form expired: reload the page and try again")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/favicon.ico")
async def favicon() -> Response:
    return Response(status_code=204)


# -------------------------------------------------------------------- jobs
FLASH = "flash"


def flash(request: Request, message: str) -> None:
    request.session[FLASH] = message[:500]


def require_csrf(request: Request, token: str) -> None:
    if not valid_csrf(request, token):
        raise HTTPException(403, "the form expired: reload the page and try again")


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(request: Request, web: Web) -> Response:
    from etrack.web.jobs import JobsUnavailable

    reader = await web.reader()
    values: dict[str, Any] = {
        "page": "jobs",
        "runs": [],
        "backfills": [],
        "accounts": [],
        "unavailable": None,
        "message": request.session.pop(FLASH, None),
        "yesterday": today(reader) - timedelta(days=1),
    }
    try:
        values["accounts"] = await reader.account_states(web.account_names())
        values["runs"] = await web.jobs.runs(limit=30, reader=reader)
        values["backfills"] = await web.jobs.backfills(reader)
    except JobsUnavailable as exc:
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
    from etrack.web.inputs import plates_or_error

    require_csrf(request, csrf)
    first = day_or_error(date_start, name="date_start")
    last = day_or_error(date_end, name="date_end") if date_end else first
    if last < first:
        raise HTTPException(400, "date_end must not be before date_start")
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


@router.post("/jobs/backfills/{backfill_id}/retry")
async def jobs_retry_failed(
    request: Request,
    web: Web,
    backfill_id: int,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
) -> Response:
    require_csrf(request, csrf)
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
