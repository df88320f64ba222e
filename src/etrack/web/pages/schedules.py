"""The Schedules page (/reports/schedules, issue 19): the report schedules the
worker sends, with their periods queued, sent and failed, and the forms that
add, pause, resume and remove one: what `etrack reports schedule` does
(docs/reports.md), with exactly its checks (etrack.reports.schedules).

As on the Rules page, the store's functions are synchronous and schedules
are rarely edited: each action opens one short connection in a thread
(`web.in_db`). A schedule may cover any vehicle and mail anyone, so only a
server showing every account may change them (`require_every_account`); a
server limited to some accounts lists the schedules of its own plates only.

A webhook secret generated for a new schedule is shown once, on the answer
to the form itself (rendered, not redirected): it never goes into the
session cookie, the flash line or a log, and no page shows it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.alerts.rules import safe_target
from etrack.alerts.webhook import check_public_async
from etrack.dates import parse_plates
from etrack.errors import UsageError
from etrack.reports.csvfile import DIALECTS
from etrack.reports.kinds import KINDS
from etrack.reports.periods import EVERY
from etrack.reports.render import FORMATS
from etrack.reports.schedules import check_schedule, set_active, upcoming
from etrack.store.reports import (
    ScheduleRow,
    ScheduleSpec,
    add_schedule,
    get_schedule,
    list_schedules,
    remove_schedule,
)
from etrack.web import i18n
from etrack.web.deps import Web, WebContext, language, managed_plates, require_every_account
from etrack.web.pages.jobs import FLASH, flash, require_csrf
from etrack.web.pages.render import render
from etrack.web.scope import current_principal

__all__ = ["router"]

router = APIRouter()

PAGE = "/reports/schedules"
WHAT = "report schedules"


@dataclass(frozen=True, slots=True)
class ScheduleForm:
    """What the add form shows: empty at first, the values typed after a refusal."""

    kind: str = "fleet-summary"
    every: str = "daily"
    at: str = "07:00"
    to: str = ""
    webhook: str = ""
    formats: tuple[str, ...] = ("xlsx",)
    plates: str = ""
    fleet: str = ""
    by_day: bool = False
    csv_dialect: str = ""
    lang: str = "pt-BR"


@dataclass(frozen=True, slots=True)
class ScheduleView:
    """One row of the table, with nothing secret: the webhook as scheme, host
    and port (a path may hold a token), never the signing secret."""

    id: int
    kind: str
    every: str
    at: str
    timezone: str
    scope: str
    formats: str
    target: str
    active: bool
    queued: int
    sent: int
    failed: int
    last_error: str | None
    next_send: str


def _scope(row: ScheduleRow, lang: str) -> str:
    t = i18n.translate
    if row.plates:
        text = f"{t('schedule_plates', lang)} {', '.join(row.plates)}"
    elif row.fleet:
        text = f"{t('fleet', lang)} {row.fleet}"
    else:
        text = t("schedule_every_vehicle", lang)
    if row.account:
        text += f" ({t('account', lang)} {row.account})"
    if row.by_day:
        text += f"; {t('schedule_by_day', lang)}"
    return text


def _view(row: ScheduleRow, lang: str, now: datetime) -> ScheduleView:
    tz = ZoneInfo(row.timezone)
    next_at = ""
    if row.active:
        next_at = i18n.format_moment(upcoming(row, now), tz, lang, seconds=False)
    target = (
        ", ".join(row.emails) if row.emails else f"Webhook {safe_target(row.webhook_url or '')}"
    )
    return ScheduleView(
        id=row.id,
        kind=row.kind,
        every=row.every,
        at=f"{row.at_local:%H:%M}",
        timezone=row.timezone,
        scope=_scope(row, lang),
        formats=", ".join(f.upper() for f in row.formats),
        target=target,
        active=row.active,
        queued=row.queued,
        sent=row.sent,
        failed=row.failed,
        last_error=row.last_error,
        next_send=next_at,
    )


async def _visible(web: WebContext) -> frozenset[str] | None:
    """The plates the request's user may manage (etrack.web.deps.managed_plates)."""
    return await managed_plates(web)


def _may_see(row: ScheduleRow, visible: frozenset[str] | None) -> bool:
    # A schedule without plates (every vehicle, a fleet) reports on other
    # accounts' vehicles too: not for a limited server's users.
    if visible is None:
        return True
    return bool(row.plates) and set(row.plates or ()) <= visible


async def _page(
    request: Request,
    web: WebContext,
    *,
    form: ScheduleForm | None = None,
    error: str | None = None,
    message: str | None = None,
    secret: str | None = None,
    secret_schedule: int | None = None,
    status: int = 200,
) -> HTMLResponse:
    visible = await _visible(web)
    rows = await web.in_db(list_schedules)
    lang = language(request, web)
    now = datetime.now(UTC)
    values = {
        "page": "schedules",
        "schedules": [_view(r, lang, now) for r in rows if _may_see(r, visible)],
        "kinds": [(name, kind.title(lang)) for name, kind in KINDS.items()],
        "everies": EVERY,
        "formats": FORMATS,
        "dialects": DIALECTS,
        "form": form or ScheduleForm(lang=lang),
        "error": error,
        "message": message,
        "secret": secret,
        "secret_schedule": secret_schedule,
        "editable": web.settings.web_accounts is None and current_principal().may_write,
    }
    return render(request, "schedules.html", values, status_code=status)


async def _checked(web: WebContext, form: ScheduleForm) -> ScheduleSpec:
    """The schedule the form describes, checked as `etrack reports schedule
    add` checks it, or a UsageError saying what is wrong."""
    try:
        # Blank (or only commas) is no plate: every vehicle, as without --plates.
        given = form.plates if form.plates.replace(",", "").strip() else None
        plates = parse_plates(given, None) if given is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    spec = check_schedule(
        kind=form.kind,
        every=form.every,
        at=form.at,
        to=form.to.strip() or None,
        webhook=form.webhook.strip() or None,
        formats=",".join(form.formats),
        plates=plates,
        fleet=form.fleet.strip() or None,
        account=None,
        by_day=form.by_day,
        csv_dialect=form.csv_dialect or None,
        lang=form.lang,
        tz=web.settings.tz,
        now=datetime.now(UTC),
    )
    visible = await _visible(web)
    if visible is not None and not (spec.plates and set(spec.plates) <= visible):
        # As on the Rules page: a user limited to some vehicles reports on them only.
        raise UsageError(
            "plates: give the plates of your vehicles (not every vehicle, nor a fleet)"
        )
    if spec.webhook_url and web.settings.etrack_webhook_deny_private:
        refused = await check_public_async(spec.webhook_url)
        if refused is not None:
            raise UsageError(refused.message)
    return spec


@router.get(PAGE, response_class=HTMLResponse)
async def schedules_page(request: Request, web: Web) -> Response:
    return await _page(request, web, message=request.session.pop(FLASH, None))


@router.post(PAGE)
async def schedules_add(
    request: Request,
    web: Web,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    kind: Annotated[str, Form(max_length=40)] = "",
    every: Annotated[str, Form(max_length=20)] = "",
    at: Annotated[str, Form(max_length=20)] = "",
    to: Annotated[str, Form(max_length=2000)] = "",
    webhook: Annotated[str, Form(max_length=2000)] = "",
    formats: Annotated[list[str] | None, Form()] = None,
    plates: Annotated[str, Form(max_length=20000)] = "",
    fleet: Annotated[str, Form(max_length=200)] = "",
    by_day: Annotated[str, Form(max_length=10)] = "",
    csv_dialect: Annotated[str, Form(max_length=20)] = "",
    lang: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    _require_editable(web)
    form = ScheduleForm(
        kind=kind,
        every=every,
        at=at,
        to=to,
        webhook=webhook,
        formats=tuple(formats or ()),
        plates=plates,
        fleet=fleet,
        by_day=by_day == "1",
        csv_dialect=csv_dialect,
        lang=lang,
    )
    try:
        spec = await _checked(web, form)
    except UsageError as exc:
        # The CLI's words without its "--": the page names its fields so.
        return await _page(request, web, form=form, error=str(exc).removeprefix("--"), status=400)
    schedule_id, new = await web.in_db(lambda conn: add_schedule(conn, spec))
    if not new:
        flash(request, f"schedule {schedule_id} exists, unchanged")
        return RedirectResponse(PAGE, status_code=303)
    message = f"schedule {schedule_id} added"
    if spec.secret is not None:
        # Generated here: this answer is the only time it is shown. Rendered
        # rather than redirected, so it never sits in the session cookie.
        return await _page(
            request, web, message=message, secret=spec.secret, secret_schedule=schedule_id
        )
    flash(request, message)
    return RedirectResponse(PAGE, status_code=303)


def _require_editable(web: WebContext) -> None:
    if web.settings.web_accounts is not None:
        require_every_account(web, WHAT)


async def _schedule(web: WebContext, schedule_id: int) -> ScheduleRow:
    row = await web.in_db(lambda conn: get_schedule(conn, schedule_id))
    # Another scope's schedule does not exist for this user (404, as a vehicle).
    if row is None or not _may_see(row, await _visible(web)):
        raise HTTPException(404, f"no report schedule {schedule_id}")
    return row


@router.post(PAGE + "/{schedule_id}/active")
async def schedules_set_active(
    request: Request,
    web: Web,
    schedule_id: int,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    active: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    _require_editable(web)
    if active not in ("0", "1"):
        raise HTTPException(400, "active: expected 0 (pause) or 1 (resume)")
    row = await _schedule(web, schedule_id)
    on = active == "1"
    # A resumed schedule starts again with the period running now, as `resume` does.
    moment = datetime.now(UTC)
    if not await web.in_db(lambda conn: set_active(conn, row, on, moment)):
        raise HTTPException(404, f"no report schedule {schedule_id}")
    flash(request, f"schedule {row.id} {'resumed' if on else 'paused'}")
    return RedirectResponse(PAGE, status_code=303)


@router.post(PAGE + "/{schedule_id}/remove")
async def schedules_remove(
    request: Request,
    web: Web,
    schedule_id: int,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    _require_editable(web)
    row = await _schedule(web, schedule_id)
    if confirm != "1":
        # One click would lose the history of its periods and the webhook secret.
        raise HTTPException(400, "confirm: tick the box beside Remove to remove the schedule")
    if not await web.in_db(lambda conn: remove_schedule(conn, row.id)):
        raise HTTPException(404, f"no report schedule {schedule_id}")
    flash(request, f"schedule {row.id} removed")
    return RedirectResponse(PAGE, status_code=303)
