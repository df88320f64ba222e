"""Routes stored in a real PostgreSQL: batches, skipping unchanged days, recomputing
changed ones, empty days, the provider comparison and the fleet day summary."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from etrack.model import InvalidPlate, Position, ProviderTrip
from etrack.provider.parse import parse_trip
from etrack.simulator.config import FleetConfig
from etrack.simulator.fleet import Fleet
from etrack.store import db
from etrack.store import positions as ingest
from etrack.store.queries import query
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams

TZ = ZoneInfo("America/Sao_Paulo")
DAYS = [date(2025, 3, 4), date(2025, 3, 5)]
FLEET = Fleet(FleetConfig(seed=5, vehicles=4, now=datetime(2025, 3, 10, 12, 0, tzinfo=TZ)))
PARAMS = RouteParams(tz=TZ)


def position(e: Any) -> Position:
    vehicle = FLEET.vehicle(e.placa)
    return Position(
        e.placa, e.data_transmissao, e.latitude, e.longitude, e.velocidade, e.ignicao,
        e.odometro, None, e.horimetro, e.bateria, e.logradouro, vehicle.descricao,
        vehicle.frota, None, None, e.placa, e.quality, {},
    )  # fmt: skip


def store_fleet(conn: db.Conn, plates: Iterable[str], days: list[date]) -> int:
    stored = 0
    for plate in plates:
        batch = [position(e) for day in days for e in FLEET.expected_positions(plate, day)]
        stored += ingest.store_positions(conn, batch).inserted
    return stored


def working_plates() -> list[str]:
    """Plates that drive on every test day (rest days make dull tests)."""
    plates = [p for p in FLEET.plates() if all(FLEET.true_trips(p, d) for d in DAYS)]
    assert len(plates) >= 2
    return sorted(plates)


def snapshot(conn: db.Conn) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall()
        for table in ("routes", "route_trips", "route_stops")
    }


def test_compute_store_skip_and_recompute(conn: db.Conn) -> None:
    plates = working_plates()
    store_fleet(conn, plates, DAYS)
    first = compute_routes(conn, PARAMS, plates=plates, days=DAYS, batch_plate_days=3)
    assert (first.computed, first.skipped, first.empty) == (len(plates) * 2, 0, 0)
    assert first.trips > 0
    assert first.stops > 0
    assert "plate-days computed" in first.line()
    routes = conn.execute(
        "SELECT placa, rota_date, point_count, jsonb_array_length(points), trip_count,"
        " stop_count, distance_m, geojson->>'type', source_fingerprint"
        " FROM routes ORDER BY 1, 2"
    ).fetchall()
    assert len(routes) == len(plates) * 2
    for placa, day, count, listed, trip_count, stop_count, distance, kind, fp in routes:
        valid = [e for e in FLEET.expected_positions(placa, day) if e.quality == "valid"]
        assert count == listed == len(valid)
        assert trip_count == len(FLEET.true_trips(placa, day))
        stored_trips = conn.execute(
            "SELECT count(*) FROM route_trips WHERE placa = %s AND rota_date = %s", (placa, day)
        ).fetchone()
        stored_stops = conn.execute(
            "SELECT count(*) FROM route_stops WHERE placa = %s AND rota_date = %s", (placa, day)
        ).fetchone()
        assert stored_trips == (trip_count,)
        assert stored_stops == (stop_count,)
        assert distance == pytest.approx(FLEET.true_distance_m(placa, day), rel=0.02)
        assert kind == "LineString"
        assert fp

    # Unchanged: every day skipped, nothing written.
    before = snapshot(conn)
    again = compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    assert (again.computed, again.skipped) == (0, len(plates) * 2)
    assert snapshot(conn) == before

    # A late position in the middle of one day: that day, and only it, again.
    late_day = DAYS[1]
    late_at = datetime(2025, 3, 5, 12, 0, 7, tzinfo=TZ)
    stored = ingest.store_positions(
        conn,
        [Position(plates[0], late_at, -23.55, -46.63, 0.0, False, None, None, None, None,
                  "Rua Nova", None, None, None, None, plates[0], "valid", {})],
    )  # fmt: skip
    assert stored.inserted == 1
    third = compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    assert (third.computed, third.skipped) == (1, len(plates) * 2 - 1)
    after = snapshot(conn)
    changed = {(r[0], r[1]) for r in after["routes"]} - {(r[0], r[1]) for r in before["routes"]}
    assert not changed
    row = conn.execute(
        "SELECT point_count FROM routes WHERE placa = %s AND rota_date = %s",
        (plates[0], late_day),
    ).fetchone()
    assert row is not None
    valid = [e for e in FLEET.expected_positions(plates[0], late_day) if e.quality == "valid"]
    assert row[0] == len(valid) + 1
    untouched = [r for r in after["routes"] if (r[0], r[1]) != (plates[0], late_day)]
    assert untouched == [r for r in before["routes"] if (r[0], r[1]) != (plates[0], late_day)]

    # Force recomputes everything and lands on the same rows.
    forced = compute_routes(conn, PARAMS, plates=plates, days=DAYS, force=True)
    assert forced.computed == len(plates) * 2
    assert _without_computed_at(snapshot(conn)) == _without_computed_at(after)

    # Other parameters are another computation: no day is skipped.
    other = compute_routes(conn, RouteParams(tz=TZ, speed_limit_kmh=50), plates=plates, days=DAYS)
    assert other.computed == len(plates) * 2


def _without_computed_at(snap: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[Any]]:
    columns = [
        "placa", "rota_date", "points", "geojson", "simplified", "start_ts", "end_ts",
        "point_count", "invalid_count", "distance_m", "odometer_m", "driving_s", "idle_s",
        "parked_s", "max_speed_kmh", "avg_speed_kmh", "over_limit_s", "trip_count",
        "stop_count", "provider_comparison", "source_fingerprint", "computed_at", "params",
    ]  # fmt: skip
    skip = columns.index("computed_at")
    return {
        **snap,
        "routes": [tuple(v for k, v in enumerate(r) if k != skip) for r in snap["routes"]],
    }


def test_a_backfill_near_midnight_recomputes_the_neighbour_day(conn: db.Conn) -> None:
    plates = working_plates()[:1]
    store_fleet(conn, plates, DAYS)
    compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    # A point just after midnight of the second day is context for the first.
    late = datetime(2025, 3, 5, 0, 0, 30, tzinfo=TZ)
    ingest.store_positions(
        conn,
        [Position(plates[0], late, -23.5, -46.6, 0.0, False, None, None, None, None, None,
                  None, None, None, None, plates[0], "valid", {})],
    )  # fmt: skip
    again = compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    assert (again.computed, again.skipped) == (2, 0)


def test_empty_days_and_days_with_only_invalid_points(conn: db.Conn) -> None:
    plates = working_plates()[:2]
    store_fleet(conn, plates[:1], DAYS[:1])
    bad_day = DAYS[1]
    noon = datetime(2025, 3, 5, 12, 0, tzinfo=TZ)
    flagged = [
        Position(plates[0], noon + timedelta(minutes=k), 0.0, 0.0, 0.0, False, None, None,
                 None, None, None, None, None, None, None, plates[0], "no_fix", {})
        for k in range(3)
    ]  # fmt: skip
    ingest.store_positions(conn, flagged)
    summary = compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    # plate 0: a real day and an all-invalid day; plate 1: two days without data.
    assert (summary.computed, summary.empty) == (4, 3)
    rows = {
        (r[0], r[1]): r[2:]
        for r in conn.execute(
            "SELECT placa, rota_date, point_count, invalid_count, trip_count, geojson,"
            " points, start_ts, distance_m FROM routes"
        )
    }
    assert rows[(plates[0], bad_day)] == (0, 3, 0, None, [], None, 0.0)
    assert rows[(plates[1], DAYS[0])] == (0, 0, 0, None, [], None, 0.0)
    assert rows[(plates[0], DAYS[0])][0] > 0
    # Every plate (None): only plate-days holding positions of any quality.
    conn.execute("DELETE FROM routes")
    auto = compute_routes(conn, PARAMS, plates=None, days=DAYS)
    assert auto.computed == 2
    assert {(r[0], r[1]) for r in conn.execute("SELECT placa, rota_date FROM routes")} == {
        (plates[0], DAYS[0]),
        (plates[0], bad_day),
    }


def test_provider_comparison_is_stored_and_followed(conn: db.Conn) -> None:
    plates = working_plates()[:2]
    store_fleet(conn, plates, DAYS)
    day = DAYS[0]
    compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    assert conn.execute(
        "SELECT count(*) FROM routes WHERE provider_comparison IS NOT NULL"
    ).fetchone() == (0,)
    trips = [parse_trip(raw, TZ) for raw in FLEET.trip_summaries(plates[0], day)]
    assert all(isinstance(t, ProviderTrip) for t in trips)
    ingest.store_trips(conn, [t for t in trips if isinstance(t, ProviderTrip)], tz=TZ)
    # New provider trips make that day stale: the comparison appears.
    summary = compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    assert (summary.computed, summary.skipped) == (1, 3)
    row = conn.execute(
        "SELECT provider_comparison, trip_count FROM routes WHERE placa = %s AND rota_date = %s",
        (plates[0], day),
    ).fetchone()
    assert row is not None
    comparison, trip_count = row
    assert comparison["provider_trips"] == len(trips) == trip_count
    assert comparison["matched"] == trip_count
    assert comparison["agrees"] is True
    for pair in comparison["pairs"]:
        # Theirs run from ignition on to off, ours from leaving to arriving.
        assert pair["start_delta_s"] > 0
        assert pair["end_delta_s"] < 0
        assert abs(pair["distance_delta_m"]) < 0.05 * pair["provider_distance_m"]


def fleet_day_summary(
    conn: db.Conn, first: date, last: date, plates: list[str] | None = None
) -> list[dict[str, Any]]:
    """The web's day summaries (its first page, without a limit)."""
    cur = conn.execute(
        query("web_day_summaries_page"),
        {
            "first": first,
            "last": last,
            "plates": plates,
            "limit": None,
            "after_date": first,
            "after_placa": "",
        },
    )
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def test_fleet_day_summary(conn: db.Conn) -> None:
    plates = working_plates()
    store_fleet(conn, plates, DAYS)
    compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    rows = fleet_day_summary(conn, DAYS[0], DAYS[0])
    assert [r["placa"] for r in rows] == plates
    for r in rows:
        assert r["rota_date"] == DAYS[0]
        assert float(r["distance_km"]) == pytest.approx(
            FLEET.true_distance_m(r["placa"], DAYS[0]) / 1000, rel=0.02
        )
        assert r["trip_count"] == len(FLEET.true_trips(r["placa"], DAYS[0]))
        assert r["driving_h"] > 0
        assert r["speed_limit_kmh"] == PARAMS.speed_limit_kmh
        assert r["descricao"]
        total_h = float(r["driving_h"] + r["idle_h"] + r["parked_h"])
        assert 20 < total_h <= 24
    only = fleet_day_summary(conn, DAYS[0], DAYS[1], plates=plates[:1])
    assert [(r["placa"], r["rota_date"]) for r in only] == [(plates[0], d) for d in DAYS]
    # The web reads the stored rows; the view over them shows the same.
    view = conn.execute(
        "SELECT placa, rota_date, distance_km, trip_count FROM route_day_summary"
        " WHERE rota_date = %s ORDER BY placa",
        (DAYS[0],),
    ).fetchall()
    assert view == [(r["placa"], r["rota_date"], r["distance_km"], r["trip_count"]) for r in rows]


def test_target_runs_pipelined_with_the_same_result(target: db.Target) -> None:
    plates = working_plates()
    with db.connection(target, autocommit=True) as conn:
        store_fleet(conn, plates, DAYS)
        serial = compute_routes(conn, PARAMS, plates=plates, days=DAYS, batch_plate_days=2)
        expected = _without_computed_at(snapshot(conn))
    pipelined = compute_routes(
        target, PARAMS, plates=plates, days=DAYS, force=True, batch_plate_days=2
    )
    assert (pipelined.computed, pipelined.trips, pipelined.stops) == (
        serial.computed,
        serial.trips,
        serial.stops,
    )
    with db.connection(target, autocommit=True) as conn:
        assert _without_computed_at(snapshot(conn)) == expected
        progress: list[int] = []
        compute_routes(
            target,
            PARAMS,
            plates=plates,
            days=DAYS,
            batch_plate_days=2,
            progress=lambda s: progress.append(s.skipped),
        )
        assert progress[-1] == len(plates) * 2


def test_a_failing_store_is_raised_and_leaves_no_partial_batch(target: db.Target) -> None:
    plates = working_plates()
    with db.connection(target, autocommit=True) as conn:
        store_fleet(conn, plates, DAYS[:1])
        # Simulate a broken table: every trip insert fails.
        conn.execute(
            "ALTER TABLE route_trips ADD CONSTRAINT no_trips CHECK (distance_m < 0) NOT VALID"
        )
    with pytest.raises(Exception, match="no_trips"):
        compute_routes(target, PARAMS, plates=plates, days=DAYS[:1], batch_plate_days=1)
    with db.connection(target, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM routes").fetchone() == (0,)
        # The day summaries are written in the same transaction: none either.
        assert conn.execute("SELECT count(*) FROM route_day_summaries").fetchone() == (0,)


def test_days_are_stored_by_local_date(conn: db.Conn) -> None:
    plates = working_plates()[:1]
    store_fleet(conn, plates, DAYS)
    compute_routes(conn, PARAMS, plates=plates, days=DAYS)
    for day, start, end in conn.execute(
        "SELECT rota_date, start_ts, end_ts FROM routes ORDER BY 1"
    ).fetchall():
        assert start.astimezone(TZ).date() == day
        assert end.astimezone(TZ).date() == day
        assert start.tzinfo is not None
        assert end > start
        assert start >= datetime(2025, 3, 4, 3, tzinfo=UTC)


def test_two_runs_over_the_same_days_at_once(target: db.Target) -> None:
    plates = working_plates()
    with db.connection(target, autocommit=True) as conn:
        store_fleet(conn, plates, DAYS)
    results: list[object] = []

    def run() -> None:
        try:
            results.append(
                compute_routes(
                    target, PARAMS, plates=plates, days=DAYS, force=True, batch_plate_days=3
                )
            )
        except Exception as exc:  # reported below, in the test's thread
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(not isinstance(r, Exception) for r in results), results
    with db.connection(target, autocommit=True) as conn:
        routes = conn.execute("SELECT count(*), sum(trip_count) FROM routes").fetchone()
        trips = conn.execute("SELECT count(*) FROM route_trips").fetchone()
        summaries = conn.execute(
            "SELECT count(*), sum(trip_count) FROM route_day_summaries"
        ).fetchone()
    assert routes is not None
    assert routes[0] == len(plates) * len(DAYS)
    assert trips == (routes[1],)
    # One summary per stored route, whichever run stored it last.
    assert summaries == routes


def test_plates_are_canonicalized(conn: db.Conn) -> None:
    plate = working_plates()[0]
    store_fleet(conn, [plate], DAYS[:1])
    spelled = f"{plate[:3]}-{plate[3:]}".lower()
    summary = compute_routes(conn, PARAMS, plates=[spelled], days=DAYS[:1])
    assert (summary.computed, summary.empty) == (1, 0)
    assert conn.execute("SELECT placa FROM routes").fetchall() == [(plate,)]
    with pytest.raises(InvalidPlate):
        compute_routes(conn, PARAMS, plates=["not a plate"], days=DAYS[:1])
