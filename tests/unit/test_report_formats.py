"""The report formats (etrack.reports.xlsx, .pdf, .kml) and their cell texts.

Pure: a small Report built by hand, the workbook read back with openpyxl (and
its sheet XML, for the raw time values), the PDF parsed with pypdf (and
rendered with pdftoppm when that program is there), the KML parsed with
xml.etree.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from pypdf import PdfReader

from etrack.reports.cells import (
    br_date,
    br_moment,
    br_number,
    cell_text,
    en_number,
    hmm,
    safe_text,
)
from etrack.reports.kml import day_kml
from etrack.reports.pdf import MAX_LINE_VERTICES, report_pdf, thinned
from etrack.reports.table import Column, Label, Report, RouteDrawing, Row, Section, Stop
from etrack.reports.xlsx import HEADER_ROW, report_xlsx, sheet_names

TZ = ZoneInfo("America/Sao_Paulo")
KML = "{http://www.opengis.net/kml/2.2}"

VEHICLE_COLUMNS = (
    Column("placa", Label("Placa", "Plate"), "text", width=10),
    Column("descricao", Label("Descrição", "Description"), "text", width=22),
    Column("viagens", Label("Viagens", "Trips"), "int", width=8),
    Column("km", Label("Distância (km)", "Distance (km)"), "number", decimals=1, width=12),
    Column("conducao", Label("Condução", "Driving"), "duration", width=9),
    Column("dia", Label("Dia", "Day"), "date", width=11),
    Column("ultima", Label("Última posição", "Last position"), "moment", width=16),
)
# 17:05 UTC is 14:05 in São Paulo (UTC-3, no DST since 2019).
LAST_SEEN = datetime(2026, 11, 3, 17, 5, tzinfo=UTC)
VEHICLES = Section(
    name="vehicles",
    title=Label("Veículos", "Vehicles"),
    columns=VEHICLE_COLUMNS,
    rows=(
        {
            "placa": "ABC1D23",
            "descricao": "Descrição ação",
            "viagens": 12,
            "km": 1234.5,
            "conducao": 90000,
            "dia": date(2026, 11, 3),
            "ultima": LAST_SEEN,
        },
        {
            "placa": "XYZ9K88",
            "descricao": "=1+1",
            "viagens": 3,
            "km": 0.25,
            "conducao": 5400,
            "dia": None,
            "ultima": None,
        },
    ),
    totals={"placa": None, "viagens": 15, "km": 1234.75, "conducao": 95400},
)
DAILY = Section(
    name="daily",
    title=Label("Por dia: frota/ônibus", "By day: fleet/buses"),
    columns=(
        Column("dia", Label("Dia", "Day"), "date", width=11),
        Column("km", Label("Km", "Km"), "number", decimals=2, width=10),
        Column("paradas", Label("Paradas", "Stops"), "int", width=8),
    ),
    rows=(
        {"dia": date(2026, 11, 1), "km": 10.125, "paradas": 4},
        {"dia": date(2026, 11, 2), "km": None, "paradas": 0},
    ),
)


def _report(drawing: RouteDrawing | None = None, **changes: object) -> Report:
    fields: dict[str, object] = {
        "kind": "fleet-summary",
        "title": Label("Resumo da frota", "Fleet summary"),
        "account": "Transportes São João",
        "scope": "toda a frota",
        "first": date(2026, 11, 1),
        "last": date(2026, 11, 30),
        "tz": TZ,
        "generated_at": datetime(2026, 12, 3, 17, 5, tzinfo=UTC),
        "sections": (VEHICLES, DAILY),
        "drawing": drawing,
    }
    fields.update(changes)
    return Report(**fields)  # type: ignore[arg-type]


def _drawing(points: int = 200) -> RouteDrawing:
    line = tuple(
        (-23.55 + 0.05 * i / points, -46.63 + 0.08 * math.sin(i / points * 3))
        for i in range(points)
    )
    stops = (
        Stop(-23.55, -46.63, "Garagem Central"),
        Stop(-23.53, -46.60, "Cliente Ação & Cia <Loja 2>"),
    )
    return RouteDrawing(line=line, stops=stops)


def _pdf_text(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


# -- cells -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00"),
        (5400, "1:30"),
        (90000, "25:00"),
        (-1800, "-0:30"),
        (-20, "0:00"),  # rounds to no time: no sign
        (89, "0:01"),
        (90, "0:02"),  # half up, not half to even
        (3599.6, "1:00"),
        (float("nan"), ""),
    ],
)
def test_hmm(seconds: float, text: str) -> None:
    assert hmm(seconds) == text


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (1234.5, 1, "1.234,5"),
        (0, 1, "0,0"),
        (0.0, 0, "0"),
        (-1234567.891, 2, "-1.234.567,89"),
        (-0.04, 1, "0,0"),  # rounds to zero: no "-0,0"
        (999.95, 1, "1.000,0"),
        (2.675, 2, "2,68"),  # the decimal text rounds half up, not the binary float
        (0.125, 2, "0,13"),
        (1000, 0, "1.000"),
        (12, 3, "12,000"),
        (float("inf"), 1, ""),
    ],
)
def test_br_number(value: float, decimals: int, text: str) -> None:
    assert br_number(value, decimals) == text


def test_en_number() -> None:
    assert en_number(1234.5, 1) == "1,234.5"
    assert en_number(-0.004, 2) == "0.00"


def test_br_date_and_moment() -> None:
    assert br_date(date(2026, 12, 3)) == "03/12/2026"
    assert br_moment(datetime(2026, 12, 3, 17, 5, tzinfo=UTC), TZ) == "03/12/2026 14:05"
    plus_one = timezone(timedelta(hours=1))
    assert br_moment(datetime(2026, 12, 3, 0, 30, tzinfo=plus_one), TZ) == "02/12/2026 20:30"


def test_safe_text() -> None:
    assert safe_text("=1+1") == "'=1+1"
    for risky in ("+55", "-3", "@SUM(A1)", "\tx", "\rx"):
        assert safe_text(risky) == "'" + risky
    assert safe_text("Descrição ação") == "Descrição ação"
    assert safe_text("") == ""


def test_cell_text_languages_and_one_day_clock() -> None:
    assert cell_text(1234.5, "number", 1, "en", TZ) == "1,234.5"
    assert cell_text(90000, "duration", 0, "en", TZ) == "25:00"
    assert cell_text(date(2026, 11, 3), "date", 0, "en", TZ) == "2026-11-03"
    assert cell_text(LAST_SEEN, "moment", 0, "en", TZ) == "2026-11-03 14:05"
    assert (
        cell_text(LAST_SEEN, "moment", 0, "pt-BR", TZ, clock_only_on=date(2026, 11, 3)) == "14:05"
    )
    # Another day keeps its date even in a one-day report.
    assert (
        cell_text(LAST_SEEN, "moment", 0, "pt-BR", TZ, clock_only_on=date(2026, 11, 2))
        == "03/11/2026 14:05"
    )
    assert cell_text(None, "int", 0, "pt-BR", TZ) == ""


# -- XLSX ------------------------------------------------------------------------


def test_xlsx_sheets_header_and_title_lines() -> None:
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(_report())))
    assert book.sheetnames == ["Veículos", "Por dia frota ônibus"]
    sheet = book["Veículos"]
    assert sheet["A1"].value == "Resumo da frota"
    assert sheet["A1"].font.b
    assert sheet["A1"].font.sz == 14
    assert sheet["A2"].value == "Transportes São João — toda a frota"
    assert sheet["A3"].value == "Período: 01/11/2026 a 30/11/2026 — gerado em 03/12/2026 14:05"
    header = [cell.value for cell in sheet[HEADER_ROW + 1]]
    assert header == [c.label("pt-BR") for c in VEHICLE_COLUMNS]
    assert all(cell.font.b for cell in sheet[HEADER_ROW + 1])
    assert sheet.freeze_panes == f"A{HEADER_ROW + 2}"
    assert sheet.auto_filter.ref == f"A{HEADER_ROW + 1}:G{HEADER_ROW + 3}"
    assert sheet.column_dimensions["B"].width == pytest.approx(22, abs=1)


def test_xlsx_values_are_typed() -> None:
    sheet = openpyxl.load_workbook(io.BytesIO(report_xlsx(_report())))["Veículos"]
    first, second, totals = HEADER_ROW + 2, HEADER_ROW + 3, HEADER_ROW + 4
    row = {c.name: sheet.cell(first, i + 1) for i, c in enumerate(VEHICLE_COLUMNS)}
    assert row["placa"].value == "ABC1D23"
    assert row["descricao"].value == "Descrição ação"
    assert row["viagens"].value == 12
    assert isinstance(row["viagens"].value, int)
    assert row["viagens"].number_format == "0"
    assert row["km"].value == 1234.5
    assert isinstance(row["km"].value, float)
    assert row["km"].number_format == "#,##0.0"
    # openpyxl reads a number under "[h]:mm" as a timedelta; the raw value is below.
    assert row["conducao"].value == timedelta(seconds=90000)
    assert row["conducao"].number_format == "[h]:mm"
    assert row["dia"].value == datetime(2026, 11, 3)
    assert row["dia"].number_format == "dd/mm/yyyy"
    assert row["ultima"].value == datetime(2026, 11, 3, 14, 5)
    assert row["ultima"].number_format == "dd/mm/yyyy hh:mm"

    # The formula-like text is text, behind a quote.
    assert sheet.cell(second, 2).value == "'=1+1"
    assert sheet.cell(second, 2).data_type == "s"
    assert sheet.cell(second, 4).value == 0.25
    # Nones stay empty.
    assert sheet.cell(second, 6).value is None
    assert sheet.cell(second, 7).value is None

    assert sheet.cell(totals, 1).value == "Total"
    assert sheet.cell(totals, 1).font.b
    assert sheet.cell(totals, 2).value is None
    assert sheet.cell(totals, 3).value == 15
    assert sheet.cell(totals, 4).value == 1234.75
    assert sheet.cell(totals, 5).value == timedelta(seconds=95400)
    assert sheet.max_row == totals


def test_xlsx_durations_are_excel_times() -> None:
    """The stored number of a duration cell is seconds / 86400."""
    with zipfile.ZipFile(io.BytesIO(report_xlsx(_report()))) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    first = HEADER_ROW + 2
    for ref, seconds in ((f"E{first}", 90000), (f"E{first + 1}", 5400)):
        match = re.search(rf'<c r="{ref}"[^>]*><v>([^<]+)</v>', xml)
        assert match is not None, ref
        assert float(match.group(1)) == pytest.approx(seconds / 86400, rel=1e-12)


def test_xlsx_second_sheet_and_english() -> None:
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(_report(), lang="en")))
    assert book.sheetnames[0] == "Vehicles"
    sheet = book["Vehicles"]
    assert sheet["A3"].value == "Period: 2026-11-01 to 2026-11-30 — generated 2026-12-03 14:05"
    assert sheet.cell(HEADER_ROW + 2, 6).number_format == "yyyy-mm-dd"
    assert sheet.cell(HEADER_ROW + 2, 7).number_format == "yyyy-mm-dd hh:mm"
    daily = book[book.sheetnames[1]]
    assert [c.value for c in daily[HEADER_ROW + 1]] == ["Day", "Km", "Stops"]
    assert daily.cell(HEADER_ROW + 2, 2).value == 10.125
    assert daily.cell(HEADER_ROW + 2, 2).number_format == "#,##0.00"
    assert daily.cell(HEADER_ROW + 3, 2).value is None
    assert daily.cell(HEADER_ROW + 3, 3).value == 0
    # No totals line: the data end the sheet.
    assert daily.max_row == HEADER_ROW + 3


def test_sheet_names_are_valid_and_unique() -> None:
    def section(title: str) -> Section:
        return Section("s", Label(title, title), VEHICLE_COLUMNS, ())

    long = "Quilometragem por veículo e por motorista no mês"
    report = _report(
        sections=(
            section("Rotas: A/B [1]?"),
            section(long),
            section(long),
            section("veículos"),
            section("Veículos"),
            section("'"),
            section("x" * 30 + "'y"),
        )
    )
    names = sheet_names(report)
    assert names[0] == "Rotas A B 1"
    assert all(len(n) <= 31 and not set(n) & set("[]:*?/\\") for n in names)
    assert len({n.casefold() for n in names}) == len(names)
    assert names[2].endswith(" (2)")
    assert names[4] == "Veículos (2)"
    assert names[5] == "Sheet6"
    assert names[6] == "x" * 30  # cut before the quote Excel refuses at the end
    book = openpyxl.load_workbook(io.BytesIO(report_xlsx(report)))
    assert book.sheetnames == names


# -- PDF -------------------------------------------------------------------------


def test_pdf_text_and_accents() -> None:
    data = report_pdf(_report())
    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 1
    text = _pdf_text(data)
    for expected in (
        "Resumo da frota",
        "Transportes São João",
        "Descrição",
        "ação",
        "01/11/2026",
        "30/11/2026",
        "Gerado em 03/12/2026 14:05",
        "1.234,5",
        "25:00",
        "1:30",
        "03/11/2026 14:05",
        "=1+1",  # a page is no spreadsheet: printed as it is
        "Total",
        "1.234,8",
        "26:30",
        "10,13",
        "página 1 de 1",
    ):
        assert expected in text, expected


def test_pdf_english_and_empty_section() -> None:
    empty = Section("empty", Label("Alertas", "Alerts"), VEHICLE_COLUMNS, ())
    text = _pdf_text(report_pdf(_report(sections=(VEHICLES, empty)), lang="en"))
    for expected in (
        "Period: 2026-11-01 to 2026-11-30",
        "1,234.5",
        "25:00",
        "No data",
        "page 1 of",
    ):
        assert expected in text, expected
    text = _pdf_text(report_pdf(_report(sections=(empty,))))
    assert "Sem dados no período" in text


def test_pdf_one_day_report_shows_clock_times() -> None:
    day = date(2026, 11, 3)
    columns = (VEHICLE_COLUMNS[0], VEHICLE_COLUMNS[6])
    rows: tuple[Row, ...] = (
        {"placa": "ABC1D23", "ultima": LAST_SEEN},
        # 02:50 UTC on the 3rd is 23:50 on the 2nd in São Paulo: another day, dated.
        {"placa": "XYZ9K88", "ultima": datetime(2026, 11, 3, 2, 50, tzinfo=UTC)},
    )
    section = Section("last", Label("Últimas", "Last"), columns, rows)
    text = _pdf_text(report_pdf(_report(first=day, last=day, sections=(section,))))
    assert "ABC1D23 14:05" in text
    assert "03/11/2026 14:05" not in text
    assert "XYZ9K88 02/11/2026 23:50" in text
    assert "Período: 03/11/2026" in text
    assert "Período: 03/11/2026 a" not in text


def test_pdf_header_repeats_on_every_page() -> None:
    rows: tuple[Row, ...] = tuple(
        {"dia": date(2026, 11, 1), "km": float(i), "paradas": i} for i in range(400)
    )
    daily = Section("daily", Label("Por dia", "By day"), DAILY.columns, rows)
    reader = PdfReader(io.BytesIO(report_pdf(_report(sections=(daily,)))))
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) > 3
    for number, text in enumerate(pages, start=1):
        assert "Resumo da frota" in text
        assert "Paradas" in text  # the table's header row
        assert f"página {number} de {len(pages)}" in text
    assert "399" in pages[-1]


def test_pdf_long_scope_is_cut_before_the_period() -> None:
    scope = ", ".join(f"frota {i}" for i in range(60))
    text = _pdf_text(report_pdf(_report(scope=scope, sections=(DAILY,))))
    assert "frota 1, frota 2" in text
    assert "frota 59" not in text
    assert "…" in text
    assert "Período: 01/11/2026 a 30/11/2026" in text
    assert "Gerado em 03/12/2026 14:05" in text


def test_pdf_orientation_follows_the_widest_section() -> None:
    narrow = PdfReader(io.BytesIO(report_pdf(_report(sections=(DAILY,))))).pages[0]
    assert float(narrow.mediabox.width) < float(narrow.mediabox.height)
    wide_columns = tuple(
        Column(f"c{i}", Label(f"Coluna {i}", f"Column {i}"), "number", 1, 12) for i in range(17)
    )
    wide = Section("wide", Label("Larga", "Wide"), wide_columns, ({"c0": 1.0},))
    page = PdfReader(io.BytesIO(report_pdf(_report(sections=(wide,))))).pages[0]
    assert float(page.mediabox.width) > float(page.mediabox.height)


def test_pdf_texts_outside_windows_1252_do_not_fail() -> None:
    odd = Section(
        "odd",
        Label("Ocorrências", "Events"),
        (Column("t", Label("Texto", "Text"), "text", width=30),),
        ({"t": "Parada 🚚 → cliente\nlinha dois"}, {"t": "a\u0303o"}, {"t": "x" * 500}),
    )
    text = _pdf_text(report_pdf(_report(sections=(odd,))))
    assert "Parada ? ? cliente linha dois" in text
    assert "ão" in text  # the combining tilde composed into ã
    assert "…" in text  # the long text cut to its column


def test_pdf_with_route_drawing() -> None:
    data = report_pdf(_report(drawing=_drawing()))
    text = _pdf_text(data)
    assert "Garagem Central" in text
    assert "Cliente Ação & Cia <Loja 2>" in text
    assert " km" in text  # the scale bar
    assert "Descrição" in text  # the tables follow the drawing


def test_pdf_drawing_of_many_points_is_thinned() -> None:
    points = 50_000
    small = len(report_pdf(_report(drawing=_drawing(200), sections=())))
    large = len(report_pdf(_report(drawing=_drawing(points), sections=())))
    # 2,000 vertices at ~16 bytes each, compressed: nothing like 50,000 of them.
    assert large < small + 40_000
    line = [(float(i), float(i)) for i in range(points)]
    kept = thinned(line)
    assert len(kept) <= MAX_LINE_VERTICES
    assert kept[0] == line[0]
    assert kept[-1] == line[-1]
    assert thinned(line[:10]) == line[:10]


def test_pdf_drawing_of_one_place_and_of_nothing() -> None:
    one = RouteDrawing(line=((-23.5, -46.6),) * 3, stops=(Stop(-23.5, -46.6, "Aqui"),))
    assert "Aqui" in _pdf_text(report_pdf(_report(drawing=one, sections=())))
    nothing = RouteDrawing(line=((math.nan, 0.0),))
    assert "Sem trajeto" in _pdf_text(report_pdf(_report(drawing=nothing, sections=())))


def test_pdf_renders_with_pdftoppm(tmp_path: Path) -> None:
    program = shutil.which("pdftoppm")
    if program is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    source = tmp_path / "report.pdf"
    source.write_bytes(report_pdf(_report(drawing=_drawing())))
    subprocess.run(
        [program, "-png", "-r", "60", "-f", "1", "-l", "1", str(source), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    pngs = sorted(tmp_path.glob("page*.png"))
    assert pngs
    assert pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pngs[0].stat().st_size > 5_000


# -- KML -------------------------------------------------------------------------


def test_day_kml() -> None:
    at = datetime(2026, 11, 3, 8, 0, tzinfo=TZ)
    line = [(-23.55, -46.63, at), (-23.54, -46.62, None), (-23.53, -46.61, at)]
    stops = [
        (-23.54, -46.62, "Posto <Shell> & Cia", at, at + timedelta(minutes=25)),
        (-23.53, -46.61, "Cliente São José", at + timedelta(hours=2), None),
    ]
    # S314: the XML is our own output, not untrusted input.
    root = ET.fromstring(day_kml("ABC1D23", date(2026, 11, 3), line, stops))  # noqa: S314
    document = root.find(f"{KML}Document")
    assert document is not None
    assert document.findtext(f"{KML}name") == "ABC1D23 03/11/2026"
    placemarks = document.findall(f"{KML}Placemark")
    assert len(placemarks) == len(stops) + 1
    coordinates = document.findtext(f".//{KML}LineString/{KML}coordinates")
    assert coordinates is not None
    first = coordinates.split()[0].split(",")
    assert (float(first[0]), float(first[1])) == (-46.63, -23.55)  # lon,lat
    assert len(coordinates.split()) == 3
    names = [p.findtext(f"{KML}name") for p in placemarks[1:]]
    assert names == ["Posto <Shell> & Cia", "Cliente São José"]
    description = placemarks[1].findtext(f"{KML}description")
    assert description is not None
    assert "08:00" in description
    assert "08:25" in description
    point = placemarks[2].findtext(f".//{KML}Point/{KML}coordinates")
    assert point == "-46.610000,-23.530000"
    assert document.find(f"{KML}Style/{KML}LineStyle") is not None
