"""The records every layer passes around: positions, terminals, the provider's
trips and rejected rows, plus the one rule for spelling a plate.

The parser (`etrack.provider.parse`) builds these from the provider's JSON,
the quality flags (`etrack.quality`) rewrite a position's `quality`, storage
writes them, trip detection and the web read them. They are `NamedTuple`s
because they are built on the ingest hot path: a frozen slots dataclass costs
about six times more to build.
"""

from __future__ import annotations

import re
import reprlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

__all__ = [
    "BAD_ODOMETER",
    "BAD_SPEED",
    "DUPLICATE",
    "EVENT_KINDS",
    "FUTURE",
    "JUMP",
    "NO_FIX",
    "ODOMETER_BACKWARDS",
    "OUT_OF_RANGE",
    "TOO_OLD",
    "VALID",
    "DayStats",
    "EventKind",
    "Fence",
    "FenceKind",
    "InvalidPlate",
    "InvalidValue",
    "OutOfRangeNumber",
    "Position",
    "ProviderTrip",
    "Reject",
    "StopRow",
    "Terminal",
    "TripRow",
    "canonical_plate",
    "short_repr",
]

# --- position quality (the `positions.quality` column) ----------------------
VALID: Final = "valid"
NO_FIX: Final = "no_fix"
OUT_OF_RANGE: Final = "out_of_range"
FUTURE: Final = "future"
DUPLICATE: Final = "duplicate"
JUMP: Final = "jump"
# Plausibility (etrack.quality): values no tracker can honestly report.
TOO_OLD: Final = "too_old"
BAD_SPEED: Final = "bad_speed"
BAD_ODOMETER: Final = "bad_odometer"
ODOMETER_BACKWARDS: Final = "odometer_backwards"


_short_repr_maker = reprlib.Repr()
_short_repr_maker.maxstring = 60
_short_repr_maker.maxother = 60
_short_repr_maker.maxlevel = 2


def short_repr(value: object) -> str:
    """A repr safe to put in a message: bounded, whatever the input."""
    try:
        return _short_repr_maker.repr(value)
    except Exception:  # a hostile __repr__ must not break a parser that never raises
        return f"<{type(value).__name__}>"


class InvalidValue(ValueError):
    """A value is present but cannot be read as the type asked for."""


class InvalidPlate(InvalidValue):
    """Text that is not a Brazilian plate; the message says what was expected."""

    def __init__(self, value: object) -> None:
        super().__init__(
            f"expected a Brazilian plate like ABC1234 or ABC1D23, got {short_repr(value)}"
        )
        self.value = value


# ------------------------------------------------------------------- records


class Position(NamedTuple):
    """One tracker position (a POSITION or VEHICLE row), parsed and flagged.

    The natural key is `(placa, data_transmissao)`. `quality` is `valid` or the
    reason the point must stay out of routes and distances.
    """

    placa: str
    data_transmissao: datetime
    latitude: float | None
    longitude: float | None
    velocidade: float | None
    ignicao: bool | None
    odometro: float | None
    odometro_can: float | None
    horimetro: float | None
    bateria: float | None
    logradouro: str | None
    descricao: str | None
    frota: str | None
    equipamento_serial: str | None
    data_gravacao: datetime | None
    placa_raw: str
    quality: str
    raw: dict[Any, Any]
    bad_fields: tuple[str, ...] = ()
    # Set on a `duplicate` whose measurement differs from the row kept for its
    # natural key: the ingest keeps those as rejects instead of dropping them.
    duplicate_differs: bool = False

    @property
    def key(self) -> tuple[str, datetime]:
        return (self.placa, self.data_transmissao)

    @property
    def is_valid(self) -> bool:
        return self.quality == VALID

    @property
    def measurement(self) -> tuple[object, ...]:
        """What the tracker measured: two rows with one key and equal measurements are
        the same packet. Vehicle metadata, the address (geocoded later by the
        platform) and `data_gravacao` (the platform may store a packet twice) are
        left out on purpose."""
        return (
            self.latitude,
            self.longitude,
            self.velocidade,
            self.ignicao,
            self.odometro,
            self.odometro_can,
            self.horimetro,
            self.bateria,
        )


class ProviderTrip(NamedTuple):
    """One of the provider's own trip summaries (`resumoviagens`), as opposed to
    the trips etrack detects itself from positions."""

    placa: str
    data_inicio_conducao: datetime
    data_fim_conducao: datetime | None
    duracao_conducao: int | None  # seconds
    distancia_conducao: float | None  # km
    odometro_inicio_conducao: float | None
    odometro_fim_conducao: float | None
    latitude_inicio_conducao: float | None
    longitude_inicio_conducao: float | None
    latitude_fim_conducao: float | None
    longitude_fim_conducao: float | None
    localizacao_inicio_conducao: str | None
    localizacao_fim_conducao: str | None
    cliente: str | None
    cliente_fantasia: str | None
    descricao: str | None
    frota: str | None
    condutor_nome: str | None
    condutor_identificacao: str | None
    placa_raw: str
    raw: dict[Any, Any]
    bad_fields: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, datetime]:
        return (self.placa, self.data_inicio_conducao)


class Terminal(NamedTuple):
    """The `terminal` block of `/ultimasposicoesterminal`: the vehicle asked about."""

    placa: str
    descricao: str | None
    frota: str | None
    placa_raw: str
    raw: dict[Any, Any]
    bad_fields: tuple[str, ...] = ()


class Reject(NamedTuple):
    """A row that cannot become a record. `reason` is a stable code, `message` is for people."""

    reason: str
    message: str
    raw: object
    placa: str | None = None


class OutOfRangeNumber(str):
    """A JSON number no float can hold (1e400, a 5,000-digit integer), kept as the
    text the provider sent: the client's decoder makes these instead of failing the
    whole answer, the parser rejects the row that holds one in a field it reads,
    and the raw JSON stores it as a string."""

    __slots__ = ()


# -------------------------------------------------------------------- plates

_PLATE: Final = re.compile(r"[A-Z]{3}[0-9][A-Z0-9][0-9]{2}")
# Hyphens (and the dashes copy-paste turns them into: an en dash from a
# spreadsheet is still a hyphen) and whitespace anywhere.
_PLATE_NOISE: Final = re.compile(r"[\s\-\u2010-\u2015\u2212]+")
_plate_cache: dict[str, str] = {}
_PLATE_CACHE_MAX: Final = 50_000


def canonical_plate(text: object) -> str:
    """`abc-1234`, ` ABC 1234 `, `abc1d23` -> `ABC1234` / `ABC1D23`; raises `InvalidPlate`.

    Accepts the old (ABC1234) and Mercosul (ABC1D23) patterns, in any case,
    with hyphens (or dashes) and whitespace anywhere. Letters are ASCII only.
    """
    if type(text) is str:
        cached = _plate_cache.get(text)
        if cached is not None:
            return cached
        plate = _PLATE_NOISE.sub("", text).upper()
        if len(plate) == 7 and _PLATE.fullmatch(plate):
            if len(_plate_cache) >= _PLATE_CACHE_MAX:
                _plate_cache.clear()
            _plate_cache[text] = plate
            return plate
    raise InvalidPlate(text)


# ------------------------------------------------- computed routes, as stored
# A computed day in the shape of its `routes`, `route_trips` and `route_stops`
# columns, fields in column order: storage writes them as they are and the web
# shows a day computed on the fly through `_asdict()`, the same keys a stored
# day's rows have. Detection (`etrack.trips.detect`) builds the trips and
# stops in this shape, and `etrack.trips.day` the figures: a detected record is
# its stored row, there is no second type to convert from.


class DayStats(NamedTuple):
    """A day's figures (the `routes` columns from start_ts to stop_count)."""

    start_ts: datetime | None
    end_ts: datetime | None
    point_count: int
    invalid_count: int | None
    distance_m: float
    odometer_m: float | None
    driving_s: int
    idle_s: int
    parked_s: int
    max_speed_kmh: float | None
    avg_speed_kmh: float | None
    over_limit_s: int
    trip_count: int
    stop_count: int


class TripRow(NamedTuple):
    """One detected trip (a `route_trips` row without its plate and day): UTC times,
    metres, whole seconds, km/h."""

    seq: int
    start_ts: datetime
    end_ts: datetime
    start_latitude: float
    start_longitude: float
    end_latitude: float
    end_longitude: float
    start_address: str | None
    end_address: str | None
    distance_m: float
    duration_s: int
    max_speed_kmh: float | None
    avg_speed_kmh: float | None
    moving_s: int = 0
    """Time in motion: the trip's time less the still part of its first and
    last sampling intervals (etrack.trips.detect.moving_seconds); a driver's
    driving time (etrack.drivers)."""

    # The ends under the short names detection speaks of (`trip.end_lat`).
    @property
    def start_lat(self) -> float:
        return self.start_latitude

    @property
    def start_lon(self) -> float:
        return self.start_longitude

    @property
    def end_lat(self) -> float:
        return self.end_latitude

    @property
    def end_lon(self) -> float:
        return self.end_longitude


class StopRow(NamedTuple):
    """One detected stop (a `route_stops` row without its plate and day)."""

    seq: int
    start_ts: datetime
    end_ts: datetime
    latitude: float
    longitude: float
    address: str | None
    duration_s: int
    ignition_on_s: int


class EventKind(NamedTuple):
    """How people read an event kind: its name in each UI language and the
    unit of its `value` and `limit_value` (docs/events.md)."""

    pt: str
    en: str
    unit: str


# One vocabulary for the e-mails (alerts), the pages and the CLI; the
# detectors' registry (etrack.events.detect.KINDS) holds the same keys (tested).
EVENT_KINDS: Final[dict[str, EventKind]] = {
    "overspeed": EventKind("Excesso de velocidade", "Overspeed", "km/h"),
    "idle": EventKind("Motor ocioso", "Idling", "min"),
    "after_hours": EventKind("Uso fora do horário", "After-hours use", "min"),
    "low_battery": EventKind("Bateria baixa", "Low battery", "V"),
    "late_data": EventKind("Dados atrasados", "Late data", "min"),
    "offline": EventKind("Sem comunicação", "Offline", "min"),
    # value: none at the entry; at the exit, the minutes spent inside.
    "geofence_enter": EventKind("Entrada em cerca", "Geofence entry", "min"),
    "geofence_exit": EventKind("Saída de cerca", "Geofence exit", "min"),
    # A driver's violations of the working-day law (etrack.drivers): value
    # the excess, limit_value the limit, both in minutes; rule 'driver:ID'.
    "driving_time": EventKind("Tempo de direção excedido", "Driving time exceeded", "min"),
    "rest_time": EventKind("Descanso insuficiente", "Rest too short", "min"),
    "working_time": EventKind("Jornada excedida", "Working time exceeded", "min"),
}


# --- geofences ---------------------------------------------------------------
FenceKind = Literal["polygon", "circle", "corridor"]
FENCE_ENTER: Final = "geofence_enter"
FENCE_EXIT: Final = "geofence_exit"


@dataclass(frozen=True, slots=True)
class Fence:
    """One fence as stored (etrack.geofences.shapes tests positions against it): `geometry` is GeoJSON in longitude/latitude
    (Polygon or MultiPolygon; the centre Point of a circle; the LineString of
    a corridor); `radius_m` is a circle's radius or a corridor's half-width."""

    name: str
    kind: FenceKind
    geometry: dict[str, Any]
    radius_m: float | None = None
    group: str | None = None
    speed_limit_kmh: float | None = None

    def feature(self) -> dict[str, Any]:
        """The fence as a GeoJSON Feature (what the API and the export give)."""
        properties: dict[str, Any] = {"name": self.name, "kind": self.kind, "group": self.group}
        if self.kind == "circle":
            properties["radius_m"] = self.radius_m
        elif self.kind == "corridor":
            properties["buffer_m"] = self.radius_m
        if self.speed_limit_kmh is not None:
            properties["speed_limit_kmh"] = self.speed_limit_kmh
        return {"type": "Feature", "geometry": self.geometry, "properties": properties}
