"""Quality flags on positions: what must stay out of routes and distances.

A position's own quality (`coordinate_quality`, set by the parser) looks at
one row; the sequence flags (`flag_sequence`) look at an answer's rows
together: a second copy of a key is a `duplicate`, a point no vehicle could
have reached in time is a `jump`. Before those, `flag_sequence` applies the
plausibility flags (`plausible_quality`): a timestamp before any tracker of
the fleet existed is `too_old`, a speed or odometer no vehicle can report is
`bad_speed` / `bad_odometer`, and an odometer that runs backwards along the
vehicle's sequence is `odometer_backwards`. Flagged rows are stored with
their raw values and left out of routes (which read `quality = 'valid'` only).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Final, NamedTuple

from etrack.config import Settings
from etrack.geo import haversine_m, implied_speed_kmh
from etrack.model import (
    BAD_ODOMETER,
    BAD_SPEED,
    DUPLICATE,
    FUTURE,
    JUMP,
    NO_FIX,
    ODOMETER_BACKWARDS,
    OUT_OF_RANGE,
    TOO_OLD,
    VALID,
    Position,
)

__all__ = [
    "DEFAULT_PLAUSIBILITY",
    "Plausibility",
    "coordinate_quality",
    "flag_sequence",
    "plausibility",
    "plausible_quality",
]


def coordinate_quality(lat: float | None, lon: float | None, unreadable: bool) -> str:
    """A position's own quality from its coordinates alone: `out_of_range`, `no_fix` or `valid`."""
    if (
        unreadable
        or (lat is not None and not -90.0 <= lat <= 90.0)
        or (lon is not None and not -180.0 <= lon <= 180.0)
    ):
        return OUT_OF_RANGE
    if lat is None or lon is None or (lat == 0.0 and lon == 0.0):
        return NO_FIX
    return VALID


class Plausibility(NamedTuple):
    """The limits beyond which a reading is nonsense, not a measurement."""

    max_speed_kmh: float
    max_odometer_km: float
    earliest: datetime  # aware (UTC)


def _earliest(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def plausibility(settings: Settings) -> Plausibility:
    """The plausibility limits of `settings` (ETRAC_MAX_SPEED_KMH, ...)."""
    return Plausibility(
        settings.etrac_max_speed_kmh,
        settings.etrac_max_odometer_km,
        _earliest(settings.etrac_earliest_position_date),
    )


_FIELDS: Final = Settings.model_fields

# The settings' defaults, read from Settings so the two cannot drift apart.
DEFAULT_PLAUSIBILITY: Final = Plausibility(
    _FIELDS["etrac_max_speed_kmh"].default,
    _FIELDS["etrac_max_odometer_km"].default,
    _earliest(_FIELDS["etrac_earliest_position_date"].default),
)


def plausible_quality(position: Position, limits: Plausibility = DEFAULT_PLAUSIBILITY) -> str:
    """`position.quality`, or a plausibility flag when it is `valid` but nonsense.

    First match wins: `too_old` (stamped before `limits.earliest`: the key
    itself is wrong, like `future`), `bad_speed` (velocidade below 0 or above
    `limits.max_speed_kmh`), `bad_odometer` (odometro or odometro_can below 0
    or above `limits.max_odometer_km`). A missing value passes; NaN fails
    (the comparisons are written so that it does). Rows already flagged keep
    their flag: they stay out of routes either way.
    """
    if position.quality != VALID:
        return position.quality
    if position.data_transmissao < limits.earliest:
        return TOO_OLD
    speed = position.velocidade
    if speed is not None and not 0.0 <= speed <= limits.max_speed_kmh:
        return BAD_SPEED
    for odometer in (position.odometro, position.odometro_can):
        if odometer is not None and not 0.0 <= odometer <= limits.max_odometer_km:
            return BAD_ODOMETER
    return VALID


# How many candidates back a point may link over: the longest run of
# consecutive outliers that is still recognised as outliers (beyond it the
# best-chain look-up below still reconnects, see flag_sequence).
_JUMP_WINDOW: Final = 8


def flag_sequence(
    positions: Sequence[Position],
    *,
    jump_speed_kmh: float,
    previous: Mapping[str, Position] | None = None,
    min_jump_m: float = 0.0,
    limits: Plausibility = DEFAULT_PLAUSIBILITY,
) -> list[Position]:
    """Flag implausible, `duplicate`, `odometer_backwards` and `jump` points of one
    answer; one output per input, same order.

    Anchor: Traccar's FilterHandler (`filterDuplicate`, `filterMaxSpeed`), which
    compares each fix with the last accepted one. That alone fails on a bad
    *first* point (every later point looks like a jump from it), so jumps are
    judged against both neighbours, as a best-chain search:

    1. Rows are grouped by plate and stably sorted by `data_transmissao`
       (answers arrive out of order).
    2. Duplicates: the first occurrence of a `(placa, data_transmissao)` in
       input order keeps its quality; every later one becomes `duplicate`, with
       `duplicate_differs=True` when its `measurement` differs from the kept
       row's (the ingest stores one row per key and keeps differing copies as
       rejects). So a `duplicate` may hide a per-row flag; no information is
       lost since the kept row carries the key.
       Each kept row then gets its per-row plausibility flag
       (`plausible_quality` with `limits`: `too_old`, `bad_speed`,
       `bad_odometer`).
    2b. Odometer: among the remaining `valid` points that carry an odometer
       (`odometro`, else `odometro_can`: the one routes read), the longest
       chain in time order whose odometer never decreases is kept; the
       others are `odometer_backwards`. Ties keep the earliest points, so a
       lone low reading after a track is the one flagged; a reset followed by
       a longer track keeps the longer track. Computed in O(n log n).
    3. Jump candidates are the remaining `valid` points (never `no_fix`,
       `out_of_range`, `future`, `duplicate` or a plausibility flag); their
       timestamps are strictly increasing, so no implied speed divides by
       zero. Two candidates are *consistent* when the implied speed between
       them (haversine distance, R = 6378137 m, over their time difference)
       is at most `jump_speed_kmh`, or they are at most `min_jump_m` apart.
    4. The longest chain of candidates in which each point is consistent with
       the next one kept is found by dynamic programming: each point links to
       the best-scoring consistent point among the `_JUMP_WINDOW` candidates
       before it and the last `_JUMP_WINDOW` points of the best chain so far
       (so a long burst of bad points does not cut the good track in two).
       When the previous point is consistent and ends the best chain so far,
       it is taken at once: clean data costs one distance per point.
       Candidates off the chain are `jump`.

    Consequences: a single outlier in the middle is dropped and both its
    neighbours kept (they are consistent with each other); an outlier first or
    last is dropped, not its neighbour (the chain without it is longer); a
    10 h gap over 50 km is 5 km/h, consistent. Ties (only two candidates, or
    two equally long tracks) keep the earlier one, like Traccar.

    `previous` maps a plate to its last known valid point from the database.
    It takes part in the chain (counted as a point, never output or flagged):
    a lone fetch-latest row inconsistent with it is a jump. It is ignored
    when not `valid`, or when a row has the same timestamp (that row is the
    stored point itself). A wrong stored point heals itself: the implied
    speed from it falls as time passes, and a track of two or more
    consistent new points outweighs it. When it carries an odometer it
    takes part in the odometer chain the same way (counted, never flagged).

    Idempotent: incoming `duplicate`, `jump` and plausibility flags are
    recomputed (a `future` flag would need `now` and is kept).
    """
    output = list(positions)
    by_plate: dict[str, list[int]] = {}
    for index, position in enumerate(output):
        by_plate.setdefault(position.placa, []).append(index)
    for plate, indexes in by_plate.items():
        indexes.sort(key=lambda index: output[index].data_transmissao)
        candidates: list[int] = []
        kept: Position | None = None
        for index in indexes:
            position = output[index]
            if kept is not None and position.data_transmissao == kept.data_transmissao:
                differs = position.measurement != kept.measurement
                if position.quality != DUPLICATE or position.duplicate_differs != differs:
                    output[index] = position._replace(quality=DUPLICATE, duplicate_differs=differs)
                continue
            base_quality = _base_quality(position, limits)
            if base_quality != position.quality or position.duplicate_differs:
                position = position._replace(quality=base_quality, duplicate_differs=False)
                output[index] = position
            kept = position
            if base_quality == VALID:
                candidates.append(index)
        anchor = previous.get(plate) if previous else None
        backwards = _odometer_backwards(output, candidates, anchor, limits)
        if backwards:
            for index in backwards:
                output[index] = output[index]._replace(quality=ODOMETER_BACKWARDS)
            gone = set(backwards)
            candidates = [index for index in candidates if index not in gone]
        for index in _jumps(output, candidates, anchor, jump_speed_kmh, min_jump_m):
            output[index] = output[index]._replace(quality=JUMP)
    return output


# Flags flag_sequence sets itself, so a second run recomputes them.
_RECOMPUTED: Final = frozenset(
    {DUPLICATE, JUMP, ODOMETER_BACKWARDS, TOO_OLD, BAD_SPEED, BAD_ODOMETER}
)


def _base_quality(position: Position, limits: Plausibility) -> str:
    """The per-row quality, undoing an earlier flag_sequence run."""
    if position.quality in _RECOMPUTED:
        unreadable = "latitude" in position.bad_fields or "longitude" in position.bad_fields
        position = position._replace(
            quality=coordinate_quality(position.latitude, position.longitude, unreadable)
        )
    elif position.quality == FUTURE:
        return FUTURE
    return plausible_quality(position, limits)


def _odometer(position: Position) -> float | None:
    # The reading routes use (coalesce(odometro, odometro_can)).
    return position.odometro if position.odometro is not None else position.odometro_can


def _odometer_backwards(
    output: list[Position], candidates: list[int], anchor: Position | None, limits: Plausibility
) -> list[int]:
    """Indexes (into `output`) of the candidates off the longest non-decreasing
    odometer chain, preferring the earliest points on ties."""
    readings: list[float] = []
    ids: list[int] = []  # index into output; -1 for the anchor
    times: list[datetime] = []
    for index in candidates:
        odometer = _odometer(output[index])
        if odometer is not None:
            readings.append(odometer)
            ids.append(index)
            times.append(output[index].data_transmissao)
    if not ids:
        return []
    # A stored anchor stored before these flags existed may be nonsense itself.
    if anchor is not None and plausible_quality(anchor, limits) == VALID:
        odometer = _odometer(anchor)
        if odometer is not None:
            at = bisect.bisect_left(times, anchor.data_transmissao)
            if at == len(times) or times[at] != anchor.data_transmissao:
                readings.insert(at, odometer)
                ids.insert(at, -1)
    count = len(readings)
    if count < 2:
        return []
    # longest[k]: the longest non-decreasing chain that starts at k, found as
    # the longest non-decreasing run of the negated readings read backwards.
    longest = [0] * count
    tails: list[float] = []
    for k in range(count - 1, -1, -1):
        value = -readings[k]
        at = bisect.bisect_right(tails, value)
        if at == len(tails):
            tails.append(value)
        else:
            tails[at] = value
        longest[k] = at + 1
    # Greedy from the front: the earliest point that can still start a chain
    # of the length needed is taken, which gives the earliest longest chain.
    need = len(tails)
    floor = float("-inf")
    flagged: list[int] = []
    for k in range(count):
        if need and longest[k] == need and readings[k] >= floor:
            floor = readings[k]
            need -= 1
        elif ids[k] >= 0:
            flagged.append(ids[k])
    return flagged


def _jumps(
    output: list[Position],
    candidates: list[int],
    anchor: Position | None,
    jump_speed_kmh: float,
    min_jump_m: float,
) -> list[int]:
    """Indexes (into `output`) of the candidates off the best consistent chain."""
    if not candidates or (len(candidates) == 1 and anchor is None):
        return []
    lats: list[float] = []
    lons: list[float] = []
    times: list[float] = []
    ids: list[int] = []  # index into output; -1 for the anchor
    for index in candidates:
        position = output[index]
        assert position.latitude is not None
        assert position.longitude is not None
        lats.append(position.latitude)
        lons.append(position.longitude)
        times.append(position.data_transmissao.timestamp())
        ids.append(index)
    if (
        anchor is not None
        and anchor.quality == VALID
        and anchor.latitude is not None
        and anchor.longitude is not None
    ):
        anchor_time = anchor.data_transmissao.timestamp()
        at = bisect.bisect_left(times, anchor_time)
        if at == len(times) or times[at] != anchor_time:
            lats.insert(at, anchor.latitude)
            lons.insert(at, anchor.longitude)
            times.insert(at, anchor_time)
            ids.insert(at, -1)

    def consistent(i: int, j: int) -> bool:
        distance = haversine_m(lats[i], lons[i], lats[j], lons[j])
        if distance <= min_jump_m:
            return True
        return implied_speed_kmh(distance, times[j] - times[i]) <= jump_speed_kmh

    count = len(ids)
    score = [0] * count
    link = [-1] * count
    best_score = 0
    best_end = -1
    for j in range(count):
        j_score = 1
        j_link = -1
        if j and score[j - 1] == best_score and consistent(j - 1, j):
            j_score = best_score + 1
            j_link = j - 1
        else:
            tried: set[int] = set()
            options = list(range(j - 1, max(-1, j - 1 - _JUMP_WINDOW), -1))
            node = best_end
            for _ in range(_JUMP_WINDOW):
                if node < 0:
                    break
                options.append(node)
                node = link[node]
            for i in options:
                if i in tried:
                    continue
                tried.add(i)
                if score[i] + 1 > j_score and consistent(i, j):
                    j_score = score[i] + 1
                    j_link = i
        score[j] = j_score
        link[j] = j_link
        if j_score > best_score:
            best_score = j_score
            best_end = j

    on_chain = [False] * count
    node = best_end
    while node >= 0:
        on_chain[node] = True
        node = link[node]
    return [ids[k] for k in range(count) if not on_chain[k] and ids[k] >= 0]
