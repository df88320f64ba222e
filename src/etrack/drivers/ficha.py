"""The monthly "ficha de trabalho" of one driver, as XLSX and as PDF.

Pure: a driver's working days of one month (`etrack.drivers.workday.DriverDay`)
-> one row per calendar day (days without work are rows of "—"; two working
days starting on one date are two rows of that date), the month's totals, and
the two documents, with signature lines for the driver and the company.

Texts are Portuguese from the small tables below (no locale calls). The PDF
uses fpdf2's core Helvetica in its Windows-1252 encoding (WinAnsiEncoding):
it covers Portuguese accents and the dash "—" with no font file.
"""

from __future__ import annotations

import calendar
import io
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from typing import Any

import xlsxwriter  # type: ignore[import-untyped]
from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos
from fpdf.fonts import FontFace

from etrack.drivers.workday import DriverDay, Violation

__all__ = [
    "COLUMNS",
    "EMPTY",
    "LEGAL_BASIS",
    "MONTHS",
    "WEEKDAYS",
    "Ficha",
    "FichaRow",
    "FichaTotals",
    "ficha_pdf",
    "ficha_rows",
    "ficha_title",
    "ficha_totals",
    "ficha_xlsx",
    "hmm",
    "violation_label",
]

MONTHS: tuple[str, ...] = (
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
)
WEEKDAYS: tuple[str, ...] = ("segunda", "terça", "quarta", "quinta", "sexta", "sábado", "domingo")
"""Monday first, as `date.weekday()` counts."""

EMPTY = "—"
LEGAL_BASIS = "Lei 13.103/2015; CTB art. 67-C"

COLUMNS: tuple[str, ...] = (
    "Data",
    "Dia",
    "Início",
    "Fim",
    "Direção",
    "Intervalos",
    "Descanso anterior",
    "Jornada",
    "Horas extras",
    "Infrações",
)


@dataclass(frozen=True)
class Ficha:
    driver_id: str
    driver_name: str
    document: str | None
    frota: str | None
    company: str | None
    """The account's name."""
    month: date
    """The 1st of the month."""
    days: tuple[DriverDay, ...]
    """The driver's working days dated in that month (others are left out)."""
    tz: tzinfo


@dataclass(frozen=True)
class FichaRow:
    """One calendar day, or one working day of it; `work` is None on a day off."""

    day: date
    work: DriverDay | None
    date: str
    """dd/mm/aaaa"""
    weekday: str
    start: str
    """HH:MM local, or "—"."""
    end: str
    """HH:MM local, "02:10 (+1)" on a later date, or "—"."""
    driving_s: float | None
    breaks_s: float | None
    rest_before_s: float | None
    working_s: float | None
    overtime_s: float | None
    violations: tuple[str, ...]
    """The short Portuguese labels, in time order."""

    @property
    def driving(self) -> str:
        return _duration_text(self.driving_s)

    @property
    def breaks(self) -> str:
        return _duration_text(self.breaks_s)

    @property
    def rest_before(self) -> str:
        return _duration_text(self.rest_before_s)

    @property
    def working(self) -> str:
        return _duration_text(self.working_s)

    @property
    def overtime(self) -> str:
        return _duration_text(self.overtime_s)

    @property
    def violations_text(self) -> str:
        return "; ".join(self.violations) if self.violations else EMPTY

    def texts(self) -> list[str]:
        """The row as the table columns (COLUMNS) show it."""
        return [
            self.date,
            self.weekday,
            self.start,
            self.end,
            self.driving,
            self.breaks,
            self.rest_before,
            self.working,
            self.overtime,
            self.violations_text,
        ]


@dataclass(frozen=True)
class FichaTotals:
    driving_s: float
    breaks_s: float
    working_s: float
    overtime_s: float
    violations: int
    days_worked: int

    def texts(self) -> list[str]:
        """The totals row under COLUMNS (rest before and times are not summed)."""
        return [
            "Total",
            f"{self.days_worked} dia(s)",
            "",
            "",
            hmm(self.driving_s),
            hmm(self.breaks_s),
            "",
            hmm(self.working_s),
            hmm(self.overtime_s),
            f"{self.violations} infração(ões)",
        ]


def hmm(seconds: float) -> str:
    """A duration as h:mm, to the nearest minute ("8:05", "27:40")."""
    minutes = round(max(0.0, seconds) / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def _duration_text(seconds: float | None) -> str:
    return EMPTY if seconds is None else hmm(seconds)


def _hours(seconds: float, *, always_minutes: bool) -> str:
    """5h30, 6h, 0h42: the label style, to the nearest minute."""
    minutes = round(max(0.0, seconds) / 60)
    hours, rest = divmod(minutes, 60)
    if rest == 0 and not always_minutes:
        return f"{hours}h"
    return f"{hours}h{rest:02d}"


def violation_label(violation: Violation) -> str:
    """The short Portuguese label of a violation, with its excess."""
    excess = _hours(violation.excess_s, always_minutes=True)
    limit = _hours(violation.limit_s, always_minutes=False)
    if violation.rule == "uninterrupted_driving":
        return f"Direção ininterrupta > {limit} (+{excess})"
    if violation.rule == "rest_in_driving":
        return f"Sem descanso de 30 min em {limit}"
    if violation.rule == "daily_rest":
        return f"Descanso diário < {limit} (faltaram {excess})"
    return f"Jornada acima do limite (+{excess})"


def ficha_title(ficha: Ficha) -> str:
    """Ficha de trabalho — NAME — março de 2025"""
    month = f"{MONTHS[ficha.month.month - 1]} de {ficha.month.year}"
    return f"Ficha de trabalho — {ficha.driver_name} — {month}"


def _month_days(month: date) -> list[date]:
    count = calendar.monthrange(month.year, month.month)[1]
    return [date(month.year, month.month, d) for d in range(1, count + 1)]


def _clock(moment: datetime, day: date, tz: tzinfo) -> str:
    local = moment.astimezone(tz)
    text = local.strftime("%H:%M")
    later = (local.date() - day).days
    return f"{text} (+{later})" if later > 0 else text


def ficha_rows(ficha: Ficha) -> list[FichaRow]:
    """One row per calendar day of the month, oldest first; a date with two
    working days has two rows. The totals are `ficha_totals`."""
    by_day: dict[date, list[DriverDay]] = {}
    for work in sorted(ficha.days, key=lambda d: (d.day, d.start)):
        by_day.setdefault(work.day, []).append(work)
    rows: list[FichaRow] = []
    for day in _month_days(ficha.month):
        text = day.strftime("%d/%m/%Y")
        weekday = WEEKDAYS[day.weekday()]
        works = by_day.get(day)
        if not works:
            rows.append(
                FichaRow(day, None, text, weekday, EMPTY, EMPTY, None, None, None, None, None, ())
            )
            continue
        for work in works:
            rows.append(
                FichaRow(
                    day=day,
                    work=work,
                    date=text,
                    weekday=weekday,
                    start=_clock(work.start, day, ficha.tz),
                    end=_clock(work.end, day, ficha.tz),
                    driving_s=work.driving_s,
                    breaks_s=work.breaks_s,
                    rest_before_s=work.rest_before_s,
                    working_s=work.working_s,
                    overtime_s=work.overtime_s,
                    violations=tuple(violation_label(v) for v in work.violations),
                )
            )
    return rows


def ficha_totals(ficha: Ficha) -> FichaTotals:
    """The month's sums over the rows `ficha_rows` lists."""
    works = [row.work for row in ficha_rows(ficha) if row.work is not None]
    return FichaTotals(
        driving_s=sum(w.driving_s for w in works),
        breaks_s=sum(w.breaks_s for w in works),
        working_s=sum(w.working_s for w in works),
        overtime_s=sum(w.overtime_s for w in works),
        violations=sum(len(w.violations) for w in works),
        days_worked=len(works),
    )


def _identity_lines(ficha: Ficha) -> list[tuple[str, str]]:
    return [
        ("Motorista", f"{ficha.driver_name} ({ficha.driver_id})"),
        ("Documento", ficha.document or EMPTY),
        ("Frota", ficha.frota or EMPTY),
        ("Empresa", ficha.company or EMPTY),
    ]


# -- XLSX ---------------------------------------------------------------------

_DURATION_COLUMNS: tuple[tuple[int, str], ...] = (
    (4, "driving_s"),
    (5, "breaks_s"),
    (6, "rest_before_s"),
    (7, "working_s"),
    (8, "overtime_s"),
)
_SUMMED = {"driving_s", "breaks_s", "working_s", "overtime_s"}
XLSX_HEADER_ROW = 6
"""0-based row of the table header; the days follow it."""


def _xl_text(value: str) -> str:
    """write_string keeps text from being a formula in Excel; the quote also
    protects whoever re-saves the sheet as CSV."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _xl_cell(col: int, row: int) -> str:
    return f"{xlsxwriter.utility.xl_col_to_name(col)}{row + 1}"


def ficha_xlsx(ficha: Ficha) -> bytes:
    """The ficha as a workbook: durations are Excel time values ([h]:mm),
    dates are dates, the totals are SUM formulas (with their values cached)."""
    rows = ficha_rows(ficha)
    totals = ficha_totals(ficha)
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = workbook.add_worksheet(f"Ficha {ficha.month:%Y-%m}")
    title = workbook.add_format({"bold": True, "font_size": 14})
    label = workbook.add_format({"bold": True})
    header = workbook.add_format(
        {"bold": True, "bg_color": "#DDE7F0", "border": 1, "text_wrap": True, "valign": "top"}
    )
    text = workbook.add_format({"border": 1})
    wrap = workbook.add_format({"border": 1, "text_wrap": True})
    day = workbook.add_format({"border": 1, "num_format": "dd/mm/yyyy"})
    duration = workbook.add_format({"border": 1, "num_format": "[h]:mm"})
    total_text = workbook.add_format({"border": 1, "bold": True, "bg_color": "#F2F2F2"})
    total_duration = workbook.add_format(
        {"border": 1, "bold": True, "bg_color": "#F2F2F2", "num_format": "[h]:mm"}
    )
    line = workbook.add_format({"top": 1})

    sheet.write_string(0, 0, _xl_text(ficha_title(ficha)), title)
    for r, (name, value) in enumerate(_identity_lines(ficha), start=1):
        sheet.write_string(r, 0, name, label)
        sheet.write_string(r, 1, _xl_text(value))
    for col, width in enumerate((12, 10, 9, 11, 10, 11, 11, 10, 10, 60)):
        sheet.set_column(col, col, width)
    for col, name in enumerate(COLUMNS):
        sheet.write_string(XLSX_HEADER_ROW, col, name, header)
    sheet.freeze_panes(XLSX_HEADER_ROW + 1, 0)

    first = XLSX_HEADER_ROW + 1
    for r, row in enumerate(rows, start=first):
        sheet.write_datetime(r, 0, datetime(row.day.year, row.day.month, row.day.day), day)
        sheet.write_string(r, 1, row.weekday, text)
        sheet.write_string(r, 2, row.start, text)
        sheet.write_string(r, 3, row.end, text)
        for col, attr in _DURATION_COLUMNS:
            seconds: float | None = getattr(row, attr)
            if seconds is None:
                sheet.write_string(r, col, EMPTY, text)
            else:
                sheet.write_number(r, col, seconds / 86400, duration)
        sheet.write_string(r, 9, _xl_text(row.violations_text), wrap)

    last = first + len(rows) - 1
    t = last + 1
    values: dict[str, float] = {
        "driving_s": totals.driving_s,
        "breaks_s": totals.breaks_s,
        "working_s": totals.working_s,
        "overtime_s": totals.overtime_s,
    }
    for col, cell in enumerate(totals.texts()):
        sheet.write_string(t, col, cell, total_text)
    for col, attr in _DURATION_COLUMNS:
        if attr in _SUMMED:
            formula = f"=SUM({_xl_cell(col, first)}:{_xl_cell(col, last)})"
            sheet.write_formula(t, col, formula, total_duration, values[attr] / 86400)
    sheet.write_number(t, 9, totals.violations, total_text)

    sign = t + 4
    sheet.merge_range(sign, 0, sign, 3, "", line)
    sheet.merge_range(sign, 6, sign, 9, "", line)
    sheet.write_string(sign + 1, 0, "Assinatura do motorista")
    sheet.write_string(sign + 1, 6, "Assinatura da empresa")
    sheet.write_string(sign + 3, 0, f"Base legal: {LEGAL_BASIS}")

    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(XLSX_HEADER_ROW)
    workbook.close()
    return buffer.getvalue()


# -- PDF ----------------------------------------------------------------------

_PDF_WIDTHS: tuple[float, ...] = (21, 17, 13, 19, 16, 18, 20, 16, 17, 120)
"""mm, summing to the 277 mm inside the A4 landscape margins."""


class _FichaPDF(FPDF):
    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, LEGAL_BASIS, align=Align.L)
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Página {self.page_no()}/{{nb}}", align=Align.R)


def _pdf_line(pdf: FPDF, height: float, text: str) -> None:
    pdf.cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def ficha_pdf(ficha: Ficha) -> bytes:
    """The ficha as an A4 landscape PDF: the same table and totals, the
    signature lines, the legal basis and page numbers in the footer."""
    rows = ficha_rows(ficha)
    totals = ficha_totals(ficha)
    pdf = _FichaPDF(orientation="L", unit="mm", format="A4")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_margins(10, 10, 10)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.set_title(ficha_title(ficha))
    pdf.set_creator("etrack")
    pdf.add_page()
    pdf.set_font("Helvetica", style="B", size=13)
    _pdf_line(pdf, 7, ficha_title(ficha))
    pdf.set_font("Helvetica", size=9)
    _pdf_line(pdf, 5, "   ".join(f"{name}: {value}" for name, value in _identity_lines(ficha)))
    pdf.ln(2)

    pdf.set_font("Helvetica", size=7.5)
    bold = FontFace(emphasis="BOLD", fill_color=(242, 242, 242))
    options: dict[str, Any] = {
        "col_widths": _PDF_WIDTHS,
        "width": sum(_PDF_WIDTHS),
        "line_height": 3.2,
        "text_align": "LEFT",
        "headings_style": FontFace(emphasis="BOLD", fill_color=(221, 231, 240)),
        "padding": 0.5,
    }
    with pdf.table(**options) as table:
        heading = table.row()
        for name in COLUMNS:
            heading.cell(name)
        for row in rows:
            cells = table.row()
            for value in row.texts():
                cells.cell(value)
        total = table.row()
        for value in totals.texts():
            total.cell(value, style=bold)

    if pdf.will_page_break(20):
        pdf.add_page()
    pdf.ln(13)
    y = pdf.get_y()
    pdf.line(pdf.l_margin, y, pdf.l_margin + 100, y)
    pdf.line(pdf.w - pdf.r_margin - 100, y, pdf.w - pdf.r_margin, y)
    pdf.set_font("Helvetica", size=9)
    pdf.set_xy(pdf.l_margin, y + 1)
    pdf.cell(100, 5, "Assinatura do motorista", align=Align.C)
    pdf.set_xy(pdf.w - pdf.r_margin - 100, y + 1)
    pdf.cell(100, 5, "Assinatura da empresa", align=Align.C)
    return bytes(pdf.output())
