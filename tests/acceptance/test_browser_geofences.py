"""The Geofences page in a real browser, in pt-BR: Playwright drives Debian's
Chromium against the app served by uvicorn, over a migrated database of the
test's own holding one vehicle day that parks inside a known site. A circle
is drawn with mouse clicks on the map and saved, seen listed and drawn;
then the vehicle day whose route passes through it draws it too. A polygon
is drawn corner by corner and closed with "Concluir".

Skipped, saying why, without Chromium or Playwright (as test_web_browser).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest

from acceptance import test_web_browser
from acceptance.test_web_browser import PHONE, ServerThread, pt_br_tab
from etrack.config import Settings
from etrack.geofences.compute import compute_visits
from etrack.geofences.shapes import haversine_m
from etrack.store import db
from etrack.store import geofences as store
from etrack.store import positions as ingest
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams
from etrack.web import create_app
from integration.test_geofences import CENTER, DAY, NOON, PARAMS, PLATE, SITE, VISIT
from integration.test_web_geofences import parked

pytestmark = test_web_browser.pytestmark

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect


@pytest.fixture
def server(settings: Settings, target: db.Target, conn: db.Conn) -> Iterator[ServerThread]:
    ingest.store_positions(
        conn, [parked(k, m, NOON + timedelta(minutes=k)) for k, m in enumerate(VISIT)]
    )
    compute_routes(conn, RouteParams.from_settings(settings), plates=[PLATE], days=[DAY])
    app = create_app(settings, target, scheduler=False)
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def page(tmp_path_factory: pytest.TempPathFactory, server: ServerThread) -> Iterator[Page]:
    profile = tmp_path_factory.mktemp("chromium-fences")
    errors: list[str] = []
    with pt_br_tab(profile, errors) as tab:
        # No network here: fail the tile requests at once (the pages must cope).
        tab.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
        yield tab
    own = [e for e in errors if "Failed to load resource" not in e]
    assert not own, own


def map_point(page: Page, lat: float, lon: float) -> tuple[float, float]:
    """Where (lat, lon) is on the screen, in page pixels."""
    box = page.locator("#fence-map").bounding_box()
    assert box is not None
    x, y = page.evaluate(
        "([lat, lon]) => { const p = window.etrackFences.map.latLngToContainerPoint([lat, lon]);"
        " return [p.x, p.y]; }",
        [lat, lon],
    )
    return box["x"] + x, box["y"] + y


def centre_on_site(page: Page) -> None:
    page.evaluate(
        "([lat, lon]) => window.etrackFences.map.setView([lat, lon], 16, { animate: false })",
        list(CENTER),
    )


def test_draw_a_circle_save_it_and_see_it_on_the_vehicle_day(
    page: Page, server: ServerThread, conn: db.Conn, target: db.Target
) -> None:
    page.goto(f"{server.url}/geofences")
    expect(page.locator("h1")).to_have_text("Cercas")
    expect(page.locator("#no-fences")).to_be_visible()
    expect(page.locator("#fence-map")).to_have_attribute("data-fence-layers", "0")
    centre_on_site(page)

    page.click("#draw-circle")
    expect(page.locator("#fence-map")).to_have_attribute("data-mode", "circle")
    expect(page.locator("#draw-hint")).to_contain_text("Clique no centro")
    x, y = map_point(page, *CENTER)
    page.mouse.click(x, y)
    page.mouse.move(x + 40, y, steps=4)
    expect(page.locator("#draw-radius")).to_contain_text(" m")
    page.mouse.click(x + 60, y)
    expect(page.locator("#fence-map")).to_have_attribute("data-drawn", "circle")
    expect(page.locator("#fence-shape")).to_contain_text("círculo")
    shown = int(page.get_attribute("#fence-map", "data-radius") or "0")
    # 60 px at zoom 16 and 23.55 S: about 131 m.
    expected = 60 * 156543.03392 * math.cos(math.radians(CENTER[0])) / 2**16
    assert abs(shown - expected) < 0.1 * expected, (shown, expected)

    page.fill("#fence-name", "Cliente Navegador")
    page.fill("#fence-group", "Clientes")
    page.click("#fence-save")
    # Its visits are queued as jobs (one per month of stored positions).
    expect(page.locator("#flash")).to_have_text(
        "cerca Cliente Navegador adicionada; visitas na fila: 1 tarefa(s)"
    )
    listed = page.locator('tr[data-fence="Cliente Navegador"]')
    expect(listed).to_have_attribute("data-kind", "circle")
    expect(listed.locator(".fence-kind")).to_have_text("círculo")
    expect(page.locator("#fence-map")).to_have_attribute("data-fence-layers", "1")
    assert page.evaluate("window.etrackFences.stored.getLayers().length") == 1

    (row,) = store.list_fences(conn)
    fence = row.fence
    assert fence.kind == "circle"
    assert fence.group == "Clientes"
    assert fence.radius_m == shown
    lon, lat = fence.geometry["coordinates"]
    off = haversine_m(CENTER[0], CENTER[1], np.asarray([lat]), np.asarray([lon]))[0]
    assert off < 5.0, off  # one pixel is about 2 m

    # What the queued job does (no worker runs here).
    compute_visits(target, None, DAY, DAY, PARAMS)
    page.goto(f"{server.url}/vehicles/{PLATE}/{DAY.isoformat()}")
    page.wait_for_selector('#map[data-loaded="1"]')
    expect(page.locator("#map")).to_have_attribute("data-fences", "1")
    expect(page.locator("#map")).to_have_attribute("data-fences-drawn", "1")
    expect(page.locator("#trip-list li.trip").first).to_be_visible()
    visit = page.locator('#visit-list li.visit[data-fence="Cliente Navegador"]')
    expect(visit).to_have_count(1)
    expect(visit).to_contain_text("12:03–12:13")


def test_draw_a_polygon_and_edit_a_fence_from_the_table(
    page: Page, server: ServerThread, conn: db.Conn
) -> None:
    page.goto(f"{server.url}/geofences")
    centre_on_site(page)
    page.click("#draw-polygon")
    expect(page.locator("#draw-finish")).to_be_enabled()
    x, y = map_point(page, *CENTER)
    for dx, dy in ((-50, -50), (50, -50), (50, 50), (-50, 50)):
        page.mouse.click(x + dx, y + dy)
    expect(page.locator("#fence-map")).to_have_attribute("data-corners", "4")
    page.click("#draw-finish")
    expect(page.locator("#fence-map")).to_have_attribute("data-drawn", "polygon")
    page.fill("#fence-name", "Pátio")
    page.click("#fence-save")
    expect(page.locator("#flash")).to_contain_text("cerca Pátio adicionada")
    (row,) = store.list_fences(conn)
    assert row.fence.kind == "polygon"
    assert len(row.fence.geometry["coordinates"][0]) == 5

    # Picked in the table: the form holds it; saved with a limit, same name.
    page.locator('tr[data-fence="Pátio"] td.fence-name').click()
    expect(page.locator("#fence-name")).to_have_value("Pátio")
    expect(page.locator("#fence-shape")).to_contain_text("Editando Pátio")
    page.fill("#fence-speed-limit", "30")
    page.click("#fence-save")
    expect(page.locator("#flash")).to_contain_text("cerca Pátio atualizada")
    (row,) = store.list_fences(conn)
    assert row.fence.speed_limit_kmh == 30.0
    assert row.fence.kind == "polygon"

    # Removed with the confirm box ticked.
    listed = page.locator('tr[data-fence="Pátio"]')
    listed.locator("input.fence-delete-confirm").check()
    listed.locator("button.fence-delete").click()
    expect(page.locator("#flash")).to_have_text("cerca Pátio excluída")
    expect(page.locator("#no-fences")).to_be_visible()
    assert store.list_fences(conn) == []


def test_the_fence_pages_fit_a_phone(page: Page, server: ServerThread, conn: db.Conn) -> None:
    store.upsert_fences(conn, [SITE])
    page.set_viewport_size(PHONE)
    for path in ("/geofences", f"/visits?start={DAY.isoformat()}&end={DAY.isoformat()}"):
        page.goto(f"{server.url}{path}")
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] + 1, (path, width)
    page.goto(f"{server.url}/geofences")
    box = page.locator("#fence-map").bounding_box()
    assert box is not None
    assert box["height"] > 100
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE["width"] + 1
