"""`etrack events compute|list`: events per plate over local days (docs/events.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Annotated

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
from etrack.events.compute import compute_events, day_window
from etrack.events.detect import KINDS
from etrack.events.params import EventParams
from etrack.store import db
from etrack.store.events import EventRow, list_events

__all__ = ["events_app", "register", "render_events"]

events_app = typer.Typer(
    help="Events: overspeed, idle, after hours, low battery, late data, offline.",
    no_args_is_help=True,
)

FORMATS = ("table", "json", "csv")
# The JSON objects' keys and the CSV's columns, in this order (issue 16).
FIELDS = (
    "id", "placa", "kind", "start_ts", "end_ts", "duration_s", "value", "limit_value",
    "latitude", "longitude", "logradouro", "driver",
)  # fmt: skip


@events_app.command("compute")
def events_compute(
    date: DateOpt = None,
    date_start: RangeStartOpt = None,
    date_end: RangeEndOpt = None,
    plates: AllPlatesOpt = None,
) -> None:
    """Detect and store the events of the days (default: today, every plate with positions)."""
    current = settings()
    days = read_days(date, date_start, date_end, default=datetime.now(current.tz).date())
    chosen = read_plates(plates, None)
    params = EventParams.from_settings(current)
    target = database()
    require_known_plates(target, chosen)
    with summary_printed_here("etrack.events"):
        summary = compute_events(target, chosen, days[0], days[-1], params)
    echo_summary(summary.line())


@events_app.command("list")
def events_list(
    date: DateOpt = None,
    date_start: RangeStartOpt = None,
    date_end: RangeEndOpt = None,
    plates: AllPlatesOpt = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help=f"Only this kind: {', '.join(KINDS)}.")
    ] = None,
    output: Annotated[
        str, typer.Option("--format", help="table, json or csv (UTF-8 with BOM, for Excel).")
    ] = "table",
) -> None:
    """List stored events starting on the days (and offline events still open)."""
    current = settings()
    if output not in FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FORMATS)}, got {output!r}")
    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    days = read_days(date, date_start, date_end, default=datetime.now(current.tz).date())
    chosen = read_plates(plates, None)
    lo, hi = day_window(days[0], days[-1], EventParams.from_settings(current))
    target = database()
    with db.connection(target) as conn:
        rows = list_events(conn, lo, hi, plates=chosen, kind=kind)
    typer.echo(render_events(rows, output, current.tz), nl=False)


def render_events(rows: Sequence[EventRow], output: str, tz: tzinfo) -> str:
    """The listing as text: an aligned table, a JSON array, or CSV (BOM first)."""
    records = [r.record(tz) for r in rows]
    if output == "json":
        return json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    if output == "csv":
        return records_csv(records, FIELDS)
    if not records:
        return "no events\n"
    lines = [
        f"{'placa':<8} {'kind':<11} {'start':<19} {'end':<19} {'min':>7} {'value':>8}  logradouro"
    ]
    for r in rows:
        start = r.start_ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        end = "open" if r.end_ts is None else r.end_ts.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        minutes = "" if r.duration_s is None else f"{r.duration_s / 60:.1f}"
        value = "" if r.value is None else f"{r.value:.1f}"
        lines.append(
            f"{r.placa:<8} {r.kind:<11} {start:<19} {end:<19} {minutes:>7} {value:>8}  "
            f"{r.logradouro or ''}"
        )
    lines.append(f"{len(records)} events")
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    """Add the `events` group to the `etrack` app (once: calling again is harmless)."""
    if "events" not in {info.name for info in app.registered_groups}:
        app.add_typer(events_app, name="events")
