"""What every page shares: the template values of the layout, the page
config its scripts read, JSON safe inside a page, and the error page."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from etrack.access.principal import Scope
from etrack.web import i18n
from etrack.web.deps import LANG_COOKIE, context, language
from etrack.web.exports import dumps
from etrack.web.scope import current_principal, selected_account
from etrack.web.security import csrf_token

__all__ = ["day_url", "error_page", "render", "script_json"]


def render(
    request: Request, template: str, values: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    web = context(request)
    lang = language(request, web)
    config = {
        "lang": lang,
        "tz": web.settings.etrac_timezone.key,
        "tileUrl": web.tile_url,
        "tileAttribution": web.tile_attribution,
        "messages": i18n.catalog(lang),
    }
    other = "en" if lang == "pt-BR" else "pt-BR"
    query = dict(request.query_params)
    query["lang"] = other
    who = current_principal()
    base = {
        "request": request,
        "lang": lang,
        "t": lambda key: i18n.translate(key, lang),
        # English text from other layers (errors, job summaries) in the page's language.
        "localize": lambda text: i18n.localize(text, lang),
        "plural": lambda count, word: i18n.plural(count, word, lang),
        "tz": web.settings.tz,
        "tz_name": web.settings.etrac_timezone.key,
        "scheduler": web.scheduler.describe(),
        "csrf_token": csrf_token(request),
        "logged_in": who.via == "session",
        "login_enabled": who.via != "local",
        "principal": who,
        "other_lang_url": f"{request.url.path}?{urlencode(query)}",
        "config_json": script_json(config),
        "account_names": visible_accounts(web.account_names(), who.scope),
        "selected_account": selected_account(),
        "page_path": request.url.path,
    }
    response = request.app.state.templates.TemplateResponse(
        request, template, {**base, **values}, status_code=status_code
    )
    if request.query_params.get("lang"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    assert isinstance(response, HTMLResponse)
    return response


def visible_accounts(names: list[str], scope: Scope) -> list[str]:
    """The account names a request may see: its scope's, none for a scope of
    fleets or plates only (the names would tell the other accounts')."""
    if scope.everything:
        return names
    if scope.accounts is None:
        return []
    return [n for n in names if n in scope.accounts]


def script_json(value: Any) -> str:
    """JSON safe inside <script type="application/json"> (no '</script>' possible)."""
    text = dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


STATUS_TITLES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "bad_request",
    422: "bad_request",
    500: "server_error_title",
    503: "unavailable_title",
}


def error_page(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    title = STATUS_TITLES.get(status)
    try:
        web = context(request)
        values = {
            "status": status,
            "message": message,
            "status_title": i18n.translate(title, language(request, web)) if title else "",
        }
        response: Response = render(request, "error.html", values, status_code=status)
    except Exception:
        # The error page itself must never fail (no session, no templates...).
        response = HTMLResponse(f"<h1>{status}</h1>", status_code=status)
    response.headers.update(headers or {})
    return response


def day_url(placa: str, day: date) -> str:
    return f"/vehicles/{placa}/{day.isoformat()}"
