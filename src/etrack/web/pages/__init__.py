"""The HTML pages: fleet map, vehicle day, fleet report, report schedules,
events, alert rules, geofences, fence visits, drivers, data browser, login,
users, audit, share links, jobs,
and the API's documentation (/docs, /openapi.json).

Pages are rendered on the server with what they show first (lists, tables,
figures); the maps and the chart are drawn by the page scripts from JSON
embedded in the page or fetched from /api. One module per page; this one only
puts their routes together, in this order.
"""

from __future__ import annotations

from fastapi import APIRouter

from etrack.web.pages import (
    audit,
    browser,
    docs,
    drivers,
    events,
    fleet,
    geofences,
    jobs,
    login,
    report,
    rules,
    schedules,
    shares,
    users,
    vehicle,
    visits,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
for _page in (
    fleet,
    vehicle,
    report,
    schedules,
    events,
    rules,
    geofences,
    visits,
    drivers,
    browser,
    login,
    users,
    audit,
    shares,
    jobs,
    docs,
):
    router.include_router(_page.router)
