"""The HTML pages, login, CSRF and the seed's URLs, in-process against a real
PostgreSQL loaded from the simulator; and the seed's gunicorn line for real."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from etrack.store import db
from etrack.web import create_app, i18n
from etrack.web.security import hash_password, verify_password
from fixtures_db import subprocess_env
from integration.test_web_api import LOCAL, WebData, busiest_plate_day, loaded_web_data

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def web_data(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebData]:
    data_dir = tmp_path_factory.mktemp("web-pages")
    with loaded_web_data(pg_server_url, template_database, data_dir) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def client(web_data: WebData) -> Iterator[TestClient]:
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def test_fleet_map_page(client: TestClient, web_data: WebData) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert '<html lang="pt-BR">' in page.text
    assert "Mapa da frota" in page.text
    assert "/static/leaflet/leaflet.js" in page.text
    assert 'id="scheduler-state" data-state="disabled"' in page.text
    assert client.get("/static/leaflet/leaflet.js").status_code == 200
    assert client.get("/static/app/fleet.js").status_code == 200
    fleet = web_data.sim.fleet.vehicle(web_data.plates[0]).frota
    assert f'<option value="{fleet}">' in page.text
    english = client.get("/?lang=en")
    assert "Fleet map" in english.text
    assert english.cookies.get("etrack_lang") == "en"
    client.cookies.clear()


def test_vehicle_day_page_lists_trips_and_stops(client: TestClient, web_data: WebData) -> None:
    plate, day = busiest_plate_day(web_data)
    page = client.get(f"/vehicles/{plate}/{day.isoformat()}")
    assert page.status_code == 200
    trips = re.findall(r'<li class="trip"', page.text)
    assert len(trips) == len(web_data.sim.fleet.true_trips(plate, day))
    assert 'id="day-data"' in page.text
    assert day.strftime("%d/%m/%Y") in page.text
    assert f"/api/vehicles/{plate}/days/{day.isoformat()}/export/gpx" in page.text
    # Decimal comma in pt-BR.
    assert re.search(r'id="fig-distance">\d+,\d km', page.text)


def test_seed_urls_redirect_to_the_vehicle_day(client: TestClient, web_data: WebData) -> None:
    plate, day = busiest_plate_day(web_data)
    for url in (
        f"/map?plate={plate}&date={day.strftime('%d/%m/%Y')}",
        f"/map-route?plate={plate[:3]}-{plate[3:]}&date={day.isoformat()}",
        f"/vehicles/{plate}/go?date={day.isoformat()}",
    ):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"] == f"/vehicles/{plate}/{day.isoformat()}"
    assert client.get("/map").status_code == 200
    bad = client.get("/map-route?plate=nope")
    assert bad.status_code == 422
    assert "placa inválida" in bad.text
    english = client.get("/map-route?plate=nope&lang=en")
    assert "expected a Brazilian plate" in english.text
    client.cookies.clear()


def test_report_page_sorts(client: TestClient, web_data: WebData) -> None:
    first, last = web_data.past_days
    page = client.get(
        "/report",
        params={
            "start": first.isoformat(),
            "end": last.isoformat(),
            "sort": "distance_km",
            "order": "desc",
        },
    )
    assert page.status_code == 200
    values = [float(v) for v in re.findall(r'data-value="([0-9.]+)"', page.text)]
    assert len(values) == len(web_data.plates)
    assert values == sorted(values, reverse=True)
    assert "/api/report/export/xlsx?" in page.text


def test_data_browser_pages_through_every_table(client: TestClient, web_data: WebData) -> None:
    assert client.get("/db").status_code == 200
    for resource in ("terminals", "positions", "trips", "routes"):
        page = client.get(f"/db/{resource}")
        assert page.status_code == 200, resource
        links = re.findall(rf'href="(/db/{resource}/[^"]+)"', page.text)
        assert links, resource
        detail = client.get(links[0].replace("&#43;", "+"))
        assert detail.status_code == 200, links[0]
    positions = client.get("/db/positions")
    next_page = re.search(r'id="next-page" href="([^"]+)"', positions.text)
    assert next_page
    second = client.get(next_page.group(1).replace("&amp;", "&").replace("&#43;", "+"))
    assert second.status_code == 200
    plate = web_data.plates[0]
    only = client.get(f"/db/positions?plate={plate}")
    assert set(re.findall(r"/db/positions/([A-Z0-9]{7})@", only.text)) == {plate}
    assert client.get("/db/secrets").status_code == 404


def test_login_csrf_and_network_rule(web_data: WebData) -> None:
    settings = web_data.settings.model_copy(
        update={
            "etrack_web_user": "admin",
            # model_copy does not validate: give the field its type.
            "etrack_web_password": SecretStr(hash_password("s3cret", iterations=1000)),
        }
    )
    app = create_app(settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as browser:
        assert browser.get("/", follow_redirects=False).headers["location"].startswith("/login")
        assert browser.get("/api/vehicles").status_code == 401
        form = browser.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        forged = browser.post("/login", data={"username": "admin", "password": "s3cret"})
        assert forged.status_code == 403
        wrong = browser.post(
            "/login", data={"username": "admin", "password": "nope", "csrf_token": token.group(1)}
        )
        assert wrong.status_code == 401
        ok = browser.post(
            "/login",
            data={
                "username": "admin",
                "password": "s3cret",
                "csrf_token": token.group(1),
                "next": "/report",
            },
            follow_redirects=False,
        )
        assert ok.status_code == 303
        assert ok.headers["location"] == "/report"
        assert browser.get("/api/vehicles").status_code == 200
    with TestClient(app, base_url=LOCAL) as script:
        assert script.get("/api/vehicles", auth=("admin", "s3cret")).status_code == 200
        assert script.get("/api/vehicles", auth=("admin", "wrong")).status_code == 401
    # ETRACK_WEB_USER became the first admin: without the variables a login
    # is still needed, loopback included, and the admin keeps its password.
    open_app = create_app(web_data.settings, web_data.target, scheduler=False)
    try:
        with TestClient(open_app, base_url=LOCAL) as local:
            assert local.get("/api/vehicles").status_code == 401
            assert local.get("/api/vehicles", auth=("admin", "s3cret")).status_code == 200
    finally:
        with db.connection(web_data.target) as conn:
            conn.execute("DELETE FROM users")
    # No user at all: loopback is served, the network is refused.
    open_app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(open_app, base_url="http://192.0.2.10:5001") as remote:
        refused = remote.get("/api/vehicles")
        assert refused.status_code == 403
        assert "etrack users add" in refused.json()["detail"]
        assert remote.get("/healthz").status_code == 200


def test_password_hash_round_trip() -> None:
    stored = hash_password("correct horse", iterations=1000)
    assert stored.startswith("pbkdf2_sha256$1000$")
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    assert verify_password("plain", "plain")
    assert not verify_password("plain", "plainer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}")
        try:
            return httpx.get(url, timeout=2.0)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(
            ["gunicorn", "-w", "1", "-b", "{bind}", "e-track.web_ui:app"], id="gunicorn-wsgi"
        ),
        pytest.param([sys.executable, "e-track/web_ui.py", "--port", "{port}"], id="python-web_ui"),
    ],
)
def test_the_seed_command_lines_serve_the_ui(
    web_data: WebData, tmp_path: Path, command: list[str]
) -> None:
    port = free_port()
    argv = [a.replace("{bind}", f"127.0.0.1:{port}").replace("{port}", str(port)) for a in command]
    if argv[0] == "gunicorn":
        argv[0] = str(Path(sys.executable).parent / "gunicorn")
    env = subprocess_env(
        DATABASE_URL=web_data.target.conninfo,
        DISABLE_UI_SCHEDULER="1",
        ETRACK_DATA_DIR=str(tmp_path / "data"),
    )
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        health = wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        assert health.status_code == 200
        assert health.json()["scheduler"]["state"] == "disabled"
        vehicles = httpx.get(f"http://127.0.0.1:{port}/api/vehicles", timeout=10).json()
        assert vehicles["count"] == len(web_data.plates)
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert "Mapa da frota" in page.text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


FAST_JOBS = {
    "ETRACK_JOB_POLL_S": "0.2",
    "ETRACK_JOB_HEARTBEAT_S": "0.5",
    "ETRACK_JOB_STALLED_AFTER_S": "5",
}


def test_jobs_page_starts_a_backfill_the_embedded_scheduler_completes(
    web_data: WebData, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FAST_JOBS.items():
        monkeypatch.setenv(name, value)
    plate, day = busiest_plate_day(web_data)
    other = next(p for p in web_data.plates if p != plate)
    app = create_app(web_data.settings, web_data.target, scheduler=True)
    with TestClient(app, base_url=LOCAL) as browser:
        page = browser.get("/jobs")
        assert page.status_code == 200
        assert 'data-state="running"' in page.text or 'data-state="starting"' in page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        refused = browser.post("/jobs/fetch-latest", data={"csrf_token": "forged"})
        assert refused.status_code == 403
        started = browser.post(
            "/jobs/backfill",
            data={
                "csrf_token": token.group(1),
                "date_start": day.isoformat(),
                "date_end": day.isoformat(),
                "plates": f"{plate}, {other[:3]}-{other[3:]}",
                "with_trips": "1",
            },
        )
        assert started.status_code == 200
        assert "backfill nº" in started.text
        deadline = time.monotonic() + 90
        backfill: dict[str, object] = {}
        while time.monotonic() < deadline:
            found = browser.get("/api/backfills").json()["backfills"]
            if found and found[0]["finished_at"]:
                backfill = found[0]
                break
            time.sleep(0.5)
        assert backfill, "the backfill did not finish"
        assert backfill["partitions"] == {
            "total": 2, "done": 2, "running": 0, "pending": 0, "failed": 0, "retrying": 0,
        }  # fmt: skip
        assert "routes" in str(backfill["routes_summary"])
        assert (
            browser.post("/jobs/fetch-latest", data={"csrf_token": token.group(1)}).status_code
            == 200
        )
        runs = browser.get("/api/jobs/runs").json()["runs"]
        assert {"backfill_partition", "backfill_routes"} <= {r["kind"] for r in runs}
        page = browser.get("/jobs")
        # The English summary of the jobs layer, in the page's Portuguese.
        assert i18n.localize(str(backfill["routes_summary"]), "pt-BR") in page.text
        assert "rotas:" in page.text
