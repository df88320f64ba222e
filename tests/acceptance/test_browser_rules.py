"""The Rules page in a real browser, in pt-BR: Playwright drives Debian's
Chromium against the app served by uvicorn, over a migrated database of the
test's own and a real local webhook receiver. A rule is added through the
form, its secret is shown once (and signs the test alert), then it is
paused and removed.

Skipped, saying why, without Chromium or Playwright (as test_web_browser).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from acceptance import test_web_browser
from acceptance.test_web_browser import ServerThread, pt_br_tab
from etrack.alerts.signing import verify
from etrack.config import Settings
from etrack.store import db
from etrack.store.alerts import get_rule
from etrack.web import create_app
from integration.test_web_rules import Hook, make_hook

pytestmark = test_web_browser.pytestmark

# Without Playwright the marks above skip every test here.
with contextlib.suppress(ImportError):
    from playwright.sync_api import Page, expect

__all__ = ["make_hook"]  # the receiver fixture, shared with the integration tests


@pytest.fixture
def server(settings: Settings, target: db.Target) -> Iterator[ServerThread]:
    app = create_app(settings, target, scheduler=False)
    with ServerThread(app) as running:
        yield running


@pytest.fixture
def page(tmp_path_factory: pytest.TempPathFactory, server: ServerThread) -> Iterator[Page]:
    profile = tmp_path_factory.mktemp("chromium-rules")
    errors: list[str] = []
    with pt_br_tab(profile, errors) as tab:
        yield tab
    # A refused form answers 400, which the console reports as a failed load.
    own = [e for e in errors if "Failed to load resource" not in e]
    assert not own, own


def test_add_see_the_secret_once_test_pause_and_remove_a_rule(
    page: Page, server: ServerThread, conn: db.Conn, make_hook: Callable[[int], Hook]
) -> None:
    hook = make_hook(200)
    page.goto(f"{server.url}/rules")
    expect(page.locator("h1")).to_have_text("Regras de alerta")
    expect(page.locator("#no-rules")).to_be_visible()

    # No kind ticked: refused in Portuguese, what was typed kept.
    page.fill("#rule-name", "painel")
    page.fill("#rule-webhook", hook.url)
    page.click("#rule-add")
    expect(page.locator("#form-error")).to_contain_text("tipos de evento: escolha um ou mais")
    expect(page.locator("#rule-name")).to_have_value("painel")
    expect(page.locator("#rule-webhook")).to_have_value(hook.url)
    assert get_rule(conn, "painel") is None

    page.check('input[name="kinds"][value="overspeed"]')
    page.check('input[name="kinds"][value="idle"]')
    page.fill("#rule-plates", "abc-1234")
    page.click("#rule-add")
    expect(page.locator("#flash")).to_have_text("regra painel adicionada")
    secret = (page.text_content("#secret-value") or "").strip()
    rule = get_rule(conn, "painel")
    assert rule is not None
    assert secret == rule.secret
    assert len(secret) >= 32
    listed = page.locator('tr[data-rule="painel"]')
    expect(listed).to_have_attribute("data-active", "1")
    expect(listed).to_contain_text("Excesso de velocidade")
    expect(listed).to_contain_text("Placas ABC1234")
    expect(listed).not_to_contain_text("t0ken")

    # The test button: the receiver gets an alert signed with the secret shown.
    listed.locator("button.rule-test").click()
    expect(page.locator("#flash")).to_have_text("teste da regra painel: entregue (HTTP 200)")
    assert hook.count() == 1
    headers, body = hook.requests[0]
    assert verify(body, secret, headers["X-Etrack-Signature"])
    # Shown once: not on this page (after the redirect) nor on a reload.
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()
    expect(page.locator("#rule-secret")).to_have_count(0)

    page.locator('tr[data-rule="painel"] button.rule-toggle').click()
    expect(page.locator("#flash")).to_have_text("regra painel pausada")
    paused = page.locator('tr[data-rule="painel"]')
    expect(paused).to_have_attribute("data-active", "0")
    expect(paused.locator(".rule-state")).to_have_text("pausada")
    expect(paused.locator("button.rule-toggle")).to_have_text("Retomar")
    again = get_rule(conn, "painel")
    assert again is not None
    assert again.active is False

    paused.locator("input.rule-remove-confirm").check()
    paused.locator("button.rule-remove").click()
    expect(page.locator("#flash")).to_have_text("regra painel removida")
    expect(page.locator('tr[data-rule="painel"]')).to_have_count(0)
    expect(page.locator("#no-rules")).to_be_visible()
    assert get_rule(conn, "painel") is None
