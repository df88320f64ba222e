"""For operators and monitoring: /healthz (JSON) and /metrics (Prometheus).

/healthz answers 503, with the reasons in `reasons`, while the database does
not answer, while this process's embedded scheduler is not running (it waits
for the database, or failed), or when the last successful fetch of latest
positions (by any worker) is older than three ticks of ETRACK_FETCH_CRON:
collection has stopped somewhere. Otherwise 200 with status "ok".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from croniter import croniter  # type: ignore[import-untyped]  # ships no type hints
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.responses import Response

from etrack.config import Settings
from etrack.jobs.tasks import local_cron_to_utc
from etrack.web.api.common import encoded
from etrack.web.deps import Web
from etrack.web.metrics import render_metrics
from etrack.web.reader import Reader

__all__ = ["STALE_AFTER_TICKS", "fetch_overdue_since", "router"]

router = APIRouter()

# A fetch may fail now and then (the API had a bad minute): three missed ticks
# in a row mean collection has stopped.
STALE_AFTER_TICKS = 3


class Health(BaseModel):
    status: str = Field(
        description="ok, or degraded when the database does not answer, the scheduler is "
        "down or the last fetch is too old (see reasons)"
    )
    reasons: list[str] = Field(
        default_factory=list, description="Why the status is degraded; empty when ok"
    )
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


def fetch_overdue_since(settings: Settings, last_fetch: datetime) -> datetime:
    """When a fetch that succeeded at `last_fetch` is too old: three fetch
    intervals later. Intervals are ticks of ETRACK_FETCH_CRON as the worker
    reads it (in UTC): from the tick that run belonged to to the third tick
    after it, so a cron that pauses at night does not look stale at night."""
    cron = local_cron_to_utc(settings.etrack_fetch_cron, settings.tz)
    moment = last_fetch.astimezone(UTC)
    ticks = croniter(cron, moment)
    # The run that finished at `last_fetch` started at its tick, at or before it.
    tick = datetime.fromtimestamp(ticks.get_prev(float), UTC)
    ticks = croniter(cron, tick)
    for _ in range(STALE_AFTER_TICKS):
        later = datetime.fromtimestamp(ticks.get_next(float), UTC)
    return moment + (later - tick)


def health_reasons(
    body: dict[str, Any], settings: Settings, scheduler_down: bool, now: datetime
) -> list[str]:
    reasons = []
    if scheduler_down:
        state = body["scheduler"]
        detail = f": {state['reason']}" if state.get("reason") else ""
        reasons.append(f"scheduler {state['state']}{detail}")
    last_fetch = body.get("last_fetch")
    # No fetch yet (a new installation) is not stale: there is nothing to compare.
    if isinstance(last_fetch, datetime) and now > fetch_overdue_since(settings, last_fetch):
        reasons.append(
            f"last successful fetch of latest positions {age_s(last_fetch, now):.0f} s ago, "
            f"more than {STALE_AFTER_TICKS} ticks of ETRACK_FETCH_CRON "
            f"({settings.etrack_fetch_cron})"
        )
    return reasons


@router.get(
    "/healthz",
    response_model=Health,
    tags=["operations"],
    summary="Database reachable, age of the data and of the last fetch, scheduler state",
    responses={
        503: {
            "model": Health,
            "description": "The database does not answer, the scheduler is down or the last "
            "fetch is too old (see reasons)",
        }
    },
)
async def healthz(web: Web) -> Response:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "status": "ok",
        "reasons": [],
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
        body["reasons"] = [
            "database unreachable",
            *health_reasons(body, web.settings, web.scheduler.down, now),
        ]
        return encoded(body, status_code=503)
    body["newest_position"] = row.get("newest_position")
    body["newest_position_age_s"] = age_s(row.get("newest_position"), now)
    body["last_fetch"] = row.get("last_fetch")
    body["last_fetch_age_s"] = age_s(row.get("last_fetch"), now)
    body["reasons"] = health_reasons(body, web.settings, web.scheduler.down, now)
    if body["reasons"]:
        body["status"] = "degraded"
        return encoded(body, status_code=503)
    return encoded(body)


@router.get("/metrics", include_in_schema=False)
async def metrics(web: Web) -> Response:
    try:
        reader: Reader | None = await web.reader()
    except Exception:
        # The request counters are still worth a scrape.
        reader = None
    # Paces by account name, only the accounts this server shows: /metrics is
    # open without a login, and the logins (e-mails) stay out of it.
    allowed = web.settings.web_accounts
    logins = {
        name: login
        for name, login in web.account_logins().items()
        if allowed is None or name in allowed
    }
    body = await render_metrics(web.metrics, reader, web.scheduler.state, logins)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
