"""The fleet report (one row per vehicle over a day or range), as the report
page, the JSON API and the downloads all see it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from etrack.web import i18n
from etrack.web.days import today
from etrack.web.events import event_filter, tallies
from etrack.web.exports import REPORT_COLUMNS
from etrack.web.inputs import day_range_or_error
from etrack.web.reader import Reader

__all__ = [
    "MAX_SUMMARY_DAYS",
    "REPORT_SORTS",
    "report_headers",
    "report_rows",
    "report_totals",
    "sort_rows",
]

MAX_SUMMARY_DAYS = 366
# Every column of the report can sort it.
REPORT_SORTS: tuple[str, ...] = tuple(name for name, _ in REPORT_COLUMNS)


async def report_rows(
    reader: Reader, start: str | None, end: str | None, frota: str | None, sort: str, order: str
) -> tuple[date, date, list[dict[str, Any]]]:
    """The report's days (default yesterday) and its rows, sorted."""
    first, last = day_range_or_error(
        start, end, default=today(reader) - timedelta(days=1), max_days=MAX_SUMMARY_DAYS
    )
    rows = await reader.fleet_report(first, last, frota or None)
    # The events starting on the report's days (an offline open since before
    # them is not counted again on every later report).
    wanted = await event_filter(reader, first, last, None, None, open_offline=False)
    counted = await tallies(reader, wanted)
    for row in rows:
        row["event_count"] = counted.plate_total(row["placa"])
        row["event_kinds"] = counted.by_plate.get(row["placa"], {})
    if not frota:
        # A vehicle silent all those days has no day summary, yet may have
        # events (offline, late data): the one a manager most wants to see.
        listed = {row["placa"] for row in rows}
        rows.extend(
            _events_only_row(placa, kinds)
            for placa, kinds in counted.by_plate.items()
            if placa not in listed
        )
    return first, last, sort_rows(rows, sort, descending=order == "desc")


def _events_only_row(placa: str, kinds: dict[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys((name for name, _ in REPORT_COLUMNS), None)
    row.update(placa=placa, days=0, event_count=sum(kinds.values()), event_kinds=kinds)
    return row


def sort_rows(rows: list[dict[str, Any]], key: str, *, descending: bool) -> list[dict[str, Any]]:
    """Sorted by a known column; empty values last in both directions."""
    if key not in REPORT_SORTS:
        key = "placa"
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    present.sort(key=lambda r: (r[key], r["placa"]), reverse=descending)
    return present + missing


def report_headers(lang: str, *, clock: bool = False) -> dict[str, str]:
    """Each column's heading in `lang` (the page's table, the XLSX header row).

    `clock`: the durations are shown as h:mm (the page) rather than as decimal
    hours (the downloads, numbers a spreadsheet can add up)."""
    hours = "h:mm" if clock else "h"

    def t(key: str) -> str:
        return i18n.translate(key, lang)

    return {
        "placa": t("plate"),
        "descricao": t("description"),
        "frota": t("fleet"),
        "days": t("days"),
        "distance_km": f"{t('distance')} (km)",
        "driving_h": f"{t('driving')} ({hours})",
        "idle_h": f"{t('idle')} ({hours})",
        "parked_h": f"{t('parked')} ({hours})",
        "max_speed_kmh": f"{t('max_speed')} (km/h)",
        "over_limit_h": f"{t('over_limit')} ({hours})",
        "trip_count": t("trips"),
        "event_count": t("events"),
    }


def report_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The table's last line: sums, and the highest top speed."""
    sums = (
        "days",
        "distance_km",
        "driving_h",
        "idle_h",
        "parked_h",
        "over_limit_h",
        "trip_count",
        "event_count",
    )
    totals: dict[str, Any] = {name: sum(float(r[name] or 0) for r in rows) for name in sums}
    speeds = [float(r["max_speed_kmh"]) for r in rows if r.get("max_speed_kmh") is not None]
    totals["max_speed_kmh"] = max(speeds) if speeds else None
    return totals
