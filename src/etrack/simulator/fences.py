"""Fences around the simulated fleet's real stopping places, and the visits
the fleet's own model says happened there (the ground truth of issue 17).

Where a simulated vehicle stops (see `etrack.simulator.dayplan`): its depot,
the "overnight spot" it parks at between two days (the depot, or a spot a few
km away), and the random destinations its trips of the day end at. There is
no named customer: a place is a point the model parks the vehicle at. One
circle per distinct place (its coordinates to 1e-6 degrees): the depots are
named "Base PLATE", every other place "Parada N" (N counts the places in the
order found: plates sorted, days in order, trips in order), so the same fleet
and days always give the same names.

`stop_fences` emits plain GeoJSON (a FeatureCollection of Points with
`name`, `radius_m`, `group` properties), the format `etrack geofences import`
reads; the simulator never imports etrack.geofences (the two are siblings).

`true_visits` answers from the model, never from positions: a stop is the
interval from a trip's last movement (`TrueTrip.end`) to the next trip's first
movement (the next day's first trip for the last stop of a day). A fence
holding the stop's place is visited from the moment the true path enters its
circle before the stop to the moment it leaves it after (1-second steps over
the planned path, haversine on the simulator's own sphere): that way a stored
visit, whose times are those of the first fix inside and the first fix
outside, is at most one sampling interval (`MOVING_SAMPLE_GAP_S`) after the
truth on either end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from etrack.simulator.dayplan import (
    _MOVING_INTERVAL_S,
    _MOVING_JITTER_S,
    DayPlan,
    haversine_m,
)
from etrack.simulator.fleet import Fleet

__all__ = [
    "DEFAULT_RADIUS_M",
    "FENCE_GROUP",
    "MOVING_SAMPLE_GAP_S",
    "StopPlace",
    "stop_fences",
    "stop_places",
    "true_visits",
]

DEFAULT_RADIUS_M = 150.0
FENCE_GROUP = "simulador"
MOVING_SAMPLE_GAP_S = _MOVING_INTERVAL_S + 2 * _MOVING_JITTER_S
"""The longest time between two consecutive fixes of a moving vehicle (60 s +- 3 s)."""
_NEXT_TRIP_DAYS = 31  # rest days are at most two a week: the next trip is always within this


@dataclass(frozen=True, slots=True)
class StopPlace:
    name: str
    latitude: float
    longitude: float


def _key(lat: float, lon: float) -> tuple[float, float]:
    return round(lat, 6), round(lon, 6)


def _plan(fleet: Fleet, plate: str, day: date) -> DayPlan:
    # The planner is the fleet's model: the same plan its rows are made from.
    return fleet._planner.plan(fleet.vehicle(plate), day)


def stop_places(
    fleet: Fleet, days: Iterable[date], plates: Sequence[str] | None = None
) -> list[StopPlace]:
    """The distinct places where the vehicles (all, or `plates`) stop on
    `days`: each depot, where each day starts, and where each trip ends."""
    wanted = sorted(fleet.plates() if plates is None else [fleet.vehicle(p).placa for p in plates])
    day_list = sorted(set(days))
    places: dict[tuple[float, float], StopPlace] = {}
    depots: dict[tuple[float, float], str] = {}
    for plate in wanted:
        lat, lon = fleet.vehicle(plate).depot
        depots.setdefault(_key(lat, lon), plate)
    counter = 0

    def add(lat: float, lon: float) -> None:
        nonlocal counter
        key = _key(lat, lon)
        if key in places:
            return
        owner = depots.get(key)
        if owner is not None:
            name = f"Base {owner}"
        else:
            counter += 1
            name = f"Parada {counter}"
        places[key] = StopPlace(name, key[0], key[1])

    for plate in wanted:
        add(*fleet.vehicle(plate).depot)
        for day in day_list:
            plan = _plan(fleet, plate, day)
            if not plan.samples:  # not installed yet that day
                continue
            lat, lon = plan.state(plan.day_start)[:2]
            add(lat, lon)
            for trip in plan.trips:
                add(*trip.end)
    return list(places.values())


def stop_fences(
    fleet: Fleet,
    days: Iterable[date],
    radius_m: float = DEFAULT_RADIUS_M,
    plates: Sequence[str] | None = None,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: one circle (a Point with `radius_m`) of
    `radius_m` metres per stopping place of the fleet (or of `plates`) on
    `days`, in group "simulador"."""
    if not radius_m > 0:
        raise ValueError(f"radius_m must be above 0, got {radius_m}")
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [place.longitude, place.latitude]},
            "properties": {"name": place.name, "radius_m": radius_m, "group": FENCE_GROUP},
        }
        for place in stop_places(fleet, days, plates)
    ]
    return {"type": "FeatureCollection", "features": features}


@dataclass(frozen=True, slots=True)
class _Circle:
    name: str
    lat: float
    lon: float
    radius_m: float


def _circles(fences: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[_Circle]:
    """The circles of a FeatureCollection (or of a list of Features); other
    geometries are not stopping places and are left out."""
    features = fences.get("features", []) if isinstance(fences, Mapping) else fences
    circles = []
    for feature in features:
        geometry = feature.get("geometry") or {}
        properties = feature.get("properties") or {}
        if geometry.get("type") != "Point" or properties.get("radius_m") is None:
            continue
        lon, lat = geometry["coordinates"][:2]
        circles.append(
            _Circle(str(properties["name"]), float(lat), float(lon), float(properties["radius_m"]))
        )
    return circles


def _inside(plan: DayPlan, moment: int, circle: _Circle) -> bool:
    lat, lon = plan.state(moment)[:2]
    return haversine_m(lat, lon, circle.lat, circle.lon) <= circle.radius_m


def _entered(plan: DayPlan, arrival: int, earliest: int, circle: _Circle) -> int:
    """The first second of the run inside `circle` that ends at `arrival`."""
    moment = arrival
    while moment - 1 >= earliest and _inside(plan, moment - 1, circle):
        moment -= 1
    return moment


def _left(plan: DayPlan, departure: int, latest: int, circle: _Circle) -> int:
    """The first second outside `circle` after `departure`."""
    moment = departure + 1
    while moment < latest and _inside(plan, moment, circle):
        moment += 1
    return moment


def true_visits(
    fleet: Fleet,
    plate: str,
    day: date,
    fences: Mapping[str, Any] | Iterable[Mapping[str, Any]],
) -> list[tuple[str, datetime, datetime]]:
    """(fence name, arrive, depart) of every visit the model says `plate`
    made, arriving on the local `day`, to the circles of `fences` (a GeoJSON
    FeatureCollection like `stop_fences` gives): a stop whose place lies in
    a circle, from the true path's entry into it to its exit. The departure
    may fall on a later day (the last stop of a day lasts the night). The
    fleet's "now" is not applied: this is what happens, not what was sent
    yet. Sorted by (arrive, fence name)."""
    circles = _circles(fences)
    plan = _plan(fleet, plate, day)
    trips = plan.trips
    tz = fleet.tz
    found: list[tuple[str, datetime, datetime]] = []
    for number, trip in enumerate(trips):
        if number + 1 < len(trips):
            after_plan, departure = plan, trips[number + 1].departure
            latest = trips[number + 1].ignition_off
        else:
            after_plan, departure, latest = _next_departure(fleet, plate, day)
        place = trip.end
        for circle in circles:
            if haversine_m(*place, circle.lat, circle.lon) > circle.radius_m:
                continue
            arrive = _entered(plan, trip.arrival, trip.departure, circle)
            depart = _left(after_plan, departure, latest, circle)
            found.append(
                (
                    circle.name,
                    datetime.fromtimestamp(arrive, tz),
                    datetime.fromtimestamp(depart, tz),
                )
            )
    found.sort(key=lambda visit: (visit[1], visit[0]))
    return found


def _next_departure(fleet: Fleet, plate: str, day: date) -> tuple[DayPlan, int, int]:
    """The plan of the next day with a trip after `day`, that trip's first
    movement and its ignition off (the end of the search for the exit)."""
    for ahead in range(1, _NEXT_TRIP_DAYS + 1):
        plan = _plan(fleet, plate, day + timedelta(days=ahead))
        if plan.trips:
            return plan, plan.trips[0].departure, plan.trips[0].ignition_off
    raise ValueError(f"{plate} makes no trip within {_NEXT_TRIP_DAYS} days after {day}")
