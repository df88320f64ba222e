"""Issue 14, the web's rough edges: Portuguese everywhere in the Portuguese UI
(error pages, the Jobs page, dates, the data browser, plurals, durations),
housekeeping runs hidden on the Jobs page, the login page and the remote 403
telling the truth about the network, and the API document at FastAPI's
conventional paths.

In-process over HTTP (Starlette's client) against a real PostgreSQL loaded
from the simulator."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from pydantic import SecretStr

from etrack.jobs.app import open_app
from etrack.jobs.env import JobEnv
from etrack.jobs.runs import finish_run, start_run
from etrack.web import create_app, i18n
from etrack.web.security import bind_hosts, hash_password
from integration.test_web_api import LOCAL, WebData, busiest_plate_day, loaded_web_data

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

REMOTE = "http://192.0.2.10:5001"


@pytest.fixture(scope="module")
def web_data(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebData]:
    data_dir = tmp_path_factory.mktemp("web-ptbr")
    with loaded_web_data(pg_server_url, template_database, data_dir, vehicles=6) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def client(web_data: WebData) -> Iterator[TestClient]:
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def text_of(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded."""
    body = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


# ------------------------------------------------------------ error pages
def test_error_pages_speak_portuguese(client: TestClient) -> None:
    unknown = client.get("/vehicles/ZZZ9Z99/2025-01-08")
    assert unknown.status_code == 404
    assert "veículo ZZZ9Z99 desconhecido" in text_of(unknown.text)
    assert "no vehicle" not in unknown.text
    reversed_range = client.get("/report?start=2025-01-05&end=2025-01-01")
    assert reversed_range.status_code == 400
    shown = text_of(reversed_range.text)
    assert "não pode ser antes do início" in shown, shown
    assert "must" not in shown
    bad_day = client.get("/vehicles/ABC1234/2025-02-31")
    assert bad_day.status_code == 422
    assert "não existe no calendário" in text_of(bad_day.text)
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert "página não encontrada" in text_of(missing.text)
    # The JSON API keeps its English (scripts match on it), and so does the
    # English UI.
    api = client.get("/api/report?start=2025-01-05&end=2025-01-01")
    assert "before" in api.json()["detail"]
    english = client.get("/vehicles/ZZZ9Z99/2025-01-08?lang=en")
    assert "no vehicle ZZZ9Z99" in english.text
    client.cookies.clear()


# --------------------------------------------------------------- jobs page
async def _record_runs(web_data: WebData) -> None:
    env = JobEnv(web_data.settings, web_data.target)
    async with open_app(env, schedule=False, max_pool=2) as app:
        plate, day = busiest_plate_day(web_data)
        partition = await start_run(
            app, kind="backfill_partition", args={"placa": plate, "day": day.isoformat()}
        )
        await finish_run(
            app,
            partition,
            status="succeeded",
            counts={"received": 1, "inserted": 1, "trips": 3},
            summary=f"{plate} {day.isoformat()}: {{'received': 1, 'inserted': 1, 'trips': 3}}",
        )
        # A minute's worth of housekeeping after it, more than the page shows.
        for _ in range(40):
            run = await start_run(app, kind="recover_stalled", args={"timestamp": 1})
            await finish_run(app, run, status="succeeded", counts={"retried": 0}, summary="none")


def test_jobs_page_in_portuguese_without_housekeeping(
    client: TestClient, web_data: WebData
) -> None:
    asyncio.run(_record_runs(web_data))
    page = client.get("/jobs")
    assert page.status_code == 200
    shown = text_of(page.text)
    # Statuses and kinds in Portuguese, counts as words, never a Python dict.
    assert "concluída" in shown
    assert "succeeded" not in shown
    assert "Backfill: um veículo-dia" in shown
    assert "1 posição recebida, 1 inserida, 3 viagens do provedor" in shown, re.findall(
        r"posi.{0,80}", shown
    )
    assert "{'" not in shown
    assert "{&#39;" not in page.text
    # Dates as DD/MM/YYYY HH:MM, no seconds.
    starts = re.findall(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}(?::\d{2})?", shown)
    assert starts
    assert all(len(s) == 16 for s in starts), starts
    # Housekeeping hidden by default, the partition still listed although
    # 40 newer recover_stalled runs came after it.
    assert 'data-kind="recover_stalled"' not in page.text
    assert 'data-kind="backfill_partition"' in page.text
    assert "mostrar manutenção" in shown
    everything = client.get("/jobs?maintenance=1")
    assert everything.status_code == 200
    assert 'data-kind="recover_stalled"' in everything.text
    assert "ocultar manutenção" in text_of(everything.text)
    # The API lists every run, as before.
    kinds = {r["kind"] for r in client.get("/api/jobs/runs?limit=100").json()["runs"]}
    assert "recover_stalled" in kinds


# ---------------------------------------------- dates, booleans, durations
def test_data_browser_shows_local_time_and_sim_nao(client: TestClient, web_data: WebData) -> None:
    plate = web_data.plates[0]
    page = client.get(f"/db/positions?plate={plate}")
    assert page.status_code == 200
    first_id = re.search(rf"/db/positions/({plate}@[^\"]+)\"", page.text)
    assert first_id
    key = unquote(html.unescape(first_id.group(1)))
    moment = datetime.fromisoformat(key.partition("@")[2])
    local = moment.astimezone(web_data.settings.tz).strftime("%d/%m/%Y %H:%M:%S")
    shown = text_of(page.text)
    assert local in shown
    if moment.astimezone(web_data.settings.tz).utcoffset() != timedelta(0):
        assert moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") not in shown
    cells = re.findall(r"<td>([^<]*)</td>", page.text)
    assert {"Sim", "Não"} & set(cells)
    assert not {"True", "False"} & set(cells)


def test_durations_are_h_mm_and_one_vehicle_is_singular(
    client: TestClient, web_data: WebData
) -> None:
    plate, day = busiest_plate_day(web_data)
    page = client.get(f"/vehicles/{plate}/{day.isoformat()}")
    assert page.status_code == 200
    figures = re.findall(r"<dd>(\d+:\d\d(?::\d\d)?)</dd>", page.text)
    assert figures
    assert all(re.fullmatch(r"\d+:\d\d", f) for f in figures), figures
    report = client.get(f"/report?start={day.isoformat()}&end={day.isoformat()}")
    cells = re.findall(r'<td class="num duration">([^<]*)</td>', report.text)
    assert cells
    assert all(re.fullmatch(r"\d+:\d\d", c) for c in cells), cells
    assert "(h:mm)" in report.text
    fleet = web_data.sim.fleet.vehicle(plate).frota
    members = [p for p in web_data.plates if web_data.sim.fleet.vehicle(p).frota == fleet]
    one = client.get(
        "/report", params={"start": day.isoformat(), "end": day.isoformat(), "frota": fleet}
    )
    count = re.search(r'id="report-count">([^<]*)<', one.text)
    assert count
    expected = "1 veículo" if len(members) == 1 else f"{len(members)} veículos"
    assert count.group(1) == expected
    assert i18n.plural(1, "vehicle") == "1 veículo"
    assert i18n.plural(2, "vehicle") == "2 veículos"
    assert i18n.plural(1, "vehicle", "en") == "1 vehicle"


# ------------------------------------------------------ login and network
def test_the_login_page_tells_the_truth_about_the_network(web_data: WebData) -> None:
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as local:
        shown = text_of(local.get("/login").text)
        assert "acessível pela rede" not in shown
        assert "atende só a este computador" in shown
    with TestClient(app, base_url=REMOTE) as remote:
        assert "acessível pela rede" in text_of(remote.get("/login").text)


def test_the_remote_403_is_a_portuguese_page_and_logged_once(
    web_data: WebData, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with caplog.at_level(logging.WARNING), TestClient(app, base_url=REMOTE) as remote:
        refused = remote.get("/")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("text/html")
        shown = text_of(refused.text)
        assert "ETRACK_WEB_USER" in shown
        assert "ETRACK_WEB_PASSWORD" in shown
        assert "acesso pela rede" in shown
        assert remote.get("/report").status_code == 403
        english = remote.get("/?lang=en")
        assert "To allow access over the network" in english.text
    lines = [r for r in caplog.records if "needs a login" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING


def test_a_remote_bind_without_login_warns_at_start(
    web_data: WebData, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    everywhere = "0.0.0.0"  # noqa: S104 - the address under test, nothing binds it
    argv = ["gunicorn", "-w", "1", "-b", f"{everywhere}:5001", "e-track.web_ui:app"]
    assert bind_hosts(argv, {}) == [everywhere]
    assert bind_hosts(["gunicorn"], {"GUNICORN_CMD_ARGS": "--bind=127.0.0.1:5001"}) == ["127.0.0.1"]
    monkeypatch.setattr("sys.argv", argv)
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with caplog.at_level(logging.WARNING), TestClient(app, base_url=LOCAL):
        pass
    warned = [r.getMessage() for r in caplog.records if everywhere in r.getMessage()]
    assert len(warned) == 1, warned
    assert "ETRACK_WEB_USER/ETRACK_WEB_PASSWORD" in warned[0]
    # On loopback, or with a login, nothing to warn about.
    caplog.clear()
    monkeypatch.setattr("sys.argv", ["gunicorn", "-b", "127.0.0.1:5001", "x:app"])
    quiet = create_app(web_data.settings, web_data.target, scheduler=False)
    with caplog.at_level(logging.WARNING), TestClient(quiet, base_url=LOCAL):
        pass
    assert not [r for r in caplog.records if "without ETRACK_WEB_USER" in r.getMessage()]


# -------------------------------------------------------------- API docs
def test_openapi_and_docs_at_the_conventional_paths(web_data: WebData) -> None:
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as local:
        conventional = local.get("/openapi.json")
        assert conventional.status_code == 200
        assert conventional.json() == local.get("/api/openapi.json").json()
        docs = local.get("/docs")
        assert docs.status_code == 200
        assert 'data-path="/api/vehicles"' in docs.text
        assert 'href="/openapi.json"' in docs.text
    # Open like /api/openapi.json: over the network without a login, and
    # without a session when a login is configured.
    with TestClient(app, base_url=REMOTE) as remote:
        assert remote.get("/openapi.json").status_code == 200
        assert remote.get("/docs").status_code == 200
        assert remote.get("/api/vehicles").status_code == 403
    settings = web_data.settings.model_copy(
        update={
            "etrack_web_user": "admin",
            "etrack_web_password": SecretStr(hash_password("s3cret", iterations=1000)),
        }
    )
    guarded = create_app(settings, web_data.target, scheduler=False)
    with TestClient(guarded, base_url=REMOTE) as anonymous:
        assert anonymous.get("/api/openapi.json").status_code == 200
        assert anonymous.get("/openapi.json").status_code == 200
        assert anonymous.get("/docs").status_code == 200
        assert anonymous.get("/api/vehicles").status_code == 401
