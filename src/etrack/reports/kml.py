"""A vehicle day as KML 2.2, to open in Google Earth (or My Maps, QGIS).

The PDF draws the route with no map under it; this file is the way to see
it over real imagery. One Document named "PLACA DD/MM/YYYY": the route as a
LineString (KML wants longitude,latitude, the reverse of how the rest of
etrack orders them), one Point per stop with its arrival and departure
times in the description, in the order given. The line's times are not
written: a plain KML 2.2 LineString has none per vertex (gx:Track would,
but not every reader takes the Google extensions). The XML is small and
flat, so it is written by hand, every text escaped and stripped of the
control characters XML 1.0 refuses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime
from xml.sax.saxutils import escape

from etrack.reports.cells import br_date

__all__ = ["day_kml"]

_LINE_STYLE = "route"
_STOP_STYLE = "stop"
# KML colours are aabbggrr: an opaque blue, as the PDF's line.
_LINE_COLOR = "ffc85a14"
_LINE_WIDTH = 4


_XML_REFUSED = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


def _text(text: str) -> str:
    return escape(text.translate(_XML_REFUSED))


def _clock(moment: datetime | None, day: date) -> str:
    """HH:MM on the moment's own clock (the caller passes the account's local
    times: a KML viewer has no report time zone to apply), with the date when
    it is not the day of the file (a stop over midnight)."""
    if moment is None:
        return "—"
    clock = f"{moment.hour:02d}:{moment.minute:02d}"
    return clock if moment.date() == day else f"{br_date(moment.date())} {clock}"


def _coordinate(lat: float, lon: float) -> str | None:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90):
        return None
    return f"{lon:.6f},{lat:.6f}"


def day_kml(
    placa: str,
    day: date,
    line: Sequence[tuple[float, float, datetime | None]],
    stops: Sequence[tuple[float, float, str, datetime, datetime | None]],
) -> bytes:
    """The day of vehicle `placa` as KML 2.2 bytes (UTF-8).

    `line`: (latitude, longitude, time or None) in time order; `stops`:
    (latitude, longitude, label, arrival, departure or None while there).
    Points with no valid coordinates are left out."""
    name = f"{placa} {br_date(day)}"
    out: list[str] = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<kml xmlns="http://www.opengis.net/kml/2.2">',
        "<Document>",
        f"<name>{_text(name)}</name>",
        f'<Style id="{_LINE_STYLE}"><LineStyle><color>{_LINE_COLOR}</color>'
        f"<width>{_LINE_WIDTH}</width></LineStyle></Style>",
        f'<Style id="{_STOP_STYLE}"><IconStyle><scale>1.1</scale></IconStyle></Style>',
    ]
    coordinates = [c for lat, lon, _ in line if (c := _coordinate(lat, lon)) is not None]
    # A day with no valid position has no line: an empty LineString is invalid KML.
    if coordinates:
        out += [
            "<Placemark>",
            f"<name>{_text(f'Trajeto {name}')}</name>",
            f"<styleUrl>#{_LINE_STYLE}</styleUrl>",
            "<LineString><tessellate>1</tessellate>",
            f"<coordinates>{' '.join(coordinates)}</coordinates>",
            "</LineString>",
            "</Placemark>",
        ]
    for lat, lon, label, arrival, departure in stops:
        point = _coordinate(lat, lon)
        if point is None:
            continue
        description = f"Chegada {_clock(arrival, day)} — saída {_clock(departure, day)}"
        out += [
            "<Placemark>",
            f"<name>{_text(label)}</name>",
            f"<description>{_text(description)}</description>",
            f"<styleUrl>#{_STOP_STYLE}</styleUrl>",
            f"<Point><coordinates>{point}</coordinates></Point>",
            "</Placemark>",
        ]
    out += ["</Document>", "</kml>", ""]
    return "\n".join(out).encode("utf-8")
