"""What one delivery attempt came to, and the errors a failed one raises.

The errors join etrack's one hierarchy (etrack.errors.EtrackError): the job's
retry strategy (etrack.jobs.tasks.Backoff) reads `transient` to decide
between another attempt and the end.
"""

from __future__ import annotations

from dataclasses import dataclass

from etrack.errors import EtrackError

__all__ = ["AlertNotDelivered", "AlertRefused", "SendResult"]


@dataclass(frozen=True, slots=True)
class SendResult:
    """One attempt: delivered or not, the HTTP status when there was one,
    the error (secrets removed), and whether trying again could help."""

    ok: bool
    http_status: int | None = None
    error: str | None = None
    permanent: bool = False

    def line(self) -> str:
        if self.ok:
            return "delivered" + (f" (HTTP {self.http_status})" if self.http_status else "")
        return f"not delivered: {self.error}"


class AlertNotDelivered(EtrackError):
    """An attempt failed (non-2xx, timeout, SMTP error): retried with backoff."""

    transient = True


class AlertRefused(EtrackError):
    """The alert cannot be sent as configured (a private address refused by
    ETRACK_WEBHOOK_DENY_PRIVATE, no ETRACK_SMTP_URL): no retry can help."""
