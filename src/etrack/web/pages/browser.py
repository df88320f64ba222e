"""The data browser: the stored tables (terminals, positions, trips, routes)
paged by their natural key, and one row in full."""

from __future__ import annotations

import json
from datetime import date, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import HTMLResponse, Response

from etrack.web import i18n
from etrack.web.deps import Web, language
from etrack.web.exports import dumps
from etrack.web.inputs import plate_or_error
from etrack.web.pages.render import render

__all__ = ["RESOURCES", "router"]

router = APIRouter()

DB_PAGE = 100

RESOURCES: dict[str, dict[str, Any]] = {
    "terminals": {
        "list": "web_db_terminals",
        "of_plate": None,
        "detail": "web_db_terminal",
        "key": None,
        "key_kind": None,
    },
    "positions": {
        "list": "web_db_positions",
        "of_plate": "web_db_positions_of_plate",
        "detail": "web_db_position",
        "key": "data_transmissao",
        "key_kind": "timestamptz",
    },
    "trips": {
        "list": "web_db_trips",
        "of_plate": "web_db_trips_of_plate",
        "detail": "web_db_trip",
        "key": "data_inicio_conducao",
        "key_kind": "timestamptz",
    },
    "routes": {
        "list": "web_db_routes",
        "of_plate": "web_db_routes_of_plate",
        "detail": "web_db_route",
        "key": "rota_date",
        "key_kind": "date",
    },
}


def row_id(resource: str, row: dict[str, Any]) -> str:
    """`PLATE` or `PLATE@KEY` (KEY an ISO timestamp or date): the row's natural key."""
    key = RESOURCES[resource]["key"]
    if key is None:
        return str(row["placa"])
    value = row[key]
    return f"{row['placa']}@{value.isoformat()}"


def parse_row_id(resource: str, text: str) -> tuple[str, Any]:
    spec = RESOURCES[resource]
    placa_text, _, key_text = text.partition("@")
    placa = plate_or_error(placa_text, name="id")
    if spec["key"] is None:
        return placa, None
    try:
        if spec["key_kind"] == "date":
            return placa, date.fromisoformat(key_text)
        moment = datetime.fromisoformat(key_text)
    except ValueError:
        raise HTTPException(
            422, f"id: expected PLATE@{spec['key_kind']} (ISO 8601), got {text[:60]!r}"
        ) from None
    if moment.tzinfo is None:
        raise HTTPException(422, "id: expected the time with its UTC offset")
    return placa, moment


def resource_or_404(resource: str) -> dict[str, Any]:
    spec = RESOURCES.get(resource)
    if spec is None:
        raise HTTPException(404, f"no table {resource!r}; tables: {', '.join(RESOURCES)}")
    return spec


@router.get("/db", response_class=HTMLResponse)
async def db_index(request: Request) -> Response:
    return render(request, "db_index.html", {"page": "db", "resources": list(RESOURCES)})


@router.get("/db/{resource}", response_class=HTMLResponse)
async def db_table(
    request: Request,
    web: Web,
    resource: str,
    plate: Annotated[str | None, Query(max_length=20)] = None,
    after: Annotated[str | None, Query(max_length=80)] = None,
) -> Response:
    spec = resource_or_404(resource)
    placa = plate_or_error(plate) if plate else None
    after_placa, after_key = "", None
    if after:
        after_placa, after_key = parse_row_id(resource, after)
    args: dict[str, Any] = {
        "limit": DB_PAGE + 1,
        "after_placa": after_placa,
        "after_key": after_key.isoformat() if after_key is not None else "-infinity",
        "placa": placa,
    }
    name = spec["list"]
    if placa and spec["of_plate"]:
        name = spec["of_plate"]
    rows = await (await web.reader()).rows(name, args)
    tz, lang = web.settings.tz, language(request, web)
    more = len(rows) > DB_PAGE
    rows = rows[:DB_PAGE]
    next_url = None
    if more and rows:
        next_query = {"after": row_id(resource, rows[-1])}
        if placa:
            next_query["plate"] = placa
        next_url = f"/db/{resource}?{urlencode(next_query)}"
    return render(
        request,
        "db_table.html",
        {
            "page": "db",
            "resource": resource,
            "resources": list(RESOURCES),
            "columns": list(rows[0].keys()) if rows else [],
            "rows": [
                (quote(row_id(resource, r), safe="@"), [shown(v, tz, lang) for v in r.values()])
                for r in rows
            ],
            "plate": placa or "",
            "next_url": next_url,
            "first_url": f"/db/{resource}" + (f"?plate={placa}" if placa else ""),
        },
    )


@router.get("/db/{resource}/{row}", response_class=HTMLResponse)
async def db_row(request: Request, web: Web, resource: str, row: str) -> Response:
    spec = resource_or_404(resource)
    placa, key = parse_row_id(resource, row)
    args = {"placa": placa, "key": key.isoformat() if key is not None else None}
    found = await (await web.reader()).row(spec["detail"], args)
    if found is None:
        raise HTTPException(404, f"no {resource} row {row}")
    tz, lang = web.settings.tz, language(request, web)
    fields = [(name, pretty(value, tz, lang)) for name, value in found.items()]
    return render(
        request,
        "db_row.html",
        {"page": "db", "resource": resource, "row_id": row, "fields": fields},
    )


def shown(value: Any, tz: tzinfo, lang: str) -> str:
    """A stored value as the browser's table shows it: instants in
    ETRAC_TIMEZONE (the database answers in UTC), days and booleans in the
    UI's language (Sim/Não)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return i18n.translate("yes" if value else "no", lang)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return str(value)
        return i18n.format_moment(value, tz, lang, seconds=True)
    if isinstance(value, date):
        return i18n.format_day(value, lang)
    if isinstance(value, dict | list):
        # JSON, not a Python repr.
        return dumps(value).decode()
    return str(value)


def pretty(value: Any, tz: tzinfo, lang: str) -> str:
    if isinstance(value, dict | list):
        return dumps(value).decode() if len(str(value)) > 2000 else _indent(value)
    return shown(value, tz, lang)


def _indent(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
