"""A vehicle's day: its route (GeoJSON), figures, trips, stops, the provider's
trips and the downloads; and the seed's /api/routes/{plate}."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.reports.csvfile import CsvDialect
from etrack.reports.kinds import ReportRequest, ReportScope
from etrack.reports.kml import day_kml
from etrack.web import exports
from etrack.web.api.common import (
    ERRORS,
    GEOJSON,
    DayPath,
    DialectQuery,
    PlatePath,
    attachment,
    body_response,
    download_dialect,
    encoded,
)
from etrack.web.api.reports import in_scope, report_file
from etrack.web.days import DayData, load_day, today
from etrack.web.deps import Web, WebContext, language
from etrack.web.inputs import day_or_error, plate_or_error
from etrack.web.reader import Encoded, Reader

__all__ = ["router"]

router = APIRouter()


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


class DayExport(StrEnum):
    geojson = "geojson"
    gpx = "gpx"
    csv = "csv"
    kml = "kml"
    trips_csv = "trips.csv"
    stops_csv = "stops.csv"


KML = "application/vnd.google-earth.kml+xml"


def no_day(placa: str, which: date) -> HTTPException:
    return HTTPException(404, f"no route and no valid position for {placa} on {which.isoformat()}")


async def day_or_404(web: WebContext, plate: str, day: str) -> DayData:
    placa = plate_or_error(plate)
    which = day_or_error(day, name="day")
    data = await load_day(await web.reader(), placa, which)
    if data is None:
        raise no_day(placa, which)
    return data


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
        raise no_day(placa, which)
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
    props = {**data.properties(), "simplified": simplified}
    return encoded(data.feature(simplified=simplified, properties=props), GEOJSON)


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
    summary="Download a plate-day as GeoJSON, GPX, KML or CSV (points; trips.csv, stops.csv)",
    description=(
        "`csv`: one row per valid point; `trips.csv` and `stops.csv`: the day's stored trips "
        "and stops alone (the vehicle-day report's sections); `kml`: the route and the stops "
        "for Google Earth. CSVs take `dialect` (excel-br or rfc4180). The day's XLSX and PDF "
        "are the vehicle-day report: `/api/reports/vehicle-day/export/{xlsx,pdf}?plates=P&date=D`."
    ),
    responses={
        **ERRORS,
        200: {
            "content": {GEOJSON: {}, "application/gpx+xml": {}, "text/csv": {}, KML: {}},
            "description": "The file",
        },
    },
)
async def day_export(
    request: Request,
    web: Web,
    plate: PlatePath,
    day: DayPath,
    fmt: DayExport,
    dialect: DialectQuery = None,
) -> Response:
    data = await day_or_404(web, plate, day)
    chosen = download_dialect(request, dialect)
    if fmt in (DayExport.trips_csv, DayExport.stops_csv):
        return await day_section_csv(request, web, data, fmt.value.removesuffix(".csv"), chosen)
    name = exports.download_name(data.placa, data.day, fmt.value)
    if fmt is DayExport.geojson:
        return attachment(exports.day_geojson(data), GEOJSON, name)
    if fmt is DayExport.gpx:
        return attachment(exports.day_gpx(data), "application/gpx+xml", name)
    if fmt is DayExport.kml:
        return attachment(vehicle_day_kml(data, web.settings.tz), KML, name)
    body = exports.day_csv(data, web.settings.tz, chosen, language(request, web))
    return attachment(body, "text/csv; charset=utf-8", name)


async def day_section_csv(
    request: Request, web: WebContext, data: DayData, section: str, dialect: CsvDialect
) -> Response:
    """The trips or the stops of the day as the vehicle-day report has them."""
    wanted = ReportRequest(
        kind="vehicle-day",
        first=data.day,
        last=data.day,
        scope=ReportScope(plates=(data.placa,)),
    )
    lang = language(request, web)
    body, media_type, _ = await in_scope(
        web, wanted, lambda report: report_file(report, "csv", lang, dialect, section)
    )
    return attachment(body, media_type, f"{data.placa}_{data.day.isoformat()}_{section}.csv")


def vehicle_day_kml(data: DayData, tz: tzinfo) -> bytes:
    """The day's points and stops in the account's local time (a KML viewer
    has no report time zone to apply)."""
    line = [
        (float(lat), float(lon), datetime.fromtimestamp(float(t), tz))
        for t, lat, lon, *_ in data.points
        if lat is not None and lon is not None
    ]
    stops = [
        (
            float(s["latitude"]),
            float(s["longitude"]),
            f"Parada {s['seq']}" + (f" — {s['address']}" if s.get("address") else ""),
            s["start_ts"].astimezone(tz),
            None if s.get("end_ts") is None else s["end_ts"].astimezone(tz),
        )
        for s in data.stops
        if s.get("latitude") is not None and s.get("longitude") is not None
    ]
    return day_kml(data.placa, data.day, line, stops)


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
    if not await reader.can_see(placa):
        # Outside a limited scope a plate does not exist, by any URL.
        raise HTTPException(404, f"no vehicle {placa}")
    if day is not None:
        data = await load_day(reader, placa, day_or_error(day))
        days = [data] if data is not None else []
    else:
        days = await newest_days(reader, placa, limit)
    features = [d.feature(simplified=day is None) for d in days]
    return encoded({"type": "FeatureCollection", "features": features}, GEOJSON)


async def newest_days(reader: Reader, placa: str, limit: int) -> list[DayData]:
    rows = await reader.route_days(placa, today(reader), limit)
    found = [await load_day(reader, placa, row["rota_date"]) for row in rows]
    return [d for d in found if d is not None]
