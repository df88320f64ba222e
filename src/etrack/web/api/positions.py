"""A vehicle's stored positions (every quality) over a day or range, paged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.web.api.common import ERRORS, PlatePath, encoded
from etrack.web.days import today
from etrack.web.deps import Web, WebContext
from etrack.web.inputs import plate_or_error, range_or_error

__all__ = ["MAX_POSITIONS_PAGE", "MAX_RANGE_DAYS", "router"]

router = APIRouter()

MAX_POSITIONS_PAGE = 5000
MAX_RANGE_DAYS = 31


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
    if not await reader.can_see(placa):
        # Outside a limited scope a plate does not exist, by any URL.
        raise HTTPException(404, f"no vehicle {placa}")
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
