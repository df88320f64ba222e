"""Parsing what users type on the command line: dates, moments, plate lists.

Errors are `ValueError`s with one line saying what was expected; the CLI turns
them into exit code 2 before any API call.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

from etrack.model import canonical_plate

# Year first (ISO), or day first with '/' (the seed's) or '-' (the eTrac
# API's own form, DD-MM-YYYY): never month first. One separator per date.
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DAY_FIRST = re.compile(r"^(\d{1,2})([/-])(\d{1,2})\2(\d{4})$")
# Forms we refuse with a hint rather than guess.
_YEAR_FIRST_SLASH = re.compile(r"^\d{4}/\d{1,2}/\d{1,2}$")
_SHORT_YEAR = re.compile(r"^\d{1,2}([/-])\d{1,2}\1\d{2}$")
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")

DATE_FORMS = "YYYY-MM-DD, DD/MM/YYYY or DD-MM-YYYY"
# Longest input echoed back in an error (a request may send anything).
_SHOWN = 40


def parse_day(text: str, *, option: str = "date") -> date:
    """A local calendar day, in one of DATE_FORMS: YYYY-MM-DD (ISO),
    DD/MM/YYYY (the seed's) or DD-MM-YYYY (the eTrac API's). A date in one
    of these forms that is not on the calendar (31/02/2025) says so; a
    year-first date with '/' or a two-digit year is refused, not guessed."""
    value = text.strip()
    shown = value[:_SHOWN]
    if match := _ISO_DATE.match(value):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
        return _calendar_day(year, month, day, shown, option, "YYYY-MM-DD puts the month second")
    if match := _DAY_FIRST.match(value):
        year, month, day = int(match[4]), int(match[3]), int(match[1])
        form = "DD/MM/YYYY" if match[2] == "/" else "DD-MM-YYYY"
        return _calendar_day(year, month, day, shown, option, f"{form} puts the day first")
    if _YEAR_FIRST_SLASH.match(value):
        hint = "a year-first date is written YYYY-MM-DD"
    elif _SHORT_YEAR.match(value):
        hint = "give the year with 4 digits"
    else:
        hint = ""
    where = f" ({hint})" if hint else ""
    raise ValueError(f"--{option}: expected a date as {DATE_FORMS}, got {shown!r}{where}")


def _calendar_day(year: int, month: int, day: int, shown: str, option: str, order: str) -> date:
    if year < 1:
        why = "there is no year 0"
    elif not 1 <= month <= 12:
        why = f"there is no month {month}: {order}"
    else:
        length = calendar.monthrange(year, month)[1]
        if 1 <= day <= length:
            return date(year, month, day)
        why = f"{calendar.month_name[month]} {year} has {length} days"
    raise ValueError(f"--{option}: {shown} is not a day of the calendar ({why})")


def _shown(value: date) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")
    return value.isoformat()


def range_error(
    first: date,
    last: date,
    *,
    start: str,
    end: str,
    lang: str = "en",
    shown: tuple[str, str] | None = None,
) -> str | None:
    """The one wording of a reversed range, or None when `first..last` is
    fine. `start`/`end` name the two inputs (`--date-start`, `date_end`);
    days include their last one (equal is fine), moments exclude it (the end
    must come after the start). `lang` "pt" gives the Portuguese pages'
    text; `shown` the values as the user typed them."""
    moments = isinstance(first, datetime) and isinstance(last, datetime)
    if (last > first) if moments else (last >= first):
        return None
    if lang == "pt":
        low, high = shown or (f"{first:%d/%m/%Y}", f"{last:%d/%m/%Y}")
        must = "deve ser depois do" if moments else "não pode ser antes do"
        return f"{end} {high} é anterior a {start} {low}: o fim {must} início"
    low, high = shown or (_shown(first), _shown(last))
    relation = "is not after" if moments else "is before"
    must = "after" if moments else "on or after"
    return f"{end} {high} {relation} {start} {low}: the end must be {must} the start"


def check_range(first: date, last: date, start_name: str, end_name: str) -> None:
    """ValueError with `range_error`'s text when the range is reversed."""
    error = range_error(first, last, start=start_name, end=end_name)
    if error is not None:
        raise ValueError(error)


def parse_moment(text: str, tz: ZoneInfo, *, option: str, end: bool = False) -> datetime:
    """A local date or date-time. A bare date means the start of that day
    (or, with end=True, the start of the next day: the range includes it)."""
    value = text.strip().replace("T", " ")
    day_part, _, time_part = value.partition(" ")
    day = parse_day(day_part, option=option)
    if not time_part:
        moment = datetime.combine(day, time.min, tz)
        if end:
            return datetime.combine(date.fromordinal(day.toordinal() + 1), time.min, tz)
        return moment
    match = _TIME.match(time_part.strip())
    if not match:
        raise ValueError(
            f"--{option}: expected {DATE_FORMS} optionally followed by HH:MM[:SS], got {text!r}"
        )
    try:
        clock = time(int(match[1]), int(match[2]), int(match[3] or 0))
    except ValueError:
        raise ValueError(f"--{option}: not a valid time of day in {text!r}") from None
    return datetime.combine(day, clock, tz)


def parse_plate(text: str) -> str:
    return canonical_plate(text)


def parse_plates(plates: str | None, plates_file: Path | None) -> list[str] | None:
    """--plates A,B and/or --plates-file F (one plate per line, # comments).
    None when neither was given (meaning: every plate)."""
    if plates is None and plates_file is None:
        return None
    found: list[str] = []
    if plates:
        found.extend(_plates_in(plates.split(","), source="--plates"))
    if plates_file is not None:
        try:
            lines = plates_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"--plates-file: cannot read {plates_file}: {exc.strerror}") from None
        found.extend(_plates_in((line.split("#", 1)[0] for line in lines), source=str(plates_file)))
    unique = list(dict.fromkeys(found))
    if not unique:
        raise ValueError("--plates/--plates-file: no plate given")
    return unique


def _plates_in(items: Iterable[str], *, source: str) -> list[str]:
    plates = []
    for item in items:
        if item.strip():
            try:
                plates.append(canonical_plate(item))
            except ValueError as exc:
                raise ValueError(f"{source}: {exc}") from None
    return plates


def days_span(first_day: date, last_day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[the start of first_day, the start of the day after last_day) in tz:
    the moments of those local days."""
    lo = datetime.combine(first_day, time.min, tz)
    hi = datetime.combine(last_day + timedelta(days=1), time.min, tz)
    return lo, hi


def day_range(start: date, end: date) -> list[date]:
    """Every day of start..end (both included); ValueError when reversed."""
    check_range(start, end, "--date-start", "--date-end")
    return [date.fromordinal(n) for n in range(start.toordinal(), end.toordinal() + 1)]
