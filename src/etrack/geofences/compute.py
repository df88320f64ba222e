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
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

import numpy as np
import numpy.typing as npt

from etrack.config import Settings
from etrack.geofences.shapes import FenceIndex
from etrack.geofences.visits import ENTER, EXIT, Visit, track_visits
from etrack.model import canonical_plate
from etrack.store import db
from etrack.store import events as event_store
from etrack.store import geofences as store
from etrack.store.geofences import VisitRow

__all__ = [
    "VISIT_NAMESPACE",
    "VisitParams",
    "VisitsSummary",
    "compute_visits",
    "fence_event_id",
    "visit_id",
]

logger = logging.getLogger("etrack.geofences")

Floats = npt.NDArray[np.float64]
Arrays = tuple[Floats, Floats, Floats]

VISIT_NAMESPACE = uuid.UUID("8b6f2d4a-3c1e-5b9f-8a7d-2e4c6b8a0f13")
"""Fixed forever: changing it would give every stored visit a second copy."""
PLATES_PER_BATCH = 200
FOLLOW_STEP = timedelta(days=7)
MARGIN = timedelta(days=1)
FENCE_KINDS = (ENTER, EXIT)


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
            f"{self.deleted} deleted; {self.events} enter/exit events in {self.seconds:.1f} s"
        )


def visit_id(placa: str, fence: str, arrive: datetime) -> uuid.UUID:
    return uuid.uuid5(VISIT_NAMESPACE, f"{placa}|{fence}|{arrive.astimezone(UTC).isoformat()}")


def fence_event_id(placa: str, kind: str, fence: str, at: datetime) -> uuid.UUID:
    """Two fences entered at one position are two events: the fence is in the id."""
    return uuid.uuid5(VISIT_NAMESPACE, f"{placa}|{kind}|{fence}|{at.astimezone(UTC).isoformat()}")


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def day_bounds(first_day: date, last_day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    lo = datetime.combine(first_day, datetime.min.time(), tz)
    hi = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tz)
    return lo, hi


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
        index = FenceIndex(fences)
        wanted = (
            sorted({canonical_plate(p) for p in plates})
            if plates is not None
            else store.plates_in_range(conn, lo, hi)
        )
        for batch in _chunks(wanted, PLATES_PER_BATCH):
            _batch(conn, batch, lo, hi, index, params, summary)
    summary.seconds = time.perf_counter() - started
    logger.info("%s", summary.line())
    return summary


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _batch(
    conn: db.Conn,
    plates: list[str],
    lo: datetime,
    hi: datetime,
    index: FenceIndex,
    params: VisitParams,
    summary: VisitsSummary,
) -> None:
    begun = store.begun_before(conn, plates, lo)
    starts = {p: min(lo, begun.get(p, lo)) - MARGIN for p in plates}
    end = hi + MARGIN
    tracks = {
        placa: _arrays(track)
        for placa, track in store.load_tracks(
            conn, plates, min(starts.values(), default=lo), end
        ).items()
    }
    # Only a track beginning or ending inside a fence may need more days.
    edges = [
        placa
        for placa, (_, lats, lons) in tracks.items()
        if len(lats) and (index.holds(lats[0], lons[0]) or index.holds(lats[-1], lons[-1]))
    ]
    spans = store.position_spans(conn, edges) if edges else {}
    # One transaction for the batch, the plates locked: what is stored is
    # read once (its ids serve the unchanged visits and events, no uuid5 per
    # row), compared, and only the differences written.
    with conn.transaction():
        event_store.lock_plates(conn, plates)
        visits_before = store.stored_visits(conn, starts, hi)
        events_before = event_store.stored_events_from(conn, starts, FENCE_KINDS, hi)
        ids: Ids = {(v.placa, v.fence, v.arrive_ts): v.id for v in visits_before}
        ids.update({(e.placa, e.kind, e.rule, e.start_ts): e.id for e in events_before})
        los: dict[str, datetime] = {}
        visit_rows: list[VisitRow] = []
        event_rows: list[event_store.EventRow] = []
        for placa in plates:
            summary.plates += 1
            start = starts[placa]
            ts, lats, lons = tracks.get(placa) or _arrays(None)
            keep = ts >= start.timestamp()
            ts, lats, lons = ts[keep], lats[keep], lons[keep]
            if placa in spans:
                ts, lats, lons = _followed(
                    conn, placa, (ts, lats, lons), start, end, spans[placa], index
                )
            summary.positions += len(ts)
            found = track_visits(
                ts, lats, lons, index, min_s=params.min_s, max_gap_s=params.max_gap_s
            )
            # The visits still going at lo keep their real arrival: the kept
            # part of the window starts at the earliest of them.
            # A stored visit begun before lo and open then is replaced too,
            # even when it now ended before lo (the positions that closed it
            # arrived since).
            going = [v for v in found if v.arrive_s < lo.timestamp() and _still_at(v, lo)]
            los[placa] = keep_lo = min(
                [lo, begun.get(placa, lo), *(_moment(v.arrive_s) for v in going)]
            )
            kept = [v for v in found if keep_lo.timestamp() <= v.arrive_s < hi.timestamp()]
            visit_rows.extend(_row(placa, v, ids) for v in kept)
            # Events from every visit found: an exit inside the kept range may
            # belong to a visit that arrived before it.
            event_rows.extend(_events(placa, found, keep_lo, hi, ids))
        # What the replacement covers: each plate from its own kept lo; a
        # plate followed back past its read start is read again from there.
        earlier = {p: at for p, at in los.items() if at < starts[p]}
        if earlier:
            visits_before += store.stored_visits(conn, earlier, hi)
            events_before += event_store.stored_events_from(conn, earlier, FENCE_KINDS, hi)
        visits_before = list(
            {v.id: v for v in visits_before if v.arrive_ts >= los[v.placa]}.values()
        )
        events_before = list(
            {e.id: e for e in events_before if e.start_ts >= los[e.placa]}.values()
        )
        written, unchanged, deleted = store.write_visits(conn, visit_rows, visits_before)
        event_store.write_events(conn, event_rows, events_before)
    summary.visits += len(visit_rows)
    summary.written += written
    summary.unchanged += unchanged
    summary.deleted += deleted
    summary.events += len(event_rows)


def _still_at(visit: Visit, moment: datetime) -> bool:
    return visit.depart_s is None or visit.depart_s >= moment.timestamp()


def _arrays(track: store.Track | None) -> Arrays:
    if track is None:
        empty = np.empty(0, dtype=np.float64)
        return empty, empty, empty
    return (
        np.asarray(track[0], dtype=np.float64),
        np.asarray(track[1], dtype=np.float64),
        np.asarray(track[2], dtype=np.float64),
    )


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
        earlier = _arrays(store.load_tracks(conn, [placa], start - step, start).get(placa))
        start -= step
        step *= 2
        ts, lats, lons = (
            np.concatenate([a, b]) for a, b in zip(earlier, (ts, lats, lons), strict=True)
        )
    step = FOLLOW_STEP
    while end <= last and index.holds(lats[-1], lons[-1]):
        later = _arrays(store.load_tracks(conn, [placa], end, end + step).get(placa))
        end += step
        step *= 2
        ts, lats, lons = (
            np.concatenate([a, b]) for a, b in zip((ts, lats, lons), later, strict=True)
        )
    return ts, lats, lons


Ids = dict[tuple[object, ...], uuid.UUID]
"""Stored rows' ids by their natural key: the id is a function of the key,
so a row already stored need not hash it again."""


def _row(placa: str, visit: Visit, ids: Ids) -> VisitRow:
    arrive = _moment(visit.arrive_s)
    known = ids.get((placa, visit.fence, arrive))
    return VisitRow(
        id=known if known is not None else visit_id(placa, visit.fence, arrive),
        placa=placa,
        fence=visit.fence,
        arrive_ts=arrive,
        depart_ts=None if visit.depart_s is None else _moment(visit.depart_s),
        dwell_s=visit.dwell_s,
    )


def _events(
    placa: str, visits: Sequence[Visit], lo: datetime, hi: datetime, ids: Ids
) -> list[event_store.EventRow]:
    """An enter event at each arrival and an exit at each departure inside
    [lo, hi) (a departure after hi is stored with the range holding it)."""
    rows: list[event_store.EventRow] = []
    for visit in visits:
        points: list[tuple[str, float, float | None]] = [(ENTER, visit.arrive_s, None)]
        if visit.depart_s is not None:
            points.append((EXIT, visit.depart_s, visit.dwell_s / 60.0))
        for kind, at_s, value in points:
            at = _moment(at_s)
            if not lo <= at < hi:
                continue
            rule = f"{event_store.FENCE_RULE}{visit.fence}"
            known = ids.get((placa, kind, rule, at))
            rows.append(
                event_store.EventRow(
                    id=known if known is not None else fence_event_id(placa, kind, visit.fence, at),
                    placa=placa,
                    kind=kind,
                    start_ts=at,
                    end_ts=at,
                    duration_s=0.0 if kind == ENTER else visit.dwell_s,
                    value=value,
                    limit_value=None,
                    latitude=None,
                    longitude=None,
                    logradouro=None,
                    driver=None,
                    rule=rule,
                )
            )
    return rows
