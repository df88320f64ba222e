"""`etrack drivers list|set|rename|merge|assign|compute|day|report|ficha`: drivers
and their legal working day (docs/drivers.md)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Annotated

import typer

from etrack.cli.common import (
    DateOpt,
    RangeEndOpt,
    RangeStartOpt,
    database,
    echo_summary,
    read_day,
    read_days,
    read_plate,
    records_csv,
    settings,
    summary_printed_here,
    user_input,
)
from etrack.dates import parse_moment
from etrack.drivers.compute import (
    JornadaParams,
    assign_period,
    compute_drivers,
    day_bounds,
    driver_days,
    month_ficha,
)
from etrack.drivers.ficha import ficha_pdf, ficha_xlsx
from etrack.drivers.identity import normalized_name, read_document
from etrack.drivers.workday import DriverDay
from etrack.errors import UsageError
from etrack.store import db
from etrack.store import drivers as store

__all__ = ["REPORT_FIELDS", "drivers_app", "find_driver", "register", "render_days"]

drivers_app = typer.Typer(
    help="Drivers and their legal working day (Lei 13.103): list, edit, assign, report.",
    no_args_is_help=True,
)

FORMATS = ("table", "json")
REPORT_FORMATS = ("table", "json", "csv")
REPORT_FIELDS = (
    "driver_id",
    "driver_name",
    "day",
    "start",
    "end",
    "driving_s",
    "working_s",
    "breaks_s",
    "idle_s",
    "overtime_s",
    "longest_driving_s",
    "rest_before_s",
    "violations",
)
DriverArg = Annotated[
    str, typer.Argument(help="The driver: its id (identification), or its name when it has none.")
]


def find_driver(conn: db.Conn, text: str) -> store.DriverRow:
    """The driver named by `text` (its id, or its name), or a UsageError."""
    found = store.get_driver(conn, text.strip())
    if found is not None:
        return found
    wanted = normalized_name(text)
    by_name = [d for d in store.list_drivers(conn) if normalized_name(d.name) == wanted]
    if len(by_name) == 1:
        return by_name[0]
    if len(by_name) > 1:
        ids = ", ".join(d.id for d in by_name)
        raise UsageError(
            f"driver {text!r}: {len(by_name)} drivers have that name; give the id ({ids})"
        )
    raise UsageError(f"no driver {text!r} (etrack drivers list shows them)")


def _format(output: str, allowed: Sequence[str]) -> str:
    if output not in allowed:
        raise UsageError(f"--format: expected one of {', '.join(allowed)}, got {output!r}")
    return output


def _hm(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


@drivers_app.command("list")
def drivers_list(
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The drivers etrack knows (from the provider's trips, and merged or edited here)."""
    _format(output, FORMATS)
    with db.connection(database()) as conn:
        rows = store.list_drivers(conn)
    if output == "json":
        typer.echo(json.dumps([r.record() for r in rows], ensure_ascii=False, indent=2))
        return
    width = max([len(r.id) for r in rows] + [2])
    for r in rows:
        flag = "" if r.active else "  (inactive)"
        typer.echo(f"{r.id:<{width}}  {r.name}  {r.frota or '-'}  {r.document or '-'}{flag}")
    typer.echo(f"{len(rows)} drivers")


@drivers_app.command("set")
def drivers_set(
    driver: DriverArg,
    document: Annotated[
        str | None, typer.Option("--document", help="CPF (check digits verified) or registration.")
    ] = None,
    fleet: Annotated[str | None, typer.Option("--fleet", help="The driver's fleet.")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Whether the driver is active.")
    ] = None,
) -> None:
    """Record a driver's document (CPF or registration), fleet, or active flag."""
    with db.connection(database()) as conn:
        row = find_driver(conn, driver)
        changed = row._replace(
            document=row.document if document is None else read_document(document),
            frota=row.frota if fleet is None else (fleet.strip() or None),
            active=row.active if active is None else active,
        )
        written = store.update_driver(conn, changed)
    echo_summary(f"driver {row.id}: {'updated' if written else 'unchanged'}")


@drivers_app.command("rename")
def drivers_rename(
    driver: DriverArg, name: Annotated[str, typer.Argument(help="The new name.")]
) -> None:
    """Change the name shown for a driver (its id stays)."""
    new = " ".join(name.split())
    if not new:
        raise UsageError("name: expected a name")
    with db.connection(database()) as conn:
        row = find_driver(conn, driver)
        written = store.update_driver(conn, row._replace(name=new))
    echo_summary(f"driver {row.id}: {'renamed to ' + new if written else 'unchanged'}")


@drivers_app.command("merge")
def drivers_merge(
    source: Annotated[str, typer.Argument(help="The driver to merge (it goes away).")],
    target: Annotated[str, typer.Argument(help="The driver it is (it stays).")],
) -> None:
    """Make two drivers one: SOURCE's trips, aliases and assignments become TARGET's."""
    with db.connection(database()) as conn:
        gone = find_driver(conn, source)
        kept = find_driver(conn, target)
        if gone.id == kept.id:
            raise UsageError(f"merge: {source!r} and {target!r} are the same driver")
        moved = store.merge_drivers(conn, gone.id, kept.id)
    echo_summary(f"drivers: {gone.id} merged into {kept.id} ({moved} trips moved)")


@drivers_app.command("assign")
def drivers_assign(
    driver: DriverArg,
    plate: Annotated[str, typer.Argument(help="The vehicle's plate.")],
    start: Annotated[str, typer.Option("--from", help="Start: a local date or date-time.")],
    end: Annotated[str, typer.Option("--to", help="End: a local date (whole day) or date-time.")],
) -> None:
    """Put a driver on a vehicle for a period: the trips the provider names no
    driver for get this one (then recomputed: their days' attribution and events)."""
    current = settings()
    tz = current.tz
    from_ts = user_input(lambda: parse_moment(start, tz, option="from"))
    to_ts = user_input(lambda: parse_moment(end, tz, option="to", end=True))
    if to_ts <= from_ts:
        raise UsageError("--to: expected a moment after --from")
    placa = read_plate(plate)
    target = database()
    with db.connection(target) as conn:
        row = find_driver(conn, driver)
    params = JornadaParams.from_settings(current)
    with summary_printed_here("etrack.drivers"):
        written, summary = assign_period(target, row.id, placa, from_ts, to_ts, params)
    echo_summary(
        f"driver {row.id} on {placa} from {from_ts:%Y-%m-%d %H:%M} to {to_ts:%Y-%m-%d %H:%M}: "
        f"{'stored' if written else 'unchanged'}; {summary.line()}"
    )


@drivers_app.command("compute")
def drivers_compute(
    date_text: DateOpt = None,
    date_start: RangeStartOpt = None,
    date_end: RangeEndOpt = None,
) -> None:
    """Attribute the detected trips of the days to drivers and store the
    violations as events (the routes computations run this too)."""
    current = settings()
    days = read_days(date_text, date_start, date_end, default=datetime.now(current.tz).date())
    with summary_printed_here("etrack.drivers"):
        summary = compute_drivers(
            database(), None, days[0], days[-1], JornadaParams.from_settings(current)
        )
    echo_summary(summary.line())


def render_days(days: Sequence[DriverDay], output: str, tz: tzinfo) -> str:
    if output == "json":
        return json.dumps([d.record(tz) for d in days], ensure_ascii=False, indent=2) + "\n"
    if output == "csv":
        records = []
        for d in days:
            record = d.record(tz)
            record["violations"] = "; ".join(
                f"{v.rule} {v.at.astimezone(tz):%H:%M} +{_hm(v.excess_s)}" for v in d.violations
            )
            records.append(record)
        return records_csv(records, REPORT_FIELDS)
    lines = [
        f"{'driver':<24} {'day':<10} {'start':>5} {'end':>5} {'driving':>7} {'working':>7} "
        f"{'breaks':>6} {'longest':>7} {'rest':>6}  violations"
    ]
    for d in days:
        violations = ", ".join(
            f"{v.rule} at {v.at.astimezone(tz):%H:%M} (+{_hm(v.excess_s)})" for v in d.violations
        )
        lines.append(
            f"{d.driver_name[:24]:<24} {d.day.isoformat():<10} {d.start.astimezone(tz):%H:%M} "
            f"{d.end.astimezone(tz):%H:%M} {_hm(d.driving_s):>7} {_hm(d.working_s):>7} "
            f"{_hm(d.breaks_s):>6} {_hm(d.longest_driving_s):>7} {_hm(d.rest_before_s):>6}  "
            f"{violations or '-'}"
        )
    lines.append(f"{len(days)} working days, {sum(len(d.violations) for d in days)} violations")
    return "\n".join(lines) + "\n"


@drivers_app.command("day")
def drivers_day(
    driver: DriverArg,
    date_text: Annotated[str, typer.Option("--date", help="The local day the working day starts.")],
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """One driver's working day: driving, breaks, rest before, violations."""
    _format(output, FORMATS)
    current = settings()
    day = read_day(date_text)
    params = JornadaParams.from_settings(current)
    with db.connection(database()) as conn:
        row = find_driver(conn, driver)
        days = driver_days(conn, day, day, params, [row.id])
    typer.echo(render_days(days, output, current.tz), nl=False)


@drivers_app.command("report")
def drivers_report(
    date_start: Annotated[str, typer.Option("--date-start", help="First day.")],
    date_end: Annotated[str, typer.Option("--date-end", help="Last day.")],
    output: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
) -> None:
    """Every driver's working days starting on the days, with their violations."""
    _format(output, REPORT_FORMATS)
    current = settings()
    days = read_days(None, date_start, date_end, default=date.today())
    params = JornadaParams.from_settings(current)
    lo, hi = day_bounds(days[0], days[-1], params.tz)
    with db.connection(database()) as conn:
        found = driver_days(conn, days[0], days[-1], params)
        nobody, nobody_s = store.unattributed(conn, lo, hi)
    typer.echo(render_days(found, output, current.tz), nl=False)
    if output == "table":
        typer.echo(f"{nobody} trips without a driver (sem motorista), {_hm(nobody_s)} of driving")


FICHA_FORMATS = ("pdf", "xlsx")


def read_month(text: str) -> date:
    """YYYY-MM (or MM/YYYY) -> its 1st day, or a UsageError."""
    value = text.strip()
    for pattern in ("%Y-%m", "%m/%Y"):
        try:
            return datetime.strptime(value, pattern).date().replace(day=1)
        except ValueError:
            continue
    raise UsageError(f"--month: expected a month like 2025-03 (or 03/2025), got {text!r}")


@drivers_app.command("ficha")
def drivers_ficha(
    driver: DriverArg,
    month: Annotated[str, typer.Option("--month", help="The month: YYYY-MM.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The file to write (.pdf or .xlsx).")
    ],
    file_format: Annotated[
        str | None, typer.Option("--format", help="pdf or xlsx (default: the file's extension).")
    ] = None,
    company: Annotated[
        str | None, typer.Option("--company", help="The company's name on the ficha.")
    ] = None,
) -> None:
    """A driver's monthly ficha de trabalho (one row per day, totals,
    signature lines) as PDF or XLSX."""
    chosen = file_format or output.suffix.lstrip(".").lower()
    if chosen not in FICHA_FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(FICHA_FORMATS)}, got {chosen!r}")
    first = read_month(month)
    params = JornadaParams.from_settings(settings())
    with db.connection(database()) as conn:
        row = find_driver(conn, driver)
        ficha = month_ficha(conn, row, first, params, company)
    data = ficha_pdf(ficha) if chosen == "pdf" else ficha_xlsx(ficha)
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None
    echo_summary(
        f"ficha of {row.id} for {first:%Y-%m}: {len(ficha.days)} working days, "
        f"{sum(len(d.violations) for d in ficha.days)} violations -> {output} ({len(data)} bytes)"
    )


def register(app: typer.Typer) -> None:
    """Add the `drivers` group to the `etrack` app (once)."""
    if "drivers" not in {info.name for info in app.registered_groups}:
        app.add_typer(drivers_app, name="drivers")
