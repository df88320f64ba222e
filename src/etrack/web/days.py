"""One vehicle's day as the UI and the exports see it: the stored route when a
run stored it, else (today, or a day no run reached yet) the route computed
now from the stored positions, not written back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from etrack.model import EVENT_KINDS
from etrack.trips.compare import compare_with_provider
from etrack.trips.day import day_stats, stop_rows, trip_rows
from etrack.web.reader import Reader

__all__ = ["DayData", "load_day", "today"]

STAT_FIELDS = (
    "start_ts",
    "end_ts",
    "point_count",
    "invalid_count",
    "distance_m",
    "odometer_m",
    "driving_s",
    "idle_s",
    "parked_s",
    "max_speed_kmh",
    "avg_speed_kmh",
    "over_limit_s",
    "trip_count",
    "stop_count",
)


@dataclass(slots=True)
class DayData:
    placa: str
    day: date
    stored: bool
    stats: dict[str, Any]
    points: list[list[Any]]
    """[POSIX seconds, lat, lon, speed km/h, ignition] in time order."""
    line: dict[str, Any] | None
    simplified: dict[str, Any] | None
    speed_limit_kmh: float
    trips: list[dict[str, Any]] = field(default_factory=list)
    stops: list[dict[str, Any]] = field(default_factory=list)
    provider_trips: list[dict[str, Any]] = field(default_factory=list)
    comparison: dict[str, Any] | None = None
    computed_at: datetime | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    """The vehicle's events overlapping the day (web_day_events rows)."""

    def properties(self) -> dict[str, Any]:
        """The GeoJSON properties of the day's route (same keys as the SQL fast path)."""
        return {
            "placa": self.placa,
            "rota_date": self.day.isoformat(),
            **self.stats,
            "speed_limit_kmh": self.speed_limit_kmh,
            "stored": self.stored,
            "computed_at": self.computed_at,
        }

    def feature(
        self, *, simplified: bool = False, properties: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The day's route as a GeoJSON Feature: the simplified line when asked
        for and there is one, else the full line; `properties()` by default."""
        line = self.simplified if simplified and self.simplified else self.line
        props = self.properties() if properties is None else properties
        return {"type": "Feature", "geometry": line, "properties": props}

    def as_json(self) -> dict[str, Any]:
        return {
            "placa": self.placa,
            "day": self.day.isoformat(),
            "stored": self.stored,
            "computed_at": self.computed_at,
            "speed_limit_kmh": self.speed_limit_kmh,
            "stats": self.stats,
            "points": self.points,
            "line": self.line,
            "simplified": self.simplified,
            "trips": self.trips,
            "stops": self.stops,
            "provider_trips": self.provider_trips,
            "comparison": self.comparison,
            # Times as POSIX seconds, like the points the chart draws them over.
            "events": [
                {
                    "id": str(e["id"]),
                    "kind": e["kind"],
                    "start": e["start_ts"].timestamp(),
                    "end": None if e["end_ts"] is None else e["end_ts"].timestamp(),
                    "value": e["value"],
                    "limit_value": e["limit_value"],
                    "latitude": e["latitude"],
                    "longitude": e["longitude"],
                    "logradouro": e["logradouro"],
                    "unit": EVENT_KINDS[e["kind"]].unit if e["kind"] in EVENT_KINDS else "",
                }
                for e in self.events
            ],
        }


def today(reader: Reader) -> date:
    return datetime.now(reader.params.tz).date()


async def load_day(reader: Reader, placa: str, day: date) -> DayData | None:
    """The day, or None when there is neither a stored route nor a valid position."""
    if day < today(reader):
        stored = await _stored(reader, placa, day)
        if stored is not None:
            return stored
        return await _live(reader, placa, day)
    live = await _live(reader, placa, day)
    return live if live is not None else await _stored(reader, placa, day)


async def _stored(reader: Reader, placa: str, day: date) -> DayData | None:
    row = await reader.route_row(placa, day)
    if row is None:
        return None
    trips, stops, provider = await reader.route_details(placa, day)
    params = row["params"] or {}
    limit = params.get("speed_limit_kmh", reader.params.speed_limit_kmh)
    return DayData(
        placa=placa,
        day=day,
        stored=True,
        stats={name: row[name] for name in STAT_FIELDS},
        points=list(row["points"] or []),
        line=row["geojson"],
        simplified=row["simplified"],
        speed_limit_kmh=float(limit),
        trips=trips,
        stops=stops,
        provider_trips=provider,
        comparison=row["provider_comparison"],
        computed_at=row["computed_at"],
    )


async def _live(reader: Reader, placa: str, day: date) -> DayData | None:
    route = await reader.live_route(placa, day)
    if route is None:
        return None
    provider = await reader.provider_trips(placa, day)
    comparison = compare_with_provider(
        route.trips,
        [
            (p["data_inicio_conducao"], p["data_fim_conducao"], p["distancia_conducao"])
            for p in provider
        ],
        reader.params,
    )
    return DayData(
        placa=placa,
        day=day,
        stored=False,
        stats=day_stats(route)._asdict(),
        points=[list(p) for p in route.points],
        line=route.geojson,
        simplified=route.simplified,
        speed_limit_kmh=reader.params.speed_limit_kmh,
        trips=[t._asdict() for t in trip_rows(route)],
        stops=[s._asdict() for s in stop_rows(route)],
        provider_trips=provider,
        comparison=comparison,
        computed_at=datetime.now(UTC),
    )
