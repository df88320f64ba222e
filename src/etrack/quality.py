"""Quality flags on positions: what must stay out of routes and distances.

A position's own quality (`coordinate_quality`, set by the parser) looks at
one row; the sequence flags (`flag_sequence`) look at an answer's rows
together: a second copy of a key is a `duplicate`, a point no vehicle could
have reached in time is a `jump`.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Final

from etrack.geo import haversine_m, implied_speed_kmh
from etrack.model import DUPLICATE, JUMP, NO_FIX, OUT_OF_RANGE, VALID, Position

__all__ = ["coordinate_quality", "flag_sequence"]


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
) -> list[Position]:
    """Flag `duplicate` and `jump` points of one answer; one output per input, same order.

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
    3. Jump candidates are the remaining `valid` points (never `no_fix`,
       `out_of_range`, `future` or `duplicate`); their timestamps are strictly
       increasing, so no implied speed divides by zero. Two candidates are
       *consistent* when the implied speed between them (haversine distance,
       R = 6378137 m, over their time difference) is at most `jump_speed_kmh`,
       or they are at most `min_jump_m` apart.
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
    consistent new points outweighs it.

    Idempotent: incoming `duplicate` and `jump` flags are recomputed
    (a `future` flag would need `now` and is kept).
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
            base_quality = _base_quality(position)
            if base_quality != position.quality or position.duplicate_differs:
                position = position._replace(quality=base_quality, duplicate_differs=False)
                output[index] = position
            kept = position
            if base_quality == VALID:
                candidates.append(index)
        anchor = previous.get(plate) if previous else None
        for index in _jumps(output, candidates, anchor, jump_speed_kmh, min_jump_m):
            output[index] = output[index]._replace(quality=JUMP)
    return output


def _base_quality(position: Position) -> str:
    """The per-row quality, undoing an earlier flag_sequence run."""
    if position.quality != DUPLICATE and position.quality != JUMP:
        return position.quality
    unreadable = "latitude" in position.bad_fields or "longitude" in position.bad_fields
    return coordinate_quality(position.latitude, position.longitude, unreadable)


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
