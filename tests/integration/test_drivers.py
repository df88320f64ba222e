"""Drivers over a real PostgreSQL: identities from the provider's trips,
the attribution of detected trips (provider overlap, else a manual
assignment, else none) idempotent and redone after the trips are rewritten,
working days and their violations as events (twice = nothing written), and
the CLI and API over them."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from pypdf import PdfReader

from etrack.config import Settings
from etrack.drivers.compute import (
    JornadaParams,
    attribute_drivers,
    compute_violation_events,
    driver_days,
)
from etrack.store import db
from etrack.store import drivers as store
from etrack.web import create_app
from fixtures_cli import RunEtrack

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = ZoneInfo("America/Sao_Paulo")
DAY = date(2025, 3, 4)
PARAMS = JornadaParams(tz=TZ)
TRUCK, VAN = "ABC1D23", "XYZ9E87"


def at(hours: float, day: date = DAY) -> datetime:
    return datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=hours)


def route_trip(conn: db.Conn, placa: str, seq: int, start: datetime, end: datetime) -> None:
    day = start.astimezone(TZ).date()
    conn.execute(
        "INSERT INTO routes (placa, rota_date) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (placa, day),
    )
    conn.execute(
        "INSERT INTO route_trips (placa, rota_date, seq, start_ts, end_ts, distance_m, duration_s)"
        " VALUES (%s, %s, %s, %s, %s, 1000, %s)",
        (placa, day, seq, start, end, int((end - start).total_seconds())),
    )


def provider_trip(
    conn: db.Conn, placa: str, start: datetime, end: datetime, name: str, ident: str | None
) -> None:
    conn.execute(
        "INSERT INTO trips (placa, data_inicio_conducao, data_fim_conducao, rota_date, frota,"
        " condutor_nome, condutor_identificacao) VALUES (%s, %s, %s, %s, 'Carga', %s, %s)",
        (placa, start, end, start.astimezone(TZ).date(), name, ident),
    )


def attributed(conn: db.Conn) -> list[tuple[str, int, str | None, str | None]]:
    rows = conn.execute(
        "SELECT placa, seq, driver_id, driver_source FROM route_trips ORDER BY placa, rota_date, seq"
    ).fetchall()
    return [(str(p), int(s), d, src) for p, s, d, src in rows]


@pytest.fixture
def fleet(conn: db.Conn) -> None:
    """The truck: João (an id) 06:00-13:00 in one stretch (7 h: both driving
    limits), then Maria (a name only) in the afternoon; a trip the provider
    names nobody for; the van: one trip, no provider trip at all."""
    route_trip(conn, TRUCK, 1, at(6), at(13))
    route_trip(conn, TRUCK, 2, at(14), at(16))
    route_trip(conn, TRUCK, 3, at(17), at(17.5))
    route_trip(conn, VAN, 1, at(9), at(10))
    # The van stands 10:00-12:00 after it, the engine on for 10 minutes.
    conn.execute(
        "INSERT INTO route_stops (placa, rota_date, seq, start_ts, end_ts, duration_s,"
        " ignition_on_s) VALUES (%s, %s, 1, %s, %s, 7200, 600)",
        (VAN, DAY, at(10), at(12)),
    )
    provider_trip(conn, TRUCK, at(5.9), at(13.1), "João  Conceição", "CNH 123")
    # Overlaps trip 2 by 1 h 30; João's second record overlaps it 30 min.
    provider_trip(conn, TRUCK, at(13.9), at(15.5), "maria  da silva", None)
    provider_trip(conn, TRUCK, at(15.5), at(16.1), "Joao Conceicao", "CNH 123")
    provider_trip(conn, TRUCK, at(17), at(17.5), "", "")


def test_drivers_come_from_the_trips_and_each_trip_gets_the_most_overlapping(
    conn: db.Conn, fleet: None
) -> None:
    found = attribute_drivers(conn, None, DAY, DAY)
    assert (found.with_driver, found.without_driver) == (2, 2)
    drivers = {d.id: d for d in store.list_drivers(conn)}
    assert sorted(drivers) == ["CNH 123", "MARIA DA SILVA"]
    assert drivers["CNH 123"].name in {"João Conceição", "Joao Conceicao"}
    assert drivers["MARIA DA SILVA"].name == "maria da silva"
    assert drivers["CNH 123"].frota == "Carga"
    assert attributed(conn) == [
        (TRUCK, 1, "CNH 123", "provider"),
        (TRUCK, 2, "MARIA DA SILVA", "provider"),
        (TRUCK, 3, None, None),
        (VAN, 1, None, None),
    ]
    again = attribute_drivers(conn, None, DAY, DAY)
    assert again.written == 0


def test_an_assignment_fills_what_the_provider_does_not_and_survives_a_rewrite(
    conn: db.Conn, fleet: None
) -> None:
    attribute_drivers(conn, None, DAY, DAY)
    assert store.assign_driver(conn, "MARIA DA SILVA", VAN, at(8), at(12))
    assert not store.assign_driver(conn, "MARIA DA SILVA", VAN, at(8), at(12))
    assert store.assignment_overlap(conn, VAN, at(11), at(13)) == ("MARIA DA SILVA", at(8), at(12))
    attribute_drivers(conn, [VAN], DAY, DAY)
    assert attributed(conn)[3] == (VAN, 1, "MARIA DA SILVA", "assignment")
    # The routes are computed again (--force rewrites route_trips): the
    # attribution is a function of the trips and assignments, so it returns.
    before = attributed(conn)
    conn.execute("DELETE FROM route_trips")
    route_trip(conn, TRUCK, 1, at(6), at(13))
    route_trip(conn, TRUCK, 2, at(14), at(16))
    route_trip(conn, TRUCK, 3, at(17), at(17.5))
    route_trip(conn, VAN, 1, at(9), at(10))
    attribute_drivers(conn, None, DAY, DAY)
    assert attributed(conn) == before


def test_violations_become_events_once(conn: db.Conn, fleet: None) -> None:
    attribute_drivers(conn, None, DAY, DAY)
    (joao,) = driver_days(conn, DAY, DAY, PARAMS, ["CNH 123"])
    assert joao.driving_s == 7 * 3600  # 06:00-13:00: trip 2 is Maria's
    first = compute_violation_events(conn, DAY, DAY, PARAMS)
    assert (first.inserted, first.updated, first.deleted) == (2, 0, 0)
    events = conn.execute(
        "SELECT placa, kind, start_ts, value, limit_value, driver, rule FROM events"
        " ORDER BY start_ts"
    ).fetchall()
    assert events == [
        (TRUCK, "driving_time", at(11.5), 90.0, 330.0, joao.driver_name, "driver:CNH 123"),
        (TRUCK, "rest_time", at(12), 60.0, 360.0, joao.driver_name, "driver:CNH 123"),
    ]
    again = compute_violation_events(conn, DAY, DAY, PARAMS)
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    # The trip turns out shorter (recomputed routes): no violation, no event.
    conn.execute("UPDATE route_trips SET end_ts = %s WHERE placa = %s AND seq = 1", (at(11), TRUCK))
    gone = compute_violation_events(conn, DAY, DAY, PARAMS)
    assert gone.deleted == 2
    assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)


def test_merge_moves_trips_and_aliases(conn: db.Conn, fleet: None) -> None:
    attribute_drivers(conn, None, DAY, DAY)
    moved = store.merge_drivers(conn, "MARIA DA SILVA", "CNH 123")
    assert moved == 1
    assert [d.id for d in store.list_drivers(conn)] == ["CNH 123"]
    # A trip the provider still names Maria for goes to João from now on.
    route_trip(conn, TRUCK, 4, at(20), at(21))
    provider_trip(conn, TRUCK, at(20), at(21), "Maria da Silva", None)
    attribute_drivers(conn, None, DAY, DAY)
    assert attributed(conn)[3] == (TRUCK, 4, "CNH 123", "provider")


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)


def test_cli_list_rename_set_assign_day_and_report(
    conn: db.Conn, fleet: None, cli_env: None, run_etrack: RunEtrack
) -> None:
    code, out, err = run_etrack("drivers", "compute", "--date", DAY.isoformat())
    assert code == 0, err
    assert "2 with a driver, 2 without" in out
    code, out, err = run_etrack("drivers", "list", "--format", "json")
    assert code == 0, err
    assert [d["id"] for d in json.loads(out)] == ["CNH 123", "MARIA DA SILVA"]
    code, out, err = run_etrack("drivers", "rename", "maria da silva", "Maria Aparecida da Silva")
    assert code == 0, err
    assert out.strip() == "driver MARIA DA SILVA: renamed to Maria Aparecida da Silva"
    code, out, err = run_etrack("drivers", "set", "CNH 123", "--document", "529.982.247-25")
    assert code == 0, err
    assert store.get_driver(conn, "CNH 123").document == "52998224725"  # type: ignore[union-attr]
    code, out, err = run_etrack("drivers", "set", "CNH 123", "--document", "529.982.247-24")
    assert code == 2
    assert err.strip().endswith("the check digits do not match")
    code, _, err = run_etrack("drivers", "day", "Ninguém", "--date", DAY.isoformat())
    assert code == 2
    assert "no driver 'Ninguém'" in err
    code, out, err = run_etrack(
        "drivers", "assign", "MARIA DA SILVA", VAN, "--from", f"{DAY} 08:00", "--to", f"{DAY} 12:00"
    )
    assert code == 0, err
    assert "stored" in out
    code, _, err = run_etrack(
        "drivers", "assign", "CNH 123", VAN, "--from", f"{DAY} 11:00", "--to", f"{DAY} 13:00"
    )
    assert code == 2
    assert "one driver at a time" in err
    code, out, err = run_etrack(
        "drivers", "day", "Maria Aparecida da Silva", "--date", DAY.isoformat(), "--format", "json"
    )
    assert code == 0, err
    (day,) = json.loads(out)
    assert day["driver_id"] == "MARIA DA SILVA"
    assert day["day"] == "2025-03-04"
    # 09-10 on the van (the assignment), 14-16 on the truck (the provider).
    assert (day["driving_s"], day["breaks_s"], day["working_s"]) == (
        3 * 3600.0,
        4 * 3600.0,
        3 * 3600.0,
    )
    assert day["plates"] == [VAN, TRUCK]
    assert day["idle_s"] == 600.0  # the van's stop between her two trips
    assert day["violations"] == []
    code, out, err = run_etrack("drivers", "day", "CNH 123", "--date", DAY.isoformat())
    assert code == 0, err
    assert "uninterrupted_driving at 11:30 (+1:30)" in out
    code, out, err = run_etrack(
        "drivers", "report", "--date-start", DAY.isoformat(), "--date-end", DAY.isoformat(),
        "--format", "csv",
    )  # fmt: skip
    assert code == 0, err
    lines = out.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("driver_id,driver_name,day,")
    assert len(lines) == 3
    code, _, err = run_etrack(
        "drivers", "report", "--date-start", "2025-03-05", "--date-end", "2025-03-01"
    )
    assert code == 2


@pytest.fixture
def client(target: db.Target, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as test_client:
        yield test_client


def test_api_lists_drivers_and_their_days(conn: db.Conn, fleet: None, client: TestClient) -> None:
    attribute_drivers(conn, None, DAY, DAY)
    listed = client.get("/api/drivers?date_start=2025-03-01&date_end=2025-03-31")
    assert listed.status_code == 200, listed.text
    body: dict[str, Any] = listed.json()
    by_id = {d["id"]: d for d in body["drivers"]}
    assert by_id["CNH 123"]["driving_s"] == 7 * 3600
    assert by_id["CNH 123"]["violations"] == 2
    assert (body["unattributed_trips"], body["unattributed_s"]) == (2, 1.5 * 3600)
    days = client.get("/api/drivers/CNH 123/days?date_start=2025-03-01&date_end=2025-03-31")
    assert days.status_code == 200, days.text
    (day,) = days.json()["days"]
    assert day["day"] == "2025-03-04"
    assert day["violations"][0]["article"] == "CTB art. 67-C, caput"
    assert client.get("/api/drivers/nobody/days").status_code == 404
    assert client.get("/api/drivers?date_start=2025-03-05&date_end=2025-03-01").status_code == 400


def test_cli_ficha_as_pdf_and_xlsx(
    conn: db.Conn, fleet: None, cli_env: None, run_etrack: RunEtrack, tmp_path: Path
) -> None:
    attribute_drivers(conn, None, DAY, DAY)
    conn.execute("UPDATE drivers SET name = 'João Conceição' WHERE id = 'CNH 123'")
    pdf = tmp_path / "ficha.pdf"
    code, out, err = run_etrack("drivers", "ficha", "CNH 123", "--month", "2025-03", "-o", str(pdf))
    assert code == 0, err
    assert "1 working days, 2 violations" in out
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    assert "João Conceição" in text
    assert "março" in text
    xlsx = tmp_path / "ficha.xlsx"
    code, out, err = run_etrack(
        "drivers", "ficha", "CNH 123", "--month", "2025-03", "--output", str(xlsx)
    )
    assert code == 0, err
    sheet = openpyxl.load_workbook(xlsx).active
    assert sheet is not None
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    assert any("João Conceição" in str(c) for c in cells)
    for bad, message in (
        (("--month", "março", "-o", str(pdf)), "--month: expected a month"),
        (("--month", "2025-03", "-o", str(tmp_path / "f.doc")), "--format: expected one of pdf"),
    ):
        code, _, err = run_etrack("drivers", "ficha", "CNH 123", *bad)
        assert code == 2
        assert message in err
