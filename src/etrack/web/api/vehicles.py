"""/api/vehicles: the fleet with each vehicle's latest position and state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.web.api.common import ERRORS, JSON, PlatePath, body_response
from etrack.web.deps import Web
from etrack.web.inputs import plate_or_error
from etrack.web.reader import FleetSnapshot

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


def fleet_body(snapshot: FleetSnapshot, indexes: Sequence[int]) -> bytes:
    """A VehicleList of those vehicles of the snapshot, from their encoded
    fragments: no vehicle is encoded again."""
    return b'{"count":%d,"generated_at":%b,"vehicles":%b}' % (
        len(indexes),
        orjson.dumps(snapshot.generated_at),
        snapshot.array(indexes),
    )


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
    snapshot = await (await web.fleet()).snapshot()
    needle = "".join(ch for ch in (plate or "").upper() if ch.isalnum()) or None
    # The whole fleet and each filter are built once per snapshot (and
    # gzipped once): fifty clients polling ?state=moving cost one join.
    body = snapshot.encoded(
        (needle, frota or None, state or None),
        lambda s: fleet_body(s, s.select(needle, frota or None, state or None)),
    )
    return body_response(request, body, JSON)


@router.get(
    "/api/vehicles/{plate}",
    response_model=VehicleOut,
    tags=["vehicles"],
    summary="One vehicle's latest position and state",
    responses=ERRORS,
)
async def vehicle(web: Web, plate: PlatePath) -> Response:
    placa = plate_or_error(plate)
    snapshot = await (await web.fleet()).snapshot()
    found = snapshot.by_plate.get(placa)
    if found is None:
        raise HTTPException(404, f"no vehicle {placa}")
    return Response(snapshot.fragments[found], media_type=JSON)
