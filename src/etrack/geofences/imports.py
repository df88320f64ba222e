"""Fences read from the files people already have: GeoJSON, KML (Google
Earth / My Maps exports) and CSV lists of sites.

All or nothing: the first bad feature stops the import with one line,
`<file>: feature <n> (<name>): <problem>` (`line <n>` for CSV, the file's
own line number, so it can be found in an editor), and nothing is returned.
The checks of the shape itself are `shapes.check_fence`'s, whatever the
format, so a fence drawn on the map and one imported are judged alike.

Coordinates: GeoJSON and KML are longitude first; CSV names its columns.
Altitudes are dropped (a fence is a region of the map). Polygon rings left
open are closed by repeating their first corner.

Groups: a feature's own group (GeoJSON property `group`/`grupo`, KML
ExtendedData `group`/`grupo`, CSV column `group`/`grupo`) wins; the `group`
argument (`--group`) applies to the features without one. KML folders are
not groups.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etrack.errors import UsageError
from etrack.geofences.shapes import check_fence
from etrack.model import Fence, FenceKind

__all__ = ["EXTENSIONS", "FORMATS", "parse_fences", "read_fences"]

EXTENSIONS: dict[str, str] = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".kml": "kml",
    ".csv": "csv",
    ".txt": "csv",
}
"""File extension (lower case) -> format."""
FORMATS = ("geojson", "kml", "csv")

_NAME_KEYS = ("name", "nome", "Name")
_GROUP_KEYS = ("group", "grupo")


class _FileProblem(Exception):
    """The file as a whole cannot be read (not JSON, no fences, ...)."""


@dataclass(frozen=True, slots=True)
class _Candidate:
    """One feature of the file, before its shape is built and checked."""

    where: str
    """"feature 3" or "line 4": where the person will look for it."""
    name: str | None
    build: Callable[[], Fence]

    def label(self) -> str:
        return f"{self.where} ({self.name!r})" if self.name else f"{self.where} (no name)"


def read_fences(path: Path, *, group: str | None = None) -> list[Fence]:
    """The fences of a .geojson/.json, .kml or .csv/.txt file, every one
    checked; UsageError (one line naming the file by its name, the feature and
    the problem) at the first bad one. `group` is given to the features that
    have no group of their own; a feature's own group wins."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        accepted = ", ".join(EXTENSIONS)
        raise UsageError(
            f"{path.name}: unknown extension {path.suffix or '(none)'!r}: expected {accepted}"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        # utf-8-sig: Excel and Notepad write a BOM before UTF-8 CSV.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path.name}: not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    return parse_fences(text, fmt, source=path.name, group=group)


def parse_fences(text: str, fmt: str, *, source: str, group: str | None) -> list[Fence]:
    """The fences of `text` in format `fmt` ("geojson", "kml" or "csv");
    `source` names the file in the errors. See `read_fences`."""
    parsers: dict[str, Callable[[str, str | None], list[_Candidate]]] = {
        "geojson": _geojson,
        "kml": _kml,
        "csv": _csv,
    }
    parser = parsers.get(fmt)
    if parser is None:
        raise UsageError(f"{source}: unknown format {fmt!r}: expected {', '.join(FORMATS)}")
    default_group = (group or "").strip() or None
    try:
        candidates = parser(text.removeprefix("\ufeff"), default_group)
    except _FileProblem as exc:
        raise UsageError(_one_line(f"{source}: {exc}")) from None
    if not candidates:
        raise UsageError(f"{source}: no fences: the file holds no features")
    fences: list[Fence] = []
    first_of: dict[str, str] = {}
    for candidate in candidates:
        try:
            fence = candidate.build()
            check_fence(fence)
        except ValueError as exc:
            raise UsageError(_one_line(f"{source}: {candidate.label()}: {exc}")) from None
        if fence.name in first_of:
            raise UsageError(
                _one_line(
                    f"{source}: {candidate.label()}: the name is already used by "
                    f"{first_of[fence.name]}: fence names must be unique"
                )
            )
        first_of[fence.name] = candidate.where
        fences.append(fence)
    return fences


def _one_line(message: str) -> str:
    # Library messages (shapely, expat) may carry newlines; an error is one line.
    return re.sub(r"\s*[\r\n]+\s*", " ", message).strip()


# ------------------------------------------------------------------ values
def _text(value: object) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | str):
        return str(value).strip() or None
    return None


def _first(values: Mapping[str, object], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        found = _text(values.get(key))
        if found is not None:
            return found
    return None


_THOUSANDS = re.compile(r"[-+]?[0-9]{1,3}(\.[0-9]{3})+(,[0-9]+)?")


def _number(value: object, what: str, *, decimal_comma: bool = False) -> float | None:
    """A number of the file (a JSON number or a numeric text), None when absent."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if decimal_comma and _THOUSANDS.fullmatch(text):
            # "1.500" or "1.500,5" in a ';' file written in Brazil: dots group
            # thousands (reading 1.5 m for a 1,500 m radius would be silent).
            text = text.replace(".", "")
        if decimal_comma and text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")
        try:
            return float(text)
        except ValueError:
            hint = " (a decimal comma needs ';' as the delimiter)" if "," in text else ""
            raise ValueError(f"{what} must be a number, not {value.strip()!r}{hint}") from None
    raise ValueError(f"{what} must be a number, not {value!r}")


def _position(value: object) -> list[float]:
    """[lon, lat] of a GeoJSON position, its altitude dropped."""
    if (
        isinstance(value, list)
        and len(value) >= 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value[:2])
    ):
        return [float(value[0]), float(value[1])]
    raise ValueError(f"coordinates must be numbers [longitude, latitude], not {value!r}")


def _ring(positions: list[list[float]]) -> list[list[float]]:
    if positions and positions[0] != positions[-1]:
        return [*positions, positions[0]]
    return positions


def _fence(
    kind_geometry: tuple[FenceKind, dict[str, Any]],
    name: str | None,
    *,
    radius_m: float | None,
    group: str | None,
    speed_limit_kmh: float | None,
) -> Fence:
    kind, geometry = kind_geometry
    return Fence(
        name=name or "",
        kind=kind,
        geometry=geometry,
        radius_m=radius_m if kind != "polygon" else None,
        group=group,
        speed_limit_kmh=speed_limit_kmh,
    )


# ----------------------------------------------------------------- GeoJSON
_GEOJSON_TYPES = "Polygon, MultiPolygon, Point (with radius_m) or LineString (with buffer_m)"


def _geojson(text: str, default_group: str | None) -> list[_Candidate]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _FileProblem(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(document, dict):
        raise _FileProblem("not GeoJSON: expected a FeatureCollection or a Feature object")
    kind = document.get("type")
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise _FileProblem("the FeatureCollection has no list of features")
    elif kind == "Feature":
        features = [document]
    else:
        raise _FileProblem(f"top-level type {kind!r}: expected a FeatureCollection or a Feature")
    candidates: list[_Candidate] = []
    for n, feature in enumerate(features, start=1):
        properties: dict[str, Any] = {}
        if isinstance(feature, dict) and isinstance(feature.get("properties"), dict):
            properties = feature["properties"]
        name = _first(properties, _NAME_KEYS)
        candidates.append(
            _Candidate(
                f"feature {n}", name, _geojson_builder(feature, properties, name, default_group)
            )
        )
    return candidates


def _geojson_builder(
    feature: object, properties: dict[str, Any], name: str | None, default_group: str | None
) -> Callable[[], Fence]:
    def build() -> Fence:
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise ValueError("not a GeoJSON Feature")
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict):
            raise ValueError(f"no geometry: expected {_GEOJSON_TYPES}")
        kind_geometry = _geojson_geometry(geometry)
        radius: float | None = None
        if kind_geometry[0] == "circle":
            radius = _number(properties.get("radius_m"), "radius_m")
            if radius is None:
                raise ValueError("a Point needs a radius_m property (metres) to be a circle fence")
        elif kind_geometry[0] == "corridor":
            radius = _number(properties.get("buffer_m"), "buffer_m")
            if radius is None:
                raise ValueError(
                    "a LineString needs a buffer_m property (metres each side) "
                    "to be a corridor fence"
                )
        return _fence(
            kind_geometry,
            name,
            radius_m=radius,
            group=_first(properties, _GROUP_KEYS) or default_group,
            speed_limit_kmh=_number(properties.get("speed_limit_kmh"), "speed_limit_kmh"),
        )

    return build


def _geojson_geometry(geometry: dict[str, Any]) -> tuple[FenceKind, dict[str, Any]]:
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Point":
        return "circle", {"type": "Point", "coordinates": _position(coordinates)}
    if kind == "LineString":
        return "corridor", {"type": "LineString", "coordinates": _positions(coordinates)}
    if kind == "Polygon":
        return "polygon", {"type": "Polygon", "coordinates": _rings(coordinates)}
    if kind == "MultiPolygon":
        if not isinstance(coordinates, list):
            raise ValueError("a MultiPolygon's coordinates must be a list of polygons")
        return "polygon", {
            "type": "MultiPolygon",
            "coordinates": [_rings(polygon) for polygon in coordinates],
        }
    raise ValueError(f"geometry {kind!r}: expected {_GEOJSON_TYPES}")


def _positions(value: object) -> list[list[float]]:
    if not isinstance(value, list):
        raise ValueError(f"coordinates must be a list of positions, not {value!r}")
    return [_position(item) for item in value]


def _rings(value: object) -> list[list[list[float]]]:
    if not isinstance(value, list) or not value:
        raise ValueError("a polygon's coordinates must be a list of rings (the outer one first)")
    return [_ring(_positions(ring)) for ring in value]


# --------------------------------------------------------------------- KML
# A DTD is where entity-expansion attacks (billion laughs) live, and no
# Google Earth or My Maps export has one; defusedxml is not a dependency.
# Comments, processing instructions and CDATA are matched as XML tokenizes
# them, left to right, so an HTML description in CDATA ("<!DOCTYPE html>")
# is not refused and a declaration cannot hide in what looks like a comment.
_DTD = re.compile(
    r"<!--.*?-->|<\?.*?\?>|<!\[CDATA\[.*?\]\]>|(?P<dtd><!\s*(?:DOCTYPE|ENTITY))",
    re.IGNORECASE | re.DOTALL,
)
_KML_GEOMETRIES = (
    "Polygon, MultiGeometry of Polygons, Point (with radius_m) or LineString (with buffer_m)"
)


def _local(tag: object) -> str:
    # Namespaced ("{http://www.opengis.net/kml/2.2}Placemark") or not: the same element.
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _kml(text: str, default_group: str | None) -> list[_Candidate]:
    if any(match.group("dtd") for match in _DTD.finditer(text)):
        raise _FileProblem(
            "a KML with a DOCTYPE or ENTITY declaration is refused "
            "(entity expansion); Google Earth and My Maps exports have none"
        )
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTDs refused above
    except ET.ParseError as exc:
        raise _FileProblem(f"not KML (XML): {exc}") from None
    if _local(root.tag) != "kml":
        raise _FileProblem(f"not KML: the root element is <{_local(root.tag)}>, not <kml>")
    candidates: list[_Candidate] = []
    placemarks = [e for e in root.iter() if _local(e.tag) == "Placemark"]
    for n, placemark in enumerate(placemarks, start=1):
        name_element = _child(placemark, "name")
        name = _text(name_element.text) if name_element is not None else None
        candidates.append(
            _Candidate(f"feature {n}", name, _kml_builder(placemark, name, default_group))
        )
    return candidates


def _kml_builder(
    placemark: ET.Element, name: str | None, default_group: str | None
) -> Callable[[], Fence]:
    def build() -> Fence:
        data = _extended_data(placemark)
        geometries = [
            child
            for child in placemark
            if _local(child.tag)
            in (
                "Polygon",
                "MultiGeometry",
                "Point",
                "LineString",
                "LinearRing",
                "MultiTrack",
                "Track",
                "Model",
            )
        ]
        if not geometries:
            raise ValueError(f"no geometry: expected {_KML_GEOMETRIES}")
        if len(geometries) > 1:
            raise ValueError("more than one geometry: put them in a MultiGeometry")
        kind_geometry = _kml_geometry(geometries[0])
        radius: float | None = None
        if kind_geometry[0] == "circle":
            radius = _number(data.get("radius_m"), "radius_m")
            if radius is None:
                raise ValueError(
                    "a Point needs ExtendedData radius_m (metres) to be a circle fence"
                )
        elif kind_geometry[0] == "corridor":
            radius = _number(data.get("buffer_m"), "buffer_m")
            if radius is None:
                raise ValueError(
                    "a LineString needs ExtendedData buffer_m (metres each side) "
                    "to be a corridor fence"
                )
        return _fence(
            kind_geometry,
            name,
            radius_m=radius,
            group=_first(data, _GROUP_KEYS) or default_group,
            speed_limit_kmh=_number(data.get("speed_limit_kmh"), "speed_limit_kmh"),
        )

    return build


def _extended_data(placemark: ET.Element) -> dict[str, str]:
    """ExtendedData as name -> text: <Data name><value> and <SimpleData name>."""
    values: dict[str, str] = {}
    for extended in _children(placemark, "ExtendedData"):
        for element in extended.iter():
            key = element.get("name")
            if key is None:
                continue
            if _local(element.tag) == "Data":
                value = _child(element, "value")
                values.setdefault(key, (value.text or "") if value is not None else "")
            elif _local(element.tag) == "SimpleData":
                values.setdefault(key, element.text or "")
    return values


def _kml_geometry(element: ET.Element) -> tuple[FenceKind, dict[str, Any]]:
    kind = _local(element.tag)
    if kind == "Point":
        points = _kml_coordinates(element)
        if len(points) != 1:
            raise ValueError(f"a Point has one lon,lat tuple, not {len(points)}")
        return "circle", {"type": "Point", "coordinates": points[0]}
    if kind == "LineString":
        return "corridor", {"type": "LineString", "coordinates": _kml_coordinates(element)}
    if kind == "Polygon":
        return "polygon", {"type": "Polygon", "coordinates": _kml_rings(element)}
    if kind == "MultiGeometry":
        parts = list(element)
        others = sorted({_local(p.tag) for p in parts if _local(p.tag) != "Polygon"})
        if others:
            raise ValueError(
                f"a MultiGeometry is a fence only when all its parts are Polygons, "
                f"not {', '.join(others)}"
            )
        if not parts:
            raise ValueError("an empty MultiGeometry")
        return "polygon", {
            "type": "MultiPolygon",
            "coordinates": [_kml_rings(part) for part in parts],
        }
    raise ValueError(f"geometry {kind}: expected {_KML_GEOMETRIES}")


def _kml_rings(polygon: ET.Element) -> list[list[list[float]]]:
    outer = _children(polygon, "outerBoundaryIs")
    if len(outer) != 1:
        raise ValueError("a Polygon needs one outerBoundaryIs LinearRing")
    rings = [_kml_ring(outer[0], "outerBoundaryIs")]
    rings.extend(
        _kml_ring(inner, "innerBoundaryIs") for inner in _children(polygon, "innerBoundaryIs")
    )
    return rings


def _kml_ring(boundary: ET.Element, what: str) -> list[list[float]]:
    ring = _child(boundary, "LinearRing")
    if ring is None:
        raise ValueError(f"{what} without a LinearRing")
    return _ring(_kml_coordinates(ring))


def _kml_coordinates(element: ET.Element) -> list[list[float]]:
    """The "lon,lat[,alt] lon,lat[,alt] ..." of an element's <coordinates>."""
    coordinates = _child(element, "coordinates")
    if coordinates is None or not (coordinates.text or "").strip():
        raise ValueError(f"{_local(element.tag)} without coordinates")
    points: list[list[float]] = []
    for item in (coordinates.text or "").split():
        parts = item.split(",")
        try:
            if len(parts) not in (2, 3):
                raise ValueError(item)
            lon, lat = float(parts[0]), float(parts[1])
        except ValueError:
            raise ValueError(f"coordinates {item!r}: expected lon,lat[,alt]") from None
        points.append([lon, lat])
    return points


# --------------------------------------------------------------------- CSV
_CSV_COLUMNS: dict[str, str] = {
    "name": "name",
    "nome": "name",
    "latitude": "latitude",
    "longitude": "longitude",
    "radius_m": "radius_m",
    "raio_m": "radius_m",
    "group": "group",
    "grupo": "group",
    "speed_limit_kmh": "speed_limit_kmh",
}
_CSV_REQUIRED = ("name", "latitude", "longitude", "radius_m")
_CSV_EXPECTED = (
    "expected name;latitude;longitude;radius_m (or nome, raio_m), "
    "optionally group (grupo) and speed_limit_kmh"
)


def _csv(text: str, default_group: str | None) -> list[_Candidate]:
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].strip():
        raise _FileProblem(f"line 1: a header row is required: {_CSV_EXPECTED}")
    # The header decides: Excel in pt-BR writes ';' (its decimal separator is ',').
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") and ";" in lines[0] else ","
    reader = csv.reader(iter(lines), delimiter=delimiter)
    header = next(reader)
    columns: dict[str, int] = {}
    ignored: list[int] = []
    for index, raw in enumerate(header):
        label = raw.strip().lower()
        if not label:
            # A trailing delimiter (some spreadsheets write one) makes a column without a name.
            ignored.append(index)
            continue
        column = _CSV_COLUMNS.get(label)
        if column is None:
            raise _FileProblem(f"line 1: unknown column {raw.strip()!r}: {_CSV_EXPECTED}")
        if column in columns:
            raise _FileProblem(f"line 1: column {column} appears twice")
        columns[column] = index
    missing = [c for c in _CSV_REQUIRED if c not in columns]
    if missing:
        raise _FileProblem(f"line 1: missing column {', '.join(missing)}: {_CSV_EXPECTED}")
    candidates: list[_Candidate] = []
    line_end = reader.line_num
    for row in reader:
        line = line_end + 1  # a quoted value may span lines: the row starts after the last one
        line_end = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        name_index = columns["name"]
        name = (row[name_index].strip() or None) if name_index < len(row) else None
        candidates.append(
            _Candidate(
                f"line {line}",
                name,
                _csv_builder(row, len(header), columns, ignored, name, delimiter, default_group),
            )
        )
    return candidates


def _csv_builder(
    row: list[str],
    width: int,
    columns: dict[str, int],
    ignored: list[int],
    name: str | None,
    delimiter: str,
    default_group: str | None,
) -> Callable[[], Fence]:
    def build() -> Fence:
        if len(row) != width:
            raise ValueError(f"{len(row)} values, the header has {width} (delimiter {delimiter!r})")
        if any(row[i].strip() for i in ignored):
            raise ValueError("a value under a column without a name in the header")

        def optional(column: str) -> float | None:
            index = columns.get(column)
            if index is None:
                return None
            return _number(row[index], column, decimal_comma=delimiter == ";")

        def required(column: str) -> float:
            number = optional(column)
            if number is None:
                raise ValueError(f"{column} is empty")
            return number

        group_index = columns.get("group")
        own_group = row[group_index].strip() if group_index is not None else ""
        return Fence(
            name=name or "",
            kind="circle",
            geometry={
                "type": "Point",
                "coordinates": [required("longitude"), required("latitude")],
            },
            radius_m=required("radius_m"),
            group=own_group or default_group,
            speed_limit_kmh=optional("speed_limit_kmh"),
        )

    return build
