"""Send one alert e-mail over SMTP (ETRACK_SMTP_URL).

stdlib smtplib, in a thread (aiosmtplib is not a dependency): one connection
per message, few messages. smtp://host:587 upgrades with STARTTLS when the
server offers it (?starttls=1: refuse to go on without it; ?starttls=0:
never, for a relay on the same host), smtps://host:465 speaks TLS from the
start. The password is in the URL: every error text is
cleaned of it and of the URL before it is returned.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from etrack.alerts.outcome import SendResult
from etrack.errors import SettingsError
from etrack.logs import redact

__all__ = ["SmtpServer", "parse_smtp_url", "send_mail"]

_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # smtps: TLS from the first byte
    starttls: bool | None  # None: when the server offers it
    user: str | None
    password: str | None = field(repr=False)


def parse_smtp_url(url: str) -> SmtpServer:
    """smtp://[user:pass@]host[:port][?starttls=1] or smtps://..., else SettingsError."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        # The URL may hold the password: named, never quoted.
        raise SettingsError(
            "ETRACK_SMTP_URL: expected smtp://user:pass@host:587?starttls=1 or smtps://host:465"
        )
    try:
        port = parts.port
    except ValueError:
        raise SettingsError("ETRACK_SMTP_URL: the port is not a number") from None
    tls = parts.scheme == "smtps"
    query = parse_qs(parts.query)
    asked = query.get("starttls", [""])[-1].lower()
    starttls = False if tls else (asked in _TRUE if asked else None)
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if tls else 25),
        tls=tls,
        starttls=starttls,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def _send(server: SmtpServer, message: EmailMessage, timeout_s: float) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if server.tls:
        client = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout_s, context=context)
    else:
        client = smtplib.SMTP(server.host, server.port, timeout=timeout_s)
    with client:
        if not server.tls and server.starttls is not False:
            client.ehlo()
            # Required (starttls=1) fails here with SMTPNotSupportedError when
            # not offered; by default a server not offering it is spoken to
            # in the clear (a local relay), as mail clients do.
            if server.starttls or client.has_extn("starttls"):
                client.starttls(context=context)
        if server.user:
            client.login(server.user, server.password or "")
        client.send_message(message)


async def send_mail(url: str, message: EmailMessage, *, timeout_s: float) -> SendResult:
    """One attempt; never raises for a failure of the server or the network."""
    try:
        server = parse_smtp_url(url)
    except SettingsError as exc:
        return SendResult(ok=False, error=str(exc), permanent=True)
    hidden = [url, *([server.password] if server.password else [])]
    where = f"SMTP {server.host}:{server.port}"
    try:
        await asyncio.to_thread(_send, server, message, timeout_s)
    except (smtplib.SMTPException, OSError) as exc:
        detail = redact(f"{type(exc).__name__}: {exc}", hidden)
        return SendResult(ok=False, error=f"{where}: {detail}")
    return SendResult(ok=True)
