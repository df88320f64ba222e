"""Drivers and their working days (docs/drivers.md).

GET /api/drivers lists the drivers with their totals over a range of local
days (default: this month so far): working days, driving, working time,
violations. GET /api/drivers/{id}/days gives the working days themselves,
as `etrack drivers report --format json` does (one object per driver and
working day, dated by its start).

A driver belongs to no account, the vehicles they drove do: a server
limited to some accounts (ETRACK_WEB_ACCOUNTS, `?account=`) shows only the
working days with a trip on one of its vehicles, and only those trips.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from etrack.dates import range_error
from etrack.drivers.compute import JornadaParams, day_bounds, driver_days
from etrack.drivers.workday import DriverDay
from etrack.store import db
from etrack.store import drivers as store
from etrack.web.api.common import ERRORS, Problem, encoded
from etrack.web.days import today
from etrack.web.deps import Web
from etrack.web.inputs import day_or_error

__all__ = ["MAX_DRIVER_DAYS", "router", "visible_days"]

router = APIRouter()

MAX_DRIVER_DAYS = 366


def visible_days(
    days: list[DriverDay], visible: frozenset[str] | set[str] | None
) -> list[DriverDay]:
    """The days a limited server may show, their trips on its vehicles only."""
    if visible is None:
        return days
    shown: list[DriverDay] = []
    for day in days:
        mine = tuple(a for a in day.activities if a.placa in visible)
        if mine:
            shown.append(replace(day, activities=mine))
    return shown


def _range(reader_today: date, date_start: str | None, date_end: str | None) -> tuple[date, date]:
    first = (
        day_or_error(date_start, name="date_start") if date_start else reader_today.replace(day=1)
    )
    last = (
        day_or_error(date_end, name="date_end")
        if date_end
        else (reader_today if not date_start else first)
    )
    reversed_range = range_error(first, last, start="date_start", end="date_end")
    if reversed_range is not None:
        raise HTTPException(400, reversed_range)
    if (last - first).days + 1 > MAX_DRIVER_DAYS:
        raise HTTPException(400, f"the range may span at most {MAX_DRIVER_DAYS} days")
    return first, last


@router.get(
    "/api/drivers",
    tags=["drivers"],
    summary="Drivers with their totals over a range of local days",
    description=(
        "Every known driver with the working days starting in the range (default: this "
        "month so far): `days`, `driving_s`, `working_s`, `violations` (a count); plus the "
        "detected trips nobody is attributed to (`unattributed_trips`, `unattributed_s`)."
    ),
    responses=ERRORS,
)
async def drivers(
    web: Web,
    date_start: Annotated[str | None, Query(max_length=40, description="First local day")] = None,
    date_end: Annotated[str | None, Query(max_length=40, description="Last local day")] = None,
) -> object:
    reader = await web.reader()
    first, last = _range(today(reader), date_start, date_end)
    params = JornadaParams.from_settings(web.settings)
    visible = await reader.visible_plates()

    lo, hi = day_bounds(first, last, params.tz)

    def read(conn: db.Conn) -> tuple[list[store.DriverRow], list[DriverDay], tuple[int, float]]:
        return (
            store.list_drivers(conn),
            driver_days(conn, first, last, params),
            store.unattributed(conn, lo, hi, None if visible is None else sorted(visible)),
        )

    rows, days, (nobody_trips, nobody_s) = await web.in_db(read)
    shown = visible_days(days, visible)
    totals: dict[str, dict[str, float]] = {}
    for day in shown:
        total = totals.setdefault(
            day.driver_id, {"days": 0, "driving_s": 0.0, "working_s": 0.0, "violations": 0}
        )
        total["days"] += 1
        total["driving_s"] += day.driving_s
        total["working_s"] += day.working_s
        total["violations"] += len(day.violations)
    listed = [
        {
            **row.record(),
            **totals.get(row.id, {"days": 0, "driving_s": 0.0, "working_s": 0.0, "violations": 0}),
        }
        for row in rows
        if visible is None or row.id in totals
    ]
    return encoded(
        {
            "start": first,
            "end": last,
            "count": len(listed),
            "drivers": listed,
            "unattributed_trips": nobody_trips,
            "unattributed_s": nobody_s,
        }
    )


@router.get(
    "/api/drivers/{driver_id:path}/days",
    tags=["drivers"],
    summary="A driver's working days",
    description=(
        "The working days (jornadas) of the driver starting on the local days (default: this "
        "month so far), as `etrack drivers report --format json`: `driving_s`, `working_s`, "
        "`breaks_s`, `longest_driving_s`, `rest_before_s`, `violations` (rule, article, "
        "moment, excess)."
    ),
    responses={**ERRORS, 404: {"model": Problem, "description": "No such driver"}},
)
async def driver_days_api(
    web: Web,
    driver_id: Annotated[str, Path(max_length=200, description="The driver's id")],
    date_start: Annotated[str | None, Query(max_length=40, description="First local day")] = None,
    date_end: Annotated[str | None, Query(max_length=40, description="Last local day")] = None,
) -> object:
    reader = await web.reader()
    first, last = _range(today(reader), date_start, date_end)
    params = JornadaParams.from_settings(web.settings)
    visible = await reader.visible_plates()

    def read(conn: db.Conn) -> tuple[store.DriverRow | None, list[DriverDay]]:
        row = store.get_driver(conn, driver_id)
        if row is None:
            return None, []
        return row, driver_days(conn, first, last, params, [row.id])

    row, days = await web.in_db(read)
    shown = visible_days(days, visible)
    # A driver is in a limited scope when they drove one of its vehicles in
    # the range; any other is no business of it (404, as a vehicle).
    if row is None or (visible is not None and not shown):
        raise HTTPException(404, f"no driver {driver_id!r}")
    tz = params.tz
    return encoded(
        {
            "driver": row.record(),
            "start": first,
            "end": last,
            "count": len(shown),
            "days": [day.record(tz) for day in shown],
        }
    )
