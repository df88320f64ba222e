"""One vehicle's day: map, figures, trips, stops and the provider's trips."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.model import Fence
from etrack.reports.csvfile import default_dialect
from etrack.trips.day import day_bounds
from etrack.web.days import DayData, load_day, today
from etrack.web.deps import Web, language
from etrack.web.inputs import day_or_error, plate_or_error
from etrack.web.pages.geofences import fences_near, map_fence, stored_fences
from etrack.web.pages.render import day_url, render, script_json

__all__ = ["comparison_rows", "router"]

router = APIRouter()


@router.get("/vehicles/{plate}")
async def vehicle_today(web: Web, plate: str) -> Response:
    placa = plate_or_error(plate)
    return RedirectResponse(day_url(placa, today(await web.reader())), status_code=303)


# Before /vehicles/{plate}/{day}, which would take "go" for a day.
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
    vehicle, data, events = await asyncio.gather(
        reader.vehicle(placa), load_day(reader, placa, which), reader.day_events(placa, which)
    )
    if vehicle is None and data is None and not events:
        raise HTTPException(404, f"no vehicle {placa}")
    if data is not None:
        data.events = events
    # The fences near the day's route (drawn lightly) and the day's visits.
    near: list[Fence] = []
    visits: list[dict[str, Any]] = []
    if data is not None:
        # ~50 ms for 1,000 fences: off the event loop.
        near = await asyncio.to_thread(fences_near, await stored_fences(web), data.points)
        start, end = day_bounds(which, reader.params.tz)
        visits = await reader.rows(
            "web_day_visits",
            {
                "placa": placa,
                "lo": datetime.fromtimestamp(start, UTC),
                "hi": datetime.fromtimestamp(end, UTC),
            },
        )
    lang = language(request, web)
    values = {
        "page": "vehicle",
        "placa": placa,
        "vehicle": vehicle or {},
        "day": which,
        "data": data,
        # Also without a route: a vehicle offline all day has only its events.
        "events": events,
        "previous_url": day_url(placa, which - timedelta(days=1)),
        "next_url": day_url(placa, which + timedelta(days=1)),
        "is_today": which >= today(reader),
        "day_json": script_json(data.as_json() if data is not None else None),
        "comparison": comparison_rows(data) if data is not None else [],
        "export_base": f"/api/vehicles/{placa}/days/{which.isoformat()}/export",
        # The CSVs in the page language's dialect; the XLSX and PDF are the
        # vehicle-day report's, in the page's language.
        "csv_dialect": default_dialect(lang),
        "report_base": "/api/reports/vehicle-day/export",
        "report_query": urlencode({"plates": placa, "date": which.isoformat(), "lang": lang}),
        "fence_count": len(near),
        "fences_json": script_json([map_fence(f) for f in near]),
        "visits": visits,
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
