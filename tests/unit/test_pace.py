"""The pace controller (etrack.pace): a pure function, so every rule is
checked on made-up answers, and the bounds on any sequence of them."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from etrack.pace import (
    PROBE_GROWTH,
    SLOW_START_GROWTH,
    Answer,
    PaceBounds,
    PaceState,
    initial_state,
    observe,
    throughput_bound,
)

BOUNDS = PaceBounds(start=5.0, floor=0.5, ceiling=20.0)


def successes(state: PaceState, start: float, count: int, gap: float) -> PaceState:
    for index in range(count):
        state = observe(state, Answer(at=start + index * gap, latency_s=0.3), BOUNDS)
    return state


def test_a_new_account_starts_at_the_configured_rate_in_slow_start() -> None:
    state = initial_state(BOUNDS, None, now=100.0)
    assert state.rate == 5.0
    assert state.learning


def test_slow_start_grows_by_its_factor_per_second_of_rate_bound_traffic() -> None:
    state = initial_state(BOUNDS, None, now=0.0)
    state = successes(state, 0.1, 10, 0.1)  # one second of answers
    assert state.rate == pytest.approx(5.0 * SLOW_START_GROWTH**1.0, rel=0.01)
    state = successes(state, 1.1, 20, 0.1)
    assert state.rate == BOUNDS.ceiling  # never above the maximum


def test_answers_that_did_not_queue_prove_nothing_and_leave_the_pace() -> None:
    state = initial_state(BOUNDS, None, now=0.0)
    for index in range(30):
        state = observe(
            state, Answer(at=0.1 * (index + 1), latency_s=0.3, rate_bound=False), BOUNDS
        )
    assert state.rate == 5.0


def test_a_429_drops_the_pace_to_what_the_api_let_through() -> None:
    state = initial_state(BOUNDS, None, now=0.0)
    # 3 admitted per second for 4 s, while the pace had grown to 20/s.
    for index in range(12):
        state = observe(state, Answer(at=index / 3, latency_s=0.3), BOUNDS)
    assert state.rate == 20.0
    throttled = observe(
        state, Answer(at=4.0, latency_s=0.3, throttled=True, retry_after_s=1), BOUNDS
    )
    assert not throttled.learning
    assert throttled.throttled_at_rate == 20.0
    measured = throughput_bound(state.recent_ok, 4.0)
    assert measured is not None
    assert throttled.rate == pytest.approx(0.95 * measured)
    assert 2.0 <= throttled.rate <= 3.5
    assert throttled.throttled == 1


def test_429s_in_flight_when_the_first_came_change_nothing_more() -> None:
    state = successes(initial_state(BOUNDS, None, now=0.0), 0.1, 10, 0.1)
    first = observe(state, Answer(at=1.1, latency_s=0.3, throttled=True, retry_after_s=2), BOUNDS)
    again = observe(first, Answer(at=1.3, latency_s=0.3, throttled=True, retry_after_s=2), BOUNDS)
    assert again.rate == first.rate
    assert again.throttled == 2  # still counted
    later = observe(again, Answer(at=3.2, latency_s=0.3, throttled=True, retry_after_s=1), BOUNDS)
    assert later.rate < first.rate  # after the pause: a new event


def test_a_429_never_leaves_the_pace_above_nine_tenths_of_what_drew_it() -> None:
    state = PaceState(rate=10.0, segment_start=0.0)
    # Nothing measured (the first request was throttled): the cap alone.
    throttled = observe(state, Answer(at=1.0, latency_s=0.3, throttled=True), BOUNDS)
    assert throttled.rate == pytest.approx(9.0)


def test_after_a_429_the_pace_probes_up_slowly() -> None:
    state = PaceState(rate=10.0, throttled_at_rate=11.0, segment_start=0.0, grown_at=0.0)
    state = successes(state, 0.1, 10, 0.1)
    assert state.rate == pytest.approx(10.0 * (1 + PROBE_GROWTH) ** 1, rel=0.001)


def test_climbing_latency_backs_off_once_per_hold() -> None:
    state = successes(PaceState(rate=10.0, throttled_at_rate=12.0, grown_at=0.0), 0.1, 10, 0.1)
    rate = state.rate
    for index in range(40):
        state = observe(state, Answer(at=1.1 + index * 0.05, latency_s=2.5), BOUNDS)
    # 1.95 s of slow answers: one back-off of a fifth, then no growth.
    assert state.rate == pytest.approx(rate * 0.8, rel=0.01)
    assert state.decreased_at is not None
    state = observe(state, Answer(at=state.decreased_at + 2.0, latency_s=2.5), BOUNDS)
    assert state.rate == pytest.approx(rate * 0.8**2, rel=0.01)  # the hold is over: again
    assert state.throttled_at_rate == 12.0  # a latency back-off is not a 429
    assert state.eased_at_rate is not None
    assert state.latency_s is not None
    assert state.latency_s > 1.0


def test_one_slow_answer_is_not_a_climb() -> None:
    state = successes(initial_state(BOUNDS, None, now=0.0), 0.1, 10, 0.1)
    slow = observe(state, Answer(at=1.1, latency_s=3.0), BOUNDS)
    assert slow.decreased_at is None
    assert slow.learning  # still in slow start
    assert slow.rate >= state.rate


def test_the_next_run_forgets_the_last_runs_latency() -> None:
    learned = PaceState(
        rate=10.0,
        throttled_at_rate=11.0,
        recent_latency=(0.3,) * 8,
        latency_s=0.3,
        baseline_s=0.3,
        decreased_at=50.0,
    )
    state = initial_state(BOUNDS, learned, now=1000.0)
    assert (state.recent_latency, state.latency_s, state.baseline_s) == ((), None, None)
    assert state.decreased_at is None
    # At a latency 0.6 s higher than last time, the pace does not back off.
    for index in range(30):
        state = observe(state, Answer(at=1000.0 + index * 0.1, latency_s=0.9), BOUNDS)
    assert state.rate >= 10.0


def test_a_steady_latency_never_backs_off() -> None:
    state = successes(initial_state(BOUNDS, None, now=0.0), 0.05, 200, 0.05)
    assert state.rate == BOUNDS.ceiling


def test_a_fixed_pace_stays_and_still_counts() -> None:
    fixed = PaceBounds(start=5.0, floor=0.5, ceiling=20.0, adapt=False)
    state = initial_state(fixed, PaceState(rate=13.0, throttled_at_rate=14.0), now=0.0)
    assert state.rate == 5.0
    state = observe(state, Answer(at=1.0, latency_s=0.3, throttled=True), fixed)
    state = observe(state, Answer(at=2.0, latency_s=0.3), fixed)
    assert state.rate == 5.0
    assert (state.requests, state.throttled) == (2, 1)


def test_the_next_run_starts_at_the_learned_pace_within_the_current_bounds() -> None:
    learned = PaceState(rate=13.0, throttled_at_rate=14.0, recent_ok=(1.0, 2.0), grown_at=5.0)
    state = initial_state(BOUNDS, learned, now=1000.0)
    assert state.rate == 13.0
    assert not state.learning
    assert state.recent_ok == ()
    assert state.grown_at == 1000.0
    assert state.segment_start == 1000.0
    lower = PaceBounds(start=5.0, floor=0.5, ceiling=10.0)
    assert initial_state(lower, learned, now=1000.0).rate == 10.0


def test_bounds_refuse_a_floor_above_the_maximum() -> None:
    with pytest.raises(ValueError, match="floor <= maximum"):
        PaceBounds(start=5.0, floor=30.0, ceiling=20.0)


def test_throughput_bound_is_the_best_window() -> None:
    # 10 successes in the last second after a quiet 5 s: 10 / (1 + 1).
    times = (0.0, *(5.0 + k / 10 for k in range(10)))
    bound = throughput_bound(times, 6.0)
    assert bound == pytest.approx(10 / 2.0)
    assert throughput_bound((), 1.0) is None


answers = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=3.0),  # gap since the previous answer
        st.floats(min_value=0.0, max_value=5.0),  # latency
        st.booleans(),  # throttled
        st.one_of(st.none(), st.integers(min_value=1, max_value=5).map(float)),
        st.booleans(),  # rate-bound
    ),
    max_size=80,
)


@given(
    answers,
    st.floats(min_value=0.1, max_value=50.0),
    st.floats(min_value=0.01, max_value=5.0),
    st.floats(min_value=0.0, max_value=100.0),
)
def test_the_pace_stays_within_its_bounds_whatever_the_answers(
    sequence: list[tuple[float, float, bool, float | None, bool]],
    start: float,
    floor: float,
    extra: float,
) -> None:
    floor = min(floor, start)
    bounds = PaceBounds(start=start, floor=floor, ceiling=start + extra)
    state = initial_state(bounds, None, now=0.0)
    moment = 0.0
    for gap, latency, throttled, retry_after, rate_bound in sequence:
        moment += gap
        state = observe(
            state,
            Answer(
                at=moment,
                latency_s=latency,
                throttled=throttled,
                retry_after_s=retry_after,
                rate_bound=rate_bound,
            ),
            bounds,
        )
        assert bounds.floor <= state.rate <= bounds.ceiling
        assert math.isfinite(state.rate)
        assert len(state.recent_ok) <= 128
    assert state.requests == len(sequence)
    assert state.throttled == sum(1 for item in sequence if item[2])
