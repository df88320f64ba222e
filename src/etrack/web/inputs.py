"""Request text -> plates, days and time ranges, or an HTTP error saying what
was expected. The parsing rules are the CLI's (etrack.dates)."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import HTTPException

from etrack.dates import DATE_FORMS, parse_day, parse_moment, range_error
from etrack.model import canonical_plate

__all__ = [
    "day_or_error",
    "form_number",
    "plate_or_error",
    "plates_or_error",
    "range_or_error",
]


def plate_or_error(text: str, *, name: str = "plate") -> str:
    try:
        return canonical_plate(text)
    except ValueError as exc:
        raise HTTPException(422, f"{name}: {exc}") from None


def plates_or_error(texts: list[str] | None, *, name: str = "plate") -> list[str] | None:
    """Repeated or comma-separated plates; None when none were given."""
    if not texts:
        return None
    found = [plate_or_error(p, name=name) for t in texts for p in t.split(",") if p.strip()]
    return list(dict.fromkeys(found)) or None


def day_or_error(text: str, *, name: str = "date") -> date:
    try:
        return parse_day(text, option=name)
    except ValueError as exc:
        # The CLI's text (wrong form, or not on the calendar) without its "--".
        raise HTTPException(422, str(exc).removeprefix("--")) from None


def _moment(text: str, tz: ZoneInfo, name: str, *, end: bool) -> datetime:
    try:
        return parse_moment(text, tz, option=name, end=end)
    except ValueError as exc:
        raise HTTPException(422, str(exc).removeprefix("--")) from None


def range_or_error(
    tz: ZoneInfo,
    *,
    day: str | None,
    start: str | None,
    end: str | None,
    max_days: int,
    default_day: date,
) -> tuple[datetime, datetime]:
    """[lo, hi) from ?date=D, or ?start=&end= (days or local date-times; an
    end day is included), or the default day; at most `max_days` long."""
    if day is not None and (start is not None or end is not None):
        raise HTTPException(400, "give either date, or start and end, not both")
    if day is not None or (start is None and end is None):
        which = day_or_error(day) if day is not None else default_day
        lo = _moment(which.isoformat(), tz, "date", end=False)
        hi = _moment(which.isoformat(), tz, "date", end=True)
    elif start is None or end is None:
        raise HTTPException(400, f"start and end go together (dates as {DATE_FORMS})")
    else:
        lo = _moment(start, tz, "start", end=False)
        hi = _moment(end, tz, "end", end=True)
    reversed_range = range_error(lo, hi, start="start", end="end", shown=(start or "", end or ""))
    if reversed_range is not None:
        raise HTTPException(400, reversed_range)
    if hi - lo > timedelta(days=max_days):
        raise HTTPException(400, f"the range may span at most {max_days} days")
    return lo, hi


def day_range_or_error(
    start: str | None, end: str | None, *, default: date, max_days: int
) -> tuple[date, date]:
    first = day_or_error(start, name="start") if start else default
    last = day_or_error(end, name="end") if end else first
    reversed_range = range_error(first, last, start="start", end="end")
    if reversed_range is not None:
        raise HTTPException(400, reversed_range)
    if (last - first).days + 1 > max_days:
        raise HTTPException(400, f"the range may span at most {max_days} days")
    return first, last


def form_number(text: str) -> float | None:
    """A number typed in a form, a decimal comma accepted (a Brazilian user
    types one); None when left empty, NaN when not a number (the caller
    says what range it expects)."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return math.nan
