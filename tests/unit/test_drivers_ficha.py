"""The monthly ficha de trabalho (etrack.drivers.ficha): rows, XLSX, PDF.

Pure: DriverDays from hand-made Activities through `working_days`, then the
XLSX read back with openpyxl and the PDF parsed with pypdf (and rendered with
pdftoppm when that program is there).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from pypdf import PdfReader

from etrack.drivers.ficha import (
    COLUMNS,
    EMPTY,
    XLSX_HEADER_ROW,
    Ficha,
    FichaRow,
    ficha_pdf,
    ficha_rows,
    ficha_title,
    ficha_totals,
    ficha_xlsx,
    hmm,
)
from etrack.drivers.workday import Activity, DriverDay, JornadaLimits, working_days

TZ = ZoneInfo("America/Sao_Paulo")
NAME = "João da Conceição"


def _at(day: int, clock: str, month: int = 3) -> datetime:
    hours, minutes = (int(x) for x in clock.split(":"))
    return datetime(2025, month, day, hours, minutes, tzinfo=TZ)


def _trip(start: datetime, end: datetime, placa: str = "ABC1D23") -> Activity:
    return Activity(placa, start, end)


def _activities() -> list[Activity]:
    return [
        # February: not in the ficha, but the rest before 3 March counts from it.
        _trip(_at(27, "08:00", 2), _at(27, "12:00", 2)),
        # Mon 3: a normal day: a 10 min stop (not a break), a 1 h break; 8h30 of work.
        _trip(_at(3, "08:00"), _at(3, "10:00")),
        _trip(_at(3, "10:10"), _at(3, "12:00")),
        _trip(_at(3, "13:00"), _at(3, "17:30")),
        # Wed 5: over midnight, ends 02:10 on the 6th.
        _trip(_at(5, "18:00"), _at(5, "21:00")),
        _trip(_at(5, "22:00"), _at(6, "02:10")),
        # Mon 10: 5h42 in one stretch: uninterrupted driving +0h12.
        _trip(_at(10, "06:00"), _at(10, "11:42")),
        # Wed 12: 6h12 in one stretch: uninterrupted +0h42 and no rest in 6 h.
        _trip(_at(12, "06:00"), _at(12, "12:12")),
        _trip(_at(12, "14:00"), _at(12, "16:00")),
        # Thu 13: starts 8h50 after the 12th's end: the daily rest misses 2h10.
        _trip(_at(13, "00:50"), _at(13, "04:00")),
        # Mon 17: 12h35 minus 1h30 of breaks = 11h05: 1h05 above 8 h + 2 h.
        _trip(_at(17, "06:00"), _at(17, "10:00")),
        _trip(_at(17, "11:00"), _at(17, "15:00")),
        _trip(_at(17, "15:30"), _at(17, "18:35")),
        # Thu 20: two working days starting that date (a 7 h gap between them).
        _trip(_at(20, "00:30"), _at(20, "03:00")),
        _trip(_at(20, "10:00"), _at(20, "14:00")),
    ]


@pytest.fixture(scope="module")
def days() -> list[DriverDay]:
    return working_days("12345678909", NAME, _activities(), JornadaLimits(), TZ)


@pytest.fixture(scope="module")
def ficha(days: list[DriverDay]) -> Ficha:
    return Ficha(
        driver_id="12345678909",
        driver_name=NAME,
        document="123.456.789-09",
        frota="Carga pesada",
        company="Transportes Ação Ltda.",
        month=date(2025, 3, 1),
        days=tuple(days),
        tz=TZ,
    )


LABELS = (
    "Direção ininterrupta > 5h30 (+0h12)",
    "Direção ininterrupta > 5h30 (+0h42)",
    "Sem descanso de 30 min em 6h",
    "Descanso diário < 11h (faltaram 2h10)",
    "Jornada acima do limite (+1h05)",
    "Descanso diário < 11h (faltaram 4h00)",
)


def _worked(rows: list[FichaRow]) -> list[FichaRow]:
    return [row for row in rows if row.work is not None]


def test_one_row_per_calendar_day_and_two_rows_on_a_double_date(ficha: Ficha) -> None:
    rows = ficha_rows(ficha)
    assert len(rows) == 31 + 1  # March, and the 20th twice
    assert [r.date for r in rows[:3]] == ["01/03/2025", "02/03/2025", "03/03/2025"]
    assert [r.weekday for r in rows[:7]] == [
        "sábado",
        "domingo",
        "segunda",
        "terça",
        "quarta",
        "quinta",
        "sexta",
    ]
    assert [r.date for r in rows if r.date == "20/03/2025"] == ["20/03/2025"] * 2
    assert len(_worked(rows)) == 8
    off = rows[0]
    assert off.work is None
    assert off.texts()[2:] == [EMPTY] * 8
    assert all(row.day.month == 3 for row in rows)  # February's day left out


def test_normal_day_and_over_midnight(ficha: Ficha) -> None:
    rows = {(r.date, r.start): r for r in ficha_rows(ficha)}
    normal = rows[("03/03/2025", "08:00")]
    assert normal.end == "17:30"
    assert (normal.driving, normal.breaks, normal.working, normal.overtime) == (
        "8:20",
        "1:00",
        "8:30",
        "0:30",
    )
    assert normal.rest_before == hmm((_at(3, "08:00") - _at(27, "12:00", 2)).total_seconds())
    assert normal.violations == ()
    assert normal.violations_text == EMPTY
    night = rows[("05/03/2025", "18:00")]
    assert night.end == "02:10 (+1)"
    assert night.weekday == "quarta"
    assert (night.driving, night.breaks, night.working) == ("7:10", "1:00", "7:10")
    assert rows[("06/03/2025", EMPTY)].work is None  # the 6th shows as a day off


def test_violation_labels(ficha: Ficha) -> None:
    by_date: dict[str, list[str]] = {}
    for row in ficha_rows(ficha):
        by_date.setdefault(row.date, []).extend(row.violations)
    assert by_date["10/03/2025"] == ["Direção ininterrupta > 5h30 (+0h12)"]
    assert by_date["12/03/2025"] == [
        "Direção ininterrupta > 5h30 (+0h42)",
        "Sem descanso de 30 min em 6h",
    ]
    assert by_date["13/03/2025"] == ["Descanso diário < 11h (faltaram 2h10)"]
    assert by_date["17/03/2025"] == ["Jornada acima do limite (+1h05)"]
    assert by_date["20/03/2025"] == ["Descanso diário < 11h (faltaram 4h00)"]
    assert sorted(label for labels in by_date.values() for label in labels) == sorted(LABELS)


def test_totals(ficha: Ficha, days: list[DriverDay]) -> None:
    march = [d for d in days if d.day.month == 3]
    totals = ficha_totals(ficha)
    assert totals.driving_s == pytest.approx(sum(d.driving_s for d in march))
    assert totals.breaks_s == pytest.approx(sum(d.breaks_s for d in march))
    assert totals.working_s == pytest.approx(sum(d.working_s for d in march))
    assert totals.overtime_s == pytest.approx(sum(d.overtime_s for d in march))
    assert totals.violations == len(LABELS)
    assert totals.days_worked == 8
    assert ficha_title(ficha) == f"Ficha de trabalho — {NAME} — março de 2025"


def _seconds(value: object) -> float:
    """An Excel time value as openpyxl gives it back, in seconds."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, time):
        return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    if isinstance(value, datetime):  # a time value past 24 h read as a date from 1899-12-30
        return (value - datetime(1899, 12, 30)).total_seconds()
    assert isinstance(value, int | float), value
    return float(value) * 86400


def test_xlsx_reads_back_with_the_records_numbers(ficha: Ficha, days: list[DriverDay]) -> None:
    book = openpyxl.load_workbook(io.BytesIO(ficha_xlsx(ficha)), data_only=True)
    sheet = book.active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0][0] == ficha_title(ficha)
    meta = {row[0]: row[1] for row in values[1:5]}
    assert meta == {
        "Motorista": f"{NAME} (12345678909)",
        "Documento": "123.456.789-09",
        "Frota": "Carga pesada",
        "Empresa": "Transportes Ação Ltda.",
    }
    assert tuple(values[XLSX_HEADER_ROW][: len(COLUMNS)]) == COLUMNS
    body = values[XLSX_HEADER_ROW + 1 :]
    total_at = next(i for i, row in enumerate(body) if row[0] == "Total")
    table, total = body[:total_at], body[total_at]
    assert len(table) == 32
    assert all(isinstance(row[0], datetime) for row in table)
    assert table[0][1] == "sábado"
    assert table[0][4] == EMPTY

    records = [d.record(TZ) for d in days if d.day.month == 3]
    worked = [row for row in table if row[4] != EMPTY]
    assert len(worked) == len(records)
    keys = ("driving_s", "breaks_s", "rest_before_s", "working_s", "overtime_s")
    for row, record in zip(worked, records, strict=True):
        day = row[0]
        assert isinstance(day, datetime)
        assert day.date().isoformat() == record["day"]
        for col, key in enumerate(keys, start=4):
            expected = record[key]
            assert isinstance(expected, int | float)
            assert _seconds(row[col]) == pytest.approx(expected, abs=0.5), (record["day"], key)
    night = next(row for row in worked if row[2] == "18:00")
    assert night[3] == "02:10 (+1)"
    texts = " ".join(str(row[9]) for row in table)
    for label in LABELS:
        assert label in texts

    totals = ficha_totals(ficha)
    assert _seconds(total[4]) == pytest.approx(totals.driving_s, abs=0.5)
    assert _seconds(total[5]) == pytest.approx(totals.breaks_s, abs=0.5)
    assert _seconds(total[7]) == pytest.approx(totals.working_s, abs=0.5)
    assert _seconds(total[8]) == pytest.approx(totals.overtime_s, abs=0.5)
    assert total[9] == len(LABELS)
    flat = [cell for row in values for cell in row if isinstance(cell, str)]
    assert "Assinatura do motorista" in flat
    assert "Assinatura da empresa" in flat

    formulas = openpyxl.load_workbook(io.BytesIO(ficha_xlsx(ficha))).active
    assert formulas is not None
    first = XLSX_HEADER_ROW + 2
    total_row = XLSX_HEADER_ROW + 2 + total_at
    assert formulas.cell(total_row, 5).value == f"=SUM(E{first}:E{total_row - 1})"
    assert formulas.cell(first + 2, 5).number_format == "[h]:mm"


def _pdf_text(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    text = " ".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), " ".join(text.split())


def test_pdf_parses_with_accents_and_every_violation(ficha: Ficha) -> None:
    data = ficha_pdf(ficha)
    assert data.startswith(b"%PDF-")
    pages, text = _pdf_text(data)
    assert pages >= 1
    assert "João" in text
    assert "março" in text
    assert ficha_title(ficha) in text
    assert "Assinatura do motorista" in text
    assert "Assinatura da empresa" in text
    assert "Lei 13.103/2015; CTB art. 67-C" in text
    assert f"Página 1/{pages}" in text
    assert "02:10 (+1)" in text
    assert "sábado" in text
    assert "terça" in text
    for label in LABELS:
        assert label in text
    reader = PdfReader(io.BytesIO(data))
    box = reader.pages[0].mediabox
    assert float(box.width) > float(box.height)  # landscape
    assert round(float(box.width) / 72 * 25.4) == 297  # A4


def test_pdf_of_a_month_without_work(ficha: Ficha) -> None:
    empty = Ficha("x", "Zé", None, None, None, date(2025, 2, 1), (), TZ)
    rows = ficha_rows(empty)
    assert len(rows) == 28
    assert ficha_totals(empty).violations == 0
    _, text = _pdf_text(ficha_pdf(empty))
    assert "fevereiro de 2025" in text
    assert "28/02/2025" in text
    book = openpyxl.load_workbook(io.BytesIO(ficha_xlsx(empty)), data_only=True)
    assert book.active is not None


def test_pdf_renders_with_pdftoppm(ficha: Ficha, tmp_path: Path) -> None:
    program = shutil.which("pdftoppm")
    if program is None:
        pytest.skip("pdftoppm is not installed (apt package poppler-utils)")
    source = tmp_path / "ficha.pdf"
    source.write_bytes(ficha_pdf(ficha))
    subprocess.run(
        [program, "-png", "-r", "40", "-f", "1", "-l", "1", str(source), str(tmp_path / "page")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    images = sorted(tmp_path.glob("page*.png"))
    assert images
    assert images[0].read_bytes().startswith(b"\x89PNG")
    assert images[0].stat().st_size > 1000


def test_a_long_month_breaks_into_numbered_pages() -> None:
    trips = [
        trip
        for d in range(1, 32)
        for trip in (
            _trip(_at(d, "00:30"), _at(d, "03:00")),
            _trip(_at(d, "10:00"), _at(d, "14:00")),
        )
    ]
    days = working_days("7", NAME, trips, JornadaLimits(), TZ)
    long = Ficha("7", NAME, None, None, None, date(2025, 3, 1), tuple(days), TZ)
    assert len(ficha_rows(long)) == 62
    assert ficha_totals(long).violations == 61  # every rest but the first is short
    pages, text = _pdf_text(ficha_pdf(long))
    assert pages >= 2
    assert f"Página {pages}/{pages}" in text
    assert "31/03/2025" in text
    assert "Assinatura da empresa" in text
