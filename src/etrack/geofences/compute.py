"""Visits over the stored history: fences x valid positions -> geofence_visits,
and the geofence_enter / geofence_exit events of those visits.

Idempotent for any range, like the routes and the events: a second run over
unchanged positions and fences writes nothing; new positions extend or close
a visit in place (its id is stable: vehicle, fence and arrival), a visit no
longer found is deleted. Every stored fence is applied at once (one
STRtree), so a vehicle-day is read once whatever the number of fences.

A range [lo, hi) is computed per vehicle over a window reaching back to the
arrival of a stored visit still going at lo, and a day further (a visit
begun before lo that no run stored yet is found with its real arrival);
while the window's first position is inside a fence it reaches back further,
and while its last is inside with more data after, further forward
(in doubling steps, up to the vehicle's first and last position). The visits arriving in the window's
kept part are replaced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from etrack.config import Settings
from etrack.dates import days_span as day_bounds
from etrack.geofences.shapes import FenceIndex
from etrack.geofences.visits import Visit, track_visits
from etrack.model import canonical_plate
from etrack.store import db
from etrack.store import events as event_store
from etrack.store import geofences as store
from etrack.store.geofences import FoundVisit

__all__ = [
    "VisitParams",
    "VisitsSummary",
    "compute_visits",
]

logger = logging.getLogger("etrack.geofences")

Floats = npt.NDArray[np.float64]
Arrays = tuple[Floats, Floats, Floats]

PLATES_PER_BATCH = 50
FOLLOW_STEP = timedelta(days=7)
MARGIN = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class VisitParams:
    min_s: float = 120.0
    max_gap_s: float = 3600.0
    tz: tzinfo = UTC

    @classmethod
    def from_settings(cls, settings: Settings) -> VisitParams:
        return cls(
            min_s=settings.etrack_visit_min_s,
            max_gap_s=settings.etrac_trip_max_gap_s,
            tz=settings.tz,
        )


@dataclass(slots=True)
class VisitsSummary:
    plates: int = 0
    fences: int = 0
    positions: int = 0
    visits: int = 0
    written: int = 0
    unchanged: int = 0
    deleted: int = 0
    events: int = 0
    seconds: float = 0.0

    def add(self, other: VisitsSummary) -> None:
        """Fold in the summary of another range (the months of one command)."""
        self.plates = max(self.plates, other.plates)
        self.fences = max(self.fences, other.fences)
        self.positions += other.positions
        self.visits += other.visits
        self.written += other.written
        self.unchanged += other.unchanged
        self.deleted += other.deleted
        self.events += other.events
        self.seconds += other.seconds

    def line(self) -> str:
        return (
            f"visits: {self.plates} plates x {self.fences} fences, {self.positions} positions; "
            f"{self.visits} visits: {self.written} written, {self.unchanged} unchanged, "
            f"{self.deleted} deleted; {self.events} enter/exit events written "
            f"in {self.seconds:.1f} s"
        )


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def compute_visits(
    target: db.Target,
    plates: Sequence[str] | None,
    first_day: date,
    last_day: date,
    params: VisitParams | None = None,
) -> VisitsSummary:
    """Compute and store the visits (and enter/exit events) of `plates`
    (None: every plate with positions in the range) arriving on the local
    days first_day..last_day, or still going on first_day, against every
    stored fence."""
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    params = params or VisitParams()
    started = time.perf_counter()
    summary = VisitsSummary()
    lo, hi = day_bounds(first_day, last_day, params.tz)
    with db.connection(target, autocommit=True) as conn:
        fences = [row.fence for row in store.list_fences(conn)]
        summary.fences = len(fences)
        if not fences:
            # No fence, no visit (deleting a fence deletes its visits): the
            # daily run and the latest fetch of a fleet without fences read nothing.
            summary.seconds = time.perf_counter() - started
            return summary
        index = FenceIndex(fences, check=False)
        wanted = (
            sorted({canonical_plate(p) for p in plates})
            if plates is not None
            else store.plates_in_range(conn, lo, hi)
        )
        # A pipeline of three connections: PostgreSQL reads the next batch's
        # positions and stores the previous batch's visits while this thread
        # finds the current one's.
        loaded = db.read_ahead(
            target,
            lambda reader: (
                _read(reader, batch, lo, hi) for batch in _chunks(wanted, PLATES_PER_BATCH)
            ),
            name="etrack-visits-reader",
        )
        try:
            writer: db.WriteBehind[_Found] = db.WriteBehind(
                target,
                lambda writer, found: _write(writer, found, hi, summary),
                name="etrack-visits-writer",
            )
            with writer:
                for batch in loaded:
                    writer.put(_find(conn, batch, lo, hi, index, params, summary))
        finally:
            loaded.close()
    summary.seconds = time.perf_counter() - started
    logger.info("%s", summary.line())
    return summary


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


@dataclass(frozen=True, slots=True)
class _Read:
    plates: list[str]
    begun: dict[str, datetime]
    """The arrival of each plate's earliest stored visit still going at lo."""
    tracks: dict[str, Arrays]


def _read(conn: db.Conn, plates: list[str], lo: datetime, hi: datetime) -> _Read:
    begun = store.begun_before(conn, plates, lo)
    start = min([lo, *begun.values()]) - MARGIN
    return _Read(plates, begun, store.load_tracks(conn, plates, start, hi + MARGIN))


@dataclass(frozen=True, slots=True)
class _Found:
    plates: list[str]
    los: dict[str, datetime]
    """Where each plate's kept visits begin: the stored ones from there are replaced."""
    visits: list[FoundVisit]


def _find(
    conn: db.Conn,
    read: _Read,
    lo: datetime,
    hi: datetime,
    index: FenceIndex,
    params: VisitParams,
    summary: VisitsSummary,
) -> _Found:
    """The visits of a batch of plates (nothing written)."""
    plates, begun, tracks = read.plates, read.begun, read.tracks
    starts = {p: min(lo, begun.get(p, lo)) - MARGIN for p in plates}
    end = hi + MARGIN
    # Only a track beginning or ending inside a fence may need more days.
    edges = [
        placa
        for placa, (_, lats, lons) in tracks.items()
        if len(lats) and (index.holds(lats[0], lons[0]) or index.holds(lats[-1], lons[-1]))
    ]
    spans = store.position_spans(conn, edges) if edges else {}
    los: dict[str, datetime] = {}
    visits: list[FoundVisit] = []
    for placa in plates:
        summary.plates += 1
        start = starts[placa]
        ts, lats, lons = tracks.get(placa) or _EMPTY
        keep = ts >= start.timestamp()
        ts, lats, lons = ts[keep], lats[keep], lons[keep]
        if placa in spans:
            ts, lats, lons = _followed(
                conn, placa, (ts, lats, lons), start, end, spans[placa], index
            )
        summary.positions += len(ts)
        found = track_visits(ts, lats, lons, index, min_s=params.min_s, max_gap_s=params.max_gap_s)
        # The visits still going at lo keep their real arrival: the kept part
        # of the window starts at the earliest of them. A stored visit begun
        # before lo and open then is replaced too, even when it now ended
        # before lo (the positions that closed it arrived since).
        going = [v for v in found if v.arrive_s < lo.timestamp() and _still_at(v, lo)]
        los[placa] = keep_lo = min(
            [lo, begun.get(placa, lo), *(_moment(v.arrive_s) for v in going)]
        )
        kept = [v for v in found if keep_lo.timestamp() <= v.arrive_s < hi.timestamp()]
        visits.extend(_row(placa, v) for v in kept)
    summary.visits += len(visits)
    return _Found(plates, los, visits)


def _write(conn: db.Conn, found: _Found, hi: datetime, summary: VisitsSummary) -> None:
    """Store a batch's visits: one transaction, the plates locked, the stored
    visits read once, compared, and only the differences written, with their
    events. (On the writer's thread: it alone counts what was written.)"""
    with conn.transaction():
        event_store.lock_plates(conn, found.plates)
        # Replaced: each plate's stored visits from its own kept lo.
        stored = store.stored_visits(conn, found.los, hi)
        changes = store.write_visits(conn, found.visits, stored)
    summary.written += changes.written
    summary.unchanged += changes.unchanged
    summary.deleted += changes.deleted
    summary.events += changes.events


def _still_at(visit: Visit, moment: datetime) -> bool:
    return visit.depart_s is None or visit.depart_s >= moment.timestamp()


_NONE: Floats = np.empty(0, dtype=np.float64)
_EMPTY: Arrays = (_NONE, _NONE, _NONE)


def _followed(
    conn: db.Conn,
    placa: str,
    track: Arrays,
    start: datetime,
    end: datetime,
    span: tuple[datetime, datetime],
    index: FenceIndex,
) -> Arrays:
    """The track grown (doubling steps) while it begins or ends inside a
    fence with more positions beyond (`span`: the plate's first and last
    valid position): a visit is never cut by the window."""
    ts, lats, lons = track
    if len(ts) == 0:
        return ts, lats, lons
    first, last = span
    # Doubling steps, up to the plate's first and last position: a stay of
    # months is followed to its real arrival in a few reads.
    step = FOLLOW_STEP
    while start > first and index.holds(lats[0], lons[0]):
        earlier = store.load_tracks(conn, [placa], start - step, start).get(placa, _EMPTY)
        start -= step
        step *= 2
        ts, lats, lons = (
            np.concatenate([a, b]) for a, b in zip(earlier, (ts, lats, lons), strict=True)
        )
    step = FOLLOW_STEP
    while end <= last and index.holds(lats[-1], lons[-1]):
        later = store.load_tracks(conn, [placa], end, end + step).get(placa, _EMPTY)
        end += step
        step *= 2
        ts, lats, lons = (
            np.concatenate([a, b]) for a, b in zip((ts, lats, lons), later, strict=True)
        )
    return ts, lats, lons


def _row(placa: str, visit: Visit) -> FoundVisit:
    return FoundVisit(
        placa=placa,
        fence=visit.fence,
        arrive_ts=_moment(visit.arrive_s),
        depart_ts=None if visit.depart_s is None else _moment(visit.depart_s),
        dwell_s=visit.dwell_s,
    )
