"""Finding an account's real API rate: the pace controller.

eTrac does not publish its rate limit, and accounts differ. The seed's advice
is to start slow and speed up carefully while the API stays stable; this
module is that advice as a pure function, :func:`observe`: the pace state and
one answer in, the next pace state out. No clock, no I/O: the limiter
(etrack.provider.ratelimit) keeps the state in the database, shared by every
process of the account, and calls this under the row's lock.

The rules, TCP-like, tuned against a token-bucket API (what eTrac and the
simulator do: `burst` requests at once, then `rate` per second):

- *Slow start*: until the first 429 the pace grows fast (x4 per second of
  rate-bound traffic), so an account allowing 20/s reaches it in about a
  second from the default 5/s.
- *On a 429* the pace drops to 95 % of the rate the API really let through:
  the largest lower bound ``successes(a..t) / (t - a + 1 s)`` over the
  successes of the current segment (a token bucket with a burst of one
  second of its rate admits at most ``rate x (window + 1 s)``), and never
  above 90 % of the pace that drew the 429. The answers already in flight
  when it came belong to the same event: 429s until the provider's
  Retry-After has passed change nothing more.
- *Afterwards* the pace probes upward slowly (+0.5 % per second of
  rate-bound traffic), so an account whose limit is raised is found again,
  at a cost of about one 429 per half-minute near the limit.
- *Latency climbing* (the median of the last 8 answers twice the best level
  seen in this run and 0.5 s above it) means the server is saturating before
  it says 429: the pace drops by a fifth, at most once per 2 s, and stops
  growing fast. One slow answer (a big day's history) is not a climb.
- Never above the configured maximum, never below the floor; the pace only
  grows while requests queue for it (a light load proves nothing about the
  limit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import median

__all__ = [
    "Answer",
    "PaceBounds",
    "PaceState",
    "initial_state",
    "observe",
    "throughput_bound",
]

SLOW_START_GROWTH = 4.0
"""Pace multiplier per second of rate-bound traffic before the first 429."""
PROBE_GROWTH = 0.005
"""Fractional pace increase per second of rate-bound traffic after it."""
THROTTLE_SHARE = 0.95
"""Of the measured admitted rate, what the pace drops to on a 429."""
THROTTLE_CAP = 0.9
"""The pace after a 429 is at most this share of the pace that drew it."""
BURST_S = 1.0
"""The burst assumed of the provider's bucket, in seconds of its rate."""
LATENCY_FACTOR = 2.0
LATENCY_MARGIN_S = 0.5
LATENCY_BACKOFF = 0.8
LATENCY_HOLD_S = 2.0
LATENCY_WINDOW = 8
LATENCY_MIN_SAMPLES = 4
BASELINE_RISE = 0.01
"""Per second, how much the best latency seen may drift up (the route to the
API can change; a baseline fixed forever would read that as saturation)."""
MAX_STEP_S = 1.0
RECENT = 128
"""Successes kept to measure the admitted rate on a 429."""


@dataclass(frozen=True)
class PaceBounds:
    """The settings: ETRAC_RATE_LIMIT (start), ETRAC_RATE_MIN, ETRAC_RATE_MAX,
    ETRAC_RATE_ADAPT."""

    start: float
    floor: float
    ceiling: float
    adapt: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.ceiling:
            raise ValueError(
                f"rate bounds: expected 0 < floor <= maximum, got {self.floor} and {self.ceiling}"
            )
        if not self.start > 0:
            raise ValueError(f"rate bounds: expected a positive start rate, got {self.start}")

    def clamp(self, rate: float) -> float:
        return min(self.ceiling, max(self.floor, rate))


@dataclass(frozen=True)
class PaceState:
    """One account's pace, as its `rate_limits` row keeps it. Times are
    seconds on the database's clock (epoch), so every machine agrees."""

    rate: float
    throttled_at_rate: float | None = None
    """The pace when the last 429 came; None while still in slow start."""
    segment_start: float = 0.0
    """Successes count from here; 429s before it belong to the last event."""
    recent_ok: tuple[float, ...] = ()
    """Arrival times of the last successes of the segment (at most RECENT)."""
    grown_at: float | None = None
    """When the pace last grew (growth is per second of rate-bound traffic)."""
    decreased_at: float | None = None
    eased_at_rate: float | None = None
    """The pace when latency last made it back off (no 429 needed for that)."""
    recent_latency: tuple[float, ...] = ()
    """The last answers' latencies (at most LATENCY_WINDOW): their median is
    the level compared with the baseline, so one slow answer changes nothing."""
    latency_s: float | None = None
    """The latency level now: the median of recent_latency."""
    baseline_s: float | None = None
    """The lowest level seen in this run (rising slowly, see BASELINE_RISE)."""
    requests: int = 0
    throttled: int = 0

    @property
    def learning(self) -> bool:
        """True in slow start: neither a 429 nor a saturating latency yet."""
        return self.throttled_at_rate is None and self.eased_at_rate is None


@dataclass(frozen=True)
class Answer:
    """What one request taught: when it was answered, how long it took, and
    whether it was throttled."""

    at: float
    latency_s: float
    throttled: bool = False
    retry_after_s: float | None = None
    rate_bound: bool = True
    """Whether the request queued for its slot: only then does the pace limit
    the work, and only then may a success make it grow."""


def initial_state(bounds: PaceBounds, learned: PaceState | None, now: float) -> PaceState:
    """Where a run starts: the learned pace if there is one (clamped to the
    current bounds), else the configured start rate. With ETRAC_RATE_ADAPT=0
    the configured rate, whatever was learned."""
    if learned is None:
        return PaceState(rate=bounds.clamp(bounds.start), segment_start=now, grown_at=now)
    rate = bounds.clamp(learned.rate if bounds.adapt else bounds.start)
    # What was measured in an earlier run says nothing about this one's
    # timing: the route to the API, and its load, may have changed since.
    return replace(
        learned,
        rate=rate,
        segment_start=now,
        recent_ok=(),
        grown_at=now,
        decreased_at=None,
        recent_latency=(),
        latency_s=None,
        baseline_s=None,
    )


def throughput_bound(times: tuple[float, ...], now: float) -> float | None:
    """The largest lower bound on the provider's rate that these success times
    prove, were the bucket to have run dry at *now*:
    max over a of count(times >= a) / (now - a + BURST_S)."""
    best: float | None = None
    count = len(times)
    for index, moment in enumerate(times):
        bound = (count - index) / (max(0.0, now - moment) + BURST_S)
        if best is None or bound > best:
            best = bound
    return best


def observe(state: PaceState, answer: Answer, bounds: PaceBounds) -> PaceState:
    """The pace after one more answer."""
    state = replace(
        state,
        requests=state.requests + 1,
        throttled=state.throttled + (1 if answer.throttled else 0),
    )
    if not bounds.adapt:
        return replace(state, rate=bounds.clamp(bounds.start))
    if answer.throttled:
        return _on_throttle(state, answer, bounds)
    return _on_success(state, answer, bounds)


def _on_throttle(state: PaceState, answer: Answer, bounds: PaceBounds) -> PaceState:
    if answer.at < state.segment_start:
        return state  # in flight when the event began: nothing new
    measured = throughput_bound(state.recent_ok, answer.at)
    target = THROTTLE_CAP * state.rate
    if measured is not None:
        target = min(target, THROTTLE_SHARE * measured)
    pause = answer.retry_after_s if answer.retry_after_s and answer.retry_after_s > 0 else 1.0
    resume = answer.at + pause
    return replace(
        state,
        rate=bounds.clamp(target),
        throttled_at_rate=state.rate,
        segment_start=resume,
        recent_ok=(),
        grown_at=resume,
        decreased_at=answer.at,
    )


def _on_success(state: PaceState, answer: Answer, bounds: PaceBounds) -> PaceState:
    state = _with_latency(state, answer)
    if answer.at >= state.segment_start:
        state = replace(state, recent_ok=(*state.recent_ok, answer.at)[-RECENT:])
    if _saturating(state):
        if state.decreased_at is not None and answer.at - state.decreased_at < LATENCY_HOLD_S:
            return replace(state, grown_at=answer.at)  # no growth while saturating
        return replace(
            state,
            rate=bounds.clamp(state.rate * LATENCY_BACKOFF),
            eased_at_rate=state.rate,
            decreased_at=answer.at,
            grown_at=answer.at,
        )
    if state.grown_at is None or answer.at <= state.grown_at:
        return replace(state, grown_at=state.grown_at if state.grown_at is not None else answer.at)
    # Capped: after a quiet spell one answer must not count as a second of growth.
    elapsed = min(MAX_STEP_S, answer.at - state.grown_at)
    if not answer.rate_bound:
        return replace(state, grown_at=answer.at)
    factor = SLOW_START_GROWTH**elapsed if state.learning else 1.0 + PROBE_GROWTH * elapsed
    return replace(state, rate=bounds.clamp(state.rate * factor), grown_at=answer.at)


def _with_latency(state: PaceState, answer: Answer) -> PaceState:
    recent = (*state.recent_latency, max(0.0, answer.latency_s))[-LATENCY_WINDOW:]
    if len(recent) < LATENCY_MIN_SAMPLES:
        return replace(state, recent_latency=recent, latency_s=recent[-1])
    level = median(recent)
    baseline = level
    if state.baseline_s is not None:
        elapsed = max(0.0, answer.at - (state.grown_at or answer.at))
        baseline = min(state.baseline_s * (1 + BASELINE_RISE * elapsed), level)
    return replace(state, recent_latency=recent, latency_s=level, baseline_s=baseline)


def _saturating(state: PaceState) -> bool:
    if len(state.recent_latency) < LATENCY_MIN_SAMPLES:
        return False
    if state.latency_s is None or state.baseline_s is None:
        return False
    return (
        state.latency_s >= LATENCY_FACTOR * state.baseline_s
        and state.latency_s - state.baseline_s >= LATENCY_MARGIN_S
    )
