"""The Rules page (/rules) over the real app and a real PostgreSQL: listing
with counts, the add form and its refusals, the one-time secret, remove,
pause/resume (and what a paused rule queues and delivers), the test button
against a real local HTTP receiver, account scope; and `etrack alerts
pause|resume`."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from etrack.alerts.rules import safe_target
from etrack.alerts.signing import verify
from etrack.config import Settings
from etrack.jobs.alerts import queue_alerts
from etrack.model import Fence
from etrack.store import db
from etrack.store.alerts import RuleSpec, add_rule, get_rule, set_rule_active
from etrack.store.geofences import upsert_fences
from etrack.web import create_app
from fixtures_cli import RunEtrack
from integration.test_alerts import add_event, run_workers, states, with_app
from integration.test_web_api import LOCAL

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET = "a-rules-page-secret-of-32-chars!"


# ------------------------------------------------------------ the receiver
@dataclass
class Hook:
    """A local HTTP server answering every POST with `status`, keeping the
    requests (headers and body) it got."""

    status: int
    url: str = ""
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self) -> int:
        with self.lock:
            return len(self.requests)


@pytest.fixture
def make_hook() -> Iterator[Callable[[int], Hook]]:
    servers: list[ThreadingHTTPServer] = []

    def make(status: int) -> Hook:
        hook = Hook(status)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook.lock:
                    hook.requests.append((dict(self.headers.items()), body))
                self.send_response(hook.status)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"nope" if hook.status >= 300 else b"okay")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        # A path with a token in it, as a chat bot's URL has: never shown.
        hook.url = f"http://127.0.0.1:{server.server_address[1]}/hook/t0ken-in-path"
        return hook

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------- helpers
@pytest.fixture
def rules_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"etrack_alert_attempts": 3, "etrack_alert_retry_s": 0.05})


def client_for(settings: Settings, target: db.Target) -> TestClient:
    return TestClient(create_app(settings, target, scheduler=False), base_url=LOCAL)


@pytest.fixture
def client(rules_settings: Settings, target: db.Target) -> Iterator[TestClient]:
    with client_for(rules_settings, target) as test_client:
        yield test_client


def token(client: TestClient) -> str:
    page = client.get("/rules")
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def row(page: str, name: str) -> dict[str, str]:
    """The data- attributes of the rule's row, and its cells' text."""
    found = re.search(rf'<tr data-rule="{re.escape(name)}"([^>]*)>(.*?)</tr>', page, re.DOTALL)
    assert found, f"no row for {name}"
    values = dict(re.findall(r'data-(\w+)="([^"]*)"', found.group(1)))
    values["text"] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(2)))
    return values


def rule_names(page: str) -> list[str]:
    return re.findall(r'<tr data-rule="([^"]+)"', page)


def webhook_rule(
    conn: db.Conn,
    name: str,
    url: str,
    *,
    plates: list[str] | None = None,
    kinds: tuple[str, ...] = ("overspeed",),
) -> None:
    assert add_rule(conn, RuleSpec(
        name=name, kinds=kinds, plates=plates, fleets=None, fences=None, min_value=None,
        channel="webhook", url=url, secret=SECRET, emails=None,
    ))  # fmt: skip


def stored(conn: db.Conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM alert_rules ORDER BY name").fetchall()]


def session_text(client: TestClient) -> str:
    """What the signed session cookie carries (its payload is base64 JSON)."""
    cookie = client.cookies.get("etrack_session") or ""
    payload = cookie.split(".", 1)[0]
    return base64.b64decode(payload + "=" * (-len(payload) % 4)).decode()


def form(csrf: str, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"csrf_token": csrf, "channel": "webhook"}
    base.update(values)
    return base


def flash_line(client: TestClient) -> str:
    page = client.get("/rules").text
    found = re.search(r'<p id="flash"[^>]*>(.*?)</p>', page, re.DOTALL)
    assert found, "no flash line"
    return found.group(1).strip()


# ------------------------------------------------------------------- list


def refused(client: TestClient, csrf: str, values: dict[str, Any], expected: str) -> httpx.Response:
    """The add form posted with `values`: a 400 whose one-line error says `expected`."""
    answer = client.post("/rules", data=form(csrf, **values))
    assert answer.status_code == 400, values
    error = re.search(r'<p id="form-error"[^>]*>(.*?)</p>', answer.text, re.DOTALL)
    assert error, values
    assert expected in error.group(1), (values, error.group(1))
    assert error.group(1).count("\n") == 0
    return answer


def test_the_page_lists_each_rule_with_its_deliveries(
    client: TestClient, conn: db.Conn, rules_settings: Settings
) -> None:
    assert "Nenhuma regra de alerta." in client.get("/rules").text
    webhook_rule(conn, "speed", "https://user:pw@hooks.example.com:8443/in/t0k?key=abc",
                 kinds=("overspeed", "idle"))  # fmt: skip
    assert add_rule(conn, RuleSpec(
        name="night", kinds=("after_hours",), plates=None, fleets=("norte",), fences=None,
        min_value=12.5, channel="email", url=None, secret=None,
        emails=("ana@example.com", "bia@example.com"),
    ))  # fmt: skip
    assert set_rule_active(conn, "night", False)
    for state, error in (("sent", None), ("sent", None), ("queued", None),
                         ("failed", "webhook https://hooks.example.com:8443/... answered HTTP 500: down")):  # fmt: skip
        event = add_event(conn)
        conn.execute(
            "INSERT INTO alert_sends (rule, event_id, placa, kind, start_ts, state, last_error)"
            " SELECT 'speed', id, placa, kind, start_ts, %s, %s FROM events WHERE id = %s",
            (state, error, event),
        )
    page = client.get("/rules")
    assert page.status_code == 200
    assert rule_names(page.text) == ["night", "speed"]
    speed = row(page.text, "speed")
    counts = [speed[key] for key in ("active", "queued", "sent", "failed")]
    assert counts == ["1", "1", "2", "1"]
    assert "Excesso de velocidade" in speed["text"]
    assert "todos os veículos" in speed["text"]
    assert "https://hooks.example.com:8443/..." in speed["text"]
    assert "respondeu HTTP 500: down" in speed["text"]
    created = get_rule(conn, "speed")
    assert created is not None
    assert (
        created.created_at.astimezone(rules_settings.tz).strftime("%d/%m/%Y %H:%M") in speed["text"]
    )
    night = row(page.text, "night")
    assert night["active"] == "0"
    assert "pausada" in night["text"]
    assert "Frota norte" in night["text"]
    assert "valor ≥ 12,5" in night["text"]
    assert "ana@example.com, bia@example.com" in night["text"]
    # Neither the secret nor the URL's credentials, path or query, anywhere.
    for hidden in (SECRET, "user:pw", "t0k", "key=abc"):
        assert hidden not in page.text, hidden
    english = client.get("/rules?lang=en").text
    assert "Alert rules" in english
    assert "answered HTTP 500: down" in row(english, "speed")["text"]
    assert "paused" in row(english, "night")["text"]
    assert "value ≥ 12.5" in row(english, "night")["text"]


# -------------------------------------------------------------------- add
def test_the_add_form_checks_like_the_cli_and_keeps_what_was_typed(
    client: TestClient, conn: db.Conn
) -> None:
    csrf = token(client)
    good = {"name": "fast", "kinds": ["overspeed"], "webhook": "https://hooks.example.com/x",
            "secret": SECRET}  # fmt: skip
    # No CSRF token, or a forged one: refused, nothing stored.
    assert client.post("/rules", data={k: v for k, v in form(csrf, **good).items()
                                       if k != "csrf_token"}).status_code == 403  # fmt: skip
    assert client.post("/rules", data=form("forged", **good)).status_code == 403
    assert stored(conn) == []
    refusals: list[tuple[dict[str, Any], str]] = [
        ({**good, "kinds": ["overspeed", "nope"]}, "tipos de evento: escolha um ou mais"),
        ({**good, "kinds": []}, "tipos de evento: escolha um ou mais"),
        ({**good, "name": "bad name!"}, "nome da regra: use letras"),
        ({**good, "webhook": "ftp://x.example.com/"}, "webhook: use uma URL http://"),
        ({**good, "secret": "short"}, "segredo: use pelo menos 16 caracteres"),
        ({**good, "min_value": "muito"}, "valor mínimo: informe um número"),
        ({**good, "min_value": "nan"}, "valor mínimo: informe um número"),
        ({**good, "plates": "ABC1234", "fleet": "norte"}, "placas ou frota: não ambas"),
        ({**good, "plates": "not-a-plate"}, "placa inválida"),
        ({**good, "channel": ""}, "escolha um canal"),
        ({**good, "channel": "email", "secret": "", "emails": "ana"}, "e-mail: use endereços"),
        ({**good, "channel": "email", "emails": "ana@example.com"}, "o segredo só vale"),
    ]
    for values, expected in refusals:
        answer = refused(client, csrf, values, expected)
        # What was typed is still there, the secret excepted.
        assert f'value="{values["webhook"]}"' in answer.text
        assert f'name="name" id="rule-name" value="{values["name"]}"' in answer.text
        for kind in values["kinds"]:
            assert f'value="{kind}" checked' in answer.text or kind == "nope"
        assert SECRET not in answer.text
    assert stored(conn) == []
    # The page's language is English: the CLI's words (without its "--").
    english = client.post("/rules?lang=en", data=form(csrf, **{**good, "kinds": ["nope"]}))
    assert english.status_code == 400
    assert "kind: expected one or more of overspeed" in english.text
    # (?lang= sticks in a cookie: back to Portuguese.)
    assert client.get("/rules?lang=pt-BR").status_code == 200
    # A good one: a given secret is not shown; back to the page with a flash line.
    added = client.post("/rules", data=form(csrf, **{**good, "min_value": "90,5",
                                                     "plates": "abc-1234, DEF5678"}),
                        follow_redirects=False)  # fmt: skip
    assert added.status_code == 303
    assert added.headers["location"] == "/rules"
    assert flash_line(client) == "regra fast adicionada"
    rule = get_rule(conn, "fast")
    assert rule is not None
    assert (rule.min_value, rule.plates, rule.secret, rule.active) == (
        90.5, ("ABC1234", "DEF5678"), SECRET, True,
    )  # fmt: skip
    # The name taken: 400 and the rule unchanged.
    taken = client.post("/rules", data=form(csrf, **{**good, "kinds": ["idle"]}))
    assert taken.status_code == 400
    assert "a regra &#39;fast&#39; já existe" in taken.text
    again = get_rule(conn, "fast")
    assert again is not None
    assert again.kinds == ("overspeed",)
    # An e-mail rule over a fleet.
    mail = client.post("/rules", data=form(csrf, name="mail", kinds=["idle", "offline"],
                                           fleet="norte", channel="email",
                                           emails="ana@example.com, bia@example.com",
                                           webhook="left over"), follow_redirects=False)  # fmt: skip
    assert mail.status_code == 303
    stored_mail = get_rule(conn, "mail")
    assert stored_mail is not None
    assert (stored_mail.channel, stored_mail.fleets, stored_mail.emails, stored_mail.url) == (
        "email", ("norte",), ("ana@example.com", "bia@example.com"), None,
    )  # fmt: skip


def test_the_add_form_takes_fences_that_exist(client: TestClient, conn: db.Conn) -> None:
    upsert_fences(conn, [
        Fence("Depot A", "circle", {"type": "Point", "coordinates": [-46.6, -23.5]}, 200.0),
        Fence("Cliente B", "circle", {"type": "Point", "coordinates": [-46.5, -23.5]}, 150.0),
    ])  # fmt: skip
    csrf = token(client)
    good = {"name": "depot", "kinds": ["geofence_enter", "geofence_exit"],
            "webhook": "https://hooks.example.com/x", "secret": SECRET,
            "fences": "Depot A, Cliente B,Depot A"}  # fmt: skip
    page = client.get("/rules").text
    assert 'name="fences" id="rule-fences" value=""' in page
    assert "Cercas" in page
    refusals: list[tuple[dict[str, Any], str]] = [
        ({**good, "fences": "Depot A, Nowhere"}, "cercas: não há cerca chamada &#39;Nowhere&#39;"),
        ({**good, "fences": " , "}, "cercas: informe o nome de uma cerca"),
        ({**good, "kinds": ["idle"]}, "cercas: uma regra com cercas precisa de um dos tipos"),
    ]
    for values, expected in refusals:
        answer = refused(client, csrf, values, expected)
        # What was typed is still there.
        assert f'name="fences" id="rule-fences" value="{values["fences"]}"' in answer.text
    assert stored(conn) == []
    english = client.post("/rules?lang=en", data=form(csrf, **{**good, "fences": "Nowhere"}))
    assert english.status_code == 400
    assert "fence: no fence named &#39;Nowhere&#39; (etrack geofences list)" in english.text
    assert client.get("/rules?lang=pt-BR").status_code == 200
    added = client.post("/rules", data=form(csrf, **good), follow_redirects=False)
    assert added.status_code == 303
    rule = get_rule(conn, "depot")
    assert rule is not None
    assert rule.fences == ("Depot A", "Cliente B")
    # A blank field: any fence, as without --fence.
    anywhere = client.post("/rules", data=form(csrf, **{**good, "name": "any", "fences": " "}),
                           follow_redirects=False)  # fmt: skip
    assert anywhere.status_code == 303
    any_rule = get_rule(conn, "any")
    assert any_rule is not None
    assert any_rule.fences is None
    page = client.get("/rules").text
    assert "Cercas Depot A, Cliente B" in row(page, "depot")["text"]
    assert "todos os veículos" in row(page, "depot")["text"]
    assert "Cercas" not in row(page, "any")["text"]
    assert "Fences Depot A, Cliente B" in row(client.get("/rules?lang=en").text, "depot")["text"]


def test_a_generated_secret_is_shown_once_and_nowhere_else(
    client: TestClient, conn: db.Conn, caplog: pytest.LogCaptureFixture
) -> None:
    csrf = token(client)
    answer = client.post(
        "/rules",
        data=form(csrf, name="hook", kinds=["offline"], webhook="https://hooks.example.com/t"),
        follow_redirects=False,
    )
    # Rendered, not redirected: the secret is in this answer only.
    assert answer.status_code == 200
    rule = get_rule(conn, "hook")
    assert rule is not None
    assert rule.secret is not None
    assert len(rule.secret) >= 32
    shown = re.search(r'<code id="secret-value">([^<]+)</code>', answer.text)
    assert shown
    assert shown.group(1) == rule.secret
    assert answer.text.count(rule.secret) == 1
    assert "regra hook adicionada" in answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert rule.secret not in session_text(client)
    assert rule.secret not in answer.headers.get("set-cookie", "")
    later = client.get("/rules")
    assert rule.secret not in later.text
    assert 'id="secret-value"' not in later.text
    assert "hook" in rule_names(later.text)
    assert rule.secret not in caplog.text


def test_a_private_webhook_is_refused_when_told_so(
    rules_settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    deny = rules_settings.model_copy(update={"etrack_webhook_deny_private": True})
    with client_for(deny, target) as client:
        answer = client.post(
            "/rules",
            data=form(token(client), name="local", kinds=["idle"],
                      webhook="http://127.0.0.1:9/in"),
        )  # fmt: skip
    assert answer.status_code == 400
    assert "aponta para um endereço não público (127.0.0.1)" in answer.text
    assert stored(conn) == []


# --------------------------------------------------------- remove, pause
def test_remove_and_pause_resume(
    client: TestClient, conn: db.Conn, rules_settings: Settings, target: db.Target
) -> None:
    csrf = token(client)
    webhook_rule(conn, "gone", "https://hooks.example.com/a")
    webhook_rule(conn, "quiet", "https://hooks.example.com/b")
    assert client.post("/rules/gone/remove", data={}).status_code == 403
    unconfirmed = client.post("/rules/gone/remove", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 400
    assert stored(conn).count("gone") == 1
    removed = client.post(
        "/rules/gone/remove", data={"csrf_token": csrf, "confirm": "1"}, follow_redirects=False
    )
    assert removed.status_code == 303
    assert flash_line(client) == "regra gone removida"
    assert stored(conn) == ["quiet"]
    gone = client.post("/rules/gone/remove", data={"csrf_token": csrf, "confirm": "1"})
    assert gone.status_code == 404
    assert (
        "a regra de alerta &#39;gone&#39; não existe"
        in client.post("/rules/gone/active", data={"csrf_token": csrf, "active": "0"}).text
    )

    assert client.post("/rules/quiet/active", data={"active": "0"}).status_code == 403
    assert (
        client.post("/rules/quiet/active", data={"csrf_token": csrf, "active": "x"}).status_code
        == 400
    )
    paused = client.post(
        "/rules/quiet/active", data={"csrf_token": csrf, "active": "0"}, follow_redirects=False
    )
    assert paused.status_code == 303
    assert flash_line(client) == "regra quiet pausada"
    rule = get_rule(conn, "quiet")
    assert rule is not None
    assert rule.active is False
    page = client.get("/rules").text
    assert row(page, "quiet")["active"] == "0"
    assert "Retomar" in row(page, "quiet")["text"]
    # A paused rule's events are not queued.
    event = add_event(conn)
    assert with_app(rules_settings, target, queue_alerts) == 0
    assert states(conn, "quiet") == {}
    resumed = client.post(
        "/rules/quiet/active", data={"csrf_token": csrf, "active": "1"}, follow_redirects=False
    )
    assert resumed.status_code == 303
    assert flash_line(client) == "regra quiet retomada"
    assert row(client.get("/rules").text, "quiet")["active"] == "1"
    # Resumed, the events of the pause still younger than ETRACK_ALERT_MAX_AGE go out.
    assert with_app(rules_settings, target, queue_alerts) == 1
    assert states(conn, "quiet") == {event: "queued"}


def test_a_pair_queued_before_a_pause_waits_and_goes_out_after_the_resume(
    make_hook: Callable[[int], Hook], rules_settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    hook = make_hook(200)
    webhook_rule(conn, "held", hook.url)
    event = add_event(conn)
    assert with_app(rules_settings, target, queue_alerts) == 1
    # Paused after the job was deferred, before a worker took it.
    assert set_rule_active(conn, "held", False)

    def job_done() -> bool:
        found = conn.execute(
            "SELECT status FROM procrastinate_jobs WHERE task_name = 'etrack.deliver_alert'"
        ).fetchall()
        return found == [("succeeded",)]

    asyncio.run(run_workers(rules_settings, target, workers=1, until=job_done))
    assert hook.count() == 0
    assert states(conn, "held") == {event: "queued"}
    assert conn.execute("SELECT attempts FROM alert_sends").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)
    run = conn.execute(
        "SELECT status, summary FROM job_runs WHERE kind = 'deliver_alert' ORDER BY id DESC"
    ).fetchone()
    assert run is not None
    assert run[0] == "skipped"
    assert "paused" in run[1]
    # While paused, the queueing leaves the pair alone (no job every fetch).
    assert with_app(rules_settings, target, queue_alerts) == 0
    assert set_rule_active(conn, "held", True)
    assert with_app(rules_settings, target, queue_alerts) == 1
    asyncio.run(
        run_workers(
            rules_settings, target, workers=1,
            until=lambda: states(conn, "held") == {event: "sent"},
        )
    )  # fmt: skip
    assert hook.count() == 1
    headers, _ = hook.requests[0]
    assert headers["Idempotency-Key"] == str(event)


# -------------------------------------------------------- test, failures
def test_the_test_button_sends_a_synthetic_event_to_a_real_receiver(
    client: TestClient, make_hook: Callable[[int], Hook], conn: db.Conn
) -> None:
    csrf = token(client)
    good, down = make_hook(202), make_hook(500)
    webhook_rule(conn, "good", good.url, plates=["ABC1234"], kinds=("idle", "overspeed"))
    webhook_rule(conn, "down", down.url)
    assert client.post("/rules/good/test", data={}).status_code == 403
    assert good.count() == 0
    sent = client.post("/rules/good/test", data={"csrf_token": csrf}, follow_redirects=False)
    assert sent.status_code == 303
    assert flash_line(client) == "teste da regra good: entregue (HTTP 202)"
    assert good.count() == 1
    headers, body = good.requests[0]
    assert verify(body, SECRET, headers["X-Etrack-Signature"])
    payload = json.loads(body)
    assert payload["test"] is True
    assert payload["rule"] == "good"
    assert (payload["event"]["kind"], payload["event"]["placa"]) == ("idle", "ABC1234")
    failed = client.post("/rules/down/test", data={"csrf_token": csrf}, follow_redirects=False)
    assert failed.status_code == 303
    line = flash_line(client)
    assert line == (
        f"teste da regra down: não entregue: webhook {safe_target(down.url)} respondeu HTTP 500: nope"
    )
    assert "t0ken" not in line
    assert down.count() == 1
    client.post("/rules/down/test", data={"csrf_token": csrf}, follow_redirects=False)
    english = client.get("/rules?lang=en")
    assert "test of rule down: not delivered: webhook" in english.text
    # Outside the bookkeeping, as `etrack alerts test`.
    assert conn.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)
    assert client.post("/rules/nothere/test", data={"csrf_token": csrf}).status_code == 404


def test_a_receiver_that_always_fails_shows_failed_on_the_page(
    client: TestClient,
    make_hook: Callable[[int], Hook],
    conn: db.Conn,
    rules_settings: Settings,
    target: db.Target,
) -> None:
    hook = make_hook(503)
    webhook_rule(conn, "broken", hook.url)
    event = add_event(conn)
    assert with_app(rules_settings, target, queue_alerts) == 1
    asyncio.run(
        run_workers(
            rules_settings, target, workers=1,
            until=lambda: states(conn, "broken") == {event: "failed"},
        )
    )  # fmt: skip
    assert hook.count() == 3  # ETRACK_ALERT_ATTEMPTS
    broken = row(client.get("/rules").text, "broken")
    assert (broken["queued"], broken["sent"], broken["failed"]) == ("0", "0", "1")
    assert f"webhook {safe_target(hook.url)} respondeu HTTP 503: nope" in broken["text"]
    assert "t0ken" not in broken["text"]


# ------------------------------------------------------------------ scope
def test_a_user_restricted_to_some_accounts_sees_and_changes_only_their_rules(
    rules_settings: Settings, target: db.Target, conn: db.Conn, make_hook: Callable[[int], Hook]
) -> None:
    conn.execute(
        "INSERT INTO terminals (placa, account) VALUES ('ABC1234', 'north'), ('DEF5678', 'south')"
    )
    hook = make_hook(200)
    webhook_rule(conn, "mine", hook.url, plates=["ABC1234"])
    webhook_rule(conn, "theirs", hook.url, plates=["DEF5678"])
    webhook_rule(conn, "mixed", hook.url, plates=["ABC1234", "DEF5678"])
    webhook_rule(conn, "everyone", hook.url)
    restricted = rules_settings.model_copy(update={"etrack_web_accounts": "north"})
    with client_for(restricted, target) as client:
        csrf = token(client)
        page = client.get("/rules").text
        assert rule_names(page) == ["mine"]
        assert "DEF5678" not in page
        for name in ("theirs", "mixed", "everyone"):
            for action, data in (
                ("remove", {"confirm": "1"}),
                ("test", {}),
                ("active", {"active": "0"}),
            ):
                answer = client.post(f"/rules/{name}/{action}", data={"csrf_token": csrf, **data})
                assert answer.status_code == 404, (name, action)
        assert hook.count() == 0
        assert stored(conn) == ["everyone", "mine", "mixed", "theirs"]
        assert all(r[0] for r in conn.execute("SELECT active FROM alert_rules").fetchall())
        base = {"kinds": ["idle"], "webhook": hook.url, "secret": SECRET}
        for values, expected in (
            ({"name": "n1"}, "placas: informe as placas da regra"),
            ({"name": "n2", "fleet": "norte"}, "placas: informe as placas da regra"),
            ({"name": "n3", "plates": "ABC1234, DEF5678"}, "placas: alguns destes veículos"),
        ):
            answer = client.post("/rules", data=form(csrf, **base, **values))
            assert answer.status_code == 400, values
            assert expected in answer.text
        ok = client.post(
            "/rules", data=form(csrf, **base, name="n4", plates="ABC1234"), follow_redirects=False
        )
        assert ok.status_code == 303
        assert client.post("/rules/mine/test", data={"csrf_token": csrf}).status_code == 200
        assert hook.count() == 1
        paused = client.post("/rules/mine/active", data={"csrf_token": csrf, "active": "0"})
        assert paused.status_code == 200
        removed = client.post("/rules/mine/remove", data={"csrf_token": csrf, "confirm": "1"})
        assert removed.status_code == 200
    assert stored(conn) == ["everyone", "mixed", "n4", "theirs"]
    # Unrestricted, a page's ?account= choice (kept in a cookie) filters
    # views, not permissions: every rule stays listed and manageable.
    with client_for(rules_settings, target) as client:
        client.get("/?account=north")
        assert client.cookies.get("etrack_account") == "north"
        assert rule_names(client.get("/rules").text) == ["everyone", "mixed", "n4", "theirs"]
        paused = client.post(
            "/rules/theirs/active", data={"csrf_token": token(client), "active": "0"}
        )
        assert paused.status_code == 200


def test_the_database_down_is_a_503_not_a_500(rules_settings: Settings) -> None:
    down = db.Target("postgresql://nobody@127.0.0.1:1/none", "e_track", embedded=False)
    with client_for(rules_settings, down) as client:
        answer = client.get("/rules")
    assert answer.status_code == 503


# -------------------------------------------------------------------- cli
def test_cli_pause_and_resume(run_etrack: RunEtrack, database_url: str, conn: db.Conn,
                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, _, err = run_etrack(
        "alerts", "add", "r", "--kind", "idle", "--webhook", "https://hooks.example.com/"
    )
    assert code == 0, err
    code, out, err = run_etrack("alerts", "pause", "r")
    assert (code, out, err) == (0, "rule r paused\n", "")
    assert conn.execute("SELECT active FROM alert_rules").fetchone() == (False,)
    assert "r (paused): idle" in run_etrack("alerts", "list")[1]
    code, out, _ = run_etrack("alerts", "resume", "r")
    assert (code, out) == (0, "rule r resumed\n")
    assert conn.execute("SELECT active FROM alert_rules").fetchone() == (True,)
    assert "r: idle" in run_etrack("alerts", "list")[1]
    for command in ("pause", "resume"):
        code, _, err = run_etrack("alerts", command, "missing")
        assert code == 2
        assert "no alert rule 'missing'" in err
        assert err.strip().count("\n") == 0


def test_the_page_is_no_part_of_the_api_schema(client: TestClient) -> None:
    assert client.get("/rules").headers["content-type"].startswith("text/html")
    assert "/rules" not in json.dumps(client.get("/openapi.json").json()["paths"])
