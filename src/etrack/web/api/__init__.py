"""The JSON API under /api (OpenAPI at /api/openapi.json), and /healthz and
/metrics. Handlers only wire: parse the input (etrack.web.inputs), read
(etrack.web.reader / days / reports), encode. One module per resource; this
one only puts their routes together, in this order (the OpenAPI document's).
"""

from __future__ import annotations

from fastapi import APIRouter

from etrack.web.api import (
    days,
    drivers,
    events,
    geofences,
    jobs,
    operations,
    positions,
    reports,
    summaries,
    vehicles,
)

__all__ = ["router"]

router = APIRouter()
for _resource in (
    vehicles,
    positions,
    days,
    summaries,
    reports,
    events,
    geofences,
    drivers,
    operations,
    jobs,
):
    router.include_router(_resource.router)
