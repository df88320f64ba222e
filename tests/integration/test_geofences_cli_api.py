"""Geofences through their surfaces, on a real PostgreSQL: `etrack geofences
import|list|export|delete|visits-compute` and `etrack visits` through the real
entry point; GET/POST/DELETE /api/geofences and GET /api/visits through the
real app, with the visits of a POSTed fence computed by a real worker."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import time
import warnings
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from etrack.config import Settings
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.jobs.app import open_app
from etrack.jobs.env import JobEnv
from etrack.jobs.runs import record_job
from etrack.jobs.visits import month_chunks
from etrack.model import VALID, Fence, Position
from etrack.store import db
from etrack.store import geofences as fence_store
from etrack.store import positions as ingest
from etrack.store.geofences import visit_id
from etrack.web import create_app, i18n
from etrack.web.security import hash_password
from fixtures_cli import RunEtrack
from fixtures_jobs import FAST

with warnings.catch_warnings():
    # Starlette's TestClient warns that it will move to httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = ZoneInfo("America/Sao_Paulo")
DAY = date(2025, 3, 4)
NOON = datetime(2025, 3, 4, 12, 0, tzinfo=TZ)
# A second visit in another month: the history spans two months.
LATER_DAY = date(2025, 4, 15)
LATER_NOON = datetime(2025, 4, 15, 12, 0, tzinfo=TZ)
PLATE = "ABC1D23"
OTHER = "XYZ9876"
CENTER = (-23.55, -46.63)  # (lat, lon)
DEG_M = math.radians(1.0) * 6378137.0  # metres in one degree of latitude on etrack's sphere
# Outside (3 km north) for 3 minutes, inside for 10, outside again.
OUT = 3000.0
VISIT = [OUT] * 3 + [0.0] * 10 + [OUT] * 3

SITE = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [CENTER[1], CENTER[0]]},
    "properties": {"name": "Cliente X", "radius_m": 200, "group": "clientes"},
}
# 10 km east of the site: no position of the tracks is inside.
SQUARE = [[-46.54, -23.56], [-46.52, -23.56], [-46.52, -23.54], [-46.54, -23.54], [-46.54, -23.56]]
EVERY_KIND = {
    "type": "FeatureCollection",
    "features": [
        SITE,
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [SQUARE]},
            "properties": {"name": "Praça", "speed_limit_kmh": 30},
        },
        {
            "type": "Feature",
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[-46.0, -23.0], [-45.9, -23.0], [-45.9, -22.9], [-46.0, -23.0]]],
                    [[[-45.0, -22.0], [-44.9, -22.0], [-44.9, -21.9], [-45.0, -22.0]]],
                ],
            },
            "properties": {"name": "Dois pátios", "group": "pátios"},
        },
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[-46.7, -23.6], [-46.6, -23.5]]},
            "properties": {"name": "Rodovia", "buffer_m": 35, "speed_limit_kmh": 80},
        },
    ],
}
KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document><Folder>
<Placemark><name>Cliente X</name>
<ExtendedData><Data name="radius_m"><value>200</value></Data></ExtendedData>
<Point><coordinates>-46.63,-23.55,0</coordinates></Point></Placemark>
<Placemark><name>Praça</name><Polygon><outerBoundaryIs><LinearRing><coordinates>
-46.54,-23.56 -46.52,-23.56 -46.52,-23.54 -46.54,-23.54 -46.54,-23.56
</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>
</Folder></Document></kml>
"""
CSV = (
    "nome;latitude;longitude;radius_m\nCliente X;-23,55;-46,63;200\nDepósito;-23,60;-46,70;150,5\n"
)
VISIT_KEYS = ["id", "placa", "fence", "arrive_ts", "depart_ts", "dwell_s"]


def at(placa: str, lat_offset_m: float, when: datetime, index: int) -> Position:
    lat = CENTER[0] + lat_offset_m / DEG_M
    return Position(
        placa, when, lat, CENTER[1], 10.0, True, 1000.0 + index, None, None, 12.5,
        f"Rua {index}", "Van", "Entregas", None, when + timedelta(seconds=5), placa, VALID, {},
    )  # fmt: skip


def track(
    offsets: Sequence[float], start: datetime, placa: str = PLATE, step_s: float = 60.0
) -> list[Position]:
    return [at(placa, m, start + timedelta(seconds=k * step_s), k) for k, m in enumerate(offsets)]


def write(tmp_path: Path, name: str, content: str | dict[str, Any]) -> Path:
    path = tmp_path / name
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path


def fences_table(conn: db.Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT name, kind, geometry, radius_m, fence_group, speed_limit_kmh, updated_at"
        " FROM geofences ORDER BY name"
    ).fetchall()


def visits_table(conn: db.Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, placa, fence, arrive_ts, depart_ts, dwell_s, computed_at"
        " FROM geofence_visits ORDER BY arrive_ts, placa"
    ).fetchall()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)


# ------------------------------------------------------------------ import
@pytest.mark.parametrize(
    ("name", "content", "fences"),
    [
        pytest.param("sites.geojson", EVERY_KIND, 4, id="geojson"),
        pytest.param("sites.kml", KML, 2, id="kml"),
        pytest.param("sites.csv", CSV, 2, id="csv"),
    ],
)
def test_import_each_format_then_again_changes_nothing(
    conn: db.Conn,
    cli_env: None,
    run_etrack: RunEtrack,
    tmp_path: Path,
    name: str,
    content: str | dict[str, Any],
    fences: int,
) -> None:
    ingest.store_positions(conn, track(VISIT, NOON))
    path = write(tmp_path, name, content)
    code, out, err = run_etrack("geofences", "import", str(path), "--group", "importados")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"geofences: {fences} new, 0 updated, 0 unchanged ({name})"
    # Every format holds "Cliente X" around the stored track: one visit.
    assert lines[1].startswith(f"visits: 1 plates x {fences} fences, 16 positions; 1 visits: ")
    stored = fences_table(conn)
    assert len(stored) == fences
    site = next(row for row in stored if row[0] == "Cliente X")
    assert site[1:4] == ("circle", {"type": "Point", "coordinates": [-46.63, -23.55]}, 200.0)
    # --group fills in the features without a group of their own.
    assert site[4] == ("clientes" if name.endswith(".geojson") else "importados")
    visits = visits_table(conn)
    assert [(v[1], v[2], v[3]) for v in visits] == [
        (PLATE, "Cliente X", NOON + timedelta(minutes=3))
    ]

    code, out, err = run_etrack("geofences", "import", str(path), "--group", "importados")
    assert code == 0, err
    assert out.splitlines() == [
        f"geofences: 0 new, 0 updated, {fences} unchanged ({name})",
        "visits: no fence changed, nothing to compute",
    ]
    assert fences_table(conn) == stored  # updated_at included: nothing rewritten
    assert visits_table(conn) == visits  # computed_at included


def test_import_computes_the_visits_of_the_whole_history_and_updates_in_place(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    ingest.store_positions(conn, track(VISIT, NOON) + track(VISIT, LATER_NOON))
    path = write(tmp_path, "site.geojson", {"type": "FeatureCollection", "features": [SITE]})
    code, out, err = run_etrack("geofences", "import", str(path))
    assert code == 0, err
    assert [v[3] for v in visits_table(conn)] == [
        NOON + timedelta(minutes=3),
        LATER_NOON + timedelta(minutes=3),
    ]
    # A smaller radius: the fence is updated, its visits recomputed. The
    # inside positions are 0 m from the centre: the visits stay.
    smaller = {**SITE, "properties": {**SITE["properties"], "radius_m": 50}}
    write(tmp_path, "site.geojson", {"type": "FeatureCollection", "features": [smaller]})
    code, out, err = run_etrack("geofences", "import", str(path))
    assert code == 0, err
    assert out.splitlines()[0] == "geofences: 0 new, 1 updated, 0 unchanged (site.geojson)"
    assert "2 visits: 0 written, 2 unchanged, 0 deleted" in out.splitlines()[1]
    # --no-visits stores the fence only.
    moved = {**SITE, "geometry": {"type": "Point", "coordinates": [-46.0, -23.0]}}
    write(tmp_path, "site.geojson", {"type": "FeatureCollection", "features": [moved]})
    code, out, err = run_etrack("geofences", "import", str(path), "--no-visits")
    assert code == 0, err
    assert out.splitlines() == ["geofences: 0 new, 1 updated, 0 unchanged (site.geojson)"]
    assert len(visits_table(conn)) == 2
    code, out, err = run_etrack("geofences", "visits-compute")
    assert code == 0, err
    assert "0 visits: 0 written, 0 unchanged, 2 deleted" in out
    assert visits_table(conn) == []


def test_import_without_positions_says_there_is_nothing_to_compute(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    path = write(tmp_path, "site.geojson", SITE)
    code, out, err = run_etrack("geofences", "import", str(path))
    assert code == 0, err
    assert out.splitlines() == [
        "geofences: 1 new, 0 updated, 0 unchanged (site.geojson)",
        "visits: no valid positions stored, nothing to compute",
    ]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        pytest.param(
            "bad.geojson",
            {
                "type": "FeatureCollection",
                "features": [
                    SITE,
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [-46.6, -23.5]},
                        "properties": {"name": "Zero", "radius_m": 0},
                    },
                ],
            },
            "etrack: error: bad.geojson: feature 2 ('Zero'): radius_m must be a number of "
            "metres above 0, not 0.0",
            id="geojson-radius-0",
        ),
        pytest.param(
            "bad.csv",
            "name;latitude;longitude;radius_m;cor\nA;-23.5;-46.6;10;azul\n",
            "etrack: error: bad.csv: line 1: unknown column 'cor'",
            id="csv-unknown-column",
        ),
        pytest.param(
            "bad.kml", "<kml><Placemark></kml>", "etrack: error: bad.kml: not KML (XML)", id="kml"
        ),
        pytest.param(
            "nul.geojson",
            {**SITE, "properties": {"name": "A\x00B", "radius_m": 10}},
            "etrack: error: nul.geojson: 'A\\x00B': a name or group may not contain the NUL",
            id="nul-in-name",
        ),
        pytest.param(
            "sites.shp", "x", "etrack: error: sites.shp: unknown extension '.shp'", id="extension"
        ),
    ],
)
def test_a_bad_file_is_exit_2_in_one_line_and_stores_nothing(
    conn: db.Conn,
    cli_env: None,
    run_etrack: RunEtrack,
    tmp_path: Path,
    name: str,
    content: str | dict[str, Any],
    expected: str,
) -> None:
    code, out, err = run_etrack("geofences", "import", str(write(tmp_path, name, content)))
    assert code == 2
    assert out == ""
    assert err.startswith(expected), err
    assert err.count("\n") == 1
    assert fences_table(conn) == []


def test_a_missing_file_is_exit_2(cli_env: None, run_etrack: RunEtrack, tmp_path: Path) -> None:
    code, _, err = run_etrack("geofences", "import", str(tmp_path / "none.geojson"))
    assert code == 2
    assert "cannot read" in err
    assert err.count("\n") == 1


# ------------------------------------------------------------ list, export
def test_list_as_json_and_table(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    code, out, _ = run_etrack("geofences", "list")
    assert (code, out) == (0, "no geofences\n")
    run_etrack("geofences", "import", str(write(tmp_path, "all.geojson", EVERY_KIND)))
    code, out, err = run_etrack("geofences", "list", "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert [f["name"] for f in listed] == ["Cliente X", "Dois pátios", "Praça", "Rodovia"]
    for record in listed:
        assert list(record) == ["name", "kind", "group", "radius_m", "geometry", "speed_limit_kmh"]
    site, yards, square, road = listed
    assert (site["kind"], site["group"], site["radius_m"]) == ("circle", "clientes", 200.0)
    assert site["geometry"] == {"type": "Point", "coordinates": [-46.63, -23.55]}
    assert (yards["kind"], yards["geometry"]["type"], yards["radius_m"]) == (
        "polygon",
        "MultiPolygon",
        None,
    )
    assert (square["speed_limit_kmh"], square["group"]) == (30.0, None)
    # A corridor's buffer is its radius_m too.
    assert (road["kind"], road["radius_m"], road["speed_limit_kmh"]) == ("corridor", 35.0, 80.0)
    code, out, _ = run_etrack("geofences", "list")
    assert code == 0
    assert "Dois pátios" in out
    assert "4 geofences" in out
    code, _, err = run_etrack("geofences", "list", "--format", "csv")
    assert code == 2
    assert err.count("\n") == 1


def test_export_reads_back_to_the_same_fences(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    run_etrack("geofences", "import", str(write(tmp_path, "all.geojson", EVERY_KIND)))
    _, before, _ = run_etrack("geofences", "list", "--format", "json")
    exported = tmp_path / "export.geojson"
    code, out, err = run_etrack("geofences", "export", "--output", str(exported))
    assert code == 0, err
    assert out == f"geofences: 4 exported to {exported}\n"
    code, stdout_copy, _ = run_etrack("geofences", "export")
    assert stdout_copy == exported.read_text(encoding="utf-8")
    collection = json.loads(stdout_copy)
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 4
    # Read back over themselves: nothing changes.
    code, out, _ = run_etrack("geofences", "import", str(exported))
    assert out.splitlines()[0] == "geofences: 0 new, 0 updated, 4 unchanged (export.geojson)"
    # Read back into an empty table: the same fences.
    code, _, err = run_etrack("geofences", "delete", "Cliente X", "Dois pátios", "Praça", "Rodovia")
    assert code == 0, err
    assert fences_table(conn) == []
    code, out, _ = run_etrack("geofences", "import", str(exported))
    assert out.splitlines()[0] == "geofences: 4 new, 0 updated, 0 unchanged (export.geojson)"
    _, after, _ = run_etrack("geofences", "list", "--format", "json")
    assert json.loads(after) == json.loads(before)


def test_delete_is_all_or_nothing_and_takes_the_visits(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    ingest.store_positions(conn, track(VISIT, NOON))
    run_etrack("geofences", "import", str(write(tmp_path, "all.geojson", EVERY_KIND)))
    assert len(visits_table(conn)) == 1
    code, out, err = run_etrack("geofences", "delete", "Cliente X", "Nada", "Praça", "Outra")
    assert code == 2
    assert out == ""
    assert err == (
        "etrack: error: unknown geofences 'Nada', 'Outra': nothing deleted "
        "(etrack geofences list shows the names)\n"
    )
    assert len(fences_table(conn)) == 4
    assert len(visits_table(conn)) == 1
    code, out, err = run_etrack("geofences", "delete", "Cliente X", "Praça")
    assert code == 0, err
    # Praça had a speed limit: the events go back to the vehicles' own limits.
    assert out == (
        "geofences: 2 deleted (Cliente X, Praça), with their visits\n"
        "events: recomputed 2025-03-04..2025-03-04 without the speed limit of Praça\n"
    )
    assert [row[0] for row in fences_table(conn)] == ["Dois pátios", "Rodovia"]
    assert visits_table(conn) == []
    assert conn.execute("SELECT count(*) FROM events WHERE kind LIKE 'geofence_%'").fetchone() == (
        0,
    )


# ------------------------------------------------------------------ visits
def test_visits_listed_as_json_csv_and_table(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    # PLATE visits and leaves; OTHER arrives and is still inside where its data ends.
    ingest.store_positions(
        conn, track(VISIT, NOON) + track([OUT] * 2 + [0.0] * 5, NOON, placa=OTHER)
    )
    run_etrack("geofences", "import", str(write(tmp_path, "site.geojson", SITE)))
    code, out, err = run_etrack("visits", "--date", DAY.isoformat(), "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert [list(v) for v in listed] == [VISIT_KEYS, VISIT_KEYS]
    open_visit, closed = listed  # arrival order: OTHER arrives at 12:02, PLATE at 12:03
    assert closed == {
        "id": str(visit_id(PLATE, "Cliente X", NOON + timedelta(minutes=3))),
        "placa": PLATE,
        "fence": "Cliente X",
        "arrive_ts": "2025-03-04T12:03:00-03:00",
        "depart_ts": "2025-03-04T12:13:00-03:00",
        "dwell_s": 600.0,
    }
    assert open_visit["placa"] == OTHER
    assert open_visit["arrive_ts"] == "2025-03-04T12:02:00-03:00"
    assert open_visit["depart_ts"] is None
    assert open_visit["dwell_s"] == 240.0
    # The open visit overlaps the days after; the closed one does not.
    code, out, _ = run_etrack(
        "visits", "--date-start", "2025-03-05", "--date-end", "2025-03-06", "--format", "json"
    )
    assert [v["placa"] for v in json.loads(out)] == [OTHER]
    code, out, _ = run_etrack("visits", "--date", "2025-03-03", "--format", "json")
    assert json.loads(out) == []
    code, out, _ = run_etrack(
        "visits", "--date", DAY.isoformat(), "--plates", PLATE, "--fence", "Cliente X",
        "--format", "json",
    )  # fmt: skip
    assert [v["placa"] for v in json.loads(out)] == [PLATE]

    code, out, err = run_etrack("visits", "--date", DAY.isoformat(), "--format", "csv")
    assert code == 0, err
    assert out.startswith("\ufeffid,placa,fence,arrive_ts,depart_ts,dwell_s\r\n")
    rows = list(csv.DictReader(io.StringIO(out.lstrip("\ufeff"))))
    assert [(r["placa"], r["depart_ts"], r["dwell_s"]) for r in rows] == [
        (OTHER, "", "240.0"),
        (PLATE, "2025-03-04T12:13:00-03:00", "600.0"),
    ]
    code, out, _ = run_etrack("visits", "--date", DAY.isoformat())
    assert code == 0
    assert "Cliente X" in out
    assert "open" in out
    assert "0:10" in out
    assert out.endswith("2 visits\n")


@pytest.mark.parametrize(
    "args",
    [
        ("visits", "--format", "xml"),
        ("visits", "--fence", "Nenhuma"),
        ("visits", "--date", "2025-02-30"),
        ("visits", "--date", "2025-03-04", "--date-start", "2025-03-01"),
        ("visits", "--plates", "NOT-A-PLATE"),
        ("geofences", "visits-compute", "--plates", "NOT-A-PLATE"),
        ("geofences", "delete", "Nenhuma"),
    ],
)
def test_cli_usage_errors_are_one_line_exit_2(
    cli_env: None, run_etrack: RunEtrack, args: tuple[str, ...]
) -> None:
    code, _, err = run_etrack(*args)
    assert code == 2
    assert err.startswith("etrack: error: ")
    assert err.count("\n") == 1


def test_cli_database_unreachable_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, run_etrack: RunEtrack
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=2")
    for args in (("geofences", "list"), ("visits", "--date", DAY.isoformat())):
        code, _, err = run_etrack(*args)
        assert code == 3
        assert err.startswith("etrack: error: ")


def test_visits_compute_on_some_days(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    ingest.store_positions(conn, track(VISIT, NOON) + track(VISIT, LATER_NOON))
    run_etrack("geofences", "import", str(write(tmp_path, "site.geojson", SITE)), "--no-visits")
    assert visits_table(conn) == []
    code, out, err = run_etrack("geofences", "visits-compute", "--date", LATER_DAY.isoformat())
    assert code == 0, err
    assert out.startswith("visits: 1 plates x 1 fences, ")
    assert [v[3] for v in visits_table(conn)] == [LATER_NOON + timedelta(minutes=3)]


# --------------------------------------------------------------------- API
@pytest.fixture
def client(target: db.Target, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as test_client:
        yield test_client


def finished_visit_runs(conn: db.Conn) -> list[tuple[str, dict[str, Any], str]]:
    rows = conn.execute(
        "SELECT status, args, summary FROM job_runs WHERE kind = 'compute_visits'"
        " AND finished_at IS NOT NULL ORDER BY id"
    ).fetchall()
    return [(str(s), dict(a), str(m)) for s, a, m in rows]


async def work_off(settings: Settings, target: db.Target, done: Any, timeout_s: float = 60) -> None:
    """A real worker on the etrack queue until done() holds (polled, with a deadline)."""
    async with open_app(JobEnv(settings, target, FAST)) as app:
        task = asyncio.create_task(
            app.run_worker_async(
                queues=["etrack"],
                name="visits-test",
                concurrency=1,
                fetch_job_polling_interval=0.05,
                listen_notify=False,
                install_signal_handlers=False,
                worker_middleware=[record_job],
            )
        )
        try:
            deadline = time.monotonic() + timeout_s
            while not await asyncio.to_thread(done):
                assert time.monotonic() < deadline, "timed out waiting for the worker"
                assert not task.done(), task.exception()
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def test_api_get_post_delete_and_visits_by_a_worker(
    conn: db.Conn, client: TestClient, settings: Settings, target: db.Target
) -> None:
    empty = client.get("/api/geofences")
    assert empty.status_code == 200
    assert empty.headers["content-type"].startswith("application/geo+json")
    assert empty.json() == {"type": "FeatureCollection", "features": []}
    ingest.store_positions(conn, track(VISIT, NOON) + track(VISIT, LATER_NOON))

    answer = client.post("/api/geofences", json=SITE)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (1, 0, 0)
    assert body["changed"] == ["Cliente X"]
    # The history spans March and April: one job per month, nothing computed yet.
    assert list(month_chunks(DAY, LATER_DAY)) == [
        (DAY, date(2025, 3, 31)),
        (date(2025, 4, 1), LATER_DAY),
    ]
    assert len(body["job_ids"]) == 2
    assert visits_table(conn) == []
    listed = client.get("/api/geofences").json()
    assert listed["features"] == [
        Fence(
            "Cliente X",
            "circle",
            {"type": "Point", "coordinates": [CENTER[1], CENTER[0]]},
            200.0,
            "clientes",
        ).feature()
    ]
    # The same body again: unchanged, and the months already queued get no second job.
    again = client.post(
        "/api/geofences", content=json.dumps(listed), headers={"content-type": GEOJSON}
    ).json()
    assert (again["inserted"], again["updated"], again["unchanged"], again["job_ids"]) == (
        0,
        0,
        1,
        [],
    )

    asyncio.run(work_off(settings, target, lambda: len(finished_visit_runs(conn)) == 2))
    runs = finished_visit_runs(conn)
    assert [(status, args) for status, args, _ in runs] == [
        ("succeeded", {"first_day": "2025-03-04", "last_day": "2025-03-31"}),
        ("succeeded", {"first_day": "2025-04-01", "last_day": "2025-04-15"}),
    ]
    assert runs[0][2].startswith("2025-03-04..2025-03-31: visits: 1 plates x 1 fences, ")
    # The Jobs page names the kind and reads the summary in Portuguese.
    assert i18n.job_kind("compute_visits", "pt-BR") == "Visitas às cercas (um mês)"
    assert i18n.localize(runs[0][2], "pt-BR").startswith(
        "04/03/2025 a 31/03/2025: visitas: 1 veículo x 1 cerca, 16 posições; 1 visita: 1 gravada, "
    )
    page = client.get("/api/visits?date_start=2025-03-01&date_end=2025-04-30").json()
    assert (page["count"], page["truncated"]) == (2, False)
    assert page["rows"][0] == {
        "id": str(visit_id(PLATE, "Cliente X", NOON + timedelta(minutes=3))),
        "placa": PLATE,
        "fence": "Cliente X",
        "arrive_ts": "2025-03-04T12:03:00-03:00",
        "depart_ts": "2025-03-04T12:13:00-03:00",
        "dwell_s": 600.0,
    }
    assert page["rows"][1]["arrive_ts"] == "2025-04-15T12:03:00-03:00"
    only = client.get(f"/api/visits?date_start={DAY}&plate={PLATE}&fence=Cliente X").json()
    assert only["count"] == 1
    assert client.get(f"/api/visits?date_start={DAY}&fence=Outra").json()["count"] == 0

    gone = client.delete("/api/geofences/Cliente X")
    assert gone.status_code == 204
    assert client.get("/api/geofences").json()["features"] == []
    assert client.get(f"/api/visits?date_start={DAY}").json()["rows"] == []
    assert visits_table(conn) == []
    missing = client.delete("/api/geofences/Cliente X")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no geofence 'Cliente X'"}


GEOJSON = "application/geo+json"


@pytest.mark.parametrize(
    ("body", "headers", "status", "detail"),
    [
        pytest.param(
            '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-46.6, -23.5]},'
            ' "properties": {"name": "Sem raio"}}',
            {"content-type": "application/json"},
            422,
            "request: feature 1 ('Sem raio'): ",
            id="point-without-radius",
        ),
        pytest.param(
            "not json", {"content-type": "application/json"}, 422, "request: ", id="not-json"
        ),
        pytest.param(
            '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-46.6, -23.5]},'
            ' "properties": {"name": "A\\u0000B", "radius_m": 10}}',
            {"content-type": "application/json"},
            422,
            "request: feature 1: a name or group may not contain the NUL character",
            id="nul-in-name",
        ),
        pytest.param(
            json.dumps(SITE), {"content-type": "text/plain"}, 415, "send the body as ", id="415"
        ),
        pytest.param(
            json.dumps(SITE),
            {"content-type": "application/json", "origin": "http://evil.example"},
            403,
            "cross-origin request refused",
            id="other-origin",
        ),
        pytest.param(
            json.dumps(SITE),
            {"content-type": "application/json", "sec-fetch-site": "cross-site"},
            403,
            "cross-site request refused",
            id="cross-site",
        ),
    ],
)
def test_api_refuses_bad_or_cross_site_writes_and_stores_nothing(
    conn: db.Conn, client: TestClient, body: str, headers: dict[str, str], status: int, detail: str
) -> None:
    answer = client.post("/api/geofences", content=body, headers=headers)
    assert answer.status_code == status, answer.text
    message = answer.json()["detail"]
    assert message.startswith(detail), message
    assert "\n" not in message
    assert fences_table(conn) == []


def test_api_same_origin_writes_pass_and_deletes_are_checked_too(
    conn: db.Conn, client: TestClient
) -> None:
    own = {"origin": "http://127.0.0.1:5001", "sec-fetch-site": "same-origin"}
    assert client.post("/api/geofences", json=SITE, headers=own).status_code == 200
    refused = client.delete("/api/geofences/Cliente X", headers={"origin": "http://evil.example"})
    assert refused.status_code == 403
    assert len(fences_table(conn)) == 1
    assert client.delete("/api/geofences/Cliente X", headers=own).status_code == 204
    assert client.delete("/api/geofences/A%00B").status_code == 404


def test_api_visits_respect_the_account_scope_and_refuse_bad_input(
    conn: db.Conn, client: TestClient, target: db.Target
) -> None:
    ingest.store_positions(conn, track(VISIT, NOON))
    site = Fence(
        "Cliente X", "circle", {"type": "Point", "coordinates": [CENTER[1], CENTER[0]]}, 200
    )
    fence_store.upsert_fences(conn, [site])
    compute_visits(target, None, DAY, DAY, VisitParams(tz=TZ))
    seen = client.get(f"/api/visits?date_start={DAY}&account=default").json()
    assert [r["placa"] for r in seen["rows"]] == [PLATE]
    hidden = client.get(f"/api/visits?date_start={DAY}&account=elsewhere").json()
    assert (hidden["count"], hidden["rows"]) == (0, [])
    hidden = client.get(f"/api/visits?date_start={DAY}&plate={PLATE}&account=elsewhere").json()
    assert hidden["rows"] == []
    client.get("/api/visits?account=")  # clears the account cookie
    assert client.get("/api/visits?date_start=2025-03-05&date_end=2025-03-04").status_code == 400
    assert client.get("/api/visits?date_start=2024-01-01&date_end=2025-03-04").status_code == 400
    assert client.get("/api/visits?date_start=2025-02-30").status_code == 422
    assert client.get("/api/visits?plate=NOPE").status_code == 422
    schema = client.get("/api/openapi.json").json()
    assert {"/api/geofences", "/api/geofences/{name}", "/api/visits"} <= set(schema["paths"])
    assert set(schema["paths"]["/api/geofences"]) == {"get", "post"}


def test_api_writes_need_the_login_when_one_is_configured(
    conn: db.Conn, target: db.Target, settings: Settings
) -> None:
    guarded = settings.model_copy(
        update={
            "etrack_web_user": "admin",
            "etrack_web_password": SecretStr(hash_password("s3cret", iterations=1000)),
        }
    )
    app = create_app(guarded, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as anonymous:
        assert anonymous.post("/api/geofences", json=SITE).status_code == 401
        assert anonymous.delete("/api/geofences/Cliente X").status_code == 401
        assert fences_table(conn) == []
        answer = anonymous.post("/api/geofences", json=SITE, auth=("admin", "s3cret"))
        assert answer.status_code == 200, answer.text
        assert [row[0] for row in fences_table(conn)] == ["Cliente X"]
        gone = anonymous.delete("/api/geofences/Cliente X", auth=("admin", "s3cret"))
        assert gone.status_code == 204


def test_api_of_a_server_limited_to_some_accounts_does_not_change_fences(
    conn: db.Conn, target: db.Target, settings: Settings, client: TestClient
) -> None:
    assert client.post("/api/geofences", json=SITE).status_code == 200
    limited = settings.model_copy(update={"etrack_web_accounts": "frota-a"})
    app = create_app(limited, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as scoped:
        assert scoped.post("/api/geofences", json=SITE).status_code == 403
        refused = scoped.delete("/api/geofences/Cliente X")
        assert refused.status_code == 403
        assert "shared by every account" in refused.json()["detail"]
        assert scoped.get("/api/geofences").status_code == 200
    assert len(fences_table(conn)) == 1


def test_api_a_fence_with_a_speed_limit_has_its_months_recompute_the_events(
    conn: db.Conn, client: TestClient, settings: Settings, target: db.Target
) -> None:
    ingest.store_positions(conn, track(VISIT, NOON))
    limited = {**SITE, "properties": {**SITE["properties"], "speed_limit_kmh": 5}}
    answer = client.post("/api/geofences", json=limited)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["job_ids"]) == 1
    asyncio.run(work_off(settings, target, lambda: len(finished_visit_runs(conn)) == 1))
    ((status, args, _),) = finished_visit_runs(conn)
    assert (status, args) == (
        "succeeded",
        {"first_day": "2025-03-04", "last_day": "2025-03-04", "events": True},
    )
    # The track's 10 km/h inside the 5 km/h site: an overspeed named after it.
    rules = conn.execute("SELECT DISTINCT rule FROM events WHERE kind = 'overspeed'").fetchall()
    assert rules == [("fence:Cliente X",)]
