"""Reports end to end: files rendered from the stored routes, e-mails through
a real local SMTP server (aiosmtpd), and schedules run by real workers
against a real PostgreSQL loaded from the simulator through the collector.

Exactly once: two workers with the periodic tick every second deliver each
period of a daily schedule once; periods missed while no worker ran go out
once when they start; an SMTP server refusing the first attempt gets the
message on the retry."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import socket
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import stamina
from pydantic import SecretStr
from pypdf import PdfReader

from etrack.config import Settings
from etrack.reports.kinds import KINDS, ReportContext, ReportRequest, ReportScope, build_report
from etrack.store import db
from etrack.web import create_app
from fixtures_cli import RunEtrack
from integration.test_alerts import run_workers
from integration.test_web_api import LOCAL, TZ, WebData, loaded_web_data

with warnings.catch_warnings():
    # Starlette's TestClient warns that it will move to httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ATTACHMENTS = {"xlsx", "pdf", "csv"}


@pytest.fixture(scope="module")
def web_data(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebData]:
    data_dir = tmp_path_factory.mktemp("reports")
    with loaded_web_data(pg_server_url, template_database, data_dir, vehicles=6) as loaded:
        yield loaded


@pytest.fixture
def conn(web_data: WebData) -> Iterator[db.Conn]:
    with db.connection(web_data.target, autocommit=True) as connection:
        yield connection
        # Each test starts without schedules (the loaded data is the module's).
        connection.execute("DELETE FROM report_schedules")


# ------------------------------------------------------------ SMTP server
@dataclass
class Mailbox:
    """A real SMTP server in a thread: `refuse(n)` says whether the n-th DATA
    (from 0) is refused with a temporary error; every accepted message kept."""

    refuse: Callable[[int], bool] = lambda n: False
    messages: list[Message] = field(default_factory=list)
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    box = Mailbox()
    # aiosmtpd logs every connection from its thread, to whatever stream a
    # previous in-process `etrack` run left the root logger writing to.
    quiet = logging.getLogger("mail.log")
    was = quiet.disabled
    quiet.disabled = True

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with box.lock:
                n = box.attempts
                box.attempts += 1
                if box.refuse(n):
                    return "451 4.3.0 try again later"
                message = message_from_bytes(envelope.original_content)
                message["X-Rcpt"] = ",".join(envelope.rcpt_tos)
                box.messages.append(message)
            return "250 OK"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        box.port = int(sock.getsockname()[1])
    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()
    quiet.disabled = was


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, web_data: WebData, mailbox: Mailbox) -> dict[str, str]:
    env = {
        "DATABASE_URL": web_data.target.conninfo,
        "ETRACK_SMTP_URL": mailbox.url,
        "ETRACK_MAIL_FROM": "frota@example.com",
        "ETRACK_PUBLIC_URL": "https://frota.example.com",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def attachments(message: Message) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for part in message.walk():
        name = part.get_filename()
        if name:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[name] = payload
    return found


def body_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text body")


def stored_per_plate(conn: db.Conn, first: date, last: date) -> dict[str, tuple[float, float, int]]:
    """(distance km, driving h, trips) per plate from the stored day summaries."""
    rows = conn.execute(
        "SELECT placa, sum(distance_km)::float8, sum(driving_h)::float8, sum(trip_count)::int"
        " FROM route_day_summaries WHERE rota_date BETWEEN %s AND %s GROUP BY placa",
        (first, last),
    ).fetchall()
    return {str(r[0]): (r[1], r[2], r[3]) for r in rows}


def sheet_rows(body: bytes) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The first sheet's header (the row starting with Placa) and the rows below it."""
    sheet = openpyxl.load_workbook(io.BytesIO(body)).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    at = next(i for i, row in enumerate(rows) if row and row[0] == "Placa")
    return [str(v) for v in rows[at]], rows[at + 1 :]


def hours_of(cell: Any) -> float:
    if isinstance(cell, timedelta):
        return cell.total_seconds() / 3600
    if isinstance(cell, dt_time):
        return cell.hour + cell.minute / 60 + (cell.second + cell.microsecond / 1e6) / 3600
    return float(cell) * 24


# ------------------------------------------------------------------ files
def test_render_writes_the_fleet_summary_from_the_stored_routes(
    web_data: WebData, conn: db.Conn, run_etrack: RunEtrack, cli_env: dict[str, str], tmp_path: Path
) -> None:
    first, last = web_data.past_days[0], web_data.past_days[-1]
    args = (
        "reports", "render", "fleet-summary", "--date-start", first.isoformat(),
        "--date-end", last.isoformat(), "--format", "xlsx,pdf,csv", "--output-dir", str(tmp_path),
    )  # fmt: skip
    code, _, err = run_etrack(*args)
    assert code == 0, err
    stem = f"etrack-fleet-summary-{first.isoformat()}_{last.isoformat()}"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{stem}.{ext}" for ext in ATTACHMENTS
    )
    header, rows = sheet_rows((tmp_path / f"{stem}.xlsx").read_bytes())
    assert header[:3] == ["Placa", "Descrição", "Frota"]
    distance = header.index("Distância (km)")
    driving = header.index("Dirigindo")
    trips = header.index("Viagens")
    truth = stored_per_plate(conn, first, last)
    by_plate = {row[0]: row for row in rows if row[0] in truth}
    assert sorted(by_plate) == sorted(truth)
    for placa, (km, hours, trip_count) in truth.items():
        row = by_plate[placa]
        assert isinstance(row[distance], float | int)
        assert row[distance] == pytest.approx(km, abs=1e-3)
        # A duration is an Excel time ([h]:mm): openpyxl gives it back as a timedelta.
        assert hours_of(row[driving]) == pytest.approx(hours, abs=1e-3)
        assert row[trips] == trip_count
    total = next(row for row in rows if row[0] == "Total")
    assert total[distance] == pytest.approx(sum(v[0] for v in truth.values()), abs=1e-2)
    text = "".join(page.extract_text() for page in PdfReader(tmp_path / f"{stem}.pdf").pages)
    assert "Resumo da frota" in text
    assert "Descrição" in text
    assert f"{first:%d/%m/%Y}" in text
    raw = (tmp_path / f"{stem}.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert table[0][:3] == ["Placa", "Descrição", "Frota"]
    csv_rows = {row[0]: row for row in table[1:]}
    for placa, (km, _, _) in truth.items():
        cell = csv_rows[placa][table[0].index("Distância (km)")]
        assert "." not in cell
        assert float(cell.replace(",", ".")) == pytest.approx(km, abs=0.051)
    # Run again: the same files, overwritten, nothing else.
    code, _, err = run_etrack(*args)
    assert code == 0, err
    assert len(list(tmp_path.iterdir())) == 3


def test_render_by_day_and_usage_errors(
    web_data: WebData, run_etrack: RunEtrack, cli_env: dict[str, str], tmp_path: Path
) -> None:
    first, last = web_data.past_days[0], web_data.past_days[-1]
    code, _, err = run_etrack(
        "reports", "render", "fleet-summary", "--by-day", "--date-start", first.isoformat(),
        "--date-end", last.isoformat(), "--format", "xlsx", "--output-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    (file,) = tmp_path.iterdir()
    header, rows = sheet_rows(file.read_bytes())
    day = header.index("Dia")
    days = {row[day].date() for row in rows if row[0] not in ("Total", None)}
    assert days == set(web_data.past_days)
    for args, expected in (
        (("reports", "render", "nope"), "unknown report 'nope'"),
        (("reports", "render", "fleet-summary", "--format", "docx"), "--format: unknown format"),
        (("reports", "render", "vehicle-day"), "vehicle-day: give one plate"),
        (("reports", "send", "fleet-summary"), "give exactly one target"),
        (
            ("reports", "schedule", "add", "fleet-summary", "--every", "hourly", "--to", "a@b.c"),
            "--every: expected one of daily, weekly, monthly",
        ),
        (
            ("reports", "schedule", "add", "events", "--every", "daily", "--to", "nope"),
            "--to: expected addresses",
        ),
        (
            (
                "reports",
                "schedule",
                "add",
                "events",
                "--every",
                "daily",
                "--at",
                "7h",
                "--to",
                "a@b.c",
            ),
            "--at: expected a local time HH:MM",
        ),
    ):
        code, _, err = run_etrack(*args)
        assert code == 2, (args, err)
        assert expected in err
        assert err.strip().count("\n") == 0


def test_vehicle_day_renders_trips_stops_points_and_a_drawing(
    web_data: WebData, run_etrack: RunEtrack, cli_env: dict[str, str], tmp_path: Path
) -> None:
    day = web_data.past_days[-1]
    plate = max(web_data.plates, key=lambda p: len(web_data.sim.fleet.true_trips(p, day)))
    code, _, err = run_etrack(
        "reports", "render", "vehicle-day", "--plates", plate, "--date", day.isoformat(),
        "--format", "xlsx,pdf,csv", "--output-dir", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    stem = f"etrack-vehicle-day-{day.isoformat()}"
    assert names == sorted(
        [f"{stem}.xlsx", f"{stem}.pdf", *(f"{stem}-{s}.csv" for s in ("trips", "stops", "points"))]
    )
    book = openpyxl.load_workbook(tmp_path / f"{stem}.xlsx")
    assert [s.title for s in book.worksheets] == ["Viagens", "Paradas", "Pontos"]
    trips_csv = (tmp_path / f"{stem}-trips.csv").read_bytes().decode("utf-8-sig")
    trips = list(csv.reader(io.StringIO(trips_csv), delimiter=";"))[1:]
    assert len(trips) == len(web_data.sim.fleet.true_trips(plate, day)) or trips
    reader = PdfReader(tmp_path / f"{stem}.pdf")
    assert "Viagens" in "".join(page.extract_text() for page in reader.pages)


# ----------------------------------------------------------------- e-mail
def test_send_delivers_one_message_with_the_chosen_attachments(
    web_data: WebData, run_etrack: RunEtrack, cli_env: dict[str, str], mailbox: Mailbox
) -> None:
    day = web_data.past_days[-1]
    code, out, err = run_etrack(
        "reports", "send", "fleet-summary", "--date", day.isoformat(), "--to",
        "ana@example.com,bia@example.com", "--format", "xlsx,pdf,csv",
    )  # fmt: skip
    assert code == 0, err
    assert "sent to ana@example.com, bia@example.com" in out
    (message,) = mailbox.messages
    assert message["X-Rcpt"] == "ana@example.com,bia@example.com"
    assert message["From"] == "frota@example.com"
    assert "Resumo da frota" in str(message["Subject"])
    stem = f"etrack-fleet-summary-{day.isoformat()}"
    files = attachments(message)
    assert sorted(files) == sorted(f"{stem}.{ext}" for ext in ATTACHMENTS)
    assert files[f"{stem}.pdf"].startswith(b"%PDF")
    assert files[f"{stem}.csv"].startswith(b"\xef\xbb\xbf")
    text = body_text(message)
    assert f"Período: {day:%d/%m/%Y}" in text
    assert "Distância (km):" in text
    assert (
        f"Ver o relatório: https://frota.example.com/report?start={day.isoformat()}&end={day.isoformat()}"
        in text
    )


def test_send_is_retried_when_the_smtp_server_refuses_the_first_attempt(
    web_data: WebData, run_etrack: RunEtrack, cli_env: dict[str, str], mailbox: Mailbox
) -> None:
    mailbox.refuse = lambda n: n == 0
    with stamina.set_testing(True, attempts=3):
        code, _, err = run_etrack(
            "reports", "send", "events", "--date", web_data.past_days[-1].isoformat(), "--to",
            "ana@example.com", "--format", "csv",
        )  # fmt: skip
    assert code == 0, err
    assert mailbox.attempts == 2
    assert len(mailbox.messages) == 1
    # A server refusing every attempt: three tries, then exit 3 (unreachable), one line.
    mailbox.refuse = lambda n: True
    with stamina.set_testing(True, attempts=3):
        code, _, err = run_etrack(
            "reports", "send", "events", "--to", "ana@example.com", "--format", "csv"
        )
    assert code == 3
    assert mailbox.attempts == 5
    assert "451" in err
    assert err.strip().count("\n") == 0


def test_send_without_smtp_is_a_clear_error(
    web_data: WebData,
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ETRACK_SMTP_URL")
    code, _, err = run_etrack("reports", "send", "events", "--to", "ana@example.com")
    assert code == 2
    assert "ETRACK_SMTP_URL is not set" in err
    assert err.strip().count("\n") == 0


# -------------------------------------------------------------- schedules
def run_states(conn: db.Conn) -> dict[date, tuple[str, int]]:
    rows = conn.execute("SELECT period_start, state, attempts FROM report_runs").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def add_daily_schedule(run_etrack: RunEtrack, *extra: str) -> int:
    code, out, err = run_etrack(
        "reports", "schedule", "add", "fleet-summary", "--every", "daily", "--at", "00:00",
        "--to", "ops@example.com", "--format", "csv", *extra,
    )  # fmt: skip
    assert code == 0, err
    assert "added" in out
    return int(out.split()[1])


def worker_settings(web_data: WebData, mailbox: Mailbox, **extra: Any) -> Settings:
    return web_data.settings.model_copy(
        update={
            "etrack_smtp_url": SecretStr(mailbox.url),
            "etrack_report_cron": "* * * * * *",  # a tick every second
            "etrack_report_attempts": 4,
            "etrack_report_retry_s": 0.05,
            **extra,
        }
    )


async def run_scheduled_workers(
    settings: Settings, target: db.Target, *, workers: int, until: Callable[[], bool]
) -> None:
    """`workers` workers with the periodic ticks, until `until()` holds."""
    await run_workers(settings, target, workers=workers, until=until, timeout_s=90, schedule=True)


def sends_from(conn: db.Conn, schedule: int, first_period: date) -> None:
    """As if the schedule had been added on `first_period` and no worker had run since."""
    conn.execute(
        "UPDATE report_schedules SET first_period = %s WHERE id = %s", (first_period, schedule)
    )


def finished_ticks(conn: db.Conn) -> int:
    row = conn.execute(
        "SELECT count(*) FROM procrastinate_jobs"
        " WHERE task_name = 'etrack.report_tick' AND status = 'succeeded'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_daily_schedule_with_two_workers_sends_each_period_once_missed_ones_included(
    web_data: WebData,
    conn: db.Conn,
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
    mailbox: Mailbox,
) -> None:
    schedule = add_daily_schedule(run_etrack)
    today = datetime.now(TZ).date()
    # A new schedule sends nothing from before it existed: its first period is today.
    row = conn.execute(
        "SELECT first_period FROM report_schedules WHERE id = %s", (schedule,)
    ).fetchone()
    assert row == (today,)
    sends_from(conn, schedule, today - timedelta(days=3))
    missed = [today - timedelta(days=n) for n in (3, 2, 1)]
    settings = worker_settings(web_data, mailbox)

    def all_sent() -> bool:
        return run_states(conn) == dict.fromkeys(missed, ("sent", 1))

    asyncio.run(run_scheduled_workers(settings, web_data.target, workers=2, until=all_sent))
    # Ticks go on (two workers, every second): nothing is sent again.
    seen = finished_ticks(conn)
    asyncio.run(
        run_scheduled_workers(
            settings, web_data.target, workers=2, until=lambda: finished_ticks(conn) >= seen + 3
        )
    )
    assert run_states(conn) == dict.fromkeys(missed, ("sent", 1))
    periods = sorted(str(m["X-Etrack-Report"]) for m in mailbox.messages)
    assert periods == [f"{schedule}:{day.isoformat()}" for day in missed]
    for message, day in zip(
        sorted(mailbox.messages, key=lambda m: str(m["X-Etrack-Report"])), missed, strict=True
    ):
        assert f"{day:%d/%m/%Y}" in str(message["Subject"])
        assert list(attachments(message)) == [f"etrack-fleet-summary-{day.isoformat()}.csv"]
    code, out, _ = run_etrack("reports", "schedule", "list")
    assert code == 0
    assert "queued 0, sent 3, failed 0" in out


def test_a_scheduled_report_refused_once_by_smtp_is_retried_and_sent_once(
    web_data: WebData,
    conn: db.Conn,
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
    mailbox: Mailbox,
) -> None:
    schedule = add_daily_schedule(run_etrack)
    yesterday = datetime.now(TZ).date() - timedelta(days=1)
    sends_from(conn, schedule, yesterday)
    mailbox.refuse = lambda n: n == 0
    asyncio.run(
        run_scheduled_workers(
            worker_settings(web_data, mailbox),
            web_data.target,
            workers=1,
            until=lambda: run_states(conn).get(yesterday, ("", 0))[0] == "sent",
        )
    )
    assert run_states(conn) == {yesterday: ("sent", 2)}
    assert mailbox.attempts == 2
    assert len(mailbox.messages) == 1


def test_a_report_smtp_always_refuses_ends_failed_listed_and_on_the_jobs_record(
    web_data: WebData,
    conn: db.Conn,
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
    mailbox: Mailbox,
) -> None:
    schedule = add_daily_schedule(run_etrack)
    yesterday = datetime.now(TZ).date() - timedelta(days=1)
    sends_from(conn, schedule, yesterday)
    mailbox.refuse = lambda n: True
    asyncio.run(
        run_scheduled_workers(
            worker_settings(web_data, mailbox),
            web_data.target,
            workers=1,
            until=lambda: run_states(conn).get(yesterday, ("", 0))[0] == "failed",
        )
    )
    assert run_states(conn) == {yesterday: ("failed", 4)}
    assert mailbox.messages == []
    code, out, _ = run_etrack("reports", "schedule", "list")
    assert code == 0
    assert "queued 0, sent 0, failed 1" in out
    assert "last error: SMTP 127.0.0.1" in out
    run = conn.execute(
        "SELECT status, error FROM job_runs WHERE kind = 'send_report' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert run is not None
    assert run[0] == "failed"
    assert "451" in run[1]


def test_schedules_are_listed_paused_resumed_and_removed_idempotently(
    web_data: WebData, conn: db.Conn, run_etrack: RunEtrack, cli_env: dict[str, str]
) -> None:
    schedule = add_daily_schedule(run_etrack)
    code, out, _ = run_etrack(
        "reports", "schedule", "add", "fleet-summary", "--every", "daily", "--at", "00:00",
        "--to", "ops@example.com", "--format", "csv",
    )  # fmt: skip
    assert code == 0
    assert out.startswith(f"schedule {schedule} exists, unchanged")
    code, out, err = run_etrack(
        "reports", "schedule", "add", "events", "--every", "weekly", "--webhook",
        "https://example.com/in/t0k3n", "--format", "xlsx",
    )  # fmt: skip
    assert code == 0, err
    secret = out.splitlines()[1].rsplit(" ", 1)[1]
    assert len(secret) >= 32
    code, out, _ = run_etrack("reports", "schedule", "list")
    assert code == 0
    assert "webhook https://example.com/..." in out
    assert secret not in out
    assert "t0k3n" not in out
    assert run_etrack("reports", "schedule", "pause", str(schedule))[0] == 0
    _, out, _ = run_etrack("reports", "schedule", "list")
    assert f"{schedule} (paused)" in out
    assert run_etrack("reports", "schedule", "resume", str(schedule))[0] == 0
    assert run_etrack("reports", "schedule", "remove", str(schedule))[1].endswith("removed\n")
    code, out, _ = run_etrack("reports", "schedule", "remove", str(schedule))
    assert code == 0
    assert "not found" in out
    code, _, err = run_etrack("reports", "schedule", "pause", str(schedule))
    assert code == 2
    assert f"no report schedule {schedule}" in err


def test_every_kinds_link_opens_its_page_in_the_web_ui(web_data: WebData, conn: db.Conn) -> None:
    """The e-mail's "Ver o relatório" link is a page that exists, for every kind."""
    day = web_data.past_days[-1]
    plate = web_data.plates[0]
    ctx = ReportContext(account="t", tz=TZ, public_url="http://testserver")
    app = create_app(web_data.settings, web_data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as client:
        for kind in KINDS:
            scope = ReportScope(plates=(plate,)) if KINDS[kind].one_plate else ReportScope()
            report = build_report(conn, ReportRequest(kind, day, day, scope), ctx)
            assert report.link is not None
            path = report.link.removeprefix("http://testserver")
            response = client.get(path)
            assert response.status_code == 200, (kind, path)
            if kind == "vehicle-day":
                assert path == f"/vehicles/{plate}/{day.isoformat()}"
