"""Geofences (GeoJSON) and their visits (docs/geofences.md).

GET /api/geofences gives every fence as a FeatureCollection that POST takes
back unchanged. POST upserts the fences of a GeoJSON Feature or
FeatureCollection (the import's parser and checks: one bad feature refuses
the whole body) and queues the computation of their visits over the whole
stored history (etrack.jobs.visits: a job per month; never in the request).
DELETE removes a fence with its visits and enter/exit events.

Writes follow the login rule of the whole API (etrack.web.security: a
session from /login or HTTP Basic; without a configured login, loopback
connections only) plus two checks of their own, since a browser may send a
write on another site's behalf: the request must be same-origin (an
`Origin` header, when sent, names this server; `Sec-Fetch-Site`, when sent,
says same-origin or none) and a POST's body must be declared JSON
(application/json or application/geo+json: no HTML form can send that, and
a cross-site script cannot without a CORS preflight, which this server never
grants). Scripts (curl, httpx) send neither header and pass.

Fences belong to no account: every user who may see the API may read and
write them. Visits carry plates, so GET /api/visits lists only the vehicles
of the request's accounts.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.dates import range_error
from etrack.errors import SchemaNotCurrent, UsageError
from etrack.geofences.imports import parse_fences
from etrack.jobs.visits import queue_history_visits
from etrack.store import db
from etrack.store.geofences import (
    UpsertCounts,
    delete_fences,
    list_fences,
    speed_limited,
    upsert_fences,
)
from etrack.web.api.common import ERRORS, GEOJSON, Problem, encoded
from etrack.web.days import today
from etrack.web.deps import Web, require_every_account
from etrack.web.inputs import day_or_error, plates_or_error

__all__ = ["MAX_BODY_BYTES", "MAX_VISIT_DAYS", "MAX_VISIT_ROWS", "router"]

router = APIRouter()


MAX_VISIT_ROWS = 5000
"""The most visits /api/visits lists; `truncated` says when there were more."""
MAX_VISIT_DAYS = 366
MAX_BODY_BYTES = 10 * 1024 * 1024
"""The largest GeoJSON body POST /api/geofences reads (a city's worth of polygons)."""
JSON_TYPES = ("application/json", "application/geo+json")

WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "Not same-origin (a cross-site request)"},
}


class FeatureOut(BaseModel):
    type: str = "Feature"
    geometry: dict[str, Any]
    properties: dict[str, Any] = Field(
        description="name, kind, group; radius_m (circle), buffer_m (corridor), speed_limit_kmh"
    )


class FenceCollection(BaseModel):
    type: str = "FeatureCollection"
    features: list[FeatureOut]


class FencesWritten(BaseModel):
    inserted: int
    updated: int
    unchanged: int
    changed: list[str] = Field(description="The fences inserted or updated (in body order)")
    job_ids: list[int] = Field(
        description="The visits computation's jobs (one per month of stored history); empty "
        "when no fence changed, no position is stored, or every month already waits in the queue"
    )
    visits: str = Field(description="What happens to the visits, in a line")


class VisitOut(BaseModel):
    id: UUID
    placa: str
    fence: str
    arrive_ts: datetime
    depart_ts: datetime | None = Field(description="null while the vehicle is still inside")
    dwell_s: float


class VisitList(BaseModel):
    start: date
    end: date
    count: int
    truncated: bool = Field(description=f"More than {MAX_VISIT_ROWS} visits: narrow the filters")
    rows: list[VisitOut]


def require_same_origin(request: Request) -> None:
    """403 for a write a browser sends on another site's behalf."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise HTTPException(403, f"cross-site request refused (Sec-Fetch-Site: {fetch_site[:40]})")
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin.rstrip("/").lower() != f"{request.url.scheme}://{host}".lower():
        raise HTTPException(403, f"cross-origin request refused (Origin: {origin[:80]})")


@router.get(
    "/api/geofences",
    response_model=FenceCollection,
    tags=["geofences"],
    summary="Every geofence as a GeoJSON FeatureCollection (what POST takes back)",
    responses={200: {"content": {GEOJSON: {}}}},
)
async def geofences(web: Web) -> Response:
    rows = await web.in_db(list_fences)
    return encoded(
        {"type": "FeatureCollection", "features": [row.fence.feature() for row in rows]}, GEOJSON
    )


@router.post(
    "/api/geofences",
    response_model=FencesWritten,
    tags=["geofences"],
    summary="Create or update geofences from a GeoJSON Feature or FeatureCollection",
    description=(
        "Upsert by name (a fence sent unchanged is left alone), all or nothing: the first bad "
        "feature is a 422 naming it and nothing is stored. The visits of the changed fences "
        "are computed over the whole stored history by background jobs (one per month; see "
        "`job_ids` and the Jobs page). Same-origin only when sent by a browser."
    ),
    responses={
        **WRITE_ERRORS,
        413: {"model": Problem, "description": f"Body larger than {MAX_BODY_BYTES} bytes"},
        415: {"model": Problem, "description": "Body not declared as JSON"},
        422: {"model": Problem, "description": "Not GeoJSON, or a bad feature (named)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {
                    "schema": {
                        "type": "object",
                        "description": "A GeoJSON Feature or FeatureCollection: Polygon, "
                        "MultiPolygon, Point with properties.radius_m (circle), LineString with "
                        "properties.buffer_m (corridor); properties.name required",
                    }
                }
                for media in JSON_TYPES
            },
        }
    },
)
async def geofences_write(request: Request, web: Web) -> Response:
    require_same_origin(request)
    require_every_account(web, "fences", managers=True)
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise HTTPException(415, f"send the body as {' or '.join(JSON_TYPES)}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise HTTPException(413, f"the body may hold at most {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HTTPException(413, f"the body may hold at most {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"request: not UTF-8 text (byte {exc.start})") from None
    try:
        fences = parse_fences(text, "geojson", source="request", group=None)
    except UsageError as exc:
        raise HTTPException(422, str(exc)) from None
    for n, fence in enumerate(fences, start=1):
        # JSON may spell it (\u0000); PostgreSQL text cannot hold it.
        if "\x00" in fence.name or "\x00" in (fence.group or ""):
            raise HTTPException(
                422, f"request: feature {n}: a name or group may not contain the NUL character"
            )
    names = [fence.name for fence in fences]

    def save(conn: db.Conn) -> tuple[UpsertCounts, list[str], bool]:
        had = speed_limited(conn, names)
        counts, changed = upsert_fences(conn, fences)
        return counts, changed, bool(set(changed) & (had | speed_limited(conn, names)))

    counts, changed, limits = await web.in_db(save)
    job_ids: list[int] = []
    if not changed:
        visits = "no fence changed: the visits stay as they are"
    else:
        try:
            job_ids = await queue_history_visits(await web.jobs.app(), events=limits)
        except SchemaNotCurrent as exc:
            visits = f"visits not queued: {exc}"
        else:
            visits = (
                f"visits queued: {len(job_ids)} job(s), one per month of stored history"
                if job_ids
                else "visits: nothing new to queue (no positions stored, or every month "
                "already waits in the queue)"
            )
    return encoded(
        {
            "inserted": counts.inserted,
            "updated": counts.updated,
            "unchanged": counts.unchanged,
            "changed": changed,
            "job_ids": job_ids,
            "visits": visits,
        }
    )


@router.delete(
    "/api/geofences/{name:path}",
    status_code=204,
    tags=["geofences"],
    summary="Delete a geofence with its visits and enter/exit events",
    responses={
        **WRITE_ERRORS,
        204: {"description": "Deleted"},
        404: {"model": Problem, "description": "No such geofence"},
        422: {"model": Problem, "description": "A name longer than any fence's"},
    },
)
async def geofence_delete(
    request: Request,
    web: Web,
    name: Annotated[str, Path(max_length=200, description="The fence's name")],
) -> Response:
    require_same_origin(request)
    if "\x00" in name:  # no stored name holds it (PostgreSQL text cannot)
        raise HTTPException(404, f"no geofence {name!r}")
    require_every_account(web, "fences", managers=True)

    def delete(conn: db.Conn) -> tuple[list[str], bool]:
        limited = speed_limited(conn, [name])
        return delete_fences(conn, [name]), bool(limited)

    deleted, limits = await web.in_db(delete)
    if not deleted:
        raise HTTPException(404, f"no geofence {name!r}")
    if limits:
        # Its overspeed events go back to the vehicles' own limits: jobs,
        # never this request (a database not migrated yet queues nothing).
        with contextlib.suppress(SchemaNotCurrent):
            await queue_history_visits(await web.jobs.app(), events=True)
    return Response(status_code=204)


@router.get(
    "/api/visits",
    response_model=VisitList,
    tags=["geofences"],
    summary="Geofence visits overlapping a range of local days",
    description=(
        "Visits in arrival order that overlap the days (an open visit, `depart_ts` null, "
        f"overlaps every day after its arrival), at most {MAX_VISIT_ROWS}: `truncated` says "
        "when there were more. Only the vehicles of the request's accounts are listed."
    ),
    responses=ERRORS,
)
async def visits(
    web: Web,
    date_start: Annotated[
        str | None, Query(max_length=40, description="First local day (default today)")
    ] = None,
    date_end: Annotated[
        str | None,
        Query(max_length=40, description="Last local day, included (default date_start)"),
    ] = None,
    plate: Annotated[
        list[str] | None, Query(description="Plates (repeat or comma-separate)")
    ] = None,
    fence: Annotated[str | None, Query(max_length=200, description="Only this fence")] = None,
) -> Response:
    reader = await web.reader()
    first = day_or_error(date_start, name="date_start") if date_start else today(reader)
    last = day_or_error(date_end, name="date_end") if date_end else first
    reversed_range = range_error(first, last, start="date_start", end="date_end")
    if reversed_range is not None:
        raise HTTPException(400, reversed_range)
    if (last - first).days + 1 > MAX_VISIT_DAYS:
        raise HTTPException(400, f"the range may span at most {MAX_VISIT_DAYS} days")
    plates = plates_or_error(plate)
    # The scope goes into the query: filtering afterwards would cut the
    # listing at the limit with rows nobody may see.
    visible = await reader.visible_plates()
    if visible is not None:
        plates = sorted(visible.intersection(plates) if plates is not None else visible)
    tz = reader.params.tz
    lo = datetime.combine(first, datetime.min.time(), tz)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    rows = await reader.rows(
        "visits_list_limited",
        {"lo": lo, "hi": hi, "plates": plates, "fence": fence, "limit": MAX_VISIT_ROWS + 1},
    )
    truncated = len(rows) > MAX_VISIT_ROWS
    del rows[MAX_VISIT_ROWS:]
    for row in rows:
        row["id"] = str(row["id"])
        for key in ("arrive_ts", "depart_ts"):
            if row[key] is not None:
                row[key] = row[key].astimezone(tz)
    return encoded(
        {"start": first, "end": last, "count": len(rows), "truncated": truncated, "rows": rows}
    )
