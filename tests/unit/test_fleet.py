"""The simulated fleet: determinism, physics, quirks and ground truth agree with the rows."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from etrack.model import InvalidPlate, canonical_plate
from etrack.simulator.config import DEFAULT_KEY, DEFAULT_USER, Account, FleetConfig, QuirkConfig
from etrack.simulator.dayplan import haversine_m
from etrack.simulator.fleet import ExpectedPosition, Fleet
from etrack.simulator.wire import parse_local

TZ = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2025, 1, 8, 12, 0, 0, tzinfo=TZ)
TODAY = date(2025, 1, 8)
PAST_DAYS = [date(2025, 1, 1) + timedelta(days=k) for k in range(7)]  # Wed .. Tue


@cache
def fleet(quirks: QuirkConfig | None = None, seed: int = 42, vehicles: int = 12) -> Fleet:
    return Fleet(FleetConfig(seed=seed, vehicles=vehicles, now=NOW, quirks=quirks or QuirkConfig()))


def clean() -> Fleet:
    return fleet(QuirkConfig.none())


def vehicle_days(f: Fleet, days: list[date] = PAST_DAYS) -> list[tuple[str, date]]:
    return [(plate, day) for plate in f.plates() for day in days]


def number(value: Any) -> float:
    """A served number: 54, "54", "54 km/h", "12,6 V"."""
    if isinstance(value, int | float):
        return float(value)
    match = re.match(r"^\s*(-?\d+(?:[.,]\d+)?)", str(value))
    assert match, value
    return float(match.group(1).replace(",", "."))


def parsed(row: dict[str, Any]) -> tuple[datetime, float, float, float, bool, float]:
    return (
        parse_local(row["data_transmissao"], TZ),
        number(row["latitude"]),
        number(row["longitude"]),
        number(row["velocidade"]),
        number(row["ignicao"]) == 1,
        number(row["odometro"]),
    )


def valid(positions: list[ExpectedPosition]) -> list[ExpectedPosition]:
    return [p for p in positions if p.quality == "valid"]


# ----------------------------------------------------------------- identity
def test_same_seed_same_rows_different_seed_different_rows() -> None:
    one = Fleet(FleetConfig(seed=7, vehicles=5, now=NOW))
    two = Fleet(FleetConfig(seed=7, vehicles=5, now=NOW))
    other = Fleet(FleetConfig(seed=8, vehicles=5, now=NOW))
    assert one.plates() == two.plates()
    assert one.plates() != other.plates()
    for plate in one.plates():
        assert one.history_rows(plate, PAST_DAYS[0]) == two.history_rows(plate, PAST_DAYS[0])
        assert one.trip_summaries(plate, PAST_DAYS[1]) == two.trip_summaries(plate, PAST_DAYS[1])
    assert one.latest_rows() == two.latest_rows()


def test_rows_do_not_depend_on_the_cache_or_call_order() -> None:
    f = Fleet(FleetConfig(seed=42, vehicles=3, now=NOW, plan_cache_size=1))
    plate = f.plates()[2]
    first = f.history_rows(plate, PAST_DAYS[3])
    f.history_rows(f.plates()[0], PAST_DAYS[0])
    assert f.history_rows(plate, PAST_DAYS[3]) == first == fleet().history_rows(plate, PAST_DAYS[3])


def test_plates_are_canonical_unique_and_of_both_formats() -> None:
    f = fleet(vehicles=40)
    plates = f.plates()
    assert len(set(plates)) == 40
    assert all(canonical_plate(plate) == plate for plate in plates)
    mercosul = [p for p in plates if p[4].isalpha()]
    old = [p for p in plates if p[4].isdigit()]
    assert mercosul
    assert old
    served = {row["placa"] for plate in old for row in f.history_rows(plate, PAST_DAYS[0])[:40]}
    assert any("-" in plate for plate in served)
    assert any("-" not in plate and plate[4].isdigit() for plate in served)


def test_vehicles_have_descriptions_fleets_and_serials() -> None:
    f = fleet()
    vehicles = f.vehicles()
    assert all(v.descricao and v.frota and v.equipamento_serial for v in vehicles)
    assert 1 < len({v.frota for v in vehicles}) <= 4


def test_canonical_plate() -> None:
    assert canonical_plate("abc-1234") == "ABC1234"
    assert canonical_plate(" ABC1D23 ") == "ABC1D23"
    assert canonical_plate("ABC 1234") == "ABC1234"
    # The simulator spells plates by the one rule (etrack.model); a non-plate
    # finds no vehicle.
    for text in ("AB1234", "ABCD123", "ÁBC1234"):
        with pytest.raises(InvalidPlate):
            canonical_plate(text)
        assert fleet().find_vehicle(text) is None


def test_accounts_have_their_own_distinct_plates() -> None:
    accounts = (
        Account("a@x", "ka", vehicles=3),
        Account("b@x", "kb", vehicles=4, rate_limit_per_s=1.0),
    )
    f = Fleet(FleetConfig(accounts=accounts, now=NOW))
    a, b = f.plates("a@x"), f.plates(accounts[1])
    assert len(a) == 3
    assert len(b) == 4
    assert not set(a) & set(b)
    assert f.plates() == a + b
    assert len(f.latest_rows(account="b@x")) == 4
    assert f.find_vehicle(a[0].lower(), "b@x") is None
    assert f.find_vehicle(a[0], "A@X") is not None
    default = Fleet(FleetConfig(vehicles=2))
    assert [(x.user, x.key) for x in default.accounts] == [(DEFAULT_USER, DEFAULT_KEY)]


# ------------------------------------------------------------------ physics
def test_reporting_intervals() -> None:
    f = clean()
    for plate, day in vehicle_days(f):
        positions = f.expected_positions(plate, day)
        assert positions, (plate, day)
        for a, b in itertools.pairwise(positions):
            gap = (b.data_transmissao - a.data_transmissao).total_seconds()
            if a.ignicao:
                assert 1 <= gap <= 66, (plate, a, b)
            else:
                assert 1 <= gap <= 900, (plate, a, b)
        parked = [
            (b.data_transmissao - a.data_transmissao).total_seconds()
            for a, b in itertools.pairwise(positions)
            if not a.ignicao and not b.ignicao
        ]
        assert Counter(parked).most_common(1)[0][0] == 900


def test_speeds_are_plausible_and_light_stops_are_short() -> None:
    f = clean()
    speeds: list[float] = []
    for plate, day in vehicle_days(f):
        positions = f.expected_positions(plate, day)
        speeds += [p.velocidade for p in positions if p.velocidade > 0]
        for trip in f.true_trips(plate, day):
            inside = [p for p in positions if trip.start < p.data_transmissao < trip.end]
            still = [
                len(list(group))
                for stopped, group in itertools.groupby(inside, key=lambda p: p.velocidade == 0)
                if stopped
            ]
            # Traffic lights: never three 60 s samples in a row at 0 inside a trip.
            assert max(still, default=0) <= 2
            assert all(p.ignicao for p in inside)
    assert max(speeds) <= 115
    assert 20 <= sorted(speeds)[len(speeds) // 2] <= 70


def test_odometer_and_engine_hours_follow_distance_and_ignition() -> None:
    f = clean()
    for plate, day in vehicle_days(f):
        positions = f.expected_positions(plate, day)
        for a, b in itertools.pairwise(positions):
            assert b.odometro >= a.odometro
            assert b.horimetro >= a.horimetro
            if not a.ignicao:
                # Parked: nothing moves, the engine hours stand still.
                assert (b.latitude, b.longitude, b.odometro) == (
                    a.latitude,
                    a.longitude,
                    a.odometro,
                )
                assert b.horimetro == a.horimetro
        true_m = f.true_distance_m(plate, day)
        assert true_m == pytest.approx(f.day_total_km(plate, day) * 1000, abs=1)
        odometer_m = (positions[-1].odometro - positions[0].odometro) * 1000
        assert odometer_m == pytest.approx(true_m, abs=15)
        sampled = sum(
            haversine_m(a.latitude, a.longitude, b.latitude, b.longitude)
            for a, b in itertools.pairwise(positions)
        )
        # Straight segments several km long: 60 s sampling loses little.
        assert 0.95 * true_m <= sampled <= true_m + 15


def test_days_are_continuous() -> None:
    f = clean()
    for plate in f.plates():
        for day in PAST_DAYS[:-1]:
            last = f.expected_positions(plate, day)[-1]
            first = f.expected_positions(plate, day + timedelta(days=1))[0]
            assert (first.latitude, first.longitude) == (last.latitude, last.longitude)
            assert first.odometro == pytest.approx(last.odometro, abs=0.011)
            assert first.horimetro >= last.horimetro


def test_trips_stay_in_the_region_and_between_5_and_23() -> None:
    f = clean()
    region = f.region
    trips = 0
    for plate, day in vehicle_days(f):
        for trip in f.true_trips(plate, day):
            trips += 1
            assert trip.ignition_on <= trip.start < trip.end <= trip.ignition_off
            if not f.vehicle(plate).long_haul:  # long-haul days run past midnight
                assert trip.ignition_on.hour >= 5
                assert trip.ignition_off.hour < 23
            assert trip.distance_m > 1000
        for p in f.expected_positions(plate, day):
            assert region.lat_min - 0.05 <= p.latitude <= region.lat_max + 0.05
            assert region.lon_min - 0.05 <= p.longitude <= region.lon_max + 0.05
    assert trips > len(f.plates()) * 5


def test_rest_days_are_parked_all_day() -> None:
    f = clean()
    resting = [(p, d) for p, d in vehicle_days(f) if f.day_total_km(p, d) == 0]
    assert resting
    for plate, day in resting:
        positions = f.expected_positions(plate, day)
        assert len(positions) == 96
        assert not any(p.ignicao for p in positions)
        assert f.true_trips(plate, day) == []


# --------------------------------------------------------------------- now
def test_nothing_after_now() -> None:
    f = fleet()
    for plate in f.plates():
        rows = f.history_rows(plate, TODAY)
        assert rows
        for row in rows:
            assert parse_local(row["data_transmissao"], TZ) <= NOW
            if "data_gravacao" in row:
                assert parse_local(row["data_gravacao"], TZ) <= NOW
        assert all(t.ignition_off <= NOW for t in f.true_trips(plate, TODAY))
        assert len(f.trip_summaries(plate, TODAY)) == len(f.true_trips(plate, TODAY))
        assert f.history_rows(plate, TODAY + timedelta(days=1)) == []
        assert f.trip_summaries(plate, TODAY + timedelta(days=1)) == []
    for row in f.latest_rows():
        assert NOW - timedelta(minutes=16) < parse_local(row["data_gravacao"], TZ) <= NOW


def test_an_earlier_now_shows_less() -> None:
    f = clean()
    plate = f.plates()[0]
    early = NOW - timedelta(hours=3)
    rows = f.history_rows(plate, TODAY, now=early)
    assert 0 < len(rows) < len(f.history_rows(plate, TODAY))
    assert rows == f.history_rows(plate, TODAY)[: len(rows)]


def test_days_before_installation_have_no_data() -> None:
    f = fleet()
    vehicle = f.vehicles()[0]
    before = vehicle.installed_on - timedelta(days=1)
    assert f.history_rows(vehicle.placa, before) == []
    assert f.history_rows(vehicle.placa, vehicle.installed_on)


# ------------------------------------------------------------------ quirks
def sortable(text: str) -> str:
    """'DD/MM/YYYY HH:MM:SS' -> 'YYYYMMDD HH:MM:SS' (strptime made these tests slow)."""
    return text[6:10] + text[3:5] + text[0:2] + text[10:]


def quirk_counts(f: Fleet, with_jumps: bool = True) -> Counter[str]:
    counts: Counter[str] = Counter()
    for plate, day in vehicle_days(f, PAST_DAYS[:3]):
        rows = f.history_rows(plate, day)
        stamps = [sortable(row["data_transmissao"]) for row in rows]
        keys = [tuple(sorted((k, str(v)) for k, v in row.items())) for row in rows]
        counts["duplicate"] += len(keys) - len(set(keys))
        counts["out_of_order"] += stamps != sorted(stamps)
        counts["no_fix"] += sum(row["latitude"] == "0" and row["longitude"] == "0" for row in rows)
        counts["empty_address"] += sum(
            row["logradouro"] == "" and row["latitude"] != "0" for row in rows
        )
        counts["units"] += sum(
            "km/h" in str(row["velocidade"]) or "," in str(row["bateria"]) for row in rows
        )
        if with_jumps:
            positions = f.expected_positions(plate, day)
            counts["jump"] += sum(p.quality == "jump" for p in positions)
    return counts


def test_every_quirk_is_present_by_default() -> None:
    counts = quirk_counts(fleet())
    for quirk in ("duplicate", "out_of_order", "no_fix", "empty_address", "units", "jump"):
        assert counts[quirk] > 0, quirk


def test_no_quirks_when_switched_off() -> None:
    counts = quirk_counts(clean())
    assert counts["duplicate"] == 0
    assert counts["out_of_order"] == 0
    assert counts["no_fix"] == 0
    assert counts["units"] == 0
    assert counts["jump"] == 0
    assert counts["empty_address"] == 0


@pytest.mark.parametrize(
    ("rate", "quirk"),
    [
        ("duplicate_rate", "duplicate"),
        ("out_of_order_rate", "out_of_order"),
        ("no_fix_rate", "no_fix"),
        ("jump_rate", "jump"),
        ("empty_address_rate", "empty_address"),
        ("unit_strings_rate", "units"),
    ],
)
def test_each_quirk_switches_off_alone(rate: str, quirk: str) -> None:
    counts = quirk_counts(fleet(QuirkConfig(**{rate: 0.0})), with_jumps=quirk == "jump")
    assert counts[quirk] == 0
    assert sum(counts.values()) > 0


def test_quirks_do_not_move_the_true_data() -> None:
    noisy, quiet = fleet(), clean()
    for plate, day in vehicle_days(noisy)[:20]:
        true = {p.data_transmissao: p for p in valid(quiet.expected_positions(plate, day))}
        for p in valid(noisy.expected_positions(plate, day)):
            q = true[p.data_transmissao]
            assert (p.latitude, p.longitude, p.odometro, p.ignicao, p.velocidade) == (
                q.latitude,
                q.longitude,
                q.odometro,
                q.ignicao,
                q.velocidade,
            )
        assert len(valid(noisy.expected_positions(plate, day))) == len(true)


def test_jumps_and_no_fix_rows_are_isolated_extra_rows() -> None:
    f = fleet(QuirkConfig(no_fix_rate=0.03, jump_rate=0.03))
    jumps = 0
    for plate, day in [*vehicle_days(f), *((p, TODAY) for p in f.plates())]:
        positions = f.expected_positions(plate, day)
        for index, p in enumerate(positions):
            if p.quality == "valid":
                continue
            assert index > 0, (plate, day, p)
            assert positions[index - 1].quality == "valid"
            if index + 1 < len(positions):
                assert positions[index + 1].quality == "valid"
            if p.quality == "jump":
                # Never the last row, even of today's rows truncated at now.
                assert index < len(positions) - 1, (plate, day, p)
                jumps += 1
                before = positions[index - 1]
                assert (
                    haversine_m(p.latitude, p.longitude, before.latitude, before.longitude)
                    > 200_000
                )
            else:
                assert (p.latitude, p.longitude) == (0.0, 0.0)
                assert p.logradouro is None
    assert jumps > 10


# ------------------------------------------------------------ ground truth
def test_expected_positions_match_the_served_rows() -> None:
    f = fleet()
    for plate, day in [*vehicle_days(f)[:30], *((p, TODAY) for p in f.plates())]:
        rows = f.history_rows(plate, day)
        expected = {p.data_transmissao: p for p in f.expected_positions(plate, day)}
        served = {parsed(row)[0]: row for row in rows}
        assert served.keys() == expected.keys()
        for moment, row in served.items():
            p = expected[moment]
            _, lat, lon, speed, ignition, odometer = parsed(row)
            assert canonical_plate(row["placa"]) == p.placa == plate
            assert (lat, lon, speed, ignition, odometer) == (
                p.latitude,
                p.longitude,
                p.velocidade,
                p.ignicao,
                p.odometro,
            )
            assert (row["logradouro"] or None) == p.logradouro


def test_trip_summaries_agree_with_the_positions() -> None:
    f = fleet()
    for plate, day in vehicle_days(f):
        trips = f.true_trips(plate, day)
        summaries = f.trip_summaries(plate, day)
        assert len(summaries) == len(trips)
        positions = {p.data_transmissao: p for p in valid(f.expected_positions(plate, day))}
        for trip, summary in zip(trips, summaries, strict=True):
            assert set(summary) == {
                "cliente", "cliente_fantasia", "placa", "descricao", "frota",
                "data_inicio_conducao", "data_fim_conducao",
                "latitude_inicio_conducao", "longitude_inicio_conducao",
                "latitude_fim_conducao", "longitude_fim_conducao",
                "localizacao_inicio_conducao", "localizacao_fim_conducao",
                "odometro_inicio_conducao", "odometro_fim_conducao",
                "duracao_conducao", "distancia_conducao",
                "condutor_nome", "condutor_identificacao",
            }  # fmt: skip
            assert canonical_plate(summary["placa"]) == plate
            begin = parse_local(summary["data_inicio_conducao"], TZ)
            end = parse_local(summary["data_fim_conducao"], TZ)
            assert (begin, end) == (trip.ignition_on, trip.ignition_off)
            hours, minutes, seconds = map(int, summary["duracao_conducao"].split(":"))
            assert timedelta(hours=hours, minutes=minutes, seconds=seconds) == end - begin
            distance = float(summary["distancia_conducao"])
            assert distance * 1000 == pytest.approx(trip.distance_m, abs=10)
            odometers = float(summary["odometro_fim_conducao"]) - float(
                summary["odometro_inicio_conducao"]
            )
            assert odometers == pytest.approx(distance, abs=0.006)
            # The ignition rows bracket the trip, at the trip's ends.
            on, off = positions[begin], positions[end]
            assert on.ignicao
            assert not off.ignicao
            assert (on.latitude, on.longitude) == (
                pytest.approx(float(summary["latitude_inicio_conducao"]), abs=1e-6),
                pytest.approx(float(summary["longitude_inicio_conducao"]), abs=1e-6),
            )
            assert (off.latitude, off.longitude) == (
                pytest.approx(float(summary["latitude_fim_conducao"]), abs=1e-6),
                pytest.approx(float(summary["longitude_fim_conducao"]), abs=1e-6),
            )
            assert off.odometro - on.odometro == pytest.approx(distance, abs=0.006)
        assert sum(t.distance_m for t in trips) == pytest.approx(f.true_distance_m(plate, day))


def test_latest_rows_are_the_last_rows_of_history() -> None:
    f = fleet()
    latest = f.latest_rows()
    assert len(latest) == len(f.plates())
    for row in latest:
        plate = canonical_plate(row["placa"])
        assert plate is not None
        assert {"equipamento_serial", "data_gravacao"} <= row.keys()
        last = f.expected_positions(plate, TODAY)[-1]
        assert parsed(row)[0] == last.data_transmissao
        assert row == f.latest_row(plate)


def test_window_rows_are_the_day_rows_inside_the_window() -> None:
    f = fleet()
    plate = f.plates()[3]
    start = datetime(2025, 1, 6, 18, 0, tzinfo=TZ)
    end = datetime(2025, 1, 7, 9, 30, tzinfo=TZ)
    rows = f.window_rows(plate, start, end)
    expected = [
        row
        for day in (date(2025, 1, 6), date(2025, 1, 7))
        for row in f.history_rows(plate, day)
        if start <= parse_local(row["data_transmissao"], TZ) <= end
    ]
    assert rows == expected
    assert rows


def test_latest_row_follows_the_clock() -> None:
    """The cached latest row is always the newest visible row, around midnight too."""
    f = Fleet(
        FleetConfig(
            seed=42, vehicles=3, now=NOW, quirks=QuirkConfig(no_fix_rate=0.05, jump_rate=0.05)
        )
    )
    for start in (datetime(2025, 1, 7, 9, 0, tzinfo=TZ), datetime(2025, 1, 6, 23, 40, tzinfo=TZ)):
        moments = [start + timedelta(seconds=17 * k) for k in range(150)]
        for vehicle in f.vehicles():
            days = {m.date() for m in moments} | {start.date() - timedelta(days=1)}
            everything = [
                p for day in sorted(days) for p in f.expected_positions(vehicle.placa, day)
            ]
            for moment in moments:
                cutoff = moment - timedelta(seconds=vehicle.storage_delay_s + 3)
                shown = [
                    p for p in everything if p.data_transmissao <= cutoff and p.quality != "jump"
                ]
                row = f.latest_row(vehicle.placa, now=moment)
                assert row is not None
                assert parse_local(row["data_transmissao"], TZ) == shown[-1].data_transmissao
