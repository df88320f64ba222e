"""What makes a valid alert rule, before it is stored.

The command line (and later the Rules page) read a rule's fields as text;
`check_rule` turns them into the stored form or raises a UsageError naming
the field. The known event kinds come from the caller: this package does not
import etrack.events (they are siblings of one layer). `check_fences_exist`
is the one check that reads the database: the fences a rule names are stored.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from etrack.errors import UsageError
from etrack.store import db
from etrack.store.alerts import RuleSpec
from etrack.store.geofences import list_fences

__all__ = [
    "FENCE_KINDS",
    "NAME_PATTERN",
    "check_emails",
    "check_fences_exist",
    "check_rule",
    "check_url",
    "new_secret",
    "safe_target",
]

# Also the CHECK of alert_rules.name: a name is used in job locks and headers.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# The kinds a fence can decide (events whose `rule` is 'fence:NAME'): its
# enter and exit events, and overspeed under its own speed limit. A rule
# naming fences matches no event of another kind, so it needs one of these.
FENCE_KINDS = ("geofence_enter", "geofence_exit", "overspeed")
_EMAIL = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")


def new_secret() -> str:
    """A webhook secret: 32 random bytes, URL-safe text."""
    return secrets.token_urlsafe(32)


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def check_url(url: str) -> str:
    """An http(s) URL with a host, or a UsageError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--webhook: expected an http:// or https:// URL, got {safe_target(url)!r}"
        )
    return url.strip()


def check_emails(text: str, option: str = "--email") -> tuple[str, ...]:
    """'a@b.c, d@e.f' -> ('a@b.c', 'd@e.f'), else UsageError."""
    addresses = _split(text)
    bad = [address for address in addresses if not _EMAIL.match(address)]
    if not addresses or bad:
        raise UsageError(f"{option}: expected addresses like ana@example.com, got {text!r}")
    return tuple(dict.fromkeys(addresses))


def check_rule(
    *,
    name: str,
    kinds: str,
    known_kinds: Sequence[str],
    plates: Sequence[str] | None,
    fleets: str | None,
    fences: str | None,
    min_value: float | None,
    webhook: str | None,
    secret: str | None,
    emails: str | None,
) -> RuleSpec:
    """The rule these options describe, or a UsageError (exit 2)."""
    if not NAME_PATTERN.match(name):
        raise UsageError(
            f"rule name: expected letters, digits, '_', '-' or '.' (at most 63), got {name!r}"
        )
    wanted = _split(kinds)
    unknown = [kind for kind in wanted if kind not in known_kinds]
    if not wanted or unknown:
        raise UsageError(f"--kind: expected one or more of {', '.join(known_kinds)}, got {kinds!r}")
    if plates is not None and fleets is not None:
        raise UsageError("--plates and --fleet: give one of them, not both")
    fleet_list = None if fleets is None else _split(fleets)
    if fleet_list is not None and not fleet_list:
        raise UsageError("--fleet: expected a fleet name")
    fence_list = None if fences is None else list(dict.fromkeys(_split(fences)))
    if fence_list is not None:
        if not fence_list:
            raise UsageError("--fence: expected a fence name")
        if not any(kind in FENCE_KINDS for kind in wanted):
            raise UsageError(
                "--fence: a rule with fences needs one of the kinds a fence decides: "
                f"{', '.join(FENCE_KINDS)}"
            )
    if (webhook is None) == (emails is None):
        raise UsageError("give exactly one channel: --webhook URL or --email ADDR[,ADDR]")
    if secret is not None and webhook is None:
        raise UsageError("--secret goes with --webhook")
    if webhook is not None:
        if secret is not None and len(secret) < 16:
            raise UsageError("--secret: use at least 16 characters (or omit it to get one)")
        return RuleSpec(
            name=name,
            kinds=tuple(dict.fromkeys(wanted)),
            plates=None if plates is None else tuple(plates),
            fleets=None if fleet_list is None else tuple(fleet_list),
            fences=None if fence_list is None else tuple(fence_list),
            min_value=min_value,
            channel="webhook",
            url=check_url(webhook),
            secret=secret or new_secret(),
            emails=None,
        )
    assert emails is not None
    addresses = check_emails(emails)
    return RuleSpec(
        name=name,
        kinds=tuple(dict.fromkeys(wanted)),
        plates=None if plates is None else tuple(plates),
        fleets=None if fleet_list is None else tuple(fleet_list),
        fences=None if fence_list is None else tuple(fence_list),
        min_value=min_value,
        channel="email",
        url=None,
        secret=None,
        emails=addresses,
    )


def check_fences_exist(conn: db.Conn, fences: Sequence[str]) -> None:
    """A UsageError naming the first of these fences that is not stored: what
    `etrack alerts add` and the Rules page check before adding a rule."""
    known = {row.fence.name for row in list_fences(conn, names=fences)}
    for name in fences:
        if name not in known:
            raise UsageError(f"--fence: no fence named {name!r} (etrack geofences list)")


def safe_target(url: str) -> str:
    """A webhook URL as shown in listings and errors: scheme, host and port
    only. Paths and queries often carry a token (a Telegram bot's, a chat
    service's incoming-webhook key), which is as secret as the rule's."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    rest = "/..." if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{rest}"
