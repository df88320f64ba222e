"""What a report is, whatever its kind and format: titled sections of typed
columns, rows and totals, for one scope and period.

A report kind (etrack.reports.kinds) builds a `Report` from the database; a
format (etrack.reports.csvfile, .xlsx, .pdf) turns it into bytes. Cells are
plain values typed by their column, so every format writes a real number, a
real date or a duration its own way (the CSV of Brazilian Excel writes
"1.234,5"; the workbook writes the number 1234.5 with a number format).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Literal

__all__ = [
    "LANGUAGES",
    "Cell",
    "Column",
    "ColumnKind",
    "Label",
    "Report",
    "RouteDrawing",
    "Row",
    "Section",
    "Stop",
]

LANGUAGES = ("pt-BR", "en")

# text: free text from the API (descricao, an address: may need guarding
#   against formula injection); int, number: with `decimals`; duration:
#   seconds (h:mm in pages and PDFs, an Excel time in workbooks); date: a
#   local day; moment: an aware datetime, shown in the report's time zone.
ColumnKind = Literal["text", "int", "number", "duration", "date", "moment"]
Cell = str | int | float | date | datetime | None
Row = Mapping[str, Cell]


@dataclass(frozen=True, slots=True)
class Label:
    """A text in both of the UI's languages."""

    pt: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.pt if lang == "pt-BR" else self.en


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the machine name: JSON key, RFC 4180 CSV header
    label: Label
    kind: ColumnKind
    decimals: int = 0  # for number
    width: float = 12.0  # characters, for workbooks and PDFs


@dataclass(frozen=True, slots=True)
class Section:
    """One table: a sheet of the workbook, a CSV file, a table of the PDF."""

    name: str  # a slug: the CSV file's suffix, the JSON key
    title: Label
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    # The last line (sums, the highest top speed...): None = no totals line.
    totals: Row | None = None

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Stop:
    latitude: float
    longitude: float
    label: str


@dataclass(frozen=True, slots=True)
class RouteDrawing:
    """A vehicle day's route for the PDF: the line and the stops (no map tiles)."""

    line: tuple[tuple[float, float], ...]  # (latitude, longitude)
    stops: tuple[Stop, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    kind: str
    title: Label
    account: str
    scope: str  # who it covers: "frota X", "ABC1D23", "toda a frota"
    first: date
    last: date
    tz: tzinfo
    generated_at: datetime  # aware
    sections: tuple[Section, ...]
    drawing: RouteDrawing | None = None
    # The report's page in the web UI (ETRACK_WEB_PUBLIC_URL), for the e-mail.
    link: str | None = None
    notes: tuple[str, ...] = field(default=())

    def section(self, name: str) -> Section:
        for section in self.sections:
            if section.name == name:
                return section
        raise KeyError(name)

    def file_stem(self) -> str:
        """etrack-fleet-summary-2026-11-01_2026-11-30: dated, no spaces."""
        span = (
            self.first.isoformat()
            if self.first == self.last
            else f"{self.first.isoformat()}_{self.last.isoformat()}"
        )
        return f"etrack-{self.kind}-{span}"


def section_of(
    name: str,
    title: Label,
    columns: Sequence[Column],
    rows: Sequence[Row],
    totals: Row | None = None,
) -> Section:
    return Section(name, title, tuple(columns), tuple(rows), totals)
