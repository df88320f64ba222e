"""Alerts without a database: rules, signature, payload, addresses, SMTP URL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from etrack.alerts.mail import parse_smtp_url
from etrack.alerts.payload import (
    email_message,
    event_record,
    synthetic_event,
    webhook_body,
)
from etrack.alerts.rules import check_rule, safe_target
from etrack.alerts.signing import sign, verify
from etrack.alerts.webhook import non_public
from etrack.cli.events import FIELDS
from etrack.config import Settings
from etrack.errors import SettingsError, UsageError
from etrack.events.detect import KINDS
from etrack.jobs.tasks import alert_retry
from etrack.model import EVENT_KINDS
from etrack.store.alerts import RuleRow
from etrack.store.events import EventRow

TZ = ZoneInfo("America/Sao_Paulo")

EVENT = EventRow(
    id=uuid.UUID("00000000-0000-0000-0000-000000000001"),
    placa="ABC1234",
    kind="overspeed",
    start_ts=datetime(2026, 3, 2, 13, 5, tzinfo=UTC),
    end_ts=datetime(2026, 3, 2, 13, 7, 30, tzinfo=UTC),
    duration_s=150.0,
    value=97.5,
    limit_value=80.0,
    latitude=-23.5,
    longitude=-46.6,
    logradouro="Av. Paulista, São Paulo",
    driver="Ana",
    rule="settings",
)


def rule_options(**changes: object) -> dict[str, object]:
    options: dict[str, object] = {
        "name": "speed",
        "kinds": "overspeed,idle",
        "known_kinds": KINDS,
        "plates": None,
        "fleets": None,
        "fences": None,
        "min_value": None,
        "webhook": "https://hooks.example.com/in/t0k3n",
        "secret": None,
        "emails": None,
    }
    options.update(changes)
    return options


def test_a_webhook_rule_gets_a_generated_secret() -> None:
    rule = check_rule(**rule_options())  # type: ignore[arg-type]
    assert rule.channel == "webhook"
    assert rule.kinds == ("overspeed", "idle")
    assert rule.secret is not None
    assert len(rule.secret) >= 32
    assert rule.secret not in repr(rule)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "bad name"}, "rule name"),
        ({"kinds": "speeding"}, "--kind"),
        ({"kinds": ""}, "--kind"),
        ({"plates": ["ABC1234"], "fleets": "north"}, "not both"),
        ({"webhook": None}, "exactly one channel"),
        ({"emails": "a@example.com"}, "exactly one channel"),
        ({"webhook": "ftp://example.com/x"}, "--webhook"),
        ({"secret": "short"}, "16"),
        ({"webhook": None, "emails": "not-an-address"}, "--email"),
        ({"webhook": None, "emails": "a@example.com", "secret": "x" * 20}, "--secret"),
        ({"fences": ""}, "^--fence: expected a fence name$"),
        ({"fences": " , ,"}, "^--fence: expected a fence name$"),
        (
            {"kinds": "idle", "fences": "Depot"},
            "^--fence: a rule with fences needs one of the kinds",
        ),
        (
            {"kinds": "idle,after_hours", "fences": "Depot"},
            "geofence_enter, geofence_exit, overspeed",
        ),
    ],
)
def test_bad_rules_are_usage_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        check_rule(**rule_options(**changes))  # type: ignore[arg-type]


def test_a_rule_names_its_fences_stripped_once_each_in_order() -> None:
    rule = check_rule(
        **rule_options(kinds="idle,geofence_enter", fences=" Depot B, Cliente X ,Depot B,")
    )  # type: ignore[arg-type]
    assert rule.fences == ("Depot B", "Cliente X")
    assert rule.kinds == ("idle", "geofence_enter")
    # Without --fence: any fence (and events no fence decided).
    assert check_rule(**rule_options()).fences is None  # type: ignore[arg-type]
    mail = check_rule(
        **rule_options(webhook=None, emails="a@example.com", kinds="overspeed", fences="A")
    )  # type: ignore[arg-type]
    assert mail.fences == ("A",)


def test_an_email_rule_splits_its_addresses() -> None:
    rule = check_rule(**rule_options(webhook=None, emails="a@example.com, b@example.org"))  # type: ignore[arg-type]
    assert rule.channel == "email"
    assert rule.emails == ("a@example.com", "b@example.org")
    assert rule.secret is None


def test_listings_show_no_path_or_query_of_a_webhook() -> None:
    assert safe_target("https://api.telegram.org/bot123:SECRET/sendMessage") == (
        "https://api.telegram.org/..."
    )
    assert safe_target("http://127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert safe_target("http://[::1]:9/x?k=v") == "http://[::1]:9/..."


def test_the_signature_verifies_only_for_the_exact_body_and_secret() -> None:
    body = webhook_body("speed", EVENT, TZ)
    header = sign(body, "s" * 32)
    assert header.startswith("sha256=")
    assert len(header) == 7 + 64
    assert verify(body, "s" * 32, header)
    assert not verify(body + b" ", "s" * 32, header)
    assert not verify(body, "t" * 32, header)
    assert not verify(body, "s" * 32, None)


def test_the_body_holds_the_rule_and_the_event_as_events_list_shows_it() -> None:
    payload = json.loads(webhook_body("speed", EVENT, TZ))
    assert payload["rule"] == "speed"
    assert tuple(payload["event"]) == FIELDS
    assert payload["event"]["start_ts"] == "2026-03-02T10:05:00-03:00"
    assert payload["event"] == event_record(EVENT, TZ)
    assert "test" not in payload
    assert json.loads(webhook_body("speed", EVENT, TZ, test=True))["test"] is True


def test_the_email_is_in_portuguese_with_local_times_and_the_day_link() -> None:
    message = email_message(
        "speed",
        EVENT,
        tz=TZ,
        sender="etrack@example.com",
        recipients=("a@example.com",),
        public_url="https://frota.example.com/",
    )
    assert message["Subject"] == "[etrack] Excesso de velocidade: ABC1234 em 02/03/2026 10:05:00"
    body = message.get_content()
    assert "Início: 02/03/2026 10:05:00" in body
    assert "Valor: 97,5 km/h" in body
    assert "Motorista: Ana" in body
    assert "https://frota.example.com/vehicles/ABC1234/2026-03-02" in body
    assert message["X-Etrack-Event"] == str(EVENT.id)


def test_every_kind_has_its_names_and_unit() -> None:
    assert set(KINDS) == set(EVENT_KINDS)


def test_synthetic_events_differ_each_time() -> None:
    first, second = synthetic_event("idle", "ABC1234"), synthetic_event("idle", "ABC1234")
    assert first.id != second.id
    assert first.kind == "idle"


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.1", True),
        ("172.16.5.4", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", True),  # noqa: S104 (an address judged, not bound)
        ("93.184.216.34", False),
        ("2606:4700::1111", False),
    ],
)
def test_non_public_addresses(address: str, refused: bool) -> None:
    assert (non_public([address]) == [address]) is refused


def test_the_smtp_url_is_parsed_and_its_password_never_shown() -> None:
    server = parse_smtp_url("smtp://ana%40x:p%40ss@mail.example.com:587?starttls=1")
    assert (server.host, server.port, server.tls, server.starttls) == (
        "mail.example.com",
        587,
        False,
        True,
    )
    assert (server.user, server.password) == ("ana@x", "p@ss")
    assert "p@ss" not in repr(server)
    tls = parse_smtp_url("smtps://mail.example.com")
    assert (tls.port, tls.tls, tls.starttls) == (465, True, False)
    with pytest.raises(SettingsError) as caught:
        parse_smtp_url("http://u:hunter2@mail.example.com")
    assert "hunter2" not in str(caught.value)


def test_a_rule_repr_hides_its_secret() -> None:
    rule = RuleRow(
        name="r",
        kinds=("idle",),
        plates=None,
        fleets=None,
        fences=("Cliente X",),
        min_value=None,
        channel="webhook",
        url="https://example.com/",
        secret="very-secret-value-123",
        emails=None,
        active=True,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert "very-secret-value-123" not in repr(rule)
    assert "Cliente X" in repr(rule)


def test_the_retry_strategy_follows_the_settings() -> None:
    settings = Settings(_env_file=None, etrack_alert_attempts=3, etrack_alert_retry_s=0.5)  # type: ignore[call-arg]
    retry = alert_retry(settings)
    assert (retry.attempts, retry.first_s, retry.max_s) == (3, 0.5, 3600.0)


def test_alert_settings_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.etrack_alert_max_age == "6h"
    assert settings.etrack_alert_attempts == 5
    assert settings.etrack_webhook_deny_private is False
    assert settings.etrack_smtp_url is None
