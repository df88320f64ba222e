"""The eTrac wire format: how a simulated row, address or time is written.

The provider sends every value as it likes (see the quirks in
`etrack.simulator.fleet`); the choices here are made per vehicle and per row
from hashes, so the same row is always written the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from etrack.simulator.config import Account
from etrack.simulator.dayplan import TripPlan, Vehicle, mix

__all__ = [
    "KIND_JUMP",
    "KIND_NO_FIX",
    "KIND_QUALITY",
    "KIND_TRUE",
    "STORAGE_JITTER_S",
    "LocalTimes",
    "Quality",
    "RowState",
    "clock",
    "encode",
    "far_address",
    "format_local",
    "format_row",
    "parse_local",
    "street_address",
    "trip_summary",
]

Quality = Literal["valid", "no_fix", "jump"]

STORAGE_JITTER_S = 3  # data_gravacao = data_transmissao + vehicle's delay + 0..3 s
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)

# What a served row is: a true point, or one of the extra rows the quirks add.
KIND_TRUE = 0
KIND_NO_FIX = 1
KIND_JUMP = 2
KIND_QUALITY: dict[int, Quality] = {
    KIND_TRUE: "valid",
    KIND_NO_FIX: "no_fix",
    KIND_JUMP: "jump",
}

# lat, lon, speed, ignition, odometer km, engine hours, battery, address, true hash, quirk hash
RowState = tuple[float, float, int, bool, float, float, float, str, int, int]


def encode(row: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as the provider sends it."""
    return _ENCODER.encode(row).encode()


def format_local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M:%S")


def parse_local(text: str, tz: ZoneInfo) -> datetime:
    """'DD/MM/YYYY HH:MM:SS' local time -> aware datetime (ValueError if malformed)."""
    return datetime.strptime(text, "%d/%m/%Y %H:%M:%S").replace(tzinfo=tz)


# --------------------------------------------------------------- addresses
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


_ADDRESSES: dict[int, str] = {}


def street_address(lat: float, lon: float) -> str:
    # Reverse geocoding by a ~200 m grid cell: stable while parked, changing while driving.
    key = (math.floor(lat * 500) & 0xFFFFFFFF) << 32 | (math.floor(lon * 500) & 0xFFFFFFFF)
    address = _ADDRESSES.get(key)
    if address is None:
        if len(_ADDRESSES) > 300_000:
            _ADDRESSES.clear()
        address = _ADDRESSES[key] = _make_address(lat, lon, key)
    return address


def _make_address(lat: float, lon: float, key: int) -> str:
    cell = mix(key)
    street = _STREETS[cell % len(_STREETS)]
    number = 10 + (cell >> 8) % 2990
    bairro = _BAIRROS[(cell >> 20) % len(_BAIRROS)]
    district = mix((math.floor(lat * 20) & 0xFFFFFFFF) << 32 | (math.floor(lon * 20) & 0xFFFFFFFF))
    city = _CITIES[district % len(_CITIES)]
    return f"{street}, {number} - {bairro}, {city}"


def far_address(cell: int) -> str:
    return f"Rodovia BR-{101 + cell % 300}, km {(cell >> 10) % 700}"


def clock(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


class LocalTimes:
    """Local "DD/MM/YYYY HH:MM:SS" texts of one zone."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._hour_prefixes: dict[int, str] = {}

    def text(self, moment: int) -> str:
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


# -------------------------------------------------------------------- rows
def format_row(
    vehicle: Vehicle,
    state: RowState,
    moment: int,
    kind: int,
    *,
    full: bool,
    units: bool,
    local_text: Callable[[int], str],
) -> dict[str, Any]:
    """One POSITION (history) or, with `full`, VEHICLE (latest) row.

    `units` writes numbers as strings with units and decimal commas (a quirk).
    """
    lat, lon, speed, ignition, odo_km, engine_h, battery, address, true_hash, _ = state
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
    row["data_transmissao"] = local_text(moment)
    if with_serial:
        delay = vehicle.storage_delay_s + ((true_hash >> 33) & STORAGE_JITTER_S)
        row["data_gravacao"] = local_text(moment + delay)
    if kind == KIND_NO_FIX:
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


def trip_summary(
    account: Account, vehicle: Vehicle, trip: TripPlan, local_text: Callable[[int], str]
) -> dict[str, Any]:
    """One `/resumoviagens` record."""
    driver_name, driver_id = vehicle.driver or ("", "")
    odo_start = round(trip.odo_start_m / 1000, 2)
    odo_end = round(trip.odo_end_m / 1000, 2)
    return {
        "cliente": account.cliente,
        "cliente_fantasia": account.cliente_fantasia,
        "placa": vehicle.display_plate,
        "descricao": vehicle.descricao,
        "frota": vehicle.frota,
        "data_inicio_conducao": local_text(trip.ignition_on),
        "data_fim_conducao": local_text(trip.ignition_off),
        "latitude_inicio_conducao": f"{trip.start[0]:.6f}",
        "longitude_inicio_conducao": f"{trip.start[1]:.6f}",
        "latitude_fim_conducao": f"{trip.end[0]:.6f}",
        "longitude_fim_conducao": f"{trip.end[1]:.6f}",
        "localizacao_inicio_conducao": street_address(*trip.start),
        "localizacao_fim_conducao": street_address(*trip.end),
        "odometro_inicio_conducao": f"{odo_start:.2f}",
        "odometro_fim_conducao": f"{odo_end:.2f}",
        "duracao_conducao": clock(trip.ignition_off - trip.ignition_on),
        "distancia_conducao": f"{odo_end - odo_start:.2f}",
        "condutor_nome": driver_name,
        "condutor_identificacao": driver_id,
    }
