"""Parsing what users type on the command line: dates, moments, plate lists.

Errors are `ValueError`s with one line saying what was expected; the CLI turns
them into exit code 2 before any API call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from etrack.model import canonical_plate

_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_BR_DATE = re.compile(r"^(\d{2})[/-](\d{2})[/-](\d{4})$")
_TIME = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")

DATE_FORMS = "YYYY-MM-DD or DD/MM/YYYY"


def parse_day(text: str, *, option: str = "date") -> date:
    """A local calendar day: YYYY-MM-DD (ISO) or DD/MM/YYYY (the seed's)."""
    value = text.strip()
    try:
        if match := _ISO_DATE.match(value):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _BR_DATE.match(value):
            return date(int(match[3]), int(match[2]), int(match[1]))
    except ValueError:
        pass
    raise ValueError(f"--{option}: expected a date as {DATE_FORMS}, got {text!r}")


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


def day_range(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"--date-end {end.isoformat()} is before --date-start {start.isoformat()}")
    return [date.fromordinal(n) for n in range(start.toordinal(), end.toordinal() + 1)]
