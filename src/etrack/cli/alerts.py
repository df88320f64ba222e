"""`etrack alerts add|list|pause|resume|remove|test|replay`: notification rules (docs/alerts.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, time, timedelta, tzinfo
from typing import Annotated, TypeVar

import typer

from etrack.alerts.outcome import AlertNotDelivered
from etrack.alerts.payload import synthetic_event
from etrack.alerts.rules import check_fences_exist, check_rule, safe_target
from etrack.alerts.send import send_alert
from etrack.alerts.webhook import check_public
from etrack.cli.common import database, echo, read_days, read_plates, settings
from etrack.errors import UsageError
from etrack.events.detect import KINDS
from etrack.jobs.alerts import replay_alerts
from etrack.jobs.app import open_app
from etrack.jobs.env import EtrackApp, JobEnv
from etrack.store import db
from etrack.store.alerts import (
    RuleRow,
    RuleSummary,
    add_rule,
    get_rule,
    list_rules,
    remove_rule,
    set_rule_active,
)

__all__ = ["alerts_app", "register"]

T = TypeVar("T")

alerts_app = typer.Typer(
    help="Alert rules: events sent once each to a webhook or by e-mail.",
    no_args_is_help=True,
)

NameArg = Annotated[str, typer.Argument(help="Rule name (letters, digits, _ - .).")]
# A plate used in `alerts test` for a rule without plates.
TEST_PLATE = "TST0000"


def _rule(conn: db.Conn, name: str) -> RuleRow:
    rule = get_rule(conn, name)
    if rule is None:
        raise UsageError(f"no alert rule {name!r} (etrack alerts list shows them)")
    return rule


def _with_app(work: Callable[[EtrackApp], Awaitable[T]]) -> T:
    env = JobEnv(settings(), database(), pool_size=1)

    async def go() -> T:
        async with open_app(env, max_pool=2) as app:
            return await work(app)

    return asyncio.run(go())


@alerts_app.command("add")
def alerts_add(
    name: NameArg,
    kind: Annotated[
        str, typer.Option("--kind", help=f"Comma-separated kinds: {', '.join(KINDS)}.")
    ],
    plates: Annotated[
        str | None, typer.Option("--plates", help="Only these plates (comma-separated).")
    ] = None,
    fleet: Annotated[
        str | None, typer.Option("--fleet", help="Only vehicles of this fleet (terminals.frota).")
    ] = None,
    fence: Annotated[
        str | None,
        typer.Option(
            "--fence",
            help="Only events these fences decide (comma-separated names): their"
            " geofence_enter/geofence_exit, overspeed under their speed limit.",
        ),
    ] = None,
    min_value: Annotated[
        float | None,
        typer.Option("--min-value", help="Only events whose value is at least this."),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST each event to this URL.")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", help="HMAC secret of the webhook (default: generated, shown once)."
        ),
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Send each event to these addresses.")
    ] = None,
) -> None:
    """Add a rule; only events starting from now on are sent. A name already taken is refused."""
    current = settings()
    rule = check_rule(
        name=name,
        kinds=kind,
        known_kinds=KINDS,
        plates=read_plates(plates, None),
        fleets=fleet,
        fences=fence,
        min_value=min_value,
        webhook=webhook,
        secret=secret,
        emails=email,
    )
    if rule.url is not None and current.etrack_webhook_deny_private:
        refused = check_public(rule.url)
        if refused is not None:
            raise UsageError(refused.message)
    with db.connection(database()) as conn:
        if rule.fences is not None:
            check_fences_exist(conn, rule.fences)
        added = add_rule(conn, rule)
    if not added:
        raise UsageError(f"alert rule {name!r} exists: remove it first to change it")
    echo(
        f"rule {rule.name} added: {', '.join(rule.kinds)} -> {_target(rule.channel, rule.url, rule.emails)}"
    )
    if rule.url is not None and secret is None:
        # The only time it is shown: the receiver needs it to check signatures.
        echo(f"webhook secret (shown once, keep it with the receiver): {rule.secret}")


def _target(channel: str, url: str | None, emails: tuple[str, ...] | None) -> str:
    if channel == "webhook" and url is not None:
        return f"webhook {safe_target(url)}"
    return f"e-mail {', '.join(emails or ())}"


def _scope(rule: RuleRow) -> str:
    parts = []
    if rule.plates:
        parts.append(f"plates {','.join(rule.plates)}")
    if rule.fleets:
        parts.append(f"fleet {','.join(rule.fleets)}")
    if rule.fences:
        parts.append(f"fence {','.join(rule.fences)}")
    if rule.min_value is not None:
        parts.append(f"value >= {rule.min_value:g}")
    return "; ".join(parts) or "every vehicle"


LIST_FORMATS = ("table", "json")


def _summary_json(summary: RuleSummary, tz: tzinfo) -> dict[str, object]:
    """A rule as `alerts list --format json` shows it: nothing secret (the
    webhook as scheme, host and port, no signing secret)."""
    rule = summary.rule
    return {
        "name": rule.name,
        "active": rule.active,
        "kinds": list(rule.kinds),
        "plates": None if rule.plates is None else list(rule.plates),
        "fleets": None if rule.fleets is None else list(rule.fleets),
        "fences": None if rule.fences is None else list(rule.fences),
        "min_value": rule.min_value,
        "channel": rule.channel,
        "target": safe_target(rule.url) if rule.url is not None else None,
        "emails": None if rule.emails is None else list(rule.emails),
        "created_at": rule.created_at.astimezone(tz).isoformat(),
        "queued": summary.queued,
        "sent": summary.sent,
        "failed": summary.failed,
        "last_error": summary.last_error,
    }


@alerts_app.command("list")
def alerts_list(
    output: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """The rules, with their deliveries queued, sent and failed and the last error."""
    if output not in LIST_FORMATS:
        raise UsageError(f"--format: expected one of {', '.join(LIST_FORMATS)}, got {output!r}")
    with db.connection(database()) as conn:
        rules = list_rules(conn)
    tz = settings().tz
    if output == "json":
        body = [_summary_json(summary, tz) for summary in rules]
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    if not rules:
        echo("no alert rules")
        return
    for summary in rules:
        rule = summary.rule
        state = "" if rule.active else " (paused)"
        echo(
            f"{rule.name}{state}: {','.join(rule.kinds)}, {_scope(rule)} -> "
            f"{_target(rule.channel, rule.url, rule.emails)}; "
            f"since {rule.created_at.astimezone(tz):%Y-%m-%d %H:%M}; "
            f"queued {summary.queued}, sent {summary.sent}, failed {summary.failed}"
        )
        if summary.last_error:
            echo(f"  last error: {summary.last_error}")


def _set_active(name: str, active: bool) -> None:
    with db.connection(database()) as conn:
        if not set_rule_active(conn, name, active):
            raise UsageError(f"no alert rule {name!r} (etrack alerts list shows them)")
    echo(f"rule {name} {'resumed' if active else 'paused'}")


@alerts_app.command("pause")
def alerts_pause(name: NameArg) -> None:
    """Pause a rule: it sends nothing until resumed; what it had queued waits."""
    _set_active(name, False)


@alerts_app.command("resume")
def alerts_resume(name: NameArg) -> None:
    """Resume a paused rule: what waited is sent at the next queueing (the periodic fetch)."""
    _set_active(name, True)


@alerts_app.command("remove")
def alerts_remove(name: NameArg) -> None:
    """Remove a rule, with its queued deliveries and its delivery history."""
    with db.connection(database()) as conn:
        if not remove_rule(conn, name):
            raise UsageError(f"no alert rule {name!r} (etrack alerts list shows them)")
    echo(f"rule {name} removed")


@alerts_app.command("test")
def alerts_test(name: NameArg) -> None:
    """Send a made-up event to the rule's channel now (not recorded as a delivery)."""
    current = settings()
    with db.connection(database()) as conn:
        rule = _rule(conn, name)
    event = synthetic_event(rule.kinds[0], rule.plates[0] if rule.plates else TEST_PLATE)
    result = asyncio.run(send_alert(rule, event, current, test=True))
    if not result.ok:
        raise AlertNotDelivered(f"test of rule {name}: {result.line()}")
    echo(f"test of rule {name}: {result.line()}")


@alerts_app.command("replay")
def alerts_replay(
    rule: Annotated[str, typer.Argument(help="Rule name.")],
    date_start: Annotated[
        str | None, typer.Option("--date-start", help="First local day of the events.")
    ] = None,
    date_end: Annotated[
        str | None, typer.Option("--date-end", help="Last local day (included).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Send again the events already sent or failed.")
    ] = False,
) -> None:
    """Send the rule's events of past days, whatever their age; nothing twice unless --force."""
    current = settings()
    if not (date_start and date_end):
        raise UsageError("--date-start and --date-end are required")
    days = read_days(None, date_start, date_end, default=datetime.now(current.tz).date())
    lo = datetime.combine(days[0], time(0), current.tz)
    hi = datetime.combine(days[-1] + timedelta(days=1), time(0), current.tz)
    with db.connection(database()) as conn:
        _rule(conn, rule)
    queued = _with_app(lambda app: replay_alerts(app, rule, lo, hi, force=force))
    echo(f"rule {rule}: {queued} deliveries queued ({days[0]} to {days[-1]})")


def register(app: typer.Typer) -> None:
    """Add the `alerts` group to the `etrack` app (once: calling again is harmless)."""
    if "alerts" not in {info.name for info in app.registered_groups}:
        app.add_typer(alerts_app, name="alerts")
