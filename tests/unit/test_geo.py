"""Haversine on Traccar's sphere, implied speeds, path lengths."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etrack.geo import (
    EARTH_RADIUS_M,
    haversine_m,
    implied_speed_kmh,
    is_valid_coordinate,
    path_length_m,
    speed_between_kmh,
    step_distances_m,
)

ONE_DEGREE_M = 2 * math.pi * EARTH_RADIUS_M / 360  # 111319.49 m on Traccar's sphere


def test_radius_is_traccars() -> None:
    assert EARTH_RADIUS_M == 6378137.0


def test_same_point_is_zero() -> None:
    assert haversine_m(-23.55052, -46.633308, -23.55052, -46.633308) == 0.0


@pytest.mark.parametrize(
    ("lat1", "lon1", "lat2", "lon2"),
    [
        (0.0, 0.0, 0.0, 1.0),  # along the equator
        (0.0, -46.0, 1.0, -46.0),  # along a meridian
        (-10.0, 179.5, -10.0, -179.5),  # across the antimeridian: 1 degree of longitude
    ],
)
def test_one_degree(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    expected = ONE_DEGREE_M if lat1 == 0.0 else ONE_DEGREE_M * math.cos(math.radians(10.0))
    assert haversine_m(lat1, lon1, lat2, lon2) == pytest.approx(expected, rel=1e-4)


def test_antipodes_are_half_a_circumference() -> None:
    assert haversine_m(10.0, 20.0, -10.0, -160.0) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert haversine_m(90.0, 0.0, -90.0, 0.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_sao_paulo_to_rio_matches_the_law_of_cosines() -> None:
    lat1, lon1, lat2, lon2 = -23.55052, -46.633308, -22.906847, -43.172896
    p1, p2 = math.radians(lat1), math.radians(lat2)
    central = math.acos(
        math.sin(p1) * math.sin(p2)
        + math.cos(p1) * math.cos(p2) * math.cos(math.radians(lon2 - lon1))
    )
    assert haversine_m(lat1, lon1, lat2, lon2) == pytest.approx(EARTH_RADIUS_M * central, rel=1e-9)
    assert 355_000 < haversine_m(lat1, lon1, lat2, lon2) < 365_000


coordinates = st.tuples(
    st.floats(min_value=-90, max_value=90), st.floats(min_value=-180, max_value=180)
)


@given(coordinates, coordinates)
def test_haversine_is_symmetric_and_bounded(a: tuple[float, float], b: tuple[float, float]) -> None:
    forward = haversine_m(a[0], a[1], b[0], b[1])
    assert forward == pytest.approx(haversine_m(b[0], b[1], a[0], a[1]), abs=1e-6)
    assert 0.0 <= forward <= math.pi * EARTH_RADIUS_M + 1e-6


def test_implied_speed() -> None:
    assert implied_speed_kmh(1000.0, 36.0) == pytest.approx(100.0)
    assert implied_speed_kmh(50_000.0, 10 * 3600.0) == pytest.approx(5.0)


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_implied_speed_without_time_never_divides(seconds: float) -> None:
    assert implied_speed_kmh(0.0, seconds) == 0.0
    assert implied_speed_kmh(10.0, seconds) == math.inf


def test_speed_between_ignores_order_of_times() -> None:
    forward = speed_between_kmh(0.0, 0.0, 0.0, 0.0, 1.0, 3600.0)
    assert forward == pytest.approx(ONE_DEGREE_M / 1000.0, rel=1e-9)
    assert speed_between_kmh(0.0, 1.0, 3600.0, 0.0, 0.0, 0.0) == pytest.approx(forward)


def test_path_length() -> None:
    assert path_length_m([]) == 0.0
    assert path_length_m([(0.0, 0.0)]) == 0.0
    assert path_length_m([(0.0, 0.0), (0.0, 1.0), (0.0, 2.0)]) == pytest.approx(2 * ONE_DEGREE_M)


def test_is_valid_coordinate() -> None:
    assert is_valid_coordinate(-90.0, 180.0)
    assert not is_valid_coordinate(90.1, 0.0)
    assert not is_valid_coordinate(0.0, -180.1)
    assert not is_valid_coordinate(math.nan, 0.0)


def test_step_distances_are_the_pairs_haversine() -> None:
    lats = [-23.55, -23.54, -23.54, 10.0, -10.0]
    lons = [-46.63, -46.62, -46.62, 20.0, -160.0]
    steps = step_distances_m(lats, lons)
    assert steps == pytest.approx(
        [haversine_m(lats[i], lons[i], lats[i + 1], lons[i + 1]) for i in range(4)], rel=1e-12
    )
    assert steps[1] == 0.0
    assert sum(steps) == pytest.approx(path_length_m(zip(lats, lons, strict=True)), rel=1e-12)
    assert step_distances_m([], []) == []
    assert step_distances_m([1.0], [2.0]) == []
