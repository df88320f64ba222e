"""Geofence visits in a real PostgreSQL: fences stored by name, visits
computed from stored valid positions against every fence, idempotent (twice
= nothing written), extended in place by new positions, the same whether a
fence came before or after the data, deleted with their fence; and their
enter/exit events in the events table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from etrack.alerts.payload import email_message
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.model import VALID, Fence, Position
from etrack.store import db, migrations
from etrack.store import events as event_store
from etrack.store import geofences as store
from etrack.store import positions as ingest

TZ = ZoneInfo("America/Sao_Paulo")
DAY = date(2025, 3, 4)
NOON = datetime(2025, 3, 4, 12, 0, tzinfo=TZ)
PLATE = "ABC1D23"
PARAMS = VisitParams(min_s=120.0, max_gap_s=900.0, tz=TZ)
CENTER = (-23.55, -46.63)
# 0.001 degrees of latitude, in metres on etrack's sphere.
DEG_M = math.radians(1.0) * 6378137.0
SITE = Fence("Cliente X", "circle", {"type": "Point", "coordinates": [CENTER[1], CENTER[0]]}, 200.0)


def at(lat_offset_m: float, when: datetime, index: int) -> Position:
    lat = CENTER[0] + lat_offset_m / DEG_M
    return Position(
        PLATE, when, lat, CENTER[1], 10.0, True, 1000.0 + index, None, None, 12.5,
        f"Rua {index}", "Van", "Entregas", None, when + timedelta(seconds=5), PLATE, VALID, {},
    )  # fmt: skip


def track(offsets: Sequence[float], start: datetime, step_s: float = 60.0) -> list[Position]:
    return [at(m, start + timedelta(seconds=k * step_s), k) for k, m in enumerate(offsets)]


def stored(conn: db.Conn) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, placa, fence, arrive_ts, depart_ts, dwell_s, computed_at"
            " FROM geofence_visits ORDER BY arrive_ts"
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def fence_events(conn: db.Conn) -> list[tuple[str, datetime, str]]:
    rows = conn.execute(
        "SELECT kind, start_ts, rule FROM events WHERE kind LIKE 'geofence_%' ORDER BY start_ts, kind"
    ).fetchall()
    return [(str(k), t, str(r)) for k, t, r in rows]


# Outside (1 km north) for 3 minutes, inside for 10, outside again.
VISIT = [1000.0] * 3 + [0.0] * 10 + [1000.0] * 3


def test_a_visit_is_stored_once_with_its_enter_and_exit(conn: db.Conn, target: db.Target) -> None:
    ingest.store_positions(conn, track(VISIT, NOON))
    store.upsert_fences(conn, [SITE])
    first = compute_visits(target, None, DAY, DAY, PARAMS)
    visits = stored(conn)
    assert len(visits) == 1
    visit = visits[0]
    assert visit["fence"] == "Cliente X"
    assert visit["arrive_ts"] == NOON + timedelta(minutes=3)
    assert visit["depart_ts"] == NOON + timedelta(minutes=13)
    assert visit["dwell_s"] == 600.0
    assert first.written == 1
    assert fence_events(conn) == [
        ("geofence_enter", NOON + timedelta(minutes=3), "fence:Cliente X"),
        ("geofence_exit", NOON + timedelta(minutes=13), "fence:Cliente X"),
    ]
    again = compute_visits(target, None, DAY, DAY, PARAMS)
    assert (again.written, again.unchanged, again.deleted) == (0, 1, 0)
    assert stored(conn) == visits  # computed_at unchanged: nothing rewritten


def test_new_positions_extend_the_open_visit_in_place(conn: db.Conn, target: db.Target) -> None:
    store.upsert_fences(conn, [SITE])
    ingest.store_positions(conn, track([1000.0] * 3 + [0.0] * 5, NOON))
    compute_visits(target, None, DAY, DAY, PARAMS)
    (open_visit,) = stored(conn)
    assert open_visit["depart_ts"] is None
    assert open_visit["dwell_s"] == 240.0
    later = track([0.0] * 3 + [1000.0] * 2, NOON + timedelta(minutes=8))
    ingest.store_positions(conn, later)
    compute_visits(target, None, DAY, DAY, PARAMS)
    (closed,) = stored(conn)
    assert closed["id"] == open_visit["id"]
    assert closed["depart_ts"] == NOON + timedelta(minutes=11)
    assert [k for k, _, _ in fence_events(conn)] == ["geofence_enter", "geofence_exit"]


def test_a_fence_added_after_the_data_gives_the_same_visits(
    conn: db.Conn, target: db.Target
) -> None:
    # Over midnight, on two days, computed day by day before and after.
    late = datetime(2025, 3, 4, 23, 50, tzinfo=TZ)
    ingest.store_positions(conn, track(VISIT + VISIT, late))
    compute_visits(target, None, DAY, DAY + timedelta(days=1), PARAMS)
    assert stored(conn) == []  # no fence yet
    store.upsert_fences(conn, [SITE])
    compute_visits(target, None, DAY + timedelta(days=1), DAY + timedelta(days=1), PARAMS)
    compute_visits(target, None, DAY, DAY, PARAMS)
    by_days = [(v["arrive_ts"], v["depart_ts"]) for v in stored(conn)]
    conn.execute("DELETE FROM geofence_visits")
    compute_visits(target, None, DAY, DAY + timedelta(days=1), PARAMS)
    at_once = [(v["arrive_ts"], v["depart_ts"]) for v in stored(conn)]
    assert by_days == at_once
    assert len(at_once) == 2
    assert at_once[0][0] == late + timedelta(minutes=3)


def test_a_visit_begun_days_before_keeps_its_real_arrival(conn: db.Conn, target: db.Target) -> None:
    store.upsert_fences(conn, [SITE])
    start = NOON - timedelta(days=3)
    # Inside every 10 minutes for three days, then out.
    ingest.store_positions(conn, track([1000.0] + [0.0] * 432 + [1000.0], start, step_s=600))
    compute_visits(target, None, DAY, DAY, PARAMS)
    (visit,) = stored(conn)
    assert visit["arrive_ts"] == start + timedelta(minutes=10)
    assert visit["depart_ts"] == start + timedelta(minutes=10 * 433)


def test_deleting_a_fence_deletes_its_visits_and_events(conn: db.Conn, target: db.Target) -> None:
    ingest.store_positions(conn, track(VISIT, NOON))
    store.upsert_fences(conn, [SITE])
    compute_visits(target, None, DAY, DAY, PARAMS)
    assert stored(conn)
    assert store.delete_fences(conn, ["Cliente X", "nope"]) == ["Cliente X"]
    assert stored(conn) == []
    assert fence_events(conn) == []


def test_importing_twice_changes_nothing_and_an_edit_updates(conn: db.Conn) -> None:
    counts, changed = store.upsert_fences(conn, [SITE])
    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 0, 0)
    assert changed == ["Cliente X"]
    again, changed = store.upsert_fences(conn, [SITE])
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)
    assert changed == []
    wider = Fence(SITE.name, "circle", SITE.geometry, 300.0, group="clientes")
    edited, changed = store.upsert_fences(conn, [wider])
    assert (edited.inserted, edited.updated) == (0, 1)
    (row,) = store.list_fences(conn)
    assert row.fence == wider


def test_two_overlapping_fences_entered_at_once_are_two_events(
    conn: db.Conn, target: db.Target
) -> None:
    other = Fence("Pátio", "circle", SITE.geometry, 150.0)
    store.upsert_fences(conn, [SITE, other])
    ingest.store_positions(conn, track(VISIT, NOON))
    compute_visits(target, None, DAY, DAY, PARAMS)
    assert sorted(v["fence"] for v in stored(conn)) == ["Cliente X", "Pátio"]
    enters = [r for k, _, r in fence_events(conn) if k == "geofence_enter"]
    assert sorted(enters) == ["fence:Cliente X", "fence:Pátio"]


@pytest.mark.parametrize("gap_inside_after", [True, False])
def test_a_gap_inside_keeps_the_visit_only_if_still_inside(
    conn: db.Conn, target: db.Target, gap_inside_after: bool
) -> None:
    store.upsert_fences(conn, [SITE])
    before = track([1000.0] + [0.0] * 4, NOON)
    after_gap = NOON + timedelta(minutes=4 + 20)  # 20 min > max_gap_s 15 min
    after = track([0.0 if gap_inside_after else 1000.0] * 3 + [1000.0], after_gap)
    ingest.store_positions(conn, before + after)
    compute_visits(target, None, DAY, DAY, PARAMS)
    (visit,) = stored(conn)
    if gap_inside_after:
        assert visit["depart_ts"] == after_gap + timedelta(minutes=3)
    else:
        assert visit["depart_ts"] == NOON + timedelta(minutes=4)


def test_fence_events_reach_the_alert_payload_with_their_fence(
    conn: db.Conn, target: db.Target
) -> None:
    ingest.store_positions(conn, track(VISIT, NOON))
    store.upsert_fences(conn, [SITE])
    compute_visits(target, None, DAY, DAY, PARAMS)
    stored_events = event_store.list_events(
        conn, NOON - timedelta(hours=1), NOON + timedelta(hours=1)
    )
    exits = [e for e in stored_events if e.kind == "geofence_exit"]
    assert len(exits) == 1
    record = exits[0].record(TZ)
    assert record["fence"] == "Cliente X"
    assert record["value"] == 10.0  # minutes inside
    mail = email_message("r", exits[0], tz=TZ, sender="a@b.c", recipients=("d@e.f",),
                         public_url=None)  # fmt: skip
    assert mail["Subject"].startswith("[etrack] Saída de cerca (Cliente X): ABC1D23")
    assert "Cerca: Cliente X" in mail.get_content()


def events_and_visits(conn: db.Conn) -> tuple[list[Any], list[Any]]:
    visits = [(v["fence"], v["arrive_ts"], v["depart_ts"]) for v in stored(conn)]
    return visits, fence_events(conn)


def test_the_order_of_the_days_computed_does_not_change_visits_or_events(
    conn: db.Conn, target: db.Target
) -> None:
    # From one fence straight into a second one at 23:40, inside it past midnight.
    far = Fence(
        "Depósito", "circle", {"type": "Point", "coordinates": [CENTER[1], CENTER[0] + 0.01]}, 200.0
    )
    store.upsert_fences(conn, [SITE, far])
    late = datetime(2025, 3, 4, 23, 30, tzinfo=TZ)
    north = 0.01 * DEG_M
    ingest.store_positions(
        conn, track([3000.0] * 3 + [0.0] * 7 + [north] * 40 + [3000.0] * 3, late)
    )
    next_day = DAY + timedelta(days=1)
    compute_visits(target, None, DAY, next_day, PARAMS)
    expected = events_and_visits(conn)
    assert [(v[0], v[2] is not None) for v in expected[0]] == [
        ("Cliente X", True), ("Depósito", True)
    ]  # fmt: skip
    assert sorted(k for k, _, _ in expected[1]) == ["geofence_enter"] * 2 + ["geofence_exit"] * 2
    conn.execute("DELETE FROM geofence_visits")
    conn.execute("DELETE FROM events")
    for first, last in ((DAY, DAY), (next_day, next_day), (DAY, DAY), (next_day, next_day)):
        compute_visits(target, None, first, last, PARAMS)
    assert events_and_visits(conn) == expected


def test_a_later_day_alone_closes_the_open_visit_of_the_day_before(
    conn: db.Conn, target: db.Target
) -> None:
    store.upsert_fences(conn, [SITE])
    late = datetime(2025, 3, 4, 22, 50, tzinfo=TZ)
    ingest.store_positions(conn, track([1000.0] * 2 + [0.0] * 8, late))
    compute_visits(target, None, DAY, DAY, PARAMS)
    (open_visit,) = stored(conn)
    assert open_visit["depart_ts"] is None
    # It left at 23:10, which only the latest fetch of the next day computes.
    later = track([0.0] * 10 + [1000.0] * 3, late + timedelta(minutes=10))
    # The vehicle reports on the next day too, as the fetch of its latest positions sees.
    ingest.store_positions(conn, [*later, at(1000.0, late + timedelta(hours=2), 99)])
    compute_visits(target, None, DAY + timedelta(days=1), DAY + timedelta(days=1), PARAMS)
    (closed,) = stored(conn)
    assert closed["id"] == open_visit["id"]
    assert closed["depart_ts"] == late + timedelta(minutes=20)
    assert [k for k, _, _ in fence_events(conn)] == ["geofence_enter", "geofence_exit"]


def test_a_stay_of_months_keeps_its_real_arrival_in_one_run(
    conn: db.Conn, target: db.Target
) -> None:
    store.upsert_fences(conn, [SITE])
    start = NOON - timedelta(days=70)
    hourly = track([1000.0] + [0.0] * (70 * 24), start, step_s=3600)
    ingest.store_positions(conn, hourly)
    first = compute_visits(target, None, DAY, DAY, PARAMS)
    (visit,) = stored(conn)
    assert visit["arrive_ts"] == start + timedelta(hours=1)
    assert visit["depart_ts"] is None
    again = compute_visits(target, None, DAY, DAY, PARAMS)
    assert (again.written, again.deleted) == (0, 0)
    assert first.written == 1


def derived_events(conn: db.Conn) -> list[tuple[str, datetime, str]]:
    """What the events of the stored visits must be: an enter per visit, an exit per closed one."""
    found: list[tuple[str, datetime, str]] = []
    for visit in stored(conn):
        rule = f"fence:{visit['fence']}"
        found.append(("geofence_enter", visit["arrive_ts"], rule))
        if visit["depart_ts"] is not None:
            found.append(("geofence_exit", visit["depart_ts"], rule))
    return sorted(found, key=lambda e: (e[1], e[0]))


def test_the_fence_events_are_always_those_of_the_stored_visits(
    conn: db.Conn, target: db.Target
) -> None:
    store.upsert_fences(conn, [SITE])
    # Inside to the end of the data: an open visit, an enter and no exit.
    ingest.store_positions(conn, track([1000.0] * 3 + [0.0] * 5, NOON))
    compute_visits(target, None, DAY, DAY, PARAMS)
    assert [k for k, _, _ in fence_events(conn)] == ["geofence_enter"]
    # It closes: the exit appears.
    ingest.store_positions(conn, track([1000.0] * 2, NOON + timedelta(minutes=8)))
    compute_visits(target, None, DAY, DAY, PARAMS)
    assert fence_events(conn) == derived_events(conn)
    (exit_at,) = [t for k, t, _ in fence_events(conn) if k == "geofence_exit"]
    assert exit_at == NOON + timedelta(minutes=8)
    # A late position inside (the vehicle was still there at 12:08; the one
    # outside came at 12:09): the departure moves, the old exit goes.
    moved = [at(0.0, NOON + timedelta(minutes=8), 8), at(1000.0, NOON + timedelta(minutes=9), 9)]
    conn.execute(
        "DELETE FROM positions WHERE data_transmissao >= %s", (NOON + timedelta(minutes=8),)
    )
    ingest.store_positions(conn, moved)
    summary = compute_visits(target, None, DAY, DAY, PARAMS)
    assert (summary.written, summary.deleted) == (1, 0)
    assert fence_events(conn) == derived_events(conn)
    assert [t for k, t, _ in fence_events(conn) if k == "geofence_exit"] == [
        NOON + timedelta(minutes=9)
    ]
    # The fence moves away from the track: the visit and both events go.
    far = Fence(SITE.name, "circle", {"type": "Point", "coordinates": [-46.0, -23.0]}, 200.0)
    store.upsert_fences(conn, [far])
    gone = compute_visits(target, None, DAY, DAY, PARAMS)
    assert (gone.deleted, gone.events) == (1, 2)
    assert stored(conn) == []
    assert fence_events(conn) == []
    # Ids are those the Python side predicts (md5 of the natural key).
    store.upsert_fences(conn, [SITE])
    compute_visits(target, None, DAY, DAY, PARAMS)
    (visit,) = stored(conn)
    assert visit["id"] == store.visit_id(PLATE, SITE.name, visit["arrive_ts"])
    (enter_id,) = conn.execute(
        "SELECT id FROM events WHERE kind = 'geofence_enter'"
    ).fetchone() or (None,)
    assert enter_id == store.fence_event_id(PLATE, "geofence_enter", SITE.name, visit["arrive_ts"])


def test_migration_0013_gives_stored_visits_their_missing_events(
    conn: db.Conn, target: db.Target
) -> None:
    """Visits stored before 0013 lacked the exit past their range's end: the
    migration's statement adds what is missing and nothing twice."""
    ingest.store_positions(conn, track(VISIT, NOON))
    store.upsert_fences(conn, [SITE])
    compute_visits(target, None, DAY, DAY, PARAMS)
    conn.execute("DELETE FROM events WHERE kind = 'geofence_exit'")
    (migration,) = [m for m in migrations.available() if m.version == 13]
    insert = migration.sql.split("INSERT INTO events", 1)[1]
    for _ in range(2):
        conn.execute("INSERT INTO events" + insert)
    assert fence_events(conn) == derived_events(conn)
    assert len(fence_events(conn)) == 2
