"""Events in a real PostgreSQL: computed from stored valid positions, stored
idempotently (twice = one copy, no rewrite; new positions update rather than
duplicate), offline opened and closed from latest_positions, the CLI listing
and the paged API; and against the simulator through the real collector."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import warnings
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from etrack.collect import open_collector
from etrack.config import Settings, parse_working_hours
from etrack.events.compute import compute_events, detect_offline, event_id
from etrack.events.params import EventParams, Thresholds
from etrack.model import VALID, Position
from etrack.simulator.server import SimulatorHandle
from etrack.store import db
from etrack.store import positions as ingest
from etrack.web import create_app
from fixtures_cli import RunEtrack
from fixtures_simulator import MakeSimulator

with warnings.catch_warnings():
    # Starlette's TestClient warns that it will move to httpx2; nothing to act on here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TZ = ZoneInfo("America/Sao_Paulo")
DAY = date(2025, 3, 4)  # a Tuesday
NOON = datetime(2025, 3, 4, 12, 0, tzinfo=TZ)
PARAMS = EventParams(base=Thresholds(tz=TZ))
PLATE = "ABC1D23"
OTHER = "XYZ9876"


def position(
    placa: str,
    at: datetime,
    speed: float | None,
    *,
    ignition: bool | None = True,
    battery: float | None = 12.6,
    delay_s: float = 5.0,
    quality: str = VALID,
    index: int = 0,
) -> Position:
    return Position(
        placa, at, -23.55 + index * 0.001, -46.63, speed, ignition, 1000.0 + index, None, None,
        battery, f"Rua {index}", "Van", "Entregas", None, at + timedelta(seconds=delay_s), placa,
        quality, {},
    )  # fmt: skip


def drive(
    placa: str, start: datetime, speeds: Sequence[float], step_s: float = 30.0
) -> list[Position]:
    return [
        position(placa, start + timedelta(seconds=k * step_s), s, index=k)
        for k, s in enumerate(speeds)
    ]


def store(conn: db.Conn, rows: list[Position]) -> None:
    ingest.store_positions(conn, rows)


def events(conn: db.Conn, kind: str | None = None) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, placa, kind, start_ts, end_ts, duration_s, value, limit_value, latitude,"
            " longitude, logradouro, driver, rule, computed_at, xmin::text AS xmin FROM events"
            " WHERE %(kind)s::text IS NULL OR kind = %(kind)s ORDER BY start_ts, placa, kind",
            {"kind": kind},
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# ------------------------------------------------------------ computation
def test_an_overspeed_event_is_stored_with_where_it_began(conn: db.Conn) -> None:
    # 60 km/h, then 90..110 for 2 min, then 70: one event from 12:00:30 to 12:03:00.
    store(conn, drive(PLATE, NOON, [60, 90, 100, 110, 95, 85, 70, 60]))
    summary = compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    assert summary.by_kind["overspeed"] == 1
    (event,) = events(conn, "overspeed")
    start = NOON + timedelta(seconds=30)
    assert event["id"] == event_id(PLATE, "overspeed", start)
    assert event["start_ts"] == start
    assert event["end_ts"] == NOON + timedelta(seconds=180)
    assert event["duration_s"] == 150
    assert event["value"] == 110
    assert event["limit_value"] == 80
    assert (event["latitude"], event["logradouro"]) == (pytest.approx(-23.549), "Rua 1")
    assert event["rule"] == "settings"


def test_only_valid_positions_count(conn: db.Conn) -> None:
    rows = drive(PLATE, NOON, [60, 90, 100, 110, 95, 85, 70])
    # The 110 is a GPS jump: without it, the run is 12:00:30-12:01:00 and 12:01:30-...
    rows[3] = rows[3]._replace(quality="jump")
    store(conn, rows)
    compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    assert [e["value"] for e in events(conn, "overspeed")] == [100]


def test_computing_twice_keeps_one_copy_and_rewrites_nothing(conn: db.Conn) -> None:
    store(conn, drive(PLATE, NOON, [60, 90, 100, 110, 95, 85, 70, 60]))
    store(conn, drive(OTHER, NOON, [0] * 20, step_s=60))  # idle 19 min
    first = compute_events(conn, None, DAY, DAY, PARAMS)
    assert first.inserted == 2
    assert first.plates == 2
    before = events(conn)
    second = compute_events(conn, None, DAY, DAY, PARAMS)
    assert (second.inserted, second.updated, second.deleted, second.unchanged) == (0, 0, 0, 2)
    # Same rows, same row versions (xmin) and computed_at: nothing was written.
    assert events(conn) == before
    assert sorted(e["kind"] for e in before) == ["idle", "overspeed"]


def test_two_computations_at_once_store_one_copy(conn: db.Conn, target: db.Target) -> None:
    for k in range(4):
        store(conn, drive(PLATE, NOON + timedelta(minutes=20 * k), [90, 95, 100, 60]))
    results: list[Any] = []

    def run() -> None:
        results.append(compute_events(target, [PLATE], DAY, DAY, PARAMS))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert sum(r.inserted for r in results) == 4
    assert len(events(conn, "overspeed")) == 4


def test_new_positions_update_the_event_rather_than_duplicate_it(conn: db.Conn) -> None:
    # The fetch so far ends while still speeding: the event ends at its last point.
    store(conn, drive(PLATE, NOON, [60, 90, 100, 110]))
    compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    (early,) = events(conn, "overspeed")
    assert early["end_ts"] == NOON + timedelta(seconds=90)
    # The rest arrives later (a backfill): the same event, now ending back under the limit.
    later = drive(PLATE, NOON, [60, 90, 100, 110, 120, 95, 70])[4:]
    store(conn, later)
    summary = compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    assert (summary.inserted, summary.updated) == (0, 1)
    (event,) = events(conn, "overspeed")
    assert event["id"] == early["id"]
    assert event["end_ts"] == NOON + timedelta(seconds=180)
    assert event["value"] == 120


def test_an_event_no_longer_found_is_deleted_and_other_kinds_stay(conn: db.Conn) -> None:
    store(conn, drive(PLATE, NOON, [60, 90, 100, 110, 95, 85, 70]))
    compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    assert len(events(conn, "overspeed")) == 1
    detect_offline(conn, NOON + timedelta(hours=5), PARAMS)
    assert len(events(conn, "offline")) == 1
    stricter = EventParams(base=Thresholds(tz=TZ, speed_limit_kmh=120))
    summary = compute_events(conn, [PLATE], DAY, DAY, stricter)
    assert summary.deleted == 1
    assert events(conn, "overspeed") == []
    # Offline is not a kind compute_events owns.
    assert len(events(conn, "offline")) == 1


def test_a_run_crossing_midnight_is_one_event_whichever_day_is_computed(conn: db.Conn) -> None:
    start = datetime(2025, 3, 4, 23, 58, tzinfo=TZ)
    store(conn, drive(PLATE, start, [100] * 9 + [50], step_s=30))  # 23:58:00-00:02:30
    compute_events(conn, [PLATE], DAY + timedelta(days=1), DAY + timedelta(days=1), PARAMS)
    assert events(conn, "overspeed") == []  # it starts on the 4th
    compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    (event,) = events(conn, "overspeed")
    assert (event["start_ts"], event["end_ts"]) == (start, start + timedelta(seconds=270))
    compute_events(conn, [PLATE], DAY, DAY + timedelta(days=1), PARAMS)
    assert len(events(conn, "overspeed")) == 1


def test_a_run_short_of_its_minimum_at_midnight_is_followed_into_the_next_day(
    conn: db.Conn,
) -> None:
    """With a gap shorter than the minimum, the day's window ends (a gap after
    midnight) while the run is still too short to count: it must still be
    followed past midnight, where it reaches its minimum."""
    # Working hours all week, all day: no after-hours run reaches the edge instead.
    always = parse_working_hours("mon-sun 00:00-24:00")
    params = EventParams(
        base=Thresholds(tz=TZ, max_gap_s=300, overspeed_min_s=600, working_hours=always)
    )
    start = datetime(2025, 3, 4, 23, 58, tzinfo=TZ)
    store(conn, drive(PLATE, start, [100] * 40 + [50], step_s=30))  # 23:58 -> 00:18
    compute_events(conn, [PLATE], DAY, DAY, params)
    (event,) = events(conn, "overspeed")
    assert (event["start_ts"], event["end_ts"]) == (start, start + timedelta(seconds=1200))


def test_batches_of_one_plate_day_give_the_same_events(
    conn: db.Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = datetime(2025, 3, 4, 23, 58, tzinfo=TZ)
    store(conn, drive(PLATE, start, [100] * 9 + [50], step_s=30))
    store(conn, drive(OTHER, NOON, [60, 90, 100, 110, 95, 85, 70]))
    days = (DAY, DAY + timedelta(days=1))
    compute_events(conn, None, *days, PARAMS)
    whole = [(e["id"], e["end_ts"], e["value"]) for e in events(conn)]
    # Two overspeed runs, and the night one is after hours too.
    assert sorted(e["kind"] for e in events(conn)) == ["after_hours", "overspeed", "overspeed"]
    conn.execute("DELETE FROM events")
    # One plate and one day per batch and per chunk of days.
    monkeypatch.setattr("etrack.events.compute.MAX_CHUNK_DAYS", 1)
    summary = compute_events(conn, None, *days, PARAMS, batch_plate_days=1)
    assert summary.inserted == 3
    assert [(e["id"], e["end_ts"], e["value"]) for e in events(conn)] == whole


def test_a_run_past_the_window_is_followed_for_its_end(conn: db.Conn) -> None:
    # Ignition on all night: after hours from 22:00 to 09:00 the next day, every 20 min.
    start = datetime(2025, 3, 4, 22, 0, tzinfo=TZ)
    rows = [position(PLATE, start + timedelta(minutes=20 * k), 0.0, index=k) for k in range(34)]
    store(conn, rows)
    compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    (event,) = events(conn, "after_hours")
    # Working hours begin at 07:00 on Wednesday: the first position then ends it.
    assert event["start_ts"] == start
    assert event["end_ts"] == datetime(2025, 3, 5, 7, 0, tzinfo=TZ)


def test_overrides_set_the_thresholds_and_the_rule(conn: db.Conn, tmp_path: Path) -> None:
    store(conn, drive(PLATE, NOON, [60, 70, 75, 75, 75, 60]))
    path = tmp_path / "events.toml"
    path.write_text('[fleet."Entregas"]\nspeed_limit_kmh = 65\n', encoding="utf-8")
    settings = Settings(_env_file=None, etrack_events_file=path)  # type: ignore[call-arg]
    compute_events(conn, [PLATE], DAY, DAY, EventParams.from_settings(settings))
    (event,) = events(conn, "overspeed")
    assert (event["limit_value"], event["rule"], event["value"]) == (65, "fleet:Entregas", 75)


def test_a_plate_without_positions_loses_its_events(conn: db.Conn) -> None:
    store(conn, drive(PLATE, NOON, [60, 90, 100, 110, 95, 85, 70]))
    compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    conn.execute("DELETE FROM positions WHERE placa = %s", [PLATE])
    summary = compute_events(conn, [PLATE], DAY, DAY, PARAMS)
    assert summary.deleted == 1
    assert events(conn) == []


# ----------------------------------------------------------------- offline
def test_offline_opens_once_and_closes_when_the_vehicle_reports_again(conn: db.Conn) -> None:
    store(conn, drive(PLATE, NOON, [30, 30, 30]))  # last at 12:01
    store(conn, drive(OTHER, NOON + timedelta(hours=2), [30, 30]))  # last at 14:00:30
    now = NOON + timedelta(hours=3)
    counts = detect_offline(conn, now, PARAMS)
    assert (counts.opened, counts.closed, counts.open_now) == (1, 0, 1)
    (event,) = events(conn, "offline")
    last = NOON + timedelta(seconds=60)
    assert (event["placa"], event["start_ts"], event["end_ts"]) == (PLATE, last, None)
    assert event["id"] == event_id(PLATE, "offline", last)
    assert event["limit_value"] == 120
    # Idempotent.
    assert detect_offline(conn, now, PARAMS) == (0, 0, 1)
    assert events(conn, "offline") == [event]
    # It reports again at 15:10 (then 15:11): closed at its first new position.
    back = NOON + timedelta(hours=3, minutes=10)
    store(conn, drive(PLATE, back, [20, 20], step_s=60))
    counts = detect_offline(conn, back + timedelta(minutes=2), PARAMS)
    assert (counts.opened, counts.closed, counts.open_now) == (0, 1, 0)
    (closed,) = events(conn, "offline")
    assert closed["end_ts"] == back
    assert closed["duration_s"] == (back - last).total_seconds()
    assert closed["value"] == pytest.approx((back - last).total_seconds() / 60)
    assert detect_offline(conn, back + timedelta(minutes=2), PARAMS) == (0, 0, 0)
    # Silent again: a second offline event, the first one untouched.
    counts = detect_offline(conn, back + timedelta(hours=4), PARAMS)
    assert (counts.opened, counts.open_now) == (2, 2)
    assert [e["end_ts"] is None for e in events(conn, "offline")] == [False, True, True]


# --------------------------------------------------------------------- CLI
@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)


def test_cli_compute_then_list_as_json_csv_and_table(
    conn: db.Conn, cli_env: None, run_etrack: RunEtrack
) -> None:
    store(conn, drive(PLATE, NOON, [60, 90, 100, 110, 95, 85, 70, 60]))
    code, out, err = run_etrack("events", "compute", "--date", DAY.isoformat())
    assert code == 0, err
    assert "1 new" in out
    code, out, err = run_etrack("events", "list", "--date", DAY.isoformat(), "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert len(listed) == 1
    keys = ["id", "placa", "kind", "start_ts", "end_ts", "duration_s", "value", "limit_value",
            "latitude", "longitude", "logradouro", "driver"]  # fmt: skip
    assert list(listed[0]) == keys
    assert listed[0]["start_ts"] == "2025-03-04T12:00:30-03:00"
    assert datetime.fromisoformat(listed[0]["end_ts"]) == NOON + timedelta(seconds=180)
    assert (listed[0]["placa"], listed[0]["kind"], listed[0]["value"]) == (PLATE, "overspeed", 110)
    code, out, _ = run_etrack("events", "list", "--date", DAY.isoformat(), "--format", "csv")
    assert code == 0
    assert out.startswith("\ufeffid,placa,kind,")
    (row,) = list(csv.DictReader(io.StringIO(out.lstrip("\ufeff"))))
    assert row["logradouro"] == "Rua 1"
    code, out, _ = run_etrack("events", "list", "--date", DAY.isoformat(), "--kind", "idle")
    assert (code, out) == (0, "no events\n")
    code, out, _ = run_etrack("events", "list", "--date", DAY.isoformat())
    assert PLATE in out
    assert "overspeed" in out


@pytest.mark.parametrize(
    "args",
    [
        ("events", "list", "--format", "xml"),
        ("events", "list", "--kind", "speeding"),
        ("events", "compute", "--date", "2025-02-30"),
        ("events", "compute", "--date", "2025-03-04", "--date-start", "2025-03-01"),
        ("events", "compute", "--plates", "NOT-A-PLATE"),
    ],
)
def test_cli_usage_errors_are_one_line_exit_2(
    cli_env: None, run_etrack: RunEtrack, args: tuple[str, ...]
) -> None:
    code, _, err = run_etrack(*args)
    assert code == 2
    assert err.startswith("etrack: error: ")
    assert err.count("\n") == 1


def test_cli_database_unreachable_is_exit_3(
    monkeypatch: pytest.MonkeyPatch, run_etrack: RunEtrack
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=2")
    code, _, err = run_etrack("events", "list", "--date", DAY.isoformat())
    assert code == 3
    assert err.startswith("etrack: error: ")


# --------------------------------------------------------------------- API
@pytest.fixture
def client(target: db.Target, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as test_client:
        yield test_client


def test_api_pages_through_every_event_once(conn: db.Conn, client: TestClient) -> None:
    # Five overspeed events for each of two plates, one every 20 minutes.
    for k in range(5):
        at = NOON + timedelta(minutes=20 * k)
        store(conn, drive(PLATE, at, [90, 95, 100, 60]) + drive(OTHER, at, [90, 95, 100, 60]))
    compute_events(conn, None, DAY, DAY, PARAMS)
    seen: list[dict[str, Any]] = []
    url: str | None = f"/api/events?date_start={DAY}&date_end={DAY}&limit=3"
    pages = 0
    while url is not None:
        page = client.get(url).json()
        assert page["total"] == 10
        assert page["count"] == len(page["rows"]) <= 3
        seen.extend(page["rows"])
        url = page["next"]
        pages += 1
    assert pages == 4
    assert len({r["id"] for r in seen}) == 10
    keys = [(r["start_ts"], r["placa"]) for r in seen]
    assert keys == sorted(keys)
    assert seen[0]["start_ts"] == "2025-03-04T12:00:00-03:00"
    only = client.get(f"/api/events?date_start={DAY}&plate={OTHER}&kind=overspeed").json()
    assert only["total"] == 5
    assert {r["placa"] for r in only["rows"]} == {OTHER}
    assert client.get(f"/api/events?date_start={DAY}&kind=idle").json()["total"] == 0
    assert client.get("/api/events?date_start=2025-03-05").json()["total"] == 0


def test_api_refuses_bad_input_and_respects_the_account_scope(
    conn: db.Conn, client: TestClient
) -> None:
    store(conn, drive(PLATE, NOON, [90, 95, 100, 60]))
    compute_events(conn, None, DAY, DAY, PARAMS)
    assert client.get("/api/events?kind=speeding").status_code == 422
    assert client.get("/api/events?cursor=nonsense").status_code == 422
    assert client.get("/api/events?date_start=2025-03-05&date_end=2025-03-04").status_code == 400
    assert client.get("/api/events?plate=NOPE").status_code == 422
    assert client.get(f"/api/events?date_start={DAY}&account=default").json()["total"] == 1
    hidden = client.get(f"/api/events?date_start={DAY}&account=elsewhere").json()
    assert (hidden["total"], hidden["rows"]) == (0, [])
    schema = client.get("/api/openapi.json").json()
    assert "/api/events" in schema["paths"]


# --------------------------------------------------------------- simulator
SIM_DAYS = [date(2025, 1, 6), date(2025, 1, 7)]


def sim_settings(settings: Settings, sim: SimulatorHandle) -> Settings:
    return settings.model_copy(
        update={
            "etrac_api_base": sim.base_url,
            "etrac_user": sim.user,
            "etrac_key": SecretStr(sim.key),
            "etrac_rate_limit": 500.0,
        }
    )


def oracle_overspeed(
    rows: list[tuple[datetime, float | None]], limit: float, min_s: float, gap_s: float
) -> list[tuple[datetime, datetime, float]]:
    """Issue 16's overspeed definition written plainly, point by point."""
    found: list[tuple[datetime, datetime, float]] = []
    k = 0
    while k < len(rows):
        at, speed = rows[k]
        if speed is None or speed <= limit:
            k += 1
            continue
        top = speed
        j = k
        while (
            j + 1 < len(rows)
            and (rows[j + 1][0] - rows[j][0]).total_seconds() <= gap_s
            and (rows[j + 1][1] or 0) > limit
            and rows[j + 1][1] is not None
        ):
            j += 1
            top = max(top, rows[j][1] or top)
        after = j + 1 < len(rows) and (rows[j + 1][0] - rows[j][0]).total_seconds() <= gap_s
        end = rows[j + 1][0] if after else rows[j][0]
        if (end - at).total_seconds() >= min_s:
            found.append((at, end, top))
        k = j + 1
    return found


def test_overspeed_events_of_simulator_days_match_the_raw_positions(
    make_simulator: MakeSimulator, settings: Settings, target: db.Target
) -> None:
    sim = make_simulator(vehicles=6)
    plates = sorted(sim.fleet.plates())[:4]
    current = sim_settings(settings, sim)

    async def fetch() -> None:
        async with open_collector(current, target) as collector:
            for plate in plates:
                for day in SIM_DAYS:
                    await collector.fetch_history_day(plate, day)

    asyncio.run(fetch())
    limit = 60.0
    params = EventParams(base=Thresholds(tz=TZ, speed_limit_kmh=limit, overspeed_min_s=30))
    compute_events(target, plates, SIM_DAYS[0], SIM_DAYS[-1], params)
    lo = datetime.combine(SIM_DAYS[0], datetime.min.time(), TZ)
    hi = datetime.combine(SIM_DAYS[-1] + timedelta(days=1), datetime.min.time(), TZ)
    total = 0
    with db.connection(target) as conn:
        for plate in plates:
            rows = conn.execute(
                "SELECT data_transmissao, velocidade FROM positions WHERE placa = %s"
                " AND quality = 'valid' AND latitude IS NOT NULL AND longitude IS NOT NULL"
                " AND data_transmissao >= %s AND data_transmissao < %s"
                " ORDER BY data_transmissao",
                [plate, lo - timedelta(hours=1), hi + timedelta(hours=1)],
            ).fetchall()
            expected = [e for e in oracle_overspeed(rows, limit, 30, 3600) if lo <= e[0] < hi]
            stored = conn.execute(
                "SELECT start_ts, end_ts, value FROM events WHERE placa = %s"
                " AND kind = 'overspeed' ORDER BY start_ts",
                [plate],
            ).fetchall()
            assert [(s, e, v) for s, e, v in stored] == expected, plate
            total += len(stored)
    assert total > 0
    # Computed again: nothing changes.
    again = compute_events(target, plates, SIM_DAYS[0], SIM_DAYS[-1], params)
    assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
    assert again.events > 0
