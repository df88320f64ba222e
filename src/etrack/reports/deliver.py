"""Deliver a rendered report: an e-mail with attachments (pt-BR body with the
totals and a link back to the report's page), or a POST of its JSON rows to
a webhook. The channels are the alerts' (etrack.alerts.mail, .webhook): the
same SMTP URL and TLS rules, the same signed, non-redirected POST.

One attempt per call, never raising for a failure of the server or the
network: the caller (the worker's job, `etrack reports send`) decides on
retries from the `SendResult`.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import make_msgid

import orjson

from etrack.alerts.mail import send_mail
from etrack.alerts.outcome import SendResult
from etrack.alerts.webhook import post
from etrack.reports.cells import br_date, br_moment, cell_text
from etrack.reports.render import Attachment, report_json
from etrack.reports.table import Report

__all__ = ["email_report", "mail_body", "post_report", "subject"]


def _period(report: Report) -> str:
    if report.first == report.last:
        return br_date(report.first)
    return f"{br_date(report.first)} a {br_date(report.last)}"


def subject(report: Report) -> str:
    return f"[etrack] {report.title.pt} — {report.scope} — {_period(report)}"


def mail_body(report: Report) -> str:
    """The message's text: what, for whom, the period, each section's totals."""
    lines = [
        f"{report.title.pt} — {report.account}",
        f"Veículos: {report.scope}",
        f"Período: {_period(report)}",
        f"Gerado em {br_moment(report.generated_at, report.tz)}",
    ]
    for section in report.sections:
        lines += ["", f"{section.title.pt}: {len(section.rows)} linhas"]
        if section.totals is None:
            continue
        for column in section.columns:
            value = section.totals.get(column.name)
            if value is None or column.kind in ("text", "date", "moment"):
                continue
            text = cell_text(value, column.kind, column.decimals, "pt-BR", report.tz)
            lines.append(f"  {column.label.pt}: {text}")
    if report.link:
        lines += ["", f"Ver o relatório: {report.link}"]
    lines += ["", "Os arquivos estão anexados. Mensagem automática do etrack."]
    return "\n".join(lines) + "\n"


def _message(
    report: Report,
    files: Sequence[Attachment],
    *,
    sender: str,
    recipients: Sequence[str],
    key: str,
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject(report)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    # One id per schedule and period: a copy sent again after a crash
    # between the SMTP answer and its record can be told from a new one.
    message["Message-ID"] = make_msgid(idstring=key.replace(":", "."), domain="etrack")
    message["X-Etrack-Report"] = key
    message.set_content(mail_body(report), charset="utf-8")
    for file in files:
        maintype, _, subtype = file.media_type.partition(";")[0].partition("/")
        message.add_attachment(
            file.body, maintype=maintype, subtype=subtype, filename=file.filename
        )
    return message


async def email_report(
    report: Report,
    files: Sequence[Attachment],
    *,
    smtp_url: str | None,
    sender: str,
    recipients: Sequence[str],
    key: str,
    timeout_s: float,
) -> SendResult:
    if not smtp_url:
        return SendResult(
            ok=False, error="ETRACK_SMTP_URL is not set: no e-mail can be sent", permanent=True
        )
    message = _message(report, files, sender=sender, recipients=recipients, key=key)
    return await send_mail(smtp_url, message, timeout_s=timeout_s)


async def post_report(
    report: Report,
    url: str,
    *,
    secret: str,
    key: str,
    timeout_s: float,
    deny_private: bool,
) -> SendResult:
    """POST the report's JSON (report_json), signed, with `key` as the
    Idempotency-Key (schedule and period)."""
    body = orjson.dumps(report_json(report))
    return await post(
        url,
        body,
        rule=f"report:{key.split(':', 1)[0]}",
        event_id=key,
        secret=secret,
        timeout_s=timeout_s,
        deny_private=deny_private,
    )
