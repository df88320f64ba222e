"""The Drivers pages in a real browser, in pt-BR: Playwright drives Debian's
Chromium against the app served by uvicorn, over a migrated database of the
test's own holding a month of attributed trips (integration.test_web_drivers):
the list, a click on a driver, the calendar with the day of violations
marked, the day's timeline and its violations highlighted.

Skipped, saying why, without Chromium or Playwright (as test_web_browser).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from acceptance import test_web_browser
from acceptance.test_web_browser import ServerThread, pt_br_tab
from etrack.config import Settings
from etrack.store import db
from etrack.web import create_app
from integration.test_web_drivers import JOAO, month

pytestmark = test_web_browser.pytestmark

with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect

__all__ = ["month"]  # the data fixture, shared with the integration tests


@pytest.fixture
def server(settings: Settings, target: db.Target, month: None) -> Iterator[ServerThread]:
    app = create_app(settings, target, scheduler=False)
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def page(tmp_path_factory: pytest.TempPathFactory, server: ServerThread) -> Iterator[Page]:
    profile = tmp_path_factory.mktemp("chromium-drivers")
    errors: list[str] = []
    with pt_br_tab(profile, errors) as tab:
        yield tab
    assert not errors, errors


def test_open_a_driver_and_see_the_calendar_and_a_highlighted_violation(
    page: Page, server: ServerThread
) -> None:
    page.goto(f"{server.url}/drivers?month=2025-03")
    expect(page.locator("h1")).to_have_text("Motoristas")
    expect(page.locator("nav a.active")).to_have_text("Motoristas")
    joao = page.locator(f'tr[data-driver="{JOAO}"]')
    expect(joao.locator(".violation-count.has-violations")).to_have_text("2")
    expect(page.locator("#drivers-nobody")).to_contain_text("Sem motorista")

    joao.locator("a.driver-link").click()
    expect(page.locator("#driver-name")).to_have_text("João da Silva")
    expect(page).to_have_url(f"{server.url}/drivers/{JOAO}?month=2025-03")

    # The calendar: the 4th marked red, the 5th worked without violations.
    calendar = page.locator("#driver-calendar")
    expect(calendar.locator("td.cal-day")).to_have_count(31)
    fourth = calendar.locator('td[data-day="2025-03-04"]')
    expect(fourth).to_have_class("cal-day cal-working cal-violation")
    expect(fourth.locator(".cal-mark")).to_be_visible()
    expect(fourth.locator(".cal-driving")).to_have_text("8:50")
    expect(calendar.locator('td[data-day="2025-03-05"] .cal-mark')).to_have_count(0)
    red = fourth.evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert red == "rgb(254, 242, 242)", red

    # Its timeline and its violations, highlighted, in Portuguese.
    fourth.locator(".cal-driving").click()
    day = page.locator("#day-2025-03-04")
    expect(day).to_be_in_viewport()
    expect(day.locator('.timeline .seg[data-kind="driving"]')).to_have_count(3)
    expect(day.locator('.timeline .seg[data-kind="break"]')).to_have_count(1)
    expect(day.locator('.timeline .seg[data-kind="stop"]')).to_have_count(1)
    bar = day.locator('.timeline .seg[data-kind="driving"]').first.bounding_box()
    whole = day.locator(".timeline").bounding_box()
    assert bar is not None
    assert whole is not None
    assert abs(bar["width"] / whole["width"] - 0.7) < 0.02  # 7 h of the 10 h day
    violation = day.locator("li.violation").first
    expect(violation).to_have_text(
        "Direção ininterrupta acima de 5h30 às 11:30 (+1h30) — CTB art. 67-C, caput"
    )
    color = violation.evaluate("li => getComputedStyle(li).color")
    assert color == "rgb(185, 28, 28)", color
    expect(page.locator("#day-2025-03-05 li.violation")).to_have_count(0)
