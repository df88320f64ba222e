"""The Geofences page: every fence on a map and in a table (with its number
of visits), a circle or a polygon drawn on the map and saved through a form,
a fence picked in the table edited the same way (same name: updated), and a
fence deleted (a ticked confirm box, as on the Rules page).

A drawn fence comes as one GeoJSON Feature in a hidden form field; the form's
name, group and speed limit go into its properties and it is read by
`etrack.geofences.imports.parse_fences`, the import's own checks, so a fence
drawn and one imported are judged alike. A refusal is the page again with
one line saying why (400), never a 500.

The store functions are synchronous and fences are rarely edited: each
action opens one short connection in a thread, as the Rules page does. A
fence added or changed has its visits computed over the whole stored history
by jobs (etrack.jobs.visits.queue_history_visits: one per month), never in
the request; the flash line says how many were queued.

Also here, shared with the vehicle day and the Visits page: what the maps
draw of a fence (`map_fence`). A corridor is drawn as its buffered outline,
computed here with shapely in a local equirectangular projection about the
line's centre (metres, as `shapes.FenceShape` measures it), then brought back
to longitude/latitude; a circle is an L.circle of its radius in metres.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.errors import SchemaNotCurrent, UsageError
from etrack.geo import EARTH_RADIUS_M
from etrack.geofences.imports import parse_fences
from etrack.geofences.shapes import FenceShape
from etrack.jobs.visits import queue_history_visits
from etrack.model import Fence
from etrack.store import db
from etrack.store.geofences import (
    UpsertCounts,
    delete_fences,
    list_fences,
    speed_limited,
    upsert_fences,
)
from etrack.web.deps import Web, WebContext, require_every_account
from etrack.web.inputs import form_number
from etrack.web.pages.jobs import FLASH, flash, require_csrf
from etrack.web.pages.render import render, script_json
from etrack.web.scope import current_principal

__all__ = ["FenceForm", "fences_near", "map_fence", "router", "stored_fences"]

router = APIRouter()


# A drawn polygon of a few hundred corners is a few kB; an imported one may
# be larger, and is edited here too.
MAX_FEATURE_CHARS = 500_000


@dataclass(frozen=True, slots=True)
class FenceForm:
    """What the form shows: empty at first, the values sent after a refusal."""

    name: str = ""
    group: str = ""
    speed_limit: str = ""
    feature: str = ""


def _project(origin: tuple[float, float], lonlat: Sequence[Sequence[float]]) -> list[list[float]]:
    lat0, lon0 = origin
    k = EARTH_RADIUS_M * math.cos(math.radians(lat0))
    return [
        [math.radians(lon - lon0) * k, math.radians(lat - lat0) * EARTH_RADIUS_M]
        for lon, lat, *_ in lonlat
    ]


def _unproject(origin: tuple[float, float], xy: Sequence[Sequence[float]]) -> list[list[float]]:
    lat0, lon0 = origin
    k = EARTH_RADIUS_M * math.cos(math.radians(lat0))
    return [
        [round(lon0 + math.degrees(x / k), 7), round(lat0 + math.degrees(y / EARTH_RADIUS_M), 7)]
        for x, y in xy
    ]


def corridor_outline(fence: Fence) -> dict[str, Any] | None:
    """A corridor's buffered outline as a GeoJSON Polygon in longitude/latitude."""
    if fence.kind != "corridor" or not fence.radius_m:
        return None
    coords = fence.geometry.get("coordinates") or []
    line = shapely.LineString([c[:2] for c in coords])
    center = line.centroid
    origin = (center.y, center.x)
    local = shapely.LineString(_project(origin, coords))
    outline = local.buffer(float(fence.radius_m), quad_segs=8)
    ring = list(outline.exterior.coords)
    return {"type": "Polygon", "coordinates": [_unproject(origin, ring)]}


def map_fence(fence: Fence, visits: int | None = None) -> dict[str, Any]:
    """What a page script draws of a fence."""
    drawn: dict[str, Any] = {
        "name": fence.name,
        "kind": fence.kind,
        "group": fence.group,
        "radius_m": fence.radius_m,
        "speed_limit_kmh": fence.speed_limit_kmh,
        "geometry": fence.geometry,
        "feature": fence.feature(),
    }
    if fence.kind == "corridor":
        drawn["outline"] = corridor_outline(fence)
    if visits is not None:
        drawn["visits"] = visits
    return drawn


def _fence_of(row: dict[str, Any]) -> Fence:
    return Fence(
        name=row["name"],
        kind=row["kind"],
        geometry=row["geometry"],
        radius_m=row["radius_m"],
        group=row["fence_group"],
        speed_limit_kmh=row["speed_limit_kmh"],
    )


async def stored_fences(web: WebContext) -> list[Fence]:
    """Every fence, through the web's pool (the maps' reads)."""
    reader = await web.reader()
    return [_fence_of(r) for r in await reader.rows("web_fences_all")]


def fences_near(fences: Sequence[Fence], points: Sequence[Sequence[Any]]) -> list[Fence]:
    """The fences whose bounding box meets the box of these [t, lat, lon, ...]
    points (grown by about 1 km, so a fence beside the route shows too)."""
    lats = [float(p[1]) for p in points if p[1] is not None and p[2] is not None]
    lons = [float(p[2]) for p in points if p[1] is not None and p[2] is not None]
    if not lats:
        return []
    margin = 0.01
    lo_lat, hi_lat = min(lats) - margin, max(lats) + margin
    widest = min(max(abs(lo_lat), abs(hi_lat)), 89.0)
    dlon = margin / math.cos(math.radians(widest))
    lo_lon, hi_lon = min(lons) - dlon, max(lons) + dlon
    near: list[Fence] = []
    for fence in fences:
        try:
            west, south, east, north = FenceShape.of(fence).bounds
        except ValueError:
            continue  # a stored fence the checks refuse today is not drawn
        if west <= hi_lon and east >= lo_lon and south <= hi_lat and north >= lo_lat:
            near.append(fence)
    return near


def _speed_limit(text: str) -> float | None:
    value = form_number(text)
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"speed limit: expected a number of km/h above 0, got {text!r}")
    return value


def checked_fence(form: FenceForm) -> Fence:
    """The fence the form describes, checked as `etrack geofences import`
    checks a GeoJSON feature, or a UsageError (one line)."""
    if not form.name:
        raise UsageError("name: give the fence a name")
    if not form.feature.strip():
        raise UsageError("shape: draw a circle or a polygon on the map first")
    try:
        feature = json.loads(form.feature)
    except ValueError:
        raise UsageError("shape: the drawn shape is not GeoJSON: draw it again") from None
    if not isinstance(feature, dict):
        raise UsageError("shape: the drawn shape is not a GeoJSON Feature: draw it again")
    properties = feature.get("properties")
    properties = dict(properties) if isinstance(properties, dict) else {}
    for key in ("nome", "Name", "grupo"):
        properties.pop(key, None)
    properties["name"] = form.name
    properties["group"] = form.group.strip() or None
    limit = _speed_limit(form.speed_limit)
    if limit is None:
        properties.pop("speed_limit_kmh", None)
    else:
        properties["speed_limit_kmh"] = limit
    feature["properties"] = properties
    try:
        fences = parse_fences(json.dumps(feature), "geojson", source="form", group=None)
    except UsageError as exc:
        raise UsageError(str(exc).removeprefix("form: ")) from None
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        # Whatever slipped past the import's checks is still the input's fault.
        raise UsageError(f"shape: not a valid fence ({type(exc).__name__})") from None
    if len(fences) != 1:
        raise UsageError("shape: expected one fence")
    return fences[0]


def _require_unrestricted(web: WebContext) -> None:
    require_every_account(web, "fences", managers=True)


async def _page(
    request: Request,
    web: WebContext,
    *,
    form: FenceForm | None = None,
    error: str | None = None,
    message: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    rows = await web.in_db(list_fences)
    reader = await web.reader()
    counts: dict[str, int] = {}
    for r in await reader.rows("web_fence_visit_counts"):
        counts[str(r["fence"])] = counts.get(str(r["fence"]), 0) + int(r["visits"])
    fences = [row.fence for row in rows]
    drawn = [map_fence(f, counts.get(f.name, 0)) for f in fences]
    values = {
        "page": "geofences",
        "fences": fences,
        "updated": {row.fence.name: row.updated_at for row in rows},
        "counts": counts,
        "features": {f.name: json.dumps(f.feature(), separators=(",", ":")) for f in fences},
        "fences_json": script_json(drawn),
        "form": form or FenceForm(),
        "error": error,
        "message": message,
        "restricted": web.settings.web_accounts is not None
        or current_principal().role not in ("admin", "manager"),
    }
    return render(request, "geofences.html", values, status_code=status)


@router.get("/geofences", response_class=HTMLResponse)
async def geofences_page(request: Request, web: Web) -> Response:
    return await _page(request, web, message=request.session.pop(FLASH, None))


@router.post("/geofences")
async def geofences_save(
    request: Request,
    web: Web,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    group: Annotated[str, Form(max_length=200)] = "",
    speed_limit: Annotated[str, Form(max_length=40)] = "",
    feature: Annotated[str, Form(max_length=MAX_FEATURE_CHARS)] = "",
) -> Response:
    require_csrf(request, csrf)
    _require_unrestricted(web)
    form = FenceForm(name=name.strip(), group=group, speed_limit=speed_limit, feature=feature)
    try:
        fence = checked_fence(form)
    except UsageError as exc:
        return await _page(request, web, form=form, error=str(exc), status=400)

    def save(conn: db.Conn) -> tuple[UpsertCounts, list[str], bool]:
        had = speed_limited(conn, [fence.name])
        counts, changed = upsert_fences(conn, [fence])
        return counts, changed, bool(changed and (had or speed_limited(conn, [fence.name])))

    counts, changed, limits = await web.in_db(save)
    if counts.inserted:
        message = f"fence {fence.name} added"
    elif counts.updated:
        message = f"fence {fence.name} updated"
    else:
        message = f"fence {fence.name} unchanged"
    if changed:
        # Its visits over the whole stored history: jobs, never this request.
        try:
            job_ids = await queue_history_visits(await web.jobs.app(), events=limits)
        except SchemaNotCurrent as exc:
            message += f"; visits not queued: {exc}"
        else:
            if job_ids:
                message += f"; visits queued: {len(job_ids)} job(s)"
    flash(request, message)
    return RedirectResponse("/geofences", status_code=303)


@router.post("/geofences/delete")
async def geofences_delete(
    request: Request,
    web: Web,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    _require_unrestricted(web)
    if confirm != "1":
        # One click would lose the fence's visits over the whole history.
        raise HTTPException(400, "confirm: tick the box beside Delete to delete the fence")

    def delete(conn: db.Conn) -> tuple[list[str], bool]:
        limited = speed_limited(conn, [name])
        return delete_fences(conn, [name]), bool(limited)

    deleted, limits = await web.in_db(delete)
    if not deleted:
        raise HTTPException(404, f"no fence {name!r}")
    if limits:
        # Its overspeed events go back to the vehicles' own limits: jobs.
        with contextlib.suppress(SchemaNotCurrent):
            await queue_history_visits(await web.jobs.app(), events=True)
    flash(request, f"fence {name} deleted")
    return RedirectResponse("/geofences", status_code=303)
