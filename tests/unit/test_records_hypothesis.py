"""Properties: the parsers survive any JSON value; plates, timestamps, flags hold their rules."""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from etrack.model import (
    DUPLICATE,
    FUTURE,
    JUMP,
    NO_FIX,
    OUT_OF_RANGE,
    VALID,
    Position,
    ProviderTrip,
    Reject,
    canonical_plate,
)
from etrack.provider.parse import (
    BAD_PLATE,
    BAD_TIMESTAMP,
    MISSING_PLATE,
    MISSING_TIMESTAMP,
    NOT_AN_OBJECT,
    parse_position,
    parse_trip,
)
from etrack.quality import flag_sequence

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2025, 7, 2, 12, 0, tzinfo=UTC)
REASONS = {NOT_AN_OBJECT, MISSING_PLATE, BAD_PLATE, MISSING_TIMESTAMP, BAD_TIMESTAMP}
QUALITIES = {VALID, NO_FIX, OUT_OF_RANGE, FUTURE, DUPLICATE, JUMP}
PLATE = r"[A-Z]{3}[0-9][A-Z0-9][0-9]{2}"

POSITION_FIELDS = [
    "placa",
    "descricao",
    "frota",
    "equipamento_serial",
    "data_transmissao",
    "data_gravacao",
    "latitude",
    "longitude",
    "logradouro",
    "velocidade",
    "ignicao",
    "odometro",
    "odometro_can",
    "horimetro",
    "bateria",
]
TRIP_FIELDS = [
    "cliente",
    "cliente_fantasia",
    "placa",
    "descricao",
    "frota",
    "data_inicio_conducao",
    "data_fim_conducao",
    "latitude_inicio_conducao",
    "longitude_inicio_conducao",
    "latitude_fim_conducao",
    "longitude_fim_conducao",
    "localizacao_inicio_conducao",
    "localizacao_fim_conducao",
    "odometro_inicio_conducao",
    "odometro_fim_conducao",
    "duracao_conducao",
    "distancia_conducao",
    "condutor_nome",
    "condutor_identificacao",
]

# Strings close to what the parsers look for, so the interesting branches are
# reached far more often than by random text.
tricky_strings = st.sampled_from(
    [
        "",
        " ",
        "null",
        "NULL",
        "-",
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "1e999",
        "0",
        "1",
        "true",
        "off",
        "não",
        "54 km/h",
        "12,6 V",
        "1.234,5 km",
        "1,234.5",
        "1.2.3",
        "23.5 S",
        "-23.550520",
        "-23,550520",
        "ABC-1234",
        "abc1d23",
        "ABC12345",
        "01/07/2025 08:00:00",
        "01-07-2025 08:00",
        "31/02/2025 08:00:00",
        "01/07/2025 24:00:00",
        "01/07/9999 23:59:59",
        "01/01/0001 00:00:00",
        "2025-07-01T08:00:00Z",
        "2025-07-01T08:00:00+14:00",
        "0001-01-01T00:00:00+01:00",
        "01:30:15",
        "99:99:99",
        "\x00",
        "Rua A\x00B",
    ]
)
# Built from parts rather than with st.from_regex, which costs ~1 ms an example.
number_like = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["", " ", "-", "+", "--"]),
        st.text(alphabet="0123456789.,", min_size=1, max_size=12),
        st.sampled_from(["", " ", "km/h", " km/h", "V", " V", " km", "h", "%", " S", "x", "e5"]),
    ),
)
timestamp_like = st.builds(
    "{}{:02d}{}{:02d}{}{}{}{:02d}:{:02d}{}".format,
    st.sampled_from(["", " "]),
    st.integers(0, 40),
    st.sampled_from(["/", "-"]),
    st.integers(0, 14),
    st.sampled_from(["/", "-"]),
    st.sampled_from(["2025", "1999", "0001", "9999", "25"]),
    st.sampled_from([" ", "T", "  "]),
    st.integers(0, 25),
    st.integers(0, 61),
    st.sampled_from(["", ":00", ":59", ":60", ":5", ".123"]),
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | tricky_strings
    | number_like
    | timestamp_like
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=6,
)


def base_position() -> dict[str, Any]:
    return {
        "placa": "ABC-1234",
        "descricao": "VW Delivery",
        "frota": "Frota Sul",
        "equipamento_serial": "865432100012345",
        "data_transmissao": "01/07/2025 08:00:00",
        "data_gravacao": "01/07/2025 08:00:03",
        "latitude": "-23.550520",
        "longitude": "-46.633308",
        "logradouro": "Avenida Paulista, 1000",
        "velocidade": "54",
        "ignicao": "1",
        "odometro": "123456.7",
        "odometro_can": None,
        "horimetro": "1520.5",
        "bateria": "12.6",
    }


def base_trip() -> dict[str, Any]:
    return {
        "placa": "ABC1D23",
        "data_inicio_conducao": "01/07/2025 08:00:00",
        "data_fim_conducao": "01/07/2025 09:30:15",
        "duracao_conducao": "01:30:15",
        "distancia_conducao": "42,5",
        "latitude_inicio_conducao": "-23.55",
        "longitude_inicio_conducao": "-46.63",
        "odometro_inicio_conducao": "1.234,5",
    }


def mutated(base: dict[str, Any], fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """The base row with any fields replaced by arbitrary JSON and any fields removed."""
    return st.builds(
        lambda replaced, removed, extra: {
            key: value for key, value in {**base, **replaced, **extra}.items() if key not in removed
        },
        # A few fields per example: every field still gets every kind of value
        # over the run, and generation stays cheap enough for 2,000 examples.
        st.dictionaries(st.sampled_from(fields), json_values, min_size=1, max_size=4),
        st.sets(st.sampled_from(fields), max_size=3),
        st.dictionaries(st.text(max_size=6), scalars, max_size=1),
    )


def check_position(raw: object, record: Position | Reject) -> None:
    if isinstance(record, Reject):
        assert record.reason in REASONS, record
        assert record.message
        assert record.raw is raw
        return
    assert isinstance(record, Position)
    assert record.raw is raw
    assert len(record.placa) == 7
    assert canonical_plate(record.placa) == record.placa
    assert record.data_transmissao.utcoffset() == timedelta(0)
    assert record.data_gravacao is None or record.data_gravacao.utcoffset() == timedelta(0)
    assert record.quality in QUALITIES - {DUPLICATE, JUMP}
    for name in ("latitude", "longitude", "velocidade", "odometro", "odometro_can", "horimetro"):
        value = getattr(record, name)
        assert value is None or (type(value) is float and math.isfinite(value)), (name, value)
    assert record.ignicao in (None, True, False)
    for name in ("logradouro", "descricao", "frota", "equipamento_serial"):
        value = getattr(record, name)
        assert value is None or (type(value) is str and value == value.strip() and value)
        assert value is None or "\x00" not in value
        assert value is None or not any(unicodedata.category(c) == "Cc" for c in value)
    if record.quality == VALID:
        assert record.latitude is not None
        assert record.longitude is not None
        assert -90 <= record.latitude <= 90
        assert -180 <= record.longitude <= 180
    assert set(record.bad_fields) <= set(POSITION_FIELDS)


def parse(raw: object) -> Position | Reject:
    return parse_position(raw, SAO_PAULO, now=NOW, future_tolerance_s=600)


@given(mutated(base_position(), POSITION_FIELDS))
def test_any_json_in_any_position_field(raw: dict[str, Any]) -> None:
    check_position(raw, parse(raw))


@given(json_values)
def test_any_json_value_as_a_position_row(raw: object) -> None:
    record = parse(raw)
    check_position(raw, record)
    if not isinstance(raw, dict):
        assert isinstance(record, Reject)
        assert record.reason == NOT_AN_OBJECT


@given(mutated(base_trip(), TRIP_FIELDS))
def test_any_json_in_any_trip_field(raw: dict[str, Any]) -> None:
    record = parse_trip(raw, SAO_PAULO)
    if isinstance(record, Reject):
        assert record.reason in REASONS, record
        assert record.raw is raw
        return
    assert isinstance(record, ProviderTrip)
    assert record.raw is raw
    assert record.data_inicio_conducao.utcoffset() == timedelta(0)
    assert record.duracao_conducao is None or record.duracao_conducao >= 0
    for value in (record.distancia_conducao, record.latitude_inicio_conducao):
        assert value is None or math.isfinite(value)
    assert set(record.bad_fields) <= set(TRIP_FIELDS)


@given(json_values)
def test_any_json_value_as_a_trip_row(raw: object) -> None:
    record = parse_trip(raw, SAO_PAULO)
    assert isinstance(record, ProviderTrip | Reject)
    if isinstance(record, Reject):
        assert record.reason in REASONS


@given(scalars)
def test_any_scalar_in_a_number_boolean_or_time_field(value: object) -> None:
    # A value the field cannot read is None and named in bad_fields, never an error.
    raw = {**base_position(), "odometro": value, "ignicao": value, "data_gravacao": value}
    record = parse(raw)
    check_position(raw, record)
    assert isinstance(record, Position)
    assert record.odometro is None or math.isfinite(record.odometro)


# ------------------------------------------------------------------- plates


@st.composite
def dressed_plates(draw: st.DrawFn) -> tuple[str, str]:
    plate = draw(st.from_regex(PLATE, fullmatch=True))
    pieces = []
    for char in plate:
        pieces.append(char.lower() if draw(st.booleans()) else char)
        pieces.append(draw(st.sampled_from(["", "", "", "-", " ", " - ", "\u2013"])))
    outer = st.sampled_from(["", " ", "\t", "  \n"])
    return plate, draw(outer) + "".join(pieces) + draw(outer)


@given(dressed_plates())
def test_every_dressing_of_a_plate_is_the_same_plate(case: tuple[str, str]) -> None:
    plate, dressed = case
    assert canonical_plate(dressed) == plate


# --------------------------------------------------------------- timestamps

ZONES = [
    ZoneInfo(name)
    for name in ("America/Sao_Paulo", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
]


@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 12, 31)),
    st.sampled_from(ZONES),
    st.booleans(),
)
def test_local_times_match_zoneinfo(naive: datetime, zone: ZoneInfo, dashes: bool) -> None:
    # The text cannot carry `fold`: it reads as fold=0, so the expectation does too.
    naive = naive.replace(microsecond=0, fold=0)
    text = naive.strftime("%d-%m-%Y %H:%M:%S" if dashes else "%d/%m/%Y %H:%M:%S")
    expected = naive.replace(tzinfo=zone).astimezone(UTC)
    # Twice: the first fills the per-hour cache, the second reads it.
    for _ in range(2):
        raw = {**base_position(), "data_transmissao": text}
        record = parse_position(raw, zone, now=NOW, future_tolerance_s=600)
        assert isinstance(record, Position)
        assert record.data_transmissao == expected


# ------------------------------------------------------------ flag_sequence


@st.composite
def position_lists(draw: st.DrawFn) -> list[Position]:
    """Few plates, few distinct seconds (so duplicates happen), any coordinates."""
    count = draw(st.integers(min_value=0, max_value=25))
    positions = []
    for _ in range(count):
        plate = draw(st.sampled_from(["ABC1234", "XYZ9A87"]))
        second = draw(st.integers(min_value=0, max_value=40))
        lat = draw(st.sampled_from([0.0, -23.5, -23.51, 10.0, 95.0]) | st.floats(-90, 90))
        lon = draw(st.sampled_from([0.0, -46.6, -46.61, 170.0]) | st.floats(-180, 180))
        when = datetime(2025, 7, 1, 8, 0, 0) + timedelta(seconds=second * 30)
        record = parse(
            {
                "placa": plate,
                "data_transmissao": when.strftime("%d/%m/%Y %H:%M:%S"),
                "latitude": lat,
                "longitude": lon,
                "velocidade": draw(st.integers(0, 3)),
            }
        )
        assert isinstance(record, Position)
        positions.append(record)
    return positions


@given(position_lists(), st.booleans(), st.floats(min_value=1.0, max_value=1000.0))
def test_flag_sequence_one_output_per_input(
    positions: list[Position], with_previous: bool, jump_speed: float
) -> None:
    previous = {p.placa: p for p in positions[:1]} if with_previous else None
    flagged = flag_sequence(positions, jump_speed_kmh=jump_speed, previous=previous)
    assert len(flagged) == len(positions)
    assert [p.key for p in flagged] == [p.key for p in positions]
    assert all(p.quality in QUALITIES for p in flagged)
    keys = [p.key for p in flagged if p.quality != DUPLICATE]
    assert len(keys) == len(set(keys))  # exactly one survivor per natural key
    assert {p.key for p in flagged} == {p.key for p in flagged if p.quality != DUPLICATE}
    for before, after in zip(positions, flagged, strict=True):
        if after.quality == JUMP:
            assert before.quality == VALID
    assert flag_sequence(flagged, jump_speed_kmh=jump_speed, previous=previous) == flagged
