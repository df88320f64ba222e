"""Plausibility flags: nonsense speeds, odometers and timestamps never stay `valid`."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etrack.config import Settings
from etrack.model import (
    BAD_ODOMETER,
    BAD_SPEED,
    DUPLICATE,
    JUMP,
    NO_FIX,
    ODOMETER_BACKWARDS,
    TOO_OLD,
    VALID,
    Position,
)
from etrack.quality import (
    DEFAULT_PLAUSIBILITY,
    Plausibility,
    flag_sequence,
    plausibility,
    plausible_quality,
)

START = datetime(2025, 7, 1, 11, 0, tzinfo=UTC)
LAT, LON = -23.5, -46.6
JUMP_KMH = 300.0
EXTREMES = [1e308, -1e308, 1e30, -1e30, math.inf, -math.inf, math.nan]
PLAUSIBILITY_FLAGS = {TOO_OLD, BAD_SPEED, BAD_ODOMETER, ODOMETER_BACKWARDS}


def point(
    minute: float = 0.0,
    *,
    plate: str = "ABC1234",
    when: datetime | None = None,
    speed: float | None = 40.0,
    odometer: float | None = None,
    odometer_can: float | None = None,
    lat: float = LAT,
    lon: float = LON,
    quality: str = VALID,
) -> Position:
    """A valid-looking row; a minute of driving is a few hundred metres, never a jump."""
    return Position(
        placa=plate,
        data_transmissao=when or START + timedelta(minutes=minute),
        latitude=lat,
        longitude=lon + minute * 0.001,
        velocidade=speed,
        ignicao=True,
        odometro=odometer,
        odometro_can=odometer_can,
        horimetro=None,
        bateria=None,
        logradouro=None,
        descricao=None,
        frota=None,
        equipamento_serial=None,
        data_gravacao=None,
        placa_raw=plate,
        quality=quality,
        raw={},
    )


def qualities(positions: list[Position], **kwargs: object) -> list[str]:
    flagged = flag_sequence(positions, jump_speed_kmh=JUMP_KMH, **kwargs)  # type: ignore[arg-type]
    return [p.quality for p in flagged]


def odometer_track(readings: list[float], **kwargs: object) -> list[str]:
    return qualities([point(i, odometer=r) for i, r in enumerate(readings)], **kwargs)


# ------------------------------------------------------------------ speed


@pytest.mark.parametrize("speed", [*EXTREMES, -1.0, 300.5])
def test_a_nonsense_speed_is_bad_speed(speed: float) -> None:
    assert plausible_quality(point(speed=speed)) == BAD_SPEED
    assert qualities([point(0), point(1, speed=speed), point(2)]) == [VALID, BAD_SPEED, VALID]


@pytest.mark.parametrize("speed", [None, 0.0, 54.0, 299.9, 300.0])
def test_a_real_speed_stays_valid(speed: float | None) -> None:
    assert plausible_quality(point(speed=speed)) == VALID


def test_the_speed_limit_is_configurable() -> None:
    strict = DEFAULT_PLAUSIBILITY._replace(max_speed_kmh=150.0)
    assert plausible_quality(point(speed=151.0), strict) == BAD_SPEED
    assert qualities([point(speed=151.0)], limits=strict) == [BAD_SPEED]
    assert qualities([point(speed=151.0)]) == [VALID]


# --------------------------------------------------------------- odometer


@pytest.mark.parametrize("odometer", [*EXTREMES, -0.01, 10000001.0])
def test_a_nonsense_odometer_is_bad_odometer(odometer: float) -> None:
    assert plausible_quality(point(odometer=odometer)) == BAD_ODOMETER
    assert plausible_quality(point(odometer=1000.0, odometer_can=odometer)) == BAD_ODOMETER


@pytest.mark.parametrize("odometer", [None, 0.0, 123_456.78, 10_000_000.0])
def test_a_real_odometer_stays_valid(odometer: float | None) -> None:
    assert plausible_quality(point(odometer=odometer, odometer_can=odometer)) == VALID


def test_a_lone_low_reading_runs_backwards() -> None:
    assert odometer_track([100.0, 100.5, 5.0, 101.0, 101.5]) == [
        VALID,
        VALID,
        ODOMETER_BACKWARDS,
        VALID,
        VALID,
    ]


def test_a_bad_first_reading_does_not_condemn_the_track() -> None:
    assert odometer_track([900.0, 100.0, 100.5, 101.0]) == [ODOMETER_BACKWARDS, VALID, VALID, VALID]


def test_a_reset_followed_by_a_longer_track_keeps_the_longer_track() -> None:
    assert (
        odometer_track([500.0, 500.1, 0.0, 0.1, 0.2, 0.3]) == [ODOMETER_BACKWARDS] * 2 + [VALID] * 4
    )


def test_a_tie_keeps_the_earlier_reading() -> None:
    assert odometer_track([100.0, 50.0]) == [VALID, ODOMETER_BACKWARDS]


def test_a_standing_vehicle_repeats_its_odometer() -> None:
    assert odometer_track([100.0, 100.0, 100.0]) == [VALID] * 3


def test_odometro_can_is_read_when_odometro_is_missing() -> None:
    track = [point(0, odometer_can=100.0), point(1, odometer_can=5.0), point(2, odometer=101.0)]
    assert qualities(track) == [VALID, ODOMETER_BACKWARDS, VALID]


def test_rows_without_an_odometer_are_not_judged_by_it() -> None:
    track = [point(0, odometer=100.0), point(1), point(2, odometer=5.0), point(3, odometer=101.0)]
    assert qualities(track) == [VALID, VALID, ODOMETER_BACKWARDS, VALID]


def test_plates_are_judged_apart_and_input_order_does_not_matter() -> None:
    track = [
        point(2, odometer=5.0),
        point(0, plate="XYZ9A87", odometer=1.0),
        point(0, odometer=100.0),
        point(1, plate="XYZ9A87", odometer=2.0),
        point(1, odometer=100.5),
    ]
    assert qualities(track) == [ODOMETER_BACKWARDS, VALID, VALID, VALID, VALID]


def test_the_stored_neighbour_counts_but_is_never_output() -> None:
    stored = point(-5, odometer=1000.0)
    assert qualities([point(0, odometer=10.0)], previous={"ABC1234": stored}) == [
        ODOMETER_BACKWARDS
    ]
    assert qualities([point(0, odometer=1000.1)], previous={"ABC1234": stored}) == [VALID]
    # Two consistent new readings outweigh one stored reading: a reset heals.
    assert qualities(
        [point(0, odometer=10.0), point(1, odometer=10.2)], previous={"ABC1234": stored}
    ) == [VALID, VALID]


def test_a_nonsense_stored_neighbour_is_ignored() -> None:
    stored = point(-5, odometer=1e30)
    assert qualities([point(0, odometer=10.0)], previous={"ABC1234": stored}) == [VALID]


def test_a_backwards_row_is_no_jump_anchor() -> None:
    # The low reading is also far away: it is flagged once, for its odometer,
    # and the track around it stays valid.
    far = point(1, odometer=5.0, lat=LAT + 3.0)
    track = [point(0, odometer=100.0), far, point(2, odometer=100.2)]
    assert qualities(track) == [VALID, ODOMETER_BACKWARDS, VALID]


# ---------------------------------------------------------------- timestamp


@pytest.mark.parametrize("year", [1, 1900, 1969, 1970, 1999])
def test_a_timestamp_before_any_tracker_is_too_old(year: int) -> None:
    when = datetime(year, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert plausible_quality(point(when=when)) == TOO_OLD
    assert qualities([point(when=when), point(0)]) == [TOO_OLD, VALID]


def test_the_floor_itself_is_valid_and_configurable() -> None:
    floor = datetime(2000, 1, 1, tzinfo=UTC)
    assert plausible_quality(point(when=floor)) == VALID
    later = DEFAULT_PLAUSIBILITY._replace(earliest=datetime(2020, 1, 1, tzinfo=UTC))
    assert plausible_quality(point(when=floor), later) == TOO_OLD


def test_flags_of_the_parser_are_kept() -> None:
    no_fix = point(0, lat=0.0, lon=0.0, speed=1e308, quality=NO_FIX)
    assert plausible_quality(no_fix) == NO_FIX
    assert qualities([no_fix]) == [NO_FIX]


def test_a_copy_of_a_bad_row_is_a_duplicate() -> None:
    bad = point(0, speed=1e308)
    assert qualities([bad, bad]) == [BAD_SPEED, DUPLICATE]


def test_the_limits_come_from_the_settings() -> None:
    defaults = Settings.model_construct()
    assert plausibility(defaults) == DEFAULT_PLAUSIBILITY
    assert (
        Plausibility(300.0, 10_000_000.0, datetime(2000, 1, 1, tzinfo=UTC)) == DEFAULT_PLAUSIBILITY
    )
    custom = defaults.model_copy(
        update={
            "etrac_max_speed_kmh": 200.0,
            "etrac_max_odometer_km": 5e6,
            "etrac_earliest_position_date": date(2010, 5, 1),
        }
    )
    assert plausibility(custom) == Plausibility(200.0, 5e6, datetime(2010, 5, 1, tzinfo=UTC))


# --------------------------------------------------------------- properties

any_float = st.floats(allow_nan=True, allow_infinity=True)
extreme_or_real = st.one_of(
    any_float,
    st.sampled_from([1e308, -1e308, 1e30, -1e30, 0.0, -0.0, 5e-324]),
    st.floats(min_value=0.0, max_value=500.0),
    st.none(),
)
any_time = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@st.composite
def answers(draw: st.DrawFn) -> list[Position]:
    count = draw(st.integers(min_value=0, max_value=20))
    rows = []
    for _ in range(count):
        plate = draw(st.sampled_from(["ABC1234", "XYZ9A87"]))
        if draw(st.booleans()):
            when = draw(any_time)
        else:
            when = START + timedelta(minutes=draw(st.integers(0, 30)))
        rows.append(
            point(
                plate=plate,
                when=when,
                speed=draw(extreme_or_real),
                odometer=draw(extreme_or_real),
                odometer_can=draw(extreme_or_real),
            )
        )
    return rows


def reading(p: Position) -> float | None:
    return p.odometro if p.odometro is not None else p.odometro_can


@given(answers())
def test_no_nonsense_stays_valid(positions: list[Position]) -> None:
    limits = DEFAULT_PLAUSIBILITY
    flagged = flag_sequence(positions, jump_speed_kmh=JUMP_KMH)
    assert [p.key for p in flagged] == [p.key for p in positions]
    for before, after in zip(positions, flagged, strict=True):
        assert after[:16] == before[:16]  # raw values kept: only the flag changes
        if after.quality in PLAUSIBILITY_FLAGS | {JUMP}:
            assert before.quality == VALID
    valid = [p for p in flagged if p.quality == VALID]
    for p in valid:
        assert p.data_transmissao >= limits.earliest
        assert p.velocidade is None or 0.0 <= p.velocidade <= limits.max_speed_kmh
        for odometer in (p.odometro, p.odometro_can):
            assert odometer is None or 0.0 <= odometer <= limits.max_odometer_km
    for plate in {p.placa for p in valid}:
        odometers = [
            r
            for p in sorted(
                (p for p in valid if p.placa == plate), key=lambda p: p.data_transmissao
            )
            if (r := reading(p)) is not None
        ]
        assert odometers == sorted(odometers)
    assert flag_sequence(flagged, jump_speed_kmh=JUMP_KMH) == flagged


def longest_non_decreasing(values: list[float]) -> int:
    best = [1] * len(values)
    for j in range(len(values)):
        for i in range(j):
            if values[i] <= values[j]:
                best[j] = max(best[j], best[i] + 1)
    return max(best, default=0)


@given(st.lists(st.floats(min_value=0.0, max_value=1000.0) | st.sampled_from([1.0, 2.0, 3.0])))
def test_the_longest_odometer_chain_is_kept(readings: list[float]) -> None:
    kept = [q for q in odometer_track(readings) if q == VALID]
    assert len(kept) == longest_non_decreasing(readings)
