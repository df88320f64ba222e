"""Events in the database: load positions, detect, store idempotently; offline.

The orchestration over `etrack.events.detect` (pure) and `etrack.store.events`
(SQL), in the manner of `etrack.trips.compute`:

- `compute_events` works in batches of plates (and of at most
  `MAX_CHUNK_DAYS` days), so a fleet of 10,000 vehicles or a year of history
  stays in bounded memory. Per batch: one query loads the valid positions of
  the batch's plates over the days widened by ETRAC_TRIP_MAX_GAP_S on both
  sides (a run crossing midnight is one event, whichever day is computed),
  every detector runs per vehicle in time order and the events starting in
  the days are kept. Then one transaction locks the plates, reads their
  stored events, reads where each new event began (place, driver; a stored
  event keeps its own), and makes the stored events of those plates, kinds
  and days exactly these (upsert by id, unchanged rows not sent nor written,
  the rest deleted). Given a Target, a second connection reads the next
  batch's positions meanwhile.
- A run still going at the end of the loaded window (ignition on all night)
  is followed into the next day, up to `MAX_EXTEND_DAYS`: its end does not
  depend on the range computed.
- `detect_offline` opens and closes the offline events from each vehicle's
  latest position (one row per vehicle; no scan of positions).

An event's id is uuid5 of "placa|kind|start_ts" (UTC ISO 8601) under a fixed
namespace: the same event gets the same id whenever it is computed.
"""

from __future__ import annotations

import gc
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from etrack.events.detect import DETECTORS, Event, Track, detect
from etrack.events.params import EventParams, Thresholds
from etrack.geofences.shapes import FenceIndex
from etrack.model import canonical_plate
from etrack.store import db
from etrack.store import events as store
from etrack.store.events import FENCE_RULE
from etrack.store.geofences import list_fences, load_tracks
from etrack.store.routes import plates_with_positions

__all__ = [
    "EVENT_NAMESPACE",
    "EventsSummary",
    "OfflineCounts",
    "compute_events",
    "day_window",
    "detect_offline",
    "event_id",
]

logger = logging.getLogger("etrack.events")

Floats = npt.NDArray[np.float64]
_NONE: Floats = np.empty(0, dtype=np.float64)
_NO_PLACES = (_NONE, _NONE, _NONE)

EVENT_NAMESPACE = uuid.UUID("5d0f3c8e-6f0c-5d7e-9a3b-e7ac0e4e5e11")
"""Fixed forever: changing it would give every stored event a second copy."""

MAX_CHUNK_DAYS = 31
"""Days computed at once per plate: a year of history is twelve passes, not one."""
MAX_EXTEND_DAYS = 7
"""How far past the range a run still going is followed for its end."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_id(placa: str, kind: str, start_ts: datetime) -> uuid.UUID:
    """The stable id of the event of `placa` and `kind` starting at `start_ts`."""
    return uuid.uuid5(EVENT_NAMESPACE, f"{placa}|{kind}|{start_ts.astimezone(UTC).isoformat()}")


def _moment(seconds: float) -> datetime:
    # Whole microseconds, as PostgreSQL stores them: a float's last bit never
    # changes an id.
    return _EPOCH + timedelta(microseconds=round(seconds * 1_000_000))


def day_window(first_day: date, last_day: date, params: EventParams) -> tuple[datetime, datetime]:
    """[start, end) of the local days first_day..last_day in the account's zone."""
    tz = params.base.tz
    lo = datetime.combine(first_day, datetime.min.time(), tz)
    hi = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tz)
    return lo.astimezone(UTC), hi.astimezone(UTC)


@dataclass(slots=True)
class EventsSummary:
    """What a run did; `line()` is the command's one-line summary."""

    plates: int = 0
    positions: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(self.by_kind.values())

    @property
    def unchanged(self) -> int:
        return self.events - self.inserted - self.updated

    def line(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in self.by_kind.items() if n) or "none"
        return (
            f"events: {self.plates} plates, {self.positions} positions; {self.events} events "
            f"({kinds}): {self.inserted} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deleted} deleted in {self.seconds:.1f} s"
        )


def compute_events(
    target_or_conn: db.Target | db.Conn,
    plates: Sequence[str] | None,
    first_day: date,
    last_day: date,
    params: EventParams | None = None,
    *,
    batch_plate_days: int = 300,
    progress: Callable[[EventsSummary], None] | None = None,
) -> EventsSummary:
    """Compute and store the events of `plates` (None: every plate with
    positions in the range) starting on the local days first_day..last_day.

    Idempotent: a second run over unchanged positions writes nothing; after
    new positions an event is updated in place (same id), never duplicated.
    Offline events are left alone (see `detect_offline`). Plates are
    canonicalized (canonical_plate raises InvalidPlate on a bad one).
    """
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    params = params or EventParams()
    wanted = None if plates is None else sorted({canonical_plate(p) for p in plates})
    summary = EventsSummary(by_kind=dict.fromkeys(DETECTORS, 0))
    started = time.perf_counter()
    if isinstance(target_or_conn, db.Target):
        with db.connection(target_or_conn, autocommit=True) as conn:
            zones = speed_zones(conn)
            batches = _batches(conn, wanted, first_day, last_day, params, batch_plate_days)
            # Loaded ahead on a connection of its own: PostgreSQL reads the
            # next batch while this thread detects and stores the current one.
            loaded = db.read_ahead(
                target_or_conn,
                lambda reader: (_load(reader, batch, params, zones) for batch in batches),
                name="etrack-events-reader",
            )
            try:
                _run(conn, loaded, params, zones, summary, progress, started)
            finally:
                loaded.close()
    else:
        conn = target_or_conn
        zones = speed_zones(conn)
        batches = _batches(conn, wanted, first_day, last_day, params, batch_plate_days)
        loaded_here = (_load(conn, b, params, zones) for b in batches)
        _run(conn, loaded_here, params, zones, summary, progress, started)
    summary.seconds = time.perf_counter() - started
    logger.info("%s", summary.line())
    return summary


class _Batch(NamedTuple):
    plates: list[str]
    lo: datetime
    hi: datetime


class _Loaded(NamedTuple):
    batch: _Batch
    columns: dict[str, store.EventColumns]
    fleets: dict[str, str | None]
    places: dict[str, Places]
    """The positions' places, only when some fence has a speed limit."""


def _batches(
    conn: db.Conn,
    plates: list[str] | None,
    first_day: date,
    last_day: date,
    params: EventParams,
    batch_plate_days: int,
) -> list[_Batch]:
    """(plates, window) batches of about `batch_plate_days` plate-days."""
    batches: list[_Batch] = []
    for chunk_first, chunk_last in _day_chunks(first_day, last_day):
        lo, hi = day_window(chunk_first, chunk_last, params)
        chunk_plates = plates if plates is not None else plates_with_positions(conn, lo, hi)
        days = (chunk_last - chunk_first).days + 1
        step = max(1, batch_plate_days // days)
        for p in range(0, len(chunk_plates), step):
            batches.append(_Batch(chunk_plates[p : p + step], lo, hi))
    return batches


def _load(conn: db.Conn, batch: _Batch, params: EventParams, zones: FenceIndex | None) -> _Loaded:
    gap = timedelta(seconds=params.base.max_gap_s)
    lo, hi = batch.lo - gap, batch.hi + gap
    columns = store.load_event_positions(conn, batch.plates, lo, hi)
    places = _places(conn, batch.plates, lo, hi) if zones is not None else {}
    return _Loaded(batch, columns, store.plate_fleets(conn, batch.plates), places)


Places = tuple[Floats, Floats, Floats]
"""A plate's positions' (time, latitude, longitude), the rows of its EventColumns."""


def _places(conn: db.Conn, plates: Sequence[str], lo: datetime, hi: datetime) -> dict[str, Places]:
    # The visits' read: the very rows load_event_positions reads (valid, with a
    # place, in time order), as arrays; read only when a fence has a limit,
    # so the events of a fleet without one cost what they did.
    return load_tracks(conn, plates, lo, hi)


def speed_zones(conn: db.Conn) -> FenceIndex | None:
    """The stored fences with a speed limit, for the overspeed events; None without any."""
    limited = [row.fence for row in list_fences(conn) if row.fence.speed_limit_kmh is not None]
    return FenceIndex(limited, check=False) if limited else None


def _run(
    conn: db.Conn,
    loaded: Iterable[_Loaded],
    params: EventParams,
    zones: FenceIndex | None,
    summary: EventsSummary,
    progress: Callable[[EventsSummary], None] | None,
    started: float,
) -> None:
    seen: set[str] = set()
    for item in loaded:
        seen.update(item.batch.plates)
        _batch(conn, item, params, zones, summary)
        summary.plates = len(seen)
        if progress is not None:
            summary.seconds = time.perf_counter() - started
            progress(summary)


def _day_chunks(first_day: date, last_day: date) -> Iterator[tuple[date, date]]:
    day = first_day
    while day <= last_day:
        end = min(last_day, day + timedelta(days=MAX_CHUNK_DAYS - 1))
        yield day, end
        day = end + timedelta(days=1)


def _batch(
    conn: db.Conn,
    loaded: _Loaded,
    params: EventParams,
    zones: FenceIndex | None,
    summary: EventsSummary,
) -> None:
    plates, lo, hi = loaded.batch
    gap = timedelta(seconds=params.base.max_gap_s)
    columns, fleets, places = loaded.columns, loaded.fleets, loaded.places
    found: list[tuple[str, str, Event]] = []
    lo_s, hi_s = lo.timestamp(), hi.timestamp()
    # The detectors allocate arrays per vehicle and keep none: the cyclic
    # collector has nothing to find and would only rescan the batch's lists.
    enabled = gc.isenabled()
    gc.disable()
    try:
        for placa in plates:
            cols = columns.pop(placa, None)
            if cols is None:
                continue
            thresholds, rule = params.for_vehicle(placa, fleets.get(placa))
            summary.positions += len(cols[0])
            plate_zones = (zones, places.get(placa, _NO_PLACES)) if zones is not None else None
            found_events = _detect_plate(
                conn, placa, cols, thresholds, plate_zones, lo - gap, hi + gap
            )
            for event in found_events:
                if lo_s <= event.start_ts < hi_s:
                    # A run under a fence's limit names the fence: alert rules by fence see it.
                    decided = (
                        rule
                        if event.zone < 0 or zones is None
                        else FENCE_RULE + zones.shapes[event.zone].fence.name
                    )
                    found.append((placa, decided, event))
    finally:
        if enabled:
            gc.enable()
    kinds = list(DETECTORS)
    with conn.transaction():
        # Locked before reading what is stored: two runs over a plate take turns.
        store.lock_plates(conn, plates)
        stored = store.stored_events(conn, plates, kinds, lo, hi)
        rows = _rows(conn, found, stored)
        counts = store.write_events(conn, rows, stored)
    for _, _, e in found:
        summary.by_kind[e.kind] = summary.by_kind.get(e.kind, 0) + 1
    summary.inserted += counts.inserted
    summary.updated += counts.updated
    summary.deleted += counts.deleted


def _rows(
    conn: db.Conn, found: list[tuple[str, str, Event]], stored: list[store.EventRow]
) -> list[store.EventRow]:
    """The events as rows: id and start details reused from the stored event
    of the same key when it has them (a position's fields are only ever
    filled, never changed), read for the others."""
    known = {(r.placa, r.kind, r.start_ts): r for r in stored}
    starts = [(placa, _moment(e.start_ts)) for placa, _, e in found]
    previous = [
        known.get((placa, e.kind, start))
        for (placa, _, e), (_, start) in zip(found, starts, strict=True)
    ]
    unplaced = [
        k
        for k, prev in zip(starts, previous, strict=True)
        if prev is None or prev.latitude is None or prev.logradouro is None
    ]
    driverless = [
        k
        for k, prev in zip(starts, previous, strict=True)
        if prev is not None
        and prev.latitude is not None
        and prev.logradouro is not None
        and prev.driver is None
    ]
    details = store.start_details(conn, unplaced)
    drivers = store.start_drivers(conn, driverless)
    rows: list[store.EventRow] = []
    for (placa, rule, e), key, prev in zip(found, starts, previous, strict=True):
        where = details.get(key)
        if where is None and prev is not None:
            where = store.StartDetails(
                prev.latitude, prev.longitude, prev.logradouro, prev.driver or drivers.get(key)
            )
        where = where or _NOWHERE
        rows.append(
            store.EventRow(
                # The id is a function of the key: the stored one is the same.
                id=prev.id if prev is not None else event_id(placa, e.kind, key[1]),
                placa=placa,
                kind=e.kind,
                start_ts=key[1],
                end_ts=_moment(e.end_ts),
                duration_s=e.duration_s,
                value=e.value,
                limit_value=e.limit_value,
                latitude=where.latitude,
                longitude=where.longitude,
                logradouro=where.logradouro,
                driver=where.driver,
                rule=rule,
            )
        )
    return rows


_NOWHERE = store.StartDetails(None, None, None, None)


def _without_minimums(thresholds: Thresholds) -> Thresholds:
    return replace(thresholds, overspeed_min_s=0.0, idle_min_s=0.0, low_battery_min_s=0.0)


def _detect_plate(
    conn: db.Conn,
    placa: str,
    cols: store.EventColumns,
    thresholds: Thresholds,
    zones: tuple[FenceIndex, Places] | None,
    lo: datetime,
    hi: datetime,
) -> list[Event]:
    """The events of one plate's track, following a run still going at the
    window's end into the following days (at most MAX_EXTEND_DAYS)."""
    gap_s = thresholds.max_gap_s
    for _ in range(MAX_EXTEND_DAYS):
        track = _track(cols, zones)
        events = detect(track, thresholds)
        # A continuation can only exist if the last point is within a gap of
        # the window's end (the next position would be at or after it).
        if track.ts[-1] < hi.timestamp() - gap_s:
            return events
        # A run still shorter than its minimum at the window's end may reach
        # it after: look for runs reaching the end before the minimums apply.
        probe = detect(track, _without_minimums(thresholds))
        if not any(e.reaches_end for e in probe):
            return events
        more = store.load_event_positions(conn, [placa], hi, hi + timedelta(days=1))
        if placa not in more:
            return events
        cols = _joined(cols, more[placa])
        if zones is not None:
            later = _places(conn, [placa], hi, hi + timedelta(days=1)).get(placa, _NO_PLACES)
            (ts, lats, lons), (ts2, lats2, lons2) = zones[1], later
            zones = (
                zones[0],
                (
                    np.concatenate([ts, ts2]),
                    np.concatenate([lats, lats2]),
                    np.concatenate([lons, lons2]),
                ),
            )
        hi = hi + timedelta(days=1)
    return detect(_track(cols, zones), thresholds)


def _track(cols: store.EventColumns, zones: tuple[FenceIndex, Places] | None) -> Track:
    """The detectors' track, with the fences' speed zones when there are any."""
    track = Track.from_columns(*cols)
    if zones is None or len(track) == 0:
        return track
    index, (ts, lats, lons) = zones
    if np.array_equal(ts, track.ts):
        return track.with_zones(*index.speed_zones(lats, lons))
    # Not quite the same rows (a position stored between the two reads): each
    # position of the track takes the place of its own time; one without is
    # in no zone.
    where = np.searchsorted(ts, track.ts).clip(0, max(len(ts) - 1, 0))
    known = np.zeros(len(track), dtype=np.bool_)
    if len(ts):
        known = ts[where] == track.ts
    zone = np.full(len(track), -1, dtype=np.intp)
    limit = np.full(len(track), np.nan, dtype=np.float64)
    zone[known], limit[known] = index.speed_zones(lats[where[known]], lons[where[known]])
    return track.with_zones(zone, limit)


def _joined(a: store.EventColumns, b: store.EventColumns) -> store.EventColumns:
    return (
        [*a[0], *b[0]],
        [*a[1], *b[1]],
        [*a[2], *b[2]],
        [*a[3], *b[3]],
        [*a[4], *b[4]],
    )


# ------------------------------------------------------------------ offline
class OfflineCounts(NamedTuple):
    opened: int
    closed: int
    open_now: int

    def line(self) -> str:
        return f"offline: {self.opened} opened, {self.closed} closed, {self.open_now} open now"


def detect_offline(
    target_or_conn: db.Target | db.Conn, now: datetime, params: EventParams | None = None
) -> OfflineCounts:
    """Open an offline event (end_ts NULL, start_ts = the last transmission)
    for every vehicle silent longer than ETRACK_OFFLINE_AFTER at `now`, and
    close the open one of every vehicle that reported again (end_ts = its
    first position after the silence). Idempotent: run again, nothing changes.

    Reads `latest_positions` (one row per vehicle): call it after each fetch
    of latest positions.
    """
    params = params or EventParams()
    if isinstance(target_or_conn, db.Target):
        with db.connection(target_or_conn, autocommit=True) as conn:
            return _offline(conn, now, params)
    return _offline(target_or_conn, now, params)


def _offline(conn: db.Conn, now: datetime, params: EventParams) -> OfflineCounts:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    with conn.transaction():
        closed = store.close_offline(conn)
        cutoff = now - timedelta(seconds=params.offline_after_s)
        rows = [
            store.EventRow(
                id=event_id(c.placa, "offline", c.data_transmissao),
                placa=c.placa,
                kind="offline",
                start_ts=c.data_transmissao,
                end_ts=None,
                duration_s=None,
                value=None,
                limit_value=params.offline_after_s / 60.0,
                latitude=c.latitude,
                longitude=c.longitude,
                logradouro=c.logradouro,
                driver=None,
                rule="settings",
            )
            for c in store.offline_candidates(conn, cutoff)
        ]
        opened = store.open_offline(conn, rows)
        open_now = store.open_count(conn)
    return OfflineCounts(opened, closed, open_now)
