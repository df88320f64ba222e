"""Event detection: one vehicle's valid positions in time order -> events.

Pure: no database, no clock. One detector per kind, all registered in
`DETECTORS` (kind -> function from a `Track` and the vehicle's `Thresholds`
to `Event`s); a new kind (geofence enter/exit, maintenance) is one function
and one line there. Offline is not here: it is detected from each vehicle's
latest position, not from a track (`etrack.events.compute.detect_offline`).

The run rules every kind shares (Traccar's overspeed with minimalDuration):

- A run is a maximal sequence of consecutive positions meeting the kind's
  condition; a gap between two positions longer than `max_gap_s` ends the
  run at the position before the gap (nobody knows what happened in it).
- `start_ts` is the run's first position. `end_ts` is the first position
  after the run (the first one no longer meeting the condition) when it
  follows within `max_gap_s`; otherwise (a gap, or the track's last point)
  the run's own last position.
- `duration_s` is end_ts - start_ts; kinds with a minimum keep a run whose
  duration is at least that minimum.

Kinds (docs/events.md says the same for users):

- overspeed: `velocidade` strictly above `speed_limit_kmh` (exactly at the
  limit is not over it); value = the run's top speed; kept from
  `overspeed_min_s`. Inside a fence with a speed limit (the Track's `zone`)
  that limit replaces the vehicle's (the lowest, where fences overlap), and
  passing from one zone to another ends a run: each event has one limit,
  and says which fence set it (`Event.zone`).
- idle: ignition on and `velocidade` strictly below `moving_speed_kmh`;
  value = minutes; kept from `idle_min_s`.
- after_hours: ignition on outside the weekly working hours (local time of
  `tz`; a holiday has none); value = minutes; every run is an event.
- low_battery: `bateria` below `low_battery_v`; a reading of exactly 0 or 1
  is the GlobalStar on/off indicator, not volts: those positions (and those
  without a reading) are left out of this kind's track; value = the lowest
  volts; kept from `low_battery_min_s`.
- late_data: received (`data_gravacao`) more than `late_data_after_s` after
  it was recorded; value = the largest delay in minutes; every run is an event.

Positions with an unknown value (speed, ignition) never meet a condition
that needs it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from etrack.events.params import Thresholds

__all__ = [
    "DETECTORS",
    "KINDS",
    "Detector",
    "Event",
    "Track",
    "after_hours",
    "detect",
    "idle",
    "late_data",
    "low_battery",
    "overspeed",
]

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.intp]

_EPOCH_THURSDAY = 3
"""1970-01-01, local day 0, was a Thursday (Monday = 0)."""
_OFFSET_STEP_S = 900
"""Time zone offsets change on quarter hours (every zone in use): one lookup each."""


class Event(NamedTuple):
    """One detected event; times are POSIX seconds."""

    kind: str
    start_ts: float
    end_ts: float
    value: float | None
    limit_value: float | None
    reaches_end: bool
    """The run lasts to the track's last position: more data may extend it."""
    zone: int = -1
    """The Track's zone (a fence with a speed limit) whose limit the run broke; -1: none."""

    @property
    def duration_s(self) -> float:
        return self.end_ts - self.start_ts


class Track(NamedTuple):
    """One vehicle's valid positions in time order, as arrays (NaN: unknown).

    `ignition` is 1.0 (on), 0.0 (off) or NaN; `delay` is data_gravacao -
    data_transmissao in seconds.
    """

    ts: Floats
    speed: Floats
    ignition: Floats
    battery: Floats
    delay: Floats
    zone: Ints | None = None
    """Per position, the fence whose speed limit applies there (-1: none);
    None: no fence has a limit."""
    zone_limit: Floats | None = None
    """Per position, that fence's limit in km/h (ignored where zone is -1)."""

    def with_zones(self, zone: Ints, zone_limit: Floats) -> Track:
        # Not _replace: it checks len(), which is the positions' count here.
        return Track(self.ts, self.speed, self.ignition, self.battery, self.delay, zone, zone_limit)

    @classmethod
    def from_columns(
        cls,
        ts: Sequence[float],
        speeds: Sequence[float | None],
        ignitions: Sequence[bool | None],
        batteries: Sequence[float | None],
        delays: Sequence[float | None],
    ) -> Track:
        """From columns as storage reads them (None: unknown)."""
        # dtype=float turns None into NaN (and True/False into 1.0/0.0) in one pass.
        track = cls(
            np.asarray(ts, dtype=np.float64),
            np.array(speeds, dtype=np.float64),
            np.array(ignitions, dtype=np.float64),
            np.array(batteries, dtype=np.float64),
            np.array(delays, dtype=np.float64),
        )
        if len(track.ts) > 1 and bool((np.diff(track.ts) < 0).any()):
            # Storage sends them in time order; a caller that did not still
            # gets the runs of the vehicle's actual sequence.
            order = np.argsort(track.ts, kind="stable")
            track = cls(
                track.ts[order],
                track.speed[order],
                track.ignition[order],
                track.battery[order],
                track.delay[order],
            )
        return track

    def __len__(self) -> int:
        return len(self.ts)


Detector = Callable[[Track, Thresholds], list[Event]]


class _Runs(NamedTuple):
    first: Ints
    last: Ints
    start_ts: Floats
    end_ts: Floats
    reaches_end: Mask


def _runs(ts: Floats, cond: Mask, max_gap_s: float, zone: Ints | None = None) -> _Runs:
    """The runs of `cond` along `ts` by the module's rules; a change of
    `zone` between two positions ends a run as the condition's end does."""
    n = len(ts)
    if n == 0 or not cond.any():
        empty = np.empty(0, dtype=np.intp)
        none = np.empty(0, dtype=np.float64)
        return _Runs(empty, empty, none, none, np.empty(0, dtype=np.bool_))
    # gap_before[k]: a gap (or nothing) between positions k-1 and k.
    gap_before = np.empty(n, dtype=np.bool_)
    gap_before[0] = True
    np.greater(np.diff(ts), max_gap_s, out=gap_before[1:])
    prev_cond = np.empty(n, dtype=np.bool_)
    prev_cond[0] = False
    prev_cond[1:] = cond[:-1]
    next_cond = np.empty(n, dtype=np.bool_)
    next_cond[-1] = False
    next_cond[:-1] = cond[1:]
    gap_after = np.empty(n, dtype=np.bool_)
    gap_after[-1] = True
    gap_after[:-1] = gap_before[1:]
    if zone is not None:
        moved = np.empty(n, dtype=np.bool_)
        moved[0] = False
        np.not_equal(zone[1:], zone[:-1], out=moved[1:])
        prev_cond &= ~moved
        next_cond[:-1] &= ~moved[1:]
    first = np.flatnonzero(cond & (gap_before | ~prev_cond))
    last = np.flatnonzero(cond & (gap_after | ~next_cond))
    # The first position after the run ends it, unless a gap (or nothing) follows.
    following = np.minimum(last + 1, n - 1)
    end_ts = np.where(gap_after[last], ts[last], ts[following])
    return _Runs(first, last, ts[first], end_ts, last == n - 1)


def _segment(ufunc: np.ufunc, values: Floats, runs: _Runs) -> Floats:
    """ufunc.reduce of `values` over each run's positions, first to last."""
    padded = np.append(values, 0.0)
    bounds = np.empty(2 * len(runs.first), dtype=np.intp)
    bounds[0::2] = runs.first
    bounds[1::2] = runs.last + 1
    reduced: Floats = ufunc.reduceat(padded, bounds)[0::2]
    return reduced


def _events(
    kind: str,
    runs: _Runs,
    values: Floats | None,
    limit_value: float | None,
    min_duration_s: float = 0.0,
    zones: tuple[Ints, Floats] | None = None,
) -> list[Event]:
    """The runs kept as events; `zones`: each run's zone and the limit it
    broke there (instead of `limit_value` for a run with a zone)."""
    keep = runs.end_ts - runs.start_ts >= min_duration_s
    limit = None if limit_value is None else float(limit_value)
    picked = np.flatnonzero(keep)
    out: list[Event] = []
    for k in picked.tolist():
        value = None if values is None else float(values[k])
        if value is not None and math.isnan(value):
            value = None
        zone = -1 if zones is None else int(zones[0][k])
        out.append(
            Event(
                kind,
                float(runs.start_ts[k]),
                float(runs.end_ts[k]),
                value,
                limit if zone < 0 or zones is None else float(zones[1][k]),
                bool(runs.reaches_end[k]),
                zone,
            )
        )
    return out


# ---------------------------------------------------------------- detectors
def overspeed(track: Track, t: Thresholds) -> list[Event]:
    """Runs strictly above the speed limit, kept from overspeed_min_s; value = top speed."""
    if track.zone is None or track.zone_limit is None:
        with np.errstate(invalid="ignore"):
            cond = track.speed > t.speed_limit_kmh
        runs = _runs(track.ts, cond, t.max_gap_s)
        top = _segment(np.maximum, track.speed, runs)
        return _events("overspeed", runs, top, t.speed_limit_kmh, t.overspeed_min_s)
    limit = np.where(track.zone >= 0, track.zone_limit, t.speed_limit_kmh)
    with np.errstate(invalid="ignore"):
        cond = track.speed > limit
    runs = _runs(track.ts, cond, t.max_gap_s, track.zone)
    top = _segment(np.maximum, track.speed, runs)
    zones = (track.zone[runs.first], limit[runs.first])
    return _events("overspeed", runs, top, t.speed_limit_kmh, t.overspeed_min_s, zones)


def idle(track: Track, t: Thresholds) -> list[Event]:
    """Ignition on below the moving speed, kept from idle_min_s; value = minutes."""
    with np.errstate(invalid="ignore"):
        cond = (track.ignition == 1.0) & (track.speed < t.moving_speed_kmh)
    runs = _runs(track.ts, cond, t.max_gap_s)
    minutes = (runs.end_ts - runs.start_ts) / 60.0
    return _events("idle", runs, minutes, t.idle_min_s / 60.0, t.idle_min_s)


def after_hours(track: Track, t: Thresholds) -> list[Event]:
    """Ignition on outside the working hours; every run; value = minutes."""
    on = track.ignition == 1.0
    if not on.any():
        return []
    cond = on & ~_working(track.ts, t)
    runs = _runs(track.ts, cond, t.max_gap_s)
    minutes = (runs.end_ts - runs.start_ts) / 60.0
    return _events("after_hours", runs, minutes, None)


def low_battery(track: Track, t: Thresholds) -> list[Event]:
    """Volts below the threshold, kept from low_battery_min_s; value = lowest volts."""
    volts = track.battery
    with np.errstate(invalid="ignore"):
        readings = ~np.isnan(volts) & (volts != 0.0) & (volts != 1.0)
    if not readings.any():
        return []
    ts = track.ts[readings]
    values = volts[readings]
    runs = _runs(ts, values < t.low_battery_v, t.max_gap_s)
    lowest = _segment(np.minimum, values, runs)
    return _events("low_battery", runs, lowest, t.low_battery_v, t.low_battery_min_s)


def late_data(track: Track, t: Thresholds) -> list[Event]:
    """Rows received more than late_data_after_s after recorded; value = max delay, minutes."""
    with np.errstate(invalid="ignore"):
        cond = track.delay > t.late_data_after_s
    runs = _runs(track.ts, cond, t.max_gap_s)
    worst = _segment(np.maximum, track.delay, runs) / 60.0
    return _events("late_data", runs, worst, t.late_data_after_s / 60.0)


DETECTORS: Mapping[str, Detector] = {
    "overspeed": overspeed,
    "idle": idle,
    "after_hours": after_hours,
    "low_battery": low_battery,
    "late_data": late_data,
}
"""Every kind detected over a track, in the order they run."""

KINDS: tuple[str, ...] = (
    *DETECTORS,
    "offline",
    "geofence_enter",
    "geofence_exit",
    "driving_time",
    "rest_time",
    "working_time",
)
"""Every kind an event may have: offline comes from the latest positions, the
geofence kinds from the visits (etrack.geofences.compute), the driving,
rest and working time ones from the drivers' working days (etrack.drivers)."""


def detect(track: Track, thresholds: Thresholds) -> list[Event]:
    """Every registered kind's events of one track, in the registry's order."""
    if len(track) == 0:
        return []
    found: list[Event] = []
    for detector in DETECTORS.values():
        found.extend(detector(track, thresholds))
    return found


# ---------------------------------------------------------- working hours
@lru_cache(maxsize=1 << 16)
def _offset_s(tz: tzinfo, step: int) -> float:
    offset = datetime.fromtimestamp(step * _OFFSET_STEP_S, UTC).astimezone(tz).utcoffset()
    return 0.0 if offset is None else offset.total_seconds()


_STEPS_PER_DAY = 86400 // _OFFSET_STEP_S


def _offsets(ts: Floats, tz: tzinfo) -> Floats:
    """The zone's UTC offset in seconds at each moment. Looked up once per UTC
    day when the offset is the same at both ends of it (almost every day);
    per quarter hour on a day the offset changes (a DST switch)."""
    days = np.floor_divide(ts, 86400.0).astype(np.int64)
    unique, where = np.unique(days, return_inverse=True)
    first = [_offset_s(tz, int(d) * _STEPS_PER_DAY) for d in unique.tolist()]
    last = [_offset_s(tz, (int(d) + 1) * _STEPS_PER_DAY - 1) for d in unique.tolist()]
    offsets = np.array(first, dtype=np.float64)[where]
    for k, (a, b) in enumerate(zip(first, last, strict=True)):
        if a != b:
            on_day = where == k
            steps = np.floor_divide(ts[on_day], _OFFSET_STEP_S).astype(np.int64)
            offsets[on_day] = [_offset_s(tz, int(s)) for s in steps.tolist()]
    return offsets


def _working(ts: Floats, t: Thresholds) -> Mask:
    """Whether each moment falls in the working hours, local time of `t.tz`."""
    local = ts + _offsets(ts, t.tz)
    day = np.floor_divide(local, 86400.0)
    minute = (local - day * 86400.0) / 60.0
    weekday = (day.astype(np.int64) + _EPOCH_THURSDAY) % 7
    inside = np.zeros(len(ts), dtype=np.bool_)
    for wd, spans in enumerate(t.working_hours):
        if not spans:
            continue
        today = weekday == wd
        for start, end in spans:
            inside |= today & (minute >= start) & (minute < end)
    if t.holidays:
        off = np.array([(h.toordinal() - _EPOCH_ORDINAL) for h in t.holidays], dtype=np.float64)
        inside &= ~np.isin(day, off)
    return inside


_EPOCH_ORDINAL = datetime(1970, 1, 1).toordinal()
