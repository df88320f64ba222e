"""A report as an Excel workbook: one worksheet per section.

Values are real spreadsheet values, never numbers as text, so the reader can
sum and filter them: numbers with a number format of the column's decimals,
durations as Excel time values (seconds / 86400, shown "[h]:mm" so 25 hours
stay 25:00), days as dates and moments as the report time zone's wall clock
(Excel has no time zones). Texts come from the API (descriptions, addresses)
and go through `safe_text`, so "=1+1" is the text "'=1+1", not a formula.

Layout of every sheet: the title, account and scope, period and generation
time on rows 1-3, then the header row (frozen, with an autofilter over the
data rows), the rows and the totals row, if the section has one.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]

from etrack.reports.cells import br_date, br_moment, iso_moment, local_naive, safe_text
from etrack.reports.table import Cell, Column, Report, Section

__all__ = ["HEADER_ROW", "report_xlsx", "sheet_names"]

HEADER_ROW = 3
"""0-based row of each sheet's table header; the data rows follow it."""

_SHEET_NAME_MAX = 31
_SHEET_NAME_BAD = str.maketrans(dict.fromkeys("[]:*?/\\", " "))

_HEADER_STYLE = {"bold": True, "bg_color": "#DDE7F0", "border": 1, "valign": "top"}
_TOTALS_STYLE = {"bold": True, "bg_color": "#F2F2F2", "top": 1}


def _unique_name(wanted: str, taken: set[str], index: int) -> str:
    # Excel refuses these characters, more than 31 of them, a name starting or
    # ending with an apostrophe, "History", and names equal but for case.
    name = " ".join(wanted.translate(_SHEET_NAME_BAD).split())
    name = name[:_SHEET_NAME_MAX].strip("' ") or f"Sheet{index + 1}"
    candidate, n = name, 1
    while candidate.casefold() in taken or candidate.casefold() == "history":
        n += 1
        suffix = f" ({n})"
        candidate = name[: _SHEET_NAME_MAX - len(suffix)].rstrip("' ") + suffix
    taken.add(candidate.casefold())
    return candidate


def sheet_names(report: Report, lang: str = "pt-BR") -> list[str]:
    """The worksheet names `report_xlsx` gives the sections, in order."""
    taken: set[str] = set()
    return [_unique_name(s.title(lang), taken, i) for i, s in enumerate(report.sections)]


def _number_format(decimals: int) -> str:
    return "#,##0." + "0" * decimals if decimals > 0 else "#,##0"


def _period_line(report: Report, lang: str) -> str:
    pt = lang == "pt-BR"
    first = br_date(report.first) if pt else report.first.isoformat()
    last = br_date(report.last) if pt else report.last.isoformat()
    if pt:
        span = first if report.first == report.last else f"{first} a {last}"
        generated = br_moment(report.generated_at, report.tz)
        return f"Período: {span} — gerado em {generated}"
    span = first if report.first == report.last else f"{first} to {last}"
    generated = iso_moment(report.generated_at, report.tz)
    return f"Period: {span} — generated {generated}"


# A cell writer: (sheet, row, col, value) -> None, one per column and row
# style, resolved once per sheet so the 10,000-row sections pay no dispatch
# on the column kind per cell.
_Writer = Callable[[Any, int, int, Cell], None]


class _Formats:
    """The workbook's formats, made once (xlsxwriter keeps one per call)."""

    def __init__(self, workbook: Any, lang: str) -> None:
        self.workbook = workbook
        pt = lang == "pt-BR"
        self.date = "dd/mm/yyyy" if pt else "yyyy-mm-dd"
        self.moment = "dd/mm/yyyy hh:mm" if pt else "yyyy-mm-dd hh:mm"
        self.title = workbook.add_format({"bold": True, "font_size": 14})
        self.header = workbook.add_format(_HEADER_STYLE)
        self._cache: dict[tuple[str, bool], Any] = {}

    def get(self, num_format: str, totals: bool) -> Any:
        key = (num_format, totals)
        found = self._cache.get(key)
        if found is None:
            props: dict[str, object] = dict(_TOTALS_STYLE) if totals else {}
            if num_format:
                props["num_format"] = num_format
            found = self.workbook.add_format(props)
            self._cache[key] = found
        return found


def _writer(column: Column, formats: _Formats, report: Report, totals: bool) -> _Writer:
    kind = column.kind
    text_format = formats.get("", totals)
    general = formats.get("General", totals)
    if kind == "int":
        number_format = formats.get("0", totals)
    elif kind == "number":
        number_format = formats.get(_number_format(column.decimals), totals)
    elif kind == "duration":
        number_format = formats.get("[h]:mm", totals)
    else:
        number_format = general
    date_format = formats.get(formats.date, totals)
    moment_format = formats.get(formats.moment, totals)
    tz = report.tz

    def write(sheet: Any, row: int, col: int, value: Cell) -> None:
        if value is None:
            if totals:  # keeps the totals row's fill across the table
                sheet.write_blank(row, col, None, text_format)
            return
        if isinstance(value, str):
            sheet.write_string(row, col, safe_text(value), text_format)
        elif isinstance(value, datetime):
            local = local_naive(value, tz)
            if kind == "date":
                local = datetime(local.year, local.month, local.day)
                sheet.write_datetime(row, col, local, date_format)
            else:
                sheet.write_datetime(row, col, local, moment_format)
        elif isinstance(value, date):
            day = datetime(value.year, value.month, value.day)
            sheet.write_datetime(row, col, day, date_format)
        elif not math.isfinite(value):
            # Excel has no NaN; an empty cell says "no value" as None does.
            return
        elif kind == "duration":
            sheet.write_number(row, col, value / 86400, number_format)
        else:
            sheet.write_number(row, col, value, number_format)

    return write


def _write_section(ws: Any, section: Section, report: Report, lang: str, formats: _Formats) -> None:
    ws.write_string(0, 0, safe_text(report.title(lang)), formats.title)
    ws.write_string(1, 0, safe_text(f"{report.account} — {report.scope}"))
    ws.write_string(2, 0, _period_line(report, lang))

    columns = section.columns
    for c, column in enumerate(columns):
        ws.set_column(c, c, column.width)
        ws.write_string(HEADER_ROW, c, column.label(lang), formats.header)
    if not columns:
        return

    names = [column.name for column in columns]
    writers = [_writer(column, formats, report, totals=False) for column in columns]
    row_index = HEADER_ROW
    for row in section.rows:
        row_index += 1
        get = row.get
        for c, name in enumerate(names):
            value = get(name)
            if value is not None:
                writers[c](ws, row_index, c, value)
    last_data_row = row_index

    ws.freeze_panes(HEADER_ROW + 1, 0)
    # The filter covers the data rows, not the totals: sorting must not move it.
    ws.autofilter(HEADER_ROW, 0, last_data_row, len(columns) - 1)

    if section.totals is not None:
        totals = section.totals
        row_index += 1
        total_writers = [_writer(column, formats, report, totals=True) for column in columns]
        label_col = next(
            (c for c, col in enumerate(columns) if col.kind == "text"),
            None,
        )
        for c, name in enumerate(names):
            value = totals.get(name)
            if value is None and c == label_col:
                value = "Total"
            total_writers[c](ws, row_index, c, value)


def report_xlsx(report: Report, lang: str = "pt-BR") -> bytes:
    """The report as an .xlsx workbook, one worksheet per section, in `lang`
    ("pt-BR" or "en": labels, the title lines and date formats)."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "remove_timezone": True})
    formats = _Formats(workbook, lang)
    names = sheet_names(report, lang)
    if not report.sections:
        # A workbook needs a sheet; an empty report still says what it is.
        empty = workbook.add_worksheet()
        empty.write_string(0, 0, safe_text(report.title(lang)), formats.title)
        empty.write_string(1, 0, safe_text(f"{report.account} — {report.scope}"))
        empty.write_string(2, 0, _period_line(report, lang))
    for name, section in zip(names, report.sections, strict=True):
        sheet = workbook.add_worksheet(name)
        sheet.set_paper(9)  # A4: the office printers are not Letter
        _write_section(sheet, section, report, lang, formats)
    workbook.set_properties({"title": report.title(lang), "author": "etrack"})
    workbook.close()
    return buffer.getvalue()
