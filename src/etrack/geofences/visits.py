"""Visits: one vehicle's valid positions in time order and a fence -> the
times it spent inside.

Pure: no database, no clock, no calendar. Times are POSIX seconds and
nothing here knows days: a visit over midnight is one visit.

The definition (etrack issue 17), for one vehicle and one fence:

- a visit starts at the first position inside the fence that follows one
  outside it (or the first position of the track); `arrive_s` is that
  position's time;
- it ends at the first position outside after it: `depart_s` is that
  position's time;
- it stays open (`depart_s` None) while the track ends inside;
- a segment between two outside positions that crosses the fence is a
  passage, never a visit: it has no position inside;
- a gap longer than `max_gap_s` between two consecutive positions, the first
  inside: if the position after the gap is inside too, the visit goes on; if
  it is outside, the visit ends at the last inside position before the gap
  (`depart_s` is that position's time: nobody knows when it left);
- a closed visit with `depart_s - arrive_s < min_s` is a passage (dropped);
  an open visit is kept only once `last_inside_s - arrive_s >= min_s` (it
  would otherwise flicker in and out between fetches);
- exactly at `min_s` is kept (>=).

Times are positions' times, never interpolated crossings: an interpolated
crossing assumes a straight line at constant speed between two fixes, which
sparse data (60 s at 80 km/h is 1.3 km) does not support, and the same rule
must hold for arrival and departure; a position's time is one every reader
can check against the stored track.

The rules only look at a position's neighbours, so a track split at a
position outside every fence gives, half by half, the whole track's visits:
what lets new positions be applied from the last outside position on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from etrack.geofences.shapes import FenceIndex
from etrack.model import FENCE_ENTER, FENCE_EXIT

__all__ = [
    "ENTER",
    "EXIT",
    "Visit",
    "enter_exit",
    "fence_visits",
    "track_visits",
]

Floats = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

ENTER = FENCE_ENTER
EXIT = FENCE_EXIT


class Visit(NamedTuple):
    """One visit of one vehicle to one fence; times are POSIX seconds."""

    fence: str
    """The fence's name."""
    arrive_s: float
    depart_s: float | None
    """None: still inside where the track ends (open)."""
    last_inside_s: float
    """The last position inside (for open visits: how long seen so far)."""

    @property
    def dwell_s(self) -> float:
        """Time inside: to the departure, or (open) to the last position seen inside."""
        end = self.last_inside_s if self.depart_s is None else self.depart_s
        return end - self.arrive_s


def fence_visits(
    ts: Floats, inside: Bool, *, min_s: float, max_gap_s: float
) -> list[tuple[float, float | None, float]]:
    """One vehicle, one fence: `ts` ascending, `inside[i]` whether position i
    is inside -> (arrive_s, depart_s or None while open, last_inside_s) per
    visit, in time order, by the module's rules."""
    ts = np.asarray(ts, dtype=np.float64)
    inside = np.asarray(inside, dtype=np.bool_)
    if ts.shape != inside.shape or ts.ndim != 1:
        raise ValueError(f"ts {ts.shape} and inside {inside.shape}: expected two equal 1-D arrays")
    n = len(ts)
    if n > 1 and bool((np.diff(ts) < 0).any()):
        # Runs of a shuffled track are not the vehicle's visits: refuse
        # rather than answer wrongly.
        raise ValueError("ts must be in ascending time order")
    if n == 0 or not inside.any():
        return []
    # Gaps between two inside positions do not split a run, so a visit is
    # exactly a maximal run of consecutive inside positions.
    edges = np.diff(np.concatenate(([0], inside.astype(np.int8), [0])))
    first = np.flatnonzero(edges == 1)
    after = np.flatnonzero(edges == -1)  # the first position outside, or n
    last = after - 1
    is_open = after == n
    arrive = ts[first]
    last_inside = ts[last]
    following = ts[np.minimum(after, n - 1)]
    # The first outside position closes the visit unless the fix before it
    # is more than max_gap_s earlier: then it left at some unknown moment.
    depart = np.where(following - last_inside > max_gap_s, last_inside, following)
    dwell = np.where(is_open, last_inside, depart) - arrive
    keep = np.flatnonzero(dwell >= min_s)
    return [
        (
            float(arrive[k]),
            None if is_open[k] else float(depart[k]),
            float(last_inside[k]),
        )
        for k in keep.tolist()
    ]


def track_visits(
    ts: Floats,
    lats: Floats,
    lons: Floats,
    index: FenceIndex,
    *,
    min_s: float,
    max_gap_s: float,
) -> list[Visit]:
    """One vehicle's positions against every fence of `index` -> its visits,
    sorted by (arrive_s, fence)."""
    ts = np.asarray(ts, dtype=np.float64)
    lats = np.asarray(lats, dtype=np.float64)
    lons = np.asarray(lons, dtype=np.float64)
    if not ts.shape == lats.shape == lons.shape:
        raise ValueError(
            f"ts {ts.shape}, lats {lats.shape}, lons {lons.shape}: expected equal 1-D arrays"
        )
    n = len(ts)
    if n > 1 and bool((np.diff(ts) < 0).any()):
        raise ValueError("ts must be in ascending time order")
    found = index.inside(lats, lons)
    if not found:
        return []
    # Every fence at once, from the hits alone (a few per fence, against a
    # track of thousands): the same rules as fence_visits, whose runs of
    # consecutive inside positions are runs of consecutive hit indexes here.
    fence_ids = np.repeat(
        np.fromiter(found.keys(), dtype=np.intp, count=len(found)),
        [len(hits) for hits in found.values()],
    )
    idx = np.concatenate(list(found.values()))
    starts_run = np.r_[True, (fence_ids[1:] != fence_ids[:-1]) | (idx[1:] != idx[:-1] + 1)]
    starts = np.flatnonzero(starts_run)
    ends = np.r_[starts[1:], len(idx)] - 1
    first, last = idx[starts], idx[ends]
    after = last + 1
    is_open = after == n
    arrive = ts[first]
    last_inside = ts[last]
    following = ts[np.minimum(after, n - 1)]
    depart = np.where(following - last_inside > max_gap_s, last_inside, following)
    dwell = np.where(is_open, last_inside, depart) - arrive
    names = [index.shapes[int(f)].fence.name for f in fence_ids[starts]]
    visits = [
        Visit(
            names[k],
            float(arrive[k]),
            None if is_open[k] else float(depart[k]),
            float(last_inside[k]),
        )
        for k in np.flatnonzero(dwell >= min_s).tolist()
    ]
    # A key, not the tuples: two visits equal on both would go on to compare
    # depart_s, and None does not compare with a float.
    visits.sort(key=lambda v: (v.arrive_s, v.fence))
    return visits


def enter_exit(visits: Iterable[Visit]) -> list[tuple[str, str, float]]:
    """(kind, fence, at_s): ENTER at each arrival, EXIT at each departure
    (closed visits only), sorted by time. At the same moment exits come
    first: a position that leaves one fence for the next one is read in the
    order it happened."""
    events: list[tuple[str, str, float]] = []
    for visit in visits:
        events.append((ENTER, visit.fence, visit.arrive_s))
        if visit.depart_s is not None:
            events.append((EXIT, visit.fence, visit.depart_s))
    events.sort(key=lambda e: (e[2], e[0] != EXIT, e[1]))
    return events
