"""Downloads: a vehicle day as GeoJSON, GPX or CSV; the fleet report and the
fence visits report as CSV or XLSX.

CSV files come in two dialects (etrack.reports.csvfile): `rfc4180`, a comma
and a decimal point with the columns' machine names (machine-readable, the
same in both languages, byte for byte what these downloads always gave), and
`excel-br`, what a Brazilian Excel opens by a double click into columns (";",
decimal comma, UTF-8 BOM, headers in the reader's language). People who want
a spreadsheet may also take the XLSX, whose numbers are real numbers Excel
formats in the reader's locale.

Texts come from the eTrac API (descricao, frota...): a text cell starting
with = + - @ tab or CR is prefixed with a single quote (OWASP's rule against
formula injection), so a spreadsheet shows it instead of running it. Only
text cells: numbers, negative ones too, stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import orjson
import xlsxwriter  # type: ignore[import-untyped]

from etrack.reports.csvfile import CsvDialect, section_csv
from etrack.reports.table import Cell, Column, ColumnKind, Label, Section
from etrack.web.days import DayData

__all__ = [
    "REPORT_COLUMNS",
    "day_csv",
    "day_geojson",
    "day_gpx",
    "download_name",
    "report_csv",
    "report_xlsx",
    "safe_text",
    "visits_csv",
    "visits_xlsx",
]

REPORT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("placa", "text"),
    ("descricao", "text"),
    ("frota", "text"),
    ("days", "int"),
    ("distance_km", "number"),
    ("driving_h", "number"),
    ("idle_h", "number"),
    ("parked_h", "number"),
    ("max_speed_kmh", "number"),
    ("over_limit_h", "number"),
    ("trip_count", "int"),
    ("event_count", "int"),
)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def download_name(placa: str, day: date, extension: str) -> str:
    return f"{placa}_{day.isoformat()}.{extension}"


def day_geojson(data: DayData) -> bytes:
    """A FeatureCollection: the route line (with the day's figures) and one point per stop."""
    features: list[dict[str, Any]] = []
    if data.line is not None:
        features.append(data.feature())
    for stop in data.stops:
        if stop.get("latitude") is None or stop.get("longitude") is None:
            continue
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [stop["longitude"], stop["latitude"]]},
                "properties": {
                    "kind": "stop",
                    **{k: v for k, v in stop.items() if k not in ("latitude", "longitude")},
                },
            }
        )
    return dumps({"type": "FeatureCollection", "features": features})


def _iso_utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def day_gpx(data: DayData) -> bytes:
    """GPX 1.1: the day's points as one track (times in UTC, as GPX wants), stops as waypoints."""
    name = escape(f"{data.placa} {data.day.isoformat()}")
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<gpx version="1.1" creator="etrack" xmlns="http://www.topografix.com/GPX/1/1">',
        f"<metadata><name>{name}</name></metadata>",
    ]
    for stop in data.stops:
        if stop.get("latitude") is None or stop.get("longitude") is None:
            continue
        lat = quoteattr(repr(float(stop["latitude"])))
        lon = quoteattr(repr(float(stop["longitude"])))
        when = stop["start_ts"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        label = escape("stop " + str(stop["seq"]))
        desc = f"<desc>{escape(str(stop['address']))}</desc>" if stop.get("address") else ""
        out.append(f"<wpt lat={lat} lon={lon}><time>{when}</time><name>{label}</name>{desc}</wpt>")
    out.append(f"<trk><name>{name}</name><trkseg>")
    for t, lat, lon, *_ in data.points:
        out.append(
            f'<trkpt lat="{float(lat)!r}" lon="{float(lon)!r}"><time>{_iso_utc(float(t))}</time></trkpt>'
        )
    out.append("</trkseg></trk></gpx>")
    return "\n".join(out).encode()


def _excel_section(
    columns: Sequence[tuple[str, ColumnKind, int, str, str]],
    rows: Sequence[dict[str, Any]],
) -> Section:
    """The rows as a report section, for etrack.reports.csvfile's excel-br
    writer: (name, kind, decimals, Portuguese, English) per column."""
    cols = tuple(
        Column(name, Label(pt, en), kind, decimals) for name, kind, decimals, pt, en in columns
    )
    typed = tuple({c.name: _typed(row.get(c.name)) for c in cols} for row in rows)
    return Section("rows", Label("", ""), cols, typed)


def _typed(value: Any) -> Cell:
    if value is None or isinstance(value, str | int | float | date):
        return value
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


_DAY_COLUMNS: tuple[tuple[str, ColumnKind, int, str, str], ...] = (
    ("placa", "text", 0, "Placa", "Plate"),
    ("data_transmissao", "moment", 0, "Data/hora", "Time"),
    ("latitude", "number", 6, "Latitude", "Latitude"),
    ("longitude", "number", 6, "Longitude", "Longitude"),
    ("velocidade_kmh", "number", 1, "Velocidade (km/h)", "Speed (km/h)"),
    ("ignicao", "int", 0, "Ignição", "Ignition"),
)


def day_csv(
    data: DayData, tz: tzinfo, dialect: CsvDialect = "rfc4180", lang: str = "pt-BR"
) -> bytes:
    """One row per valid point: local time (ISO 8601 with offset), position, speed, ignition."""
    if dialect == "excel-br":
        rows = [
            {
                "placa": data.placa,
                "data_transmissao": datetime.fromtimestamp(float(t), tz),
                "latitude": lat,
                "longitude": lon,
                "velocidade_kmh": speed,
                "ignicao": None if ignition is None else int(bool(ignition)),
            }
            for t, lat, lon, speed, ignition in data.points
        ]
        return section_csv(_excel_section(_DAY_COLUMNS, rows), tz, "excel-br", lang)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["placa", "data_transmissao", "latitude", "longitude", "velocidade_kmh", "ignicao"]
    )
    for t, lat, lon, speed, ignition in data.points:
        moment = datetime.fromtimestamp(float(t), tz).isoformat()
        writer.writerow(
            [
                safe_text(data.placa),
                moment,
                lat,
                lon,
                "" if speed is None else speed,
                "" if ignition is None else int(bool(ignition)),
            ]
        )
    return buffer.getvalue().encode()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """A text cell a spreadsheet will not read as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return value


def _csv_cell(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind == "text":
        return safe_text(str(value))
    return _cell(value)


# The fleet report's columns as the excel-br CSV types them: hours are
# decimal hours here (as in the workbook), so they stay numbers to add up.
_REPORT_DECIMALS = {"distance_km": 1, "max_speed_kmh": 1}


def report_csv(
    rows: Sequence[dict[str, Any]],
    dialect: CsvDialect = "rfc4180",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The fleet report's rows; `headers` (etrack.web.reports.report_headers of
    the reader's language) head the excel-br columns."""
    if dialect == "excel-br":
        shown = headers or {}
        columns: list[tuple[str, ColumnKind, int, str, str]] = []
        for name, kind in REPORT_COLUMNS:
            typed: ColumnKind = "text" if kind == "text" else "int" if kind == "int" else "number"
            label = shown.get(name, name)
            columns.append((name, typed, _REPORT_DECIMALS.get(name, 2), label, label))
        return section_csv(_excel_section(columns, rows), UTC, "excel-br")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = [name for name, _ in REPORT_COLUMNS]
    writer.writerow(names)
    for row in rows:
        writer.writerow([_csv_cell(row.get(name), kind) for name, kind in REPORT_COLUMNS])
    return buffer.getvalue().encode()


def report_xlsx(
    rows: Sequence[dict[str, Any]], headers: dict[str, str], first: date, last: date
) -> bytes:
    """The fleet report as a workbook: real numbers, bold header, filters, frozen header row."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = workbook.add_worksheet(f"{first.isoformat()}_{last.isoformat()}"[:31])
    bold = workbook.add_format({"bold": True, "bg_color": "#DDE7F0", "border": 1})
    number = workbook.add_format({"num_format": "#,##0.00"})
    integer = workbook.add_format({"num_format": "0"})
    for col, (name, kind) in enumerate(REPORT_COLUMNS):
        sheet.write_string(0, col, safe_text(headers.get(name, name)), bold)
        sheet.set_column(col, col, 12 if kind != "text" else 18)
    for r, row in enumerate(rows, start=1):
        for col, (name, kind) in enumerate(REPORT_COLUMNS):
            value = _cell(row.get(name))
            if value is None:
                continue
            if kind == "text":
                # write_string already keeps it from being a formula in Excel;
                # the quote also protects whoever re-saves the sheet as CSV.
                sheet.write_string(r, col, safe_text(str(value)))
            else:
                sheet.write_number(r, col, float(value), integer if kind == "int" else number)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(1, len(rows)), len(REPORT_COLUMNS) - 1)
    workbook.close()
    return buffer.getvalue()


# ------------------------------------------------------------ fence visits
# The Visits page's rows (web/pages/visits.py): one per fence, vehicle and
# local day. Times are ISO 8601 with the account's offset in the CSV, local
# date-times in the workbook; durations in seconds (CSV) and minutes (XLSX).
VISIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("day", "date"),
    ("fence", "text"),
    ("group", "text"),
    ("placa", "text"),
    ("visits", "int"),
    ("dwell_s", "number"),
    ("first_arrival", "moment"),
    ("last_departure", "moment"),
    ("stops_inside", "int"),
    ("stops_inside_s", "number"),
)


def _visit_csv_cell(value: Any, kind: str, tz: tzinfo) -> Any:
    if value is None:
        return ""
    if kind == "moment":
        return value.astimezone(tz).isoformat()
    if kind == "date":
        return value.isoformat()
    return _csv_cell(value, kind)


def _visit_columns() -> list[tuple[str, ColumnKind, int, str, str]]:
    pt, en = VISIT_HEADERS["pt-BR"], VISIT_HEADERS["en"]
    # Durations as H:MM:SS in excel-br (Excel reads them as times), so their
    # headers lose the "(min)" of the workbook's.
    durations = {
        "dwell_s": ("Permanência", "Dwell"),
        "stops_inside_s": ("Tempo parado dentro", "Stopped inside"),
    }
    columns: list[tuple[str, ColumnKind, int, str, str]] = []
    for name, kind in VISIT_COLUMNS:
        if name in durations:
            columns.append((name, "duration", 0, *durations[name]))
            continue
        typed: ColumnKind = (
            "moment"
            if kind == "moment"
            else "date"
            if kind == "date"
            else "int"
            if kind == "int"
            else "text"
        )
        columns.append((name, typed, 0, pt[name], en[name]))
    return columns


def visits_csv(
    rows: Sequence[dict[str, Any]], tz: tzinfo, dialect: CsvDialect = "rfc4180", lang: str = "pt-BR"
) -> bytes:
    """One row per fence, vehicle and day; an empty last_departure: still inside."""
    if dialect == "excel-br":
        return section_csv(_excel_section(_visit_columns(), rows), tz, "excel-br", lang)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([name for name, _ in VISIT_COLUMNS])
    for row in rows:
        writer.writerow([_visit_csv_cell(row.get(name), kind, tz) for name, kind in VISIT_COLUMNS])
    return buffer.getvalue().encode()


VISIT_HEADERS = {
    "pt-BR": {
        "day": "Dia",
        "fence": "Cerca",
        "group": "Grupo",
        "placa": "Placa",
        "visits": "Visitas",
        "dwell_s": "Permanência (min)",
        "average_dwell_s": "Permanência média (min)",
        "first_arrival": "Primeira chegada",
        "last_departure": "Última saída",
        "stops_inside": "Paradas dentro",
        "stops_inside_s": "Paradas dentro (min)",
    },
    "en": {
        "day": "Day",
        "fence": "Fence",
        "group": "Group",
        "placa": "Plate",
        "visits": "Visits",
        "dwell_s": "Dwell (min)",
        "average_dwell_s": "Average dwell (min)",
        "first_arrival": "First arrival",
        "last_departure": "Last departure",
        "stops_inside": "Stops inside",
        "stops_inside_s": "Stops inside (min)",
    },
}

_SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("fence", "text"),
    ("group", "text"),
    ("placa", "text"),
    ("visits", "int"),
    ("dwell_s", "number"),
    ("average_dwell_s", "number"),
)


def visits_xlsx(
    rows: Sequence[dict[str, Any]],
    summaries: Sequence[dict[str, Any]],
    tz: tzinfo,
    lang: str,
    first: date,
    last: date,
) -> bytes:
    """Two sheets: per fence and vehicle, then per day; real numbers (minutes)
    and real local date-times, bold header, filters, frozen header row."""
    headers = VISIT_HEADERS.get(lang, VISIT_HEADERS["en"])
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "remove_timezone": True})
    bold = workbook.add_format({"bold": True, "bg_color": "#DDE7F0", "border": 1})
    number = workbook.add_format({"num_format": "#,##0.0"})
    integer = workbook.add_format({"num_format": "0"})
    moment = workbook.add_format(
        {"num_format": "dd/mm/yyyy hh:mm" if lang == "pt-BR" else "yyyy-mm-dd hh:mm"}
    )
    day_format = workbook.add_format(
        {"num_format": "dd/mm/yyyy" if lang == "pt-BR" else "yyyy-mm-dd"}
    )

    def sheet_of(
        title: str, columns: tuple[tuple[str, str], ...], items: Sequence[dict[str, Any]]
    ) -> None:
        sheet = workbook.add_worksheet(title[:31])
        for col, (name, kind) in enumerate(columns):
            sheet.write_string(0, col, safe_text(headers.get(name, name)), bold)
            sheet.set_column(col, col, 18 if kind in ("text", "moment") else 12)
        for r, item in enumerate(items, start=1):
            for col, (name, kind) in enumerate(columns):
                value = _cell(item.get(name))
                if value is None:
                    continue
                if kind == "text":
                    sheet.write_string(r, col, safe_text(str(value)))
                elif kind == "moment":
                    sheet.write_datetime(r, col, value.astimezone(tz).replace(tzinfo=None), moment)
                elif kind == "date":
                    sheet.write_datetime(
                        r, col, datetime(value.year, value.month, value.day), day_format
                    )
                elif kind == "int":
                    sheet.write_number(r, col, float(value), integer)
                else:
                    # Durations in seconds -> minutes.
                    sheet.write_number(r, col, float(value) / 60.0, number)
        sheet.freeze_panes(1, 0)
        sheet.autofilter(0, 0, max(1, len(items)), len(columns) - 1)

    span = f"{first.isoformat()}_{last.isoformat()}"
    pt = lang == "pt-BR"
    sheet_of(("Cercas " if pt else "Fences ") + span, _SUMMARY_COLUMNS, summaries)
    sheet_of(("Dias " if pt else "Days ") + span, VISIT_COLUMNS, rows)
    workbook.close()
    return buffer.getvalue()
