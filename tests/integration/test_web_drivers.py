"""The Drivers pages: the real app in-process over HTTP against a real
PostgreSQL holding detected trips attributed to drivers by hand (SQL), so
each working day, its timeline and its violations are known: the month's
list, the driver's calendar and timelines in pt-BR (and en), month
navigation, refused months and unknown drivers, and the account scope."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from etrack.config import Settings
from etrack.store import db
from etrack.web import create_app
from etrack.web.pages import drivers as drivers_page

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = ZoneInfo("America/Sao_Paulo")
DAY = date(2025, 3, 4)  # a Tuesday
TRUCK, VAN = "ABC1D23", "XYZ9E87"
JOAO, MARIA = "12345678", "MARIA SOUZA"


def at(hours: float, day: date = DAY) -> datetime:
    return datetime.combine(day, datetime.min.time(), TZ) + timedelta(hours=hours)


def route_trip(
    conn: db.Conn, placa: str, seq: int, start: datetime, end: datetime, driver: str | None
) -> None:
    day = start.astimezone(TZ).date()
    conn.execute(
        "INSERT INTO routes (placa, rota_date) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (placa, day),
    )
    conn.execute(
        "INSERT INTO route_trips (placa, rota_date, seq, start_ts, end_ts, distance_m,"
        " duration_s, driver_id, driver_source) VALUES (%s, %s, %s, %s, %s, 1000, %s, %s, %s)",
        (
            placa,
            day,
            seq,
            start,
            end,
            int((end - start).total_seconds()),
            driver,
            None if driver is None else "provider",
        ),
    )


@pytest.fixture
def month(conn: db.Conn) -> None:
    """João on the truck, 04/03: 06:00-13:00 in one stretch (7 h: over 5h30
    and over the 6 h window), a 1 h break, 14:00-14:10, a 10 min stop,
    14:20-16:00; 05/03: 08:00-10:00 (rest before 16 h). Maria on the van,
    04/03 09:00-11:00. The truck's 06/03 07:00-08:00 has no driver. The
    truck is frota-a's, the van frota-b's."""
    conn.execute(
        "INSERT INTO drivers (id, name, document, frota) VALUES"
        " (%s, 'João da Silva', '52998224725', 'Carga'), (%s, 'Maria Souza', NULL, NULL)",
        (JOAO, MARIA),
    )
    conn.execute(
        "INSERT INTO terminals (placa, account) VALUES (%s, 'frota-a'), (%s, 'frota-b')",
        (TRUCK, VAN),
    )
    route_trip(conn, TRUCK, 1, at(6), at(13), JOAO)
    route_trip(conn, TRUCK, 2, at(14), at(14 + 10 / 60), JOAO)
    route_trip(conn, TRUCK, 3, at(14 + 20 / 60), at(16), JOAO)
    route_trip(
        conn, TRUCK, 1, at(8, DAY + timedelta(days=1)), at(10, DAY + timedelta(days=1)), JOAO
    )
    route_trip(conn, VAN, 1, at(9), at(11), MARIA)
    route_trip(conn, TRUCK, 1, at(7, DAY + timedelta(days=2)), at(8, DAY + timedelta(days=2)), None)


def make_client(settings: Settings, target: db.Target) -> Iterator[TestClient]:
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as test_client:
        yield test_client


@pytest.fixture
def client(target: db.Target, settings: Settings) -> Iterator[TestClient]:
    yield from make_client(settings, target)


def row(text: str, driver: str) -> str:
    found = re.search(rf'<tr data-driver="{re.escape(driver)}"[^>]*>.*?</tr>', text, re.S)
    assert found is not None, driver
    return found[0]


def test_the_list_shows_each_drivers_month_and_the_trips_without_driver(
    client: TestClient, month: None
) -> None:
    page = client.get("/drivers?month=2025-03")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Motoristas</h1>" in text
    assert 'href="/drivers" class="active"' in text
    joao = row(text, JOAO)
    # 7:00 + 0:10 + 1:40 + 2:00 driving; 9:00 + 2:00 working; 1:00 overtime.
    assert 'data-days="2"' in joao
    assert f'data-driving="{(10 * 3600 + 50 * 60)}"' in joao
    assert 'data-violations="2"' in joao
    assert "João da Silva" in joao
    assert "10:50" in joao
    assert "11:00" in joao
    assert "1:00" in joao
    assert '<span class="violation-count has-violations">2</span>' in joao
    assert f'href="/drivers/{JOAO}?month=2025-03"' in joao
    maria = row(text, "MARIA SOUZA")
    assert 'data-days="1"' in maria
    assert 'data-violations="0"' in maria
    assert 'href="/drivers/MARIA%20SOUZA?month=2025-03"' in maria
    assert "has-violations" not in maria
    nobody = re.search(r'<tr id="drivers-nobody"[^>]*>.*?</tr>', text, re.S)
    assert nobody is not None
    assert 'data-trips="1"' in nobody[0]
    assert 'data-driving="3600"' in nobody[0]
    assert "Sem motorista" in nobody[0]
    assert "1 viagem<" in nobody[0]
    english = client.get("/drivers?month=2025-03&lang=en").text
    assert "<h1>Drivers</h1>" in english
    assert "No driver" in english


def test_the_driver_page_shows_the_calendar_timelines_and_violations_in_portuguese(
    client: TestClient, month: None
) -> None:
    page = client.get(f"/drivers/{JOAO}?month=2025-03")
    assert page.status_code == 200
    text = page.text
    assert '<h1 id="driver-name">João da Silva</h1>' in text
    # The calendar: 31 days, March 2025 begins on a Saturday (5 blanks first).
    assert len(re.findall(r'<td class="cal-day', text)) == 31
    first_week = text.split('<table id="driver-calendar"')[1].split("</tr>")[1]
    assert first_week.count("cal-blank") == 5
    four = re.search(r'<td class="cal-day[^"]*" data-day="2025-03-04"[^>]*>', text)
    assert four is not None
    assert "cal-working" in four[0]
    assert "cal-violation" in four[0]
    assert 'data-driving="31800"' in four[0]  # 8:50
    five = re.search(r'<td class="cal-day[^"]*" data-day="2025-03-05"[^>]*>', text)
    assert five is not None
    assert "cal-violation" not in five[0]
    assert "cal-working" in five[0]
    six = re.search(r'<td class="cal-day[^"]*" data-day="2025-03-06"[^>]*>', text)
    assert six is not None
    assert "cal-working" not in six[0]
    assert 'href="#day-2025-03-04">8:50</a>' in text
    # Each working day's timeline: three trips, the break, the short stop.
    day = text.split('id="day-2025-03-04"')[1].split("</article>")[0]
    assert day.count('data-kind="driving"') == 3
    assert day.count('data-kind="break"') == 1
    assert day.count('data-kind="stop"') == 1
    assert 'x="0.0" y="0" width="70.0"' in day  # 06:00-13:00 of 06:00-16:00
    assert "style=" not in day  # the page's CSP refuses inline styles
    assert "Descanso antes: sem jornada anterior" in day
    assert "Início 06:00" in day
    assert "Fim 16:00" in day
    # The violations, named, timed and measured, with their article.
    violations = re.findall(r'<li class="violation">([^<]*)</li>', day)
    assert violations == [
        "Direção ininterrupta acima de 5h30 às 11:30 (+1h30) — CTB art. 67-C, caput",
        "Sem descanso de 30 min em 6h de direção às 12:00 (+1h00) — CTB art. 67-C, § 1º",
    ]
    next_day = text.split('id="day-2025-03-05"')[1].split("</article>")[0]
    assert "Descanso antes: 16:00" in next_day
    assert 'class="violation"' not in next_day
    english = client.get(f"/drivers/{JOAO}?month=2025-03&lang=en").text
    assert "Uninterrupted driving over 5h30 at 11:30 (+1h30) — CTB art. 67-C, caput" in english


def test_month_navigation(client: TestClient, month: None) -> None:
    text = client.get(f"/drivers/{JOAO}?month=2025-03").text
    assert f'id="driver-prev" href="/drivers/{JOAO}?month=2025-02"' in text
    assert f'id="driver-next" href="/drivers/{JOAO}?month=2025-04"' in text
    february = client.get(f"/drivers/{JOAO}?month=2025-02").text
    assert 'id="driver-no-days"' in february
    assert len(re.findall(r'<td class="cal-day', february)) == 28
    listing = client.get("/drivers?month=2025-02").text
    assert 'data-days="0"' in row(listing, JOAO)
    assert 'id="drivers-month" value="2025-02"' in listing
    december = client.get("/drivers?month=2024-12").text
    assert 'id="drivers-next" href="/drivers?month=2025-01"' in december
    # Without ?month=, this month (nothing stored for it).
    today = client.get("/drivers").text
    assert re.search(r'id="drivers-month" value="\d{4}-\d{2}"', today)


@pytest.mark.parametrize("bad", ["2025-13", "2025-3", "março", "2025-03-01"])
def test_a_bad_month_is_refused_with_one_line(client: TestClient, month: None, bad: str) -> None:
    for url in ("/drivers", f"/drivers/{JOAO}"):
        page = client.get(url, params={"month": bad})
        assert page.status_code == 400
        message = re.search(r'<p class="error-message" id="error-message">([^<]*)</p>', page.text)
        assert message is not None
        assert "YYYY-MM" in message[1]
        assert "\n" not in message[1].strip()


def test_an_unknown_driver_is_404(client: TestClient, month: None) -> None:
    assert client.get("/drivers/NOBODY?month=2025-03").status_code == 404


def test_a_limited_server_shows_the_days_on_its_vehicles_only(
    target: db.Target, settings: Settings, month: None
) -> None:
    restricted = settings.model_copy(update={"etrack_web_accounts": "frota-b"})
    for client in make_client(restricted, target):
        text = client.get("/drivers?month=2025-03").text
        assert 'data-driver="MARIA SOUZA"' in text
        assert f'data-driver="{JOAO}"' not in text
        assert "João" not in text.split("<main>")[1]
        nobody = re.search(r'<tr id="drivers-nobody"[^>]*>', text)
        assert nobody is not None
        assert 'data-trips="0"' in nobody[0]
        assert client.get(f"/drivers/{JOAO}?month=2025-03").status_code == 404
        maria = client.get("/drivers/MARIA%20SOUZA?month=2025-03")
        assert maria.status_code == 200
        assert 'data-day="2025-03-04" data-driving="7200"' in maria.text


def test_the_account_filter_narrows_the_list(client: TestClient, month: None) -> None:
    text = client.get("/drivers?month=2025-03&account=frota-a").text
    assert f'data-driver="{JOAO}"' in text
    assert 'data-driver="MARIA SOUZA"' not in text
    hidden = client.get("/drivers?month=2025-03&account=elsewhere").text
    assert 'id="drivers-none"' in hidden


def test_the_ficha_downloads(client: TestClient, month: None) -> None:
    text = client.get(f"/drivers/{JOAO}?month=2025-03").text
    assert f'id="driver-ficha-pdf" href="/drivers/{JOAO}/ficha.pdf?month=2025-03"' in text
    assert f'id="driver-ficha-xlsx" href="/drivers/{JOAO}/ficha.xlsx?month=2025-03"' in text
    pdf = client.get(f"/drivers/{JOAO}/ficha.pdf?month=2025-03")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == (
        'attachment; filename="ficha-JOAO-DA-SILVA-2025-03.pdf"'
    )
    assert pdf.content.startswith(b"%PDF")
    xlsx = client.get(f"/drivers/{JOAO}/ficha.xlsx?month=2025-03")
    assert xlsx.status_code == 200
    assert xlsx.headers["content-disposition"] == (
        'attachment; filename="ficha-JOAO-DA-SILVA-2025-03.xlsx"'
    )
    assert xlsx.content.startswith(b"PK")
    assert client.get("/drivers/NOBODY/ficha.pdf?month=2025-03").status_code == 404
    assert client.get(f"/drivers/{JOAO}/ficha.xlsx?month=2025-3").status_code == 400


def test_helpers() -> None:
    assert drivers_page.hm(19800) == "5h30"
    assert drivers_page.hm(39600) == "11h"
    assert drivers_page.month_or_error("2024-02", DAY) == (date(2024, 2, 1), date(2024, 2, 29))
    assert drivers_page.month_or_error(None, DAY) == (date(2025, 3, 1), date(2025, 3, 31))


def csrf_of(client: TestClient, url: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).text)
    assert found is not None
    return found[1]


def test_the_driver_page_edits_the_record_and_assigns_a_vehicle(
    conn: db.Conn, client: TestClient, month: None
) -> None:
    url = f"/drivers/{MARIA}?month=2025-03"
    csrf = csrf_of(client, url)
    edit = {"csrf_token": csrf, "name": "Maria  Aparecida Souza", "document": "", "fleet": "Vans"}
    # No token, no change.
    assert (
        client.post(f"/drivers/{MARIA}/edit", data={**edit, "csrf_token": "x"}).status_code == 403
    )
    bad = client.post(f"/drivers/{MARIA}/edit", data={**edit, "document": "529.982.247-24"})
    assert bad.status_code == 400
    assert "os dígitos verificadores não conferem" in bad.text
    done = client.post(
        f"/drivers/{MARIA}/edit", data={**edit, "active": "1"}, follow_redirects=False
    )
    assert done.status_code == 303
    page = client.get(done.headers["location"])
    assert "motorista MARIA SOUZA atualizado" in page.text
    stored = conn.execute(
        "SELECT name, document, frota, active FROM drivers WHERE id = %s", (MARIA,)
    ).fetchone()
    assert stored == ("Maria Aparecida Souza", None, "Vans", True)
    # The truck's trip of 06/03 has no driver: an assignment gives it Maria.
    assign = {
        "csrf_token": csrf,
        "plate": TRUCK,
        "start": "2025-03-06T06:00",
        "end": "2025-03-06T09:00",
    }
    done = client.post(f"/drivers/{MARIA}/assign", data=assign, follow_redirects=False)
    assert done.status_code == 303, done.text
    (source,) = conn.execute(
        "SELECT driver_source FROM route_trips WHERE placa = %s AND rota_date = %s",
        (TRUCK, DAY + timedelta(days=2)),
    ).fetchone() or (None,)
    assert source == "assignment"
    page = client.get(f"/drivers/{MARIA}?month=2025-03").text
    assert 'id="driver-assignments"' in page
    # Another driver on the same vehicle and time: refused in one line.
    clash = client.post(f"/drivers/{JOAO}/assign", data={**assign, "start": "2025-03-06T08:00"})
    assert clash.status_code == 400
    assert "um motorista por vez" in clash.text
    nonsense = client.post(f"/drivers/{JOAO}/assign", data={**assign, "plate": "???"})
    assert nonsense.status_code == 400
