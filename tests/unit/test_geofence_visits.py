"""Visits (etrack.geofences.visits): every rule of the definition at its
boundary (the first position inside, the first outside, open at the end,
the minimum duration, gaps, a passage with no position inside, midnight),
the enter/exit events, and properties: against a position-by-position
reading of the rules, and split at an outside position = whole."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from etrack.geofences.shapes import EARTH_RADIUS_M, Fence, FenceIndex
from etrack.geofences.visits import (
    ENTER,
    EXIT,
    Visit,
    enter_exit,
    fence_visits,
    track_visits,
)

T0 = datetime(2025, 3, 4, 12, 0, tzinfo=UTC).timestamp()
MIN_S = 120.0
GAP_S = 300.0

# Two circles 100 m apart with radii of 150 m: they overlap between them.
LAT, LON = -23.55, -46.63
M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT))


def east(metres: float) -> tuple[float, float]:
    """(lat, lon) that many metres east of the centre of fence A."""
    return LAT, LON + metres / M_PER_DEG_LON


def circle(name: str, metres_east: float, radius_m: float) -> Fence:
    lat, lon = east(metres_east)
    return Fence(name, "circle", {"type": "Point", "coordinates": [lon, lat]}, radius_m=radius_m)


INDEX = FenceIndex([circle("A", 0.0, 150.0), circle("B", 100.0, 150.0)])
# Where a position may be, for the properties: each place's fences.
PLACES = {
    "far": east(-1000.0),  # outside both
    "only A": east(-100.0),
    "both": east(50.0),
    "only B": east(200.0),
}


def visits(
    seconds: Sequence[float],
    inside: Sequence[bool],
    *,
    min_s: float = MIN_S,
    max_gap_s: float = GAP_S,
) -> list[tuple[float, float | None, float]]:
    """fence_visits on times relative to T0, answers relative to T0."""
    found = fence_visits(
        np.array([T0 + s for s in seconds], dtype=np.float64),
        np.array(inside, dtype=np.bool_),
        min_s=min_s,
        max_gap_s=max_gap_s,
    )
    return [(a - T0, None if d is None else d - T0, last - T0) for a, d, last in found]


IN, OUT = True, False


# ---------------------------------------------------------------- arrival
def test_a_visit_arrives_at_the_first_position_inside_after_one_outside() -> None:
    assert visits([0, 60, 120, 180, 240, 300], [OUT, OUT, IN, IN, IN, OUT]) == [(120, 300, 240)]


def test_a_track_starting_inside_arrives_at_its_first_position() -> None:
    assert visits([0, 60, 120, 180], [IN, IN, IN, OUT]) == [(0, 180, 120)]


def test_arrival_is_the_positions_time_not_an_interpolated_crossing() -> None:
    # Outside at 0, inside at 200 (the gap is within max_gap_s): the arrival is
    # 200 whatever the crossing's time on the way.
    assert visits([0, 200, 400], [OUT, IN, OUT])[0][0] == 200


# ---------------------------------------------------------------- departure
def test_a_visit_departs_at_the_first_position_outside() -> None:
    assert visits([0, 60, 120, 180, 240], [IN, IN, IN, OUT, OUT]) == [(0, 180, 120)]


def test_a_visit_still_inside_at_the_end_of_the_track_is_open() -> None:
    assert visits([0, 60, 120, 180, 240], [OUT, IN, IN, IN, IN]) == [(60, None, 240)]


def test_a_track_entirely_inside_is_one_open_visit() -> None:
    assert visits([0, 100, 200], [IN, IN, IN]) == [(0, None, 200)]


def test_no_position_inside_and_no_position_at_all_give_no_visit() -> None:
    assert visits([0, 60, 120], [OUT, OUT, OUT]) == []
    assert visits([], []) == []


# ---------------------------------------------------------------- minimum duration
def test_a_closed_visit_of_exactly_min_s_is_kept_and_one_second_less_dropped() -> None:
    assert visits([0, 60, 120], [IN, IN, OUT]) == [(0, 120, 60)]
    assert visits([0, 60, 119], [IN, IN, OUT]) == []


def test_the_closed_minimum_counts_to_the_departure_not_the_last_inside() -> None:
    # Inside for 10 s of fixes, but departed (seen outside) 120 s after arriving.
    assert visits([0, 10, 120], [IN, IN, OUT]) == [(0, 120, 10)]


def test_an_open_visit_is_kept_only_once_seen_inside_for_min_s() -> None:
    assert visits([0, 60, 119], [OUT, IN, IN]) == []  # 59 s inside so far
    assert visits([0, 60, 179], [OUT, IN, IN]) == []  # 119 s
    assert visits([0, 60, 180], [OUT, IN, IN]) == [(60, None, 180)]  # exactly 120 s
    assert visits([0, 60, 180, 240], [OUT, IN, IN, IN]) == [(60, None, 240)]


def test_min_s_drops_short_visits_and_keeps_the_long_ones_of_one_track() -> None:
    seconds = [0, 60, 120, 180, 240, 300, 360, 420, 480]
    inside = [IN, OUT, OUT, IN, IN, IN, OUT, IN, OUT]
    # (0, 60) and (420, 480) last 60 s; (180, 360) lasts 180 s.
    assert visits(seconds, inside) == [(180, 360, 300)]
    assert visits(seconds, inside, min_s=60) == [(0, 60, 0), (180, 360, 300), (420, 480, 420)]


# ---------------------------------------------------------------- gaps
def test_a_gap_from_inside_to_inside_does_not_end_the_visit() -> None:
    assert visits([0, 60, 60 + 3600, 3720, 3780], [OUT, IN, IN, IN, OUT]) == [(60, 3780, 3720)]


def test_a_gap_from_inside_to_outside_ends_the_visit_at_the_last_inside_position() -> None:
    assert visits([0, 60, 240, 240 + 301, 600], [OUT, IN, IN, OUT, OUT]) == [(60, 240, 240)]


def test_a_gap_of_exactly_max_gap_s_is_not_a_gap() -> None:
    assert visits([0, 60, 240, 240 + 300], [OUT, IN, IN, OUT]) == [(60, 540, 240)]


def test_a_visit_ended_by_a_gap_counts_its_minimum_to_the_last_inside_position() -> None:
    # Seen inside from 0 to 100; the next fix, 1,000 s later, is outside.
    assert visits([0, 100, 1100], [IN, IN, OUT]) == []
    assert visits([0, 120, 1120], [IN, IN, OUT]) == [(0, 120, 120)]


def test_a_lone_inside_position_before_a_gap_out_has_no_dwell() -> None:
    assert visits([0, 60, 1000], [OUT, IN, OUT]) == []
    assert visits([0, 60, 1000], [OUT, IN, OUT], min_s=0) == [(60, 60, 60)]


def test_a_gap_from_outside_to_inside_starts_the_visit_after_it() -> None:
    assert visits([0, 5000, 5060, 5200], [OUT, IN, IN, OUT]) == [(5000, 5200, 5060)]


# ---------------------------------------------------------------- several visits
def test_one_outside_position_between_two_runs_makes_two_visits() -> None:
    seconds = [0, 60, 120, 180, 240, 300, 360, 420]
    inside = [IN, IN, IN, OUT, IN, IN, IN, IN]
    assert visits(seconds, inside) == [(0, 180, 120), (240, None, 420)]


def test_a_visit_over_midnight_is_one_visit() -> None:
    # Inside from 23:51 to 00:19 UTC, seen outside at 00:20: no day splits it.
    midnight = datetime(2025, 3, 5, tzinfo=UTC).timestamp()
    seconds = [midnight - 600 + 60 * k for k in range(31)]
    inside = [False] + [True] * 29 + [False]
    found = fence_visits(
        np.array(seconds, dtype=np.float64),
        np.array(inside, dtype=np.bool_),
        min_s=MIN_S,
        max_gap_s=GAP_S,
    )
    assert found == [(midnight - 540, midnight + 1200, midnight + 1140)]
    # The same track an hour earlier, inside one day: the same visit, an hour earlier.
    earlier = fence_visits(
        np.array(seconds, dtype=np.float64) - 3600,
        np.array(inside, dtype=np.bool_),
        min_s=MIN_S,
        max_gap_s=GAP_S,
    )
    assert earlier == [(a - 3600, d - 3600, last - 3600) for a, d, last in found if d is not None]


# ---------------------------------------------------------------- inputs
def test_unequal_arrays_and_time_going_backwards_are_refused() -> None:
    with pytest.raises(ValueError, match="equal"):
        fence_visits(np.array([0.0, 1.0]), np.array([True]), min_s=0, max_gap_s=GAP_S)
    with pytest.raises(ValueError, match="ascending"):
        fence_visits(np.array([0.0, 2.0, 1.0]), np.array([IN, IN, OUT]), min_s=0, max_gap_s=GAP_S)


# ---------------------------------------------------------------- track_visits
def track(
    seconds: Sequence[float], places: Sequence[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.array([T0 + s for s in seconds], dtype=np.float64),
        np.array([p[0] for p in places], dtype=np.float64),
        np.array([p[1] for p in places], dtype=np.float64),
    )


def test_a_segment_crossing_a_fence_between_two_outside_positions_is_a_passage() -> None:
    index = FenceIndex([circle("A", 0.0, 100.0)])
    # 200 m west, then 200 m east 30 s later: the straight line goes through
    # the centre, but no position is inside.
    ts, lats, lons = track([0, 30], [east(-200.0), east(200.0)])
    assert index.inside(lats, lons) == {}
    assert track_visits(ts, lats, lons, index, min_s=0, max_gap_s=GAP_S) == []


def test_two_overlapping_fences_give_a_visit_in_each() -> None:
    ts, lats, lons = track(
        [0, 60, 120, 180, 240, 300, 360, 420, 480],
        [
            PLACES["far"],
            PLACES["only A"],
            PLACES["only A"],
            PLACES["both"],
            PLACES["both"],
            PLACES["both"],
            PLACES["only B"],
            PLACES["only B"],
            PLACES["far"],
        ],
    )
    found = track_visits(ts, lats, lons, INDEX, min_s=MIN_S, max_gap_s=GAP_S)
    assert found == [
        Visit("A", T0 + 60, T0 + 360, T0 + 300),
        Visit("B", T0 + 180, T0 + 480, T0 + 420),
    ]
    assert [v.dwell_s for v in found] == [300, 300]


def test_visits_are_sorted_by_arrival_then_fence_name() -> None:
    index = FenceIndex([circle("Z", 0.0, 150.0), circle("M", 100.0, 150.0)])
    ts, lats, lons = track([0, 60, 120, 180], [PLACES["far"], *[PLACES["both"]] * 3])
    found = track_visits(ts, lats, lons, index, min_s=MIN_S, max_gap_s=GAP_S)
    assert [(v.fence, v.arrive_s - T0, v.depart_s) for v in found] == [
        ("M", 60, None),
        ("Z", 60, None),
    ]
    assert found[0].dwell_s == 120


def test_track_visits_of_no_fence_or_no_position_is_empty() -> None:
    ts, lats, lons = track([0, 60, 120], [PLACES["far"]] * 3)
    assert track_visits(ts, lats, lons, INDEX, min_s=0, max_gap_s=GAP_S) == []
    ts, lats, lons = track([], [])
    assert track_visits(ts, lats, lons, INDEX, min_s=0, max_gap_s=GAP_S) == []
    with pytest.raises(ValueError, match="equal"):
        track_visits(ts, np.array([LAT]), lons, INDEX, min_s=0, max_gap_s=GAP_S)


# ---------------------------------------------------------------- enter / exit
def test_enter_at_each_arrival_exit_at_each_departure_open_visits_enter_only() -> None:
    events = enter_exit(
        [
            Visit("A", 100.0, 400.0, 350.0),
            Visit("B", 200.0, None, 600.0),
            Visit("A", 500.0, 700.0, 650.0),
        ]
    )
    assert events == [
        (ENTER, "A", 100.0),
        (ENTER, "B", 200.0),
        (EXIT, "A", 400.0),
        (ENTER, "A", 500.0),
        (EXIT, "A", 700.0),
    ]
    assert enter_exit([]) == []


def test_at_the_same_moment_an_exit_comes_before_an_enter() -> None:
    # The position that leaves B is the first one inside A (names in the
    # other order, so that sorting by name would put the enter first).
    events = enter_exit([Visit("A", 300.0, None, 600.0), Visit("B", 100.0, 300.0, 250.0)])
    assert events == [(ENTER, "B", 100.0), (EXIT, "B", 300.0), (ENTER, "A", 300.0)]


def test_enter_exit_of_track_visits() -> None:
    ts, lats, lons = track(
        [0, 60, 120, 180, 240, 300],
        [
            PLACES["far"],
            PLACES["only A"],
            PLACES["both"],
            PLACES["both"],
            PLACES["only B"],
            PLACES["only B"],
        ],
    )
    found = track_visits(ts, lats, lons, INDEX, min_s=MIN_S, max_gap_s=GAP_S)
    assert [(k, f, t - T0) for k, f, t in enter_exit(found)] == [
        (ENTER, "A", 60),
        (ENTER, "B", 120),
        (EXIT, "A", 240),
    ]


# ---------------------------------------------------------------- properties
def reference(
    ts: Sequence[float], inside: Sequence[bool], min_s: float, max_gap_s: float
) -> list[tuple[float, float | None, float]]:
    """The rules read position by position, as written in the module docstring."""
    found: list[tuple[float, float | None, float]] = []
    arrive: float | None = None
    last_inside = 0.0
    for k, (t, now_inside) in enumerate(zip(ts, inside, strict=True)):
        if now_inside:
            if arrive is None:
                arrive = t
            last_inside = t
        elif arrive is not None:
            depart = last_inside if t - ts[k - 1] > max_gap_s else t
            if depart - arrive >= min_s:
                found.append((arrive, depart, last_inside))
            arrive = None
    if arrive is not None and last_inside - arrive >= min_s:
        found.append((arrive, None, last_inside))
    return found


@st.composite
def fence_tracks(draw: st.DrawFn) -> tuple[list[float], list[bool]]:
    """Strictly ascending times with steps on both sides of GAP_S; inside flags."""
    steps = draw(
        st.lists(
            st.one_of(
                st.integers(1, 120),
                st.sampled_from([GAP_S, GAP_S + 1]),
                st.integers(1, 3000),
            ),
            max_size=60,
        )
    )
    ts = [T0 + float(s) for s in np.cumsum([0, *steps])]
    inside = draw(st.lists(st.booleans(), min_size=len(ts), max_size=len(ts)))
    return ts, inside


def run(
    ts: Sequence[float], inside: Sequence[bool], min_s: float
) -> list[tuple[float, float | None, float]]:
    return fence_visits(
        np.array(ts, dtype=np.float64),
        np.array(inside, dtype=np.bool_),
        min_s=min_s,
        max_gap_s=GAP_S,
    )


@given(fence_tracks(), st.sampled_from([1.0, 60.0, MIN_S, 600.0]))
def test_visits_hold_the_definition(track: tuple[list[float], list[bool]], min_s: float) -> None:
    ts, inside = track
    found = run(ts, inside, min_s)
    assert found == reference(ts, inside, min_s, GAP_S)
    assert run(ts, inside, min_s) == found  # the same answer twice
    where = {t: k for k, t in enumerate(ts)}
    for n, (arrive, depart, last_inside) in enumerate(found):
        k = where[arrive]
        # Arrival: an inside position whose predecessor is outside or absent.
        assert inside[k]
        assert k == 0 or not inside[k - 1]
        assert inside[where[last_inside]]
        assert arrive <= last_inside
        if depart is None:
            assert n == len(found) - 1
            assert last_inside == ts[-1]
            assert last_inside - arrive >= min_s
            continue
        assert arrive < depart
        assert depart - arrive >= min_s
        j = where[depart]
        # Departure: the first outside position, or the last inside one before a gap.
        if inside[j]:
            assert depart == last_inside
            assert ts[j + 1] - ts[j] > GAP_S
            assert not inside[j + 1]
        else:
            assert ts[j] - ts[j - 1] <= GAP_S
            assert last_inside == ts[j - 1]
        assert all(inside[where[arrive] : where[last_inside] + 1])
        if n + 1 < len(found):
            assert depart < found[n + 1][0]  # never overlapping


@given(fence_tracks(), st.sampled_from([1.0, MIN_S]), st.data())
def test_a_track_split_at_an_outside_position_gives_the_whole_tracks_visits(
    track: tuple[list[float], list[bool]], min_s: float, data: st.DataObject
) -> None:
    ts, inside = track
    outside = [k for k, flag in enumerate(inside) if not flag]
    if not outside:
        return
    k = data.draw(st.sampled_from(outside))
    whole = run(ts, inside, min_s)
    # The outside position in both halves, or only in the first.
    for second in (k, k + 1):
        halves = run(ts[: k + 1], inside[: k + 1], min_s) + run(ts[second:], inside[second:], min_s)
        assert halves == whole


@st.composite
def place_tracks(draw: st.DrawFn) -> tuple[list[float], list[str]]:
    steps = draw(st.lists(st.sampled_from([30, 60, 120, GAP_S + 1]), max_size=40))
    ts = [T0 + float(s) for s in np.cumsum([0, *steps])]
    names = draw(st.lists(st.sampled_from(sorted(PLACES)), min_size=len(ts), max_size=len(ts)))
    return ts, names


def visits_of(ts: Sequence[float], names: Sequence[str]) -> list[Visit]:
    t, lats, lons = track([s - T0 for s in ts], [PLACES[n] for n in names])
    return track_visits(t, lats, lons, INDEX, min_s=MIN_S, max_gap_s=GAP_S)


@given(place_tracks(), st.data())
def test_track_visits_split_at_a_position_outside_every_fence_give_the_whole(
    track: tuple[list[float], list[str]], data: st.DataObject
) -> None:
    ts, names = track
    whole = visits_of(ts, names)
    assert visits_of(ts, names) == whole
    assert whole == sorted(whole, key=lambda v: (v.arrive_s, v.fence))
    for fence in ("A", "B"):
        mine = [v for v in whole if v.fence == fence]
        assert all(a.depart_s is not None and a.depart_s < b.arrive_s for a, b in pairwise(mine))
    far = [k for k, n in enumerate(names) if n == "far"]
    if not far:
        return
    k = data.draw(st.sampled_from(far))
    halves = visits_of(ts[: k + 1], names[: k + 1]) + visits_of(ts[k:], names[k:])
    # The first half's visits all arrive before the second's: concatenated, not re-sorted.
    assert halves == whole
