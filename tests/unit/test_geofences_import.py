"""Fence files read from disk: GeoJSON, KML and CSV, each bad input one line
naming the feature and the problem, nothing returned."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from etrack.errors import EXIT_USAGE, UsageError
from etrack.geofences.imports import parse_fences, read_fences
from etrack.geofences.shapes import Fence

KML_NS = "http://www.opengis.net/kml/2.2"

# A square with a square hole, around Praça da Sé (São Paulo); open rings on purpose.
OUTER = [[-46.64, -23.56], [-46.62, -23.56], [-46.62, -23.54], [-46.64, -23.54]]
HOLE = [[-46.635, -23.555], [-46.625, -23.555], [-46.625, -23.545], [-46.635, -23.545]]
# An asymmetric bowtie: its two lobes differ, so it has an area and crosses itself.
BOWTIE = [[-46.7, -23.6], [-46.5, -23.4], [-46.5, -23.6], [-46.7, -23.45], [-46.7, -23.6]]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def feature(geometry: dict[str, Any] | None, **properties: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def collection(*features: dict[str, Any]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def refused(path: Path, group: str | None = None) -> str:
    """The one-line message of the UsageError reading `path` raises."""
    with pytest.raises(UsageError) as caught:
        read_fences(path, group=group)
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.exit_code == EXIT_USAGE
    return message


# ----------------------------------------------------------------- GeoJSON
def test_geojson_every_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sites.geojson",
        collection(
            feature(
                {"type": "Polygon", "coordinates": [OUTER, HOLE]},
                name="Praça",
                group="centro",
                speed_limit_kmh=30,
            ),
            feature(
                {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[-46.0, -23.0, 760.0], [-45.9, -23.0, 760.0], [-45.9, -22.9, 760.0]]],
                        [[[-45.0, -22.0], [-44.9, -22.0], [-44.9, -21.9], [-45.0, -22.0]]],
                    ],
                },
                nome="Dois pátios",
            ),
            feature(
                {"type": "Point", "coordinates": [-46.6, -23.5, 12.5]},
                Name="Cliente X",
                radius_m=150,
            ),
            feature(
                {"type": "LineString", "coordinates": [[-46.7, -23.6], [-46.6, -23.5]]},
                name="Marginal",
                buffer_m="40",
            ),
        ),
    )
    fences = read_fences(path, group="importados")
    assert [(f.name, f.kind) for f in fences] == [
        ("Praça", "polygon"),
        ("Dois pátios", "polygon"),
        ("Cliente X", "circle"),
        ("Marginal", "corridor"),
    ]
    square, multi, circle, corridor = fences
    # Rings closed, outer first then the hole.
    assert square.geometry == {
        "type": "Polygon",
        "coordinates": [[*OUTER, OUTER[0]], [*HOLE, HOLE[0]]],
    }
    assert square.radius_m is None
    assert square.speed_limit_kmh == 30.0
    # The feature's own group wins over --group; the others get --group.
    assert [f.group for f in fences] == ["centro", "importados", "importados", "importados"]
    assert multi.geometry["type"] == "MultiPolygon"
    assert len(multi.geometry["coordinates"]) == 2
    # Altitude dropped, the open ring closed.
    assert multi.geometry["coordinates"][0][0] == [
        [-46.0, -23.0],
        [-45.9, -23.0],
        [-45.9, -22.9],
        [-46.0, -23.0],
    ]
    assert circle.geometry == {"type": "Point", "coordinates": [-46.6, -23.5]}
    assert circle.radius_m == 150.0
    assert corridor.geometry["coordinates"] == [[-46.7, -23.6], [-46.6, -23.5]]
    assert corridor.radius_m == 40.0


def test_geojson_single_feature_and_no_group(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "one.json",
        json.dumps(
            feature({"type": "Point", "coordinates": [-46.6, -23.5]}, name="Só", radius_m=80)
        ),
    )
    assert read_fences(path) == [
        Fence(
            name="Só",
            kind="circle",
            geometry={"type": "Point", "coordinates": [-46.6, -23.5]},
            radius_m=80.0,
        )
    ]


def test_parse_fences_without_a_file() -> None:
    text = collection(feature({"type": "Point", "coordinates": [1, 2]}, name="A", radius_m=5))
    (fence,) = parse_fences(text, "geojson", source="pasted", group="g")
    assert (fence.name, fence.group, fence.geometry["coordinates"]) == ("A", "g", [1.0, 2.0])
    with pytest.raises(
        UsageError, match=r"^pasted: unknown format 'shp': expected geojson, kml, csv$"
    ):
        parse_fences(text, "shp", source="pasted", group=None)


@pytest.mark.parametrize(
    ("features", "expected"),
    [
        pytest.param(
            [
                feature({"type": "Point", "coordinates": [-46.6, -23.5]}, name="A", radius_m=10),
                feature({"type": "Point", "coordinates": [-46.6, -23.4]}, name="B", radius_m=10),
                feature({"type": "Polygon", "coordinates": [BOWTIE]}, name="Cliente X"),
            ],
            r"^sites\.geojson: feature 3 \('Cliente X'\): invalid polygon: Self-intersection\[-46\.6\d* -23\.5\d*\]$",
            id="bowtie",
        ),
        pytest.param(
            [feature({"type": "Point", "coordinates": [-46.6, -23.5]}, name="Zero", radius_m=0)],
            r"^sites\.geojson: feature 1 \('Zero'\): radius_m must be a number of metres above 0, not 0\.0$",
            id="radius-zero",
        ),
        pytest.param(
            [feature({"type": "Point", "coordinates": [-46.6, -23.5]}, name="Neg", radius_m=-5)],
            r"^sites\.geojson: feature 1 \('Neg'\): radius_m must be a number of metres above 0, not -5\.0$",
            id="radius-negative",
        ),
        pytest.param(
            [
                feature(
                    {"type": "LineString", "coordinates": [[-46.7, -23.6], [-46.6, -23.5]]},
                    name="Via",
                    buffer_m=0,
                )
            ],
            r"^sites\.geojson: feature 1 \('Via'\): buffer_m must be a number of metres above 0, not 0\.0$",
            id="buffer-zero",
        ),
        pytest.param(
            [feature({"type": "Point", "coordinates": [-46.6, 123]}, name="Longe", radius_m=50)],
            r"^sites\.geojson: feature 1 \('Longe'\): coordinate \(-46\.6, 123\.0\) is off the globe",
            id="lat-123",
        ),
        pytest.param(
            [feature({"type": "Point", "coordinates": [-46.6, -23.5]}, name="Sem raio")],
            r"^sites\.geojson: feature 1 \('Sem raio'\): a Point needs a radius_m property",
            id="point-without-radius",
        ),
        pytest.param(
            [
                feature(
                    {"type": "LineString", "coordinates": [[-46.7, -23.6], [-46.6, -23.5]]},
                    name="Sem largura",
                )
            ],
            r"^sites\.geojson: feature 1 \('Sem largura'\): a LineString needs a buffer_m property",
            id="line-without-buffer",
        ),
        pytest.param(
            [feature({"type": "MultiPoint", "coordinates": [[-46.6, -23.5]]}, name="Pontos")],
            r"^sites\.geojson: feature 1 \('Pontos'\): geometry 'MultiPoint': expected Polygon, MultiPolygon",
            id="other-geometry",
        ),
        pytest.param(
            [feature(None, name="Vazio")],
            r"^sites\.geojson: feature 1 \('Vazio'\): no geometry",
            id="no-geometry",
        ),
        pytest.param(
            [feature({"type": "Point", "coordinates": [-46.6, -23.5]}, radius_m=50)],
            r"^sites\.geojson: feature 1 \(no name\): a fence needs a name$",
            id="no-name",
        ),
        pytest.param(
            [
                feature(
                    {"type": "Point", "coordinates": ["-46.6", "-23.5"]}, name="Texto", radius_m=5
                )
            ],
            r"^sites\.geojson: feature 1 \('Texto'\): coordinates must be numbers",
            id="text-coordinates",
        ),
        pytest.param(
            [
                feature(
                    {"type": "Point", "coordinates": [-46.6, -23.5]},
                    name="Rápido",
                    radius_m=5,
                    speed_limit_kmh=-1,
                )
            ],
            r"^sites\.geojson: feature 1 \('Rápido'\): speed_limit_kmh must be above 0",
            id="speed-limit",
        ),
        pytest.param(
            [
                feature(
                    {"type": "Point", "coordinates": [-46.6, -23.5]}, name="Cliente X", radius_m=10
                ),
                feature(
                    {"type": "Point", "coordinates": [-46.5, -23.5]}, name="Outro", radius_m=10
                ),
                feature(
                    {"type": "Point", "coordinates": [-46.4, -23.5]}, name="Cliente X", radius_m=10
                ),
            ],
            r"^sites\.geojson: feature 3 \('Cliente X'\): the name is already used by feature 1",
            id="duplicate-names",
        ),
    ],
)
def test_geojson_bad_feature(tmp_path: Path, features: list[dict[str, Any]], expected: str) -> None:
    assert len(features) >= 1
    message = refused(write(tmp_path, "sites.geojson", collection(*features)))
    assert message == message.strip()
    assert re.search(expected, message), message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            '{"type": "FeatureCollection", "features": [',
            r"^bad\.geojson: not JSON: ",
            id="truncated",
        ),
        pytest.param(
            "name;latitude\n",
            r"^bad\.geojson: not JSON: Expecting value at line 1 column 1$",
            id="csv-as-json",
        ),
        pytest.param(
            json.dumps({"type": "Polygon", "coordinates": [OUTER]}),
            r"^bad\.geojson: top-level type 'Polygon': expected a FeatureCollection or a Feature$",
            id="bare-geometry",
        ),
        pytest.param(
            json.dumps({"type": "Topology"}),
            r"^bad\.geojson: top-level type 'Topology'",
            id="topojson",
        ),
        pytest.param("[1, 2]", r"^bad\.geojson: not GeoJSON", id="array"),
        pytest.param(collection(), r"^bad\.geojson: no fences", id="empty-collection"),
    ],
)
def test_geojson_bad_file(tmp_path: Path, content: str, expected: str) -> None:
    message = refused(write(tmp_path, "bad.geojson", content))
    assert re.search(expected, message), message


# --------------------------------------------------------------------- KML
def kml(body: str, *, namespace: bool = True) -> str:
    xmlns = f' xmlns="{KML_NS}"' if namespace else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<kml{xmlns}><Document><name>Export</name>{body}</Document></kml>\n'


def ring(points: list[list[float]], altitude: bool = False) -> str:
    tuples = " ".join(f"{lon},{lat}" + (",0" if altitude else "") for lon, lat in points)
    return f"<LinearRing><coordinates>\n  {tuples}\n</coordinates></LinearRing>"


POLYGON_KML = (
    "<Polygon><outerBoundaryIs>"
    + ring(OUTER, altitude=True)
    + "</outerBoundaryIs><innerBoundaryIs>"
    + ring(HOLE)
    + "</innerBoundaryIs></Polygon>"
)


@pytest.mark.parametrize("namespace", [True, False], ids=["namespace", "no-namespace"])
def test_kml_placemarks_in_nested_folders(tmp_path: Path, namespace: bool) -> None:
    body = (
        f"<Placemark><name>Praça</name>{POLYGON_KML}</Placemark>"
        "<Folder><name>Clientes</name>"
        "<Placemark><name>Cliente X</name>"
        '<ExtendedData><Data name="radius_m"><value> 120.5 </value></Data></ExtendedData>'
        "<Point><coordinates>-46.6,-23.5,0</coordinates></Point></Placemark>"
        "<Folder><name>Pátios</name>"
        "<Placemark><name>Dois pátios</name><MultiGeometry>"
        "<Polygon><outerBoundaryIs>"
        + ring([[-46.0, -23.0], [-45.9, -23.0], [-45.9, -22.9]])
        + "</outerBoundaryIs></Polygon>"
        "<Polygon><outerBoundaryIs>"
        + ring([[-45.0, -22.0], [-44.9, -22.0], [-44.9, -21.9]])
        + "</outerBoundaryIs></Polygon>"
        "</MultiGeometry></Placemark>"
        "<Placemark><name>Rodovia</name>"
        '<ExtendedData><SchemaData schemaUrl="#s"><SimpleData name="buffer_m">35</SimpleData>'
        '<SimpleData name="group">estradas</SimpleData>'
        '<SimpleData name="speed_limit_kmh">80</SimpleData></SchemaData></ExtendedData>'
        "<LineString><coordinates>-46.7,-23.6,0 -46.6,-23.5,0 -46.5,-23.5,0</coordinates></LineString>"
        "</Placemark>"
        "</Folder></Folder>"
    )
    fences = read_fences(write(tmp_path, "export.kml", kml(body, namespace=namespace)), group="kml")
    assert [(f.name, f.kind) for f in fences] == [
        ("Praça", "polygon"),
        ("Cliente X", "circle"),
        ("Dois pátios", "polygon"),
        ("Rodovia", "corridor"),
    ]
    square, circle, multi, road = fences
    assert square.geometry == {
        "type": "Polygon",
        "coordinates": [[*OUTER, OUTER[0]], [*HOLE, HOLE[0]]],
    }
    assert circle.geometry == {"type": "Point", "coordinates": [-46.6, -23.5]}
    assert circle.radius_m == 120.5
    assert multi.geometry["type"] == "MultiPolygon"
    assert [len(p) for p in multi.geometry["coordinates"]] == [1, 1]
    assert multi.geometry["coordinates"][1][0][-1] == [-45.0, -22.0]
    assert road.geometry["coordinates"] == [[-46.7, -23.6], [-46.6, -23.5], [-46.5, -23.5]]
    assert road.radius_m == 35.0
    assert road.speed_limit_kmh == 80.0
    # Folders are not groups: --group fills in, the Placemark's own group wins.
    assert [f.group for f in fences] == ["kml", "kml", "kml", "estradas"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "<Placemark><name>A</name><Point><coordinates>-46.6,-23.5</coordinates></Point></Placemark>",
            r"^sites\.kml: feature 1 \('A'\): a Point needs ExtendedData radius_m",
            id="point-without-radius",
        ),
        pytest.param(
            '<Placemark><name>A</name><ExtendedData><Data name="radius_m"><value>10</value></Data></ExtendedData>'
            "<Point><coordinates>-46.6,-23.5</coordinates></Point></Placemark>"
            "<Folder><Placemark><name>Cliente X</name><Polygon><outerBoundaryIs>"
            + ring(BOWTIE)
            + "</outerBoundaryIs></Polygon></Placemark></Folder>",
            r"^sites\.kml: feature 2 \('Cliente X'\): invalid polygon: Self-intersection\[",
            id="bowtie",
        ),
        pytest.param(
            '<Placemark><name>Z</name><ExtendedData><Data name="radius_m"><value>-1</value></Data></ExtendedData>'
            "<Point><coordinates>-46.6,-23.5</coordinates></Point></Placemark>",
            r"^sites\.kml: feature 1 \('Z'\): radius_m must be a number of metres above 0, not -1\.0$",
            id="radius-negative",
        ),
        pytest.param(
            '<Placemark><name>Longe</name><ExtendedData><Data name="radius_m"><value>10</value></Data></ExtendedData>'
            "<Point><coordinates>-46.6,123</coordinates></Point></Placemark>",
            r"^sites\.kml: feature 1 \('Longe'\): coordinate \(-46\.6, 123\.0\) is off the globe",
            id="lat-123",
        ),
        pytest.param(
            "<Placemark><name>L</name><LineString><coordinates>-46.7,-23.6 -46.6,-23.5</coordinates></LineString></Placemark>",
            r"^sites\.kml: feature 1 \('L'\): a LineString needs ExtendedData buffer_m",
            id="line-without-buffer",
        ),
        pytest.param(
            "<Placemark><name>M</name><MultiGeometry><Point><coordinates>1,2</coordinates></Point>"
            "</MultiGeometry></Placemark>",
            r"^sites\.kml: feature 1 \('M'\): a MultiGeometry is a fence only when all its parts are Polygons, not Point$",
            id="mixed-multigeometry",
        ),
        pytest.param(
            "<Placemark><name>C</name><Polygon><outerBoundaryIs><LinearRing><coordinates>"
            "-46.6;-23.5 -46.5,-23.5 -46.5,-23.4</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>",
            r"^sites\.kml: feature 1 \('C'\): coordinates '-46\.6;-23\.5': expected lon,lat\[,alt\]$",
            id="bad-tuple",
        ),
        pytest.param(
            "<Placemark><description>sem nome</description><Polygon><outerBoundaryIs>"
            + ring(OUTER)
            + "</outerBoundaryIs></Polygon></Placemark>",
            r"^sites\.kml: feature 1 \(no name\): a fence needs a name$",
            id="no-name",
        ),
        pytest.param(
            "<Placemark><name>Nada</name></Placemark>",
            r"^sites\.kml: feature 1 \('Nada'\): no geometry",
            id="no-geometry",
        ),
        pytest.param(
            f"<Placemark><name>P</name>{POLYGON_KML}</Placemark>"
            f"<Folder><Placemark><name>Q</name>{POLYGON_KML}</Placemark>"
            f"<Placemark><name>P</name>{POLYGON_KML}</Placemark></Folder>",
            r"^sites\.kml: feature 3 \('P'\): the name is already used by feature 1",
            id="duplicate-names",
        ),
        pytest.param("", r"^sites\.kml: no fences", id="no-placemarks"),
    ],
)
def test_kml_bad_feature(tmp_path: Path, body: str, expected: str) -> None:
    message = refused(write(tmp_path, "sites.kml", kml(body)))
    assert re.search(expected, message), message


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE kml [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>&lol3;</name>
<Polygon><outerBoundaryIs><LinearRing><coordinates>0,0 1,0 1,1 0,0</coordinates>
</LinearRing></outerBoundaryIs></Polygon></Placemark></kml>
"""


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            BILLION_LAUGHS,
            r"^bad\.kml: a KML with a DOCTYPE or ENTITY declaration is refused",
            id="doctype",
        ),
        pytest.param(
            '<kml><Placemark><name>x</name></Placemark><!ENTITY x "y"></kml>',
            r"^bad\.kml: a KML with a DOCTYPE or ENTITY",
            id="entity",
        ),
        pytest.param(
            '<?xml version="1.0"?><?pi <!-- ?><!DOCTYPE kml [<!ENTITY a "b">]><!-- --><kml/>',
            r"^bad\.kml: a KML with a DOCTYPE or ENTITY",
            id="doctype-behind-a-processing-instruction",
        ),
        pytest.param(
            "<kml><Placemark></kml>",
            r"^bad\.kml: not KML \(XML\): mismatched tag: line 1",
            id="not-xml",
        ),
        pytest.param(
            '{"type": "FeatureCollection"}',
            r"^bad\.kml: not KML \(XML\): not well-formed",
            id="json",
        ),
        pytest.param(
            "<gpx><wpt/></gpx>",
            r"^bad\.kml: not KML: the root element is <gpx>, not <kml>$",
            id="gpx",
        ),
    ],
)
def test_kml_bad_file(tmp_path: Path, content: str, expected: str) -> None:
    message = refused(write(tmp_path, "bad.kml", content))
    assert re.search(expected, message), message


# --------------------------------------------------------------------- CSV
def test_csv_comma(tmp_path: Path) -> None:
    content = (
        "Name,Latitude,Longitude,Radius_m,group\n"
        "Cliente X,-23.5,-46.6,150,clientes\n"
        "\n"
        '"Depósito, Norte",-23.4,-46.55,80.5,\n'
    )
    fences = read_fences(write(tmp_path, "sites.csv", content), group="importados")
    assert fences == [
        Fence(
            name="Cliente X",
            kind="circle",
            geometry={"type": "Point", "coordinates": [-46.6, -23.5]},
            radius_m=150.0,
            group="clientes",
        ),
        Fence(
            name="Depósito, Norte",
            kind="circle",
            geometry={"type": "Point", "coordinates": [-46.55, -23.4]},
            radius_m=80.5,
            group="importados",
        ),
    ]


def test_csv_semicolon_decimal_comma_portuguese_bom(tmp_path: Path) -> None:
    content = "nome;LATITUDE;longitude;raio_m;grupo;speed_limit_kmh\r\nPátio;-23,55;-46,63;200;;40\r\nLoja 2;-22,9;-43,2;75,5;lojas;\r\n"
    path = write(tmp_path, "sites.txt", b"\xef\xbb\xbf" + content.encode("utf-8"))
    fences = read_fences(path)
    assert [
        (f.name, f.geometry["coordinates"], f.radius_m, f.group, f.speed_limit_kmh) for f in fences
    ] == [
        ("Pátio", [-46.63, -23.55], 200.0, None, 40.0),
        ("Loja 2", [-43.2, -22.9], 75.5, "lojas", None),
    ]
    assert all(f.kind == "circle" for f in fences)


def test_csv_bom_with_comma(tmp_path: Path) -> None:
    # Without the BOM stripped, the first column would be "\ufeffname": an unknown column.
    path = write(tmp_path, "excel.csv", "\ufeffname,latitude,longitude,radius_m\nA,1.5,2.5,10\n")
    (fence,) = read_fences(path)
    assert (fence.name, fence.geometry["coordinates"], fence.radius_m) == ("A", [2.5, 1.5], 10.0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            "name;latitude;longitude;raio\nA;1;2;3\n",
            r"^sites\.csv: line 1: unknown column 'raio': expected name;latitude;longitude;radius_m",
            id="unknown-column",
        ),
        pytest.param(
            "name;latitude;longitude\nA;1;2\n",
            r"^sites\.csv: line 1: missing column radius_m: expected",
            id="missing-column",
        ),
        pytest.param(
            "name;latitude;longitude;radius_m\nA;-23,5;-46,6;100\n\nCliente X;123;-46,6;100\n",
            r"^sites\.csv: line 4 \('Cliente X'\): coordinate \(-46\.6, 123\.0\) is off the globe",
            id="lat-123",
        ),
        pytest.param(
            "name;latitude;longitude;radius_m\nA;-23,5;-46,6;0\n",
            r"^sites\.csv: line 2 \('A'\): radius_m must be a number of metres above 0, not 0\.0$",
            id="radius-zero",
        ),
        pytest.param(
            "name,latitude,longitude,radius_m\nA,-23.5,-46.6,-3\n",
            r"^sites\.csv: line 2 \('A'\): radius_m must be a number of metres above 0, not -3\.0$",
            id="radius-negative",
        ),
        pytest.param(
            'name,latitude,longitude,radius_m\nA,"-23,5",-46.6,10\n',
            r"^sites\.csv: line 2 \('A'\): latitude must be a number, not '-23,5' \(a decimal comma needs ';' as the delimiter\)$",
            id="decimal-comma-with-comma",
        ),
        pytest.param(
            "name,latitude,longitude,radius_m\nA,-23.5,-46.6\n",
            r"^sites\.csv: line 2 \('A'\): 3 values, the header has 4",
            id="short-row",
        ),
        pytest.param(
            "name,latitude,longitude,radius_m\nA,-23.5,-46.6,\n",
            r"^sites\.csv: line 2 \('A'\): radius_m is empty$",
            id="empty-radius",
        ),
        pytest.param(
            "name,latitude,longitude,radius_m\n,-23.5,-46.6,5\n",
            r"^sites\.csv: line 2 \(no name\): a fence needs a name$",
            id="no-name",
        ),
        pytest.param(
            "nome;latitude;longitude;raio_m\nCliente X;-23,5;-46,6;50\nB;-23,4;-46,6;50\nCliente X;-23,3;-46,6;50\n",
            r"^sites\.csv: line 4 \('Cliente X'\): the name is already used by line 2",
            id="duplicate-names",
        ),
        pytest.param(
            "name;latitude;longitude;radius_m\n", r"^sites\.csv: no fences", id="header-only"
        ),
        pytest.param("", r"^sites\.csv: line 1: a header row is required", id="empty"),
    ],
)
def test_csv_bad(tmp_path: Path, content: str, expected: str) -> None:
    message = refused(write(tmp_path, "sites.csv", content))
    assert re.search(expected, message), message


# --------------------------------------------------------------- the file
def test_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "sites.xlsx", "name,latitude,longitude,radius_m\nA,1,2,3\n")
    message = refused(path)
    assert message == (
        "sites.xlsx: unknown extension '.xlsx': expected .geojson, .json, .kml, .csv, .txt"
    )


def test_extension_case_does_not_matter(tmp_path: Path) -> None:
    path = write(tmp_path, "SITES.CSV", "name,latitude,longitude,radius_m\nA,1,2,3\n")
    assert [f.name for f in read_fences(path)] == ["A"]


def test_not_utf8(tmp_path: Path) -> None:
    path = write(
        tmp_path, "latin1.csv", "nome;latitude;longitude;raio_m\nPátio;1;2;3\n".encode("latin-1")
    )
    assert refused(path).startswith("latin1.csv: not UTF-8 text")


def test_missing_file(tmp_path: Path) -> None:
    assert "cannot read" in refused(tmp_path / "nowhere.geojson")


def test_nothing_returned_after_a_bad_feature(tmp_path: Path) -> None:
    # Many good fences before the bad one: all or nothing, the call raises.
    good = [
        feature(
            {"type": "Point", "coordinates": [-46.6 + i / 100, -23.5]}, name=f"F{i}", radius_m=50
        )
        for i in range(1, 50)
    ]
    bad = feature({"type": "Point", "coordinates": [-46.6, -23.5]}, name="F50", radius_m=-1)
    path = write(tmp_path, "many.geojson", collection(*good, bad, *good[:1]))
    result: list[Fence] | None = None
    with pytest.raises(UsageError, match=r"^many\.geojson: feature 50 \('F50'\): radius_m"):
        result = read_fences(path)
    assert result is None


def test_kml_doctype_inside_cdata_or_a_comment_is_text(tmp_path: Path) -> None:
    # Google Earth descriptions are HTML in CDATA; that is not a DTD.
    body = (
        "<!-- exported; <!DOCTYPE is only text here -->"
        "<Placemark><name>Praça</name>"
        "<description><![CDATA[<!DOCTYPE html><html><b>Cliente</b></html>]]></description>"
        f"{POLYGON_KML}</Placemark>"
    )
    (fence,) = read_fences(write(tmp_path, "rich.kml", kml(body)))
    assert (fence.name, fence.kind) == ("Praça", "polygon")


def test_csv_with_decimal_comma_reads_dots_as_thousands(tmp_path: Path) -> None:
    path = tmp_path / "clientes.csv"
    path.write_text(
        "nome;latitude;longitude;raio_m\nA;-23,55;-46,63;1.500\nB;-23,5;-46,6;1.250,5\n"
    )
    fences = read_fences(path)
    assert [f.radius_m for f in fences] == [1500.0, 1250.5]
