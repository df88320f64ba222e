"""/api/vehicles: the fleet with each vehicle's latest position and state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.web import exports
from etrack.web.api.common import ERRORS, JSON, PlatePath, body_response, encoded
from etrack.web.deps import Web
from etrack.web.inputs import plate_or_error
from etrack.web.reader import Vehicle

__all__ = ["router"]

router = APIRouter()


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
