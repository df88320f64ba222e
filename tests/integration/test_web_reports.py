"""Issue 19, the web side of the reports: /api/reports (JSON and the XLSX,
PDF and CSV files of etrack.reports), the CSV dialects of the existing
downloads, the vehicle day's new downloads, the fleet report's PDF, and the
Schedules page.

In-process over HTTP (Starlette's client) against a real PostgreSQL loaded
from the simulator (the module's own database)."""

from __future__ import annotations

import csv
import io
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader

from etrack.store import db
from etrack.web import create_app
from integration.test_web_api import LOCAL, WebData, busiest_plate_day, loaded_web_data

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BOM = "\ufeff".encode()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
KML = "application/vnd.google-earth.kml+xml"
PAGE = "/reports/schedules"


@pytest.fixture(scope="module")
def web_data(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebData]:
    data_dir = tmp_path_factory.mktemp("web-reports")
    with loaded_web_data(pg_server_url, template_database, data_dir, vehicles=6) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def client(web_data: WebData) -> Iterator[TestClient]:
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as test_client:
        yield test_client


def span(web_data: WebData) -> dict[str, str]:
    first, last = web_data.past_days
    return {"date_start": first.isoformat(), "date_end": last.isoformat()}


def by_day_report(client: TestClient, web_data: WebData) -> dict[str, Any]:
    answer = client.get("/api/reports/fleet-summary", params={**span(web_data), "by_day": "1"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


# ------------------------------------------------------------- /api/reports
def test_fleet_summary_by_day_matches_the_day_summaries(
    client: TestClient, web_data: WebData
) -> None:
    body = by_day_report(client, web_data)
    assert body["kind"] == "fleet-summary"
    (section,) = body["sections"]
    assert section["name"] == "by-day"
    rows = {(r["placa"], r["day"]): r for r in section["rows"]}
    first, last = web_data.past_days
    summaries = client.get(
        "/api/summaries", params={"start": first.isoformat(), "end": last.isoformat()}
    ).json()["rows"]
    assert summaries
    assert set(rows) == {(s["placa"], s["rota_date"]) for s in summaries}
    for s in summaries:
        row = rows[(s["placa"], s["rota_date"])]
        assert row["distance_km"] == pytest.approx(float(s["distance_km"]), abs=1e-6)
        for name in ("driving", "idle", "parked"):
            # Hours stored with a few decimals: seconds within a second.
            assert row[f"{name}_s"] == pytest.approx(float(s[f"{name}_h"]) * 3600, abs=1.0)
        assert row["trip_count"] == s["trip_count"]
        assert row["stop_count"] == s["stop_count"]


def test_the_workbook_has_the_same_numbers_as_real_numbers(
    client: TestClient, web_data: WebData
) -> None:
    body = by_day_report(client, web_data)
    (section,) = body["sections"]
    names = [c["name"] for c in section["columns"]]
    answer = client.get(
        "/api/reports/fleet-summary/export/xlsx", params={**span(web_data), "by_day": "1"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == XLSX
    assert answer.headers["content-disposition"].startswith('attachment; filename="etrack-')
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).worksheets[0]
    table = list(sheet.iter_rows(min_row=4, values_only=True))  # rows 1-3: titles
    header, data = table[0], table[1 : 1 + len(section["rows"])]
    assert header[names.index("descricao")] == "Descrição"
    assert len(data) == len(section["rows"])
    for want, got in zip(section["rows"], data, strict=True):
        cells = dict(zip(names, got, strict=False))
        assert cells["placa"] == want["placa"]
        assert isinstance(cells["distance_km"], int | float)
        assert cells["distance_km"] == pytest.approx(want["distance_km"])
        assert isinstance(cells["trip_count"], int | float)
        assert cells["trip_count"] == want["trip_count"]
        for name in ("driving_s", "idle_s", "parked_s"):
            value = cells[name]
            # An Excel time: seconds / 86400 (openpyxl reads "[h]:mm" as a timedelta).
            seconds = (
                value.total_seconds() if isinstance(value, timedelta) else float(value) * 86400
            )
            assert not isinstance(value, str)
            assert seconds == pytest.approx(want[name], abs=1.0)


def test_the_pdf_is_the_fleet_summary_with_brazilian_dates(
    client: TestClient, web_data: WebData
) -> None:
    answer = client.get("/api/reports/fleet-summary/export/pdf", params=span(web_data))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(answer.content)).pages)
    assert "Resumo da frota" in text
    first = web_data.past_days[0]
    assert re.search(r"\b\d{2}/\d{2}/\d{4}\b", text)
    assert f"{first.day:02d}/{first.month:02d}/{first.year}" in text


def check_excel_br(body: bytes) -> list[list[str]]:
    """A Brazilian Excel CSV: BOM, ';', decimal commas, 'Descrição' intact."""
    assert body.startswith(BOM)
    text = body.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    assert len(rows) > 1
    assert "Descrição" in rows[0]
    assert all(len(r) == len(rows[0]) for r in rows)
    distance = next(i for i, h in enumerate(rows[0]) if h.startswith("Distância"))
    assert all(re.fullmatch(r"\d+,\d", r[distance]) for r in rows[1:]), rows[1]
    return rows


def test_csv_dialects_of_the_fleet_summary(client: TestClient, web_data: WebData) -> None:
    url = "/api/reports/fleet-summary/export/csv"
    pt = client.get(url, params={**span(web_data), "lang": "pt-BR"})
    assert pt.status_code == 200
    assert pt.headers["content-type"].startswith("text/csv")
    rows = check_excel_br(pt.content)
    assert len(rows) == len(web_data.plates) + 1
    plain = client.get(url, params={**span(web_data), "dialect": "rfc4180"}).content
    assert not plain.startswith(BOM)
    header = plain.decode().splitlines()[0]
    assert header.startswith("placa,descricao,frota,")
    assert ";" not in header


def test_csv_dialects_of_the_fleet_report_download(client: TestClient, web_data: WebData) -> None:
    first, last = web_data.past_days
    query = {"start": first.isoformat(), "end": last.isoformat()}
    before = client.get("/api/report/export/csv", params=query).content
    assert not before.startswith(BOM), "a script asking nothing keeps what it always got"
    assert before.decode().startswith("placa,descricao,frota,days,distance_km")
    pt = client.get("/api/report/export/csv", params={**query, "lang": "pt-BR"})
    rows = check_excel_br(pt.content)
    assert rows[0][0] == "Placa"
    plain = client.get(
        "/api/report/export/csv", params={**query, "lang": "pt-BR", "dialect": "rfc4180"}
    )
    assert plain.content == before
    # The page's link names the dialect of the page's language.
    page = client.get("/report", params=query).text
    assert "dialect=excel-br" in page
    assert 'id="report-pdf" href="/api/reports/fleet-summary/export/pdf?' in page
    pdf_url = re.search(r'id="report-pdf" href="([^"]+)"', page)
    assert pdf_url
    pdf = client.get(pdf_url.group(1).replace("&amp;", "&"))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")


def test_csv_dialects_of_the_visits_download(client: TestClient, web_data: WebData) -> None:
    first, last = web_data.past_days
    query = {"start": first.isoformat(), "end": last.isoformat()}
    plain = client.get("/visits/export/csv", params=query).content
    assert plain.startswith(b"day,fence,group,placa,visits,dwell_s,")
    pt = client.get("/visits/export/csv", params={**query, "dialect": "excel-br"}).content
    assert pt.startswith(BOM)
    header = pt.decode("utf-8-sig").splitlines()[0].split(";")
    assert header[:4] == ["Dia", "Cerca", "Grupo", "Placa"]
    assert "Permanência" in header
    assert "dialect=excel-br" in client.get("/visits", params=query).text


def test_bad_report_requests_say_why(client: TestClient, web_data: WebData) -> None:
    unknown = client.get("/api/reports/nope")
    assert unknown.status_code == 404
    assert "fleet-summary" in unknown.json()["detail"]
    plate, day = busiest_plate_day(web_data)
    two = client.get("/api/reports/vehicle-day", params=span(web_data))
    assert two.status_code == 422
    assert "one plate" in two.json()["detail"]
    both = client.get(
        "/api/reports/fleet-summary", params={"plates": plate, "fleet": "x", "date": str(day)}
    )
    assert both.status_code == 400
    section = client.get(
        "/api/reports/vehicle-day/export/csv",
        params={"plates": plate, "date": day.isoformat(), "section": "nope"},
    )
    assert section.status_code == 422
    assert "trips" in section.json()["detail"]


# ------------------------------------------------------- vehicle day files
def test_the_vehicle_day_downloads(client: TestClient, web_data: WebData) -> None:
    plate, day = busiest_plate_day(web_data)
    page = client.get(f"/vehicles/{plate}/{day.isoformat()}")
    assert page.status_code == 200
    links = {
        name: url.replace("&amp;", "&")
        for name, url in re.findall(r'id="download-(\w+)" href="([^"]+)"', page.text)
    }
    assert set(links) == {"xlsx", "pdf", "kml", "trips", "stops"}
    expected = {
        "xlsx": XLSX,
        "pdf": "application/pdf",
        "kml": KML,
        "trips": "text/csv",
        "stops": "text/csv",
    }
    bodies: dict[str, bytes] = {}
    for name, url in links.items():
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.text)
        assert answer.headers["content-type"].startswith(expected[name]), url
        assert answer.headers["content-disposition"].startswith("attachment;"), url
        bodies[name] = answer.content
    root = ET.fromstring(bodies["kml"])  # noqa: S314
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert root.find("k:Document/k:Placemark/k:LineString", ns) is not None
    trips = web_data.sim.fleet.true_trips(plate, day)
    # The page's CSV links are in the page's language's dialect (pt-BR).
    trip_rows = list(csv.reader(io.StringIO(bodies["trips"].decode("utf-8-sig")), delimiter=";"))
    assert trip_rows[0][0] == "Nº"
    assert len(trip_rows) > 1 if trips else len(trip_rows) == 1
    stop_rows = list(csv.reader(io.StringIO(bodies["stops"].decode("utf-8-sig")), delimiter=";"))
    assert stop_rows[0][1] == "Local"
    sheet = openpyxl.load_workbook(io.BytesIO(bodies["xlsx"]))
    assert len(sheet.worksheets) == 3  # trips, stops, points
    assert bodies["pdf"].startswith(b"%PDF")
    # The point CSV keeps its rfc4180 form unless asked (scripts read it),
    # and takes excel-br when asked.
    base = f"/api/vehicles/{plate}/days/{day.isoformat()}/export"
    assert client.get(f"{base}/csv").content.startswith(b"placa,data_transmissao,")
    points = client.get(f"{base}/csv", params={"dialect": "excel-br"}).content
    assert points.startswith(BOM)
    first = points.decode("utf-8-sig").splitlines()[:2]
    assert first[0].startswith("Placa;Data/hora;")
    assert re.match(rf"{plate};\d\d/\d\d/\d{{4}} \d\d:\d\d:\d\d;-\d+,\d+;", first[1]), first[1]
    plain_trips = client.get(f"{base}/trips.csv", params={"dialect": "rfc4180"}).content
    assert plain_trips.decode().startswith("seq,start_ts,")


# -------------------------------------------------------- Schedules page
def token(client: TestClient) -> str:
    page = client.get(PAGE)
    assert page.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def flash_line(client: TestClient) -> str:
    found = re.search(r'<p id="flash"[^>]*>(.*?)</p>', client.get(PAGE).text, re.DOTALL)
    assert found, "no flash line"
    return found.group(1).strip()


def schedule_ids(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-schedule="(\d+)"', page)]


def test_the_schedules_page_adds_pauses_resumes_and_removes(client: TestClient) -> None:
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Relatórios agendados" in page.text
    assert 'href="/reports/schedules"' in client.get("/report").text
    csrf = token(client)
    good = {
        "csrf_token": csrf,
        "kind": "fleet-summary",
        "every": "weekly",
        "at": "06:30",
        "to": "ana@example.com",
        "formats": ["xlsx", "pdf"],
        "lang": "pt-BR",
    }
    forged = client.post(PAGE, data={**good, "csrf_token": "forged"})
    assert forged.status_code == 403
    refused = client.post(PAGE, data={**good, "to": "nope"})
    assert refused.status_code == 400
    error = re.search(r'<p id="form-error"[^>]*>([^<]*)</p>', refused.text)
    assert error
    assert "nope" in error.group(1)
    assert 'value="nope"' in refused.text  # the form kept for another try
    assert 'value="06:30"' in refused.text
    assert schedule_ids(client.get(PAGE).text) == []

    added = client.post(PAGE, data=good, follow_redirects=False)
    assert added.status_code == 303
    assert re.fullmatch(r"agendamento \d+ adicionado", flash_line(client))
    listing = client.get(PAGE).text
    (schedule_id,) = schedule_ids(listing)
    row = re.search(rf'<tr data-schedule="{schedule_id}".*?</tr>', listing, re.S)
    assert row
    assert 'data-active="1"' in row.group(0)
    assert "ana@example.com" in row.group(0)
    assert "XLSX, PDF" in row.group(0)
    assert "semanal" in row.group(0)

    base = f"{PAGE}/{schedule_id}"
    paused = client.post(f"{base}/active", data={"csrf_token": csrf, "active": "0"})
    assert paused.status_code == 200  # followed to the page
    assert f'<tr data-schedule="{schedule_id}" data-kind="fleet-summary" data-active="0"' in (
        client.get(PAGE).text
    )
    client.post(f"{base}/active", data={"csrf_token": csrf, "active": "1"})
    assert 'data-active="1"' in client.get(PAGE).text
    unconfirmed = client.post(f"{base}/remove", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 400
    assert schedule_ids(client.get(PAGE).text) == [schedule_id]
    removed = client.post(
        f"{base}/remove", data={"csrf_token": csrf, "confirm": "1"}, follow_redirects=False
    )
    assert removed.status_code == 303
    assert flash_line(client) == f"agendamento {schedule_id} removido"
    assert schedule_ids(client.get(PAGE).text) == []
    assert (
        client.post(f"{base}/remove", data={"csrf_token": csrf, "confirm": "1"}).status_code == 404
    )


def test_a_webhook_secret_is_shown_once(client: TestClient, web_data: WebData) -> None:
    csrf = token(client)
    plate, _ = busiest_plate_day(web_data)
    answer = client.post(
        PAGE,
        data={
            "csrf_token": csrf,
            "kind": "vehicle-day",
            "every": "daily",
            "at": "07:00",
            "webhook": "https://hooks.example.com/path/token123",
            "formats": ["csv"],
            "plates": plate,
            "csv_dialect": "rfc4180",
            "lang": "en",
        },
    )
    assert answer.status_code == 200
    found = re.search(r'<code id="secret-value">([^<]+)</code>', answer.text)
    assert found
    secret = found.group(1)
    assert len(secret) >= 32
    assert secret not in str(answer.cookies)
    later = client.get(PAGE)
    assert secret not in later.text
    assert "token123" not in later.text  # the webhook shown as scheme and host only
    assert "https://hooks.example.com/..." in later.text
    with db.connection(web_data.target) as conn:
        stored = conn.execute(
            "SELECT secret FROM report_schedules WHERE webhook_url IS NOT NULL"
        ).fetchall()
    assert stored == [(secret,)]
    for schedule_id in schedule_ids(later.text):
        client.post(f"{PAGE}/{schedule_id}/remove", data={"csrf_token": csrf, "confirm": "1"})


def test_a_server_showing_some_accounts_only_may_not_edit_schedules(
    web_data: WebData,
) -> None:
    restricted = web_data.settings.model_copy(update={"etrack_web_accounts": "elsewhere"})
    app = create_app(restricted, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as limited:
        page = limited.get(PAGE)
        assert page.status_code == 200
        assert 'id="schedule-form"' not in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', limited.get("/rules").text)
        assert csrf
        answer = limited.post(
            PAGE,
            data={
                "csrf_token": csrf.group(1),
                "kind": "fleet-summary",
                "every": "daily",
                "at": "07:00",
                "to": "ana@example.com",
                "formats": ["xlsx"],
                "lang": "pt-BR",
            },
        )
        assert answer.status_code == 403


def test_the_schedules_page_in_english(web_data: WebData) -> None:
    # A client of its own: ?lang= sticks in a cookie.
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as english:
        page = english.get(PAGE, params={"lang": "en"})
        assert page.status_code == 200
        assert "<h1>Scheduled reports</h1>" in page.text
        assert '<option value="en" selected>' in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert csrf
        refused = english.post(
            PAGE,
            data={
                "csrf_token": csrf.group(1),
                "kind": "fleet-summary",
                "every": "hourly",
                "at": "07:00",
                "to": "ana@example.com",
                "formats": ["xlsx"],
                "lang": "en",
            },
        )
        assert refused.status_code == 400
        assert "every: expected one of daily, weekly, monthly" in refused.text


# ------------------------------------------------------------ account scope
def test_an_account_scoped_request_never_sees_another_accounts_plate(
    web_data: WebData,
) -> None:
    hidden = web_data.plates[0]
    with db.connection(web_data.target) as conn:
        conn.execute("UPDATE terminals SET account = 'other' WHERE placa = %s", [hidden])
    try:
        app = create_app(web_data.settings, web_data.target, scheduler=False)
        with TestClient(app, base_url=LOCAL) as scoped:
            _, day = busiest_plate_day(web_data)
            params = {**span(web_data), "account": "default"}
            for kind in ("fleet-summary", "events"):
                body = scoped.get(f"/api/reports/{kind}", params=params)
                assert body.status_code == 200, body.text
                shown = {r.get("placa") for s in body.json()["sections"] for r in s["rows"]}
                assert hidden not in shown, kind
            everything = scoped.get("/api/reports/fleet-summary", params={**params, "account": ""})
            assert hidden in {r["placa"] for r in everything.json()["sections"][0]["rows"]}
            asked = scoped.get(
                "/api/reports/fleet-summary", params={**params, "plates": hidden}
            ).json()
            assert asked["sections"][0]["rows"] == []
            other_day = scoped.get(
                "/api/reports/vehicle-day/export/xlsx",
                params={"plates": hidden, "date": day.isoformat(), "account": "default"},
            )
            assert other_day.status_code == 422
            csv_body = scoped.get(
                "/api/reports/fleet-summary/export/csv", params={**params, "dialect": "rfc4180"}
            ).text
            assert hidden not in csv_body
    finally:
        with db.connection(web_data.target) as conn:
            conn.execute("UPDATE terminals SET account = NULL WHERE placa = %s", [hidden])


def test_reports_in_the_api_document(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "/api/reports/{kind}" in paths
    assert "/api/reports/{kind}/export/{fmt}" in paths
