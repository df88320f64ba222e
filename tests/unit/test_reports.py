"""Report periods, the CSV dialects, the schedule checks and the e-mail body:
pure functions, no database."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etrack.errors import UsageError
from etrack.reports.csvfile import section_csv
from etrack.reports.deliver import mail_body, subject
from etrack.reports.periods import MAX_CATCH_UP, due_periods, next_send, period_containing
from etrack.reports.render import check_formats
from etrack.reports.schedules import check_at, check_schedule
from etrack.reports.table import Column, Label, Report, Section

TZ = ZoneInfo("America/Sao_Paulo")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


# ------------------------------------------------------------------ periods
def test_periods_are_local_days_iso_weeks_and_months() -> None:
    assert period_containing("daily", date(2026, 12, 3)) == (date(2026, 12, 3), date(2026, 12, 3))
    # 2026-12-03 is a Thursday: its ISO week runs Monday 30/11 to Sunday 06/12.
    assert period_containing("weekly", date(2026, 12, 3)) == (date(2026, 11, 30), date(2026, 12, 6))
    assert period_containing("monthly", date(2026, 12, 3)) == (
        date(2026, 12, 1),
        date(2026, 12, 31),
    )
    assert period_containing("monthly", date(2028, 2, 10)) == (date(2028, 2, 1), date(2028, 2, 29))


def test_a_period_is_due_at_its_time_the_day_after_it_ends() -> None:
    seven = time(7, 0)
    start = date(2026, 12, 1)
    assert due_periods("daily", start, seven, TZ, at(2026, 12, 2, 6, 59)) == []
    assert due_periods("daily", start, seven, TZ, at(2026, 12, 2, 7, 0)) == [(start, start)]
    # The account's zone decides, not UTC: 07:00 in São Paulo is 10:00 UTC.
    assert due_periods("daily", start, seven, TZ, datetime(2026, 12, 2, 9, 59, tzinfo=UTC)) == []
    weekly = due_periods("weekly", date(2026, 11, 30), seven, TZ, at(2026, 12, 7, 7))
    assert weekly == [(date(2026, 11, 30), date(2026, 12, 6))]
    monthly = due_periods("monthly", date(2026, 11, 15), seven, TZ, at(2026, 12, 1, 8))
    assert monthly == [(date(2026, 11, 1), date(2026, 11, 30))]


def test_a_worker_down_catches_up_oldest_first_but_not_forever() -> None:
    start = date(2026, 11, 28)
    due = due_periods("daily", start, time(7), TZ, at(2026, 12, 3, 8))
    assert due == [(start + timedelta(days=n),) * 2 for n in range(5)]
    long_ago = due_periods("daily", date(2025, 1, 1), time(7), TZ, at(2026, 12, 3, 8))
    assert len(long_ago) == MAX_CATCH_UP
    assert long_ago[-1] == (date(2026, 12, 2), date(2026, 12, 2))


def test_a_new_schedule_never_sends_a_period_from_before_it_existed() -> None:
    now = at(2026, 12, 3, 6, 0)  # before 07:00: yesterday's period is not out yet
    spec = check_schedule(
        kind="fleet-summary", every="daily", at="07:00", to="ana@example.com", webhook=None,
        formats="xlsx", plates=None, fleet=None, account=None, by_day=False, csv_dialect=None,
        lang="pt-BR", tz=TZ, now=now,
    )  # fmt: skip
    assert spec.first_period == date(2026, 12, 3)
    assert due_periods("daily", spec.first_period, spec.at_local, TZ, now) == []
    assert due_periods("daily", spec.first_period, spec.at_local, TZ, at(2026, 12, 4, 7)) == [
        (date(2026, 12, 3), date(2026, 12, 3))
    ]
    assert next_send("daily", spec.first_period, spec.at_local, TZ, now) == at(2026, 12, 4, 7)
    assert next_send("monthly", date(2026, 12, 1), time(7), TZ, now) == at(2027, 1, 1, 7)


@given(
    st.sampled_from(["daily", "weekly", "monthly"]),
    st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    st.integers(min_value=0, max_value=400),
)
def test_due_periods_are_complete_contiguous_and_sent_after_they_end(
    every: str, first: date, days_later: int
) -> None:
    now = datetime.combine(first + timedelta(days=days_later), time(12), TZ)
    due = due_periods(every, first, time(7), TZ, now)  # type: ignore[arg-type]
    for (_, b), (c, _) in itertools.pairwise(due):
        assert c == b + timedelta(days=1)
    for start, end in due:
        assert period_containing(every, start) == (start, end)  # type: ignore[arg-type]
        assert end < now.date()
        assert start >= period_containing(every, first)[0]  # type: ignore[arg-type]


# ------------------------------------------------------------------ checks
def test_schedule_and_format_checks_name_what_is_wrong() -> None:
    def check(kind: str, every: str, at: str, to: str | None, webhook: str | None) -> None:
        check_schedule(
            kind=kind, every=every, at=at, to=to, webhook=webhook, formats="xlsx", plates=None,
            fleet=None, account=None, by_day=False, csv_dialect=None, lang="pt-BR", tz=TZ,
            now=datetime(2026, 12, 3, tzinfo=TZ),
        )  # fmt: skip

    cases = [
        (("nope", "daily", "07:00", "a@b.c", None), "unknown report"),
        (("events", "hourly", "07:00", "a@b.c", None), "--every"),
        (("events", "daily", "25:00", "a@b.c", None), "--at"),
        (("events", "daily", "07:00", None, None), "exactly one"),
        (("events", "daily", "07:00", "a@b.c", "https://x.y/z"), "exactly one"),
        (("events", "daily", "07:00", "x", None), "--to"),
        (("vehicle-day", "daily", "07:00", "a@b.c", None), "one plate"),
    ]
    for args, message in cases:
        with pytest.raises(UsageError, match=message):
            check(*args)
    assert check_at(" 7:05 ") == time(7, 5)
    assert check_formats("pdf, XLSX,pdf") == ("pdf", "xlsx")
    with pytest.raises(UsageError, match="unknown format 'docx'"):
        check_formats("xlsx,docx")


# -------------------------------------------------------------------- CSV
def sample_report() -> Report:
    columns = (
        Column("placa", Label("Placa", "Plate"), "text"),
        Column("descricao", Label("Descrição", "Description"), "text"),
        Column("km", Label("Distância (km)", "Distance (km)"), "number", decimals=1),
        Column("driving_s", Label("Dirigindo", "Driving"), "duration"),
        Column("trips", Label("Viagens", "Trips"), "int"),
        Column("day", Label("Dia", "Day"), "date"),
        Column("first", Label("Primeira atividade", "First activity"), "moment"),
    )
    rows = (
        {
            "placa": "ABC1D23",
            "descricao": '=HYPERLINK("x")',
            "km": 1234.56,
            "driving_s": 90061.0,
            "trips": 7,
            "day": date(2026, 12, 2),
            "first": datetime(2026, 12, 2, 9, 5, 7, tzinfo=UTC),
        },
        {
            "placa": "XYZ9A87",
            "descricao": "Caminhão ação",
            "km": None,
            "driving_s": 0.0,
            "trips": 0,
            "day": date(2026, 12, 2),
            "first": None,
        },
    )
    section = Section("vehicles", Label("Resumo", "Summary"), columns, rows, {"placa": "Total"})
    return Report(
        kind="fleet-summary", title=Label("Resumo da frota", "Fleet summary"), account="Frota SP",
        scope="toda a frota", first=date(2026, 12, 2), last=date(2026, 12, 2), tz=TZ,
        generated_at=at(2026, 12, 3, 7), sections=(section,),
        link="https://frota.example.com/report?start=2026-12-02&end=2026-12-02",
    )  # fmt: skip


def test_the_excel_br_csv_opens_in_columns_in_a_brazilian_excel() -> None:
    raw = section_csv(sample_report().sections[0], TZ, "excel-br")
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert table[0] == [
        "Placa", "Descrição", "Distância (km)", "Dirigindo", "Viagens", "Dia",
        "Primeira atividade",
    ]  # fmt: skip
    assert table[1] == [
        "ABC1D23", "'=HYPERLINK(\"x\")", "1234,6", "25:01:01", "7", "02/12/2026",
        "02/12/2026 06:05:07",
    ]  # fmt: skip
    assert table[2] == ["XYZ9A87", "Caminhão ação", "", "0:00:00", "0", "02/12/2026", ""]
    assert len(table) == 3  # the rows, no totals line


def test_the_rfc4180_csv_is_for_programs() -> None:
    raw = section_csv(sample_report().sections[0], TZ, "rfc4180")
    assert not raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode())))
    assert table[0] == ["placa", "descricao", "km", "driving_s", "trips", "day", "first"]
    assert table[1][2:] == ["1234.56", "90061.0", "7", "2026-12-02", "2026-12-02T06:05:07-03:00"]


def test_the_mail_says_what_for_whom_when_and_links_back() -> None:
    report = sample_report()
    assert subject(report) == "[etrack] Resumo da frota — toda a frota — 02/12/2026"
    body = mail_body(report)
    assert "Resumo da frota — Frota SP" in body
    assert "Período: 02/12/2026" in body
    assert "Gerado em 03/12/2026 07:00" in body
    assert "Resumo: 2 linhas" in body
    assert "Ver o relatório: https://frota.example.com/report?" in body
