"""Several eTrac accounts in one database: real two-account simulator over
HTTP, real PostgreSQL, Procrastinate's real worker for the backfill."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import pytest

from etrack.config import Settings, load_accounts
from etrack.jobs import backfill as bf
from etrack.jobs.app import open_app
from etrack.jobs.daily import DailyOptions, fetch_latest_once, run_daily
from etrack.jobs.env import EtrackApp, JobEnv
from etrack.simulator.config import Account as SimAccount
from etrack.simulator.server import SimulatorHandle
from etrack.store import db
from etrack.store.accounts import states
from fixtures_jobs import FAST
from fixtures_simulator import SIMULATOR_TZ, MakeSimulator

T = TypeVar("T")

DAYS = (date(2025, 1, 5), date(2025, 1, 7))
# Each account's own budget, enforced by the simulator (429 beyond it) and
# configured identically in the accounts file: no 429 means each stayed
# within its own limit.
NORTH = SimAccount("north@example.com", "north-key", vehicles=3, rate_limit_per_s=20.0)
SOUTH = SimAccount("south@example.com", "south-key", vehicles=2, rate_limit_per_s=10.0)


def accounts_toml(sim: SimulatorHandle, *, south_key_env: str = "SOUTH_ETRAC_KEY") -> str:
    return f"""
[accounts.north]
user = "{NORTH.user}"
key = "{NORTH.key}"
api_base = "{sim.base_url}"
rate_limit = {NORTH.rate_limit_per_s}

[accounts.south]
user = "{SOUTH.user}"
key_env = "{south_key_env}"
api_base = "{sim.base_url}"
timezone = "America/Sao_Paulo"
rate_limit = {SOUTH.rate_limit_per_s}
"""


@pytest.fixture
def two_accounts(make_simulator: MakeSimulator) -> SimulatorHandle:
    return make_simulator(accounts=(NORTH, SOUTH))


@pytest.fixture
def accounts_settings(
    settings: Settings,
    two_accounts: SimulatorHandle,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    monkeypatch.setenv("SOUTH_ETRAC_KEY", SOUTH.key)
    path = tmp_path / "accounts.toml"
    path.write_text(accounts_toml(two_accounts))
    return settings.model_copy(update={"etrack_accounts_file": path})


@pytest.fixture(autouse=True)
def _month_partitions(conn: db.Conn) -> None:
    conn.execute("SELECT ensure_positions_partition('2025-01-15 00:00+00')")
    conn.execute("SELECT ensure_positions_partition('2024-12-15 00:00+00')")


def with_app(settings: Settings, target: db.Target, work: Callable[[EtrackApp], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_app(JobEnv(settings, target, FAST, pool_size=5)) as app:
            return await work(app)

    return asyncio.run(go())


def owners(conn: db.Conn) -> dict[str, str | None]:
    return dict(conn.execute("SELECT placa, account FROM terminals").fetchall())  # type: ignore[arg-type]


def stored_count(conn: db.Conn, plates: list[str], first: date, last: date) -> int:
    start = _utc_midnight(first)
    end = _utc_midnight(last + timedelta(days=1))
    row = conn.execute(
        "SELECT count(*) FROM positions WHERE placa = ANY(%s)"
        " AND data_transmissao >= %s AND data_transmissao < %s",
        (plates, start, end),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _utc_midnight(day: date) -> Any:
    from datetime import datetime, time

    return datetime.combine(day, time(0), SIMULATOR_TZ)


def expected_count(sim: SimulatorHandle, plates: list[str], first: date, last: date) -> int:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return sum(len(sim.fleet.expected_positions(p, d)) for p in plates for d in days)


def test_fetch_latest_backfill_and_daily_over_two_accounts_are_exact(
    two_accounts: SimulatorHandle,
    accounts_settings: Settings,
    target: db.Target,
    conn: db.Conn,
) -> None:
    sim = two_accounts
    north, south = sim.fleet.plates(account=NORTH.user), sim.fleet.plates(account=SOUTH.user)
    assert not set(north) & set(south)

    outcome = with_app(accounts_settings, target, fetch_latest_once)
    assert outcome.status == "succeeded", outcome.summary
    assert owners(conn) == {**dict.fromkeys(north, "north"), **dict.fromkeys(south, "south")}

    async def backfill(app: EtrackApp) -> bf.EnqueueResult:
        request = bf.BackfillRequest(date_start=DAYS[0], date_end=DAYS[1], plates=None)
        result = await bf.plan(app, request)
        assert await bf.work_off(app, result.backfill, concurrency=4, poll_s=0.1)
        return result

    result = with_app(accounts_settings, target, backfill)
    assert result.queued == 3 * (len(north) + len(south))
    for plates in (north, south):
        assert stored_count(conn, plates, *DAYS) == expected_count(sim, plates, *DAYS)
    assert sim.stats().max_history_fetches() == 1

    day = date(2025, 1, 4)
    daily = with_app(accounts_settings, target, lambda app: run_daily(app, DailyOptions(day=day)))
    assert daily.complete, daily.line()
    assert daily.plates == len(north) + len(south)
    for plates in (north, south):
        assert stored_count(conn, plates, day, day) == expected_count(sim, plates, day, day)
        trips = conn.execute(
            "SELECT count(*) FROM trips WHERE placa = ANY(%s)", (plates,)
        ).fetchone()
        assert trips == (sum(len(sim.fleet.trip_summaries(p, day)) for p in plates),)
    # Every request of each account stayed within that account's own limit.
    assert sim.stats().count(status=429) == 0
    assert sim.stats().count(status=401) == 0

    with db.connection(target) as c:
        found = {s.name: s for s in states(c, load_accounts(accounts_settings))}
    assert {name: (s.state, s.vehicles) for name, s in found.items()} == {
        "north": ("ok", len(north)),
        "south": ("ok", len(south)),
    }


def test_one_account_with_a_broken_key_does_not_stop_the_other_and_recovers(
    two_accounts: SimulatorHandle,
    accounts_settings: Settings,
    target: db.Target,
    conn: db.Conn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = two_accounts
    north, south = sim.fleet.plates(account=NORTH.user), sim.fleet.plates(account=SOUTH.user)
    monkeypatch.setenv("SOUTH_ETRAC_KEY", "wrong-key")

    async def scenario(app: EtrackApp) -> None:
        first = await fetch_latest_once(app)
        assert first.status == "succeeded"
        assert "account south failed: AuthenticationError" in first.summary
        assert set(owners(conn)) == set(north)
        state = dict(
            conn.execute("SELECT name, state FROM accounts").fetchall()  # type: ignore[arg-type]
        )
        assert state == {"north": "ok", "south": "failing"}
        refused = sim.stats().count(status=401)
        assert refused >= 1

        # Still broken: south is left alone (slow retry pace), north goes on.
        before = conn.execute("SELECT count(*) FROM positions").fetchone()
        second = await fetch_latest_once(app)
        assert "account south skipped" in second.summary
        assert sim.stats().count(status=401) == refused
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == before

        # The key is fixed (the variable the file names): no restart needed,
        # the changed credentials are tried at once.
        monkeypatch.setenv("SOUTH_ETRAC_KEY", SOUTH.key)
        third = await fetch_latest_once(app)
        assert third.status == "succeeded", third.summary

    with_app(accounts_settings, target, scenario)
    assert owners(conn) == {**dict.fromkeys(north, "north"), **dict.fromkeys(south, "south")}
    row = conn.execute("SELECT state, reason FROM accounts WHERE name = 'south'").fetchone()
    assert row == ("ok", None)


def test_a_plate_moved_to_another_account_is_followed_and_logged(
    accounts_settings: Settings, two_accounts: SimulatorHandle, target: db.Target, conn: db.Conn
) -> None:
    north = two_accounts.fleet.plates(account=NORTH.user)
    with_app(accounts_settings, target, fetch_latest_once)
    moved = north[0]
    # As if the plate had been listed by south until now.
    conn.execute("UPDATE terminals SET account = 'south' WHERE placa = %s", (moved,))
    with_app(accounts_settings, target, fetch_latest_once)
    assert owners(conn)[moved] == "north"
    assert conn.execute(
        "SELECT placa, from_account, to_account FROM terminal_moves"
    ).fetchall() == [(moved, "south", "north")]


def test_single_account_without_a_file_is_named_default(
    settings: Settings, make_simulator: MakeSimulator, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(vehicles=2)
    current = settings.model_copy(
        update={
            "etrac_api_base": sim.base_url,
            "etrac_user": sim.user,
            "etrac_key": pydantic.SecretStr(sim.key),
        }
    )
    assert [a.name for a in load_accounts(current)] == ["default"]
    with_app(current, target, fetch_latest_once)
    assert set(owners(conn).values()) == {"default"}
    assert conn.execute("SELECT name, state FROM accounts").fetchall() == [("default", "ok")]


# ----------------------------------------------------------------- the web
def load_both(settings: Settings, target: db.Target) -> None:
    async def load(app: EtrackApp) -> None:
        request = bf.BackfillRequest(date_start=DAYS[0], date_end=DAYS[1], plates=None)
        result = await bf.plan(app, request)
        assert await bf.work_off(app, result.backfill, concurrency=4, poll_s=0.1)

    with_app(settings, target, load)


def web_client(settings: Settings, target: db.Target) -> Iterator[Any]:
    import warnings

    from etrack.web import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as client:
        yield client


def test_a_user_restricted_to_one_account_never_sees_the_other_accounts_plates(
    two_accounts: SimulatorHandle, accounts_settings: Settings, target: db.Target
) -> None:
    sim = two_accounts
    north, south = sim.fleet.plates(account=NORTH.user), sim.fleet.plates(account=SOUTH.user)
    load_both(accounts_settings, target)
    restricted = accounts_settings.model_copy(update={"etrack_web_accounts": "north"})
    day = DAYS[1].isoformat()

    def leaks(text: str) -> list[str]:
        return [p for p in south if p in text]

    for client in web_client(restricted, target):
        listing = client.get("/api/vehicles").json()
        assert sorted(v["placa"] for v in listing["vehicles"]) == sorted(north)
        # Everything a user can list, export or browse: no plate of south.
        for url in (
            "/api/vehicles",
            "/api/vehicles?plate=A",
            f"/api/summaries?start={DAYS[0]}&end={DAYS[1]}",
            f"/api/report?date={day}",
            f"/api/report/export/csv?date={day}",
            "/api/jobs/runs",
            "/api/backfills",
            "/healthz",
            "/",
            f"/report?date={day}",
            "/jobs",
            "/db/terminals",
            "/db/positions",
            "/db/trips",
            "/db/routes",
            "/?account=south",
            "/api/vehicles?account=south",
        ):
            response = client.get(url)
            assert response.status_code < 500, url
            assert leaks(response.text) == [], url
        # Asking for a south plate by name finds nothing.
        for placa in south:
            for url in (
                f"/api/vehicles/{placa}",
                f"/api/vehicles/{placa}/days/{day}",
                f"/api/vehicles/{placa}/days/{day}/route",
                f"/api/vehicles/{placa}/days/{day}/trips",
                f"/api/vehicles/{placa}/days/{day}/export/csv",
                f"/vehicles/{placa}/{day}",
            ):
                assert client.get(url).status_code == 404, url
            positions = client.get(f"/api/vehicles/{placa}/positions?date={day}")
            assert positions.status_code == 404 or positions.json()["positions"] == []
            routes = client.get(f"/api/routes/{placa}")
            assert routes.status_code == 404 or routes.json()["features"] == []
        # (?account= clears the filter picked above; the restriction stays.)
        health = client.get("/healthz?account=").json()
        assert [a["name"] for a in health["accounts"]] == ["north"]
        assert health["accounts"][0]["state"] == "ok"

    # Unrestricted, the filter narrows any page to one account.
    for client in web_client(accounts_settings, target):
        picked = client.get("/api/vehicles?account=south").json()
        assert sorted(v["placa"] for v in picked["vehicles"]) == sorted(south)
        # The choice sticks (cookie) until cleared with ?account=.
        again = client.get("/api/vehicles").json()
        assert sorted(v["placa"] for v in again["vehicles"]) == sorted(south)
        cleared = client.get("/api/vehicles?account=").json()
        assert len(cleared["vehicles"]) == len(north) + len(south)
        health = client.get("/healthz").json()
        assert {a["name"]: a["state"] for a in health["accounts"]} == {
            "north": "ok",
            "south": "ok",
        }


def test_etrack_accounts_lists_and_checks_and_the_web_reports_the_broken_one(
    two_accounts: SimulatorHandle,
    accounts_settings: Settings,
    target: db.Target,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    north = two_accounts.fleet.plates(account=NORTH.user)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ETRACK_ACCOUNTS_FILE", str(accounts_settings.etrack_accounts_file))
    monkeypatch.setenv("SOUTH_ETRAC_KEY", "wrong-key")

    assert run_cli(["accounts", "check"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"north: ok, {len(north)} vehicles"
    assert out[1].startswith("south: credentials refused:")
    assert "wrong-key" not in "".join(out)

    assert run_cli(["fetch-latest", "--account", "north"]) == 0
    capsys.readouterr()
    assert run_cli(["accounts", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "account", "vehicles", "last", "success", "start", "pace/s", "learned",
        "429s/requests", "latency", "state",
    ]  # fmt: skip
    assert lines[1].split()[:2] == ["north", str(len(north))]
    assert lines[1].endswith("ok")
    assert lines[2].split()[:3] == ["south", "0", "never"]
    assert "failing: " in lines[2]
    assert "HTTP 401" in lines[2]

    for client in web_client(accounts_settings, target):
        health = client.get("/healthz").json()
        states = {a["name"]: (a["state"], a["reason"]) for a in health["accounts"]}
        assert states["north"] == ("ok", None)
        assert states["south"][0] == "failing"
        assert "HTTP 401" in states["south"][1]
        page = client.get("/jobs").text
        assert 'data-account="south" data-state="failing"' in page


def run_cli(argv: list[str]) -> int:
    from etrack import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv, prog_name="etrack")
    return int(exit_info.value.code or 0)


def test_daily_and_backfill_for_one_account_touch_only_its_plates(
    two_accounts: SimulatorHandle, accounts_settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    sim = two_accounts
    north, south = sim.fleet.plates(account=NORTH.user), sim.fleet.plates(account=SOUTH.user)
    day = date(2025, 1, 6)

    daily = with_app(
        accounts_settings,
        target,
        lambda app: run_daily(app, DailyOptions(day=day, account="south")),
    )
    assert daily.plates == len(south)
    assert not daily.complete  # one account is not the whole fleet: the day stays due
    assert stored_count(conn, south, day, day) == expected_count(sim, south, day, day)
    assert stored_count(conn, north, day, day) == 0
    assert conn.execute("SELECT count(*) FROM daily_runs").fetchone() == (0,)

    async def backfill(app: EtrackApp) -> bf.EnqueueResult:
        request = bf.BackfillRequest(
            date_start=DAYS[0], date_end=DAYS[1], plates=None, account="north"
        )
        result = await bf.plan(app, request)
        assert await bf.work_off(app, result.backfill, concurrency=4, poll_s=0.1)
        return result

    result = with_app(accounts_settings, target, backfill)
    assert sorted(result.backfill.plates) == sorted(north)
    assert stored_count(conn, north, *DAYS) == expected_count(sim, north, *DAYS)
    assert sim.stats().count(status=429) == 0
