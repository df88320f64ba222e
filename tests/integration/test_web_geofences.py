"""The Geofences page (/geofences), the Visits report (/visits, with its CSV
and XLSX) and the fences on the vehicle day: the real app in-process over
HTTP against a real PostgreSQL, with positions whose visit is known (ten
minutes parked inside a 200 m circle, see integration.test_geofences)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import warnings
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from etrack.config import Settings
from etrack.geofences.compute import compute_visits
from etrack.geofences.shapes import FenceShape
from etrack.model import Fence, Position
from etrack.store import db
from etrack.store import geofences as store
from etrack.store import positions as ingest
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams
from etrack.web import create_app
from etrack.web.pages.geofences import map_fence
from integration.test_geofences import CENTER, DAY, DEG_M, NOON, PARAMS, PLATE, SITE, VISIT, at

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

CIRCLE = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [CENTER[1], CENTER[0]]},
    "properties": {"radius_m": 150},
}
SQUARE = {
    "type": "Feature",
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[-46.64, -23.56], [-46.62, -23.56], [-46.62, -23.54], [-46.64, -23.54]]],
    },
    "properties": {},
}


@pytest.fixture
def client(target: db.Target, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as test_client:
        yield test_client


def token(client: TestClient) -> str:
    page = client.get("/geofences")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def fence_form(csrf: str, feature: Any, **values: str) -> dict[str, str]:
    text = feature if isinstance(feature, str) else json.dumps(feature)
    return {"csrf_token": csrf, "feature": text, "name": "Cliente Y", **values}


def flash_line(client: TestClient) -> str:
    found = re.search(r'<p id="flash"[^>]*>([^<]*)</p>', client.get("/geofences").text)
    return found.group(1) if found else ""


def names(conn: db.Conn) -> list[str]:
    return [row.fence.name for row in store.list_fences(conn)]


def parked(index: int, offset_m: float, when: Any) -> Position:
    """`at`'s position, stopped (speed 0) when inside the fence."""
    position = at(offset_m, when, index)
    return position._replace(velocidade=0.0 if offset_m == 0.0 else 60.0)


@pytest.fixture
def visited(conn: db.Conn, target: db.Target, settings: Settings) -> None:
    """PLATE: outside 3 min, parked inside SITE 10 min (12:03-12:13), out again;
    the visit computed and the day's route (with its stop) stored."""
    ingest.store_positions(
        conn, [parked(k, m, NOON + timedelta(minutes=k)) for k, m in enumerate(VISIT)]
    )
    store.upsert_fences(conn, [SITE])
    compute_visits(target, None, DAY, DAY, PARAMS)
    compute_routes(conn, RouteParams.from_settings(settings), plates=[PLATE], days=[DAY])


def test_a_circle_drawn_is_saved_listed_and_updated_by_name(
    conn: db.Conn, client: TestClient
) -> None:
    empty = client.get("/geofences")
    assert "<h1>Cercas</h1>" in empty.text
    assert 'href="/geofences" class="active">Cercas</a>' in empty.text
    assert 'id="no-fences"' in empty.text
    csrf = token(client)
    saved = client.post(
        "/geofences",
        data=fence_form(csrf, CIRCLE, group="Clientes", speed_limit="40,5"),
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert flash_line(client) == "cerca Cliente Y adicionada"
    (row,) = store.list_fences(conn)
    fence = row.fence
    assert (fence.kind, fence.radius_m, fence.group, fence.speed_limit_kmh) == (
        "circle",
        150.0,
        "Clientes",
        40.5,
    )
    page = client.get("/geofences").text
    assert 'data-fence="Cliente Y" data-kind="circle" data-visits="0"' in page
    assert 'data-fences="1"' in page
    drawn = json.loads(
        re.search(r'id="fences-data">(.*?)</script>', page, re.S).group(1)  # type: ignore[union-attr]
    )
    assert drawn[0]["name"] == "Cliente Y"
    assert drawn[0]["radius_m"] == 150.0
    # Same name: an update (a polygon now), never a second fence.
    again = client.post("/geofences", data=fence_form(csrf, SQUARE), follow_redirects=False)
    assert again.status_code == 303
    assert flash_line(client) == "cerca Cliente Y atualizada"
    (row,) = store.list_fences(conn)
    assert row.fence.kind == "polygon"
    assert row.fence.group is None
    client.post("/geofences", data=fence_form(csrf, SQUARE), follow_redirects=False)
    assert flash_line(client) == "cerca Cliente Y sem mudanças"
    english = client.get("/geofences?lang=en").text
    assert "<h1>Geofences</h1>" in english


def test_saving_a_fence_queues_its_visits_over_the_history_as_jobs(
    conn: db.Conn, client: TestClient
) -> None:
    ingest.store_positions(
        conn, [parked(k, m, NOON + timedelta(minutes=k)) for k, m in enumerate(VISIT)]
    )
    csrf = token(client)
    saved = client.post("/geofences", data=fence_form(csrf, CIRCLE), follow_redirects=False)
    assert saved.status_code == 303
    # One month of stored positions: one job; computed by a worker, not here.
    assert flash_line(client) == "cerca Cliente Y adicionada; visitas na fila: 1 tarefa(s)"
    queued = conn.execute(
        "SELECT args FROM procrastinate_jobs WHERE task_name = 'etrack.compute_visits'"
    ).fetchall()
    assert [row[0] for row in queued] == [{"first_day": "2025-03-04", "last_day": "2025-03-04"}]
    assert conn.execute("SELECT count(*) FROM geofence_visits").fetchone() == (0,)
    # Unchanged: nothing to queue.
    client.post("/geofences", data=fence_form(csrf, CIRCLE), follow_redirects=False)
    assert flash_line(client) == "cerca Cliente Y sem mudanças"


def test_bad_input_is_refused_with_one_line_and_nothing_stored(
    conn: db.Conn, client: TestClient
) -> None:
    csrf = token(client)
    without = {k: v for k, v in fence_form(csrf, CIRCLE).items() if k != "csrf_token"}
    assert client.post("/geofences", data=without).status_code == 403
    assert client.post("/geofences", data=fence_form("forged", CIRCLE)).status_code == 403
    bowtie = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
        "properties": {},
    }
    far = {**CIRCLE, "geometry": {"type": "Point", "coordinates": [-46.6, -123.5]}}
    refusals: list[tuple[dict[str, str], str]] = [
        (fence_form(csrf, CIRCLE, name=""), "nome: dê um nome à cerca"),
        (fence_form(csrf, ""), "forma: desenhe antes um círculo ou um polígono no mapa"),
        (fence_form(csrf, "{not json"), "forma: a forma enviada não é um GeoJSON válido"),
        (fence_form(csrf, "[1, 2]"), "forma: a forma enviada não é um GeoJSON válido"),
        (
            fence_form(csrf, {**CIRCLE, "properties": {"radius_m": -5}}),
            "radius_m must be a number of metres above 0",
        ),
        (fence_form(csrf, {**CIRCLE, "properties": {}}), "a Point needs a radius_m"),
        (fence_form(csrf, bowtie), "invalid polygon: Self-intersection"),
        (fence_form(csrf, far), "is off the globe"),
        (fence_form(csrf, {"type": "Feature", "geometry": None}), "no geometry"),
        (
            fence_form(csrf, CIRCLE, speed_limit="fast"),
            "limite de velocidade: informe um número de km/h acima de 0",
        ),
        (fence_form(csrf, CIRCLE, speed_limit="-3"), "limite de velocidade"),
    ]
    for values, expected in refusals:
        answer = client.post("/geofences", data=values)
        assert answer.status_code == 400, values
        found = re.search(r'<p id="form-error"[^>]*>([^<]*)</p>', answer.text)
        assert found, values
        line = found.group(1).replace("&#39;", "'")
        assert expected in line, (values, line)
        assert "\n" not in line
        # What was typed is kept for another try.
        assert f'value="{values["name"]}"' in answer.text
    assert names(conn) == []


def test_delete_needs_the_confirm_box(conn: db.Conn, client: TestClient) -> None:
    csrf = token(client)
    client.post("/geofences", data=fence_form(csrf, CIRCLE), follow_redirects=False)
    assert names(conn) == ["Cliente Y"]
    form = {"csrf_token": csrf, "name": "Cliente Y"}
    assert client.post("/geofences/delete", data={"name": "Cliente Y"}).status_code == 403
    unconfirmed = client.post("/geofences/delete", data=form)
    assert unconfirmed.status_code == 400
    assert "marque a caixa ao lado de Excluir" in unconfirmed.text
    assert names(conn) == ["Cliente Y"]
    deleted = client.post(
        "/geofences/delete", data={**form, "confirm": "1"}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert flash_line(client) == "cerca Cliente Y excluída"
    assert names(conn) == []
    gone = client.post("/geofences/delete", data={**form, "confirm": "1"})
    assert gone.status_code == 404
    assert "a cerca &#39;Cliente Y&#39; não existe" in gone.text


def test_a_server_showing_some_accounts_only_does_not_edit_fences(
    target: db.Target, settings: Settings, conn: db.Conn
) -> None:
    store.upsert_fences(conn, [SITE])
    restricted = settings.model_copy(update={"etrack_web_accounts": "frota-a"})
    app = create_app(restricted, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as limited:
        page = limited.get("/geofences")
        assert page.status_code == 200
        assert 'data-fence="Cliente X"' in page.text
        assert 'id="fence-form"' not in page.text
        # The Rules page's form gives this session's token.
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', limited.get("/rules").text)
        assert csrf
        answer = limited.post("/geofences", data=fence_form(csrf.group(1), CIRCLE))
        assert answer.status_code == 403
    assert names(conn) == ["Cliente X"]


def test_the_visits_page_counts_dwell_and_stops_inside(
    client: TestClient, visited: None, conn: db.Conn
) -> None:
    page = client.get(f"/visits?start={DAY}&end={DAY}")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Visitas a cercas</h1>" in text
    assert 'id="visits-total" data-total="1"' in text
    assert (
        f'<tr data-fence="Cliente X" data-placa="{PLATE}" data-visits="1" data-dwell="600">' in text
    )
    day_row = re.search(r"<tr data-day=\"2025-03-04\"[^>]*>(.*?)</tr>", text, re.S)
    assert day_row
    assert 'data-visits="1"' in day_row.group(0)
    cells = day_row.group(1)
    assert "04/03/2025 12:03" in cells
    assert "04/03/2025 12:13" in cells
    stops = store_stops(conn)
    assert stops, "the parked ten minutes are a stored stop"
    assert f'data-stops="{len(stops)}"' in day_row.group(0)
    assert "0:10" in cells  # the dwell, h:mm
    # The visits page of the fence from its row in the Geofences page.
    listing = client.get("/geofences").text
    assert 'data-fence="Cliente X" data-kind="circle" data-visits="1"' in listing
    # Filters: another fence or plate, nothing.
    assert 'id="visits-none"' in client.get(f"/visits?start={DAY}&end={DAY}&plate=XYZ9Z99").text
    store.upsert_fences(
        conn, [Fence("Longe", "circle", {"type": "Point", "coordinates": [-40.0, -20.0]}, 100.0)]
    )
    assert 'id="visits-none"' in client.get(f"/visits?start={DAY}&end={DAY}&fence=Longe").text
    assert client.get(f"/visits?start={DAY}&end=2025-03-01").status_code == 400
    assert client.get("/visits?start=nope").status_code == 422


def store_stops(conn: db.Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT seq, latitude, longitude FROM route_stops WHERE placa = %s", [PLATE]
    ).fetchall()


def test_the_visits_downloads(client: TestClient, visited: None, conn: db.Conn) -> None:
    answer = client.get(f"/visits/export/csv?start={DAY}&end={DAY}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'filename="visitas_2025-03-04_2025-03-04.csv"' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 1
    row = rows[0]
    assert row["day"] == "2025-03-04"
    assert row["fence"] == "Cliente X"
    assert row["placa"] == PLATE
    assert row["visits"] == "1"
    assert float(row["dwell_s"]) == 600.0
    assert row["first_arrival"] == "2025-03-04T12:03:00-03:00"
    assert row["last_departure"] == "2025-03-04T12:13:00-03:00"
    assert int(row["stops_inside"]) == len(store_stops(conn))
    book = client.get(f"/visits/export/xlsx?start={DAY}&end={DAY}")
    assert book.status_code == 200
    assert book.headers["content-type"].startswith("application/vnd.openxmlformats")
    with zipfile.ZipFile(io.BytesIO(book.content)) as workbook:
        listed = workbook.namelist()
        assert "xl/worksheets/sheet1.xml" in listed
        assert "xl/worksheets/sheet2.xml" in listed
        strings = workbook.read("xl/sharedStrings.xml").decode()
    assert "Cliente X" in strings
    assert "Primeira chegada" in strings
    assert client.get(f"/visits/export/pdf?start={DAY}").status_code == 404


def test_a_formula_looking_fence_name_is_kept_text_in_the_downloads(
    client: TestClient, conn: db.Conn, target: db.Target
) -> None:
    ingest.store_positions(
        conn, [parked(k, m, NOON + timedelta(minutes=k)) for k, m in enumerate(VISIT)]
    )
    store.upsert_fences(conn, [dataclasses.replace(SITE, name="=HYPERLINK(1)")])
    compute_visits(target, None, DAY, DAY, PARAMS)
    answer = client.get(f"/visits/export/csv?start={DAY}&end={DAY}")
    (row,) = list(csv.DictReader(io.StringIO(answer.text)))
    assert row["fence"] == "'=HYPERLINK(1)"


def test_the_vehicle_day_draws_the_fences_near_its_route_and_lists_its_visits(
    client: TestClient, visited: None, conn: db.Conn
) -> None:
    store.upsert_fences(
        conn, [Fence("Longe", "circle", {"type": "Point", "coordinates": [-40.0, -20.0]}, 100.0)]
    )
    page = client.get(f"/vehicles/{PLATE}/{DAY}")
    assert page.status_code == 200
    text = page.text
    assert 'id="map" class="map" data-fences="1"' in text
    drawn = json.loads(
        re.search(r'id="day-fences">(.*?)</script>', text, re.S).group(1)  # type: ignore[union-attr]
    )
    assert [f["name"] for f in drawn] == ["Cliente X"]
    assert '<li class="visit" data-fence="Cliente X"' in text
    assert "12:03–12:13" in text
    # Existing ids stay.
    for anchor in ('id="trip-list"', 'id="stop-list"', 'id="event-list"', 'id="day-data"'):
        assert anchor in text


def test_a_corridor_is_drawn_as_its_buffered_outline() -> None:
    corridor = Fence(
        "Via",
        "corridor",
        {"type": "LineString", "coordinates": [[-46.70, -23.55], [-46.60, -23.55]]},
        50.0,
    )
    outline = map_fence(corridor)["outline"]
    assert outline["type"] == "Polygon"
    ring = np.asarray(outline["coordinates"][0])
    # Its edge is 50 m from the line (metres, not degrees): inside a corridor
    # 50.5 m wide each side, outside one of 49.5 m.
    wider = FenceShape.of(dataclasses.replace(corridor, radius_m=50.5))
    narrower = FenceShape.of(dataclasses.replace(corridor, radius_m=49.5))
    assert wider.contains(ring[:, 1], ring[:, 0]).all()
    assert not narrower.contains(ring[:, 1], ring[:, 0]).any()
    assert abs((ring[:, 1].max() + 23.55) * DEG_M - 50.0) < 0.5
