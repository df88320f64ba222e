"""The Users page in a real browser, in pt-BR: Playwright drives Debian's
Chromium against the app served by uvicorn over a database loaded from the
simulator, its vehicles split into two fleets. An admin logs in and adds a
viewer of one fleet on the Users page; the viewer logs in (a browser of
their own) and sees that fleet only: on the map, in the fleet report and in
the CSV they download.

Skipped, saying why, without Chromium or Playwright (as test_web_browser).
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from acceptance import test_web_browser
from acceptance.test_web_browser import ServerThread, pt_br_context, watched_tab
from etrack.store import db
from etrack.store import users as store
from etrack.web import create_app
from integration.test_web_api import WebData
from integration.test_web_users import ADMIN, ADMIN_PASSWORD, NORTH, data

pytestmark = test_web_browser.pytestmark

# Without Playwright the marks above skip every test here.
with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect

VIEWER = "vera@example.com"
VIEWER_PASSWORD = "vera-password-1"
# The Users page tests' data: an admin from ETRACK_WEB_USER, two fleets.
__all__ = ["data"]


@pytest.fixture(scope="module")
def server(data: WebData) -> Iterator[ServerThread]:
    app = create_app(data.settings, data.target, scheduler=False)
    with ServerThread(app) as running:
        yield running


@contextlib.contextmanager
def browser(profile: Path) -> Iterator[Page]:
    """A pt-BR tab of a Chromium of its own (its own cookies); no console error."""
    errors: list[str] = []
    with pt_br_context(profile) as context:
        tab = watched_tab(context, errors)
        # No network here: fail the tile requests at once (the pages must cope).
        tab.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
        yield tab
    own = [e for e in errors if "Failed to load resource" not in e]
    assert not own, own


def log_in(page: Page, base: str, login: str, password: str) -> None:
    page.goto(f"{base}/")
    # Every page wants a login once a user exists.
    page.wait_for_url("**/login?next=**")
    page.fill('input[name="username"]', login)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{base}/")


def test_an_admin_adds_a_viewer_of_one_fleet_who_sees_only_it(
    server: ServerThread, data: WebData, tmp_path_factory: pytest.TempPathFactory
) -> None:
    north = set(data.plates[:2])
    first, last = data.past_days

    with browser(tmp_path_factory.mktemp("chromium-admin")) as admin:
        log_in(admin, server.url, ADMIN, ADMIN_PASSWORD)
        admin.goto(f"{server.url}/users")
        expect(admin.locator("h1")).to_have_text("Usuários")
        expect(admin.locator(f'tr[data-login="{ADMIN}"] .user-role')).to_have_text("administrador")
        admin.fill("#user-login", VIEWER)
        admin.fill("#user-name", "Vera")
        admin.select_option("#user-role", "viewer")
        admin.fill("#user-fleets", NORTH)
        admin.fill("#user-password", VIEWER_PASSWORD)
        admin.fill("#user-again", VIEWER_PASSWORD)
        admin.click("#user-add")
        expect(admin.locator("#flash")).to_have_text(f"usuário {VIEWER} adicionado")
        row = admin.locator(f'tr[data-login="{VIEWER}"]')
        expect(row.locator(".user-role")).to_have_text("consulta")
        expect(row.locator(".user-scope")).to_have_text(f"Frotas: {NORTH}")
        expect(row.locator(".user-state")).to_have_text("ativo")
        assert VIEWER_PASSWORD not in admin.content()
    with db.connection(data.target) as conn:
        added = store.get_user(conn, VIEWER)
    assert added is not None
    assert (added.user.role, added.user.fleets) == ("viewer", (NORTH,))

    with browser(tmp_path_factory.mktemp("chromium-viewer")) as viewer:
        log_in(viewer, server.url, VIEWER, VIEWER_PASSWORD)
        # The map: the fleet's vehicles only, listed and as markers.
        viewer.wait_for_selector('#map[data-loaded="1"]')
        listed = set(
            viewer.locator("#vehicle-list li[data-placa]").evaluate_all(
                "items => items.map(i => i.dataset.placa)"
            )
        )
        assert listed == north
        assert viewer.get_attribute("#map", "data-markers") == str(len(north))
        # No Users page for a viewer.
        assert viewer.locator('nav a[href="/users"]').count() == 0

        # The fleet report: the same vehicles.
        viewer.goto(f"{server.url}/report?start={first.isoformat()}&end={last.isoformat()}")
        rows = set(
            viewer.locator("#report-table tbody tr[data-placa]").evaluate_all(
                "rows => rows.map(r => r.dataset.placa)"
            )
        )
        assert rows
        assert rows <= north

        # The CSV the page links to, fetched with the viewer's cookies.
        href = viewer.get_attribute("#report-csv", "href")
        assert href
        answer = viewer.request.get(f"{server.url}{href}")
        assert answer.status == 200
        text = answer.body().decode("utf-8-sig")
        table = list(csv.reader(io.StringIO(text), delimiter=";" if ";" in text[:200] else ","))
        plates = {cells[0] for cells in table[1:] if cells and cells[0] in set(data.plates)}
        assert plates == rows
        assert not plates & set(data.plates[2:])
