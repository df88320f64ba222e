"""Alert rules and exactly-once delivery against a real PostgreSQL, real
workers, a real local HTTP receiver and a real local SMTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

from etrack.alerts.rules import safe_target
from etrack.alerts.signing import verify
from etrack.config import Settings
from etrack.jobs.alerts import queue_alerts, replay_alerts
from etrack.jobs.app import open_app
from etrack.jobs.env import EtrackApp, JobEnv
from etrack.jobs.runs import record_job, recover_stalled_jobs
from etrack.model import Fence
from etrack.store import db
from etrack.store.geofences import upsert_fences
from fixtures_cli import RunEtrack
from fixtures_db import subprocess_env
from fixtures_jobs import FAST

T = TypeVar("T")
SECRET = "a-test-secret-of-32-characters!!"


# ------------------------------------------------------------ the receiver
@dataclass
class Received:
    rule: str | None
    key: str | None
    signature: str | None
    body: bytes
    status: int


@dataclass
class Receiver:
    """An HTTP server in a thread that answers each POST with `plan(event id,
    how many times that event came before)` and records every request."""

    plan: Callable[[str, int], int]
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self, key: str, received: Received) -> int:
        with self.lock:
            seen = sum(1 for r in self.requests if r.key == key)
            received.status = self.plan(key, seen)
            self.requests.append(received)
            return received.status

    def successes(self) -> dict[str, int]:
        with self.lock:
            counts: dict[str, int] = {}
            for r in self.requests:
                if 200 <= r.status < 300 and r.key:
                    counts[r.key] = counts.get(r.key, 0) + 1
            return counts


@pytest.fixture
def make_receiver() -> Iterator[Callable[[Callable[[str, int], int]], Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def make(plan: Callable[[str, int], int]) -> Receiver:
        receiver = Receiver(plan)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.answer(
                    self.headers.get("Idempotency-Key") or "",
                    Received(
                        rule=self.headers.get("X-Etrack-Rule"),
                        key=self.headers.get("Idempotency-Key"),
                        signature=self.headers.get("X-Etrack-Signature"),
                        body=body,
                        status=0,
                    ),
                )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        return receiver

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------- helpers
@pytest.fixture
def alert_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"etrack_alert_attempts": 4, "etrack_alert_retry_s": 0.05})


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> dict[str, str]:
    """The same settings for in-process and subprocess `etrack` runs."""
    env = {
        "DATABASE_URL": database_url,
        "ETRACK_ALERT_ATTEMPTS": "4",
        "ETRACK_ALERT_RETRY_S": "0.05",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def add_event(
    conn: db.Conn,
    *,
    kind: str = "overspeed",
    placa: str = "ABC1234",
    start: str = "clock_timestamp()",
    value: float | None = 95.0,
) -> uuid.UUID:
    # A moment, not a span: events of one vehicle and kind never overlap (their
    # runs are disjoint), and an overlapping one would be taken for the same run.
    event_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO events (id, placa, kind, start_ts, end_ts, duration_s, value, limit_value,"
        f" latitude, longitude, logradouro) SELECT %s, %s, %s, s, s, 0,"
        f" %s, 80, -23.5, -46.6, 'Av. Paulista' FROM (SELECT {start} AS s) t",
        (event_id, placa, kind, value),
    )
    return event_id


def states(conn: db.Conn, rule: str) -> dict[uuid.UUID, str]:
    rows = conn.execute(
        "SELECT event_id, state FROM alert_sends WHERE rule = %s", (rule,)
    ).fetchall()
    return dict(rows)


def with_app(settings: Settings, target: db.Target, work: Callable[[EtrackApp], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_app(JobEnv(settings, target, FAST)) as app:
            return await work(app)

    return asyncio.run(go())


async def run_workers(
    settings: Settings,
    target: db.Target,
    *,
    workers: int,
    until: Callable[[], bool],
    meanwhile: Callable[[list[EtrackApp]], Awaitable[None]] | None = None,
    timeout_s: float = 60.0,
    schedule: bool = False,
) -> None:
    """Run `workers` workers (each its own App, two jobs at once) until
    `until()` holds, after `meanwhile(apps)` ran beside them; with
    `schedule`, each also defers the periodic ticks, as `etrack worker` does."""
    async with AsyncExitStack() as stack:
        apps = [
            await stack.enter_async_context(
                open_app(JobEnv(settings, target, FAST), schedule=schedule)
            )
            for _ in range(workers)
        ]
        tasks = [
            asyncio.create_task(
                app.run_worker_async(
                    queues=["etrack"],
                    name=f"w{index}",
                    concurrency=2,
                    fetch_job_polling_interval=0.05,
                    listen_notify=False,
                    install_signal_handlers=False,
                    worker_middleware=[record_job],
                )
            )
            for index, app in enumerate(apps)
        ]
        try:
            if meanwhile is not None:
                await meanwhile(apps)
            deadline = time.monotonic() + timeout_s
            while not await asyncio.to_thread(until):
                assert time.monotonic() < deadline, "timed out"
                assert not any(task.done() for task in tasks), [
                    t.exception() for t in tasks if t.done()
                ]
                await asyncio.sleep(0.05)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def etrack_subprocess(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "etrack",
        *args,
        env=subprocess_env(**env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


# ------------------------------------------------------------------- rules
def test_rules_are_added_listed_and_removed(run_etrack: RunEtrack, cli_env: dict[str, str]) -> None:
    code, out, err = run_etrack(
        "alerts", "add", "hook", "--kind", "overspeed", "--webhook", "https://example.com/in/t0k"
    )
    assert code == 0, err
    secret_line = [line for line in out.splitlines() if "secret" in line]
    assert len(secret_line) == 1
    secret = secret_line[0].rsplit(" ", 1)[1]
    assert len(secret) >= 32
    # A name taken is a usage error: a rule is changed by removing it first.
    code, _, err = run_etrack(
        "alerts", "add", "hook", "--kind", "idle", "--email", "ana@example.com"
    )
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "exists" in err
    code, out, err = run_etrack(
        "alerts", "add", "mail", "--kind", "idle,offline", "--fleet", "north", "--email",
        "ana@example.com", "--min-value", "10",
    )  # fmt: skip
    assert code == 0, err
    assert "secret" not in out
    code, out, _ = run_etrack("alerts", "list")
    assert code == 0
    assert "hook: overspeed, every vehicle -> webhook https://example.com/..." in out
    assert "mail: idle,offline, fleet north; value >= 10 -> e-mail ana@example.com" in out
    assert "queued 0, sent 0, failed 0" in out
    assert secret not in out
    assert "t0k" not in out
    assert run_etrack("alerts", "remove", "hook")[0] == 0
    code, _, err = run_etrack("alerts", "remove", "hook")
    assert code == 2
    assert "no alert rule" in err
    assert "hook:" not in run_etrack("alerts", "list")[1]


def test_usage_errors_and_a_database_down(
    run_etrack: RunEtrack, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_etrack("alerts", "add", "x", "--kind", "nope", "--webhook", "http://a.b/")
    assert code == 2
    assert "--kind" in err
    code, _, err = run_etrack("alerts", "replay", "x", "--date-start", "2026-01-01")
    assert code == 2
    assert err.strip().count("\n") == 0
    code, _, err = run_etrack("alerts", "test", "missing")
    assert code == 2
    assert "no alert rule" in err
    monkeypatch.setenv("ETRACK_WEBHOOK_DENY_PRIVATE", "1")
    code, _, err = run_etrack(
        "alerts", "add", "x", "--kind", "idle", "--webhook", "http://127.0.0.1:9/in"
    )
    assert code == 2
    assert "non-public" in err
    assert "127.0.0.1" in err
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, _, err = run_etrack("alerts", "list")
    assert code == 3, err


# ------------------------------------------------------- what gets queued
def test_only_matching_fresh_events_after_the_rule_are_queued(
    alert_settings: Settings, target: db.Target, conn: db.Conn, run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO terminals (placa, frota) VALUES ('ABC1234', 'north'), ('DEF5678', 'south')"
    )
    before = add_event(conn, start="clock_timestamp() - interval '1 minute'")
    for args in (
        ("plates", "--kind", "overspeed", "--plates", "ABC1234", "--min-value", "90"),
        ("fleet", "--kind", "overspeed,idle", "--fleet", "south"),
    ):
        code, _, err = run_etrack("alerts", "add", *args, "--webhook", "http://127.0.0.1:9/")
        assert code == 0, err
    good = add_event(conn)
    add_event(conn, value=85.0)  # below the minimum
    south = add_event(conn, placa="DEF5678")
    south_idle = add_event(conn, placa="DEF5678", kind="idle", value=None)
    add_event(conn, kind="idle")  # a kind neither rule of ABC1234 takes
    add_event(conn, placa="DEF5678", kind="low_battery")

    first = with_app(alert_settings, target, queue_alerts)
    assert first == 3
    assert states(conn, "plates") == {good: "queued"}
    assert states(conn, "fleet") == {south: "queued", south_idle: "queued"}
    # Nothing new: nothing deferred again (their jobs are waiting).
    assert with_app(alert_settings, target, queue_alerts) == 0
    jobs = conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'etrack.deliver_alert'"
    ).fetchone()
    assert jobs == (3,)
    # A replay takes the event from before the rule; nothing is queued twice.
    today = datetime.now(alert_settings.tz).date()
    lo = datetime.combine(today - timedelta(days=1), datetime.min.time(), alert_settings.tz)
    hi = lo + timedelta(days=2)
    assert with_app(alert_settings, target, lambda app: replay_alerts(app, "plates", lo, hi)) == 1
    assert states(conn, "plates") == {good: "queued", before: "queued"}


def test_events_older_than_the_max_age_are_not_sent(
    alert_settings: Settings, target: db.Target, conn: db.Conn, run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    assert (
        run_etrack("alerts", "add", "r", "--kind", "overspeed", "--webhook", "http://a.b/")[0] == 0
    )
    conn.execute("UPDATE alert_rules SET created_at = now() - interval '3 days'")
    old = add_event(conn, start="now() - interval '2 hours'")
    fresh = add_event(conn, start="now() - interval '30 minutes'")
    current = alert_settings.model_copy(update={"etrack_alert_max_age": "1h"})
    assert with_app(current, target, queue_alerts) == 1
    assert states(conn, "r") == {fresh: "queued"}
    # The default 6 h takes the older one too.
    assert with_app(alert_settings, target, queue_alerts) == 1
    assert set(states(conn, "r")) == {old, fresh}


def test_an_event_whose_start_moved_is_not_alerted_again(
    alert_settings: Settings, target: db.Target, conn: db.Conn, run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    """The live samples saw an overspeed start at 10:01; the history fetched
    later shows it began at 10:00: the recompute replaces the event by one
    with another id (ids derive from the start). It is the same run, already
    sent: nothing goes out again. A later, separate run does."""
    assert (
        run_etrack("alerts", "add", "r", "--kind", "overspeed", "--webhook", "http://a.b/")[0] == 0
    )
    conn.execute("UPDATE alert_rules SET created_at = now() - interval '1 day'")

    def event(start: str, end: str) -> uuid.UUID:
        event_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO events (id, placa, kind, start_ts, end_ts, duration_s, value, limit_value)"
            f" VALUES (%s, 'ABC1234', 'overspeed', now() - interval '{start}',"
            f" now() - interval '{end}', 60, 95, 80)",
            (event_id,),
        )
        return event_id

    live = event("50 minutes", "45 minutes")
    assert with_app(alert_settings, target, queue_alerts) == 1
    conn.execute("UPDATE alert_sends SET state = 'sent' WHERE event_id = %s", (live,))
    conn.execute("DELETE FROM events WHERE id = %s", (live,))
    fuller = event("51 minutes", "44 minutes")
    assert with_app(alert_settings, target, queue_alerts) == 0
    assert states(conn, "r") == {live: "sent"}
    later = event("20 minutes", "18 minutes")
    assert with_app(alert_settings, target, queue_alerts) == 1
    assert states(conn, "r") == {live: "sent", later: "queued"}
    assert fuller not in states(conn, "r")


def test_a_pair_queued_without_its_job_is_deferred_again(
    alert_settings: Settings, target: db.Target, conn: db.Conn, run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    assert (
        run_etrack("alerts", "add", "r", "--kind", "overspeed", "--webhook", "http://a.b/")[0] == 0
    )
    event = add_event(conn)
    # As if the process died between the insert and the defer.
    conn.execute(
        "INSERT INTO alert_sends (rule, event_id, placa, kind, start_ts, end_ts)"
        " SELECT 'r', id, placa, kind, start_ts, end_ts FROM events WHERE id = %s",
        (event,),
    )
    assert with_app(alert_settings, target, queue_alerts) == 1
    row = conn.execute("SELECT job_id FROM alert_sends").fetchone()
    assert row is not None
    assert row[0] is not None
    assert with_app(alert_settings, target, queue_alerts) == 0


# ---------------------------------------------------------------- delivery
def test_each_event_is_delivered_exactly_once_with_two_workers_and_two_replays(
    make_receiver: Callable[[Callable[[str, int], int]], Receiver],
    alert_settings: Settings,
    target: db.Target,
    conn: db.Conn,
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:
    flaky: set[str] = set()
    # The flaky events fail twice (500, then 503) before they are taken.
    receiver = make_receiver(
        lambda key, seen: (500, 503)[seen] if key in flaky and seen < 2 else 200
    )
    code, _, err = run_etrack(
        "alerts", "add", "hook", "--kind", "overspeed,idle", "--webhook", receiver.url,
        "--secret", SECRET,
    )  # fmt: skip
    assert code == 0, err
    live = [add_event(conn, kind=("overspeed", "idle")[i % 2]) for i in range(4)]
    past = [add_event(conn, start="now() - interval '1 day'") for _ in range(4)]
    events = live + past
    flaky.update(str(e) for e in events[::2])
    today = datetime.now(alert_settings.tz).date()
    replay = (
        "alerts", "replay", "hook", "--date-start", str(today - timedelta(days=1)),
        "--date-end", str(today),
    )  # fmt: skip

    async def meanwhile(apps: list[EtrackApp]) -> None:
        results = await asyncio.gather(
            queue_alerts(apps[0]),
            queue_alerts(apps[1]),
            etrack_subprocess(cli_env, *replay),
            etrack_subprocess(cli_env, *replay),
        )
        for code, out, err in results[2:]:
            assert code == 0, err
            assert "deliveries queued" in out

    def all_sent() -> bool:
        return set(states(conn, "hook").values()) == {"sent"} and len(states(conn, "hook")) == 8

    asyncio.run(run_workers(alert_settings, target, workers=2, until=all_sent, meanwhile=meanwhile))
    assert receiver.successes() == {str(e): 1 for e in events}
    for request in receiver.requests:
        assert request.rule == "hook"
        assert verify(request.body, SECRET, request.signature)
        payload = json.loads(request.body)
        assert payload["rule"] == "hook"
        assert payload["event"]["id"] == request.key
    attempts = dict(
        conn.execute("SELECT event_id::text, count(*) FROM deliveries GROUP BY 1").fetchall()
    )
    assert attempts == {str(e): 3 if str(e) in flaky else 1 for e in events}
    # Recomputed events (rewritten with the same ids) and another replay send nothing.
    conn.execute("UPDATE events SET computed_at = now()")
    assert with_app(alert_settings, target, queue_alerts) == 0
    code, out, _ = run_etrack(*replay)
    assert code == 0
    assert "0 deliveries queued" in out
    _, listing, _ = run_etrack("alerts", "list")
    assert "queued 0, sent 8, failed 0" in listing


def test_a_receiver_that_always_fails_ends_failed_and_listed(
    make_receiver: Callable[[Callable[[str, int], int]], Receiver],
    alert_settings: Settings,
    target: db.Target,
    conn: db.Conn,
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:
    receiver = make_receiver(lambda key, seen: 500)
    code, _, err = run_etrack(
        "alerts", "add", "down", "--kind", "overspeed", "--webhook", receiver.url, "--secret",
        SECRET,
    )  # fmt: skip
    assert code == 0, err
    event = add_event(conn)

    async def meanwhile(apps: list[EtrackApp]) -> None:
        assert await queue_alerts(apps[0]) == 1

    asyncio.run(
        run_workers(
            alert_settings,
            target,
            workers=1,
            until=lambda: states(conn, "down") == {event: "failed"},
            meanwhile=meanwhile,
        )
    )
    assert len(receiver.requests) == 4  # ETRACK_ALERT_ATTEMPTS
    rows = conn.execute(
        "SELECT attempt, status, http_status FROM deliveries ORDER BY id"
    ).fetchall()
    assert rows == [(n, "failed", 500) for n in range(1, 5)]
    _, listing, _ = run_etrack("alerts", "list")
    assert "queued 0, sent 0, failed 1" in listing
    assert f"last error: webhook {safe_target(receiver.url)} answered HTTP 500" in listing
    # The job's run record says why, without the secret.
    run = conn.execute(
        "SELECT status, error FROM job_runs WHERE kind = 'deliver_alert' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert run is not None
    assert run[0] == "failed"
    assert "HTTP 500" in run[1]
    assert SECRET not in run[1]
    # A forced replay sends it again.
    today = datetime.now(alert_settings.tz).date()
    code, out, _ = run_etrack(
        "alerts", "replay", "down", "--date-start", str(today), "--date-end", str(today), "--force"
    )
    assert code == 0
    assert "1 deliveries queued" in out
    assert states(conn, "down") == {event: "queued"}


def test_the_job_of_a_killed_worker_is_delivered_by_another(
    make_receiver: Callable[[Callable[[str, int], int]], Receiver],
    alert_settings: Settings,
    target: db.Target,
    conn: db.Conn,
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:
    receiver = make_receiver(lambda key, seen: 200)
    code, _, err = run_etrack(
        "alerts", "add", "r", "--kind", "overspeed", "--webhook", receiver.url, "--secret", SECRET
    )
    assert code == 0, err
    event = add_event(conn)

    async def die(app: EtrackApp) -> None:
        assert await queue_alerts(app) == 1
        # A worker takes the job and dies without a word.
        worker_id = await app.job_manager.register_worker()
        job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
        assert job is not None
        assert job.task_name == "etrack.deliver_alert"
        conn.execute(
            "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'"
            " WHERE id = %s",
            (worker_id,),
        )
        assert (await recover_stalled_jobs(app)).counts == {"retried": 1}

    with_app(alert_settings, target, die)
    asyncio.run(
        run_workers(
            alert_settings, target, workers=1, until=lambda: states(conn, "r") == {event: "sent"}
        )
    )
    assert receiver.successes() == {str(event): 1}


def test_alerts_test_sends_a_signed_synthetic_event(
    make_receiver: Callable[[Callable[[str, int], int]], Receiver],
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
    conn: db.Conn,
) -> None:
    receiver = make_receiver(lambda key, seen: 202)
    code, _, err = run_etrack(
        "alerts", "add", "t", "--kind", "idle", "--plates", "ABC1234", "--webhook", receiver.url,
        "--secret", SECRET,
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_etrack("alerts", "test", "t")
    assert code == 0, err
    assert "delivered (HTTP 202)" in out
    (request,) = receiver.requests
    assert verify(request.body, SECRET, request.signature)
    payload = json.loads(request.body)
    assert payload["test"] is True
    assert payload["event"]["kind"] == "idle"
    assert payload["event"]["placa"] == "ABC1234"
    # Outside the bookkeeping.
    assert conn.execute("SELECT count(*) FROM deliveries").fetchone() == (0,)


# ------------------------------------------------------------------ e-mail
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    from aiosmtpd.controller import Controller

    received: list[Message] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.original_content)
            message["X-Rcpt"] = ",".join(envelope.rcpt_tos)
            received.append(message)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


def test_email_alerts_in_portuguese_through_a_real_smtp_server(
    smtp_server: tuple[int, list[Message]],
    alert_settings: Settings,
    target: db.Target,
    conn: db.Conn,
    run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:
    port, received = smtp_server
    code, _, err = run_etrack(
        "alerts", "add", "mail", "--kind", "overspeed", "--email", "ana@example.com,bia@example.com"
    )
    assert code == 0, err
    event = add_event(conn)
    current = alert_settings.model_copy(
        update={
            "etrack_smtp_url": pydantic_secret(f"smtp://127.0.0.1:{port}"),
            "etrack_web_public_url": "https://frota.example.com",
        }
    )

    async def meanwhile(apps: list[EtrackApp]) -> None:
        assert await queue_alerts(apps[0]) == 1

    asyncio.run(
        run_workers(
            current,
            target,
            workers=1,
            until=lambda: states(conn, "mail") == {event: "sent"},
            meanwhile=meanwhile,
        )
    )
    (message,) = received
    assert message["X-Rcpt"] == "ana@example.com,bia@example.com"
    assert str(message["Subject"]).startswith("[etrack] Excesso de velocidade: ABC1234 em ")
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert "Valor: 95,0 km/h" in text
    day = conn.execute(
        "SELECT (start_ts AT TIME ZONE 'America/Sao_Paulo')::date FROM events"
    ).fetchone()
    assert day is not None
    assert f"https://frota.example.com/vehicles/ABC1234/{day[0]}" in text


def test_an_smtp_failure_never_shows_the_password(
    run_etrack: RunEtrack, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_etrack("alerts", "add", "m", "--kind", "idle", "--email", "a@example.com")[0] == 0
    monkeypatch.setenv("ETRACK_SMTP_URL", f"smtp://ana:hunter2-pw@127.0.0.1:{free_port()}")
    code, out, err = run_etrack("alerts", "test", "m")
    assert code == 1
    assert "not delivered" in err
    assert "hunter2-pw" not in out + err


def pydantic_secret(value: str) -> Any:
    import pydantic

    return pydantic.SecretStr(value)


# ------------------------------------------------------------- by fence
def add_fences(conn: db.Conn, *names: str) -> None:
    fences = [
        Fence(name, "circle", {"type": "Point", "coordinates": [-46.6 + i / 100, -23.5]}, 200.0)
        for i, name in enumerate(names)
    ]
    upsert_fences(conn, fences)


def fence_event(
    conn: db.Conn, kind: str, fence: str | None, at: datetime, *, value: float | None = None
) -> uuid.UUID:
    """An event at `at` decided by `fence` (its `rule` 'fence:NAME'), or by
    no fence (None: the settings' rule, as an overspeed over the base limit)."""
    event_id = uuid.uuid4()
    conn.execute(
        "INSERT INTO events (id, placa, kind, start_ts, end_ts, duration_s, value, rule)"
        " VALUES (%s, 'ABC1234', %s, %s, %s, 0, %s, %s)",
        (event_id, kind, at, at, value, "settings" if fence is None else f"fence:{fence}"),
    )
    return event_id


def test_a_rule_with_fences_queues_their_events_only(
    alert_settings: Settings, target: db.Target, conn: db.Conn, run_etrack: RunEtrack,
    cli_env: dict[str, str],
) -> None:  # fmt: skip
    add_fences(conn, "Depot A", "Cliente B")
    for args in (
        ("depot", "--kind", "geofence_enter,geofence_exit", "--fence", "Depot A"),
        ("any", "--kind", "geofence_enter,geofence_exit"),
        ("speed", "--kind", "overspeed,idle", "--fence", " Depot A ,Depot A"),
    ):
        code, _, err = run_etrack("alerts", "add", *args, "--webhook", "http://127.0.0.1:9/")
        assert code == 0, err
    # The events below are of the last minutes: the rules are older.
    conn.execute("UPDATE alert_rules SET created_at = now() - interval '1 day'")
    now = datetime.now(alert_settings.tz)
    a_enter = fence_event(conn, "geofence_enter", "Depot A", now - timedelta(minutes=20))
    a_exit = fence_event(conn, "geofence_exit", "Depot A", now - timedelta(minutes=10), value=10)
    # Both fences entered at the same instant (one position inside both):
    # two events at one moment, two alerts, not one event "moved".
    same = now - timedelta(minutes=5)
    a_same = fence_event(conn, "geofence_enter", "Depot A", same)
    b_same = fence_event(conn, "geofence_enter", "Cliente B", same)
    b_exit = fence_event(conn, "geofence_exit", "Cliente B", now - timedelta(minutes=2), value=3)
    # Overspeed under Depot A's own limit, and one over the base limit (no fence).
    a_speed = fence_event(conn, "overspeed", "Depot A", now - timedelta(minutes=15), value=60)
    fence_event(conn, "overspeed", None, now - timedelta(minutes=8), value=95)
    fence_event(conn, "idle", None, now - timedelta(minutes=7), value=12)

    assert with_app(alert_settings, target, queue_alerts) == 3 + 5 + 1
    assert states(conn, "depot") == {a_enter: "queued", a_exit: "queued", a_same: "queued"}
    assert states(conn, "any") == dict.fromkeys((a_enter, a_exit, a_same, b_same, b_exit), "queued")
    assert states(conn, "speed") == {a_speed: "queued"}
    jobs = conn.execute(
        "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'etrack.deliver_alert'"
    ).fetchone()
    assert jobs == (9,)
    # Cliente B left at the moment Depot A was left, found by a later
    # queueing (computed later): a second alert, not Depot A's exit "moved".
    b_late = fence_event(conn, "geofence_exit", "Cliente B", now - timedelta(minutes=10), value=1)
    assert with_app(alert_settings, target, queue_alerts) == 1
    assert states(conn, "any")[b_late] == "queued"
    # Nothing twice: the fence kinds skip the overlap test, the primary key still holds.
    assert with_app(alert_settings, target, queue_alerts) == 0

    code, out, _ = run_etrack("alerts", "list")
    assert code == 0
    assert "depot: geofence_enter,geofence_exit, fence Depot A -> webhook" in out
    assert "any: geofence_enter,geofence_exit, every vehicle -> webhook" in out
    code, out, _ = run_etrack("alerts", "list", "--format", "json")
    assert code == 0
    listed = {rule["name"]: rule for rule in json.loads(out)}
    assert listed["depot"]["fences"] == ["Depot A"]
    assert listed["speed"]["fences"] == ["Depot A"]
    assert listed["any"]["fences"] is None
    assert listed["depot"]["queued"] == 3
    assert listed["depot"]["target"] == "http://127.0.0.1:9"
    assert all("secret" not in rule for rule in listed.values())


def test_the_two_fences_of_one_instant_are_both_delivered(
    alert_settings: Settings, target: db.Target, conn: db.Conn, run_etrack: RunEtrack,
    cli_env: dict[str, str], make_receiver: Callable[[Callable[[str, int], int]], Receiver],
) -> None:  # fmt: skip
    receiver = make_receiver(lambda key, seen: 200)
    add_fences(conn, "Depot A", "Cliente B")
    code, _, err = run_etrack(
        "alerts", "add", "both", "--kind", "geofence_enter", "--fence", "Depot A,Cliente B",
        "--webhook", receiver.url, "--secret", SECRET,
    )  # fmt: skip
    assert code == 0, err
    conn.execute("UPDATE alert_rules SET created_at = now() - interval '1 day'")
    same = datetime.now(alert_settings.tz) - timedelta(minutes=1)
    # One position inside both fences; Depot A's event is queued first,
    # Cliente B's is found by the next queueing: both go out.
    events = {str(fence_event(conn, "geofence_enter", "Depot A", same))}
    assert with_app(alert_settings, target, queue_alerts) == 1
    events.add(str(fence_event(conn, "geofence_enter", "Cliente B", same)))
    assert with_app(alert_settings, target, queue_alerts) == 1

    asyncio.run(
        run_workers(
            alert_settings, target, workers=1, until=lambda: set(receiver.successes()) == events
        )
    )
    assert receiver.successes() == dict.fromkeys(events, 1)
    assert set(states(conn, "both").values()) == {"sent"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--kind", "geofence_enter", "--fence", ""), "--fence: expected a fence name"),
        (("--kind", "geofence_enter", "--fence", " , "), "--fence: expected a fence name"),
        (
            ("--kind", "geofence_exit", "--fence", "Depot A,Nowhere"),
            "--fence: no fence named 'Nowhere' (etrack geofences list)",
        ),
        (
            ("--kind", "idle", "--fence", "Depot A"),
            "--fence: a rule with fences needs one of the kinds a fence decides: "
            "geofence_enter, geofence_exit, overspeed",
        ),
    ],
)
def test_bad_fences_are_usage_errors(
    conn: db.Conn, run_etrack: RunEtrack, cli_env: dict[str, str], args: tuple[str, ...],
    message: str,
) -> None:  # fmt: skip
    add_fences(conn, "Depot A")
    code, out, err = run_etrack("alerts", "add", "r", *args, "--webhook", "http://127.0.0.1:9/")
    assert code == 2
    assert err.strip() == f"etrack: error: {message}"
    assert "rule r added" not in out
    assert conn.execute("SELECT count(*) FROM alert_rules").fetchone() == (0,)
