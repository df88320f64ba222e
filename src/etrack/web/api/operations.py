"""For operators and monitoring: /healthz (JSON) and /metrics (Prometheus)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.web.api.common import encoded
from etrack.web.deps import Web
from etrack.web.metrics import render_metrics
from etrack.web.reader import Reader

__all__ = ["router"]

router = APIRouter()


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when the database does not answer")
    database: dict[str, Any]
    newest_position: datetime | None = Field(description="Newest position held for any vehicle")
    newest_position_age_s: float | None
    last_fetch: datetime | None = Field(description="End of the last successful fetch-latest job")
    last_fetch_age_s: float | None
    scheduler: dict[str, Any]
    accounts: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each eTrac account: state (ok, failing, unknown), reason, vehicles, "
        "last successful fetch",
    )


def age_s(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 1)


@router.get(
    "/healthz",
    response_model=Health,
    tags=["operations"],
    summary="Database reachable, age of the data and of the last fetch, scheduler state",
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
async def healthz(web: Web) -> Response:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "status": "ok",
        "database": {"reachable": True},
        "newest_position": None,
        "newest_position_age_s": None,
        "last_fetch": None,
        "last_fetch_age_s": None,
        "scheduler": web.scheduler.describe(),
    }
    try:
        reader = await web.reader()
        body["database"]["latency_ms"] = round(1000 * await reader.ping(), 2)
        row = await reader.row("web_health") or {}
        body["accounts"] = await reader.account_states(web.account_names())
    except Exception as exc:
        # Whatever failed, the answer is the health report itself, never an error page.
        body["status"] = "degraded"
        body["database"] = {"reachable": False, "error": type(exc).__name__}
        return encoded(body, status_code=503)
    body["newest_position"] = row.get("newest_position")
    body["newest_position_age_s"] = age_s(row.get("newest_position"), now)
    body["last_fetch"] = row.get("last_fetch")
    body["last_fetch_age_s"] = age_s(row.get("last_fetch"), now)
    return encoded(body)


@router.get("/metrics", include_in_schema=False)
async def metrics(web: Web) -> Response:
    try:
        reader: Reader | None = await web.reader()
    except Exception:
        # The request counters are still worth a scrape.
        reader = None
    body = await render_metrics(web.metrics, reader, web.scheduler.state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
