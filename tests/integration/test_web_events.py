"""The Events page, events on the vehicle day and their count in the fleet
report: the real app in-process over HTTP against a real PostgreSQL holding
positions whose events are known (an overspeed run, an idle run)."""

from __future__ import annotations

import csv
import io
import json
import re
import warnings
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from etrack.config import Settings
from etrack.events.compute import compute_events
from etrack.store import db
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams
from etrack.web import create_app
from etrack.web.pages import events as events_page
from integration.test_events import DAY, NOON, OTHER, PARAMS, PLATE, drive, position, store

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

RANGE = f"start={DAY}&end={DAY}"


@pytest.fixture
def client(target: db.Target, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as test_client:
        yield test_client


@pytest.fixture
def day_with_events(conn: db.Conn, settings: Settings) -> None:
    """PLATE: two overspeed runs (10:00 and 12:00, tops 104 and 118 km/h) and
    ten minutes idling from 14:00; OTHER: one overspeed run at noon. Routes
    stored, so the report has the day."""
    for plate, starts in ((PLATE, (NOON - timedelta(hours=2), NOON)), (OTHER, (NOON,))):
        for k, at in enumerate(starts):
            store(conn, drive(plate, at, [50, 90, 95, 104 + 14 * k, 100, 60, 40]))
    idle_from = NOON + timedelta(hours=2)
    store(
        conn,
        [position(PLATE, idle_from + timedelta(minutes=m), 0.0, index=100 + m) for m in range(11)],
    )
    summary = compute_events(conn, None, DAY, DAY, PARAMS)
    assert summary.by_kind["overspeed"] == 3
    assert summary.by_kind["idle"] >= 1
    compute_routes(conn, RouteParams.from_settings(settings), plates=[PLATE, OTHER], days=[DAY])


def stored_counts(conn: db.Conn) -> dict[tuple[str, str], int]:
    rows = conn.execute("SELECT placa, kind, count(*) FROM events GROUP BY placa, kind").fetchall()
    return {(placa, kind): int(n) for placa, kind, n in rows}


def test_events_page_counts_by_kind_and_vehicle_in_portuguese(
    conn: db.Conn, client: TestClient, day_with_events: None
) -> None:
    counts = stored_counts(conn)
    page = client.get(f"/events?{RANGE}")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Eventos</h1>" in text
    assert f'data-total="{sum(counts.values())}"' in text
    overspeed = sum(n for (_, kind), n in counts.items() if kind == "overspeed")
    assert f'<tr data-kind="overspeed" data-count="{overspeed}">' in text
    assert "Excesso de velocidade" in text
    assert "Motor ocioso" in text
    plate_total = sum(n for (placa, _), n in counts.items() if placa == PLATE)
    assert f'<tr data-placa="{PLATE}" data-total="{plate_total}">' in text
    # The busiest vehicle first; each listed event links to its vehicle day.
    assert text.index(f'data-placa="{PLATE}" data-total') < text.index(
        f'data-placa="{OTHER}" data-total'
    )
    assert f'href="/vehicles/{PLATE}/{DAY}"' in text
    assert len(re.findall(r'<tr data-id="', text)) == sum(counts.values())
    # The top speed with its unit, in the Brazilian form.
    assert "118 km/h" in text
    english = client.get(f"/events?{RANGE}&lang=en").text
    assert "Overspeed" in english
    assert "Idling" in english


def test_events_page_filters_by_kind_and_plate(
    conn: db.Conn, client: TestClient, day_with_events: None
) -> None:
    only = client.get(f"/events?{RANGE}&kind=overspeed&plate={OTHER}").text
    assert len(re.findall(r'<tr data-id="', only)) == 1
    assert 'data-total="1"' in only
    assert 'data-kind="idle"' not in only
    # A day without events says so.
    empty = client.get(f"/events?start={DAY + timedelta(days=1)}&end={DAY + timedelta(days=1)}")
    assert 'id="events-none"' in empty.text
    # The API link carries the same filter.
    api = re.search(r'id="events-api" href="([^"]+)"', only)
    assert api is not None
    body = client.get(api[1].replace("&amp;", "&")).json()
    assert body["total"] == 1
    assert body["rows"][0]["placa"] == OTHER


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("kind=speeding", 422, "speeding"),
        ("plate=NOPE", 422, "NOPE"),
        (f"start={DAY}&end={DAY - timedelta(days=1)}", 400, "03/03/2025"),
        ("start=2025-13-01", 422, "2025-13-01"),
        ("start=2024-01-01&end=2025-06-01", 400, "366"),
    ],
)
def test_events_page_refuses_bad_filters_with_a_page_saying_why(
    client: TestClient, query: str, status: int, says: str
) -> None:
    page = client.get(f"/events?{query}")
    assert page.status_code == status
    message = re.search(r'<p class="error-message" id="error-message">([^<]*)</p>', page.text)
    assert message is not None
    assert says in message[1]


def test_events_page_respects_the_account_scope(client: TestClient, day_with_events: None) -> None:
    hidden = client.get(f"/events?{RANGE}&account=elsewhere").text
    assert 'id="events-none"' in hidden
    assert PLATE not in hidden.split("<main>")[1]


def test_vehicle_day_lists_its_events_and_hands_them_to_the_map(
    conn: db.Conn, client: TestClient, day_with_events: None
) -> None:
    page = client.get(f"/vehicles/{PLATE}/{DAY}")
    assert page.status_code == 200
    listed = re.findall(r'<li class="event event-(\w+)"', page.text)
    stored = sorted(kind for (placa, kind), n in stored_counts(conn).items() if placa == PLATE
                    for _ in range(n))  # fmt: skip
    assert sorted(listed) == stored
    data = re.search(
        r'<script type="application/json" id="day-data">(.*?)</script>', page.text, re.S
    )
    assert data is not None
    day = json.loads(data[1])
    kinds = sorted(e["kind"] for e in day["events"])
    assert kinds == stored
    first = day["events"][0]
    assert first["start"] == pytest.approx((NOON - timedelta(hours=2, seconds=-30)).timestamp())
    assert first["latitude"] is not None
    # Another vehicle's events stay on its own page.
    other = client.get(f"/vehicles/{OTHER}/{DAY}").text
    assert len(re.findall(r'<li class="event event-', other)) == 1


def test_fleet_report_counts_each_vehicles_events(
    conn: db.Conn, client: TestClient, day_with_events: None
) -> None:
    counts = stored_counts(conn)
    per_plate = {
        p: sum(n for (placa, _), n in counts.items() if placa == p) for p in (PLATE, OTHER)
    }
    report = client.get(f"/api/report?{RANGE}").json()
    assert {r["placa"]: r["event_count"] for r in report["rows"]} == per_plate
    assert report["rows"][0]["event_kinds"]["overspeed"] >= 1
    page = client.get(f"/report?{RANGE}").text
    assert f'class="num event-count" data-events="{per_plate[PLATE]}"' in page
    assert f"/events?start={DAY}&amp;end={DAY}&amp;plate={PLATE}" in page
    exported = client.get(f"/api/report/export/csv?{RANGE}&sort=event_count&order=desc").text
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["placa"] for r in rows] == [PLATE, OTHER]
    assert [int(r["event_count"]) for r in rows] == [per_plate[PLATE], per_plate[OTHER]]


def open_offline_since(conn: db.Conn, placa: str, since: datetime) -> None:
    conn.execute(
        "INSERT INTO events (id, placa, kind, start_ts, limit_value, latitude, longitude, rule)"
        " VALUES (gen_random_uuid(), %s, 'offline', %s, 120, -23.5, -46.6, 'settings')",
        (placa, since),
    )


def test_an_offline_open_for_weeks_shows_on_a_day_without_positions(
    conn: db.Conn, client: TestClient, day_with_events: None
) -> None:
    silent = "SIL3N70"
    open_offline_since(conn, silent, NOON - timedelta(days=40))
    page = client.get(f"/vehicles/{silent}/{DAY}")
    assert page.status_code == 200
    assert 'id="no-route"' in page.text
    assert re.findall(r'<li class="event event-(\w+)"', page.text) == ["offline"]
    # Began on another day: shown with its date, and still going.
    began = (NOON - timedelta(days=40)).strftime("%d/%m/%Y")
    assert began in page.text
    assert "em andamento" in page.text
    # Listed on the page of the day, and in today's listing.
    assert f'data-placa="{silent}" data-total="1"' in client.get(f"/events?{RANGE}").text


def test_the_report_counts_what_began_on_its_days_and_keeps_silent_vehicles(
    conn: db.Conn, client: TestClient, day_with_events: None
) -> None:
    before = {
        r["placa"]: r["event_count"] for r in client.get(f"/api/report?{RANGE}").json()["rows"]
    }
    # Offline since the day before: not one of this day's events in the report.
    open_offline_since(conn, PLATE, NOON - timedelta(days=1))
    # A vehicle with no day summary at all, offline since this noon.
    open_offline_since(conn, "SIL3N70", NOON)
    rows = {r["placa"]: r for r in client.get(f"/api/report?{RANGE}").json()["rows"]}
    assert rows[PLATE]["event_count"] == before[PLATE]
    assert rows["SIL3N70"]["event_count"] == 1
    assert rows["SIL3N70"]["event_kinds"] == {"offline": 1}
    assert rows["SIL3N70"]["days"] == 0
    assert rows["SIL3N70"]["distance_km"] is None
    page = client.get(f"/report?{RANGE}").text
    assert 'data-placa="SIL3N70"' in page
    # A fleet's report does not list vehicles of no fleet.
    fleet = client.get(f"/api/report?{RANGE}&frota=Entregas").json()["rows"]
    assert "SIL3N70" not in {r["placa"] for r in fleet}


def test_the_events_page_lists_the_newest_first_when_cut(
    conn: db.Conn, client: TestClient, day_with_events: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_page, "LISTED", 2)
    text = client.get(f"/events?{RANGE}").text
    assert 'id="events-truncated"' in text
    starts = [datetime.fromisoformat(t) for t in conn.execute(
        "SELECT start_ts::text FROM events ORDER BY start_ts DESC LIMIT 2").fetchall() for t in t]  # fmt: skip
    listed = re.findall(r'<tr data-id="([^"]+)"', text)
    newest = [str(r[0]) for r in conn.execute(
        "SELECT id FROM events ORDER BY start_ts DESC, placa, kind LIMIT 2").fetchall()]  # fmt: skip
    assert listed == newest
    assert starts[0] >= starts[1]
