"""The periods a schedule sends: complete local days, ISO weeks and months.

Pure: a schedule's period is the previous complete day (daily), ISO week,
Monday to Sunday (weekly), or calendar month (monthly), in the schedule's
time zone. It goes out at `at` local time the day after it ends. A worker
that was down at that time sends it when it starts again (the periods due
and not yet sent, oldest first, at most MAX_CATCH_UP of them).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal, cast, get_args

from etrack.errors import UsageError

__all__ = [
    "EVERY",
    "MAX_CATCH_UP",
    "Every",
    "Period",
    "due_periods",
    "every_of",
    "next_send",
    "period_containing",
    "send_moment",
]

Every = Literal["daily", "weekly", "monthly"]
EVERY: tuple[str, ...] = get_args(Every)
# A worker down for weeks sends the periods it missed, but not a year of
# daily mails at once: the oldest beyond this are left unsent (and named in
# the log), as a person would skip them too.
MAX_CATCH_UP = 31

Period = tuple[date, date]  # first and last local day, inclusive


def every_of(text: str) -> Every:
    """'daily' -> 'daily' (typed), else UsageError naming the choices."""
    if text not in EVERY:
        raise UsageError(f"--every: expected one of {', '.join(EVERY)}, got {text!r}")
    return cast(Every, text)


def _next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def period_containing(every: Every, day: date) -> Period:
    if every == "daily":
        return day, day
    if every == "weekly":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    first = day.replace(day=1)
    return first, _next_month(first) - timedelta(days=1)


def _following(every: Every, period: Period) -> Period:
    return period_containing(every, period[1] + timedelta(days=1))


def send_moment(period: Period, at: time, tz: tzinfo) -> datetime:
    """When a period goes out: `at` local time on the day after its last."""
    return datetime.combine(period[1] + timedelta(days=1), at, tzinfo=tz)


def due_periods(
    every: Every, first_period: date, at: time, tz: tzinfo, now: datetime
) -> list[Period]:
    """The periods from the one starting at `first_period` whose sending time
    has come by `now`, oldest first (the newest MAX_CATCH_UP)."""
    today = now.astimezone(tz).date()
    # The newest period that can be due: the one before today's.
    newest = period_containing(every, period_containing(every, today)[0] - timedelta(days=1))
    if send_moment(newest, at, tz) > now:
        newest = period_containing(every, newest[0] - timedelta(days=1))
    start = period_containing(every, first_period)
    if start[0] > newest[0]:
        return []
    found: list[Period] = []
    period = newest
    while period[0] >= start[0] and len(found) < MAX_CATCH_UP:
        found.append(period)
        period = period_containing(every, period[0] - timedelta(days=1))
    found.reverse()
    return found


def next_send(every: Every, first_period: date, at: time, tz: tzinfo, now: datetime) -> datetime:
    """The next time this schedule sends a period after `now` (for `schedule
    list` and the page; periods missed while no worker ran go out at once)."""
    period = period_containing(every, first_period)
    if send_moment(period, at, tz) <= now:
        yesterday = now.astimezone(tz).date() - timedelta(days=1)
        period = period_containing(every, max(first_period, yesterday))
    while send_moment(period, at, tz) <= now:
        period = _following(every, period)
    return send_moment(period, at, tz)
