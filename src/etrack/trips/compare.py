"""Our trips against the provider's own trips of the same day (`resumoviagens`).

The comparison is stored with each route (`routes.provider_comparison`) and
shown beside it: a plain JSON object, see `compare_with_provider`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from etrack.model import TripRow
from etrack.trips.params import RouteParams

__all__ = ["ProviderSpan", "compare_with_provider"]

ProviderSpan = tuple[datetime, datetime | None, float | None]
"""What the comparison reads of a provider trip: (data_inicio_conducao,
data_fim_conducao, distancia_conducao km)."""


def compare_with_provider(
    trips: Sequence[TripRow], provider: Sequence[ProviderSpan], params: RouteParams
) -> dict[str, Any] | None:
    """How our trips match the provider's of the same day; None when it listed none.

    Each provider trip is paired with the unpaired trip of ours that overlaps it
    longest in time. The provider's trip runs from ignition on to ignition off,
    ours from leaving the stop to arriving, so its edges lead and trail ours by
    the warm-up and idling: the time tolerance is meant to absorb that.
    """
    if not provider:
        return None
    used: set[int] = set()
    pairs: list[dict[str, Any]] = []
    agrees = len(provider) == len(trips)
    tolerance = params.compare_time_tolerance_s
    ratio = params.compare_distance_ratio
    for start, end, km in provider:
        finish = end or start
        best = -1
        best_overlap = -1.0
        for k, ours in enumerate(trips):
            if k in used:
                continue
            overlap = (min(finish, ours.end_ts) - max(start, ours.start_ts)).total_seconds()
            if overlap >= 0 and overlap > best_overlap:
                best, best_overlap = k, overlap
        pair: dict[str, Any] = {
            "provider_start": start.isoformat(),
            "provider_end": end.isoformat() if end else None,
            "provider_distance_m": km * 1000.0 if km is not None else None,
            "seq": None,
        }
        if best < 0:
            agrees = False
            pair["agrees"] = False
            pairs.append(pair)
            continue
        used.add(best)
        ours = trips[best]
        start_delta = (ours.start_ts - start).total_seconds()
        end_delta = (ours.end_ts - finish).total_seconds() if end else None
        distance_delta = ours.distance_m - km * 1000.0 if km is not None else None
        pair_agrees = (
            abs(start_delta) <= tolerance
            and (end_delta is None or abs(end_delta) <= tolerance)
            and (
                km is None
                or abs(ours.distance_m - km * 1000.0) <= ratio * max(km * 1000.0, ours.distance_m)
            )
        )
        agrees = agrees and pair_agrees
        pair.update(
            seq=ours.seq,
            start_delta_s=round(start_delta),
            end_delta_s=round(end_delta) if end_delta is not None else None,
            distance_delta_m=round(distance_delta, 1) if distance_delta is not None else None,
            agrees=pair_agrees,
        )
        pairs.append(pair)
    provider_m = sum(km for _, _, km in provider if km is not None) * 1000.0
    return {
        "provider_trips": len(provider),
        "our_trips": len(trips),
        "matched": len(used),
        "provider_distance_m": round(provider_m, 1),
        "our_distance_m": round(sum(t.distance_m for t in trips), 1),
        "unmatched_ours": [t.seq for k, t in enumerate(trips) if k not in used],
        "pairs": pairs,
        "agrees": agrees,
    }
