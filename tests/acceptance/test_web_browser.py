"""The UI in a real browser: Playwright drives Debian's Chromium (/usr/bin/chromium)
against the app served by uvicorn over HTTP, with a real PostgreSQL loaded
from the simulator. Saves docs/img/fleet-map.png and docs/img/vehicle-day.png with ETRACK_SCREENSHOTS=1.

Without Chromium these tests are skipped, and say why.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from etrack.events.compute import compute_events
from etrack.model import EVENT_KINDS
from etrack.store import db
from etrack.web import create_app
from integration.test_web_api import WebData, busiest_plate_day, loaded_web_data

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
# The README's screenshots are refreshed on demand (ETRACK_SCREENSHOTS=1), so
# an ordinary test run leaves the working tree clean.
SCREENSHOTS = (
    ROOT / "docs" / "img"
    if os.environ.get("ETRACK_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="etrack-screens-"))
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The day picker and number inputs follow the browser's language.
    "--lang=pt-BR",
]

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None,
    reason=f"Chromium is not installed at {CHROMIUM} (apt-get install chromium): browser tests skipped",
)

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    pytestmark = pytest.mark.skip(reason="playwright is not installed: browser tests skipped")


@contextlib.contextmanager
def pt_br_context(profile: Path) -> Iterator[Any]:
    """A headless Chromium in pt-BR on its own profile."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
            locale="pt-BR",
        )
        try:
            yield context
        finally:
            context.close()


def watched_tab(context: Any, errors: list[str]) -> Page:
    """A new tab whose console errors and page errors go into `errors`."""
    tab = context.new_page()
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    return tab


@contextlib.contextmanager
def pt_br_tab(profile: Path, errors: list[str]) -> Iterator[Page]:
    """One tab of a headless Chromium in pt-BR on its own profile; every
    console error and page error goes into `errors` for the caller to judge."""
    with pt_br_context(profile) as context:
        yield watched_tab(context, errors)


def day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tz)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerThread:
    """uvicorn serving the app on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the web server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module")
def web_data(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebData]:
    data_dir = tmp_path_factory.mktemp("web-browser")
    with loaded_web_data(pg_server_url, template_database, data_dir, vehicles=12) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def server(web_data: WebData) -> Iterator[ServerThread]:
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with ServerThread(app) as running:
        yield running


@pytest.fixture(scope="module")
def browser_context(
    tmp_path_factory: pytest.TempPathFactory, server: ServerThread
) -> Iterator[Any]:
    # After the server: Playwright's sync API keeps an event loop running in
    # this thread, and loading the data needs asyncio.run.
    with pt_br_context(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


@pytest.fixture
def page(browser_context: Any) -> Iterator[Page]:
    errors: list[str] = []
    tab = watched_tab(browser_context, errors)
    # No network here: fail the tile requests at once (the pages must cope).
    tab.route("https://tile.openstreetmap.org/**", lambda route: route.abort())
    yield tab
    tab.close()
    own = [e for e in errors if "Failed to load resource" not in e]
    assert not own, own


def test_fleet_map_shows_every_vehicle(page: Page, server: ServerThread, web_data: WebData) -> None:
    page.goto(f"{server.url}/")
    page.wait_for_selector('#map[data-loaded="1"]')
    count = len(web_data.plates)
    assert page.locator("#vehicle-list li").count() == count
    assert page.get_attribute("#map", "data-markers") == str(count)
    with_marker = page.evaluate(
        "Array.from(window.etrackFleet.entries.values()).filter(e => e.marker).length"
    )
    assert with_marker == count
    assert page.evaluate("window.etrackFleet.clustered") is True
    page.wait_for_timeout(600)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "fleet-map.png"))
    plate = web_data.plates[0]
    page.fill("#filter-plate", plate)
    assert page.locator("#vehicle-list li").count() == 1
    assert page.get_attribute("#map", "data-markers") == "1"
    page.fill("#filter-plate", "")
    page.locator("#vehicle-list li").first.click()
    page.wait_for_selector(".leaflet-popup-content")


def test_vehicle_day_shows_the_route_and_a_trip_click_fits_the_map(
    page: Page, server: ServerThread, web_data: WebData
) -> None:
    plate, day = busiest_plate_day(web_data)
    trips = web_data.sim.fleet.true_trips(plate, day)
    page.goto(f"{server.url}/vehicles/{plate}/{day.isoformat()}")
    page.wait_for_selector('#map[data-loaded="1"]')
    assert page.locator("#trip-list li.trip").count() == len(trips)
    assert page.evaluate("window.etrackDay.full.getLatLngs().length") > 100
    assert page.locator("#speed-chart svg path.speed-line").count() == 1
    assert page.locator("#speed-chart svg line.limit-line").count() == 1
    page.wait_for_timeout(600)
    page.screenshot(path=str(SCREENSHOTS / "vehicle-day.png"))
    zoom_before = page.evaluate("window.etrackDay.map.getZoom()")
    second = page.locator("#trip-list li.trip").nth(1)
    second.click()
    page.wait_for_selector('#map[data-fitted-trip="2"]')
    fits = page.evaluate(
        """() => {
            const d = window.etrackDay;
            const trip = d.highlight.getBounds();
            return d.highlight.getLatLngs().length > 1 && d.map.getBounds().contains(trip);
        }"""
    )
    assert fits
    assert page.evaluate("window.etrackDay.map.getZoom()") >= zoom_before
    assert "active" in (second.get_attribute("class") or "")
    page.fill("#playback", "10")
    page.dispatch_event("#playback", "input")
    assert page.text_content("#playback-label")


def test_fleet_report_sorts(page: Page, server: ServerThread, web_data: WebData) -> None:
    first, last = web_data.past_days
    page.goto(f"{server.url}/report?start={first.isoformat()}&end={last.isoformat()}")
    header = page.locator('th[data-column="distance_km"] a')
    header.click()
    page.wait_for_url("**sort=distance_km**order=asc**")
    ascending = [
        float(v)
        for v in page.locator("#report-table tbody td[data-value]").evaluate_all(
            "cells => cells.map(c => c.dataset.value)"
        )
    ]
    assert ascending == sorted(ascending)
    assert len(ascending) == len(web_data.plates)
    page.locator('th[data-column="distance_km"] a').click()
    page.wait_for_url("**order=desc**")
    descending = [
        float(v)
        for v in page.locator("#report-table tbody td[data-value]").evaluate_all(
            "cells => cells.map(c => c.dataset.value)"
        )
    ]
    assert descending == sorted(ascending, reverse=True)


@pytest.fixture(scope="module")
def jobs_server(web_data: WebData) -> Iterator[ServerThread]:
    """A second server of the same data whose process runs the embedded scheduler."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ETRACK_JOB_POLL_S", "0.2")
        patch.setenv("ETRACK_JOB_HEARTBEAT_S", "0.5")
        patch.setenv("ETRACK_JOB_STALLED_AFTER_S", "5")
        app = create_app(web_data.settings, web_data.target, scheduler=True)
        with ServerThread(app) as running:
            yield running


def test_a_backfill_started_from_the_jobs_page_completes(
    page: Page, jobs_server: ServerThread, web_data: WebData
) -> None:
    plate, day = busiest_plate_day(web_data)
    page.goto(f"{jobs_server.url}/jobs")
    assert page.get_attribute("#scheduler-state", "data-state") in ("running", "starting")
    page.fill('input[name="date_start"]', day.isoformat())
    page.fill('input[name="date_end"]', day.isoformat())
    page.fill('input[name="plates"]', plate)
    page.check('input[name="with_trips"]')
    page.click('#backfill-form button[type="submit"]')
    page.wait_for_selector("#flash")
    assert "backfill nº" in (page.text_content("#flash") or "")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        row = page.locator("#backfill-table tbody tr").first
        if row.get_attribute("data-finished") == "1":
            break
        page.wait_for_timeout(500)
        page.reload()
    else:
        raise AssertionError("the backfill did not finish within 90 s")
    summary = page.locator("#backfill-table tbody tr").first.locator(".backfill-summary")
    assert "rotas:" in (summary.text_content() or "")
    progress = page.locator("#backfill-table tbody tr").first.locator(".backfill-progress")
    assert (progress.text_content() or "").strip() == "1 partição, 1 feita"
    assert page.locator("#runs-table tbody tr").count() >= 1


# ------------------------------------------------------------------ events
@pytest.fixture(scope="module")
def with_events(web_data: WebData) -> dict[tuple[str, str], int]:
    """The loaded days' events computed (thresholds of the settings); their
    count per (plate, kind) as stored."""
    first = web_data.past_days[0]
    compute_events(web_data.target, None, first, web_data.today)
    with db.connection(web_data.target) as conn:
        rows = conn.execute("SELECT placa, kind, count(*) FROM events GROUP BY 1, 2").fetchall()
    counts = {(placa, kind): int(n) for placa, kind, n in rows}
    assert counts, "the simulator's days gave no event at all"
    return counts


def test_events_page_counts_and_filters_in_portuguese(
    page: Page, server: ServerThread, web_data: WebData, with_events: dict[tuple[str, str], int]
) -> None:
    first, last = web_data.past_days[0], web_data.today
    page.goto(f"{server.url}/events?start={first.isoformat()}&end={last.isoformat()}")
    assert page.text_content("h1") == "Eventos"
    assert page.get_attribute("#events-total", "data-total") == str(sum(with_events.values()))
    by_kind: dict[str, int] = {}
    for (_, kind), n in with_events.items():
        by_kind[kind] = by_kind.get(kind, 0) + n
    shown = page.locator("#events-by-kind tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.kind, Number(r.dataset.count), r.textContent.trim()])"
    )
    assert {kind: n for kind, n, _ in shown} == by_kind
    names = {kind: text for kind, _, text in shown}
    if "overspeed" in names:
        assert names["overspeed"].startswith("Excesso de velocidade")
    # Pick the commonest kind in the form; the list then holds only it.
    kind = max(by_kind, key=lambda k: by_kind[k])
    page.select_option('select[name="kind"]', kind)
    page.click('#events-filter button[type="submit"]')
    page.wait_for_url(f"**kind={kind}**")
    kinds = set(
        page.locator("#events-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.kind)")
    )
    assert kinds == {kind}
    assert page.get_attribute("#events-total", "data-total") == str(by_kind[kind])
    # A vehicle's link narrows the page to it.
    page.locator("#events-by-vehicle tbody tr a").first.click()
    page.wait_for_url("**plate=**")
    plates = set(
        page.locator("#events-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.placa)")
    )
    assert len(plates) == 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "events.png"))


def test_vehicle_day_draws_its_events_on_the_map_and_the_speed_chart(
    page: Page, server: ServerThread, web_data: WebData, with_events: dict[tuple[str, str], int]
) -> None:
    day = web_data.past_days[-1]
    tz = web_data.settings.tz
    with db.connection(web_data.target) as conn:
        found = conn.execute(
            "SELECT placa, count(*) FROM events WHERE start_ts >= %s AND start_ts < %s"
            " AND latitude IS NOT NULL GROUP BY placa ORDER BY 2 DESC, 1 LIMIT 1",
            (day_start(day, tz), day_start(day + timedelta(days=1), tz)),
        ).fetchone()
    assert found is not None, f"no event on {day}"
    plate = str(found[0])
    page.goto(f"{server.url}/vehicles/{plate}/{day.isoformat()}")
    page.wait_for_selector('#map[data-loaded="1"]')
    listed = page.locator("#event-list li.event").count()
    assert listed >= int(found[1])
    assert int(page.get_attribute("#map", "data-event-markers") or 0) >= int(found[1])
    assert int(page.get_attribute("#speed-chart", "data-event-bands") or 0) >= 1
    assert page.locator("#speed-chart rect.event-band").count() >= 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "vehicle-day-events.png"))
    # The list in pt-BR; a click moves the playback to the event's start.
    item = page.locator("#event-list li.event").last
    assert (item.locator("strong").text_content() or "") in {k.pt for k in EVENT_KINDS.values()}
    page.fill("#playback", "0")
    page.dispatch_event("#playback", "input")
    item.click()
    start = float(item.get_attribute("data-start") or 0)
    index = int(page.input_value("#playback"))
    moved_to = page.evaluate("(i) => window.etrackDay.points[i][0]", index)
    assert index > 0
    assert moved_to >= start


# ------------------------------------------------------------- a phone's width
PHONE = {"width": 390, "height": 844}

LAYOUT = """(selector) => {
    const box = document.querySelector(selector).getBoundingClientRect();
    return {
        left: box.left, right: box.right, width: box.width, height: box.height,
        innerWidth: window.innerWidth,
        scrollWidth: document.documentElement.scrollWidth,
    };
}"""


def assert_fits_the_phone(page: Page, selector: str) -> None:
    """`selector` (a map) lies inside the viewport's width with a height, and
    nothing on the page overflows it sideways."""
    box = page.evaluate(LAYOUT, selector)
    assert box["innerWidth"] == PHONE["width"], box
    assert box["height"] > 100, (selector, box)
    assert box["left"] >= 0, (selector, box)
    assert box["right"] <= box["innerWidth"] + 1, (selector, box)
    assert box["scrollWidth"] <= box["innerWidth"] + 1, (selector, box)


def test_the_pages_fit_a_phone(page: Page, server: ServerThread, web_data: WebData) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{server.url}/")
    page.wait_for_selector('#map[data-loaded="1"]')
    assert_fits_the_phone(page, "#map")
    assert_fits_the_phone(page, "#vehicle-list")
    # The count under the filters: plural rules, not "1 veículos".
    assert page.text_content("#fleet-count") == f"{len(web_data.plates)} veículos"
    page.fill("#filter-plate", web_data.plates[0])
    assert page.text_content("#fleet-count") == "1 veículo"
    when = page.text_content("#vehicle-list li .when") or ""
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", when), when
    page.fill("#filter-plate", "")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "fleet-map-phone.png"))
    plate, day = busiest_plate_day(web_data)
    page.goto(f"{server.url}/vehicles/{plate}/{day.isoformat()}")
    page.wait_for_selector('#map[data-loaded="1"]')
    assert_fits_the_phone(page, "#map")
    assert_fits_the_phone(page, "#trip-list")
    # Leaflet drew into the map at the phone's size.
    assert page.evaluate("window.etrackDay.map.getSize().x") <= PHONE["width"]
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "vehicle-day-phone.png"), full_page=True)
    for path in (
        "/jobs",
        f"/report?start={day.isoformat()}&end={day.isoformat()}",
        "/db/positions",
    ):
        page.goto(f"{server.url}{path}")
        page.screenshot(path=str(SCREENSHOTS / f"phone{path.split('?')[0].replace('/', '-')}.png"))
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1] + 1, (path, width)
