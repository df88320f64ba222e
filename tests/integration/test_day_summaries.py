"""Day summaries stored as rows (route_day_summaries, migration 0008): for the
simulator's fleet over a few days every stored row equals what the old
route_day_summary view computed from the routes, recomputing a day replaces
its row, pruning routes removes it, the migration fills it from the routes
an older database holds, and /api/summaries pages through it with a total."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

with warnings.catch_warnings():
    # Starlette's TestClient warns that it will move to httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from etrack.config import Settings
from etrack.model import Position, ProviderTrip
from etrack.provider.parse import parse_trip
from etrack.simulator.config import FleetConfig
from etrack.simulator.fleet import Fleet
from etrack.store import db, migrations
from etrack.store import positions as ingest
from etrack.store.queries import query
from etrack.store.retention import prune
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams
from etrack.web import create_app

TZ = ZoneInfo("America/Sao_Paulo")
DAYS = [date(2025, 3, 4), date(2025, 3, 5), date(2025, 3, 6)]
FLEET = Fleet(FleetConfig(seed=7, vehicles=6, now=datetime(2025, 3, 10, 12, 0, tzinfo=TZ)))
PARAMS = RouteParams(tz=TZ)

# The route_day_summary view as migration 0002 defined it, over routes: what
# every stored row must equal, column for column.
OLD_VIEW = """
SELECT r.placa,
       r.rota_date,
       t.descricao,
       t.frota,
       round((r.distance_m / 1000.0)::numeric, 3) AS distance_km,
       round((r.odometer_m / 1000.0)::numeric, 3) AS odometer_km,
       round(r.driving_s / 3600.0, 3) AS driving_h,
       round(r.idle_s / 3600.0, 3) AS idle_h,
       round(r.parked_s / 3600.0, 3) AS parked_h,
       round(r.max_speed_kmh::numeric, 1) AS max_speed_kmh,
       round(r.avg_speed_kmh::numeric, 1) AS avg_speed_kmh,
       round(r.over_limit_s / 3600.0, 3) AS over_limit_h,
       (r.params ->> 'speed_limit_kmh')::double precision AS speed_limit_kmh,
       r.trip_count,
       r.stop_count,
       r.point_count,
       r.invalid_count,
       r.start_ts,
       r.end_ts,
       (r.provider_comparison ->> 'provider_trips')::integer AS provider_trip_count,
       (r.provider_comparison ->> 'agrees')::boolean AS provider_agrees,
       r.computed_at
  FROM routes r
  LEFT JOIN terminals t ON t.placa = r.placa
"""

# The fleet report as it was computed over the old view (before 0008).
OLD_REPORT = f"""
SELECT placa, max(descricao) AS descricao, max(frota) AS frota, count(*) AS days,
       coalesce(sum(distance_km), 0) AS distance_km,
       coalesce(sum(driving_h), 0) AS driving_h,
       coalesce(sum(idle_h), 0) AS idle_h,
       coalesce(sum(parked_h), 0) AS parked_h,
       max(max_speed_kmh) AS max_speed_kmh,
       coalesce(sum(over_limit_h), 0) AS over_limit_h,
       coalesce(sum(trip_count), 0)::integer AS trip_count,
       max(speed_limit_kmh) AS speed_limit_kmh
  FROM ({OLD_VIEW}) v
 WHERE rota_date >= %(first)s AND rota_date <= %(last)s
   AND (%(frota)s::text IS NULL OR frota = %(frota)s::text)
 GROUP BY placa
 ORDER BY placa
"""


def position(e: Any) -> Position:
    vehicle = FLEET.vehicle(e.placa)
    return Position(
        e.placa, e.data_transmissao, e.latitude, e.longitude, e.velocidade, e.ignicao,
        e.odometro, None, e.horimetro, e.bateria, e.logradouro, vehicle.descricao,
        vehicle.frota, None, None, e.placa, e.quality, {},
    )  # fmt: skip


def store_provider_trips(conn: db.Conn, plate: str, day: date) -> int:
    trips = [parse_trip(raw, TZ) for raw in FLEET.trip_summaries(plate, day)]
    kept = [t for t in trips if isinstance(t, ProviderTrip)]
    ingest.store_trips(conn, kept, tz=TZ)
    return len(kept)


@pytest.fixture
def fleet(conn: db.Conn) -> list[str]:
    """The simulator's fleet stored over DAYS (the provider's trips for half
    the plates, so the comparison columns hold both values and NULLs) and its
    routes computed."""
    plates = sorted(FLEET.plates())
    for plate in plates:
        batch = [position(e) for day in DAYS for e in FLEET.expected_positions(plate, day)]
        ingest.store_positions(conn, batch)
    for plate in plates[::2]:
        for day in DAYS:
            store_provider_trips(conn, plate, day)
    compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    return plates


def old_view(conn: db.Conn) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT * FROM ({OLD_VIEW}) v ORDER BY rota_date, placa").fetchall()


def stored(conn: db.Conn) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT * FROM route_day_summary ORDER BY rota_date, placa").fetchall()


def column_types(conn: db.Conn, sql_text: str) -> list[tuple[str, int]]:
    cur = conn.execute(f"SELECT * FROM ({sql_text}) v LIMIT 0")
    return [(c.name, c.type_code) for c in cur.description or ()]


def test_stored_summaries_equal_the_old_view(conn: db.Conn, fleet: list[str]) -> None:
    expected = old_view(conn)
    assert len(expected) == len(fleet) * len(DAYS)
    # Both sides of the comparison columns occur, and real driving.
    assert {r[20] for r in expected} >= {True, None}
    assert any(r[4] > 0 for r in expected)
    assert stored(conn) == expected
    # Same names and types: SQL written against the view keeps working.
    assert column_types(conn, "SELECT * FROM route_day_summary") == column_types(conn, OLD_VIEW)
    # The rows are in the table itself, not computed by the view.
    count = conn.execute("SELECT count(*) FROM route_day_summaries").fetchone()
    assert count == (len(expected),)


def test_the_fleet_report_gives_the_old_numbers(conn: db.Conn, fleet: list[str]) -> None:
    frota = FLEET.vehicle(fleet[0]).frota
    for args in (
        {"first": DAYS[0], "last": DAYS[-1], "frota": None},
        {"first": DAYS[1], "last": DAYS[1], "frota": None},
        {"first": DAYS[0], "last": DAYS[-1], "frota": frota},
    ):
        expected = conn.execute(OLD_REPORT, args).fetchall()
        assert expected
        assert conn.execute(query("web_fleet_report"), args).fetchall() == expected


def test_recomputing_a_day_replaces_its_summary(conn: db.Conn, fleet: list[str]) -> None:
    before = stored(conn)
    # Unchanged days are skipped: nothing moves, not even computed_at.
    summary = compute_routes(conn, PARAMS, plates=fleet, days=DAYS)
    assert summary.computed == 0
    assert stored(conn) == before
    # Forced: one row per plate-day still, same numbers, a newer computed_at.
    compute_routes(conn, PARAMS, plates=fleet, days=DAYS[1:2], force=True)
    after = stored(conn)
    assert len(after) == len(before)
    assert [r[:-1] for r in after] == [r[:-1] for r in before]
    newer = {(r[0], r[1]) for r, b in zip(after, before, strict=True) if r[-1] > b[-1]}
    assert newer == {(p, DAYS[1]) for p in fleet}
    # New provider trips change a day: its summary follows its route.
    plate = next(p for p in fleet[1::2] if FLEET.trip_summaries(p, DAYS[2]))
    trips = store_provider_trips(conn, plate, DAYS[2])
    compute_routes(conn, PARAMS, plates=[plate], days=DAYS[2:])
    row = conn.execute(
        "SELECT provider_trip_count, provider_agrees FROM route_day_summary"
        " WHERE placa = %s AND rota_date = %s",
        (plate, DAYS[2]),
    ).fetchone()
    assert row is not None
    assert row[0] == trips
    assert row[1] is not None
    assert stored(conn) == old_view(conn)


def test_pruning_routes_removes_their_summaries(conn: db.Conn, fleet: list[str]) -> None:
    cutoff = datetime(DAYS[1].year, DAYS[1].month, DAYS[1].day, tzinfo=TZ)
    prune(conn, cutoff, routes=True)
    days = conn.execute("SELECT DISTINCT rota_date FROM route_day_summaries ORDER BY 1")
    assert [d for (d,) in days.fetchall()] == DAYS[1:]
    assert stored(conn) == old_view(conn)
    # A route deleted any other way takes its summary too.
    conn.execute("DELETE FROM routes WHERE placa = %s AND rota_date = %s", (fleet[0], DAYS[2]))
    gone = conn.execute(
        "SELECT count(*) FROM route_day_summaries WHERE placa = %s AND rota_date = %s",
        (fleet[0], DAYS[2]),
    ).fetchone()
    assert gone == (0,)


def test_the_migration_fills_summaries_from_existing_routes(
    conn: db.Conn, target: db.Target, fleet: list[str]
) -> None:
    expected = old_view(conn)
    # Back to a database from before 0008: routes, and the view over them.
    conn.execute("DROP TABLE route_day_summaries CASCADE")
    conn.execute(f"CREATE VIEW route_day_summary AS {OLD_VIEW}")
    conn.execute("DELETE FROM schema_migrations WHERE version = 8")
    result = migrations.upgrade(target)
    assert [m.version for m in result.applied] == [8]
    assert stored(conn) == expected
    count = conn.execute("SELECT count(*) FROM route_day_summaries").fetchone()
    assert count == (len(fleet) * len(DAYS),)


@pytest.fixture
def client(target: db.Target, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        etrack_data_dir=tmp_path,
    )
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as test_client:
        yield test_client


def pages(client: TestClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page of /api/summaries from the first, following `next`."""
    found = [client.get("/api/summaries", params=params).json()]
    while found[-1]["next"] is not None:
        assert len(found) < 100, "pages do not end"
        found.append(client.get(found[-1]["next"]).json())
    return found


def test_summaries_come_in_pages_with_a_total(
    client: TestClient, conn: db.Conn, fleet: list[str]
) -> None:
    span = {"start": DAYS[0].isoformat(), "end": DAYS[-1].isoformat()}
    whole = client.get("/api/summaries", params={**span, "limit": 1000}).json()
    assert whole["count"] == whole["total"] == len(fleet) * len(DAYS)
    assert whole["next"] is None
    assert whole["next_cursor"] is None
    assert [(r["placa"], r["rota_date"]) for r in whole["rows"]] == [
        (p, d.isoformat()) for d in DAYS for p in fleet
    ]
    # Pages of 4 (the total is not a multiple of 4): the same rows, in order.
    paged = pages(client, {**span, "limit": 4})
    assert [p["count"] for p in paged[:-1]] == [4] * (len(paged) - 1)
    assert 1 <= paged[-1]["count"] <= 4
    assert all(p["total"] == whole["total"] for p in paged)
    assert [r for p in paged for r in p["rows"]] == whole["rows"]
    # An exact multiple: the last full page says there is no next one.
    exact = pages(client, {**span, "limit": len(fleet)})
    assert [p["count"] for p in exact] == [len(fleet)] * len(DAYS)
    # Plates narrow the rows and the total alike.
    some = pages(client, {**span, "plate": ",".join(fleet[:2]), "limit": 2})
    assert all(p["total"] == 2 * len(DAYS) for p in some)
    assert {r["placa"] for p in some for r in p["rows"]} == set(fleet[:2])
    bad = client.get("/api/summaries", params={**span, "cursor": "yesterday"})
    assert bad.status_code == 422
    assert "cursor" in bad.json()["detail"]


def test_the_paging_is_in_the_openapi_document(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    operation = doc["paths"]["/api/summaries"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert {"start", "end", "plate", "limit", "cursor"} <= set(params)
    assert params["cursor"]["description"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    fields = doc["components"]["schemas"][name]["properties"]
    assert {"start", "end", "count", "rows", "total", "limit", "next_cursor", "next"} <= set(fields)


def test_the_report_endpoint_and_its_csv_give_the_old_numbers(
    client: TestClient, conn: db.Conn, fleet: list[str]
) -> None:
    args = {"first": DAYS[0], "last": DAYS[-1], "frota": None}
    expected = {r[0]: r for r in conn.execute(OLD_REPORT, args).fetchall()}
    span = {"start": DAYS[0].isoformat(), "end": DAYS[-1].isoformat()}
    rows = client.get("/api/report", params=span).json()["rows"]
    assert sorted(r["placa"] for r in rows) == fleet
    for r in rows:
        old = expected[r["placa"]]
        assert (r["days"], r["trip_count"]) == (old[3], old[10])
        assert float(r["distance_km"]) == float(old[4])
        assert float(r["driving_h"]) == float(old[5])
    report_csv = client.get("/api/report/export/csv", params=span).text
    assert len(report_csv.strip().splitlines()) == len(fleet) + 1
    first_plate = min(fleet)
    line = next(x for x in report_csv.splitlines() if x.startswith(first_plate))
    assert str(expected[first_plate][4]) in line
