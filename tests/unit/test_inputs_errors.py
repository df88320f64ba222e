"""The user's dates and ranges, and the error lines of issue 14's rough edges
that need no server: calendar days, the eTrac DD-MM-YYYY form, reversed
ranges (one wording, CLI and web), PostgreSQL's whole reason, unknown plates,
and an account's breaker after refused credentials."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi import HTTPException

from etrack.dates import DATE_FORMS, check_range, parse_day, parse_moment, range_error
from etrack.errors import (
    EXIT_USAGE,
    AuthenticationError,
    CredentialsRefused,
    UnknownPlate,
    exit_code_for,
)
from etrack.jobs.accounts import Breaker
from etrack.store.db import outage_reason
from etrack.web.inputs import day_or_error, day_range_or_error, range_or_error
from fixtures_cli import RunEtrack

TZ = ZoneInfo("America/Sao_Paulo")


# -------------------------------------------------------------------- days
@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2025-06-01", date(2025, 6, 1)),
        ("01/06/2025", date(2025, 6, 1)),
        # The eTrac API's own form: day first, like the seed's.
        ("01-06-2025", date(2025, 6, 1)),
        ("29/02/2024", date(2024, 2, 29)),
        (" 7-1-2025 ", date(2025, 1, 7)),
    ],
)
def test_every_documented_form_is_read_day_first(text: str, day: date) -> None:
    assert parse_day(text) == day


def test_the_documented_forms_are_all_listed() -> None:
    assert DATE_FORMS == "YYYY-MM-DD, DD/MM/YYYY or DD-MM-YYYY"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "31/02/2025",
            "--date-start: 31/02/2025 is not a day of the calendar (February 2025 has 28 days)",
        ),
        (
            "29-02-2025",
            "--date-start: 29-02-2025 is not a day of the calendar (February 2025 has 28 days)",
        ),
        (
            "2025-04-31",
            "--date-start: 2025-04-31 is not a day of the calendar (April 2025 has 30 days)",
        ),
        (
            # Month first (US): refused, never guessed.
            "12/31/2025",
            "--date-start: 12/31/2025 is not a day of the calendar "
            "(there is no month 31: DD/MM/YYYY puts the day first)",
        ),
        (
            "2025-13-01",
            "--date-start: 2025-13-01 is not a day of the calendar "
            "(there is no month 13: YYYY-MM-DD puts the month second)",
        ),
    ],
)
def test_a_date_of_the_right_form_that_does_not_exist_says_so(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="is not a day of the calendar") as info:
        parse_day(text, option="date-start")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("2025/01/06", " (a year-first date is written YYYY-MM-DD)"),
        ("06/01/25", " (give the year with 4 digits)"),
        ("06/01-2025", ""),  # two separators: which form was meant?
        ("yesterday", ""),
    ],
)
def test_ambiguous_or_other_forms_are_refused_naming_the_forms(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match="expected a date as") as info:
        parse_day(text, option="date")
    assert str(info.value) == f"--date: expected a date as {DATE_FORMS}, got {text!r}{hint}"


def test_a_moment_takes_the_same_day_forms() -> None:
    assert parse_moment("01-06-2025 10:30", TZ, option="date-start") == datetime(
        2025, 6, 1, 10, 30, tzinfo=TZ
    )
    with pytest.raises(ValueError, match="31/02/2025 is not a day of the calendar"):
        parse_moment("31/02/2025 10:00", TZ, option="date-start")


# ------------------------------------------------------------------ ranges
def test_a_reversed_range_has_one_wording() -> None:
    first, last = date(2025, 1, 5), date(2025, 1, 1)
    expected = (
        "--date-end 2025-01-01 is before --date-start 2025-01-05: "
        "the end must be on or after the start"
    )
    assert range_error(first, last, start="--date-start", end="--date-end") == expected
    with pytest.raises(ValueError, match="is before") as info:
        check_range(first, last, "--date-start", "--date-end")
    assert str(info.value) == expected
    assert range_error(first, last, start="date_start", end="date_end", lang="pt") == (
        "date_end 01/01/2025 é anterior a date_start 05/01/2025: o fim não pode ser antes do início"
    )
    # One day is a range; moments exclude their end, so equal ones are not.
    assert range_error(first, first, start="s", end="e") is None
    moment = datetime(2025, 1, 5, 10, 0, tzinfo=TZ)
    assert range_error(moment, moment, start="start", end="end") == (
        "end 2025-01-05 10:00 is not after start 2025-01-05 10:00: the end must be after the start"
    )


def test_the_web_says_what_the_cli_says() -> None:
    with pytest.raises(HTTPException) as info:
        day_range_or_error("2025-01-05", "2025-01-01", default=date(2025, 1, 1), max_days=30)
    assert info.value.detail == (
        "end 2025-01-01 is before start 2025-01-05: the end must be on or after the start"
    )
    with pytest.raises(HTTPException) as info:
        range_or_error(
            TZ,
            day=None,
            start="2025-01-05 10:00",
            end="2025-01-05 09:00",
            max_days=30,
            default_day=date(2025, 1, 1),
        )
    assert info.value.detail == (
        "end 2025-01-05 09:00 is not after start 2025-01-05 10:00: the end must be after the start"
    )
    with pytest.raises(HTTPException) as info:
        day_or_error("31/02/2025", name="date_start")
    assert info.value.status_code == 422
    assert info.value.detail == (
        "date_start: 31/02/2025 is not a day of the calendar (February 2025 has 28 days)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["backfill", "--date-start", "31/02/2025", "--date-end", "2025-03-01"],
            "--date-start: 31/02/2025 is not a day of the calendar (February 2025 has 28 days)",
        ),
        (
            ["backfill", "--date-start", "05-01-2025", "--date-end", "01-01-2025"],
            "--date-end 2025-01-01 is before --date-start 2025-01-05: "
            "the end must be on or after the start",
        ),
        (
            ["routes", "compute", "--date-start", "2025-01-05", "--date-end", "2025-01-01"],
            "--date-end 2025-01-01 is before --date-start 2025-01-05: "
            "the end must be on or after the start",
        ),
    ],
)
def test_the_cli_refuses_bad_days_before_any_work(
    argv: list[str], message: str, run_etrack: RunEtrack
) -> None:
    code, out, err = run_etrack(*argv)
    assert code == EXIT_USAGE, out + err
    assert err.strip() == f"etrack: error: {message}"


# ----------------------------------------------------------------- errors
def test_the_whole_reason_of_a_connection_failure_is_kept() -> None:
    # What psycopg says when an HTTP server answers PostgreSQL's port.
    message = (
        'connection failed: connection to server at "127.0.0.1", port 5001 failed: '
        "received invalid response to SSL negotiation: H"
    )
    assert outage_reason(message) == (
        "received invalid response to SSL negotiation: H "
        "(something other than PostgreSQL answers on that port)"
    )
    refused = (
        'connection failed: connection to server at "127.0.0.1", port 5001 failed: '
        "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
        "connections?"
    )
    assert outage_reason(refused) == (
        "Connection refused; Is the server running on that host and accepting TCP/IP connections?"
    )


def test_an_unknown_plate_is_a_usage_error_naming_the_plate() -> None:
    raw = UnknownPlate("Placa não encontrada", 404, "/monitoramento/ultimaposicao")
    assert exit_code_for(raw) == EXIT_USAGE
    named = raw.naming("ZZZ9Z99")
    assert str(named) == (
        "unknown plate ZZZ9Z99: eTrac does not know it, it answered 'Placa não encontrada'"
    )
    assert named.placa == "ZZZ9Z99"
    assert exit_code_for(named) == EXIT_USAGE
    assert "account north" in str(raw.naming("ZZZ9Z99", "north"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_sends_nothing_after_credentials_are_refused() -> None:
    clock = Clock()
    gate = Breaker("acme", threshold=3, wait_s=30.0, refused_s=600.0, clock=clock)
    sent: list[int] = []

    async def refused() -> None:
        sent.append(1)
        raise AuthenticationError(401)

    async def scenario() -> None:
        with pytest.raises(AuthenticationError):
            await gate.call(refused)
        for _ in range(5):
            with pytest.raises(CredentialsRefused) as info:
                await gate.call(refused)
        assert "check ETRAC_USER and ETRAC_KEY" in str(info.value)
        assert str(info.value).startswith("account acme: eTrac rejected the credentials")
        assert len(sent) == 1
        # ETRACK_ACCOUNT_RETRY_S later the account is tried again.
        clock.now = 600.0
        with pytest.raises(AuthenticationError):
            await gate.call(refused)
        assert len(sent) == 2
        gate.forget_refusal()  # what breaker() does when the credentials change
        with pytest.raises(AuthenticationError):
            await gate.call(refused)
        assert len(sent) == 3

    asyncio.run(scenario())
    assert exit_code_for(CredentialsRefused("acme", "x")) == EXIT_USAGE


def test_fetch_history_says_a_reversed_range_in_the_same_words(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETRAC_USER", "someone")
    monkeypatch.setenv("ETRAC_KEY", "some-key")
    code, out, err = run_etrack(
        "fetch-history",
        "ABC1234",
        "--date-start",
        "06-01-2025 10:00",
        "--date-end",
        "06-01-2025 09:00",
    )
    assert code == EXIT_USAGE, out + err
    assert err.strip() == (
        "etrack: error: --date-end 06-01-2025 09:00 is not after --date-start 06-01-2025 10:00: "
        "the end must be after the start"
    )
