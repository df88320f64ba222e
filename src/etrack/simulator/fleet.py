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
  local, so no trip crosses midnight. The vehicle ends each day at an
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

import hashlib
import itertools
import json
import math
import random
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_USER",
    "EARTH_RADIUS_M",
    "Account",
    "ExpectedPosition",
    "Fleet",
    "FleetConfig",
    "QuirkConfig",
    "Region",
    "TrueTrip",
    "Vehicle",
    "canonical_plate",
    "format_local",
    "haversine_m",
    "parse_local",
]

DEFAULT_USER = "demo@etrack.local"
DEFAULT_KEY = "demo-key"  # a fake credential of the simulator, not a secret
EARTH_RADIUS_M = 6_378_137.0

Quality = Literal["valid", "no_fix", "jump"]

_PARKED_INTERVAL_S = 900
_MOVING_INTERVAL_S = 60
_MOVING_JITTER_S = 3
_FIRST_DEPARTURE_S = 5 * 3600
_LAST_ARRIVAL_S = 23 * 3600
_M64 = (1 << 64) - 1
_STORAGE_JITTER_S = 3  # data_gravacao = data_transmissao + vehicle's delay + 0..3 s
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)

_KIND_TRUE = 0
_KIND_NO_FIX = 1
_KIND_JUMP = 2
_KIND_QUALITY: dict[int, Quality] = {
    _KIND_TRUE: "valid",
    _KIND_NO_FIX: "no_fix",
    _KIND_JUMP: "jump",
}

# lat, lon, speed, ignition, odometer km, engine hours, battery, address, true hash, quirk hash
_RowState = tuple[float, float, int, bool, float, float, float, str, int, int]


# --------------------------------------------------------------------- config
@dataclass(frozen=True)
class Region:
    """Where vehicles drive (degrees). The default is greater São Paulo."""

    lat_min: float = -23.9
    lat_max: float = -23.3
    lon_min: float = -46.9
    lon_max: float = -46.3

    def __post_init__(self) -> None:
        if not (-80 <= self.lat_min < self.lat_max <= 80):
            raise ValueError(f"region latitudes must satisfy -80 <= min < max <= 80: {self}")
        if not (-180 <= self.lon_min < self.lon_max <= 180):
            raise ValueError(f"region longitudes must satisfy -180 <= min < max <= 180: {self}")

    @classmethod
    def parse(cls, text: str) -> Region:
        """'LAT_MIN,LAT_MAX,LON_MIN,LON_MAX' (degrees)."""
        try:
            lat_min, lat_max, lon_min, lon_max = (float(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"expected LAT_MIN,LAT_MAX,LON_MIN,LON_MAX, got {text!r}") from None
        return cls(lat_min, lat_max, lon_min, lon_max)


@dataclass(frozen=True)
class Account:
    """One eTrac account: Basic-auth user and key, and the size of its fleet.

    `rate_limit_per_s` (with `rate_limit_burst`) is this account's own API rate
    limit; None means the simulator's fault setting applies (no limit by default).
    """

    user: str
    key: str
    vehicles: int = 10
    cliente: str = "DEMO TRANSPORTES LTDA"
    cliente_fantasia: str = "Demo Transportes"
    rate_limit_per_s: float | None = None
    rate_limit_burst: int | None = None

    def __post_init__(self) -> None:
        if not self.user or not self.key:
            raise ValueError("an account needs a user and a key")
        if self.vehicles < 0:
            raise ValueError(f"vehicles must be >= 0, got {self.vehicles}")
        if self.rate_limit_per_s is not None and self.rate_limit_per_s <= 0:
            raise ValueError(f"rate_limit_per_s must be > 0, got {self.rate_limit_per_s}")
        if self.rate_limit_burst is not None and self.rate_limit_burst < 1:
            raise ValueError(f"rate_limit_burst must be >= 1, got {self.rate_limit_burst}")

    @classmethod
    def parse(cls, text: str, index: int = 1) -> Account:
        """'EMAIL:APIKEY:VEHICLES[:RATE_PER_S]', as the CLI's --account takes it."""
        parts = text.split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"expected EMAIL:APIKEY:VEHICLES[:RATE_PER_S], got {text!r}")
        try:
            vehicles = int(parts[2])
            rate = float(parts[3]) if len(parts) == 4 else None
        except ValueError:
            raise ValueError(f"expected EMAIL:APIKEY:VEHICLES[:RATE_PER_S], got {text!r}") from None
        return cls(
            user=parts[0],
            key=parts[1],
            vehicles=vehicles,
            cliente=f"CLIENTE {index} LTDA",
            cliente_fantasia=f"Cliente {index}",
            rate_limit_per_s=rate,
        )


@dataclass(frozen=True)
class QuirkConfig:
    """Data quirks of real eTrac answers; each rate is per row, 0 switches it off."""

    duplicate_rate: float = 0.01
    no_fix_rate: float = 0.005
    jump_rate: float = 0.003
    out_of_order_rate: float = 0.01
    empty_address_rate: float = 0.03
    unit_strings_rate: float = 0.05
    no_data_error: bool = False

    def __post_init__(self) -> None:
        for name in (
            "duplicate_rate",
            "no_fix_rate",
            "jump_rate",
            "out_of_order_rate",
            "empty_address_rate",
            "unit_strings_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.no_fix_rate + self.jump_rate > 0.5:
            raise ValueError("no_fix_rate + jump_rate must stay <= 0.5 (extra rows need gaps)")

    @classmethod
    def none(cls) -> QuirkConfig:
        """Clean data: every quirk off."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)


@dataclass(frozen=True)
class FleetConfig:
    """Everything the fleet's data depends on.

    `accounts=None` means one default account (`DEFAULT_USER`/`DEFAULT_KEY`)
    with `vehicles` vehicles. `now=None` follows the real clock; a naive `now`
    is a local time of `timezone`.
    """

    seed: int = 42
    vehicles: int = 10
    accounts: tuple[Account, ...] | None = None
    timezone: str = "America/Sao_Paulo"
    region: Region = field(default_factory=Region)
    now: datetime | None = None
    quirks: QuirkConfig = field(default_factory=QuirkConfig)
    history_start: date = date(2024, 1, 1)
    install_spread_days: int = 180
    plan_cache_size: int | None = None

    def __post_init__(self) -> None:
        if self.vehicles < 0:
            raise ValueError(f"vehicles must be >= 0, got {self.vehicles}")
        if self.accounts is not None:
            accounts = tuple(self.accounts)
            object.__setattr__(self, "accounts", accounts)
            users = [account.user.casefold() for account in accounts]
            if len(set(users)) != len(users):
                raise ValueError("account users must be distinct")
            if not accounts:
                raise ValueError("accounts, when given, must name at least one account")
        zone = ZoneInfo(self.timezone)  # raises on unknown zones
        if self.now is not None and self.now.tzinfo is None:
            object.__setattr__(self, "now", self.now.replace(tzinfo=zone))
        if self.install_spread_days < 0:
            raise ValueError("install_spread_days must be >= 0")

    def resolved_accounts(self) -> tuple[Account, ...]:
        if self.accounts is not None:
            return self.accounts
        return (Account(user=DEFAULT_USER, key=DEFAULT_KEY, vehicles=self.vehicles),)


# ------------------------------------------------------------ public records
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


# ------------------------------------------------------------------ helpers
def canonical_plate(text: str) -> str | None:
    """'abc-1234' -> 'ABC1234'; None when it is not a Brazilian plate."""
    plate = text.replace("-", "").replace(" ", "").upper()
    if (
        len(plate) == 7
        and plate[:3].isascii()
        and plate[:3].isalpha()
        and plate[3].isdigit()
        and (plate[4].isdigit() or (plate[4].isascii() and plate[4].isalpha()))
        and plate[5:].isdigit()
    ):
        return plate
    return None


def format_local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M:%S")


def parse_local(text: str, tz: ZoneInfo) -> datetime:
    """'DD/MM/YYYY HH:MM:SS' local time -> aware datetime (ValueError if malformed)."""
    return datetime.strptime(text, "%d/%m/%Y %H:%M:%S").replace(tzinfo=tz)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _destination(lat: float, lon: float, bearing: float, distance_m: float) -> tuple[float, float]:
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


def _digest_int(*parts: object) -> int:
    text = "|".join(str(part) for part in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def _rng(*parts: object) -> random.Random:
    # Simulated data, not security: a seeded Mersenne Twister is what we want.
    return random.Random(_digest_int(*parts))  # noqa: S311


def _pick(rng: random.Random, rate: float, count: int) -> list[int]:
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


def _mix(value: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread integer hash."""
    value = (value + 0x9E3779B97F4A7C15) & _M64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _M64
    return value ^ (value >> 31)


def _unit(salt: int, key: int) -> float:
    """A uniform number in [0, 1) that depends only on (salt, key)."""
    return _mix(salt ^ _mix(key)) / 18446744073709551616.0


_STREETS = (
    "Rua Augusta", "Avenida Paulista", "Rua da Consolação", "Avenida Rebouças",
    "Rua Vergueiro", "Avenida Brigadeiro Faria Lima", "Rua Teodoro Sampaio",
    "Avenida Santo Amaro", "Rua Domingos de Morais", "Avenida Ibirapuera",
    "Rua Cardeal Arcoverde", "Avenida Sumaré", "Rua Clélia", "Avenida Celso Garcia",
    "Rua Voluntários da Pátria", "Avenida Cruzeiro do Sul", "Rua Tuiuti",
    "Avenida Aricanduva", "Rua Barão de Itapetininga", "Avenida Jabaquara",
    "Avenida do Estado", "Marginal Tietê", "Marginal Pinheiros", "Rua Oscar Freire",
    "Avenida Interlagos", "Estrada de Itapecerica", "Avenida Raimundo Pereira de Magalhães",
    "Rodovia Anhanguera", "Rodovia dos Bandeirantes", "Rodovia Presidente Dutra",
    "Rodovia Régis Bittencourt", "Rodovia Raposo Tavares",
)  # fmt: skip
_BAIRROS = (
    "Centro", "Bela Vista", "Pinheiros", "Vila Mariana", "Mooca", "Santana", "Lapa",
    "Tatuapé", "Ipiranga", "Butantã", "Santo Amaro", "Penha", "Jabaquara", "Perdizes",
    "Vila Prudente", "Casa Verde", "Itaquera", "Campo Limpo", "Freguesia do Ó", "Brás",
)  # fmt: skip
_CITIES = (
    "São Paulo - SP", "São Paulo - SP", "São Paulo - SP", "Guarulhos - SP", "Osasco - SP",
    "Santo André - SP", "São Bernardo do Campo - SP", "Diadema - SP", "Barueri - SP",
    "Taboão da Serra - SP",
)  # fmt: skip
_MODELS = (
    "VW Delivery 9.170", "VW Delivery 11.180", "Mercedes-Benz Accelo 1016",
    "Mercedes-Benz Sprinter 416", "Fiat Fiorino 1.4", "Fiat Strada Freedom",
    "Renault Master Furgão", "Iveco Daily 35-150", "Hyundai HR", "Ford Cargo 1119",
    "Toyota Hilux SRV", "VW Saveiro Robust", "Chevrolet S10 LS",
)  # fmt: skip
_FLEETS = ("Distribuição", "Comercial", "Manutenção", "Diretoria")
_DRIVERS = (
    "JOSE CARLOS DA SILVA", "ANTONIO PEREIRA", "MARIA APARECIDA SOUZA", "JOAO BATISTA LIMA",
    "FRANCISCO DAS CHAGAS", "ANA PAULA OLIVEIRA", "CARLOS EDUARDO SANTOS",
    "PAULO ROBERTO ALVES", "LUCAS GABRIEL COSTA", "MARCOS VINICIUS RIBEIRO",
)  # fmt: skip
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


_ADDRESSES: dict[int, str] = {}


def _address(lat: float, lon: float) -> str:
    # Reverse geocoding by a ~200 m grid cell: stable while parked, changing while driving.
    key = (math.floor(lat * 500) & 0xFFFFFFFF) << 32 | (math.floor(lon * 500) & 0xFFFFFFFF)
    address = _ADDRESSES.get(key)
    if address is None:
        if len(_ADDRESSES) > 300_000:
            _ADDRESSES.clear()
        address = _ADDRESSES[key] = _make_address(lat, lon, key)
    return address


def _make_address(lat: float, lon: float, key: int) -> str:
    cell = _mix(key)
    street = _STREETS[cell % len(_STREETS)]
    number = 10 + (cell >> 8) % 2990
    bairro = _BAIRROS[(cell >> 20) % len(_BAIRROS)]
    district = _mix((math.floor(lat * 20) & 0xFFFFFFFF) << 32 | (math.floor(lon * 20) & 0xFFFFFFFF))
    city = _CITIES[district % len(_CITIES)]
    return f"{street}, {number} - {bairro}, {city}"


def _far_address(cell: int) -> str:
    return f"Rodovia BR-{101 + cell % 300}, km {(cell >> 10) % 700}"


def _reflect(value: float, low: float, high: float) -> float:
    span = high - low
    folded = (value - low) % (2 * span)
    return low + (folded if folded <= span else 2 * span - folded)


def _clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


# -------------------------------------------------------------- day plans
_STRIDE = 7  # piece data: lat0, lon0, lat1, lon1, odo0_m, odo1_m, speed_kmh


@dataclass(frozen=True)
class _TripPlan:
    ignition_on: int
    departure: int
    arrival: int
    ignition_off: int
    start: tuple[float, float]
    end: tuple[float, float]
    odo_start_m: float
    odo_end_m: float
    max_speed_kmh: float


class _DayPlan:
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
        self.trips: tuple[_TripPlan, ...] = ()
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
    def __init__(self, plan: _DayPlan, engine_start_s: float) -> None:
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
        self._cache_size = self.config.plan_cache_size or max(4096, 2 * total + 512)
        self._plans: OrderedDict[tuple[str, date], _DayPlan] = OrderedDict()
        self._lock = threading.Lock()
        self._quirk_salt = _digest_int(self.config.seed, "quirks")
        self._hour_prefixes: dict[int, str] = {}
        # plate -> (valid from cutoff, valid until cutoff, row, row as JSON)
        self._latest_cache: dict[str, tuple[int, int, dict[str, Any], bytes]] = {}

    # ---------------------------------------------------------------- vehicles
    def _build_vehicles(self) -> None:
        seed = self.config.seed
        plate_rng = _rng(seed, "plates")
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
        rng = _rng(self.config.seed, plate, "vehicle")
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
            salt=_digest_int(self.config.seed, plate, "salt"),
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
        canonical = canonical_plate(plate)
        if canonical is None or canonical not in self._vehicles:
            raise KeyError(plate)
        return self._vehicles[canonical]

    def find_vehicle(self, plate: str, account: str | Account | None = None) -> Vehicle | None:
        canonical = canonical_plate(plate)
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

    # ----------------------------------------------------- closed-form totals
    def _rest(self, vehicle: Vehicle, day: date) -> bool:
        return day.weekday() in vehicle.rest_weekdays

    def _delta_km(self, vehicle: Vehicle, day: date) -> int:
        if (
            day < vehicle.installed_on
            or self._rest(vehicle, day)
            or self._rest(vehicle, day + timedelta(days=1))
        ):
            return 0
        return int(_unit(vehicle.salt ^ 0xD17A, day.toordinal()) * 26)

    def _day_km(self, vehicle: Vehicle, day: date) -> int:
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
            day < vehicle.installed_on
            or self._rest(vehicle, day)
            or self._rest(vehicle, day + timedelta(days=1))
            or _unit(vehicle.salt ^ 0xA3A7, day.toordinal()) >= 0.25
        ):
            return vehicle.depot
        bearing = _unit(vehicle.salt ^ 0xBEA7, day.toordinal()) * 2 * math.pi
        distance = 3000 + _unit(vehicle.salt ^ 0xD157, day.toordinal()) * 9000
        return self._clamp(_destination(*vehicle.depot, bearing, distance))

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
    def _plan(self, vehicle: Vehicle, day: date) -> _DayPlan:
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
    def _build_plan(self, vehicle: Vehicle, day: date) -> _DayPlan:
        day_start, day_end = self._day_bounds(day)
        plan = _DayPlan(day, day_start, day_end, float(vehicle.odometer_base_m))
        if day < vehicle.installed_on:
            return plan
        plan.odo_start_m = float(vehicle.odometer_base_m + 1000 * self._km_before(vehicle, day))
        builder = _PlanBuilder(plan, float(self._engine_before_s(vehicle, day)))
        rng = _rng(self.config.seed, vehicle.placa, day.isoformat(), "plan")
        phase = rng.randrange(_PARKED_INTERVAL_S)
        start = self._spot(vehicle, day - timedelta(days=1))
        end = self._spot(vehicle, day)
        total_km = self._day_km(vehicle, day)
        if total_km == 0:
            builder.still(day_end, start, ignition=False)
            builder.finish()
            plan.samples = self._parked_samples(day_start + phase, day_end)
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
        trip_plans: list[_TripPlan] = []
        for number, leg in enumerate(legs):
            here = leg[0].start
            warm_up, after = idles[2 * number], idles[2 * number + 1]
            builder.still(ignition_on + warm_up, here, ignition=True)
            departure = builder.time
            odo_start = builder.odo
            for segment in leg:
                self._drive_segment(builder, segment)
            arrival = builder.time
            there = leg[-1].end
            builder.still(arrival + after, there, ignition=True)
            ignition_off = builder.time
            trip_plans.append(
                _TripPlan(
                    ignition_on=ignition_on,
                    departure=departure,
                    arrival=arrival,
                    ignition_off=ignition_off,
                    start=here,
                    end=there,
                    odo_start_m=odo_start,
                    odo_end_m=builder.odo,
                    max_speed_kmh=max(segment.speed_kmh for segment in leg),
                )
            )
            samples.extend(self._moving_samples(vehicle, ignition_on, ignition_off))
            next_on = ignition_off + dwells[number] if number < trips - 1 else day_end
            samples.extend(self._parked_samples(ignition_off, next_on))
            builder.still(next_on, there, ignition=False)
            ignition_on = next_on
        builder.finish()
        plan.trips = tuple(trip_plans)
        plan.samples = samples
        return plan

    @staticmethod
    def _parked_samples(first: int, until: int) -> array[int]:
        return array("q", range(first, until, _PARKED_INTERVAL_S))

    @staticmethod
    def _moving_samples(vehicle: Vehicle, start: int, until: int) -> array[int]:
        samples = array("q", [start])
        step = 1
        salt = vehicle.salt ^ 0x717E
        while True:
            jitter = int(_unit(salt, start + step) * (2 * _MOVING_JITTER_S + 1)) - _MOVING_JITTER_S
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

    # ------------------------------------------------------------ quirk rows
    def _extras(self, vehicle: Vehicle, plan: _DayPlan) -> dict[int, tuple[int, int]]:
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
        kinds = dict.fromkeys(_pick(_rng(*stream, "jump"), quirks.jump_rate, gaps), _KIND_JUMP)
        kinds.update(
            dict.fromkeys(_pick(_rng(*stream, "no-fix"), quirks.no_fix_rate, gaps), _KIND_NO_FIX)
        )
        salt = vehicle.salt ^ self._quirk_salt ^ 0x71E
        extras: dict[int, tuple[int, int]] = {}
        for gap, kind in kinds.items():
            width = samples[gap + 1] - samples[gap] - 1
            # Keep extras apart: a true row always sits between two extra rows.
            if width < 3 or gap - 1 in kinds or gap + 1 in kinds:
                continue
            extras[gap] = (samples[gap] + 1 + int(_unit(salt, samples[gap]) * width), kind)
        plan.extras = extras
        return extras

    def _duplicates(self, vehicle: Vehicle, plan: _DayPlan) -> frozenset[int]:
        """Indices of the true rows served twice."""
        if plan.duplicates is None:
            stream = _rng(self.config.seed, vehicle.placa, plan.day.isoformat(), "duplicates")
            plan.duplicates = frozenset(
                _pick(stream, self.quirks.duplicate_rate, len(plan.samples))
            )
        return plan.duplicates

    def _cutoff(self, vehicle: Vehicle, now: datetime | None) -> int:
        """Latest data_transmissao the platform has stored by `now`."""
        return self._epoch(now) - vehicle.storage_delay_s - _STORAGE_JITTER_S

    def _entries(self, vehicle: Vehicle, plan: _DayPlan, cutoff: int) -> list[tuple[int, int, int]]:
        """(timestamp, kind, true row index or -1) of the day's distinct rows visible at
        `cutoff`, in time order."""
        samples = plan.samples
        visible = bisect_right(samples, cutoff)
        extras = self._extras(vehicle, plan)
        entries: list[tuple[int, int, int]] = []
        for index in range(visible):
            entries.append((samples[index], _KIND_TRUE, index))
            extra = extras.get(index)
            if extra is not None and extra[0] <= cutoff:
                # A jump is shown only once the true row after it is: never the last row.
                if extra[1] == _KIND_JUMP and index + 1 >= visible:
                    continue
                entries.append((extra[0], extra[1], -1))
        return entries

    # ----------------------------------------------------------------- rows
    def _row_state(self, vehicle: Vehicle, plan: _DayPlan, moment: int, kind: int) -> _RowState:
        """The values of one row, as served (rounded), and its two per-row hashes."""
        lat, lon, speed, ignition, odo_m, engine_s = plan.state(moment)
        # One hash per row for the tracker's noise, one for the quirks: the quirk
        # stream never moves the true values, and bit slices spare further hashing.
        true_hash = _mix(vehicle.salt ^ _mix(moment))
        quirk_hash = _mix(true_hash ^ self._quirk_salt)
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
        if kind == _KIND_NO_FIX:
            lat = lon = 0.0
            reported_speed = 0
            address = ""
        elif kind == _KIND_JUMP:
            jump_hash = _mix(quirk_hash ^ 0x1A3B)
            bearing = (jump_hash & 0xFFFFFFFF) / 4294967296 * 2 * math.pi
            distance = 250_000 + (jump_hash >> 32) / 4294967296 * 550_000
            lat, lon = _destination(lat, lon, bearing, distance)
            address = _far_address(jump_hash)
        elif ((quirk_hash >> 24) & 0xFFFFFF) / 16777216 < self.quirks.empty_address_rate:
            address = ""
        else:
            address = _address(lat, lon)
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
        plan: _DayPlan,
        moment: int,
        kind: int,
        *,
        full: bool,
    ) -> dict[str, Any]:
        state = self._row_state(vehicle, plan, moment, kind)
        lat, lon, speed, ignition, odo_km, engine_h, battery, address, true_hash, quirk_hash = state
        units = (quirk_hash & 0xFFFFFF) / 16777216 < self.quirks.unit_strings_rate
        plate = vehicle.placa
        if (
            vehicle.hyphen_mode
            and not vehicle.mercosul
            and (vehicle.hyphen_mode == 1 or (true_hash >> 32) & 1)
        ):
            plate = vehicle.hyphenated
        row: dict[str, Any] = {
            "placa": plate,
            "descricao": vehicle.descricao,
            "frota": vehicle.frota,
        }
        with_serial = full or vehicle.history_has_serial
        if with_serial:
            row["equipamento_serial"] = vehicle.equipamento_serial
        row["data_transmissao"] = self._local_text(moment)
        if with_serial:
            delay = vehicle.storage_delay_s + ((true_hash >> 33) & _STORAGE_JITTER_S)
            row["data_gravacao"] = self._local_text(moment + delay)
        if kind == _KIND_NO_FIX:
            row["latitude"] = "0"
            row["longitude"] = "0"
        else:
            row["latitude"] = f"{lat:.6f}"
            row["longitude"] = f"{lon:.6f}"
        row["logradouro"] = address
        if units:
            row["velocidade"] = f"{speed} km/h"
            row["ignicao"] = "1" if ignition else "0"
            row["odometro"] = f"{odo_km:.2f}".replace(".", ",")
            row["horimetro"] = f"{engine_h:.2f}".replace(".", ",")
        elif vehicle.numbers_as_strings:
            row["velocidade"] = str(speed)
            row["ignicao"] = "1" if ignition else "0"
            row["odometro"] = f"{odo_km:.2f}"
            row["horimetro"] = f"{engine_h:.2f}"
        else:
            row["velocidade"] = speed
            row["ignicao"] = 1 if ignition else 0
            row["odometro"] = odo_km
            row["horimetro"] = engine_h
        row["odometro_can"] = odo_km if vehicle.has_can_odometer else None
        if vehicle.globalstar:
            row["bateria"] = str(int(battery)) if vehicle.numbers_as_strings else int(battery)
        elif units:
            row["bateria"] = f"{battery:.1f} V".replace(".", ",")
        else:
            row["bateria"] = f"{battery:.1f}"
        return row

    def _local_text(self, moment: int) -> str:
        """'DD/MM/YYYY HH:MM:SS' local; cached per UTC hour, as strftime dominated row cost."""
        hour = moment // 3600
        prefix = self._hour_prefixes.get(hour)
        if prefix is None:
            local = datetime.fromtimestamp(hour * 3600, self.tz)
            offset = local.utcoffset()
            if offset is None or offset.total_seconds() % 3600:
                return datetime.fromtimestamp(moment, self.tz).strftime("%d/%m/%Y %H:%M:%S")
            prefix = local.strftime("%d/%m/%Y %H:")
            if len(self._hour_prefixes) > 200_000:
                self._hour_prefixes.clear()
            self._hour_prefixes[hour] = prefix
        rest = moment % 3600
        return f"{prefix}{rest // 60:02d}:{rest % 60:02d}"

    def _served(
        self, vehicle: Vehicle, day: date, now: datetime | None
    ) -> list[tuple[int, dict[str, Any]]]:
        """(timestamp, row) as `/ultimasposicoesterminal` sends them for one whole day."""
        plan = self._plan(vehicle, day)
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
            rng = _rng(self.config.seed, vehicle.placa, day.isoformat(), "order", len(served))
            for index in _pick(rng, quirks.out_of_order_rate, last):
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
        plan = self._plan(vehicle, day)
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
                    quality=_KIND_QUALITY[kind],
                    horimetro=engine_h,
                    bateria=battery,
                )
            )
        return result

    def true_trips(self, plate: str, day: date, now: datetime | None = None) -> list[TrueTrip]:
        """Trips of the day whose ignition was off again by now."""
        vehicle = self.vehicle(plate)
        plan = self._plan(vehicle, day)
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
        plan = self._plan(vehicle, day)
        samples = plan.samples
        visible = bisect_right(samples, self._cutoff(vehicle, now))
        if visible == 0:
            return 0.0
        return plan.state(samples[visible - 1])[4] - plan.odo_start_m

    def day_total_km(self, plate: str, day: date) -> int:
        """Kilometres the vehicle drives in the whole local day (ignoring now)."""
        return self._day_km(self.vehicle(plate), day)

    def trip_summaries(
        self, plate: str, day: date, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """What `/resumoviagens` answers in `retorno` for one plate and local day."""
        vehicle = self.vehicle(plate)
        account = self.account(vehicle.account_user)
        assert account is not None
        plan = self._plan(vehicle, day)
        cutoff = self._cutoff(vehicle, now)
        driver_name, driver_id = vehicle.driver or ("", "")
        summaries: list[dict[str, Any]] = []
        for trip in plan.trips:
            if trip.ignition_off > cutoff:
                continue
            odo_start = round(trip.odo_start_m / 1000, 2)
            odo_end = round(trip.odo_end_m / 1000, 2)
            summaries.append(
                {
                    "cliente": account.cliente,
                    "cliente_fantasia": account.cliente_fantasia,
                    "placa": vehicle.display_plate,
                    "descricao": vehicle.descricao,
                    "frota": vehicle.frota,
                    "data_inicio_conducao": self._local_text(trip.ignition_on),
                    "data_fim_conducao": self._local_text(trip.ignition_off),
                    "latitude_inicio_conducao": f"{trip.start[0]:.6f}",
                    "longitude_inicio_conducao": f"{trip.start[1]:.6f}",
                    "latitude_fim_conducao": f"{trip.end[0]:.6f}",
                    "longitude_fim_conducao": f"{trip.end[1]:.6f}",
                    "localizacao_inicio_conducao": _address(*trip.start),
                    "localizacao_fim_conducao": _address(*trip.end),
                    "odometro_inicio_conducao": f"{odo_start:.2f}",
                    "odometro_fim_conducao": f"{odo_end:.2f}",
                    "duracao_conducao": _clock(trip.ignition_off - trip.ignition_on),
                    "distancia_conducao": f"{odo_end - odo_start:.2f}",
                    "condutor_nome": driver_name,
                    "condutor_identificacao": driver_id,
                }
            )
        return summaries

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
        cutoff = epoch - vehicle.storage_delay_s - _STORAGE_JITTER_S
        cached = self._latest_cache.get(vehicle.placa)
        if cached is not None and cached[0] <= cutoff < cached[1]:
            return cached[2], cached[3]
        found = self._find_latest(vehicle, cutoff)
        if found is None:
            return None
        row, valid_from, valid_until = found
        encoded = _ENCODER.encode(row).encode()
        self._latest_cache[vehicle.placa] = (valid_from, valid_until, row, encoded)
        return row, encoded

    def _find_latest(self, vehicle: Vehicle, cutoff: int) -> tuple[dict[str, Any], int, int] | None:
        """(row, first cutoff it is the latest at, first cutoff it no longer is)."""
        day = datetime.fromtimestamp(cutoff, self.tz).date()
        following: int | None = None
        for _ in range(2):
            if day < vehicle.installed_on:
                return None
            plan = self._plan(vehicle, day)
            samples = plan.samples
            index = bisect_right(samples, cutoff) - 1
            if index >= 0:
                moment, kind = samples[index], _KIND_TRUE
                if index + 1 < len(samples):
                    next_row = samples[index + 1]
                else:
                    # Tomorrow's first row is unknown without planning tomorrow: recheck at midnight.
                    next_row = following if following is not None else plan.day_end
                extra = self._extras(vehicle, plan).get(index)
                # A jump after the last true row is not shown yet (see _entries).
                if extra is not None and extra[1] == _KIND_NO_FIX:
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
            self._extras(vehicle, self._plan(vehicle, day))

    def with_quirks(self, quirks: QuirkConfig) -> Fleet:
        """The same fleet with other quirks (the true data is identical)."""
        return Fleet(replace(self.config, quirks=quirks))
