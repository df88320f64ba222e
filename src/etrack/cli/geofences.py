"""`etrack geofences import|list|export|delete|visits-compute` and `etrack
visits`: fences and the visits vehicles paid them (docs/geofences.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Annotated, Any

import typer

from etrack.cli.common import (
    AllPlatesOpt,
    DateOpt,
    RangeEndOpt,
    RangeStartOpt,
    database,
    echo_summary,
    read_days,
    read_plates,
    records_csv,
    require_known_plates,
    settings,
    summary_printed_here,
)
from etrack.errors import UsageError
from etrack.events.compute import compute_events
from etrack.events.params import EventParams
from etrack.geofences.compute import VisitParams, VisitsSummary, compute_visits
from etrack.geofences.imports import read_fences
from etrack.jobs.visits import history_days, month_chunks
from etrack.model import Fence
from etrack.store import db
from etrack.store.geofences import (
    VisitRow,
    delete_fences,
    list_fences,
    list_visits,
    speed_limited,
    upsert_fences,
)

__all__ = [
    "feature_collection",
    "fence_record",
    "geofences_app",
    "register",
    "render_fences",
    "render_visits",
]

geofences_app = typer.Typer(
    help="Geofences: customer sites and areas (import, list, export, delete) and their visits.",
    no_args_is_help=True,
)

FENCE_FORMATS = ("table", "json")
VISIT_FORMATS = ("table", "json", "csv")
# `etrack geofences list --format json`: each object's keys, in this order.
FENCE_FIELDS = ("name", "kind", "group", "radius_m", "geometry", "speed_limit_kmh")
# `etrack visits --format json|csv`: the objects' keys and the CSV's columns (issue 17).
VISIT_FIELDS = ("id", "placa", "fence", "arrive_ts", "depart_ts", "dwell_s")


# ------------------------------------------------------------------ fences
def fence_record(fence: Fence) -> dict[str, Any]:
    """A fence as `geofences list --format json` shows it: `radius_m` is a
    circle's radius or a corridor's buffer (half-width), null for a polygon."""
    return {
        "name": fence.name,
        "kind": fence.kind,
        "group": fence.group,
        "radius_m": fence.radius_m,
        "geometry": fence.geometry,
        "speed_limit_kmh": fence.speed_limit_kmh,
    }


def feature_collection(fences: Sequence[Fence]) -> dict[str, Any]:
    """The fences as the GeoJSON FeatureCollection `import` reads back."""
    return {"type": "FeatureCollection", "features": [f.feature() for f in fences]}


def _where(fence: Fence) -> str:
    """A short description of the shape for the table."""
    geometry = fence.geometry
    if fence.kind == "circle":
        lon, lat = geometry["coordinates"][:2]
        return f"centre {lat:.6f}, {lon:.6f}"
    if fence.kind == "corridor":
        return f"line of {len(geometry['coordinates'])} points"
    rings = (
        geometry["coordinates"]
        if geometry["type"] == "Polygon"
        else [ring for polygon in geometry["coordinates"] for ring in polygon]
    )
    corners = sum(max(len(ring) - 1, 0) for ring in rings)
    parts = "" if geometry["type"] == "Polygon" else f"{len(geometry['coordinates'])} parts, "
    return f"{parts}{corners} corners"


def render_fences(fences: Sequence[Fence], output: str) -> str:
    if output == "json":
        return json.dumps([fence_record(f) for f in fences], ensure_ascii=False, indent=2) + "\n"
    if not fences:
        return "no geofences\n"
    width = max(len("name"), *(len(f.name) for f in fences))
    lines = [f"{'name':<{width}} {'kind':<8} {'group':<14} {'radius m':>9} {'km/h':>5}  shape"]
    for f in fences:
        radius = "" if f.radius_m is None else f"{f.radius_m:.0f}"
        speed = "" if f.speed_limit_kmh is None else f"{f.speed_limit_kmh:.0f}"
        lines.append(
            f"{f.name:<{width}} {f.kind:<8} {f.group or '':<14} {radius:>9} {speed:>5}  {_where(f)}"
        )
    lines.append(f"{len(fences)} geofences")
    return "\n".join(lines) + "\n"


def _compute(
    target: db.Target,
    plates: list[str] | None,
    first: date,
    last: date,
    params: VisitParams,
    events: EventParams | None = None,
) -> VisitsSummary:
    """The visits of the days, and with `events` their events too (a fence's
    speed limit changed: the overspeed events follow)."""
    # A month at a time, as the background jobs do: the whole history of a
    # fleet never sits in memory at once.
    total = VisitsSummary()
    with summary_printed_here("etrack.geofences", "etrack.events"):
        for month_first, month_last in month_chunks(first, last):
            total.add(compute_visits(target, plates, month_first, month_last, params))
            if events is not None:
                compute_events(target, plates, month_first, month_last, events)
    return total


@geofences_app.command("import")
def geofences_import(
    file: Annotated[
        Path, typer.Argument(help="A .geojson/.json, .kml or .csv/.txt file of fences.")
    ],
    group: Annotated[
        str | None,
        typer.Option("--group", help="Group of the fences that do not name their own."),
    ] = None,
    no_visits: Annotated[
        bool,
        typer.Option("--no-visits", help="Store the fences only; compute their visits later."),
    ] = False,
) -> None:
    """Import fences (upsert by name), then compute their visits over the stored history.

    A second import of the same file changes nothing and computes nothing.
    """
    fences = read_fences(file, group=group)
    for fence in fences:
        # JSON may spell it (\u0000); PostgreSQL text cannot hold it.
        if "\x00" in fence.name or "\x00" in (fence.group or ""):
            raise UsageError(
                f"{file.name}: {fence.name!r}: a name or group may not contain the NUL character"
            )
    current = settings()
    params = VisitParams.from_settings(current)
    target = database()
    names = [fence.name for fence in fences]
    with db.connection(target) as conn:
        had = speed_limited(conn, names)
        counts, changed = upsert_fences(conn, fences)
        limits = bool(set(changed) & (had | speed_limited(conn, names)))
    echo_summary(
        f"geofences: {counts.inserted} new, {counts.updated} updated, "
        f"{counts.unchanged} unchanged ({file.name})"
    )
    if no_visits:
        return
    if not changed:
        echo_summary("visits: no fence changed, nothing to compute")
        return
    days = history_days(target, params)
    if days is None:
        echo_summary("visits: no valid positions stored, nothing to compute")
        return
    events = EventParams.from_settings(current) if limits else None
    echo_summary(_compute(target, None, days[0], days[1], params, events).line())


@geofences_app.command("list")
def geofences_list(
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """List the stored fences."""
    if output not in FENCE_FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FENCE_FORMATS)}, got {output!r}")
    with db.connection(database()) as conn:
        fences = [row.fence for row in list_fences(conn)]
    typer.echo(render_fences(fences, output), nl=False)


@geofences_app.command("export")
def geofences_export(
    output: Annotated[
        Path | None,
        typer.Option("--output", help="Write the GeoJSON to this file (default: stdout)."),
    ] = None,
) -> None:
    """Every fence as a GeoJSON FeatureCollection, as `import` reads it back."""
    with db.connection(database()) as conn:
        fences = [row.fence for row in list_fences(conn)]
    text = json.dumps(feature_collection(fences), ensure_ascii=False, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None
    echo_summary(f"geofences: {len(fences)} exported to {output}")


@geofences_app.command("delete")
def geofences_delete(
    names: Annotated[list[str], typer.Argument(help="Names of the fences to delete.")],
) -> None:
    """Delete fences with their visits and enter/exit events (all or none)."""
    wanted = list(dict.fromkeys(names))
    target = database()
    with db.connection(target) as conn, conn.transaction():
        limited = speed_limited(conn, wanted)
        known = {row.fence.name for row in list_fences(conn, wanted)}
        unknown = [name for name in wanted if name not in known]
        if not unknown:
            deleted = delete_fences(conn, wanted)
            # Another process deleted one meanwhile: the transaction rolls back.
            unknown = [name for name in wanted if name not in deleted]
        if unknown:
            which = "geofence" if len(unknown) == 1 else "geofences"
            raise UsageError(
                f"unknown {which} {', '.join(repr(n) for n in unknown)}: nothing deleted "
                "(etrack geofences list shows the names)"
            )
    echo_summary(f"geofences: {len(deleted)} deleted ({', '.join(deleted)}), with their visits")
    if limited:
        # Their overspeed events go back to the vehicles' own limits.
        current = settings()
        days = history_days(target, VisitParams.from_settings(current))
        if days is not None:
            with summary_printed_here("etrack.events"):
                for first, last in month_chunks(*days):
                    compute_events(target, None, first, last, EventParams.from_settings(current))
            echo_summary(
                f"events: recomputed {days[0]}..{days[1]} without the speed limit of "
                f"{', '.join(sorted(limited))}"
            )


@geofences_app.command("visits-compute")
def geofences_visits_compute(
    date: DateOpt = None,
    date_start: RangeStartOpt = None,
    date_end: RangeEndOpt = None,
    plates: AllPlatesOpt = None,
) -> None:
    """Compute and store the visits of the days (default: the whole stored history)."""
    current = settings()
    params = VisitParams.from_settings(current)
    chosen = read_plates(plates, None)
    target = database()
    require_known_plates(target, chosen)
    if date is None and date_start is None and date_end is None:
        days = history_days(target, params)
        if days is None:
            echo_summary("visits: no valid positions stored, nothing to compute")
            return
        first, last = days
    else:
        given = read_days(date, date_start, date_end, default=datetime.now(current.tz).date())
        first, last = given[0], given[-1]
    echo_summary(_compute(target, chosen, first, last, params).line())


# ------------------------------------------------------------------ visits
def render_visits(rows: Sequence[VisitRow], output: str, tz: tzinfo) -> str:
    """The listing as text: an aligned table, a JSON array, or CSV (BOM first)."""
    records = [r.record(tz) for r in rows]
    if output == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if output == "csv":
        return records_csv(records, VISIT_FIELDS)
    if not rows:
        return "no visits\n"
    width = max(len("fence"), *(len(r.fence) for r in rows))
    lines = [f"{'placa':<8} {'fence':<{width}} {'arrive':<19} {'depart':<19} {'dwell':>7}"]
    for r in rows:
        arrive = r.arrive_ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        depart = (
            "open"
            if r.depart_ts is None
            else r.depart_ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        )
        minutes = round(r.dwell_s / 60)
        dwell = f"{minutes // 60}:{minutes % 60:02d}"
        lines.append(f"{r.placa:<8} {r.fence:<{width}} {arrive:<19} {depart:<19} {dwell:>7}")
    lines.append(f"{len(rows)} visits")
    return "\n".join(lines) + "\n"


def visits_command(
    date: DateOpt = None,
    date_start: RangeStartOpt = None,
    date_end: RangeEndOpt = None,
    fence: Annotated[str | None, typer.Option("--fence", help="Only this fence's visits.")] = None,
    plates: AllPlatesOpt = None,
    output: Annotated[
        str, typer.Option("--format", help="table, json or csv (UTF-8 with BOM, for Excel).")
    ] = "table",
) -> None:
    """List the stored geofence visits overlapping the local days (default: today).

    A visit still open (the vehicle inside where its data ends) overlaps
    every day after its arrival.
    """
    current = settings()
    if output not in VISIT_FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(VISIT_FORMATS)}, got {output!r}")
    days = read_days(date, date_start, date_end, default=datetime.now(current.tz).date())
    chosen = read_plates(plates, None)
    tz = current.tz
    lo = datetime.combine(days[0], datetime.min.time(), tz)
    hi = datetime.combine(days[-1] + timedelta(days=1), datetime.min.time(), tz)
    with db.connection(database()) as conn:
        if fence is not None and not list_fences(conn, [fence]):
            raise UsageError(f"--fence: unknown geofence {fence!r} (etrack geofences list)")
        rows = list_visits(conn, lo, hi, plates=chosen, fence=fence)
    typer.echo(render_visits(rows, output, tz), nl=False)


def register(app: typer.Typer) -> None:
    """Add the `geofences` group and the `visits` command to the `etrack` app
    (once: calling again is harmless)."""
    if "geofences" not in {info.name for info in app.registered_groups}:
        app.add_typer(geofences_app, name="geofences")
    if "visits" not in {info.name for info in app.registered_commands}:
        app.command("visits")(visits_command)
