"""eTrac API rows -> typed records, tolerant of every form the provider sends.

The API sends every value as whatever it likes: numbers as JSON numbers or
strings, with units ("54 km/h", "12,6 V") and decimal commas, timestamps as
local "DD/MM/YYYY HH:MM:SS" strings, plates with or without a hyphen. The
parsers here turn one row into a `Position`, `ProviderTrip` or `Terminal`
(see `etrack.model`), or into a `Reject` naming why the row cannot be stored;
they never raise, whatever JSON value they are given.

This sits on the ingest hot path (40,000+ positions/s end to end on two cores),
so a row is parsed by plain functions instead of a validation library: records
are `NamedTuple`s (a frozen slots dataclass costs ~6x more to build, and
building the record would be a third of the budget), timestamps are sliced
instead of `strptime`-ed, and the UTC offset of each local hour is cached.

Accepted forms, decided once for every field:

- Missing: the key absent, JSON null, an empty or blank string, or one of the
  words null / none / nil / n/a / - / -- (any case). Missing is `None`.
- Numbers: JSON numbers, or strings holding a number with an optional sign and
  an optional unit from a fixed list (km/h, kmh, kph, km, V, Vdc, volt(s),
  h, hr(s), hs, hora(s), %, °). An unknown suffix is garbage, not a unit: "23.5 S"
  must not silently lose its hemisphere. Python float syntax is accepted too
  ("1e3", "1_000"). NaN and infinities are garbage.
  Separators: a lone "." or "," is the decimal separator ("12,6" is 12.6 and
  "1.234" is 1.234, since latitudes come as "-23.550520"); with both present,
  the last one is decimal and the other groups thousands ("1.234,5" and
  "1,234.5" are 1234.5); the same separator repeated groups thousands
  ("1.234.567" is 1234567). Groups must have three digits, else it is garbage.
- Booleans (`ignicao`): true/false, 1/0 (numbers or strings), and the words
  true/false, on/off, sim/não (also "nao"), yes/no, ligado/desligado, s/n, t/f.
- Timestamps: "DD/MM/YYYY HH:MM[:SS[.ffffff]]" with "/" or "-" between the date
  parts (one-digit day, month and hour too), or ISO 8601 with or without an
  offset. Times without an offset are local times of the account's zone;
  results are aware datetimes in UTC. A local time that does not exist or
  happens twice (a DST change) takes the offset in force before the change.
- Text: stripped; missing is `None` (so the text "null" is never stored);
  control characters are removed, tabs and line breaks becoming a space
  (PostgreSQL text cannot hold NUL, and a batch must never fail on one);
  a lone surrogate ("\\ud800", which no encoding can write) becomes U+FFFD;
  numbers become their decimal text (tracker serials sometimes arrive as JSON
  numbers).

A present value that cannot be read is stored as `None` and its field name is
listed in the record's `bad_fields`, so nothing is dropped without a trace;
the raw row is always kept in `raw`. Two poisons reject the row instead: a
field read as a number holding a number no float holds (the client's decoder
hands it over as an `OutOfRangeNumber`: 1e400, a 5,000-digit integer), and an
element the decoder could not decode at all (it hands over a `Reject`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, tzinfo
from enum import Enum
from typing import Any, Final, NamedTuple

from etrack.model import (
    FUTURE,
    VALID,
    InvalidPlate,
    OutOfRangeNumber,
    Position,
    ProviderTrip,
    Reject,
    Terminal,
    canonical_plate,
    short_repr,
)
from etrack.quality import coordinate_quality

__all__ = [
    "BAD_PLATE",
    "BAD_TIMESTAMP",
    "MISSING_PLATE",
    "MISSING_TIMESTAMP",
    "NOT_AN_OBJECT",
    "NUMBER_OUT_OF_RANGE",
    "ParsedPositions",
    "parse_position",
    "parse_positions",
    "parse_terminal",
    "parse_trip",
    "parse_vehicle",
]

# --- reject reasons ----------------------------------------------------------
NOT_AN_OBJECT: Final = "not_an_object"
MISSING_PLATE: Final = "missing_plate"
BAD_PLATE: Final = "bad_plate"
MISSING_TIMESTAMP: Final = "missing_timestamp"
BAD_TIMESTAMP: Final = "bad_timestamp"
NUMBER_OUT_OF_RANGE: Final = "number_out_of_range"


class _Bad(Enum):
    """Marks a value that is present but unreadable (as opposed to missing, `None`)."""

    BAD = "bad"


class ParsedPositions(NamedTuple):
    positions: list[Position]
    rejects: list[Reject]


# ------------------------------------------------------------ field coercers

_NULL_WORDS: Final = frozenset({"null", "none", "nil", "n/a", "-", "--"})
_NULL_WORD_MAX_LEN: Final = 4

_UNITS: Final = frozenset(
    {"km/h", "kmh", "kph", "km", "v", "vdc", "volt", "volts", "h", "hr", "hrs", "hs"}
    | {"hora", "horas", "%", "°", "º"}
)
_NUMBER_WITH_UNIT: Final = re.compile(r"([+-]?)([.,]?[0-9][0-9.,]*)\s*([^\W\d_][^\d]*|[%°º])?")

_TRUE_WORDS: Final = ("1", "true", "on", "sim", "yes", "ligado", "ligada", "s", "t", "y")
_FALSE_WORDS: Final = ("0", "false", "off", "não", "nao", "no", "desligado", "desligada", "n", "f")
_BOOL_WORDS: Final[dict[str, bool]] = dict.fromkeys(_TRUE_WORDS, True) | dict.fromkeys(
    _FALSE_WORDS, False
)

_BR_TIMESTAMP: Final = re.compile(
    r"(\d{1,2})([/-])(\d{1,2})\2(\d{4})(?:\s+|T)(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?",
    re.ASCII,
)
# Control characters (C0, DEL, C1) never reach storage: PostgreSQL text cannot
# hold NUL, and the others only garble a description. Line breaks and tabs
# become one space so the words they separated stay apart.
_SPACING_CONTROL: Final = re.compile(r"[\t\n\v\f\r\x1c-\x1f\x85]+")
_CONTROL: Final = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
# A lone surrogate (JSON "\ud800") is a str no encoder writes: it would fail
# the whole COPY. Never printable, so only the slow branch of _text pays.
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_ISO_TIMESTAMP: Final = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", re.ASCII)
_DURATION: Final = re.compile(r"(\d{1,6}):([0-5]?\d)(?::([0-5]?\d))?", re.ASCII)

# "MM:SS" -> offset into the hour. With the UTC start of each local hour cached,
# the common "DD/MM/YYYY HH:MM:SS" costs two dict look-ups and one addition;
# building a timedelta per row would cost more than everything else in a row.
_MINUTE_SECOND: Final[dict[str, timedelta]] = {
    f"{second // 60:02d}:{second % 60:02d}": timedelta(seconds=second) for second in range(3600)
}
# Per time zone: "DD/MM/YYYY HH" (or (y, m, d, h)) -> the UTC instant of that local hour start.
_hour_caches: dict[tzinfo, dict[object, datetime]] = {}
_HOUR_CACHE_MAX: Final = 200_000


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


def _is_null_text(text: str) -> bool:
    """`text` is already stripped."""
    return not text or (len(text) <= _NULL_WORD_MAX_LEN and text.lower() in _NULL_WORDS)


def _number(value: object) -> float | _Bad | None:
    if type(value) is str:
        try:
            number = float(value)
        except ValueError:
            return _number_text(value)
        # nan - nan and inf - inf are nan, which is not == 0: one test rejects both.
        return number if number - number == 0.0 else _Bad.BAD
    if type(value) is float:
        return value if value - value == 0.0 else _Bad.BAD
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return _Bad.BAD
    if value is None:
        return None
    if isinstance(value, bool):
        return _Bad.BAD
    # Subclasses of the JSON types (never from json.loads): retry as the base type.
    if isinstance(value, str):
        return _number(str(value))
    if isinstance(value, int):
        return _number(int(value))
    if isinstance(value, float):
        return _number(float(value))
    return _Bad.BAD


def _number_text(value: str) -> float | _Bad | None:
    text = value.strip()
    if _is_null_text(text):
        return None
    match = _NUMBER_WITH_UNIT.fullmatch(text)
    if match is None:
        return _Bad.BAD
    sign, digits, unit = match.groups()
    if unit is not None and unit.replace(" ", "").lower() not in _UNITS:
        return _Bad.BAD
    normalized = _normalize_separators(digits)
    if normalized is None:
        return _Bad.BAD
    try:
        number = float(sign + normalized)
    except ValueError:
        return _Bad.BAD
    return number if number - number == 0.0 else _Bad.BAD


def _normalize_separators(digits: str) -> str | None:
    """Digits with "." and "," -> Python float syntax, by the rules in the module docstring."""
    dots = digits.count(".")
    commas = digits.count(",")
    if dots and commas:
        decimal = "." if digits.rfind(".") > digits.rfind(",") else ","
        group = "," if decimal == "." else "."
        whole, _, fraction = digits.rpartition(decimal)
        if decimal in whole or not _grouped(whole, group):
            return None
        return whole.replace(group, "") + "." + fraction
    if dots + commas == 0:
        return digits
    if dots + commas == 1:
        return digits.replace(",", ".")
    separator = "." if dots else ","
    return digits.replace(separator, "") if _grouped(digits, separator) else None


def _grouped(whole: str, separator: str) -> bool:
    first, *groups = whole.split(separator)
    return 1 <= len(first) <= 3 and all(len(group) == 3 for group in groups)


def _bool(value: object) -> bool | _Bad | None:
    if value is True or value is False:
        return value
    if type(value) is str:
        hit = _BOOL_WORDS.get(value)
        if hit is not None:
            return hit
        text = value.strip()
        if _is_null_text(text):
            return None
        hit = _BOOL_WORDS.get(text.lower())
        return _Bad.BAD if hit is None else hit
    if value is None:
        return None
    if isinstance(value, int | float):
        if value == 1:
            return True
        if value == 0:
            return False
    return _Bad.BAD


def _text(value: object) -> str | _Bad | None:
    if type(value) is str:
        text = value.strip()
        if _is_null_text(text):
            return None
        # isprintable() is one C loop; only text that fails it (controls, but
        # also a no-break space) pays for the regular expressions.
        if not text.isprintable():
            text = _CONTROL.sub("", _SPACING_CONTROL.sub(" ", text)).strip()
            text = _SURROGATE.sub("\ufffd", text)
            return None if _is_null_text(text) else text
        return text
    if value is None:
        return None
    if isinstance(value, bool):
        return _Bad.BAD
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than int->str allows
            return _Bad.BAD
    if isinstance(value, float):
        if value - value != 0.0:
            return _Bad.BAD
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return _text(str(value))
    return _Bad.BAD


def _hour_cache(tz: tzinfo) -> dict[object, datetime]:
    cache = _hour_caches.get(tz)
    if cache is None:
        cache = _hour_caches.setdefault(tz, {})
    return cache


def _timestamp(value: object, tz: tzinfo) -> datetime | _Bad | None:
    if type(value) is str:
        if len(value) == 19:
            # Only strictly formed "DD/MM/YYYY HH" prefixes are ever cached, so a
            # hit plus a valid "MM:SS" suffix is a fully validated timestamp.
            base = _hour_cache(tz).get(value[:13])
            if base is not None and value[13] == ":":
                offset = _MINUTE_SECOND.get(value[14:])
                if offset is not None:
                    return base + offset
        return _timestamp_text(value, tz)
    if value is None:
        return None
    if isinstance(value, str):
        return _timestamp_text(str(value), tz)
    return _Bad.BAD


def _timestamp_text(value: str, tz: tzinfo) -> datetime | _Bad | None:
    text = value.strip()
    if _is_null_text(text):
        return None
    match = _BR_TIMESTAMP.fullmatch(text)
    try:
        if match is not None:
            day, _, month, year, hour, minute, second, fraction = match.groups()
            strict = len(text) == 19 and fraction is None and second is not None
            return _local_to_utc(
                int(year),
                int(month),
                int(day),
                int(hour),
                int(minute),
                int(second) if second else 0,
                int(fraction.ljust(6, "0")) if fraction else 0,
                tz,
                text[:13] if strict else None,
            )
        if _ISO_TIMESTAMP.match(text):
            parsed = datetime.fromisoformat(text)
            if parsed.tzinfo is not None:
                return parsed.astimezone(UTC)
            return _local_to_utc(
                parsed.year,
                parsed.month,
                parsed.day,
                parsed.hour,
                parsed.minute,
                parsed.second,
                parsed.microsecond,
                tz,
                None,
            )
    except (ValueError, OverflowError):
        return _Bad.BAD
    return _Bad.BAD


def _local_to_utc(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    microsecond: int,
    tz: tzinfo,
    text_key: str | None,
) -> datetime:
    """Local wall time of `tz` -> aware UTC; raises ValueError/OverflowError if impossible."""
    if not (0 <= minute < 60 and 0 <= second < 60):
        raise ValueError("minute or second out of range")
    cache = _hour_cache(tz)
    key: object = (year, month, day, hour)
    base = cache.get(key)
    if base is None:
        start = datetime(year, month, day, hour, tzinfo=tz)
        offset = start.utcoffset()
        end_offset = datetime(year, month, day, hour, 59, 59, 999999, tzinfo=tz).utcoffset()
        if offset is None or offset != end_offset:
            # The offset changes inside this hour (a transition at hh:30, say):
            # nothing to cache, convert this one value exactly.
            exact = datetime(year, month, day, hour, minute, second, microsecond, tzinfo=tz)
            return exact.astimezone(UTC)
        base = datetime(year, month, day, hour, tzinfo=UTC) - offset
        if len(cache) >= _HOUR_CACHE_MAX:
            cache.clear()
        cache[key] = base
    if text_key is not None:
        cache[text_key] = base
    return base + timedelta(minutes=minute, seconds=second, microseconds=microsecond)


def _duration_s(value: object) -> int | _Bad | None:
    if isinstance(value, str):
        text = value.strip()
        if _is_null_text(text):
            return None
        match = _DURATION.fullmatch(text)
        if match is None:
            return _Bad.BAD
        hours, minutes, seconds = match.groups()
        return int(hours) * 3600 + int(minutes) * 60 + (int(seconds) if seconds else 0)
    if value is None:
        return None
    return _Bad.BAD


# ------------------------------------------------------------------ parsers


def _number_field(value: object, name: str, bad: list[str]) -> float | None:
    result = _number(value)
    if result is _Bad.BAD:
        bad.append(name)
        return None
    return result


def _text_field(value: object, name: str, bad: list[str]) -> str | None:
    result = _text(value)
    if result is _Bad.BAD:
        bad.append(name)
        return None
    return result


def _not_an_object(raw: object) -> Reject:
    return Reject(NOT_AN_OBJECT, f"expected a JSON object, got {_json_kind(raw)}", raw)


def _keyed(raw: object) -> tuple[dict[Any, Any], str, str] | Reject:
    """What every row parser checks first: (the row, its canonical plate, the
    plate as sent), or the `Reject` of a row that is no object or has no
    readable plate."""
    if not isinstance(raw, dict):
        if isinstance(raw, Reject):  # the client's decoder already rejected it
            return raw
        return _not_an_object(raw)
    placa_raw = raw.get("placa")
    try:
        placa = canonical_plate(placa_raw)
    except InvalidPlate:
        return _plate_reject(placa_raw, raw)
    assert isinstance(placa_raw, str)  # canonical_plate accepted it
    return raw, placa, placa_raw


def _keyed_at(
    raw: object, name: str, tz: tzinfo
) -> tuple[dict[Any, Any], str, str, datetime] | Reject:
    """`_keyed` and the row's timestamp field `name`, the rest of its natural key
    (required: a `Reject` when it is missing or unreadable)."""
    keyed = _keyed(raw)
    if isinstance(keyed, Reject):
        return keyed
    row, placa, placa_raw = keyed
    sent = row.get(name)
    at = _timestamp(sent, tz)
    if at is None or at is _Bad.BAD:
        return _timestamp_reject(name, sent, at, raw, placa)
    return row, placa, placa_raw, at


def _out_of_range(row: dict[Any, Any], bad: list[str], placa: str) -> Reject | None:
    """The `Reject` of a row whose unreadable fields include a number no float
    holds (rare: only rows with bad fields are looked at)."""
    for name in bad:
        value = row.get(name)
        if isinstance(value, OutOfRangeNumber):
            shown = value if len(value) <= 40 else f"{value[:12]}... ({len(value)} characters)"
            return Reject(
                NUMBER_OUT_OF_RANGE,
                f"{name}: {shown} is out of range, expected a number within +-1.8e308",
                row,
                placa,
            )
    return None


def _internal_error(exc: Exception, raw: object) -> Reject:
    return Reject("internal_error", f"{type(exc).__name__}: {exc}", raw)


def _plate_reject(value: object, raw: object) -> Reject:
    if value is None or (isinstance(value, str) and _is_null_text(value.strip())):
        return Reject(MISSING_PLATE, "placa is missing", raw)
    return Reject(BAD_PLATE, f"placa: {InvalidPlate(value)}", raw)


def _timestamp_reject(
    name: str, value: object, result: _Bad | None, raw: object, placa: str
) -> Reject:
    if result is None:
        return Reject(MISSING_TIMESTAMP, f"{name} is missing", raw, placa)
    return Reject(
        BAD_TIMESTAMP,
        f"{name}: expected DD/MM/YYYY HH:MM:SS or ISO 8601, got {short_repr(value)}",
        raw,
        placa,
    )


def _future_limit(now: datetime, future_tolerance_s: float) -> datetime:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        return now + timedelta(seconds=future_tolerance_s)
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC)


def parse_position(
    raw: object, tz: tzinfo, *, now: datetime, future_tolerance_s: float
) -> Position | Reject:
    """One POSITION / VEHICLE row -> `Position` (with its per-row quality) or `Reject`.

    Per-row quality, first match wins: `future` (data_transmissao later than
    `now` + `future_tolerance_s`: the key itself is wrong, wherever the point
    is), `out_of_range` (|lat| > 90, |lon| > 180, or a coordinate present but
    unreadable), `no_fix` (both 0, or either missing), else `valid`. `now`
    should be aware; a naive `now` is taken as UTC. Never raises.
    """
    return _parse_position(raw, tz, _future_limit(now, future_tolerance_s))


# `/ultimas-posicoes` rows are the same shape; history rows just lack two fields.
parse_vehicle = parse_position


def parse_positions(
    rows: Iterable[object], tz: tzinfo, *, now: datetime, future_tolerance_s: float
) -> ParsedPositions:
    """Parse an answer's rows, splitting records from rejects (input order kept)."""
    limit = _future_limit(now, future_tolerance_s)
    positions: list[Position] = []
    rejects: list[Reject] = []
    keep_position = positions.append
    keep_reject = rejects.append
    for raw in rows:
        record = _parse_position(raw, tz, limit)
        if isinstance(record, Position):
            keep_position(record)
        else:
            keep_reject(record)
    return ParsedPositions(positions, rejects)


def _parse_position(raw: object, tz: tzinfo, limit: datetime) -> Position | Reject:
    try:
        keyed = _keyed_at(raw, "data_transmissao", tz)
        if isinstance(keyed, Reject):
            return keyed
        row, placa, placa_raw, data_transmissao = keyed
        get = row.get

        # Fields are coerced inline rather than through a helper per field: on
        # this path a Python call per field is a tenth of the whole row's cost.
        bad: list[str] = []
        unreadable = False
        latitude = _number(get("latitude"))
        if latitude is _Bad.BAD:
            bad.append("latitude")
            latitude = None
            unreadable = True
        longitude = _number(get("longitude"))
        if longitude is _Bad.BAD:
            bad.append("longitude")
            longitude = None
            unreadable = True
        velocidade = _number(get("velocidade"))
        if velocidade is _Bad.BAD:
            bad.append("velocidade")
            velocidade = None
        ignicao = _bool(get("ignicao"))
        if ignicao is _Bad.BAD:
            bad.append("ignicao")
            ignicao = None
        odometro = _number(get("odometro"))
        if odometro is _Bad.BAD:
            bad.append("odometro")
            odometro = None
        odometro_can = _number(get("odometro_can"))
        if odometro_can is _Bad.BAD:
            bad.append("odometro_can")
            odometro_can = None
        horimetro = _number(get("horimetro"))
        if horimetro is _Bad.BAD:
            bad.append("horimetro")
            horimetro = None
        bateria = _number(get("bateria"))
        if bateria is _Bad.BAD:
            bad.append("bateria")
            bateria = None
        logradouro = _text(get("logradouro"))
        if logradouro is _Bad.BAD:
            bad.append("logradouro")
            logradouro = None
        descricao = _text(get("descricao"))
        if descricao is _Bad.BAD:
            bad.append("descricao")
            descricao = None
        frota = _text(get("frota"))
        if frota is _Bad.BAD:
            bad.append("frota")
            frota = None
        equipamento_serial = _text(get("equipamento_serial"))
        if equipamento_serial is _Bad.BAD:
            bad.append("equipamento_serial")
            equipamento_serial = None
        data_gravacao = _timestamp(get("data_gravacao"), tz)
        if data_gravacao is _Bad.BAD:
            bad.append("data_gravacao")
            data_gravacao = None
        if bad:
            poisoned = _out_of_range(row, bad, placa)
            if poisoned is not None:
                return poisoned

        if data_transmissao > limit:
            quality = FUTURE
        elif (
            latitude is not None
            and longitude is not None
            and -90.0 <= latitude <= 90.0
            and -180.0 <= longitude <= 180.0
            and (latitude != 0.0 or longitude != 0.0)
        ):
            quality = VALID
        else:
            quality = coordinate_quality(latitude, longitude, unreadable)

        return Position(
            placa,
            data_transmissao,
            latitude,
            longitude,
            velocidade,
            ignicao,
            odometro,
            odometro_can,
            horimetro,
            bateria,
            logradouro,
            descricao,
            frota,
            equipamento_serial,
            data_gravacao,
            placa_raw,
            quality,
            row,
            tuple(bad) if bad else (),
        )
    except Exception as exc:  # the contract is "never raises"; a bug must not stop an ingest
        return _internal_error(exc, raw)


def parse_trip(raw: object, tz: tzinfo) -> ProviderTrip | Reject:
    """One `resumoviagens` row -> `ProviderTrip` or `Reject`. Never raises.

    Required: `placa` and `data_inicio_conducao` (the natural key). Everything
    else is optional; unreadable values become `None` and are listed in
    `bad_fields`, as are coordinates outside the WGS84 ranges.
    """
    try:
        keyed = _keyed_at(raw, "data_inicio_conducao", tz)
        if isinstance(keyed, Reject):
            return keyed
        row, placa, placa_raw, start = keyed
        get = row.get

        bad: list[str] = []
        end = _timestamp(get("data_fim_conducao"), tz)
        if end is _Bad.BAD:
            bad.append("data_fim_conducao")
            end = None
        duration = _duration_s(get("duracao_conducao"))
        if duration is _Bad.BAD:
            bad.append("duracao_conducao")
            duration = None

        def coordinate(name: str, limit: float) -> float | None:
            value = _number_field(get(name), name, bad)
            if value is not None and not -limit <= value <= limit:
                bad.append(name)
                return None
            return value

        def number(name: str) -> float | None:
            return _number_field(get(name), name, bad)

        def text(name: str) -> str | None:
            return _text_field(get(name), name, bad)

        trip = ProviderTrip(
            placa=placa,
            data_inicio_conducao=start,
            data_fim_conducao=end,
            duracao_conducao=duration,
            distancia_conducao=number("distancia_conducao"),
            odometro_inicio_conducao=number("odometro_inicio_conducao"),
            odometro_fim_conducao=number("odometro_fim_conducao"),
            latitude_inicio_conducao=coordinate("latitude_inicio_conducao", 90.0),
            longitude_inicio_conducao=coordinate("longitude_inicio_conducao", 180.0),
            latitude_fim_conducao=coordinate("latitude_fim_conducao", 90.0),
            longitude_fim_conducao=coordinate("longitude_fim_conducao", 180.0),
            localizacao_inicio_conducao=text("localizacao_inicio_conducao"),
            localizacao_fim_conducao=text("localizacao_fim_conducao"),
            cliente=text("cliente"),
            cliente_fantasia=text("cliente_fantasia"),
            descricao=text("descricao"),
            frota=text("frota"),
            condutor_nome=text("condutor_nome"),
            condutor_identificacao=text("condutor_identificacao"),
            placa_raw=placa_raw,
            raw=row,
            bad_fields=tuple(bad),
        )
        return (_out_of_range(row, bad, placa) if bad else None) or trip
    except Exception as exc:  # see _parse_position
        return _internal_error(exc, raw)


def parse_terminal(raw: object) -> Terminal | Reject:
    """The `terminal` block of `/ultimasposicoesterminal` -> `Terminal` or `Reject`."""
    try:
        keyed = _keyed(raw)
        if isinstance(keyed, Reject):
            return keyed
        row, placa, placa_raw = keyed
        bad: list[str] = []
        return Terminal(
            placa=placa,
            descricao=_text_field(row.get("descricao"), "descricao", bad),
            frota=_text_field(row.get("frota"), "frota", bad),
            placa_raw=placa_raw,
            raw=row,
            bad_fields=tuple(bad),
        )
    except Exception as exc:  # see _parse_position
        return _internal_error(exc, raw)
