"""The fleet map (the site's root) and the seed's map URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.web.days import today
from etrack.web.deps import Web
from etrack.web.inputs import day_or_error, plate_or_error
from etrack.web.pages.render import day_url, render

__all__ = ["router"]

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def fleet_map(request: Request, web: Web) -> Response:
    fleets = await (await web.reader()).fleets()
    return render(request, "fleet.html", {"page": "fleet", "fleets": fleets})


class SeedMapQuery(BaseModel):
    """The seed's map URLs' ?plate=&date=."""

    plate: str | None = Field(None, max_length=20)
    day: str | None = Field(None, alias="date", max_length=40)


@router.get("/map")
async def seed_map(request: Request, web: Web, query: Annotated[SeedMapQuery, Query()]) -> Response:
    """The seed's URL: the fleet map, or with ?plate= that vehicle's day."""
    if not query.plate:
        return await fleet_map(request, web)
    return await seed_map_route(request, web, query)


@router.get("/map-route")
async def seed_map_route(
    request: Request, web: Web, query: Annotated[SeedMapQuery, Query()]
) -> Response:
    if not query.plate:
        raise HTTPException(400, "plate: expected a plate like ABC1234 or ABC1D23 (?plate=)")
    placa = plate_or_error(query.plate)
    which = day_or_error(query.day) if query.day else today(await web.reader())
    return RedirectResponse(day_url(placa, which), status_code=303)


@router.get("/favicon.ico")
async def favicon() -> Response:
    return Response(status_code=204)
