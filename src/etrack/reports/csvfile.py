"""CSV files people open in Excel, and files programs read.

Two dialects:
- `excel-br` (the default for pt-BR): what a Brazilian Excel opens by a
  double click into columns: `;` between fields (its list separator, since
  the comma is the decimal mark), decimal commas without thousands marks
  ("1234,5": no doubt which mark is which), dates DD/MM/YYYY, local times
  DD/MM/YYYY HH:MM:SS, durations H:MM:SS (Excel reads them as times), UTF-8
  with a BOM (without it Excel reads UTF-8 as Windows-1252 and "Descrição"
  comes out garbled), headers in the report's language;
- `rfc4180`: commas, decimal points, ISO 8601 dates and times with the
  offset, durations in seconds, the columns' machine names as headers, no
  BOM: for scripts.

Text cells are guarded against formula injection (etrack.reports.cells.safe_text)
in both. A CSV holds one section's rows: the totals are the spreadsheet's to
compute, and a report of several sections is several files.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, tzinfo
from typing import Literal, get_args

from etrack.reports.cells import br_date, br_number, local_naive, safe_text
from etrack.reports.table import Cell, Column, Report, Section

__all__ = ["DIALECTS", "CsvDialect", "default_dialect", "report_csvs", "section_csv"]

CsvDialect = Literal["excel-br", "rfc4180"]
DIALECTS: tuple[str, ...] = get_args(CsvDialect)
BOM = "\ufeff"


def default_dialect(lang: str) -> CsvDialect:
    return "excel-br" if lang == "pt-BR" else "rfc4180"


def _hms(seconds: float) -> str:
    whole = round(abs(seconds))
    sign = "-" if seconds < 0 and whole else ""
    return f"{sign}{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _excel_br(value: Cell, column: Column, tz: tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, datetime):
        local = local_naive(value, tz)
        if column.kind == "date":
            return br_date(local)
        return f"{br_date(local)} {local:%H:%M:%S}"
    if isinstance(value, date):
        return br_date(value)
    if isinstance(value, bool):
        return str(int(value))
    if column.kind == "duration":
        return _hms(value)
    places = column.decimals if column.kind == "number" else 0
    # Thousands marks dropped: "1234,5" is a number to Excel and to people.
    return br_number(value, places).replace(".", "")


def _rfc4180(value: Cell, column: Column, tz: tzinfo) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, datetime):
        if column.kind == "date":
            return value.date().isoformat()
        return value.astimezone(tz).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def section_csv(section: Section, tz: tzinfo, dialect: CsvDialect, lang: str = "pt-BR") -> bytes:
    buffer = io.StringIO()
    if dialect == "excel-br":
        buffer.write(BOM)
        writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
        writer.writerow([safe_text(c.label(lang)) for c in section.columns])
        for row in section.rows:
            writer.writerow([_excel_br(row.get(c.name), c, tz) for c in section.columns])
    else:
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow([c.name for c in section.columns])
        for row in section.rows:
            writer.writerow([_rfc4180(row.get(c.name), c, tz) for c in section.columns])
    return buffer.getvalue().encode("utf-8")


def report_csvs(
    report: Report, dialect: CsvDialect, lang: str = "pt-BR"
) -> list[tuple[str, bytes]]:
    """One (file name, bytes) per section: NAME.csv, or NAME-SECTION.csv for several."""
    stem = report.file_stem()
    if len(report.sections) == 1:
        return [(f"{stem}.csv", section_csv(report.sections[0], report.tz, dialect, lang))]
    return [
        (f"{stem}-{s.name}.csv", section_csv(s, report.tz, dialect, lang)) for s in report.sections
    ]
