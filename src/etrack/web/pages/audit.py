"""The Audit page (/audit, admins only): the newest audit rows, filtered by
actor, action prefix, period (local days of ETRAC_TIMEZONE) and failures,
and the same rows as CSV (/audit.csv) in either dialect
(etrack.reports.csvfile)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import HTMLResponse, Response

from etrack.reports.csvfile import default_dialect, section_csv
from etrack.reports.table import Column, Label, Section
from etrack.store.audit import AuditRow, list_audit
from etrack.web.api.common import DialectQuery, download_dialect
from etrack.web.deps import Web, WebContext, language
from etrack.web.inputs import day_or_error
from etrack.web.pages.render import render

__all__ = ["router"]

router = APIRouter()

PAGE_ROWS = 500
# The CSV is for an investigation: many more rows, still bounded.
CSV_ROWS = 100_000

Text = Annotated[str, Query(max_length=200)]


@dataclass(frozen=True, slots=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    since: str = ""
    until: str = ""
    failed: bool = False

    def query(self) -> str:
        parts = {
            "actor": self.actor,
            "action": self.action,
            "since": self.since,
            "until": self.until,
            "failed": "1" if self.failed else "",
        }
        return "&".join(f"{k}={quote(v, safe='')}" for k, v in parts.items() if v)


def compact(detail: dict[str, object]) -> str:
    """A row's detail as one short line: key=value, values as JSON."""
    return " ".join(
        f"{k}={v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)}"
        for k, v in sorted(detail.items())
    )


def _bounds(f: AuditFilter, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """Local days to instants; `until` includes its whole day."""
    since = datetime.combine(day_or_error(f.since, name="since"), time.min, tz) if f.since else None
    until = (
        datetime.combine(day_or_error(f.until, name="until") + timedelta(days=1), time.min, tz)
        if f.until
        else None
    )
    return since, until


async def _rows(web: WebContext, f: AuditFilter, limit: int) -> list[AuditRow]:
    since, until = _bounds(f, web.settings.tz)
    return await web.in_db(
        lambda conn: list_audit(
            conn,
            actor=f.actor.strip() or None,
            action=f.action.strip() or None,
            since=since,
            until=until,
            failed=True if f.failed else None,
            limit=limit,
        )
    )


def _filter(
    actor: Text = "", action: Text = "", since: Text = "", until: Text = "", failed: Text = ""
) -> AuditFilter:
    """The page's and the CSV's filter, from the same query parameters."""
    return AuditFilter(actor.strip(), action.strip(), since.strip(), until.strip(), failed == "1")


Filter = Annotated[AuditFilter, Depends(_filter)]


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request, web: Web, f: Filter) -> Response:
    rows = await _rows(web, f, PAGE_ROWS)
    query = f.query()
    dialect = default_dialect(language(request, web))
    values = {
        "page": "audit",
        "filter": f,
        "rows": [(row, compact(row.detail)) for row in rows],
        "limit": PAGE_ROWS,
        "csv_url": f"/audit.csv?{query + '&' if query else ''}dialect={dialect}",
    }
    return render(request, "audit.html", values)


COLUMNS = (
    Column("at", Label("Quando", "When"), "moment"),
    Column("actor", Label("Quem", "Actor"), "text"),
    Column("address", Label("Endereço", "Address"), "text"),
    Column("action", Label("Ação", "Action"), "text"),
    Column("target", Label("Alvo", "Target"), "text"),
    Column("ok", Label("OK", "OK"), "int"),
    Column("detail", Label("Detalhe", "Detail"), "text"),
)


@router.get("/audit.csv")
async def audit_csv(
    request: Request, web: Web, f: Filter, dialect: DialectQuery = None
) -> Response:
    rows = await _rows(web, f, CSV_ROWS)
    section = Section(
        "audit",
        Label("Auditoria", "Audit"),
        COLUMNS,
        tuple(
            {
                "at": r.at,
                "actor": r.actor,
                "address": r.address,
                "action": r.action,
                "target": r.target,
                "ok": int(r.ok),
                "detail": compact(r.detail),
            }
            for r in rows
        ),
    )
    lang = language(request, web)
    body = section_csv(section, web.settings.tz, download_dialect(request, dialect), lang)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )
