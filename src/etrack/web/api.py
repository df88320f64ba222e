"""The JSON API under /api (OpenAPI at /api/openapi.json). Handlers only wire:
parse the input (etrack.web.inputs), read (etrack.web.reader / days), encode."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.web import exports
from etrack.web.app import WebContext
from etrack.web.days import DayData, load_day, today
from etrack.web.inputs import (
    day_or_error,
    day_range_or_error,
    plate_or_error,
    plates_or_error,
    range_or_error,
)
from etrack.web.reader import Encoded, Reader, Vehicle

router = APIRouter()

JSON = "application/json"
GEOJSON = "application/geo+json"
MAX_POSITIONS_PAGE = 5000
MAX_RANGE_DAYS = 31
MAX_SUMMARY_DAYS = 366
MAX_SUMMARY_ROWS = 20000


# ------------------------------------------------------------------ models
# For the OpenAPI document: handlers return encoded bytes (orjson) directly.
class VehicleOut(BaseModel):
    placa: str = Field(examples=["ABC1D23"])
    descricao: str | None
    frota: str | None
    last_report: datetime | None = Field(description="Newest position of any quality.")
    ts: datetime | None = Field(description="Time of the newest valid position (lat/lon).")
    lat: float | None
    lon: float | None
    speed_kmh: float | None
    ignition: bool | None
    address: str | None
    state: str = Field(
        description="moving, idle (ignition on, stopped), off, stale (no report for over 1 h), unknown"
    )


class VehicleList(BaseModel):
    count: int
    generated_at: datetime
    vehicles: list[VehicleOut]


class PositionOut(BaseModel):
    data_transmissao: datetime
    data_gravacao: datetime | None
    latitude: float | None
    longitude: float | None
    velocidade: float | None
    ignicao: bool | None
    odometro: float | None
    horimetro: float | None
    bateria: float | None
    logradouro: str | None
    quality: str = Field(description="valid, or why not: no_fix, out_of_range, future, jump...")


class PositionsPage(BaseModel):
    placa: str
    start: datetime
    end: datetime
    count: int
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )
    positions: list[PositionOut]


class RouteFeature(BaseModel):
    type: str = "Feature"
    geometry: dict[str, Any] | None
    properties: dict[str, Any]


class RouteCollection(BaseModel):
    type: str = "FeatureCollection"
    features: list[RouteFeature]


class DayOut(BaseModel):
    placa: str
    day: date
    stored: bool = Field(description="false: computed now from the positions, not stored yet")
    computed_at: datetime | None
    speed_limit_kmh: float
    stats: dict[str, Any]
    points: list[list[Any]] = Field(description="[POSIX seconds, lat, lon, speed km/h, ignition]")
    line: dict[str, Any] | None
    simplified: dict[str, Any] | None
    trips: list[dict[str, Any]]
    stops: list[dict[str, Any]]
    provider_trips: list[dict[str, Any]]
    comparison: dict[str, Any] | None


class TripsOut(BaseModel):
    placa: str
    day: date
    trips: list[dict[str, Any]]
    provider_trips: list[dict[str, Any]]
    comparison: dict[str, Any] | None


class StopsOut(BaseModel):
    placa: str
    day: date
    stops: list[dict[str, Any]]


class SummaryList(BaseModel):
    start: date
    end: date
    count: int
    rows: list[dict[str, Any]]


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Bad range or combination of parameters"},
    404: {"model": Problem, "description": "No such vehicle or no data"},
    422: {"model": Problem, "description": "A plate, date or parameter is malformed"},
}


class DayExport(StrEnum):
    geojson = "geojson"
    gpx = "gpx"
    csv = "csv"


class ReportExport(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


# ---------------------------------------------------------------- helpers
def context(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


Web = Annotated[WebContext, Depends(context)]
PlatePath = Annotated[
    str, Path(description="Plate: ABC1234, ABC-1234 or Mercosul ABC1D23", examples=["ABC1D23"])
]
DayPath = Annotated[str, Path(description="Local day: YYYY-MM-DD or DD-MM-YYYY")]


def encoded(value: Any, media_type: str = JSON, status_code: int = 200) -> Response:
    return Response(exports.dumps(value), status_code=status_code, media_type=media_type)


def body_response(request: Request, body: Encoded, media_type: str) -> Response:
    """The cached body, gzipped when the client takes it (browsers do): the
    compression was paid once for every client."""
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            body.gzip,
            media_type=media_type,
            headers={"content-encoding": "gzip", "vary": "accept-encoding"},
        )
    return Response(body.raw, media_type=media_type, headers={"vary": "accept-encoding"})


def attachment(body: bytes, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def encode_vehicles(vehicles: list[Vehicle]) -> bytes:
    return exports.dumps(
        {"count": len(vehicles), "generated_at": datetime.now(UTC), "vehicles": vehicles}
    )


def matches(vehicle: Vehicle, plate: str | None, frota: str | None, state: str | None) -> bool:
    if plate and plate not in vehicle.placa:
        return False
    if frota and vehicle.frota != frota:
        return False
    return not (state and vehicle.state != state)


async def day_or_404(web: WebContext, plate: str, day: str) -> DayData:
    placa = plate_or_error(plate)
    which = day_or_error(day, name="day")
    data = await load_day(await web.reader(), placa, which)
    if data is None:
        raise HTTPException(
            404, f"no route and no valid position for {placa} on {which.isoformat()}"
        )
    return data


# --------------------------------------------------------------- vehicles
@router.get(
    "/api/vehicles",
    response_model=VehicleList,
    tags=["vehicles"],
    summary="Every vehicle with its latest position and state",
    responses=ERRORS,
)
async def vehicles(
    request: Request,
    web: Web,
    plate: Annotated[str | None, Query(max_length=20, description="Part of a plate")] = None,
    frota: Annotated[str | None, Query(max_length=200)] = None,
    state: Annotated[str | None, Query(pattern="^(moving|idle|off|stale|unknown)$")] = None,
) -> Response:
    cache = await web.fleet()
    if not (plate or frota or state):
        return body_response(request, await cache.encoded(encode_vehicles), JSON)
    needle = "".join(ch for ch in (plate or "").upper() if ch.isalnum())
    found = [v for v in await cache.get() if matches(v, needle, frota, state)]
    return Response(encode_vehicles(found), media_type=JSON)


@router.get(
    "/api/vehicles/{plate}",
    response_model=VehicleOut,
    tags=["vehicles"],
    summary="One vehicle's latest position and state",
    responses=ERRORS,
)
async def vehicle(web: Web, plate: PlatePath) -> Response:
    placa = plate_or_error(plate)
    for found in await (await web.fleet()).get():
        if found.placa == placa:
            return encoded(found)
    raise HTTPException(404, f"no vehicle {placa}")


async def positions_page(
    web: WebContext,
    plate: str,
    day: str | None,
    start: str | None,
    end: str | None,
    cursor: str | None,
    limit: int,
) -> Response:
    placa = plate_or_error(plate)
    reader = await web.reader()
    lo, hi = range_or_error(
        web.settings.tz,
        day=day,
        start=start,
        end=end,
        max_days=MAX_RANGE_DAYS,
        default_day=today(reader),
    )
    page_lo = lo
    if cursor:
        try:
            after = datetime.fromisoformat(cursor)
        except ValueError:
            raise HTTPException(
                422, "cursor: expected the next_cursor of the previous page"
            ) from None
        if after.tzinfo is None:
            raise HTTPException(422, "cursor: expected a time with its UTC offset")
        page_lo = max(lo, after + timedelta(microseconds=1))
    rows = await reader.positions(placa, page_lo, hi, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = rows[-1]["data_transmissao"].isoformat() if more and rows else None
    return encoded(
        {
            "placa": placa,
            "start": lo,
            "end": hi,
            "count": len(rows),
            "next_cursor": next_cursor,
            "positions": rows,
        }
    )


PositionsQuery = {
    "day": Query(alias="date", max_length=40, description="Local day: YYYY-MM-DD or DD/MM/YYYY"),
    "start": Query(max_length=40, description="Local day or 'YYYY-MM-DD HH:MM[:SS]'"),
    "end": Query(max_length=40, description="Local day (included) or date-time (excluded)"),
    "cursor": Query(max_length=64, description="next_cursor of the previous page"),
    "limit": Query(ge=1, le=MAX_POSITIONS_PAGE, description="Page size"),
}


# The seed's URL and ours serve the same handler.
@router.get(
    "/api/positions/{plate}",
    response_model=PositionsPage,
    tags=["positions"],
    summary="The seed's URL: same as /api/vehicles/{plate}/positions (date=DD/MM/YYYY)",
    responses=ERRORS,
)
@router.get(
    "/api/vehicles/{plate}/positions",
    response_model=PositionsPage,
    tags=["positions"],
    summary="A vehicle's stored positions (all qualities) in a range, paged, oldest first",
    responses=ERRORS,
)
async def vehicle_positions(
    web: Web,
    plate: PlatePath,
    day: Annotated[str | None, PositionsQuery["day"]] = None,
    start: Annotated[str | None, PositionsQuery["start"]] = None,
    end: Annotated[str | None, PositionsQuery["end"]] = None,
    cursor: Annotated[str | None, PositionsQuery["cursor"]] = None,
    limit: Annotated[int, PositionsQuery["limit"]] = 1000,
) -> Response:
    return await positions_page(web, plate, day, start, end, cursor, limit)


# ------------------------------------------------------------------ days
@router.get(
    "/api/vehicles/{plate}/days/{day}/route",
    response_model=RouteFeature,
    tags=["routes"],
    summary="The route of a plate-day as a GeoJSON Feature (LineString and the day's figures)",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}}},
)
async def day_route(
    request: Request,
    web: Web,
    plate: PlatePath,
    day: DayPath,
    simplified: Annotated[
        bool, Query(description="The simplified line drawn at fleet zoom")
    ] = False,
) -> Response:
    placa = plate_or_error(plate)
    which = day_or_error(day, name="day")
    reader = await web.reader()
    # The body cache is shared by every scope: ask before reading it.
    if not await reader.can_see(placa):
        raise HTTPException(404, f"no route and no valid position for {placa} on {which}")
    if which < today(reader):
        key = (placa, which, simplified)
        hit, body = web.routes.get(key)
        if not hit:
            text = await reader.route_feature_text(placa, which, simplified=simplified)
            body = None if text is None else Encoded(text.encode())
            web.routes.put(key, body)
        if body is not None:
            return body_response(request, body, GEOJSON)
    data = await day_or_404(web, placa, which.isoformat())
    line = data.simplified if simplified and data.simplified else data.line
    props = {**data.properties(), "simplified": simplified}
    return encoded({"type": "Feature", "geometry": line, "properties": props}, GEOJSON)


@router.get(
    "/api/vehicles/{plate}/days/{day}",
    response_model=DayOut,
    tags=["routes"],
    summary="Everything about a plate-day: figures, points, lines, trips, stops, the provider's trips",
    responses=ERRORS,
)
async def day_detail(web: Web, plate: PlatePath, day: DayPath) -> Response:
    return encoded((await day_or_404(web, plate, day)).as_json())


@router.get(
    "/api/vehicles/{plate}/days/{day}/trips",
    response_model=TripsOut,
    tags=["routes"],
    summary="Trips we detected, the provider's trips, and how they compare",
    responses=ERRORS,
)
async def day_trips(web: Web, plate: PlatePath, day: DayPath) -> Response:
    data = await day_or_404(web, plate, day)
    return encoded(
        {
            "placa": data.placa,
            "day": data.day,
            "trips": data.trips,
            "provider_trips": data.provider_trips,
            "comparison": data.comparison,
        }
    )


@router.get(
    "/api/vehicles/{plate}/days/{day}/stops",
    response_model=StopsOut,
    tags=["routes"],
    summary="Stops we detected",
    responses=ERRORS,
)
async def day_stops(web: Web, plate: PlatePath, day: DayPath) -> Response:
    data = await day_or_404(web, plate, day)
    return encoded({"placa": data.placa, "day": data.day, "stops": data.stops})


@router.get(
    "/api/vehicles/{plate}/days/{day}/export/{fmt}",
    tags=["routes"],
    summary="Download a plate-day as GeoJSON, GPX or CSV",
    responses={
        **ERRORS,
        200: {
            "content": {GEOJSON: {}, "application/gpx+xml": {}, "text/csv": {}},
            "description": "The file",
        },
    },
)
async def day_export(web: Web, plate: PlatePath, day: DayPath, fmt: DayExport) -> Response:
    data = await day_or_404(web, plate, day)
    name = exports.download_name(data.placa, data.day, fmt.value)
    if fmt is DayExport.geojson:
        return attachment(exports.day_geojson(data), GEOJSON, name)
    if fmt is DayExport.gpx:
        return attachment(exports.day_gpx(data), "application/gpx+xml", name)
    return attachment(exports.day_csv(data, web.settings.tz), "text/csv; charset=utf-8", name)


@router.get(
    "/api/routes/{plate}",
    response_model=RouteCollection,
    tags=["routes"],
    summary="The seed's URL: a plate's route days as GeoJSON (?date= for one day)",
    responses={**ERRORS, 200: {"content": {GEOJSON: {}}}},
)
async def seed_routes(
    web: Web,
    plate: PlatePath,
    day: Annotated[
        str | None, Query(alias="date", max_length=40, description="YYYY-MM-DD or DD/MM/YYYY")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=92, description="Newest days without ?date=")] = 31,
) -> Response:
    placa = plate_or_error(plate)
    reader = await web.reader()
    if day is not None:
        data = await load_day(reader, placa, day_or_error(day))
        days = [data] if data is not None else []
    else:
        days = await newest_days(reader, placa, limit)
    features = [
        {
            "type": "Feature",
            "geometry": d.simplified if day is None and d.simplified else d.line,
            "properties": d.properties(),
        }
        for d in days
    ]
    return encoded({"type": "FeatureCollection", "features": features}, GEOJSON)


async def newest_days(reader: Reader, placa: str, limit: int) -> list[DayData]:
    rows = await reader.route_days(placa, today(reader), limit)
    found = [await load_day(reader, placa, row["rota_date"]) for row in rows]
    return [d for d in found if d is not None]


# ------------------------------------------------------------- summaries
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


REPORT_SORTS = (
    "placa",
    "descricao",
    "frota",
    "days",
    "distance_km",
    "driving_h",
    "idle_h",
    "parked_h",
    "max_speed_kmh",
    "over_limit_h",
    "trip_count",
)


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


async def report_rows(
    web: WebContext, start: str | None, end: str | None, frota: str | None, sort: str, order: str
) -> tuple[date, date, list[dict[str, Any]]]:
    reader = await web.reader()
    first, last = day_range_or_error(
        start, end, default=today(reader) - timedelta(days=1), max_days=MAX_SUMMARY_DAYS
    )
    rows = await reader.fleet_report(first, last, frota or None)
    return first, last, sort_rows(rows, sort, descending=order == "desc")


def sort_rows(rows: list[dict[str, Any]], key: str, *, descending: bool) -> list[dict[str, Any]]:
    """Sorted by a known column; empty values last in both directions."""
    if key not in REPORT_SORTS:
        key = "placa"
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: (r[key], r["placa"]), reverse=descending)
    return present + missing


@router.get(
    "/api/report",
    response_model=SummaryList,
    tags=["summaries"],
    summary="The fleet report: one row per vehicle over a day or range",
    responses=ERRORS,
)
async def report(
    web: Web,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    frota: Annotated[str | None, Query(max_length=200)] = None,
    sort: Annotated[SortKey, Query()] = SortKey.placa,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> Response:
    first, last, rows = await report_rows(web, start, end, frota, sort.value, order)
    return encoded({"start": first, "end": last, "count": len(rows), "rows": rows})


@router.get(
    "/api/report/export/{fmt}",
    tags=["summaries"],
    summary="Download the fleet report as CSV or XLSX",
    responses={
        **ERRORS,
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            },
            "description": "The file",
        },
    },
)
async def report_export(
    request: Request,
    web: Web,
    fmt: ReportExport,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    frota: Annotated[str | None, Query(max_length=200)] = None,
    sort: Annotated[SortKey, Query()] = SortKey.placa,
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
) -> Response:
    from etrack.web.pages import language, report_headers

    first, last, rows = await report_rows(web, start, end, frota, sort.value, order)
    name = f"frota_{first.isoformat()}_{last.isoformat()}.{fmt.value}"
    if fmt is ReportExport.csv:
        return attachment(exports.report_csv(rows), "text/csv; charset=utf-8", name)
    headers = report_headers(language(request, web))
    return attachment(
        exports.report_xlsx(rows, headers, first, last),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        name,
    )


# -------------------------------------------------------------- operations
class Health(BaseModel):
    status: str = Field(description="ok, or degraded when the database does not answer")
    database: dict[str, Any]
    newest_position: datetime | None = Field(description="Newest position held for any vehicle")
    newest_position_age_s: float | None
    last_fetch: datetime | None = Field(description="End of the last successful fetch-latest job")
    last_fetch_age_s: float | None
    scheduler: dict[str, Any]
    accounts: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each eTrac account: state (ok, failing, unknown), reason, vehicles, "
        "last successful fetch",
    )


def age_s(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 1)


@router.get(
    "/healthz",
    response_model=Health,
    tags=["operations"],
    summary="Database reachable, age of the data and of the last fetch, scheduler state",
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
async def healthz(web: Web) -> Response:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "status": "ok",
        "database": {"reachable": True},
        "newest_position": None,
        "newest_position_age_s": None,
        "last_fetch": None,
        "last_fetch_age_s": None,
        "scheduler": web.scheduler.describe(),
    }
    try:
        reader = await web.reader()
        body["database"]["latency_ms"] = round(1000 * await reader.ping(), 2)
        row = await reader.row("web_health") or {}
        body["accounts"] = await reader.account_states(web.account_names())
    except Exception as exc:
        body["status"] = "degraded"
        body["database"] = {"reachable": False, "error": type(exc).__name__}
        return encoded(body, status_code=503)
    body["newest_position"] = row.get("newest_position")
    body["newest_position_age_s"] = age_s(row.get("newest_position"), now)
    body["last_fetch"] = row.get("last_fetch")
    body["last_fetch_age_s"] = age_s(row.get("last_fetch"), now)
    return encoded(body)


@router.get("/metrics", include_in_schema=False)
async def metrics(web: Web) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    from etrack.web.metrics import render_metrics

    try:
        reader: Reader | None = await web.reader()
    except Exception:
        reader = None
    body = await render_metrics(web.metrics, reader, web.scheduler.state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# -------------------------------------------------------------------- jobs
async def jobs_or_503(web: WebContext) -> Any:
    from etrack.web.jobs import JobsUnavailable

    try:
        return await web.jobs.app()
    except JobsUnavailable as exc:
        raise HTTPException(503, str(exc)) from None


@router.get(
    "/api/jobs/runs",
    tags=["jobs"],
    summary="Recent job runs (newest first) with status, counts, summary and error",
    responses={503: {"model": Problem, "description": "The job queue is not installed"}},
)
async def job_runs(
    web: Web,
    failed: Annotated[bool, Query(description="Only failed runs")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Response:
    await jobs_or_503(web)
    runs = await web.jobs.runs(failed_only=failed, limit=limit, reader=await web.reader())
    return encoded({"count": len(runs), "runs": runs})


@router.get(
    "/api/backfills",
    tags=["jobs"],
    summary="The newest backfills with their progress (partitions done, running, failed...)",
    responses={503: {"model": Problem, "description": "The job queue is not installed"}},
)
async def backfills(web: Web, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    await jobs_or_503(web)
    found = await web.jobs.backfills(await web.reader(), limit)
    return encoded({"count": len(found), "backfills": [backfill_json(s) for s in found]})


def backfill_json(state: Any) -> dict[str, Any]:
    b, c = state.backfill, state.counts
    return {
        "id": b.id,
        "date_start": b.date_start,
        "date_end": b.date_end,
        "plates": b.plates,
        "with_trips": b.with_trips,
        "created_at": b.created_at,
        "finished_at": b.finished_at,
        "routes_summary": b.routes_summary,
        "routes_job_status": state.routes_job_status,
        "partitions": {
            "total": c.total,
            "done": c.done,
            "running": c.running,
            "pending": c.pending,
            "failed": c.failed,
            "retrying": c.retrying,
        },
        "rows_fetched": c.rows,
        "failures": state.failures,
    }
