"""Day plans: where each simulated vehicle is, second by second, on one local day.

A plan is a pure function of (fleet seed, vehicle, day): the route through
random destinations measuring exactly the day's kilometres, the timing of
trips, stops and traffic lights, and the reporting instants (see the model in
`etrack.simulator.fleet`). Everything here is geometry and deterministic
randomness; turning a plan into provider rows is `etrack.simulator.wire`'s job.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from etrack.simulator.config import FleetConfig
from etrack.simulator.longhaul import IDLE_PER_STRETCH_S, schedule

__all__ = [
    "EARTH_RADIUS_M",
    "DayPlan",
    "DayPlanner",
    "TripPlan",
    "Vehicle",
    "destination",
    "digest_int",
    "haversine_m",
    "mix",
    "pick",
    "seeded_rng",
    "unit",
]

EARTH_RADIUS_M: Final = 6_378_137.0

_PARKED_INTERVAL_S = 900
_MOVING_INTERVAL_S = 60
_MOVING_JITTER_S = 3
_FIRST_DEPARTURE_S = 5 * 3600
_LAST_ARRIVAL_S = 23 * 3600
_M64 = (1 << 64) - 1


# ------------------------------------------------------------------ helpers
# The simulator keeps its own haversine on purpose: it is the independent
# oracle the collector's distances (etrack.geo) are checked against, so it
# must not share their code. Same formula and radius (Traccar's, R = 6378137 m).
def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
    delta = distance_m / EARTH_RADIUS_M
    p1 = math.radians(lat)
    l1 = math.radians(lon)
    p2 = math.asin(
        math.sin(p1) * math.cos(delta) + math.cos(p1) * math.sin(delta) * math.cos(bearing)
    )
    l2 = l1 + math.atan2(
        math.sin(bearing) * math.sin(delta) * math.cos(p1),
        math.cos(delta) - math.sin(p1) * math.sin(p2),
    )
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


def digest_int(*parts: object) -> int:
    text = "|".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def seeded_rng(*parts: object) -> random.Random:
    # Simulated data, not security: a seeded Mersenne Twister is what we want.
    return random.Random(digest_int(*parts))  # noqa: S311


def pick(rng: random.Random, rate: float, count: int) -> list[int]:
    """The indices of range(count), each kept with probability `rate`.

    Draws geometric skips, so the cost follows the number picked, not `count`.
    """
    if rate <= 0 or count <= 0:
        return []
    if rate >= 1:
        return list(range(count))
    log_keep = math.log1p(-rate)
    picked: list[int] = []
    index = -1
    while True:
        index += 1 + int(math.log(1.0 - rng.random()) / log_keep)
        if index >= count:
            return picked
        picked.append(index)


def mix(value: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread integer hash."""
    value = (value + 0x9E3779B97F4A7C15) & _M64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _M64
    return value ^ (value >> 31)


def unit(salt: int, key: int) -> float:
    """A uniform number in [0, 1) that depends only on (salt, key)."""
    return mix(salt ^ mix(key)) / 18446744073709551616.0


def _reflect(value: float, low: float, high: float) -> float:
    span = high - low
    folded = (value - low) % (2 * span)
    return low + (folded if folded <= span else 2 * span - folded)


# ------------------------------------------------------------------ vehicles
@dataclass(frozen=True)
class Vehicle:
    placa: str
    """Canonical plate: upper case, no hyphen."""
    account_user: str
    index: int
    descricao: str
    frota: str
    equipamento_serial: str
    installed_on: date
    depot: tuple[float, float]
    hyphen_mode: int
    """Old plates only: 0 never hyphenated, 1 always, 2 varies row by row."""
    numbers_as_strings: bool
    globalstar: bool
    history_has_serial: bool
    has_can_odometer: bool
    driver: tuple[str, str] | None
    rest_weekdays: frozenset[int]
    weekday_km: tuple[int, ...]
    seconds_per_km: int
    weekday_allowance_s: tuple[int, ...]
    odometer_base_m: int
    engine_base_s: int
    storage_delay_s: int
    salt: int
    long_haul_shift: int | None = None
    """Long-haul vehicles only: their weekly template's shift (etrack.simulator.longhaul)."""
    crew: tuple[tuple[str, str], ...] = ()
    """Long-haul vehicles only: (name, identification) of the drivers taking turns."""

    @property
    def long_haul(self) -> bool:
        return self.long_haul_shift is not None

    @property
    def mercosul(self) -> bool:
        return self.placa[4].isalpha()

    @property
    def hyphenated(self) -> str:
        return f"{self.placa[:3]}-{self.placa[3:]}"

    @property
    def display_plate(self) -> str:
        """The plate as the provider prints it in terminal and trip records."""
        if self.mercosul or self.hyphen_mode == 0:
            return self.placa
        return self.hyphenated


# -------------------------------------------------------------- day plans
_STRIDE = 7  # piece data: lat0, lon0, lat1, lon1, odo0_m, odo1_m, speed_kmh


@dataclass(frozen=True)
class TripPlan:
    ignition_on: int
    departure: int
    arrival: int
    ignition_off: int
    start: tuple[float, float]
    end: tuple[float, float]
    odo_start_m: float
    odo_end_m: float
    max_speed_kmh: float


class DayPlan:
    """One vehicle-day as contiguous pieces (moving or still), compactly stored.

    A piece is still when its speed is 0. `starts` has one more entry than
    pieces: the end of the day.
    """

    __slots__ = (
        "day",
        "day_end",
        "day_start",
        "duplicates",
        "engine_before",
        "extras",
        "ignition",
        "odo_start_m",
        "pieces",
        "samples",
        "starts",
        "trips",
    )

    def __init__(self, day: date, day_start: int, day_end: int, odo_start_m: float) -> None:
        self.day = day
        self.day_start = day_start
        self.day_end = day_end
        self.odo_start_m = odo_start_m
        self.starts: array[int] = array("q")
        self.pieces: array[float] = array("d")
        self.ignition = bytearray()
        self.engine_before: array[float] = array("d")
        self.samples: array[int] = array("q")
        self.trips: tuple[TripPlan, ...] = ()
        # gap index -> (timestamp, kind); filled lazily, it depends on the quirks.
        self.extras: dict[int, tuple[int, int]] | None = None
        self.duplicates: frozenset[int] | None = None

    def state(self, moment: int) -> tuple[float, float, float, bool, float, float]:
        """(lat, lon, speed km/h, ignition, odometer m, engine seconds) at `moment`."""
        index = bisect_right(self.starts, moment) - 1
        index = min(max(index, 0), len(self.ignition) - 1)
        start = self.starts[index]
        base = index * _STRIDE
        data = self.pieces
        speed = data[base + 6]
        ignition = self.ignition[index] == 1
        engine = self.engine_before[index] + (moment - start if ignition else 0)
        if speed == 0.0:
            return data[base], data[base + 1], 0.0, ignition, data[base + 4], engine
        fraction = (moment - start) / (self.starts[index + 1] - start)
        lat = data[base] + (data[base + 2] - data[base]) * fraction
        lon = data[base + 1] + (data[base + 3] - data[base + 1]) * fraction
        odo = data[base + 4] + (data[base + 5] - data[base + 4]) * fraction
        return lat, lon, speed, ignition, odo, engine


class _PlanBuilder:
    def __init__(self, plan: DayPlan, engine_start_s: float) -> None:
        self.plan = plan
        self.engine = engine_start_s
        self.odo = plan.odo_start_m
        self.time = plan.day_start

    def still(self, until: int, point: tuple[float, float], ignition: bool) -> None:
        if until <= self.time:
            return
        self._append(until, point, point, 0.0, ignition, 0.0)

    def move(
        self, until: int, start: tuple[float, float], end: tuple[float, float], length_m: float
    ) -> None:
        speed = length_m / (until - self.time) * 3.6
        self._append(until, start, end, speed, True, length_m)

    def _append(
        self,
        until: int,
        start: tuple[float, float],
        end: tuple[float, float],
        speed: float,
        ignition: bool,
        length_m: float,
    ) -> None:
        plan = self.plan
        plan.starts.append(self.time)
        plan.pieces.extend(
            (start[0], start[1], end[0], end[1], self.odo, self.odo + length_m, speed)
        )
        plan.ignition.append(1 if ignition else 0)
        plan.engine_before.append(self.engine)
        if ignition:
            self.engine += until - self.time
        self.odo += length_m
        self.time = until

    def finish(self) -> None:
        self.plan.starts.append(self.plan.day_end)


@dataclass
class _Segment:
    start: tuple[float, float]
    end: tuple[float, float]
    length_m: float
    highway: bool = False
    speed_kmh: float = 0.0
    lights: list[tuple[float, int]] = field(default_factory=list)

    def moving_s(self) -> int:
        return max(1, round(self.length_m / (self.speed_kmh / 3.6)))


# ------------------------------------------------------------------ planner
class DayPlanner:
    """Builds and caches the day plans of one fleet's vehicles. Thread-safe."""

    def __init__(self, config: FleetConfig, cache_size: int) -> None:
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.region = config.region
        self._cache_size = cache_size
        self._plans: OrderedDict[tuple[str, date], DayPlan] = OrderedDict()
        self._lock = threading.Lock()

    # ----------------------------------------------------- closed-form totals
    def _rest(self, vehicle: Vehicle, day: date) -> bool:
        return day.weekday() in vehicle.rest_weekdays

    def _delta_km(self, vehicle: Vehicle, day: date) -> int:
        if (
            vehicle.long_haul
            or day < vehicle.installed_on
            or self._rest(vehicle, day)
            or self._rest(vehicle, day + timedelta(days=1))
        ):
            return 0
        return int(unit(vehicle.salt ^ 0xD17A, day.toordinal()) * 26)

    def day_km(self, vehicle: Vehicle, day: date) -> int:
        if day < vehicle.installed_on or self._rest(vehicle, day):
            return 0
        previous = self._delta_km(vehicle, day - timedelta(days=1))
        return vehicle.weekday_km[day.weekday()] + self._delta_km(vehicle, day) - previous

    @staticmethod
    def _weekday_sum(values: Sequence[int], first: date, last: date) -> int:
        """Sum of values[weekday(d)] for first <= d < last."""
        days = (last - first).days
        if days <= 0:
            return 0
        weeks, rest = divmod(days, 7)
        start = first.weekday()
        return weeks * sum(values) + sum(values[(start + k) % 7] for k in range(rest))

    def _km_before(self, vehicle: Vehicle, day: date) -> int:
        """Kilometres driven from installation to the start of `day` (telescoping sum)."""
        if day <= vehicle.installed_on:
            return 0
        base = self._weekday_sum(vehicle.weekday_km, vehicle.installed_on, day)
        return base + self._delta_km(vehicle, day - timedelta(days=1))

    def _engine_before_s(self, vehicle: Vehicle, day: date) -> int:
        if day <= vehicle.installed_on:
            return vehicle.engine_base_s
        km = self._km_before(vehicle, day)
        allowance = self._weekday_sum(vehicle.weekday_allowance_s, vehicle.installed_on, day)
        return vehicle.engine_base_s + km * vehicle.seconds_per_km + allowance

    def _spot(self, vehicle: Vehicle, day: date) -> tuple[float, float]:
        """Where the vehicle parks at the end of `day`."""
        if (
            vehicle.long_haul
            or day < vehicle.installed_on
            or self._rest(vehicle, day)
            or self._rest(vehicle, day + timedelta(days=1))
            or unit(vehicle.salt ^ 0xA3A7, day.toordinal()) >= 0.25
        ):
            return vehicle.depot
        bearing = unit(vehicle.salt ^ 0xBEA7, day.toordinal()) * 2 * math.pi
        distance = 3000 + unit(vehicle.salt ^ 0xD157, day.toordinal()) * 9000
        return self._clamp(destination(*vehicle.depot, bearing, distance))

    def _clamp(self, point: tuple[float, float]) -> tuple[float, float]:
        region = self.region
        return (
            min(max(point[0], region.lat_min), region.lat_max),
            min(max(point[1], region.lon_min), region.lon_max),
        )

    def _day_bounds(self, day: date) -> tuple[int, int]:
        start = datetime.combine(day, time(0), self.tz)
        end = datetime.combine(day + timedelta(days=1), time(0), self.tz)
        return int(start.timestamp()), int(end.timestamp())

    # ------------------------------------------------------------ plan cache
    def plan(self, vehicle: Vehicle, day: date) -> DayPlan:
        key = (vehicle.placa, day)
        with self._lock:
            plan = self._plans.get(key)
            if plan is not None:
                self._plans.move_to_end(key)
                return plan
        plan = self._build_plan(vehicle, day)
        with self._lock:
            self._plans[key] = plan
            while len(self._plans) > self._cache_size:
                self._plans.popitem(last=False)
        return plan

    # ------------------------------------------------------------- planning
    def _build_plan(self, vehicle: Vehicle, day: date) -> DayPlan:
        day_start, day_end = self._day_bounds(day)
        plan = DayPlan(day, day_start, day_end, float(vehicle.odometer_base_m))
        if day < vehicle.installed_on:
            return plan
        plan.odo_start_m = float(vehicle.odometer_base_m + 1000 * self._km_before(vehicle, day))
        builder = _PlanBuilder(plan, float(self._engine_before_s(vehicle, day)))
        rng = seeded_rng(self.config.seed, vehicle.placa, day.isoformat(), "plan")
        phase = rng.randrange(_PARKED_INTERVAL_S)
        start = self._spot(vehicle, day - timedelta(days=1))
        end = self._spot(vehicle, day)
        total_km = self.day_km(vehicle, day)
        if total_km == 0:
            builder.still(day_end, start, ignition=False)
            builder.finish()
            plan.samples = self._parked_samples(day_start + phase, day_end)
            return plan
        if vehicle.long_haul:
            self._build_long_haul(vehicle, plan, builder, phase, total_km)
            return plan

        legs = self._route(rng, start, end, total_km * 1000.0)
        engine_s = total_km * vehicle.seconds_per_km + vehicle.weekday_allowance_s[day.weekday()]
        idles = self._time_legs(rng, legs, engine_s)
        trips = len(legs)
        dwells = [rng.randint(900, 9000) for _ in range(trips - 1)]
        window = _LAST_ARRIVAL_S - _FIRST_DEPARTURE_S
        if engine_s + sum(dwells) > window:
            scale = (window - engine_s) / sum(dwells)
            dwells = [max(600, int(dwell * scale)) for dwell in dwells]
        slack = max(0, window - engine_s - sum(dwells))
        ignition_on = day_start + _FIRST_DEPARTURE_S + rng.randint(0, min(12600, slack))

        samples = self._parked_samples(day_start + phase, ignition_on)
        builder.still(ignition_on, start, ignition=False)
        trip_plans: list[TripPlan] = []
        for number, leg in enumerate(legs):
            here = leg[0].start
            warm_up, after = idles[2 * number], idles[2 * number + 1]
            builder.still(ignition_on + warm_up, here, ignition=True)
            there = leg[-1].end
            trip = self._drive_leg(
                builder, leg, ignition_on, after, max(segment.speed_kmh for segment in leg)
            )
            trip_plans.append(trip)
            ignition_off = trip.ignition_off
            samples.extend(self._moving_samples(vehicle, ignition_on, ignition_off))
            next_on = ignition_off + dwells[number] if number < trips - 1 else day_end
            samples.extend(self._parked_samples(ignition_off, next_on))
            builder.still(next_on, there, ignition=False)
            ignition_on = next_on
        builder.finish()
        plan.trips = tuple(trip_plans)
        plan.samples = samples
        return plan

    def _build_long_haul(
        self, vehicle: Vehicle, plan: DayPlan, builder: _PlanBuilder, phase: int, total_km: int
    ) -> None:
        """A long-haul day (etrack.simulator.longhaul): its stretches' trips, at a
        constant speed, on a random walk from the depot back to the depot."""
        assert vehicle.long_haul_shift is not None
        day = plan.day
        stretches = schedule(
            self.config.seed, vehicle.placa, vehicle.salt, vehicle.seconds_per_km,
            vehicle.long_haul_shift, day, self.tz,
        )  # fmt: skip
        timings = [(stretch, trip) for stretch in stretches for trip in stretch.trips]
        total_m = total_km * 1000.0
        driving = sum(trip.driving_s for _, trip in timings)
        rng = seeded_rng(self.config.seed, vehicle.placa, day.isoformat(), "long-haul-route")
        speed = total_m / driving  # m/s
        lengths = [trip.driving_s * speed for _, trip in timings]
        lengths[-1] = total_m - sum(lengths[:-1])
        legs = self._walk_legs(rng, vehicle.depot, lengths)
        for leg in legs:
            for segment in leg:
                segment.speed_kmh = speed * 3.6
        moving = sum(segment.moving_s() for leg in legs for segment in leg)
        engine_s = total_km * vehicle.seconds_per_km + vehicle.weekday_allowance_s[day.weekday()]
        idles: list[int] = []
        for stretch, _ in timings:
            share = IDLE_PER_STRETCH_S // len(stretch.trips)
            idles.extend((share // 2, share - share // 2))
        idles[-1] += engine_s - moving - sum(idles)
        if idles[-1] < 30:
            raise AssertionError("could not fit the long-haul day into its engine hours")
        samples = self._parked_samples(plan.day_start + phase, plan.day_start + phase)
        here = vehicle.depot
        parked_from = plan.day_start + phase
        trip_plans: list[TripPlan] = []
        for number, ((_, timing), leg) in enumerate(zip(timings, legs, strict=True)):
            warm_up, after = idles[2 * number], idles[2 * number + 1]
            departure = max(timing.departure, builder.time + warm_up + 120)
            ignition_on = departure - warm_up
            samples.extend(self._parked_samples(parked_from, ignition_on))
            builder.still(ignition_on, here, ignition=False)
            builder.still(departure, here, ignition=True)
            here = leg[-1].end
            trip = self._drive_leg(builder, leg, ignition_on, after, speed * 3.6)
            trip_plans.append(trip)
            ignition_off = trip.ignition_off
            samples.extend(self._moving_samples(vehicle, ignition_on, ignition_off))
            parked_from = ignition_off
        if builder.time > plan.day_end:
            raise AssertionError("a long-haul trip ran past midnight")
        samples.extend(self._parked_samples(parked_from, plan.day_end))
        builder.still(plan.day_end, here, ignition=False)
        builder.finish()
        plan.trips = tuple(trip_plans)
        plan.samples = samples

    def _walk_legs(
        self, rng: random.Random, depot: tuple[float, float], lengths: list[float]
    ) -> list[list[_Segment]]:
        """One leg per length: a gently turning walk of ~5 km segments inside the
        region, the last leg heading back to `depot`, each exactly its length."""
        region = self.region
        margin = 0.01
        inside = (
            region.lat_min + margin, region.lat_max - margin,
            region.lon_min + margin, region.lon_max - margin,
        )  # fmt: skip
        centre = ((region.lat_min + region.lat_max) / 2, (region.lon_min + region.lon_max) / 2)

        def ok(point: tuple[float, float]) -> bool:
            return inside[0] <= point[0] <= inside[1] and inside[2] <= point[1] <= inside[3]

        def bearing_to(a: tuple[float, float], b: tuple[float, float]) -> float:
            p1, p2 = math.radians(a[0]), math.radians(b[0])
            dl = math.radians(b[1] - a[1])
            y = math.sin(dl) * math.cos(p2)
            x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
            return math.atan2(y, x)

        here = depot
        heading = rng.uniform(0, 2 * math.pi)
        legs: list[list[_Segment]] = []
        done = 0.0
        for number, planned in enumerate(lengths):
            last = number == len(lengths) - 1
            # The last leg takes what the others' float sums left over: exact day totals.
            length = sum(lengths) - done if last else planned
            segments: list[_Segment] = []
            walked = 0.0
            while True:
                left = length - walked
                if last and left - haversine_m(*here, *depot) <= 10_000:
                    break
                if not last and left <= 1.0:
                    break
                step = min(rng.uniform(4000, 6000), left) if not last else rng.uniform(4000, 5000)
                for _attempt in range(40):
                    heading += rng.uniform(-0.35, 0.35)
                    point = destination(*here, heading, step)
                    if ok(point):
                        break
                    heading = bearing_to(here, centre) + rng.uniform(-0.8, 0.8)
                else:
                    point = destination(*here, bearing_to(here, centre), step)
                segment_m = haversine_m(*here, *point)
                segments.append(_Segment(here, point, segment_m, highway=True))
                walked += segment_m
                here = point
            if last:
                segments.extend(self._leg(rng, here, depot, 0.0))
                fixed = [segments]
                self._stretch(rng, fixed, length)
                segments = fixed[0]
                for segment in segments:
                    segment.highway = True
                here = depot
            done += sum(segment.length_m for segment in segments)
            legs.append(segments)
        return legs

    @staticmethod
    def _parked_samples(first: int, until: int) -> array[int]:
        return array("q", range(first, until, _PARKED_INTERVAL_S))

    @staticmethod
    def _moving_samples(vehicle: Vehicle, start: int, until: int) -> array[int]:
        samples = array("q", [start])
        step = 1
        salt = vehicle.salt ^ 0x717E
        while True:
            jitter = int(unit(salt, start + step) * (2 * _MOVING_JITTER_S + 1)) - _MOVING_JITTER_S
            moment = start + step * _MOVING_INTERVAL_S + jitter
            if moment >= until:
                return samples
            samples.append(moment)
            step += 1

    def _route(
        self,
        rng: random.Random,
        start: tuple[float, float],
        end: tuple[float, float],
        total_m: float,
    ) -> list[list[_Segment]]:
        """Legs of straight segments from `start` to `end` measuring exactly `total_m`.

        The natural route is tuned to ~96% of the target before `_stretch` bends
        it the rest of the way: little bending means gentle corners, and gentle
        corners mean 60 s sampling loses little distance.
        """
        direct = haversine_m(*start, *end)
        fewest = 1 if direct >= 0.85 * total_m else 2
        trips = min(5, max(fewest, math.ceil(total_m / rng.uniform(22_000, 40_000))))
        bearings = [rng.uniform(0, 2 * math.pi) for _ in range(trips - 1)]
        spreads = [rng.uniform(0.6, 1.4) for _ in range(trips - 1)]
        leg_seeds = [rng.getrandbits(64) for _ in range(trips)]
        target = 0.96 * total_m

        def build(scale: float) -> list[list[_Segment]]:
            stops = [start]
            for bearing, spread in zip(bearings, spreads, strict=True):
                stops.append(self._bounce(stops[-1], bearing, max(2500.0, scale * spread)))
            stops.append(end)
            # Each leg draws from its own generator so a new scale moves, not reshuffles, it.
            return [
                self._leg(random.Random(seed), a, b)  # noqa: S311
                for seed, (a, b) in zip(leg_seeds, itertools.pairwise(stops), strict=True)
            ]

        best: list[list[_Segment]] | None = None
        best_length = 0.0
        scale = target / trips
        short_scale, long_scale = 0.0, math.inf
        for _attempt in range(20):
            legs = build(scale)
            length = sum(segment.length_m for leg in legs for segment in leg)
            if best_length < length <= 0.99 * total_m:
                best, best_length = legs, length
            if 0.93 * total_m <= length <= 0.99 * total_m:
                break
            # Secant-like steps, kept inside the bracket found so far: bouncing off
            # the region's edges makes length(scale) only roughly monotonic.
            if length < target:
                short_scale = max(short_scale, scale)
            else:
                long_scale = min(long_scale, scale)
            guess = scale * min(3.0, max(0.3, target / length))
            if not short_scale < guess < long_scale:
                guess = (short_scale + long_scale) / 2 if long_scale < math.inf else 2 * scale
            scale = guess
        if best is None:
            # A guaranteed fit: straight legs, out to a near point and back on a round trip.
            if start == end:
                middle = self._bounce(start, bearings[0], total_m / 3)
                best = [self._leg(rng, start, middle, 0.0), self._leg(rng, middle, end, 0.0)]
            else:
                best = [self._leg(rng, start, end, 0.0)]
        legs = best
        self._stretch(rng, legs, total_m)
        for leg in legs:
            highway_leg = sum(seg.length_m for seg in leg) > 15000 and rng.random() < 0.5
            for segment in leg:
                segment.highway = highway_leg and segment.length_m > 1500 and rng.random() < 0.7
                if segment.highway:
                    segment.speed_kmh = rng.uniform(70, 100)
                else:
                    segment.speed_kmh = rng.uniform(22, 58)
                    position = 0.0
                    while True:
                        position += rng.uniform(800, 2800) / segment.length_m
                        if position >= 0.92:
                            break
                        segment.lights.append((position, rng.randint(15, 110)))
        return legs

    def _bounce(
        self, origin: tuple[float, float], bearing: float, distance_m: float
    ) -> tuple[float, float]:
        """Go `distance_m` along `bearing`, reflecting off the region's edges."""
        lat_m = math.pi * EARTH_RADIUS_M / 180
        lon_m = lat_m * math.cos(math.radians(origin[0]))
        lat = origin[0] + distance_m * math.cos(bearing) / lat_m
        lon = origin[1] + distance_m * math.sin(bearing) / lon_m
        region = self.region
        return (
            _reflect(lat, region.lat_min, region.lat_max),
            _reflect(lon, region.lon_min, region.lon_max),
        )

    @staticmethod
    def _leg(
        rng: random.Random,
        start: tuple[float, float],
        end: tuple[float, float],
        wiggle: float = 0.12,
    ) -> list[_Segment]:
        distance = haversine_m(*start, *end)
        count = max(1, round(distance / rng.uniform(4000, 8000)))
        points = [start]
        lat_m = math.pi * EARTH_RADIUS_M / 180
        lon_m = lat_m * math.cos(math.radians(start[0]))
        # Unit normal of start->end, in degrees per metre on each axis.
        dx = (end[1] - start[1]) * lon_m
        dy = (end[0] - start[0]) * lat_m
        norm = math.hypot(dx, dy) or 1.0
        normal = (dx / norm / lat_m, -dy / norm / lon_m)
        for k in range(1, count):
            fraction = k / count
            offset = rng.uniform(-wiggle, wiggle) * distance / count
            points.append(
                (
                    start[0] + (end[0] - start[0]) * fraction + normal[0] * offset,
                    start[1] + (end[1] - start[1]) * fraction + normal[1] * offset,
                )
            )
        points.append(end)
        return [_Segment(a, b, haversine_m(*a, *b)) for a, b in itertools.pairwise(points)]

    @staticmethod
    def _stretch(rng: random.Random, legs: list[list[_Segment]], total_m: float) -> None:
        """Bend every segment once so the legs measure exactly `total_m` (haversine)."""
        natural = sum(seg.length_m for leg in legs for seg in leg)
        ratio = total_m / natural
        lat_m = math.pi * EARTH_RADIUS_M / 180
        for index, leg in enumerate(legs):
            bent: list[_Segment] = []
            for segment in leg:
                (lat0, lon0), (lat1, lon1) = segment.start, segment.end
                target = segment.length_m * ratio
                lon_m = lat_m * math.cos(math.radians((lat0 + lat1) / 2))
                dx = (lon1 - lon0) * lon_m
                dy = (lat1 - lat0) * lat_m
                norm = math.hypot(dx, dy)
                if norm < 1.0 or target - segment.length_m < 0.01:
                    bent.append(segment)
                    continue
                side = 1.0 if rng.random() < 0.5 else -1.0
                normal = (dx / norm / lat_m * side, -dy / norm / lon_m * side)
                middle = ((lat0 + lat1) / 2, (lon0 + lon1) / 2)
                half = segment.length_m / 2
                height = math.sqrt(max((target / 2) ** 2 - half**2, 0.0))
                apex = middle
                for _ in range(4):
                    apex = (middle[0] + normal[0] * height, middle[1] + normal[1] * height)
                    length = haversine_m(lat0, lon0, *apex) + haversine_m(*apex, lat1, lon1)
                    error = target - length
                    if abs(error) < 1e-6:
                        break
                    # Newton step with the planar derivative of 2*sqrt(half^2 + h^2).
                    slope = 2 * height / math.hypot(half, height) if height > 0 else 1.0
                    height = max(0.0, height + error / max(slope, 1e-3))
                bent.append(_Segment(segment.start, apex, haversine_m(lat0, lon0, *apex)))
                bent.append(_Segment(apex, segment.end, haversine_m(*apex, lat1, lon1)))
            legs[index] = bent

    @staticmethod
    def _time_legs(rng: random.Random, legs: list[list[_Segment]], engine_s: int) -> list[int]:
        """Fit driving into the day's ignition-on seconds; return the idle seconds.

        Returns [warm_up_1, after_1, warm_up_2, after_2, ...], each >= 30 s,
        summing with driving and traffic lights to exactly `engine_s`. Spare time
        first slows urban traffic (not below 18 km/h), then lengthens idling; a
        shortfall first drops traffic lights, then shortens idling, then speeds up.
        """
        segments = [segment for leg in legs for segment in leg]
        idles = [rng.randint(60, 600) for _ in range(2 * len(legs))]

        def spare() -> int:
            busy = sum(seg.moving_s() + sum(pause for _, pause in seg.lights) for seg in segments)
            return engine_s - busy - sum(idles)

        left = spare()
        if left > 0:
            urban = [segment for segment in segments if not segment.highway]
            moving = sum(segment.moving_s() for segment in urban)
            if moving:
                factor = (moving + 0.8 * left) / moving
                for segment in urban:
                    segment.speed_kmh = max(18.0, segment.speed_kmh / factor)
        else:
            lit = [segment for segment in segments if segment.lights]
            rng.shuffle(lit)
            while left < 0 and lit:
                segment = lit[-1]
                left += segment.lights.pop()[1]
                if not segment.lights:
                    lit.pop()
            if left < 0:
                left += sum(idles) - 30 * len(idles)
                idles = [30] * len(idles)
            for _ in range(50):
                if left >= 0:
                    break
                moving = sum(segment.moving_s() for segment in segments)
                factor = moving / max(1, moving + left) * 1.01
                for segment in segments:
                    segment.speed_kmh *= factor
                left = spare()
        left = spare()
        # Hand the rounding remainder to the idles, never taking one below 30 s.
        share, remainder = divmod(left, len(idles))
        idles = [idle + share + (1 if k < remainder else 0) for k, idle in enumerate(idles)]
        while min(idles) < 30:
            low = idles.index(min(idles))
            high = idles.index(max(idles))
            if idles[high] <= 30:
                raise AssertionError("could not fit the day's driving into its engine hours")
            idles[low] += 1
            idles[high] -= 1
        return idles

    @staticmethod
    def _drive_leg(
        builder: _PlanBuilder,
        leg: Sequence[_Segment],
        ignition_on: int,
        after: int,
        max_speed_kmh: float,
    ) -> TripPlan:
        """Drive the leg from where the builder stands (the engine already on
        since `ignition_on`), idle `after` seconds at its end: the trip."""
        departure = builder.time
        odo_start = builder.odo
        for segment in leg:
            DayPlanner._drive_segment(builder, segment)
        arrival = builder.time
        builder.still(arrival + after, leg[-1].end, ignition=True)
        return TripPlan(
            ignition_on=ignition_on,
            departure=departure,
            arrival=arrival,
            ignition_off=builder.time,
            start=leg[0].start,
            end=leg[-1].end,
            odo_start_m=odo_start,
            odo_end_m=builder.odo,
            max_speed_kmh=max_speed_kmh,
        )

    @staticmethod
    def _drive_segment(builder: _PlanBuilder, segment: _Segment) -> None:
        moving = segment.moving_s()
        (lat0, lon0), (lat1, lon1) = segment.start, segment.end
        done_s = 0
        done_fraction = 0.0
        position = segment.start
        for fraction, pause in segment.lights:
            elapsed = round(moving * fraction)
            if elapsed <= done_s or elapsed >= moving:
                # Too close to the previous light or the end: wait where we are, so the
                # day's ignition-on seconds stay exactly as planned.
                builder.still(builder.time + pause, position, ignition=True)
                continue
            point = (lat0 + (lat1 - lat0) * fraction, lon0 + (lon1 - lon0) * fraction)
            builder.move(
                builder.time + elapsed - done_s,
                position,
                point,
                segment.length_m * (fraction - done_fraction),
            )
            builder.still(builder.time + pause, point, ignition=True)
            done_s, done_fraction, position = elapsed, fraction, point
        builder.move(
            builder.time + moving - done_s,
            position,
            segment.end,
            segment.length_m * (1.0 - done_fraction),
        )
