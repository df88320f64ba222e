"""The web's small pure rules: formatting, languages, states, sorting, CSP, input parsing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from fastapi import HTTPException

from etrack.web import i18n
from etrack.web.inputs import day_range_or_error, plates_or_error, range_or_error
from etrack.web.reader import BodyCache, Encoded, vehicle_state
from etrack.web.reports import sort_rows
from etrack.web.security import content_security_policy, is_loopback, safe_next, tile_source

TZ = ZoneInfo("America/Sao_Paulo")


def test_numbers_and_dates_follow_the_language() -> None:
    assert i18n.format_number(1234.56, 1, "pt-BR") == "1.234,6"
    assert i18n.format_number(Decimal("1234.56"), 2, "en") == "1,234.56"
    assert i18n.format_number(None) == ""
    assert i18n.format_day(date(2025, 1, 8), "pt-BR") == "08/01/2025"
    assert i18n.format_day(date(2025, 1, 8), "en") == "2025-01-08"
    moment = datetime(2025, 1, 8, 15, 0, 5, tzinfo=UTC)
    assert i18n.format_moment(moment, TZ, "pt-BR") == "08/01/2025 12:00:05"
    assert i18n.format_duration(3725) == "1:02"


def test_language_choice_and_every_message_in_both() -> None:
    assert i18n.pick_language("en", "pt-BR") == "en"
    assert i18n.pick_language("EN", "pt-BR") == "en"
    assert i18n.pick_language("fr", "pt-BR") == "pt-BR"
    assert i18n.pick_language(None, "en") == "en"
    for key, entry in i18n.MESSAGES.items():
        assert set(entry) == {"pt-BR", "en"}, key


def test_vehicle_states() -> None:
    now = datetime(2025, 1, 8, 12, tzinfo=UTC)
    assert vehicle_state(now, 40.0, True, now, 5.0) == "moving"
    assert vehicle_state(now, 0.0, True, now, 5.0) == "idle"
    assert vehicle_state(now, 0.0, False, now, 5.0) == "off"
    assert vehicle_state(now - timedelta(hours=2), 40.0, True, now, 5.0) == "stale"
    assert vehicle_state(None, None, None, now, 5.0) == "unknown"


def test_report_sort_keeps_empty_values_last() -> None:
    rows = [
        {"placa": "AAA1111", "max_speed_kmh": 80},
        {"placa": "BBB2222", "max_speed_kmh": None},
        {"placa": "CCC3333", "max_speed_kmh": 95},
    ]
    assert [r["placa"] for r in sort_rows(rows, "max_speed_kmh", descending=True)] == [
        "CCC3333",
        "AAA1111",
        "BBB2222",
    ]
    assert sort_rows(rows, "nonsense", descending=False)[0]["placa"] == "AAA1111"


def test_csp_allows_the_configured_tile_host_only() -> None:
    assert tile_source("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == (
        "https://tile.openstreetmap.org"
    )
    assert tile_source("https://{s}.tiles.example.com:8443/{z}/{x}/{y}.png") == (
        "https://*.tiles.example.com:8443"
    )
    assert tile_source("") is None
    assert tile_source("javascript:alert(1)") is None
    assert "img-src 'self' data:;" in content_security_policy("")


def test_loopback_and_redirect_targets() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0")  # noqa: S104 - the address under test
    assert not is_loopback("testserver")
    assert not is_loopback(None)
    assert safe_next("/report?x=1") == "/report?x=1"
    assert safe_next("//evil.example") == "/"
    assert safe_next("https://evil.example") == "/"


def test_ranges_and_plates() -> None:
    lo, hi = range_or_error(
        TZ, day="08/01/2025", start=None, end=None, max_days=31, default_day=date(2025, 1, 1)
    )
    assert (lo.isoformat(), hi.isoformat()) == (
        "2025-01-08T00:00:00-03:00",
        "2025-01-09T00:00:00-03:00",
    )
    lo, hi = range_or_error(
        TZ,
        day=None,
        start="2025-01-08 10:00",
        end="2025-01-08 12:30",
        max_days=1,
        default_day=date(2025, 1, 1),
    )
    assert hi - lo == timedelta(hours=2, minutes=30)
    with pytest.raises(HTTPException) as bad:
        range_or_error(
            TZ, day=None, start="2025-01-08", end=None, max_days=31, default_day=date(2025, 1, 1)
        )
    assert bad.value.status_code == 400
    assert day_range_or_error("2025-01-01", None, default=date(2024, 1, 1), max_days=5) == (
        date(2025, 1, 1),
        date(2025, 1, 1),
    )
    assert plates_or_error(["abc-1234, ABC1D23", "abc1234"]) == ["ABC1234", "ABC1D23"]
    assert plates_or_error(None) is None
    with pytest.raises(HTTPException) as wrong:
        plates_or_error(["nope"])
    assert wrong.value.status_code == 422


def test_body_cache_expires_and_stays_bounded() -> None:
    cache = BodyCache(ttl_s=60, size=2)
    cache.put("a", Encoded(b"x" * 1000))
    cache.put("b", None)
    cache.put("c", Encoded(b"y"))
    assert cache.get("a") == (False, None)
    assert cache.get("b") == (True, None)
    hit, body = cache.get("c")
    assert hit
    assert body is not None
    assert body.raw == b"y"
    assert len(Encoded(b"x" * 1000).gzip) < 100
    expired = BodyCache(ttl_s=0)
    expired.put("a", Encoded(b"z"))
    assert expired.get("a") == (False, None)
