"""A deterministic simulated eTrac fleet: the data the simulator serves, and its ground truth.

Pure Python, no HTTP. `Fleet(config)` answers, for any plate and local day, the
exact rows `/ultimasposicoesterminal` sends (quirks included), what a correct
collector should store from them (`expected_positions`), the true trips and
distance, the provider's trip summaries (`resumoviagens`) and the latest
positions (`/ultimas-posicoes`).

The model, and why it is built this way:

- Determinism: every random choice comes from `random.Random` or a splitmix64
  mix seeded from `hashlib.blake2b` of (seed, plate, day, purpose), never from
  Python's salted `hash()`. Same seed, same rows, on any machine. The plan of a
  day and its quirks use separate streams, so switching a quirk off does not
  move a single true point.
- Days: each vehicle has a depot, rest weekdays (parked all day, reporting
  every 15 min) and, on working days, one to five trips between 05:00 and 23:00
  local, so no trip crosses midnight (the long-haul profile,
  `etrack.simulator.longhaul`, has its own template: a few vehicles drive
  long stretches from their depot back to it, some working days run past
  midnight, though a trip never does; their drivers take turns by day,
  `Fleet.driver_at`). The vehicle ends each day at an
  "overnight spot" (its depot, or sometimes a spot a few km away) that is a
  pure function of (plate, day); day D starts where day D-1 ended, so positions
  are continuous across days without generating earlier days.
- Distance: the kilometres driven on day D are an integer T(D) = base(weekday)
  + d(D) - d(D-1) with a small random d. The sum telescopes, so the odometer at
  the start of any day is O(1) to compute and is exactly continuous across
  midnight. The paths are built to measure exactly T(D): the route through
  random destinations is first tuned to ~96% of T(D), then each straight
  segment (4-8 km) is bent once (a "tent") by the amount still needed, the
  bend solved on the haversine metric. Gentle bends and long segments keep
  what 60 s sampling loses small (median 0.6%, worst seen 2.5%). Engine hours
  follow the same trick: ignition-on seconds of a day are
  T(D) * seconds_per_km + allowance(weekday).
- Distances use the haversine formula with R = 6378137 m (Traccar's radius).
- Reporting: a row at every ignition change, about every 60 s (54-66 s apart)
  while the ignition is on, every 15 min while it is off. Traffic-light stops
  (15-110 s, speed 0, ignition on) sit inside trips; longer stops with the
  ignition on happen only at the ends of trips (warm-up before leaving, idling
  after arriving), so a location-based detector (stop >= 180 s) and an
  ignition-based one find the same trips. `TrueTrip.start/end` are the first
  and last movement; `ignition_on/ignition_off` bound the provider's trip.
- "Now": nothing after the fleet's now is served. A row becomes visible when
  the platform stored it (`data_gravacao`, a few seconds after the tracker
  sent it). The provider's trip summaries list only finished trips.
- No data: a day before the vehicle was installed, or after now, has no rows.
  The provider's documentation does not say how it answers that; we judge it
  answers an empty list (`"posicoes": []`, `"retorno": []` with code_header
  200), and so does this simulator by default. The contract warns that "no
  data" may also come as a business error inside HTTP 200; switch
  `QuirkConfig.no_data_error` on to get `{"erro": "Nenhum registro
  encontrado", "code_header": 404}` instead.
- Addresses are fake reverse geocoding: São Paulo street names picked by a
  ~200 m grid cell, whatever the region.
- Quirks (each a per-row rate, 0 switches it off): exact duplicate rows inside
  one answer; no-fix rows ("0"/"0"); GPS jumps (one row hundreds of km away);
  rows out of time order; empty addresses; numbers as strings with units or
  decimal commas. No-fix and jump rows are extra rows at their own timestamps,
  strictly between two true rows, never next to another extra row, so a jump is
  never the first or last row of a vehicle-day (nor next to a no-fix row) and
  never follows another jump. Besides the quirks, the formats the contract
  lists always vary by tracker: old plates served with or without hyphen,
  numbers as JSON numbers or strings, GlobalStar battery indicators (1/0),
  missing `equipamento_serial`/`data_gravacao` in history rows.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from etrack.model import InvalidPlate, canonical_plate
from etrack.simulator.config import Account, FleetConfig, QuirkConfig
from etrack.simulator.dayplan import (
    DayPlan,
    DayPlanner,
    Vehicle,
    destination,
    digest_int,
    mix,
    pick,
    seeded_rng,
    unit,
)
from etrack.simulator.longhaul import (
    CREW_OF_SLOT,
    SERVICE_SHIFT_S,
    driver_names,
    slot_of,
    weekday_totals,
)
from etrack.simulator.wire import (
    KIND_JUMP,
    KIND_NO_FIX,
    KIND_QUALITY,
    KIND_TRUE,
    STORAGE_JITTER_S,
    LocalTimes,
    Quality,
    RowState,
    encode,
    far_address,
    format_row,
    street_address,
    trip_summary,
)

__all__ = ["ExpectedPosition", "Fleet", "TrueTrip"]

_MODELS = (
    "VW Delivery 9.170", "VW Delivery 11.180", "Mercedes-Benz Accelo 1016",
    "Mercedes-Benz Sprinter 416", "Fiat Fiorino 1.4", "Fiat Strada Freedom",
    "Renault Master Furgão", "Iveco Daily 35-150", "Hyundai HR", "Ford Cargo 1119",
    "Toyota Hilux SRV", "VW Saveiro Robust", "Chevrolet S10 LS",
)  # fmt: skip
_FLEETS = ("Distribuição", "Comercial", "Manutenção", "Diretoria")
_DRIVERS = (
    "JOSÉ CARLOS DA SILVA", "ANTÔNIO PEREIRA", "MARIA APARECIDA SOUZA", "JOÃO BATISTA LIMA",
    "FRANCISCO DAS CHAGAS", "ANA PAULA OLIVEIRA", "CARLOS EDUARDO SANTOS",
    "PAULO ROBERTO ALVES", "LUCAS GABRIEL COSTA", "MARCOS VINÍCIUS RIBEIRO",
)  # fmt: skip
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _known_plate(text: str) -> str | None:
    try:
        return canonical_plate(text)
    except InvalidPlate:
        return None


# ------------------------------------------------------------ public records
@dataclass(frozen=True)
class ExpectedPosition:
    """What a correct collector stores for one distinct timestamp."""

    placa: str
    data_transmissao: datetime
    latitude: float
    longitude: float
    velocidade: float
    ignicao: bool
    odometro: float
    logradouro: str | None
    quality: Quality
    horimetro: float
    bateria: float


@dataclass(frozen=True)
class TrueTrip:
    """One trip as it truly happened.

    `start`/`end` are the first and last movement; the provider's trip summary
    runs from `ignition_on` to `ignition_off` (the ignition is on, vehicle
    still, a few minutes before leaving and after arriving). Distance is along
    the true path and equals the odometer difference.
    """

    placa: str
    start: datetime
    end: datetime
    ignition_on: datetime
    ignition_off: datetime
    start_lat: float
    start_lon: float
    end_lat: float
    end_lon: float
    distance_m: float
    max_speed_kmh: float


# -------------------------------------------------------------------- fleet
class Fleet:
    """The simulated fleet of every configured account. Thread-safe."""

    def __init__(self, config: FleetConfig | None = None) -> None:
        self.config = config or FleetConfig()
        self.tz = ZoneInfo(self.config.timezone)
        self.accounts: tuple[Account, ...] = self.config.resolved_accounts()
        self.quirks = self.config.quirks
        self.region = self.config.region
        self._vehicles: dict[str, Vehicle] = {}
        self._by_account: dict[str, list[Vehicle]] = {}
        self._build_vehicles()
        total = len(self._vehicles)
        self._planner = DayPlanner(
            self.config, self.config.plan_cache_size or max(4096, 2 * total + 512)
        )
        self._quirk_salt = digest_int(self.config.seed, "quirks")
        self._local_text = LocalTimes(self.tz).text
        # plate -> (valid from cutoff, valid until cutoff, row, row as JSON)
        self._latest_cache: dict[str, tuple[int, int, dict[str, Any], bytes]] = {}

    # ---------------------------------------------------------------- vehicles
    def _build_vehicles(self) -> None:
        seed = self.config.seed
        plate_rng = seeded_rng(seed, "plates")
        seen: set[str] = set()
        index = 0
        for account in self.accounts:
            vehicles = self._by_account.setdefault(account.user.casefold(), [])
            for _ in range(account.vehicles):
                plate = self._new_plate(plate_rng, seen)
                vehicle = self._make_vehicle(plate, account, index)
                self._vehicles[plate] = vehicle
                vehicles.append(vehicle)
                index += 1
        self._make_long_haul()

    def _make_long_haul(self) -> None:
        """Turn floor(long_haul_share * vehicles) of the fleet, ranked by a hash of
        their plates, into long-haul vehicles (etrack.simulator.longhaul). Their
        weekly templates are shifted two days apart, so any three days of a
        fleet with four of them show every violation."""
        seed = self.config.seed
        count = math.floor(self.config.long_haul_share * len(self._vehicles) + 1e-9)
        if count <= 0:
            return
        ranked = sorted(self._vehicles, key=lambda plate: digest_int(seed, plate, "long-haul"))
        base = digest_int(seed, "long-haul-shift") % 7
        names = driver_names(digest_int(seed, "driver-names"), 2 * count)
        used = {v.driver[1] for v in self._vehicles.values() if v.driver is not None}
        for rank, plate in enumerate(ranked[:count]):
            vehicle = self._vehicles[plate]
            shift = (base + 2 * rank) % 7
            spk = 48 + digest_int(seed, plate, "long-haul-spk") % 9
            weekday_km, allowance = weekday_totals(vehicle.salt, spk, shift)
            crew: list[tuple[str, str]] = []
            for member in range(2):
                number = digest_int(seed, plate, "crew", member) % 10**11
                while f"{number:011d}" in used:
                    number = (number + 1) % 10**11
                used.add(f"{number:011d}")
                crew.append((names[2 * rank + member], f"{number:011d}"))
            changed = replace(
                vehicle,
                driver=None,
                rest_weekdays=frozenset(
                    weekday for weekday in range(7) if weekday_km[weekday] == 0
                ),
                weekday_km=weekday_km,
                seconds_per_km=spk,
                weekday_allowance_s=allowance,
                long_haul_shift=shift,
                crew=tuple(crew),
            )
            self._vehicles[plate] = changed
            vehicles = self._by_account[vehicle.account_user.casefold()]
            vehicles[vehicles.index(vehicle)] = changed

    def driver_at(self, plate: str, moment: datetime) -> tuple[str, str] | None:
        """(condutor_nome, condutor_identificacao) of the trip whose ignition went on
        at `moment`: a vehicle's fixed driver, or for a long-haul vehicle the crew
        member of the service day (the local day of moment - 4 h); None: no driver."""
        return self._driver(self.vehicle(plate), int(moment.timestamp()))

    def _driver(self, vehicle: Vehicle, moment: int) -> tuple[str, str] | None:
        if vehicle.long_haul_shift is None:
            return vehicle.driver
        service_day = datetime.fromtimestamp(moment - SERVICE_SHIFT_S, self.tz).date()
        return vehicle.crew[CREW_OF_SLOT[slot_of(vehicle.long_haul_shift, service_day)]]

    @staticmethod
    def _new_plate(rng: random.Random, seen: set[str]) -> str:
        while True:
            letters = "".join(rng.choice(_LETTERS) for _ in range(3))
            if rng.random() < 0.5:
                plate = (
                    f"{letters}{rng.randrange(10)}{rng.choice(_LETTERS)}{rng.randrange(100):02d}"
                )
            else:
                plate = f"{letters}{rng.randrange(10000):04d}"
            if plate not in seen:
                seen.add(plate)
                return plate

    def _make_vehicle(self, plate: str, account: Account, index: int) -> Vehicle:
        rng = seeded_rng(self.config.seed, plate, "vehicle")
        region = self.region
        lat_margin = (region.lat_max - region.lat_min) * 0.15
        lon_margin = (region.lon_max - region.lon_min) * 0.15
        depot = (
            rng.uniform(region.lat_min + lat_margin, region.lat_max - lat_margin),
            rng.uniform(region.lon_min + lon_margin, region.lon_max - lon_margin),
        )
        roll = rng.random()
        rest = frozenset({6}) if roll < 0.6 else frozenset({5, 6}) if roll < 0.85 else frozenset()
        weekday_km = tuple(0 if day in rest else rng.randint(55, 200) for day in range(7))
        allowance = tuple(0 if day in rest else rng.randint(600, 1800) for day in range(7))
        globalstar = rng.random() < 0.15
        serial = (
            f"GS-0-{rng.randrange(10**7):07d}" if globalstar else f"ST{rng.randrange(10**8):08d}"
        )
        driver = None
        if rng.random() < 0.6:
            driver = (rng.choice(_DRIVERS), f"{rng.randrange(10**10):010d}")
        return Vehicle(
            placa=plate,
            account_user=account.user,
            index=index,
            descricao=f"{rng.choice(_MODELS)} - {plate[:3]}",
            frota=rng.choice(_FLEETS),
            equipamento_serial=serial,
            installed_on=self.config.history_start
            + timedelta(days=rng.randint(0, self.config.install_spread_days)),
            depot=depot,
            hyphen_mode=rng.choice((0, 1, 2)),
            numbers_as_strings=rng.random() < 0.7,
            globalstar=globalstar,
            history_has_serial=rng.random() < 0.5,
            has_can_odometer=rng.random() < 0.2,
            driver=driver,
            rest_weekdays=rest,
            weekday_km=weekday_km,
            seconds_per_km=rng.randint(95, 120),
            weekday_allowance_s=allowance,
            odometer_base_m=rng.randint(5_000, 300_000) * 1000,
            engine_base_s=rng.randint(200, 8000) * 3600,
            storage_delay_s=rng.randint(2, 20),
            salt=digest_int(self.config.seed, plate, "salt"),
        )

    def plates(self, account: str | Account | None = None) -> list[str]:
        """Canonical plates (upper case, no hyphen), of one account or of all."""
        if account is None:
            return list(self._vehicles)
        user = account.user if isinstance(account, Account) else account
        return [vehicle.placa for vehicle in self._by_account.get(user.casefold(), [])]

    def vehicles(self, account: str | Account | None = None) -> list[Vehicle]:
        return [self._vehicles[plate] for plate in self.plates(account)]

    def vehicle(self, plate: str) -> Vehicle:
        """The vehicle of a plate in any spelling; KeyError if unknown."""
        canonical = _known_plate(plate)
        if canonical is None or canonical not in self._vehicles:
            raise KeyError(plate)
        return self._vehicles[canonical]

    def find_vehicle(self, plate: str, account: str | Account | None = None) -> Vehicle | None:
        canonical = _known_plate(plate)
        vehicle = self._vehicles.get(canonical) if canonical else None
        if vehicle is None or account is None:
            return vehicle
        user = account.user if isinstance(account, Account) else account
        return vehicle if vehicle.account_user.casefold() == user.casefold() else None

    def account(self, user: str) -> Account | None:
        for account in self.accounts:
            if account.user.casefold() == user.casefold():
                return account
        return None

    def now(self) -> datetime:
        """The fleet's now: frozen by the config, else the real clock, in the fleet's zone."""
        if self.config.now is not None:
            return self.config.now.astimezone(self.tz)
        return datetime.now(self.tz)

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.tz).date()

    # ------------------------------------------------------------ quirk rows
    def _extras(self, vehicle: Vehicle, plan: DayPlan) -> dict[int, tuple[int, int]]:
        """No-fix and jump rows of a day: gap index -> (timestamp, kind).

        Gap k lies between true rows k and k+1. Each quirk has its own stream,
        so switching one off leaves the other's rows where they were.
        """
        if plan.extras is not None:
            return plan.extras
        quirks = self.quirks
        samples = plan.samples
        gaps = len(samples) - 1
        stream = (self.config.seed, vehicle.placa, plan.day.isoformat())
        kinds = dict.fromkeys(pick(seeded_rng(*stream, "jump"), quirks.jump_rate, gaps), KIND_JUMP)
        kinds.update(
            dict.fromkeys(
                pick(seeded_rng(*stream, "no-fix"), quirks.no_fix_rate, gaps), KIND_NO_FIX
            )
        )
        salt = vehicle.salt ^ self._quirk_salt ^ 0x71E
        extras: dict[int, tuple[int, int]] = {}
        for gap, kind in kinds.items():
            width = samples[gap + 1] - samples[gap] - 1
            # Keep extras apart: a true row always sits between two extra rows.
            if width < 3 or gap - 1 in kinds or gap + 1 in kinds:
                continue
            extras[gap] = (samples[gap] + 1 + int(unit(salt, samples[gap]) * width), kind)
        plan.extras = extras
        return extras

    def _duplicates(self, vehicle: Vehicle, plan: DayPlan) -> frozenset[int]:
        """Indices of the true rows served twice."""
        if plan.duplicates is None:
            stream = seeded_rng(self.config.seed, vehicle.placa, plan.day.isoformat(), "duplicates")
            plan.duplicates = frozenset(pick(stream, self.quirks.duplicate_rate, len(plan.samples)))
        return plan.duplicates

    def _cutoff(self, vehicle: Vehicle, now: datetime | None) -> int:
        """Latest data_transmissao the platform has stored by `now`."""
        return self._epoch(now) - vehicle.storage_delay_s - STORAGE_JITTER_S

    def _entries(self, vehicle: Vehicle, plan: DayPlan, cutoff: int) -> list[tuple[int, int, int]]:
        """(timestamp, kind, true row index or -1) of the day's distinct rows visible at
        `cutoff`, in time order."""
        samples = plan.samples
        visible = bisect_right(samples, cutoff)
        extras = self._extras(vehicle, plan)
        entries: list[tuple[int, int, int]] = []
        for index in range(visible):
            entries.append((samples[index], KIND_TRUE, index))
            extra = extras.get(index)
            if extra is not None and extra[0] <= cutoff:
                # A jump is shown only once the true row after it is: never the last row.
                if extra[1] == KIND_JUMP and index + 1 >= visible:
                    continue
                entries.append((extra[0], extra[1], -1))
        return entries

    # ----------------------------------------------------------------- rows
    def _row_state(self, vehicle: Vehicle, plan: DayPlan, moment: int, kind: int) -> RowState:
        """The values of one row, as served (rounded), and its two per-row hashes."""
        lat, lon, speed, ignition, odo_m, engine_s = plan.state(moment)
        # One hash per row for the tracker's noise, one for the quirks: the quirk
        # stream never moves the true values, and bit slices spare further hashing.
        true_hash = mix(vehicle.salt ^ mix(moment))
        quirk_hash = mix(true_hash ^ self._quirk_salt)
        if speed > 0:
            noise = (true_hash & 0xFFFF) * (6 / 65536) - 3
            reported_speed = max(1, round(speed + noise))
        else:
            reported_speed = 0
        draw = ((true_hash >> 16) & 0xFFFF) / 65536
        if vehicle.globalstar:
            battery = 0.0 if draw < 0.02 else 1.0
        elif ignition:
            battery = round(13.6 + draw * 0.7, 1)
        else:
            battery = round(12.2 + draw * 0.6, 1)
        if kind == KIND_NO_FIX:
            lat = lon = 0.0
            reported_speed = 0
            address = ""
        elif kind == KIND_JUMP:
            jump_hash = mix(quirk_hash ^ 0x1A3B)
            bearing = (jump_hash & 0xFFFFFFFF) / 4294967296 * 2 * math.pi
            distance = 250_000 + (jump_hash >> 32) / 4294967296 * 550_000
            lat, lon = destination(lat, lon, bearing, distance)
            address = far_address(jump_hash)
        elif ((quirk_hash >> 24) & 0xFFFFFF) / 16777216 < self.quirks.empty_address_rate:
            address = ""
        else:
            address = street_address(lat, lon)
        return (
            round(lat, 6),
            round(lon, 6),
            reported_speed,
            ignition,
            round(odo_m / 1000, 2),
            round(engine_s / 3600, 2),
            battery,
            address,
            true_hash,
            quirk_hash,
        )

    def _format_row(
        self,
        vehicle: Vehicle,
        plan: DayPlan,
        moment: int,
        kind: int,
        *,
        full: bool,
    ) -> dict[str, Any]:
        state = self._row_state(vehicle, plan, moment, kind)
        units = (state[9] & 0xFFFFFF) / 16777216 < self.quirks.unit_strings_rate
        return format_row(
            vehicle, state, moment, kind, full=full, units=units, local_text=self._local_text
        )

    def _served(
        self, vehicle: Vehicle, day: date, now: datetime | None
    ) -> list[tuple[int, dict[str, Any]]]:
        """(timestamp, row) as `/ultimasposicoesterminal` sends them for one whole day."""
        plan = self._planner.plan(vehicle, day)
        cutoff = self._cutoff(vehicle, now)
        quirks = self.quirks
        duplicates = self._duplicates(vehicle, plan)
        served: list[tuple[int, dict[str, Any]]] = []
        for moment, kind, index in self._entries(vehicle, plan, cutoff):
            row = self._format_row(vehicle, plan, moment, kind, full=False)
            served.append((moment, row))
            if index in duplicates:
                served.append((moment, dict(row)))
        last = len(served) - 1
        if last > 0:
            rng = seeded_rng(self.config.seed, vehicle.placa, day.isoformat(), "order", len(served))
            for index in pick(rng, quirks.out_of_order_rate, last):
                other = min(last, index + rng.randint(1, 6))
                served[index], served[other] = served[other], served[index]
        return served

    # ------------------------------------------------------------- public API
    def history_rows(
        self, plate: str, day: date, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Exactly the rows `/ultimasposicoesterminal` serves for one plate and local day."""
        return [row for _, row in self._served(self.vehicle(plate), day, now)]

    def window_rows(
        self, plate: str, start: datetime, end: datetime, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Rows served for a `data_inicio`/`data_fim` window (both ends included)."""
        vehicle = self.vehicle(plate)
        first = int(start.timestamp())
        last = int(end.timestamp())
        rows: list[dict[str, Any]] = []
        for day in self.days_between(start, end):
            rows.extend(
                row for moment, row in self._served(vehicle, day, now) if first <= moment <= last
            )
        return rows

    def days_between(self, start: datetime, end: datetime) -> list[date]:
        """Local days that [start, end] touches."""
        first = self.local_day(start)
        last = self.local_day(end)
        return [first + timedelta(days=k) for k in range((last - first).days + 1)]

    def expected_positions(
        self, plate: str, day: date, now: datetime | None = None
    ) -> list[ExpectedPosition]:
        """One record per distinct timestamp served for the day, in time order."""
        vehicle = self.vehicle(plate)
        plan = self._planner.plan(vehicle, day)
        result: list[ExpectedPosition] = []
        for moment, kind, _ in self._entries(vehicle, plan, self._cutoff(vehicle, now)):
            lat, lon, speed, ignition, odo_km, engine_h, battery, address, _, _ = self._row_state(
                vehicle, plan, moment, kind
            )
            result.append(
                ExpectedPosition(
                    placa=vehicle.placa,
                    data_transmissao=datetime.fromtimestamp(moment, self.tz),
                    latitude=lat,
                    longitude=lon,
                    velocidade=float(speed),
                    ignicao=ignition,
                    odometro=odo_km,
                    logradouro=address or None,
                    quality=KIND_QUALITY[kind],
                    horimetro=engine_h,
                    bateria=battery,
                )
            )
        return result

    def true_trips(self, plate: str, day: date, now: datetime | None = None) -> list[TrueTrip]:
        """Trips of the day whose ignition was off again by now."""
        vehicle = self.vehicle(plate)
        plan = self._planner.plan(vehicle, day)
        cutoff = self._cutoff(vehicle, now)
        return [
            TrueTrip(
                placa=vehicle.placa,
                start=datetime.fromtimestamp(trip.departure, self.tz),
                end=datetime.fromtimestamp(trip.arrival, self.tz),
                ignition_on=datetime.fromtimestamp(trip.ignition_on, self.tz),
                ignition_off=datetime.fromtimestamp(trip.ignition_off, self.tz),
                start_lat=trip.start[0],
                start_lon=trip.start[1],
                end_lat=trip.end[0],
                end_lon=trip.end[1],
                distance_m=trip.odo_end_m - trip.odo_start_m,
                max_speed_kmh=trip.max_speed_kmh,
            )
            for trip in plan.trips
            if trip.ignition_off <= cutoff
        ]

    def true_distance_m(self, plate: str, day: date, now: datetime | None = None) -> float:
        """Metres driven in the local day up to its last visible row (all of it once over)."""
        vehicle = self.vehicle(plate)
        plan = self._planner.plan(vehicle, day)
        samples = plan.samples
        visible = bisect_right(samples, self._cutoff(vehicle, now))
        if visible == 0:
            return 0.0
        return plan.state(samples[visible - 1])[4] - plan.odo_start_m

    def day_total_km(self, plate: str, day: date) -> int:
        """Kilometres the vehicle drives in the whole local day (ignoring now)."""
        return self._planner.day_km(self.vehicle(plate), day)

    def trip_summaries(
        self, plate: str, day: date, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """What `/resumoviagens` answers in `retorno` for one plate and local day."""
        vehicle = self.vehicle(plate)
        account = self.account(vehicle.account_user)
        assert account is not None
        plan = self._planner.plan(vehicle, day)
        cutoff = self._cutoff(vehicle, now)
        return [
            trip_summary(
                account, vehicle, trip, self._local_text, self._driver(vehicle, trip.ignition_on)
            )
            for trip in plan.trips
            if trip.ignition_off <= cutoff
        ]

    def latest_row(self, plate: str, now: datetime | None = None) -> dict[str, Any] | None:
        """The VEHICLE record `/ultimaposicao` serves; None before the vehicle's first row."""
        found = self._latest(self.vehicle(plate), self._epoch(now))
        return None if found is None else dict(found[0])

    def latest_rows(
        self, now: datetime | None = None, account: str | Account | None = None
    ) -> list[dict[str, Any]]:
        """What `/ultimas-posicoes` serves: the latest row of every vehicle (of one account)."""
        epoch = self._epoch(now)
        rows = []
        for vehicle in self.vehicles(account):
            found = self._latest(vehicle, epoch)
            if found is not None:
                rows.append(dict(found[0]))  # a copy: the cached row must stay as served
        return rows

    def latest_rows_json(
        self, now: datetime | None = None, account: str | Account | None = None
    ) -> bytes:
        """`latest_rows()` as a compact UTF-8 JSON array, joined from cached encodings."""
        epoch = self._epoch(now)
        parts = []
        for vehicle in self.vehicles(account):
            found = self._latest(vehicle, epoch)
            if found is not None:
                parts.append(found[1])
        return b"[" + b",".join(parts) + b"]"

    def _epoch(self, now: datetime | None) -> int:
        return int((now if now is not None else self.now()).timestamp())

    def _latest(self, vehicle: Vehicle, epoch: int) -> tuple[dict[str, Any], bytes] | None:
        """The latest row and its JSON, cached until the vehicle's next row shows up."""
        cutoff = epoch - vehicle.storage_delay_s - STORAGE_JITTER_S
        cached = self._latest_cache.get(vehicle.placa)
        if cached is not None and cached[0] <= cutoff < cached[1]:
            return cached[2], cached[3]
        found = self._find_latest(vehicle, cutoff)
        if found is None:
            return None
        row, valid_from, valid_until = found
        encoded = encode(row)
        self._latest_cache[vehicle.placa] = (valid_from, valid_until, row, encoded)
        return row, encoded

    def _find_latest(self, vehicle: Vehicle, cutoff: int) -> tuple[dict[str, Any], int, int] | None:
        """(row, first cutoff it is the latest at, first cutoff it no longer is)."""
        day = datetime.fromtimestamp(cutoff, self.tz).date()
        following: int | None = None
        for _ in range(2):
            if day < vehicle.installed_on:
                return None
            plan = self._planner.plan(vehicle, day)
            samples = plan.samples
            index = bisect_right(samples, cutoff) - 1
            if index >= 0:
                moment, kind = samples[index], KIND_TRUE
                if index + 1 < len(samples):
                    next_row = samples[index + 1]
                else:
                    # Tomorrow's first row is unknown without planning tomorrow: recheck at midnight.
                    next_row = following if following is not None else plan.day_end
                extra = self._extras(vehicle, plan).get(index)
                # A jump after the last true row is not shown yet (see _entries).
                if extra is not None and extra[1] == KIND_NO_FIX:
                    if extra[0] <= cutoff:
                        moment, kind = extra
                    else:
                        next_row = extra[0]
                return self._format_row(vehicle, plan, moment, kind, full=True), moment, next_row
            following = samples[0] if samples else plan.day_end
            day -= timedelta(days=1)
        return None

    def warm(self, day: date | None = None) -> None:
        """Plan `day` (default today) for every vehicle, so the first latest-positions
        call of a large fleet is as fast as the next ones."""
        day = day or self.local_day(self.now())
        for vehicle in self._vehicles.values():
            self._extras(vehicle, self._planner.plan(vehicle, day))

    def with_quirks(self, quirks: QuirkConfig) -> Fleet:
        """The same fleet with other quirks (the true data is identical)."""
        return Fleet(replace(self.config, quirks=quirks))
