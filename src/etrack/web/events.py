"""What the Events page, GET /api/events, the fleet report and the vehicle
day share about events: which rows a request lists (days, plates, kind, the
account scope) and the listing's tallies."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import HTTPException

from etrack.dates import range_error
from etrack.events.detect import KINDS
from etrack.web.reader import Reader

__all__ = ["MAX_EVENT_DAYS", "EventFilter", "EventTallies", "event_filter", "tallies"]

MAX_EVENT_DAYS = 366


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Events starting on local days first..last (and offline events still
    open that began before), of some plates (None: all) and one kind (None: all)."""

    first: date
    last: date
    lo: datetime
    hi: datetime
    plates: list[str] | None
    kind: str | None
    open_offline: bool = True
    """Also the offline events still open that began before the days (the
    listings: a vehicle silent now belongs to today's); the fleet report
    counts only what started on its days."""

    def args(self) -> dict[str, Any]:
        """The named queries' arguments (web_events_page, _count, _counts)."""
        return {
            "lo": self.lo,
            "hi": self.hi,
            "plates": self.plates,
            "kind": self.kind,
            "open_offline": self.open_offline,
        }


async def event_filter(
    reader: Reader,
    first: date,
    last: date,
    plates: list[str] | None,
    kind: str | None,
    *,
    names: tuple[str, str] = ("date_start", "date_end"),
    open_offline: bool = True,
) -> EventFilter:
    """The filter of a request, its account scope included: the scope goes
    into the query, since filtering the rows afterwards would leave pages
    short and totals wrong."""
    reversed_range = range_error(first, last, start=names[0], end=names[1])
    if reversed_range is not None:
        raise HTTPException(400, reversed_range)
    if (last - first).days + 1 > MAX_EVENT_DAYS:
        raise HTTPException(400, f"the range may span at most {MAX_EVENT_DAYS} days")
    if kind is not None and kind not in KINDS:
        raise HTTPException(422, f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    visible = await reader.visible_plates()
    if visible is not None:
        plates = sorted(visible.intersection(plates) if plates is not None else visible)
    tz = reader.params.tz
    lo = datetime.combine(first, datetime.min.time(), tz)
    hi = datetime.combine(last + timedelta(days=1), datetime.min.time(), tz)
    return EventFilter(first, last, lo, hi, plates, kind, open_offline)


@dataclass(frozen=True, slots=True)
class EventTallies:
    """How many events of each kind each vehicle had in a listing."""

    by_plate: dict[str, dict[str, int]]

    @property
    def by_kind(self) -> dict[str, int]:
        """Every kind with events, in the registry's order."""
        totals = dict.fromkeys(KINDS, 0)
        for counts in self.by_plate.values():
            for kind, n in counts.items():
                totals[kind] = totals.get(kind, 0) + n
        return {kind: n for kind, n in totals.items() if n}

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())

    def plate_total(self, placa: str) -> int:
        return sum(self.by_plate.get(placa, {}).values())

    def busiest(self) -> list[tuple[str, dict[str, int]]]:
        """Vehicles by their event count, most first (ties by plate)."""
        return sorted(self.by_plate.items(), key=lambda item: (-sum(item[1].values()), item[0]))


async def tallies(reader: Reader, wanted: EventFilter) -> EventTallies:
    by_plate: dict[str, dict[str, int]] = defaultdict(dict)
    for row in await reader.rows("web_events_counts", wanted.args()):
        by_plate[str(row["placa"])][str(row["kind"])] = int(row["events"])
    return EventTallies(dict(by_plate))
