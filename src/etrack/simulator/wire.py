"""The eTrac wire format: how a simulated row, address or time is written.

The provider sends every value as it likes (see the quirks in
`etrack.simulator.fleet`); the choices here are made per vehicle and per row
from hashes, so the same row is always written the same way.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from etrack.simulator.config import Account
from etrack.simulator.dayplan import TripPlan, Vehicle, mix

__all__ = [
    "DEEP_LEVELS",
    "HUGE_DIGITS",
    "KIND_JUMP",
    "KIND_NO_FIX",
    "KIND_QUALITY",
    "KIND_TRUE",
    "NOT_OBJECTS",
    "POISONS",
    "ROW_POISONS",
    "STORAGE_JITTER_S",
    "LocalTimes",
    "Quality",
    "RowState",
    "clock",
    "encode",
    "far_address",
    "format_local",
    "format_row",
    "gzip_bomb",
    "parse_local",
    "poison_answer",
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
    account: Account,
    vehicle: Vehicle,
    trip: TripPlan,
    local_text: Callable[[int], str],
    driver: tuple[str, str] | Literal["fixed"] | None = "fixed",
) -> dict[str, Any]:
    """One `/resumoviagens` record; `driver` is the day's (name, identification),
    None for a trip without a driver, "fixed" for the vehicle's own driver."""
    chosen = vehicle.driver if driver == "fixed" else driver
    driver_name, driver_id = chosen or ("", "")
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


# ------------------------------------------------------------------ poisons
# A hostile provider (FaultConfig.poison): answers no honest eTrac sends, each
# of which once failed a whole fleet's batch. Row poisons hit the answer's rows
# in the order they are listed (the first listed poisons row 0, the next row
# 1...), so a test knows which vehicle got which.
ROW_POISONS = ("surrogate", "huge_integer", "huge_float", "deep")
"""surrogate: a lone surrogate (JSON "\\ud800") in logradouro and descricao;
huge_integer: velocidade a 5,000-digit integer; huge_float: odometro 1e400;
deep: logradouro an array nested 5,000 levels deep."""
POISONS = (*ROW_POISONS, "not_object", "no_data_erro", "gzip_bomb")
"""not_object: elements that are not objects appended to the rows (NOT_OBJECTS);
no_data_erro: `"erro": "Nenhum registro encontrado", "code_header": 404` beside
the rows; gzip_bomb: a small gzip body that expands to FaultConfig.bomb_bytes."""
NOT_OBJECTS = (b"42", b'"not a row"', b"null", b"[1,2]")
HUGE_DIGITS = 5000
DEEP_LEVELS = 5000
_MARK = "__poison__"


def _poisoned_row(row: dict[str, Any], kind: str) -> bytes:
    changed = dict(row)
    if kind == "surrogate":
        changed["logradouro"] = f"{row.get('logradouro') or ''} \ud800".strip()
        changed["descricao"] = f"\udc00{row.get('descricao') or ''}"
        # ensure_ascii writes the surrogates as \\uXXXX escapes: UTF-8 has no bytes for them.
        return json.dumps(changed, separators=(",", ":")).encode()
    literal = {
        "huge_integer": ("velocidade", "9" * HUGE_DIGITS),
        "huge_float": ("odometro", "1e400"),
        "deep": ("logradouro", "[" * DEEP_LEVELS + "]" * DEEP_LEVELS),
    }
    name, text = literal[kind]
    changed[name] = _MARK
    return encode(changed).replace(f'"{_MARK}"'.encode(), text.encode())


def poison_answer(content: bytes, key: str, kinds: Sequence[str]) -> bytes:
    """*content* (an envelope with its rows under *key*) with the poisons of
    *kinds* other than gzip_bomb; an answer without rows is left alone."""
    envelope = json.loads(content)
    rows = envelope.get(key)
    if not isinstance(rows, list):
        return content
    parts = [encode(row) for row in rows]
    row_kinds = [kind for kind in kinds if kind in ROW_POISONS]
    for index, kind in enumerate(row_kinds[: len(rows)]):
        parts[index] = _poisoned_row(rows[index], kind)
    if "not_object" in kinds:
        parts.extend(NOT_OBJECTS)
    head = {name: value for name, value in envelope.items() if name != key}
    if "no_data_erro" in kinds:
        head["erro"] = "Nenhum registro encontrado"
        head["code_header"] = 404
    members = [encode(head)[1:-1]] if head else []
    members.append(json.dumps(key).encode() + b":[" + b",".join(parts) + b"]")
    return b"{" + b",".join(members) + b"}"


@functools.lru_cache(maxsize=4)
def gzip_bomb(size: int) -> bytes:
    """A gzip body that expands to *size* bytes: a valid answer if read whole
    (an empty `retorno` padded with spaces), about a thousandth of it on the wire."""
    head = b'{"code_header":200,"retorno":['
    tail = b"]}"
    pad = max(0, size - len(head) - len(tail))
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * (1 << 20)
    out = [compressor.compress(head)]
    for _ in range(pad // len(block)):
        out.append(compressor.compress(block))
    out.append(compressor.compress(b" " * (pad % len(block)) + tail))
    out.append(compressor.flush())
    return b"".join(out)
