"""A report as an A4 PDF: the page header, the route drawing and the tables.

fpdf2 with its core Helvetica in the Windows-1252 encoding (WinAnsiEncoding),
as etrack.drivers.ficha does: Portuguese accents with no font file to ship.
Texts outside that code page (an emoji in a description) print as "?"
rather than failing the whole report.

The tables are drawn here, not with `FPDF.table()`: a month's fleet summary
has a by-day section of ~10,000 rows x 17 columns, and table() lays out every
cell as a multi-line paragraph: ~3.7 s per 1,000 such rows, some 40 s for
that section (and `get_string_width` copies the graphics state per call). Every row here is one
line: a text too wide for its column is cut with "…", widths come from a
per-font table of the code page's characters measured once, and header
labels wrap instead. The header row is repeated on every page a table
spans.

The route drawing is a plain equirectangular projection (x = longitude x
cos(mean latitude), y = latitude): right at the scale of one vehicle's day,
and no map tiles, so the PDF needs no network and no tile licence.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat

from fpdf import FPDF
from fpdf.enums import Align, XPos, YPos

from etrack.reports.cells import br_date, br_moment, br_number, cell_text, en_number, iso_moment
from etrack.reports.table import Cell, Column, Report, RouteDrawing, Row, Section

__all__ = ["MAX_LINE_VERTICES", "report_pdf", "thinned"]

MAX_LINE_VERTICES = 2000
"""The most vertices of the route line drawn: 50,000 GPS points in 180 mm
show no more than 2,000 do, and each costs PDF size and viewer time."""

_FONT = "Helvetica"
_ENCODING = "windows-1252"
_BODY_SIZE = 7.0
_HEADING_SIZE = 7.0
_MARGIN = 10.0
_FOOTER = 12.0  # mm kept free at the bottom for "página N de M"
_ROW_H = 4.0
_HEADING_LINE_H = 3.2
_PAD = 0.8  # mm of padding left and right in a cell
_MM_PER_CHAR = 1.45  # a Helvetica digit at 7 pt; Column.width counts characters
_PORTRAIT_WIDTH = 210.0 - 2 * _MARGIN
_LANDSCAPE_WIDTH = 297.0 - 2 * _MARGIN
_NUMERIC = frozenset({"int", "number", "duration"})
_ELLIPSIS = "…"

_HEADING_FILL = (221, 231, 240)
_ZEBRA_FILL = (246, 246, 246)
_TOTALS_FILL = (236, 236, 236)
_RULE = (160, 160, 160)

_BOX_W = 180.0
_BOX_H = 110.0
_BOX_PAD = 6.0
_KM_PER_DEGREE = 111.195  # a degree of latitude on the 6,371 km sphere
_LINE_BLUE = (20, 90, 200)
_START_GREEN = (30, 150, 60)
_END_RED = (200, 40, 40)


def _printable(text: str) -> str:
    """A text the core fonts can print: composed accents (a "ã" sent as "a" +
    combining tilde), no line breaks, "?" for what Windows-1252 lacks."""
    if text.isascii() and text.isprintable():
        return text
    text = unicodedata.normalize("NFC", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    return text.encode(_ENCODING, errors="replace").decode(_ENCODING)


class _Widths:
    """String widths (mm) of one font style and size, from the widths of the
    code page's characters: the same sums `get_string_width` makes, at a dict
    look-up per character (core fonts have no kerning)."""

    def __init__(self, pdf: FPDF, style: str, size: float) -> None:
        pdf.set_font(_FONT, style=style, size=size)
        self.style = style
        self.size = size
        self.chars: dict[str, float] = {}
        for code in range(32, 256):
            try:
                char = bytes([code]).decode(_ENCODING)
            except UnicodeDecodeError:  # the five holes of the code page
                continue
            self.chars[char] = pdf.get_string_width(char)
        self.fallback = self.chars["?"]

    def __call__(self, text: str) -> float:
        return sum(map(self.chars.get, text, repeat(self.fallback)))

    def fit(self, text: str, width: float) -> str:
        """`text`, cut with "…" to fit `width` mm."""
        if self(text) <= width:
            return text
        room = width - self(_ELLIPSIS)
        used = 0.0
        for i, char in enumerate(text):
            used += self.chars.get(char, self.fallback)
            if used > room:
                return text[:i].rstrip() + _ELLIPSIS
        return text

    def wrap(self, text: str, width: float) -> list[str]:
        """`text` in lines of at most `width` mm, broken between words (and
        inside a word longer than a line)."""
        lines: list[str] = []
        line = ""
        for word in text.split():
            candidate = f"{line} {word}" if line else word
            if self(candidate) <= width:
                line = candidate
                continue
            if line:
                lines.append(line)
            line = word
            while self(line) > width and len(line) > 1:
                cut = len(line) - 1
                while cut > 1 and self(line[:cut]) > width:
                    cut -= 1
                lines.append(line[:cut])
                line = line[cut:]
        if line:
            lines.append(line)
        return lines or [""]


def _period(report: Report, lang: str) -> str:
    if lang == "pt-BR":
        first, last = br_date(report.first), br_date(report.last)
        return f"Período: {first}" if first == last else f"Período: {first} a {last}"
    first, last = report.first.isoformat(), report.last.isoformat()
    return f"Period: {first}" if first == last else f"Period: {first} to {last}"


def _generated(report: Report, lang: str) -> str:
    if lang == "pt-BR":
        return f"Gerado em {br_moment(report.generated_at, report.tz)}"
    return f"Generated {iso_moment(report.generated_at, report.tz)}"


class _ReportPDF(FPDF):
    def __init__(self, report: Report, lang: str, orientation: str) -> None:
        super().__init__(orientation=orientation, unit="mm", format="A4")
        self.report = report
        self.report_lang = lang
        self.set_lang(lang)  # the document's /Lang, for screen readers
        self.core_fonts_encoding = _ENCODING
        self.title_text = _printable(report.title(lang))
        self.scope_text = _printable(f"{report.account} — {report.scope}")
        self.period_text = _printable(f" — {_period(report, lang)}")
        self.generated_text = _printable(_generated(report, lang))
        self._fitted: tuple[str, str] | None = None

    def _header_texts(self, width: float) -> tuple[str, str]:
        """The title and the scope cut to the page, once for all pages: a
        scope of many fleets must not run into the period or "Gerado em"."""
        if self._fitted is None:
            title = _Widths(self, "B", 12).fit(self.title_text, width)
            line = _Widths(self, "", 8.5)
            room = width - line(self.generated_text) - line(self.period_text) - 4
            self._fitted = (title, line.fit(self.scope_text, room) + self.period_text)
        return self._fitted

    def header(self) -> None:
        width = self.w - self.l_margin - self.r_margin
        title, scope = self._header_texts(width)
        self.set_text_color(0, 0, 0)
        self.set_font(_FONT, style="B", size=12)
        self.cell(width, 6, title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(_FONT, size=8.5)
        y = self.get_y()
        self.cell(width, 4.5, self.generated_text, align=Align.R)
        self.set_xy(self.l_margin, y)
        self.cell(width, 4.5, scope)
        self.set_draw_color(*_RULE)
        self.set_line_width(0.2)
        line_y = y + 5.5
        self.line(self.l_margin, line_y, self.w - self.r_margin, line_y)
        self.set_xy(self.l_margin, line_y + 2.5)

    def footer(self) -> None:
        self.set_y(-_FOOTER + 2)
        self.set_font(_FONT, size=7.5)
        self.set_text_color(90, 90, 90)
        words = ("página", "de") if self.report_lang == "pt-BR" else ("page", "of")
        self.cell(0, 5, f"{words[0]} {self.page_no()} {words[1]} {{nb}}", align=Align.R)
        self.set_text_color(0, 0, 0)


def _natural_widths(section: Section) -> list[float]:
    return [max(4.0, column.width * _MM_PER_CHAR + 2 * _PAD) for column in section.columns]


def _fitted_widths(section: Section, usable: float) -> list[float]:
    widths = _natural_widths(section)
    total = sum(widths)
    if total <= usable:
        return widths
    return [w * usable / total for w in widths]


@dataclass
class _Fonts:
    body: _Widths
    bold: _Widths
    heading: _Widths


def _formatter(column: Column, report: Report, lang: str) -> Callable[[Cell], str]:
    kind, decimals, tz = column.kind, column.decimals, report.tz
    clock_only = report.first if report.first == report.last else None

    def text(value: Cell) -> str:
        if isinstance(value, str):
            return _printable(value)
        return cell_text(value, kind, decimals, lang, tz, clock_only_on=clock_only)

    return text


class _Table:
    """One section's table, drawn row by row with its header on each page."""

    def __init__(self, pdf: _ReportPDF, section: Section, fonts: _Fonts, usable: float) -> None:
        self.pdf = pdf
        self.section = section
        self.fonts = fonts
        self.widths = _fitted_widths(section, usable)
        self.xs: list[float] = []
        x = pdf.l_margin
        for w in self.widths:
            self.xs.append(x)
            x += w
        self.width = x - pdf.l_margin
        self.right = [c.kind in _NUMERIC for c in section.columns]
        self.formatters = [_formatter(c, pdf.report, pdf.report_lang) for c in section.columns]
        self.heading_lines = [
            fonts.heading.wrap(_printable(c.label(pdf.report_lang)), w - 2 * _PAD)
            for c, w in zip(section.columns, self.widths, strict=True)
        ]
        lines = max((len(lines) for lines in self.heading_lines), default=1)
        self.heading_h = lines * _HEADING_LINE_H + 1.2

    def bottom(self) -> float:
        return self.pdf.h - self.pdf.b_margin

    def draw_heading(self) -> None:
        pdf, y = self.pdf, self.pdf.get_y()
        pdf.set_fill_color(*_HEADING_FILL)
        pdf.rect(pdf.l_margin, y, self.width, self.heading_h, style="F")
        pdf.set_font(_FONT, style="B", size=_HEADING_SIZE)
        measure = self.fonts.heading
        for x, w, lines, right in zip(
            self.xs, self.widths, self.heading_lines, self.right, strict=True
        ):
            for i, line in enumerate(lines):
                baseline = y + 0.6 + (i + 1) * _HEADING_LINE_H - 0.8
                left = x + w - _PAD - measure(line) if right else x + _PAD
                pdf.text(left, baseline, line)
        pdf.set_y(y + self.heading_h)

    def _cells(self, row: Row, measure: _Widths, y: float) -> None:
        pdf = self.pdf
        baseline = y + _ROW_H - 1.1
        get = row.get
        for column, x, w, right, fmt in zip(
            self.section.columns, self.xs, self.widths, self.right, self.formatters, strict=True
        ):
            value = get(column.name)
            if value is None:
                continue
            text = fmt(value)
            if not text:
                continue
            room = w - 2 * _PAD
            width = measure(text)
            if width > room:
                text = measure.fit(text, room)
                width = measure(text)
            pdf.text(x + w - _PAD - width if right else x + _PAD, baseline, text)

    def draw(self) -> None:
        pdf, fonts = self.pdf, self.fonts
        self.draw_heading()
        pdf.set_font(_FONT, size=_BODY_SIZE)
        pdf.set_fill_color(*_ZEBRA_FILL)
        bottom = self.bottom()
        for index, row in enumerate(self.section.rows):
            y = pdf.get_y()
            if y + _ROW_H > bottom:
                pdf.add_page()
                self.draw_heading()
                pdf.set_font(_FONT, size=_BODY_SIZE)
                pdf.set_fill_color(*_ZEBRA_FILL)
                y = pdf.get_y()
            if index % 2:
                pdf.rect(pdf.l_margin, y, self.width, _ROW_H, style="F")
            self._cells(row, fonts.body, y)
            pdf.set_y(y + _ROW_H)
        totals = self.section.totals
        if totals is None:
            return
        y = pdf.get_y()
        if y + _ROW_H > bottom:
            pdf.add_page()
            self.draw_heading()
            y = pdf.get_y()
        pdf.set_fill_color(*_TOTALS_FILL)
        pdf.rect(pdf.l_margin, y, self.width, _ROW_H, style="F")
        pdf.set_draw_color(*_RULE)
        pdf.set_line_width(0.2)
        pdf.line(pdf.l_margin, y, pdf.l_margin + self.width, y)
        label = next((c for c, col in enumerate(self.section.columns) if col.kind == "text"), None)
        if label is not None and totals.get(self.section.columns[label].name) is None:
            totals = {**totals, self.section.columns[label].name: "Total"}
        pdf.set_font(_FONT, style="B", size=_BODY_SIZE)
        self._cells(totals, fonts.bold, y)
        pdf.set_y(y + _ROW_H)


def _section(pdf: _ReportPDF, section: Section, fonts: _Fonts, usable: float) -> None:
    table = _Table(pdf, section, fonts, usable)
    # Title, header and a couple of rows together, or all on the next page.
    if pdf.get_y() + 7 + table.heading_h + 2 * _ROW_H > table.bottom():
        pdf.add_page()
    pdf.ln(1.5)
    pdf.set_font(_FONT, style="B", size=10)
    pdf.cell(
        usable, 6, _printable(section.title(pdf.report_lang)), new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    if not section.rows:
        pdf.set_font(_FONT, style="I", size=8.5)
        empty = "Sem dados no período" if pdf.report_lang == "pt-BR" else "No data"
        pdf.cell(usable, 5, empty, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        return
    table.draw()
    pdf.ln(3)


# -- the route drawing ----------------------------------------------------------


def thinned(
    points: Sequence[tuple[float, float]], limit: int = MAX_LINE_VERTICES
) -> list[tuple[float, float]]:
    """Every k-th point, with the first and the last, at most `limit` of them."""
    count = len(points)
    if count <= limit:
        return list(points)
    step = math.ceil((count - 1) / (max(2, limit) - 1))
    kept = list(points[::step])
    if kept[-1] != points[-1]:
        if len(kept) >= limit:
            kept[-1] = points[-1]
        else:
            kept.append(points[-1])
    return kept


def _nice_km(limit_km: float) -> float:
    """The longest 1, 2 or 5 x 10^n km at most `limit_km` (the scale bar)."""
    if limit_km <= 0 or not math.isfinite(limit_km):
        return 1.0
    power: float = 10.0 ** math.floor(math.log10(limit_km))
    for factor in (5, 2, 1):
        if factor * power <= limit_km:
            return factor * power
    return power


def _km_text(km: float, lang: str) -> str:
    decimals = max(0, -math.floor(math.log10(km))) if km < 1 else 0
    text = br_number(km, decimals) if lang == "pt-BR" else en_number(km, decimals)
    return f"{text} km"


def _finite(lat: float, lon: float) -> bool:
    return math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90


def _draw_route(pdf: _ReportPDF, drawing: RouteDrawing, usable: float) -> None:
    left = pdf.l_margin + (usable - _BOX_W) / 2
    top = pdf.get_y() + 1
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.2)
    pdf.rect(left, top, _BOX_W, _BOX_H)
    pdf.set_y(top + _BOX_H + 3)

    line = [(lat, lon) for lat, lon in drawing.line if _finite(lat, lon)]
    stops = [s for s in drawing.stops if _finite(s.latitude, s.longitude)]
    lats = [lat for lat, _ in line] + [s.latitude for s in stops]
    lons = [lon for _, lon in line] + [s.longitude for s in stops]
    if not lats:
        pdf.set_font(_FONT, style="I", size=8.5)
        pdf.set_xy(left, top + _BOX_H / 2 - 3)
        empty = "Sem trajeto" if pdf.report_lang == "pt-BR" else "No route"
        pdf.cell(_BOX_W, 6, empty, align=Align.C)
        pdf.set_y(top + _BOX_H + 3)
        return

    shrink = math.cos(math.radians(sum(lats) / len(lats)))
    xs = [lon * shrink for lon in lons]
    min_x, max_x, min_y, max_y = min(xs), max(xs), min(lats), max(lats)
    room_w, room_h = _BOX_W - 2 * _BOX_PAD, _BOX_H - 2 * _BOX_PAD - 6  # 6: the scale bar
    span_x, span_y = max_x - min_x, max_y - min_y
    if span_x <= 0 and span_y <= 0:
        span_x = span_y = 0.01  # one place: show about a kilometre around it
    # mm per projected degree, the same both ways: the aspect ratio is kept.
    scale = min(
        room_w / span_x if span_x > 0 else math.inf,
        room_h / span_y if span_y > 0 else math.inf,
    )
    mid_x, mid_y = (min_x + max_x) / 2, (min_y + max_y) / 2
    center_x, center_y = left + _BOX_W / 2, top + _BOX_PAD + room_h / 2

    def at(lat: float, lon: float) -> tuple[float, float]:
        return (center_x + (lon * shrink - mid_x) * scale, center_y - (lat - mid_y) * scale)

    with pdf.rect_clip(left, top, _BOX_W, _BOX_H):
        if len(line) >= 2:
            pdf.set_draw_color(*_LINE_BLUE)
            pdf.set_line_width(0.6)
            pdf.polyline([at(lat, lon) for lat, lon in thinned(line)], style="D")
        pdf.set_line_width(0.2)
        if line:
            # Wider than a stop's circle and under it: a stop where the day
            # starts or ends shows as a green or red ring around its number.
            for (lat, lon), color in ((line[0], _START_GREEN), (line[-1], _END_RED)):
                x, y = at(lat, lon)
                pdf.set_fill_color(*color)
                pdf.set_draw_color(255, 255, 255)
                pdf.circle(x, y, 2.9, style="FD")
        measure = _Widths(pdf, "", 6.5)
        for number, stop in enumerate(stops, start=1):
            x, y = at(stop.latitude, stop.longitude)
            pdf.set_fill_color(255, 255, 255)
            pdf.set_draw_color(40, 40, 40)
            pdf.circle(x, y, 2.1, style="FD")
            pdf.set_font(_FONT, style="B", size=5.5)
            digits = str(number)
            pdf.text(x - pdf.get_string_width(digits) / 2, y + 0.7, digits)
            label = measure.fit(_printable(stop.label), 55.0)
            if not label:
                continue
            pdf.set_font(_FONT, size=6.5)
            width = measure(label)
            # Beside the circle, on the side with room for it inside the box.
            lx = x + 3.3 if x + 3.3 + width <= left + _BOX_W - 1 else x - 3.3 - width
            pdf.text(lx, y + 0.8, label)

    km_per_mm = _KM_PER_DEGREE / scale
    bar_km = _nice_km(_BOX_W / 4 * km_per_mm)
    bar = bar_km / km_per_mm
    bx, by = left + 4, top + _BOX_H - 4
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.4)
    pdf.line(bx, by, bx + bar, by)
    pdf.line(bx, by - 1.2, bx, by + 0.4)
    pdf.line(bx + bar, by - 1.2, bx + bar, by + 0.4)
    pdf.set_font(_FONT, size=6.5)
    pdf.text(bx + bar + 1.5, by + 0.8, _km_text(bar_km, pdf.report_lang))
    pdf.set_line_width(0.2)
    pdf.set_y(top + _BOX_H + 3)


# -- the document ---------------------------------------------------------------


def _orientation(report: Report) -> str:
    widest = max((sum(_natural_widths(s)) for s in report.sections), default=0.0)
    return "L" if widest > _PORTRAIT_WIDTH else "P"


def report_pdf(report: Report, lang: str = "pt-BR") -> bytes:
    """The report as an A4 PDF in `lang` ("pt-BR" or "en"): landscape when the
    widest section does not fit a portrait page; the route drawing first when
    the report has one, then each section's table."""
    orientation = _orientation(report)
    pdf = _ReportPDF(report, lang, orientation)
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=_FOOTER)
    pdf.set_title(_printable(report.title(lang)))
    pdf.set_creator("etrack")
    pdf.set_author(_printable(report.account))
    usable = _LANDSCAPE_WIDTH if orientation == "L" else _PORTRAIT_WIDTH
    fonts = _Fonts(
        body=_Widths(pdf, "", _BODY_SIZE),
        bold=_Widths(pdf, "B", _BODY_SIZE),
        heading=_Widths(pdf, "B", _HEADING_SIZE),
    )
    pdf.add_page()
    if report.drawing is not None:
        _draw_route(pdf, report.drawing, usable)
    if report.notes:
        pdf.set_font(_FONT, style="I", size=7.5)
        for note in report.notes:
            pdf.multi_cell(usable, 3.8, _printable(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
    for section in report.sections:
        _section(pdf, section, fonts, usable)
    return bytes(pdf.output())
