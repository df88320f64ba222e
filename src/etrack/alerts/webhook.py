"""POST one alert to a webhook, and the check of its address.

The body is signed (signing.py) and carries the event id as
`Idempotency-Key`: a worker killed after the receiver answered but before
the answer was recorded sends again on retry, and a receiver that honours
the key drops the copy. Redirects are not followed (a 3xx is a failure):
a redirect could lead a signed body anywhere, past the address check.

With ETRACK_WEBHOOK_DENY_PRIVATE=1 every address the host resolves to must
be a public one, checked at `alerts add` and again at each send (DNS may
change in between). The connection resolves the name again: a host whose
DNS flips between the check and the connection (DNS rebinding) is not
stopped by this check; an egress firewall is the stronger guard.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from etrack.alerts.outcome import SendResult
from etrack.alerts.rules import safe_target
from etrack.alerts.signing import sign
from etrack.logs import redact

__all__ = ["Refusal", "check_public", "check_public_async", "non_public", "post"]

_BODY_CHARS = 200


def non_public(addresses: list[str]) -> list[str]:
    """The addresses among these that are loopback, private, link-local,
    multicast or reserved (anything not globally routable)."""
    bad = []
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            bad.append(text)
    return bad


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return host, port


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a webhook address is not used; `permanent` unless the host did
    not resolve (maybe a DNS glitch, worth another attempt)."""

    message: str
    permanent: bool


def _verdict(url: str, addresses: list[str]) -> Refusal | None:
    bad = non_public(addresses)
    if bad:
        return Refusal(
            f"webhook {safe_target(url)} resolves to a non-public address ({', '.join(bad)}), "
            "refused by ETRACK_WEBHOOK_DENY_PRIVATE=1",
            permanent=True,
        )
    return None


def _unresolved(url: str, exc: OSError) -> Refusal:
    return Refusal(
        f"webhook {safe_target(url)}: cannot resolve its host ({exc.strerror or exc})",
        permanent=False,
    )


def check_public(url: str) -> Refusal | None:
    """None when every address of the URL's host is public, else why not."""
    host, port = _host_port(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return _unresolved(url, exc)
    return _verdict(url, [str(info[4][0]) for info in infos])


async def check_public_async(url: str) -> Refusal | None:
    """`check_public` without blocking the event loop."""
    host, port = _host_port(url)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return _unresolved(url, exc)
    return _verdict(url, [str(info[4][0]) for info in infos])


async def post(
    url: str,
    body: bytes,
    *,
    rule: str,
    event_id: str,
    secret: str,
    timeout_s: float,
    deny_private: bool,
) -> SendResult:
    """One attempt; never raises for a failure of the receiver or the network."""
    if deny_private:
        refused = await check_public_async(url)
        if refused is not None:
            return SendResult(ok=False, error=refused.message, permanent=refused.permanent)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "etrack-alerts",
        "X-Etrack-Signature": sign(body, secret),
        "X-Etrack-Rule": rule,
        "Idempotency-Key": event_id,
    }
    target = safe_target(url)
    # The URL's path may hold a token, the secret signs: neither goes into an error.
    hidden = [secret, url]
    try:
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        return SendResult(ok=False, error=f"webhook {target}: no answer within {timeout_s:g} s")
    except httpx.InvalidURL:
        return SendResult(ok=False, error=f"webhook {target}: not a usable URL", permanent=True)
    except (httpx.HTTPError, OSError) as exc:
        detail = redact(f"{type(exc).__name__}: {exc}", hidden)
        return SendResult(ok=False, error=f"webhook {target}: {detail}")
    if 200 <= response.status_code < 300:
        return SendResult(ok=True, http_status=response.status_code)
    text = redact(" ".join(response.text.split())[:_BODY_CHARS], hidden)
    return SendResult(
        ok=False,
        http_status=response.status_code,
        error=f"webhook {target} answered HTTP {response.status_code}"
        + (f": {text}" if text else ""),
    )
