"""The Rules page: the alert rules with their deliveries, and the forms that
add, test, pause, resume and remove one: what `etrack alerts` does
(docs/alerts.md, "Rules page"), with the same checks.

The store functions are synchronous and rules are rarely edited: each action
opens one short connection in a thread (`asyncio.to_thread`) instead of
duplicating their SQL over the async pool.

A webhook secret generated for a new rule is shown once, on the answer to
the form itself (rendered, not redirected): it never goes into the session
cookie, the flash line or a log.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from etrack.alerts.outcome import SendResult
from etrack.alerts.payload import synthetic_event
from etrack.alerts.rules import check_fences_exist, check_rule, safe_target
from etrack.alerts.send import send_alert
from etrack.alerts.webhook import check_public_async
from etrack.dates import parse_plates
from etrack.errors import UsageError
from etrack.events.detect import KINDS
from etrack.store.alerts import (
    RuleRow,
    RuleSpec,
    RuleSummary,
    add_rule,
    get_rule,
    list_rules,
    remove_rule,
    set_rule_active,
)
from etrack.web import i18n
from etrack.web.deps import Web, WebContext, language, managed_plates
from etrack.web.inputs import form_number
from etrack.web.pages.jobs import FLASH, flash, require_csrf
from etrack.web.pages.render import render

__all__ = ["router"]

router = APIRouter()
logger = logging.getLogger("etrack.web.rules")


# The plate of the made-up event a test sends for a rule without plates: the
# one `etrack alerts test` uses (etrack.cli.alerts.TEST_PLATE; the web layer
# does not import the CLI).
TEST_PLATE = "TST0000"


@dataclass(frozen=True, slots=True)
class RuleForm:
    """What the add form shows: empty at first, the values typed after a
    refusal. Never the secret: it is typed again rather than put in a page."""

    name: str = ""
    kinds: tuple[str, ...] = ()
    plates: str = ""
    fleet: str = ""
    fences: str = ""
    min_value: str = ""
    channel: str = "webhook"
    webhook: str = ""
    emails: str = ""


@dataclass(frozen=True, slots=True)
class RuleView:
    """One row of the rules table, with nothing secret: the webhook as
    scheme, host and port (a path may hold a token), no signing secret."""

    name: str
    kinds: tuple[str, ...]
    scope: tuple[str, ...]
    channel: str
    target: str
    created_at: datetime
    active: bool
    queued: int
    sent: int
    failed: int
    last_error: str | None


async def _allowed_plates(web: WebContext) -> frozenset[str] | None:
    """The plates the request's user may manage (etrack.web.deps.managed_plates)."""
    return await managed_plates(web)


def _may_see(rule: RuleRow, visible: frozenset[str] | None) -> bool:
    """A user limited to some accounts sees the rules of their vehicles only:
    a rule without plates (every vehicle, a fleet) may send other accounts'
    events, so it is not theirs to see or change."""
    if visible is None:
        return True
    return rule.plates is not None and bool(rule.plates) and set(rule.plates) <= visible


def _number(value: float, lang: str) -> str:
    return i18n.format_number(value, 0 if value.is_integer() else 1, lang)


def _view(summary: RuleSummary, lang: str) -> RuleView:
    rule = summary.rule
    scope: list[str] = []
    if rule.plates:
        scope.append(f"{i18n.translate('rule_plates', lang)} {', '.join(rule.plates)}")
    if rule.fleets:
        scope.append(f"{i18n.translate('rule_fleet', lang)} {', '.join(rule.fleets)}")
    if not scope:
        scope.append(i18n.translate("rule_every_vehicle", lang))
    if rule.fences:
        scope.append(f"{i18n.translate('rule_fences', lang)} {', '.join(rule.fences)}")
    if rule.min_value is not None:
        scope.append(
            f"{i18n.translate('rule_value_at_least', lang)} {_number(rule.min_value, lang)}"
        )
    if rule.channel == "webhook" and rule.url is not None:
        target = safe_target(rule.url)
    else:
        target = ", ".join(rule.emails or ())
    return RuleView(
        name=rule.name,
        kinds=rule.kinds,
        scope=tuple(scope),
        channel=rule.channel,
        target=target,
        created_at=rule.created_at,
        active=rule.active,
        queued=summary.queued,
        sent=summary.sent,
        failed=summary.failed,
        last_error=summary.last_error,
    )


async def _page(
    request: Request,
    web: WebContext,
    *,
    form: RuleForm | None = None,
    error: str | None = None,
    message: str | None = None,
    secret: str | None = None,
    secret_rule: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    visible = await _allowed_plates(web)
    summaries = await web.in_db(list_rules)
    lang = language(request, web)
    values = {
        "page": "rules",
        "rules": [_view(s, lang) for s in summaries if _may_see(s.rule, visible)],
        "kinds": KINDS,
        "form": form or RuleForm(),
        "error": error,
        "message": message,
        "secret": secret,
        "secret_rule": secret_rule,
        "restricted": visible is not None,
    }
    return render(request, "rules.html", values, status_code=status)


async def _visible_rule(web: WebContext, name: str) -> RuleRow:
    """The rule of that name if this user may see it; 404 otherwise (the same
    answer for a rule that exists out of their scope: nothing to learn)."""
    rule = await web.in_db(lambda conn: get_rule(conn, name))
    visible = await _allowed_plates(web)
    if rule is None or not _may_see(rule, visible):
        raise HTTPException(404, f"no alert rule {name!r}")
    return rule


def _min_value(text: str) -> float | None:
    value = form_number(text)
    if value is None:
        return None
    if not math.isfinite(value):
        raise UsageError(f"min value: expected a number, got {text!r}")
    return value


async def _checked_rule(
    web: WebContext, form: RuleForm, secret: str | None, visible: frozenset[str] | None
) -> RuleSpec:
    """The rule the form describes, checked as `etrack alerts add` checks it,
    or a UsageError saying what is wrong."""
    try:
        # Blank (or only commas) is no plate: every vehicle, as without --plates.
        given = form.plates if form.plates.replace(",", "").strip() else None
        plates = parse_plates(given, None) if given is not None else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    rule = check_rule(
        name=form.name,
        kinds=",".join(form.kinds),
        known_kinds=KINDS,
        plates=plates,
        fleets=form.fleet.strip() or None,
        # Blank is no fence (any), as without --fence; only commas is refused.
        fences=form.fences if form.fences.strip() else None,
        min_value=_min_value(form.min_value),
        # The channel picked decides which of the two fields counts: the
        # other may keep what was typed before switching.
        webhook=form.webhook.strip() if form.channel == "webhook" else None,
        secret=secret,
        emails=form.emails if form.channel == "email" else None,
    )
    if visible is not None:
        if not rule.plates:
            raise UsageError(
                "plates: give the rule's plates (you see the vehicles of some accounts only)"
            )
        if any(placa not in visible for placa in rule.plates):
            raise UsageError("plates: some of these vehicles are not visible to you")
    if rule.url is not None and web.settings.etrack_webhook_deny_private:
        refused = await check_public_async(rule.url)
        if refused is not None:
            raise UsageError(refused.message)
    if rule.fences is not None:
        fences = rule.fences
        await web.in_db(lambda conn: check_fences_exist(conn, fences))
    return rule


@router.get("/rules", response_class=HTMLResponse)
async def rules_page(request: Request, web: Web) -> Response:
    return await _page(request, web, message=request.session.pop(FLASH, None))


@router.post("/rules")
async def rules_add(
    request: Request,
    web: Web,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    kinds: Annotated[list[str] | None, Form()] = None,
    plates: Annotated[str, Form(max_length=20000)] = "",
    fleet: Annotated[str, Form(max_length=2000)] = "",
    fences: Annotated[str, Form(max_length=20000)] = "",
    min_value: Annotated[str, Form(max_length=40)] = "",
    channel: Annotated[str, Form(max_length=20)] = "",
    webhook: Annotated[str, Form(max_length=2000)] = "",
    secret: Annotated[str, Form(max_length=500)] = "",
    emails: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    require_csrf(request, csrf)
    form = RuleForm(
        name=name.strip(),
        kinds=tuple(kinds or ()),
        plates=plates,
        fleet=fleet,
        fences=fences,
        min_value=min_value,
        channel=channel,
        webhook=webhook,
        emails=emails,
    )
    visible = await _allowed_plates(web)
    try:
        rule = await _checked_rule(web, form, secret.strip() or None, visible)
    except UsageError as exc:
        # The CLI's words without its "--": the page names its fields so.
        return await _page(request, web, form=form, error=str(exc).removeprefix("--"), status=400)
    added = await web.in_db(
        lambda conn: add_rule(conn, rule),
    )
    if not added:
        error = f"alert rule {rule.name!r} exists: remove it first to change it"
        if visible is not None:
            # Whether a rule out of this user's sight holds the name is not theirs to learn.
            error = f"name: {rule.name!r} is not available, choose another"
        return await _page(request, web, form=form, error=error, status=400)
    message = f"rule {rule.name} added"
    if rule.secret is not None and not secret.strip():
        # Generated here: this answer is the only time it is shown. Rendered
        # rather than redirected, so it never sits in the session cookie.
        return await _page(request, web, message=message, secret=rule.secret, secret_rule=rule.name)
    flash(request, message)
    return RedirectResponse("/rules", status_code=303)


@router.post("/rules/{name}/remove")
async def rules_remove(
    request: Request,
    web: Web,
    name: str,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    rule = await _visible_rule(web, name)
    if confirm != "1":
        # One click would lose the delivery history and the webhook secret.
        raise HTTPException(400, "confirm: tick the box beside Remove to remove the rule")
    if not await web.in_db(lambda conn: remove_rule(conn, rule.name)):
        raise HTTPException(404, f"no alert rule {name!r}")
    flash(request, f"rule {rule.name} removed")
    return RedirectResponse("/rules", status_code=303)


@router.post("/rules/{name}/active")
async def rules_set_active(
    request: Request,
    web: Web,
    name: str,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
    active: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    require_csrf(request, csrf)
    if active not in ("0", "1"):
        raise HTTPException(400, "active: expected 0 (pause) or 1 (resume)")
    rule = await _visible_rule(web, name)
    on = active == "1"
    if not await web.in_db(lambda conn: set_rule_active(conn, rule.name, on)):
        raise HTTPException(404, f"no alert rule {name!r}")
    flash(request, f"rule {rule.name} {'resumed' if on else 'paused'}")
    return RedirectResponse("/rules", status_code=303)


@router.post("/rules/{name}/test")
async def rules_test(
    request: Request,
    web: Web,
    name: str,
    csrf: Annotated[str, Form(alias="csrf_token", max_length=200)] = "",
) -> Response:
    """What `etrack alerts test` does: a made-up event sent now, outside the
    bookkeeping; the flash line says how it went."""
    require_csrf(request, csrf)
    rule = await _visible_rule(web, name)
    event = synthetic_event(rule.kinds[0], rule.plates[0] if rule.plates else TEST_PLATE)
    try:
        result = await send_alert(rule, event, web.settings, test=True)
    except Exception as exc:
        # As in the delivery job: a channel's unforeseen error (smtplib's
        # UnicodeEncodeError for a non-ASCII password) is a failed test, told
        # by its type only (its text could carry the password).
        logger.warning("test of alert rule %s: unexpected %s", rule.name, type(exc).__name__)
        result = SendResult(ok=False, error=f"unexpected {type(exc).__name__} while sending")
    flash(request, f"test of rule {rule.name}: {result.line()}")
    return RedirectResponse("/rules", status_code=303)
