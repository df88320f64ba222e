"""How one report cell reads as text: the helpers every format shares.

The workbook writes real numbers and dates, but its title lines, the PDF, the
CSV of Brazilian Excel and the e-mail all need the same texts: "1.234,5",
"25:00", "03/12/2026 14:05". They live here, with no locale calls (the
server's locale is not the reader's), so that each format shows a value the
same way. `safe_text` is here too: etrack.reports may not import etrack.web,
whose exports have their own copy.
"""

from __future__ import annotations

import math
from datetime import date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from etrack.reports.table import Cell, ColumnKind

__all__ = [
    "FORMULA_STARTS",
    "br_date",
    "br_moment",
    "br_number",
    "cell_text",
    "en_number",
    "hmm",
    "iso_moment",
    "local_naive",
    "safe_text",
]

# What Excel, LibreOffice and Google Sheets read as the start of a formula
# (OWASP "CSV injection"); tab and CR too, since some importers strip them
# and then meet the "=" behind.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """A text cell a spreadsheet will not read as a formula: a leading quote
    before a risky first character ("=1+1" -> "'=1+1")."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def hmm(seconds: float) -> str:
    """A duration as h:mm to the nearest minute, hours unbounded: 5400 ->
    "1:30", 90000 -> "25:00", -1800 -> "-0:30"."""
    if not math.isfinite(seconds):
        return ""
    # Half up, not Python's half-to-even: 90 s is "0:02" like a clock rounds.
    minutes = math.floor(abs(seconds) / 60 + 0.5)
    sign = "-" if seconds < 0 and minutes > 0 else ""
    return f"{sign}{minutes // 60}:{minutes % 60:02d}"


def _rounded(value: float, decimals: int) -> tuple[str, str, str] | None:
    """(sign, integer digits, fraction digits), rounded half up on the decimal
    text of the float (2.675 -> 2.68, as a person rounds what they read)."""
    if not math.isfinite(value):
        return None
    places = max(0, decimals)
    try:
        exact = Decimal(repr(float(value))).quantize(
            Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP
        )
    except InvalidOperation:  # more digits than the context holds: 1e300 with 2 decimals
        exact = Decimal(repr(float(value)))
    text = f"{abs(exact):f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.ljust(places, "0")[:places]
    # No "-0,0": a value that rounds to zero has no sign.
    negative = exact < 0 and any(d != "0" for d in whole + fraction)
    return ("-" if negative else "", whole, fraction)


def _grouped(whole: str, separator: str) -> str:
    head = len(whole) % 3 or 3
    groups = [whole[:head]] + [whole[i : i + 3] for i in range(head, len(whole), 3)]
    return separator.join(groups)


def br_number(value: float, decimals: int) -> str:
    """A number as Brazilian Excel reads it: br_number(1234.5, 1) -> "1.234,5",
    br_number(-0.04, 1) -> "0,0"; "" for NaN and infinities."""
    parts = _rounded(value, decimals)
    if parts is None:
        return ""
    sign, whole, fraction = parts
    text = sign + _grouped(whole, ".")
    return f"{text},{fraction}" if fraction else text


def en_number(value: float, decimals: int) -> str:
    """The English counterpart of `br_number`: "1,234.5"."""
    parts = _rounded(value, decimals)
    if parts is None:
        return ""
    sign, whole, fraction = parts
    text = sign + _grouped(whole, ",")
    return f"{text}.{fraction}" if fraction else text


def br_date(day: date) -> str:
    """03/12/2026"""
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def local_naive(moment: datetime, tz: tzinfo) -> datetime:
    """The wall-clock time in `tz`, without tzinfo (what a spreadsheet holds).
    A naive datetime is taken as already local: the report's rows carry aware
    ones, and guessing the server's zone would be wrong either way."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment
    return moment.astimezone(tz).replace(tzinfo=None)


def br_moment(moment: datetime, tz: tzinfo) -> str:
    """An instant in `tz`, to the minute: "03/12/2026 14:05"."""
    local = local_naive(moment, tz)
    return f"{br_date(local)} {local.hour:02d}:{local.minute:02d}"


def iso_moment(moment: datetime, tz: tzinfo) -> str:
    """The English counterpart of `br_moment`: "2026-12-03 14:05"."""
    local = local_naive(moment, tz)
    return f"{local.date().isoformat()} {local.hour:02d}:{local.minute:02d}"


def cell_text(
    value: Cell,
    kind: ColumnKind,
    decimals: int,
    lang: str,
    tz: tzinfo,
    *,
    clock_only_on: date | None = None,
) -> str:
    """A cell as a page shows it, in `lang` ("pt-BR" or "en"). `clock_only_on`:
    a moment on that local day is shown as HH:MM alone (a one-day report);
    one on another day keeps its date. Not guarded by `safe_text`: that is
    for spreadsheets, not pages."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    pt = lang == "pt-BR"
    if isinstance(value, datetime):
        local = local_naive(value, tz)
        if kind == "date":
            return br_date(local) if pt else local.date().isoformat()
        if clock_only_on is not None and local.date() == clock_only_on:
            return f"{local.hour:02d}:{local.minute:02d}"
        return br_moment(value, tz) if pt else iso_moment(value, tz)
    if isinstance(value, date):
        return br_date(value) if pt else value.isoformat()
    if isinstance(value, bool):
        return str(int(value))
    if kind == "duration":
        return hmm(value)
    if kind == "number" or isinstance(value, float):
        places = decimals if kind == "number" else 0
        return br_number(value, places) if pt else en_number(value, places)
    return br_number(value, 0) if pt else en_number(value, 0)
