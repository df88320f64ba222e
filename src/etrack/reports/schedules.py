"""Report schedules: the checks of what `etrack reports schedule add` and the
Schedules form ask for, and the one function that produces and delivers a
report (of a schedule's period, or of `etrack reports send`).

The sending itself goes through both channels the schedule names; a
delivery counts as done when every channel took it. The worker's side
(exactly once per schedule and period, retries) is etrack.jobs.reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from etrack.alerts.outcome import SendResult
from etrack.alerts.rules import check_emails, check_url, new_secret
from etrack.config import Settings, load_accounts, select_accounts
from etrack.drivers.compute import JornadaParams
from etrack.errors import UsageError
from etrack.reports.csvfile import CsvDialect, default_dialect
from etrack.reports.deliver import email_report, post_report
from etrack.reports.kinds import KINDS, ReportContext, ReportRequest, ReportScope, build_report
from etrack.reports.periods import Period, every_of, next_send, period_containing
from etrack.reports.render import Attachment, Format, check_dialect, check_formats, render
from etrack.reports.table import Report
from etrack.store import db
from etrack.store.accounts import plates_of
from etrack.store.reports import ScheduleRow, ScheduleSpec, set_schedule_active

__all__ = [
    "Delivery",
    "check_at",
    "check_kind",
    "check_schedule",
    "check_target",
    "deliver",
    "produce",
    "report_context",
    "run_key",
    "schedule_request",
    "set_active",
    "upcoming",
]


def check_at(text: str) -> time:
    """'07:00' -> 07:00, else UsageError."""
    try:
        hour, minute = (int(part) for part in text.strip().split(":"))
        return time(hour, minute)
    except ValueError:
        raise UsageError(f"--at: expected a local time HH:MM like 07:00, got {text!r}") from None


def check_target(to: str | None, webhook: str | None) -> None:
    # One channel per schedule: a period is then sent or not as a whole, and
    # a retry after a webhook failure never mails the same period twice.
    if bool(to) == bool(webhook):
        raise UsageError("give exactly one target: --to ADDR[,ADDR] or --webhook URL")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise UsageError(f"unknown report {kind!r}: expected one of {', '.join(KINDS)}")
    return kind


def check_schedule(
    *,
    kind: str,
    every: str,
    at: str,
    to: str | None,
    webhook: str | None,
    formats: str,
    plates: Sequence[str] | None,
    fleet: str | None,
    account: str | None,
    by_day: bool,
    csv_dialect: str | None,
    lang: str,
    tz: ZoneInfo,
    now: datetime,
) -> ScheduleSpec:
    """The schedule these options describe (starting with the period running
    now: nothing from before it existed is sent), or UsageError (exit 2)."""
    check_kind(kind)
    if KINDS[kind].one_plate and (not plates or len(plates) != 1):
        raise UsageError(f"{kind}: a schedule of it needs exactly one plate (--plates ABC1D23)")
    chosen = every_of(every)
    if KINDS[kind].one_plate and every != "daily":
        raise UsageError(f"{kind}: covers one day: use --every daily")
    if plates is not None and fleet is not None:
        raise UsageError("--plates and --fleet: give one of them, not both")
    check_target(to, webhook)
    emails = check_emails(to, "--to") if to else ()
    url = check_url(webhook) if webhook else None
    if lang not in ("pt-BR", "en"):
        raise UsageError(f"--lang: expected pt-BR or en, got {lang!r}")
    dialect = check_dialect(csv_dialect) if csv_dialect else default_dialect(lang)
    return ScheduleSpec(
        kind=kind,
        every=every,
        at_local=check_at(at),
        timezone=str(tz.key),
        emails=emails,
        webhook_url=url,
        secret=new_secret() if url else None,
        formats=check_formats(formats),
        plates=None if plates is None else tuple(plates),
        fleet=fleet,
        account=account,
        by_day=by_day,
        csv_dialect=dialect,
        lang=lang,
        first_period=period_containing(chosen, now.astimezone(tz).date())[0],
    )


def report_context(
    conn: db.Conn, settings: Settings, account: str | None, tz: ZoneInfo
) -> ReportContext:
    """A report's context: an account's plates only when one is named."""
    visible = None
    if account is not None:
        accounts = load_accounts(settings)
        chosen = select_accounts(accounts, account)
        visible = frozenset(plates_of(conn, accounts, chosen))
    return ReportContext(
        account=settings.etrack_company_name or account or "etrack",
        tz=tz,
        visible=visible,
        public_url=settings.etrack_web_public_url,
        jornada=replace(JornadaParams.from_settings(settings), tz=tz),
    )


def set_active(conn: db.Conn, schedule: ScheduleRow, active: bool, now: datetime) -> bool:
    """Pause or resume; a resumed schedule starts again with the period
    running now in its zone (those that ended while paused are not sent)."""
    today = now.astimezone(ZoneInfo(schedule.timezone)).date()
    current = period_containing(every_of(schedule.every), today)[0]
    return set_schedule_active(conn, schedule.id, active, current)


def upcoming(schedule: ScheduleRow, now: datetime) -> datetime:
    """When the schedule next sends a period (for listings)."""
    tz = ZoneInfo(schedule.timezone)
    return next_send(every_of(schedule.every), schedule.first_period, schedule.at_local, tz, now)


def schedule_request(schedule: ScheduleRow, period: Period) -> ReportRequest:
    return ReportRequest(
        kind=schedule.kind,
        first=period[0],
        last=period[1],
        scope=ReportScope(
            plates=None if schedule.plates is None else tuple(schedule.plates),
            fleet=schedule.fleet,
        ),
        by_day=schedule.by_day,
    )


def produce(
    conn: db.Conn,
    request: ReportRequest,
    ctx: ReportContext,
    formats: tuple[Format, ...],
    lang: str,
    dialect: CsvDialect,
) -> tuple[Report, list[Attachment]]:
    """Build and render: the report and its files."""
    report = build_report(conn, request, ctx)
    return report, render(report, formats, lang, dialect)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where a report goes: addresses and/or a webhook (with its secret)."""

    emails: tuple[str, ...] = ()
    webhook_url: str | None = None
    secret: str | None = None

    @classmethod
    def of(cls, schedule: ScheduleRow) -> Delivery:
        return cls(tuple(schedule.emails), schedule.webhook_url, schedule.secret)


async def deliver(
    report: Report, files: Sequence[Attachment], to: Delivery, settings: Settings, key: str
) -> SendResult:
    """One attempt over the target's channel (a webhook honouring the
    Idempotency-Key, a reader by the mail's Message-ID, tells a copy sent
    again after a crash between the answer and its record)."""
    timeout = settings.etrack_alert_timeout_s
    if to.emails:
        smtp = settings.etrack_smtp_url
        return await email_report(
            report,
            files,
            smtp_url=None if smtp is None else smtp.get_secret_value(),
            sender=settings.etrack_smtp_from,
            recipients=to.emails,
            key=key,
            timeout_s=max(timeout, 30.0),
        )
    if to.webhook_url:
        return await post_report(
            report,
            to.webhook_url,
            secret=to.secret or "",
            key=key,
            timeout_s=timeout,
            deny_private=settings.etrack_webhook_deny_private,
        )
    return SendResult(ok=False, error="no recipient", permanent=True)


def run_key(schedule_id: int, period_start: date) -> str:
    """A schedule's period, as the webhook's Idempotency-Key and the mail's id."""
    return f"{schedule_id}:{period_start.isoformat()}"
