"""The JSON API in-process (Starlette TestClient) against a real PostgreSQL
loaded from the simulator through the real collector, checked against the
simulator's ground truth."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

with warnings.catch_warnings():
    # Starlette's TestClient warns that it will move to httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from etrack.collect import open_collector
from etrack.config import Settings
from etrack.simulator.server import SimulatorHandle, build_config, run_in_thread
from etrack.store import db
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams
from etrack.web import create_app

TZ = ZoneInfo("America/Sao_Paulo")
SCHEMA = "e_track"
LOCAL = "http://127.0.0.1:5001"
_names = itertools.count()


# ----------------------------------------------------------- shared loader
@dataclass
class WebData:
    """A database loaded from the simulator, and what the tests compare with."""

    target: db.Target
    settings: Settings
    sim: SimulatorHandle
    plates: list[str]
    past_days: list[date]
    today: date


def simulator_now() -> datetime:
    # The simulator's "now" is the real now (to the minute), so the fleet map's
    # states (moving / idle / off / stale) are the ones a user would see.
    return datetime.now(TZ).replace(second=0, microsecond=0)


def web_settings(database_url: str, sim: SimulatorHandle, data_dir: Path, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        etrack_data_dir=data_dir,
        etrac_api_base=sim.base_url,
        etrac_user=sim.user,
        etrac_key=SecretStr(sim.key),
        # A fixed fast pace: the simulator is local and has no limit.
        etrac_rate_limit=1000.0,
        etrac_rate_adapt=False,
        **extra,
    )


def load_through_collector(
    settings: Settings, target: db.Target, plates: list[str], days: list[date]
) -> None:
    """fetch-latest, then each plate-day's history and the provider's trips,
    through the real collector and the simulator over HTTP."""

    async def run() -> None:
        async with open_collector(settings, target) as collector:
            await collector.fetch_latest()
            gate = asyncio.Semaphore(8)

            async def one(plate: str, day: date) -> None:
                async with gate:
                    await collector.fetch_history_day(plate, day)
                    await collector.fetch_trips(plate, day)

            await asyncio.gather(*(one(p, d) for p in plates for d in days))

    asyncio.run(run())


def working_days(sim: SimulatorHandle, today: date) -> list[date]:
    """The two newest past days on which most vehicles drive (rest days make dull tests)."""
    days: list[date] = []
    day = today - timedelta(days=1)
    while len(days) < 2:
        driving = sum(1 for p in sim.fleet.plates() if sim.fleet.true_trips(p, day))
        if driving >= len(sim.fleet.plates()) // 2:
            days.append(day)
        day -= timedelta(days=1)
    return sorted(days)


@contextmanager
def cloned_database(pg_server_url: str, template: str) -> Iterator[str]:
    """A database of its own cloned from the migrated template (for a module's data)."""
    name = f"etrack_web_{os.getpid()}_{next(_names)}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield urlsplit(pg_server_url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def loaded_web_data(
    pg_server_url: str, template: str, data_dir: Path, *, vehicles: int = 10, **settings: Any
) -> Iterator[WebData]:
    """A simulator fleet loaded into a fresh database: latest positions, two
    past working days (routes stored) and today (routes computed live)."""
    now = simulator_now()
    config = build_config(seed=42, vehicles=vehicles, now=now)
    with cloned_database(pg_server_url, template) as url, run_in_thread(config) as sim:
        target = db.Target(url, SCHEMA, embedded=False)
        current = web_settings(url, sim, data_dir, **settings)
        today = now.date()
        past = working_days(sim, today)
        plates = sorted(sim.fleet.plates())
        load_through_collector(current, target, plates, [*past, today])
        compute_routes(target, RouteParams.from_settings(current), plates=plates, days=past)
        yield WebData(target, current, sim, plates, past, today)


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def web_data(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebData]:
    data_dir = tmp_path_factory.mktemp("web-data")
    with loaded_web_data(pg_server_url, template_database, data_dir) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def client(web_data: WebData) -> Iterator[TestClient]:
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def busiest_plate_day(data: WebData) -> tuple[str, date]:
    day = data.past_days[-1]
    plate = max(data.plates, key=lambda p: len(data.sim.fleet.true_trips(p, day)))
    return plate, day


# ------------------------------------------------------------------- tests
def test_vehicles_lists_the_whole_fleet_with_latest_positions(
    client: TestClient, web_data: WebData
) -> None:
    response = client.get("/api/vehicles")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == len(web_data.plates)
    by_plate = {v["placa"]: v for v in body["vehicles"]}
    assert sorted(by_plate) == web_data.plates
    for plate, vehicle in by_plate.items():
        truth = web_data.sim.fleet.vehicle(plate)
        assert vehicle["descricao"] == truth.descricao
        assert vehicle["frota"] == truth.frota
        assert vehicle["state"] in ("moving", "idle", "off", "stale")
        assert vehicle["lat"] is not None
        assert vehicle["lon"] is not None
        assert datetime.fromisoformat(vehicle["ts"]) <= datetime.now(TZ)


def test_vehicles_filters_and_one_vehicle(client: TestClient, web_data: WebData) -> None:
    plate = web_data.plates[0]
    fleet = web_data.sim.fleet.vehicle(plate).frota
    by_plate = client.get("/api/vehicles", params={"plate": plate[:4].lower()}).json()
    assert plate in {v["placa"] for v in by_plate["vehicles"]}
    assert all(plate[:4] in v["placa"] for v in by_plate["vehicles"])
    by_fleet = client.get("/api/vehicles", params={"frota": fleet}).json()
    assert by_fleet["count"] >= 1
    assert {v["frota"] for v in by_fleet["vehicles"]} == {fleet}
    one = client.get(f"/api/vehicles/{plate[:3]}-{plate[3:]}")
    assert one.status_code == 200
    assert one.json()["placa"] == plate


def test_positions_of_a_day_are_paged_and_match_the_simulator(
    client: TestClient, web_data: WebData
) -> None:
    plate, day = busiest_plate_day(web_data)
    expected = sorted(
        {e.data_transmissao for e in web_data.sim.fleet.expected_positions(plate, day)}
    )
    seen: list[datetime] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"date": day.strftime("%d/%m/%Y"), "limit": 100}
        if cursor:
            params["cursor"] = cursor
        body = client.get(f"/api/positions/{plate}", params=params).json()
        pages += 1
        seen.extend(datetime.fromisoformat(p["data_transmissao"]) for p in body["positions"])
        assert body["count"] <= 100
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == -(-len(expected) // 100)
    assert seen == expected
    ranged = client.get(
        f"/api/vehicles/{plate}/positions",
        params={"start": day.isoformat(), "end": day.isoformat(), "limit": 5000},
    ).json()
    assert ranged["count"] == len(expected)


def test_route_of_a_day_is_geojson_with_the_stored_figures(
    client: TestClient, web_data: WebData
) -> None:
    plate, day = busiest_plate_day(web_data)
    response = client.get(f"/api/vehicles/{plate}/days/{day.isoformat()}/route")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    feature = response.json()
    assert feature["type"] == "Feature"
    assert feature["geometry"]["type"] == "LineString"
    props = feature["properties"]
    valid = [e for e in web_data.sim.fleet.expected_positions(plate, day) if e.quality == "valid"]
    assert props["stored"] is True
    assert props["point_count"] == len(valid)
    assert props["trip_count"] == len(web_data.sim.fleet.true_trips(plate, day))
    assert len(feature["geometry"]["coordinates"]) >= len(valid)
    simplified = client.get(
        f"/api/vehicles/{plate}/days/{day.isoformat()}/route", params={"simplified": "true"}
    ).json()
    assert len(simplified["geometry"]["coordinates"]) < len(feature["geometry"]["coordinates"])


def test_today_is_computed_live(client: TestClient, web_data: WebData) -> None:
    fleet = web_data.sim.fleet
    with_points = [
        p
        for p in web_data.plates
        if any(e.quality == "valid" for e in fleet.expected_positions(p, web_data.today))
    ]
    if not with_points:
        pytest.skip("no vehicle reported yet today (just after midnight)")
    body = client.get(f"/api/vehicles/{with_points[0]}/days/{web_data.today.isoformat()}").json()
    assert body["stored"] is False
    assert body["points"]


def test_day_detail_trips_stops_and_provider_trips(client: TestClient, web_data: WebData) -> None:
    plate, day = busiest_plate_day(web_data)
    detail = client.get(f"/api/vehicles/{plate}/days/{day.isoformat()}").json()
    truth = web_data.sim.fleet.true_trips(plate, day)
    assert len(detail["trips"]) == len(truth)
    assert detail["stops"]
    assert len(detail["points"]) == detail["stats"]["point_count"]
    trips = client.get(f"/api/vehicles/{plate}/days/{day.isoformat()}/trips").json()
    assert len(trips["provider_trips"]) == len(web_data.sim.fleet.trip_summaries(plate, day))
    assert trips["comparison"] is not None
    stops = client.get(f"/api/vehicles/{plate}/days/{day.isoformat()}/stops").json()
    assert stops["stops"] == detail["stops"]


def test_seed_routes_url(client: TestClient, web_data: WebData) -> None:
    plate, day = busiest_plate_day(web_data)
    one = client.get(f"/api/routes/{plate}", params={"date": day.strftime("%d/%m/%Y")}).json()
    assert one["type"] == "FeatureCollection"
    assert [f["properties"]["rota_date"] for f in one["features"]] == [day.isoformat()]
    newest = client.get(f"/api/routes/{plate}").json()
    listed = {f["properties"]["rota_date"] for f in newest["features"]}
    assert {d.isoformat() for d in web_data.past_days} <= listed


def test_exports(client: TestClient, web_data: WebData) -> None:
    plate, day = busiest_plate_day(web_data)
    base = f"/api/vehicles/{plate}/days/{day.isoformat()}/export"
    geo = client.get(f"{base}/geojson")
    assert geo.status_code == 200
    assert "attachment" in geo.headers["content-disposition"]
    kinds = [f["geometry"]["type"] for f in geo.json()["features"]]
    assert kinds[0] == "LineString"
    assert "Point" in kinds
    gpx = client.get(f"{base}/gpx")
    assert gpx.text.startswith("<?xml")
    assert "<trkpt" in gpx.text
    rows = list(csv.DictReader(io.StringIO(client.get(f"{base}/csv").text)))
    valid = [e for e in web_data.sim.fleet.expected_positions(plate, day) if e.quality == "valid"]
    assert len(rows) == len(valid)
    assert rows[0]["data_transmissao"].endswith("-03:00")


def test_summaries_and_report(client: TestClient, web_data: WebData) -> None:
    first, last = web_data.past_days
    span = {"start": first.isoformat(), "end": last.isoformat()}
    body = client.get("/api/summaries", params=span).json()
    assert body["count"] == len(web_data.plates) * 2
    one = client.get("/api/summaries", params={**span, "plate": web_data.plates[0]}).json()
    assert {r["placa"] for r in one["rows"]} == {web_data.plates[0]}
    report = client.get(
        "/api/report", params={**span, "sort": "distance_km", "order": "desc"}
    ).json()
    distances = [float(r["distance_km"]) for r in report["rows"]]
    assert distances == sorted(distances, reverse=True)
    assert all(r["days"] == 2 for r in report["rows"])
    xlsx = client.get("/api/report/export/xlsx", params=span)
    assert xlsx.content[:2] == b"PK"
    report_csv = client.get("/api/report/export/csv", params=span).text
    assert len(report_csv.strip().splitlines()) == len(web_data.plates) + 1


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/vehicles/XX1", 422, "expected a Brazilian plate"),
        ("/api/positions/ABC1234?date=32/01/2025", 422, "is not a day of the calendar"),
        ("/api/positions/ABC1234?start=2025-01-01&end=2025-03-01", 400, "at most 31 days"),
        ("/api/positions/ABC1234?date=2025-01-01&start=2025-01-01", 400, "either date"),
        ("/api/positions/ABC1234?limit=100000", 422, "limit"),
        ("/api/positions/ABC1234?cursor=yesterday", 422, "cursor"),
        ("/api/vehicles/ABC1234/days/2025-13-01/route", 422, "day: 2025-13-01 is not a day"),
        ("/api/vehicles/ABC1234/days/2025-01-01/route", 404, "no route"),
        ("/api/vehicles/ABC1234/days/2025-01-01/export/pdf", 422, "fmt"),
        ("/api/summaries?start=2025-01-02&end=2025-01-01", 400, "before start"),
        ("/api/report?sort=drop_table", 422, "sort"),
    ],
)
def test_bad_input_says_what_is_expected(
    client: TestClient, url: str, status: int, words: str
) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_openapi_document(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/api/vehicles",
        "/api/vehicles/{plate}/positions",
        "/api/vehicles/{plate}/days/{day}/route",
        "/api/positions/{plate}",
        "/api/routes/{plate}",
        "/api/summaries",
        "/healthz",
    ):
        assert path in doc["paths"], path


def test_healthz_and_metrics(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200
    body = health.json()
    assert body["database"]["reachable"] is True
    assert body["newest_position_age_s"] is not None
    assert body["scheduler"]["state"] == "disabled"
    client.get("/api/vehicles")
    client.get("/api/vehicles/XX")
    metrics = client.get("/metrics").text
    assert (
        'etrack_http_requests_total{endpoint="/api/vehicles",method="GET",outcome="ok"}' in metrics
    )
    assert 'endpoint="/api/vehicles/{plate}",method="GET",outcome="client_error"' in metrics
    assert "etrack_database_up 1.0" in metrics
    assert "etrack_fetch_lag_seconds" in metrics
    assert "etrack_vehicles 10.0" in metrics


def test_security_headers_and_no_stack_traces(client: TestClient) -> None:
    response = client.get("/api/vehicles")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "img-src 'self' data: https://tile.openstreetmap.org" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    missing = client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert "Traceback" not in missing.text


@pytest.mark.slow
def test_database_outage_is_a_503_without_details(web_data: WebData) -> None:
    broken = db.Target("postgresql://nobody@127.0.0.1:1/none", SCHEMA, embedded=False)
    app = create_app(web_data.settings, broken, scheduler=False)
    with TestClient(app, base_url=LOCAL, raise_server_exceptions=False) as bad:
        health = bad.get("/healthz")
        assert health.status_code == 503
        assert health.json()["database"]["reachable"] is False
        api = bad.get("/api/vehicles")
        assert api.status_code == 503
        assert "127.0.0.1:1" not in api.text
        assert "nobody" not in api.text
