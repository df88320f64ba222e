"""The webhook signature: HMAC-SHA256 of the exact body with the rule's secret.

Sent as `X-Etrack-Signature: sha256=<hex>`; a receiver recomputes it over
the raw bytes it received (before any JSON parsing) and compares in
constant time, as `verify` does.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["PREFIX", "sign", "verify"]

PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header value for `body`."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """Whether `header` is the signature of `body` under `secret`."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(body, secret), header)
