"""One delivery attempt of an alert over its rule's channel.

Both the job (etrack.jobs.alerts, inside the exactly-once bookkeeping) and
`etrack alerts test` (outside it) send through `send_alert`.
"""

from __future__ import annotations

from etrack.alerts.mail import send_mail
from etrack.alerts.outcome import SendResult
from etrack.alerts.payload import email_message, webhook_body
from etrack.alerts.webhook import post
from etrack.config import Settings
from etrack.store.alerts import RuleRow
from etrack.store.events import EventRow

__all__ = ["send_alert"]


async def send_alert(
    rule: RuleRow, event: EventRow, settings: Settings, *, test: bool = False
) -> SendResult:
    """Send `event` to `rule`'s channel once; the result says how it went."""
    if rule.channel == "webhook":
        assert rule.url is not None
        assert rule.secret is not None
        return await post(
            rule.url,
            webhook_body(rule.name, event, settings.tz, test=test),
            rule=rule.name,
            event_id=str(event.id),
            secret=rule.secret,
            timeout_s=settings.etrack_alert_timeout_s,
            deny_private=settings.etrack_webhook_deny_private,
        )
    if settings.etrack_smtp_url is None:
        return SendResult(
            ok=False,
            error="ETRACK_SMTP_URL is not set: e-mail alerts cannot be sent",
            permanent=True,
        )
    message = email_message(
        rule.name,
        event,
        tz=settings.tz,
        sender=settings.etrack_smtp_from,
        recipients=rule.emails or (),
        public_url=settings.etrack_web_public_url,
        test=test,
    )
    return await send_mail(
        settings.etrack_smtp_url.get_secret_value(),
        message,
        timeout_s=settings.etrack_alert_timeout_s,
    )
