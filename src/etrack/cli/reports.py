"""`etrack reports render|send|schedule add|list|remove|pause|resume`: reports
as files, e-mails and webhooks, now or on a schedule (docs/reports.md)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import stamina
import typer

from etrack.alerts.rules import safe_target
from etrack.alerts.webhook import check_public
from etrack.cli.common import database, echo, read_days, read_plates, settings
from etrack.config import load_accounts, select_accounts
from etrack.errors import SettingsError, UsageError
from etrack.jobs.reports import ReportNotDelivered, ReportRefused
from etrack.reports.csvfile import default_dialect
from etrack.reports.kinds import KINDS, ReportRequest, ReportScope
from etrack.reports.periods import EVERY, every_of, next_send
from etrack.reports.render import Attachment, check_dialect, check_formats
from etrack.reports.schedules import (
    Delivery,
    check_kind,
    check_schedule,
    check_target,
    deliver,
    produce,
    report_context,
    set_active,
    upcoming,
)
from etrack.reports.table import Report
from etrack.store import db
from etrack.store.reports import (
    ScheduleRow,
    add_schedule,
    get_schedule,
    list_schedules,
    remove_schedule,
)

__all__ = ["register", "reports_app"]

reports_app = typer.Typer(
    help="Reports (fleet-summary, vehicle-day, events, visits, driver-days) as XLSX, PDF or "
    "CSV files, e-mailed or posted now or on a schedule.",
    no_args_is_help=True,
)
schedule_app = typer.Typer(
    help="Reports sent by the worker for every complete day, week or month.",
    no_args_is_help=True,
)
reports_app.add_typer(schedule_app, name="schedule")

KindArg = Annotated[str, typer.Argument(help=f"Report kind: {', '.join(KINDS)}.")]
DateOpt = Annotated[str | None, typer.Option("--date", help="One local day (default yesterday).")]
StartOpt = Annotated[str | None, typer.Option("--date-start", help="First local day.")]
EndOpt = Annotated[str | None, typer.Option("--date-end", help="Last local day.")]
PlatesOpt = Annotated[
    str | None, typer.Option("--plates", help="Only these plates (comma-separated).")
]
FleetOpt = Annotated[
    str | None, typer.Option("--fleet", help="Only vehicles of this fleet (terminals.frota).")
]
AccountOpt = Annotated[
    str | None,
    typer.Option(
        "--account", help="Only this account's vehicles, in its time zone (ETRACK_ACCOUNTS_FILE)."
    ),
]
ByDayOpt = Annotated[
    bool, typer.Option("--by-day", help="fleet-summary: one row per vehicle and day.")
]
FormatOpt = Annotated[str, typer.Option("--format", help="Comma-separated: xlsx, pdf, csv.")]
DialectOpt = Annotated[
    str | None,
    typer.Option(
        "--csv-dialect",
        help="excel-br (';', decimal comma, BOM: Brazilian Excel) or rfc4180 (',', decimal "
        "point); default excel-br for pt-BR.",
    ),
]
LangOpt = Annotated[str, typer.Option("--lang", help="pt-BR or en (headers, formats).")]
IdArg = Annotated[int, typer.Argument(help="The schedule's id (etrack reports schedule list).")]


def _tz(account: str | None) -> ZoneInfo:
    current = settings()
    if account is None:
        return current.tz
    chosen = select_accounts(load_accounts(current), account)
    return ZoneInfo(str(chosen[0].timezone))


def _request(
    kind: str,
    date_text: str | None,
    date_start: str | None,
    date_end: str | None,
    plates: str | None,
    fleet: str | None,
    by_day: bool,
    tz: ZoneInfo,
) -> ReportRequest:
    check_kind(kind)
    if plates is not None and fleet is not None:
        raise UsageError("--plates and --fleet: give one of them, not both")
    yesterday = datetime.now(tz).date() - timedelta(days=1)
    days = read_days(date_text, date_start, date_end, default=yesterday)
    listed = read_plates(plates, None)
    return ReportRequest(
        kind=kind,
        first=days[0],
        last=days[-1],
        scope=ReportScope(plates=None if listed is None else tuple(listed), fleet=fleet),
        by_day=by_day,
    )


def _produce(
    request: ReportRequest,
    account: str | None,
    tz: ZoneInfo,
    formats: str,
    dialect: str | None,
    lang: str,
) -> tuple[Report, list[Attachment]]:
    chosen = check_formats(formats)
    if lang not in ("pt-BR", "en"):
        raise UsageError(f"--lang: expected pt-BR or en, got {lang!r}")
    csv_dialect = check_dialect(dialect) if dialect else default_dialect(lang)
    with db.connection(database()) as conn:
        ctx = report_context(conn, settings(), account, tz)
        return produce(conn, request, ctx, chosen, lang, csv_dialect)


@reports_app.command("render")
def reports_render(
    kind: KindArg,
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="Folder the files are written to.")
    ] = Path("."),
    date_text: DateOpt = None,
    date_start: StartOpt = None,
    date_end: EndOpt = None,
    plates: PlatesOpt = None,
    fleet: FleetOpt = None,
    account: AccountOpt = None,
    by_day: ByDayOpt = False,
    formats: FormatOpt = "xlsx",
    csv_dialect: DialectOpt = None,
    lang: LangOpt = "pt-BR",
) -> None:
    """Write a report's files (named by kind and period: a rerun overwrites them)."""
    tz = _tz(account)
    request = _request(kind, date_text, date_start, date_end, plates, fleet, by_day, tz)
    _, files = _produce(request, account, tz, formats, csv_dialect, lang)
    if not output_dir.is_dir():
        raise UsageError(f"--output-dir: {str(output_dir)!r} is not a folder")
    for file in files:
        (output_dir / file.filename).write_bytes(file.body)
        echo(f"{output_dir / file.filename}: {len(file.body):,} bytes")


@reports_app.command("send")
def reports_send(
    kind: KindArg,
    to: Annotated[
        str | None, typer.Option("--to", help="E-mail addresses (comma-separated).")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST the report's JSON rows here instead.")
    ] = None,
    date_text: DateOpt = None,
    date_start: StartOpt = None,
    date_end: EndOpt = None,
    plates: PlatesOpt = None,
    fleet: FleetOpt = None,
    account: AccountOpt = None,
    by_day: ByDayOpt = False,
    formats: FormatOpt = "xlsx",
    csv_dialect: DialectOpt = None,
    lang: LangOpt = "pt-BR",
) -> None:
    """Send a report now (ETRACK_SMTP_URL for e-mail); tried 3 times on an SMTP or HTTP failure, then exit 3."""
    check_target(to, webhook)
    current = settings()
    tz = _tz(account)
    now = datetime.now(UTC)
    spec = check_schedule(
        kind=kind, every="daily", at="00:00", to=to, webhook=webhook, formats=formats,
        plates=None, fleet=None, account=account, by_day=by_day, csv_dialect=csv_dialect,
        lang=lang, tz=tz, now=now,
    )  # fmt: skip
    if spec.emails and current.etrack_smtp_url is None:
        raise SettingsError("ETRACK_SMTP_URL is not set: no e-mail can be sent (docs/reports.md)")
    if spec.webhook_url and current.etrack_webhook_deny_private:
        refused = check_public(spec.webhook_url)
        if refused is not None:
            raise UsageError(refused.message)
    request = _request(kind, date_text, date_start, date_end, plates, fleet, by_day, tz)
    report, files = _produce(request, account, tz, formats, csv_dialect, lang)
    target = Delivery(spec.emails, spec.webhook_url, spec.secret)
    key = f"send:{now:%Y%m%dT%H%M%S}"

    async def attempt() -> None:
        result = await deliver(report, files, target, current, key)
        if result.permanent:
            raise ReportRefused(result.error or "refused")
        if not result.ok:
            raise ReportNotDelivered(result.error or "not delivered")

    async def send() -> None:
        async for tries in stamina.retry_context(on=ReportNotDelivered, attempts=3, timeout=120):
            with tries:
                await attempt()

    asyncio.run(send())
    where = ", ".join(spec.emails) if spec.emails else safe_target(spec.webhook_url or "")
    echo(
        f"{kind} {request.first.isoformat()}..{request.last.isoformat()} sent to {where}: "
        + ", ".join(f.filename for f in files)
    )


# ---------------------------------------------------------------- schedules
@schedule_app.command("add")
def schedule_add(
    kind: KindArg,
    every: Annotated[str, typer.Option("--every", help=f"One of {', '.join(EVERY)}.")],
    to: Annotated[
        str | None, typer.Option("--to", help="E-mail addresses (comma-separated).")
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST the report's JSON rows here instead.")
    ] = None,
    at: Annotated[
        str, typer.Option("--at", help="Local time (HH:MM) it goes out the day after the period.")
    ] = "07:00",
    plates: PlatesOpt = None,
    fleet: FleetOpt = None,
    account: AccountOpt = None,
    by_day: ByDayOpt = False,
    formats: FormatOpt = "xlsx",
    csv_dialect: DialectOpt = None,
    lang: LangOpt = "pt-BR",
) -> None:
    """Add a schedule; it starts with the period running now (never one from before it existed)."""
    current = settings()
    tz = _tz(account)
    spec = check_schedule(
        kind=kind, every=every, at=at, to=to, webhook=webhook, formats=formats,
        plates=read_plates(plates, None), fleet=fleet, account=account, by_day=by_day,
        csv_dialect=csv_dialect, lang=lang, tz=tz, now=datetime.now(UTC),
    )  # fmt: skip
    if spec.webhook_url and current.etrack_webhook_deny_private:
        refused = check_public(spec.webhook_url)
        if refused is not None:
            raise UsageError(refused.message)
    with db.connection(database()) as conn:
        schedule_id, new = add_schedule(conn, spec)
        row = get_schedule(conn, schedule_id)
    assert row is not None
    echo(f"schedule {schedule_id} {'added' if new else 'exists, unchanged'}: {_describe(row)}")
    if new and spec.webhook_url:
        echo(f"webhook secret (shown once, keep it with the receiver): {spec.secret}")


def _describe(row: ScheduleRow) -> str:
    scope = (
        f"plates {','.join(row.plates)}"
        if row.plates
        else f"fleet {row.fleet}"
        if row.fleet
        else "every vehicle"
    )
    if row.account:
        scope += f" of account {row.account}"
    target = (
        f"e-mail {', '.join(row.emails)}"
        if row.emails
        else f"webhook {safe_target(row.webhook_url or '')}"
    )
    extra = " by day" if row.by_day else ""
    return (
        f"{row.kind}{extra} {row.every} at {row.at_local:%H:%M} {row.timezone}, {scope}, "
        f"{','.join(row.formats)} -> {target}"
    )


def _next(row: ScheduleRow, now: datetime) -> datetime:
    return next_send(
        every_of(row.every), row.first_period, row.at_local, ZoneInfo(row.timezone), now
    )


def schedule_record(row: ScheduleRow, now: datetime) -> dict[str, object]:
    """A schedule as `schedule list --format json` shows it: nothing secret."""
    return {
        "id": row.id,
        "kind": row.kind,
        "every": row.every,
        "at": f"{row.at_local:%H:%M}",
        "timezone": row.timezone,
        "emails": list(row.emails),
        "webhook": None if row.webhook_url is None else safe_target(row.webhook_url),
        "formats": list(row.formats),
        "plates": row.plates,
        "fleet": row.fleet,
        "account": row.account,
        "by_day": row.by_day,
        "csv_dialect": row.csv_dialect,
        "lang": row.lang,
        "active": row.active,
        "first_period": row.first_period.isoformat(),
        "next_send": upcoming(row, now).isoformat() if row.active else None,
        "queued": row.queued,
        "sent": row.sent,
        "failed": row.failed,
        "last_sent_period": None
        if row.last_sent_period is None
        else row.last_sent_period.isoformat(),
        "last_error": row.last_error,
    }


@schedule_app.command("list")
def schedule_list(
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The schedules, with their periods queued, sent and failed and the last error."""
    if output not in ("table", "json"):
        raise UsageError(f"--format: expected table or json, got {output!r}")
    with db.connection(database()) as conn:
        rows = list_schedules(conn)
    now = datetime.now(UTC)
    if output == "json":
        typer.echo(
            json.dumps([schedule_record(r, now) for r in rows], ensure_ascii=False, indent=2)
        )
        return
    if not rows:
        echo("no report schedules")
        return
    for row in rows:
        state = "" if row.active else " (paused)"
        later = (
            f"; next {upcoming(row, now).astimezone(ZoneInfo(row.timezone)):%Y-%m-%d %H:%M}"
            if row.active
            else ""
        )
        echo(f"{row.id}{state}: {_describe(row)}")
        echo(f"    queued {row.queued}, sent {row.sent}, failed {row.failed}{later}")
        if row.last_error:
            echo(f"    last error: {row.last_error}")


@schedule_app.command("remove")
def schedule_remove(schedule_id: IdArg) -> None:
    """Remove a schedule and its history of periods (a removed one is not an error)."""
    with db.connection(database()) as conn:
        removed = remove_schedule(conn, schedule_id)
    echo(f"schedule {schedule_id} {'removed' if removed else 'not found: nothing to remove'}")


def _set_active(schedule_id: int, active: bool) -> None:
    with db.connection(database()) as conn:
        row = get_schedule(conn, schedule_id)
        if row is None:
            raise UsageError(f"no report schedule {schedule_id} (etrack reports schedule list)")
        set_active(conn, row, active, datetime.now(UTC))
    echo(f"schedule {schedule_id} {'resumed' if active else 'paused'}")


@schedule_app.command("pause")
def schedule_pause(schedule_id: IdArg) -> None:
    """Stop queueing periods; a period already queued waits for `resume`."""
    _set_active(schedule_id, False)


@schedule_app.command("resume")
def schedule_resume(schedule_id: IdArg) -> None:
    """Queue periods again from the one running now (those that ended while paused are not sent)."""
    _set_active(schedule_id, True)


def register(app: typer.Typer) -> None:
    """Add the `reports` group to the `etrack` app (once: calling again is harmless)."""
    if "reports" not in {info.name for info in app.registered_groups}:
        app.add_typer(reports_app, name="reports")
