"""Share links from the vehicle-day page: create one (its URL shown once, on
the answer to the form), list the day's live links and revoke one. The link
itself opens through /share/{token} (etrack.web.pages.login).

These answers are the vehicle page itself with its share block opened: the
block reads what this module puts in `request.state.share`, so the vehicle
page needs no query of its own for links nobody asked to see.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import RedirectResponse, Response

from etrack.access.users import create_share, revoke_share
from etrack.errors import UsageError
from etrack.store import users as store
from etrack.web.deps import Web, WebContext
from etrack.web.inputs import day_or_error, plate_or_error
from etrack.web.pages.jobs import FLASH, Csrf, flash, require_csrf
from etrack.web.pages.render import day_url
from etrack.web.pages.vehicle import vehicle_day
from etrack.web.scope import current_principal

__all__ = ["router"]

router = APIRouter()


def _may_share() -> None:
    if not current_principal().may_write:
        raise HTTPException(403, "read only: a viewer may not share links")


async def _visible(web: WebContext, plate: str, day: str) -> tuple[str, date]:
    """The plate and day, 404 for a vehicle out of the user's scope (the
    answer a vehicle that does not exist gets)."""
    placa = plate_or_error(plate)
    which = day_or_error(day, name="day")
    if not await (await web.reader()).can_see(placa):
        raise HTTPException(404, f"no vehicle {placa}")
    return placa, which


async def _live(web: WebContext, placa: str, day: date) -> list[store.ShareLink]:
    links = await web.in_db(lambda conn: store.list_shares(conn, placa, day))
    now = datetime.now(UTC)
    return [link for link in links if link.revoked_at is None and link.expires_at > now]


async def _vehicle_page(
    request: Request,
    web: WebContext,
    placa: str,
    day: date,
    *,
    url: str | None = None,
    message: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    share: dict[str, Any] = {
        "links": await _live(web, placa, day),
        "url": url,
        "message": message,
        "error": error,
    }
    request.state.share = share
    response = await vehicle_day(request, web, placa, day.isoformat())
    response.status_code = status
    return response


@router.get("/vehicles/{plate}/{day}/shares")
async def shares_page(request: Request, web: Web, plate: str, day: str) -> Response:
    _may_share()
    placa, which = await _visible(web, plate, day)
    return await _vehicle_page(request, web, placa, which, message=request.session.pop(FLASH, None))


@router.post("/vehicles/{plate}/{day}/share")
async def share_create(
    request: Request,
    web: Web,
    plate: str,
    day: str,
    csrf: Csrf = "",
    days: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    _may_share()
    placa, which = await _visible(web, plate, day)
    who = current_principal()
    try:
        lasting = int(days) if days.strip() else web.settings.etrack_share_link_days
    except ValueError:
        lasting = 0
    try:
        made = await web.in_db(
            lambda conn: create_share(conn, placa, which, days=lasting, created_by=who.name)
        )
    except UsageError as exc:
        return await _vehicle_page(request, web, placa, which, error=str(exc), status=400)
    # Rendered, not redirected: the URL is on this answer only, never in the
    # session cookie or a flash line.
    # ETRACK_PUBLIC_URL when set: the name the customer can reach (the
    # request's own may be a proxy's inside address).
    base = web.settings.etrack_web_public_url or str(request.base_url)
    url = f"{base.rstrip('/')}/share/{made.clear}"
    return await _vehicle_page(
        request, web, placa, which, url=url, message=f"share link {made.id} created"
    )


@router.post("/shares/{share_id}/revoke")
async def share_revoke(request: Request, web: Web, share_id: int, csrf: Csrf = "") -> Response:
    require_csrf(request, csrf)
    _may_share()
    link = await web.in_db(lambda conn: store.get_share(conn, share_id))
    reader = await web.reader()
    if link is None or not await reader.can_see(link.placa):
        raise HTTPException(404, f"no share link {share_id}")
    await web.in_db(lambda conn: revoke_share(conn, share_id))
    flash(request, f"share link {share_id} revoked")
    return RedirectResponse(f"{day_url(link.placa, link.rota_date)}/shares", status_code=303)
