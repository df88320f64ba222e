"""The Schedules page in a real browser, in pt-BR: Playwright drives Debian's
Chromium against the app served by uvicorn, over a migrated database of the
test's own. A bad address is refused in Portuguese with the form kept; a
daily report is scheduled, listed, paused, resumed and removed.

Skipped, saying why, without Chromium or Playwright (as test_web_browser).
"""

from __future__ import annotations

import contextlib
from datetime import time

from acceptance import test_web_browser
from acceptance.test_browser_rules import page, server
from acceptance.test_web_browser import ServerThread
from etrack.store import db
from etrack.store.reports import list_schedules

pytestmark = test_web_browser.pytestmark

# The Rules page's fixtures: the app served on its own database, a pt-BR tab.
__all__ = ["page", "server"]

# Without Playwright the marks above skip every test here.
with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect


def test_schedule_a_daily_report_pause_resume_and_remove_it(
    page: Page, server: ServerThread, conn: db.Conn
) -> None:
    page.goto(f"{server.url}/reports/schedules")
    expect(page.locator("h1")).to_have_text("Relatórios agendados")
    expect(page.locator("#no-schedules")).to_be_visible()

    # A bad address: refused in Portuguese, what was typed kept, nothing stored.
    page.select_option("#schedule-kind", "fleet-summary")
    page.select_option("#schedule-every", "daily")
    page.fill("#schedule-at", "06:30")
    page.fill("#schedule-to", "nope")
    page.check('input[name="formats"][value="pdf"]')
    page.click("#schedule-add")
    expect(page.locator("#form-error")).to_contain_text("e-mails: use endereços como")
    expect(page.locator("#schedule-at")).to_have_value("06:30")
    assert list_schedules(conn) == []

    page.fill("#schedule-to", "frota@example.com")
    page.click("#schedule-add")
    expect(page.locator("#flash")).to_contain_text("adicionado")
    (stored,) = list_schedules(conn)
    assert (stored.kind, stored.every, stored.at_local) == ("fleet-summary", "daily", time(6, 30))
    assert stored.emails == ["frota@example.com"]
    assert "pdf" in stored.formats
    row = page.locator(f'tr[data-schedule="{stored.id}"]')
    expect(row.locator(".schedule-every")).to_have_text("diário")
    expect(row.locator(".schedule-target")).to_contain_text("frota@example.com")
    expect(row.locator(".schedule-next")).not_to_be_empty()

    row.locator(".schedule-toggle").click()
    expect(page.locator("#flash")).to_contain_text(f"agendamento {stored.id} pausado")
    expect(page.locator(f'tr[data-schedule="{stored.id}"]')).to_have_attribute("data-active", "0")
    assert not list_schedules(conn)[0].active
    page.locator(f'tr[data-schedule="{stored.id}"] .schedule-toggle').click()
    expect(page.locator("#flash")).to_contain_text(f"agendamento {stored.id} retomado")
    assert list_schedules(conn)[0].active

    row = page.locator(f'tr[data-schedule="{stored.id}"]')
    row.locator(".schedule-remove-confirm").check()
    row.locator(".schedule-remove").click()
    expect(page.locator("#flash")).to_contain_text(f"agendamento {stored.id} removido")
    expect(page.locator("#no-schedules")).to_be_visible()
    assert list_schedules(conn) == []
