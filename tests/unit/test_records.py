"""Row parsing (every accepted form, every reject reason) and the quality flags."""

from __future__ import annotations

import copy
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from etrack.model import (
    DUPLICATE,
    FUTURE,
    JUMP,
    NO_FIX,
    OUT_OF_RANGE,
    VALID,
    InvalidPlate,
    InvalidValue,
    OutOfRangeNumber,
    Position,
    ProviderTrip,
    Reject,
    Terminal,
    canonical_plate,
    short_repr,
)
from etrack.provider.parse import (
    BAD_PLATE,
    BAD_TIMESTAMP,
    MISSING_PLATE,
    MISSING_TIMESTAMP,
    NOT_AN_OBJECT,
    NUMBER_OUT_OF_RANGE,
    parse_position,
    parse_positions,
    parse_terminal,
    parse_trip,
    parse_vehicle,
)
from etrack.quality import flag_sequence

SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2025, 7, 2, 12, 0, tzinfo=UTC)
TOLERANCE_S = 600.0
JUMP_KMH = 300.0


def vehicle_row(**overrides: Any) -> dict[str, Any]:
    """A `/ultimas-posicoes` row as the provider sends it: every value a string."""
    row: dict[str, Any] = {
        "placa": "ABC-1234",
        "descricao": "VW Delivery 9.170",
        "frota": "Frota Sul",
        "equipamento_serial": "865432100012345",
        "data_transmissao": "01/07/2025 08:00:00",
        "data_gravacao": "01/07/2025 08:00:03",
        "latitude": "-23.550520",
        "longitude": "-46.633308",
        "logradouro": "Avenida Paulista, 1000 - Bela Vista, São Paulo - SP",
        "velocidade": "54 km/h",
        "ignicao": "1",
        "odometro": "123456.7",
        "odometro_can": None,
        "horimetro": "1520,5",
        "bateria": "12,6 V",
    }
    row.update(overrides)
    return row


def trip_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "cliente": "Transportes Exemplo Ltda",
        "cliente_fantasia": "Exemplo",
        "placa": "ABC1D23",
        "descricao": "Scania R450",
        "frota": "Frota Norte",
        "data_inicio_conducao": "01/07/2025 08:00:00",
        "data_fim_conducao": "01/07/2025 09:30:15",
        "latitude_inicio_conducao": "-23.550520",
        "longitude_inicio_conducao": "-46.633308",
        "latitude_fim_conducao": "-22.906847",
        "longitude_fim_conducao": "-43.172896",
        "localizacao_inicio_conducao": "São Paulo - SP",
        "localizacao_fim_conducao": "Rio de Janeiro - RJ",
        "odometro_inicio_conducao": "1.234,5",
        "odometro_fim_conducao": "1.664,0",
        "duracao_conducao": "01:30:15",
        "distancia_conducao": "429,5",
        "condutor_nome": "",
        "condutor_identificacao": "",
    }
    row.update(overrides)
    return row


def parse(raw: object, now: datetime = NOW) -> Position | Reject:
    return parse_position(raw, SAO_PAULO, now=now, future_tolerance_s=TOLERANCE_S)


def position(raw: object) -> Position:
    record = parse(raw)
    assert isinstance(record, Position), record
    return record


def reject(raw: object) -> Reject:
    record = parse(raw)
    assert isinstance(record, Reject), record
    return record


# The rules for one field, read through the row parsers (the only way the
# code reads a field): a value is put in a field of a valid row, and a field
# listed in `bad_fields` raises InvalidValue like a standalone coercer would.


def _field(record: Position | ProviderTrip | Reject, name: str, value: object, kind: str) -> Any:
    assert not isinstance(record, Reject), record
    if name in record.bad_fields:
        raise InvalidValue(f"expected {kind}, got {short_repr(value)}")
    return getattr(record, name)


def coerce_number(value: object) -> float | None:
    record = parse(vehicle_row(odometro=value))
    return _field(record, "odometro", value, "a number")  # type: ignore[no-any-return]


def coerce_bool(value: object) -> bool | None:
    record = parse(vehicle_row(ignicao=value))
    return _field(record, "ignicao", value, "1/0, true/false, on/off or sim/não")  # type: ignore[no-any-return]


def coerce_text(value: object) -> str | None:
    record = parse(vehicle_row(logradouro=value))
    return _field(record, "logradouro", value, "text")  # type: ignore[no-any-return]


def coerce_timestamp(value: object, tz: ZoneInfo) -> datetime | None:
    record = parse_position(vehicle_row(data_gravacao=value), tz, now=NOW, future_tolerance_s=0)
    kind = "a time like DD/MM/YYYY HH:MM:SS or ISO 8601"
    return _field(record, "data_gravacao", value, kind)  # type: ignore[no-any-return]


def coerce_duration_s(value: object) -> int | None:
    record = parse_trip(trip_row(duracao_conducao=value), SAO_PAULO)
    return _field(record, "duracao_conducao", value, "a duration like HH:MM:SS")  # type: ignore[no-any-return]


# ------------------------------------------------------------------- plates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABC1234", "ABC1234"),
        ("abc-1234", "ABC1234"),
        (" ABC 1234 ", "ABC1234"),
        ("AbC - 1234", "ABC1234"),
        ("ABC\u20131234", "ABC1234"),  # an en dash pasted from a spreadsheet
        ("\tabc1234\n", "ABC1234"),
        ("ABC1D23", "ABC1D23"),
        ("abc1d23", "ABC1D23"),
        ("abc-1d23", "ABC1D23"),
        ("ABC 1D 23", "ABC1D23"),
    ],
)
def test_canonical_plate_accepts_every_dressing(text: str, expected: str) -> None:
    assert canonical_plate(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        *("", "   ", "xx", "ABC123", "ABC12345", "ABCD123", "1234ABC", "AB1234", "ABC1D2E"),
        *("ÁBC1234", "ABC.1234", "ABC_1234", "ＡＢＣ１２３４"),
        *(None, 1234, ["ABC1234"], {"placa": "ABC1234"}),
    ],
)
def test_canonical_plate_rejects_everything_else(text: object) -> None:
    with pytest.raises(InvalidPlate) as caught:
        canonical_plate(text)
    assert "expected a Brazilian plate like ABC1234 or ABC1D23, got" in str(caught.value)
    assert caught.value.value is text


def test_invalid_plate_message_names_what_was_expected() -> None:
    with pytest.raises(
        ValueError, match=r"^expected a Brazilian plate like ABC1234 or ABC1D23, got 'xx'$"
    ):
        canonical_plate("xx")


def test_invalid_plate_message_is_bounded() -> None:
    with pytest.raises(InvalidPlate) as caught:
        canonical_plate("A" * 10_000)
    assert len(str(caught.value)) < 200


# ------------------------------------------------------------------ numbers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (54, 54.0),
        (54.5, 54.5),
        (-23.55052, -23.55052),
        ("54", 54.0),
        (" 54 ", 54.0),
        ("-23.550520", -23.55052),
        ("-23,550520", -23.55052),
        ("+5", 5.0),
        ("54 km/h", 54.0),
        ("54km/h", 54.0),
        ("54 KM/H", 54.0),
        ("54 km / h", 54.0),
        ("54 kmh", 54.0),
        ("12,6 V", 12.6),
        ("12.6V", 12.6),
        ("12,6 volts", 12.6),
        ("1520,5 h", 1520.5),
        ("1520.5 horas", 1520.5),
        ("123456.7 km", 123456.7),
        ("80 %", 80.0),
        ("-23.5°", -23.5),
        # separators: a lone separator is decimal
        ("1.234", 1.234),
        ("1,234", 1.234),
        (",5", 0.5),
        # both present: the last one is decimal
        ("1.234,5", 1234.5),
        ("1,234.5", 1234.5),
        ("1.234,5 km", 1234.5),
        ("1.234.567,89", 1234567.89),
        # one separator repeated: thousands
        ("1.234.567", 1234567.0),
        ("1,234,567", 1234567.0),
        # Python's own float syntax
        ("1e3", 1000.0),
        ("0", 0.0),
        (0, 0.0),
    ],
)
def test_numbers_in_every_form(value: object, expected: float) -> None:
    assert coerce_number(value) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value", [None, "", "   ", "null", "NULL", " None ", "nil", "n/a", "-", "--"]
)
def test_missing_numbers_are_none(value: object) -> None:
    assert coerce_number(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "1e999",
        math.nan,
        math.inf,
        -math.inf,
        10**400,
        True,
        False,
        [],
        {},
        [1],
        "23.5 S",  # a hemisphere letter is not a unit
        "54 mph",
        "12 abc 3",
        "1,2,3",
        "1.2.3",
        "1.234.5",
        "12.34.567",
        "1.234,5.6",
        "1,23,4.5",
        "0x10",
        "--5",
    ],
)
def test_garbage_numbers_raise_invalid_value(value: object) -> None:
    with pytest.raises(InvalidValue, match="expected a number"):
        coerce_number(value)


# ----------------------------------------------------------------- booleans


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, True),
        (0, False),
        (1.0, True),
        (0.0, False),
        ("1", True),
        ("0", False),
        (True, True),
        (False, False),
        ("true", True),
        ("false", False),
        ("TRUE", True),
        (" False ", False),
        ("on", True),
        ("off", False),
        ("ON", True),
        ("sim", True),
        ("não", False),
        ("NÃO", False),
        ("nao", False),
        ("ligado", True),
        ("desligada", False),
        ("yes", True),
        ("no", False),
    ],
)
def test_booleans_in_every_form(value: object, expected: bool) -> None:
    assert coerce_bool(value) is expected


@pytest.mark.parametrize("value", [None, "", " ", "null"])
def test_missing_booleans_are_none(value: object) -> None:
    assert coerce_bool(value) is None


@pytest.mark.parametrize("value", [2, -1, 0.5, math.nan, "2", "talvez", [], {}, "1.0"])
def test_garbage_booleans_raise(value: object) -> None:
    with pytest.raises(InvalidValue, match="expected 1/0"):
        coerce_bool(value)


# --------------------------------------------------------------- timestamps


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_local_sao_paulo_time_is_converted_to_utc() -> None:
    converted = coerce_timestamp("01/07/2025 08:00:00", SAO_PAULO)
    assert converted == utc(2025, 7, 1, 11, 0)
    assert converted is not None
    assert converted.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01/07/2025 08:00:00", utc(2025, 7, 1, 11, 0, 0)),
        ("01/07/2025 08:00", utc(2025, 7, 1, 11, 0, 0)),
        ("01-07-2025 08:00:00", utc(2025, 7, 1, 11, 0, 0)),
        ("01-07-2025 08:00", utc(2025, 7, 1, 11, 0, 0)),
        ("1/7/2025 8:05:09", utc(2025, 7, 1, 11, 5, 9)),
        (" 01/07/2025 08:00:00 ", utc(2025, 7, 1, 11, 0, 0)),
        ("01/07/2025T08:00:00", utc(2025, 7, 1, 11, 0, 0)),
        ("01/07/2025 08:00:00.250", datetime(2025, 7, 1, 11, 0, 0, 250000, tzinfo=UTC)),
        ("31/12/2025 23:59:59", utc(2026, 1, 1, 2, 59, 59)),  # crosses the UTC year
        ("2025-07-01T08:00:00", utc(2025, 7, 1, 11, 0, 0)),
        ("2025-07-01 08:00:00", utc(2025, 7, 1, 11, 0, 0)),
        ("2025-07-01T08:00", utc(2025, 7, 1, 11, 0, 0)),
        ("2025-07-01T08:00:00Z", utc(2025, 7, 1, 8, 0, 0)),
        ("2025-07-01T08:00:00+00:00", utc(2025, 7, 1, 8, 0, 0)),
        ("2025-07-01T08:00:00-03:00", utc(2025, 7, 1, 11, 0, 0)),
        ("2025-07-01T08:00:00.5+02:00", datetime(2025, 7, 1, 6, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_timestamps_in_every_form(text: str, expected: datetime) -> None:
    converted = coerce_timestamp(text, SAO_PAULO)
    assert converted == expected
    assert converted is not None
    assert converted.utcoffset() == timedelta(0)


@pytest.mark.parametrize("value", [None, "", "  ", "null"])
def test_missing_timestamps_are_none(value: object) -> None:
    assert coerce_timestamp(value, SAO_PAULO) is None


@pytest.mark.parametrize(
    "value",
    [
        "ontem",
        "31/02/2025 08:00:00",
        "01/13/2025 08:00:00",
        "01/07/2025 24:00:00",
        "01/07/2025 08:60:00",
        "01/07/2025 08:00:60",
        "01/07/2025",  # a date is not a time
        "2025-07-01",
        "01/07/25 08:00:00",
        "01/07-2025 08:00:00",  # mixed separators
        "01/07/2025 08:+5:00",
        "01/07/2025 08:00:0١",  # a non-ASCII digit
        "2025-07-01T08:00:00+25:00",
        1751367600,
        1751367600.0,
        True,
        [],
        {},
    ],
)
def test_garbage_timestamps_raise(value: object) -> None:
    with pytest.raises(InvalidValue, match="expected a time like DD/MM/YYYY HH:MM:SS"):
        coerce_timestamp(value, SAO_PAULO)


def test_timestamp_cache_keeps_each_value_exact() -> None:
    # The second and later values of an hour come from the per-hour cache.
    for minute in (0, 1, 59):
        for second in (0, 30, 59):
            text = f"15/03/2025 17:{minute:02d}:{second:02d}"
            assert coerce_timestamp(text, SAO_PAULO) == utc(2025, 3, 15, 20, minute, second)


def test_timestamps_use_the_zone_passed_in() -> None:
    assert coerce_timestamp("01/07/2025 08:00:00", ZoneInfo("UTC")) == utc(2025, 7, 1, 8)
    assert coerce_timestamp("01/07/2025 08:00:00", ZoneInfo("Asia/Kolkata")) == utc(
        2025, 7, 1, 2, 30
    )
    assert coerce_timestamp("01/07/2025 08:00:00", ZoneInfo("America/Manaus")) == utc(
        2025, 7, 1, 12
    )


def test_historic_sao_paulo_daylight_saving_is_honoured() -> None:
    # Brazil had DST until 2019: 15 January 2018 was UTC-2.
    assert coerce_timestamp("15/01/2018 08:00:00", SAO_PAULO) == utc(2018, 1, 15, 10)


def test_dst_gap_and_fold_take_the_offset_before_the_change() -> None:
    new_york = ZoneInfo("America/New_York")
    # 02:30 on 10 March 2024 does not exist (02:00 -> 03:00): EST (-5) applies.
    assert coerce_timestamp("10/03/2024 02:30:00", new_york) == utc(2024, 3, 10, 7, 30)
    # 01:30 on 3 November 2024 happens twice: the first one (EDT, -4) is taken.
    assert coerce_timestamp("03/11/2024 01:30:00", new_york) == utc(2024, 11, 3, 5, 30)


def test_a_transition_inside_an_hour_is_converted_exactly() -> None:
    # Lord Howe moves its clocks by 30 min at 02:00 local: 02:00-02:30 is a gap.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    for text in ("06/10/2024 02:10:00", "06/10/2024 02:45:00", "07/04/2024 01:45:00"):
        day, month, rest = text.split("/")
        year, clock = rest.split(" ")
        hour, minute, second = (int(part) for part in clock.split(":"))
        naive = datetime(int(year), int(month), int(day), hour, minute, second)
        assert coerce_timestamp(text, lord_howe) == naive.replace(tzinfo=lord_howe).astimezone(UTC)


def test_extreme_years_do_not_overflow() -> None:
    assert coerce_timestamp("01/01/0001 05:00:00", SAO_PAULO) is not None
    with pytest.raises(InvalidValue):
        coerce_timestamp("31/12/9999 23:00:00", SAO_PAULO)  # past datetime.max in UTC


# ------------------------------------------------------- text and durations


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Frota Sul ", "Frota Sul"),
        ("", None),
        ("   ", None),
        (None, None),
        ("null", None),
        ("-", None),
        ("Rua A\x00", "Rua A"),
        ("\x00", None),
        (865432100012345, "865432100012345"),
        (12.0, "12"),
        (12.5, "12.5"),
    ],
)
def test_text(value: object, expected: str | None) -> None:
    assert coerce_text(value) == expected


@pytest.mark.parametrize("value", [True, [], {}, math.nan])
def test_garbage_text_raises(value: object) -> None:
    with pytest.raises(InvalidValue, match="expected text"):
        coerce_text(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01:30:15", 5415),
        ("1:30:15", 5415),
        ("00:00:00", 0),
        ("27:00:00", 27 * 3600),
        ("01:30", 5400),
        (" 00:05:00 ", 300),
        ("", None),
        (None, None),
    ],
)
def test_durations(value: object, expected: int | None) -> None:
    assert coerce_duration_s(value) == expected


@pytest.mark.parametrize("value", ["1h30", "01:60:00", "01:00:60", "-01:00:00", 5415, [], "a:b:c"])
def test_garbage_durations_raise(value: object) -> None:
    with pytest.raises(InvalidValue, match="expected a duration"):
        coerce_duration_s(value)


# ------------------------------------------------------------ parse_position


def test_a_realistic_vehicle_row() -> None:
    raw = vehicle_row()
    pristine = copy.deepcopy(raw)
    record = position(raw)
    assert record == Position(
        placa="ABC1234",
        data_transmissao=utc(2025, 7, 1, 11, 0, 0),
        latitude=-23.55052,
        longitude=-46.633308,
        velocidade=54.0,
        ignicao=True,
        odometro=123456.7,
        odometro_can=None,
        horimetro=1520.5,
        bateria=12.6,
        logradouro="Avenida Paulista, 1000 - Bela Vista, São Paulo - SP",
        descricao="VW Delivery 9.170",
        frota="Frota Sul",
        equipamento_serial="865432100012345",
        data_gravacao=utc(2025, 7, 1, 11, 0, 3),
        placa_raw="ABC-1234",
        quality=VALID,
        raw=raw,
        bad_fields=(),
        duplicate_differs=False,
    )
    assert record.raw is raw
    assert raw == pristine
    assert record.key == ("ABC1234", utc(2025, 7, 1, 11, 0, 0))
    assert record.is_valid


def test_json_numbers_work_as_well_as_strings() -> None:
    record = position(
        vehicle_row(latitude=-23.55052, longitude=-46.633308, velocidade=54, ignicao=0, bateria=1)
    )
    assert (record.latitude, record.longitude, record.velocidade) == (-23.55052, -46.633308, 54.0)
    assert record.ignicao is False
    assert record.bateria == 1.0  # a GlobalStar indicator stays a number


def test_a_history_row_without_serial_and_storage_time() -> None:
    raw = vehicle_row()
    del raw["equipamento_serial"], raw["data_gravacao"]
    record = position(raw)
    assert record.equipamento_serial is None
    assert record.data_gravacao is None
    assert record.bad_fields == ()


def test_empty_address_is_none() -> None:
    assert position(vehicle_row(logradouro="")).logradouro is None
    assert position(vehicle_row(logradouro="   ")).logradouro is None


def test_unreadable_optional_fields_become_none_and_are_listed() -> None:
    record = position(
        vehicle_row(velocidade="rápido", ignicao="talvez", odometro=[1], data_gravacao="ontem")
    )
    assert (record.velocidade, record.ignicao, record.odometro, record.data_gravacao) == (
        None,
        None,
        None,
        None,
    )
    assert record.bad_fields == ("velocidade", "ignicao", "odometro", "data_gravacao")
    assert record.quality == VALID


def test_parse_vehicle_is_parse_position() -> None:
    assert parse_vehicle is parse_position


@pytest.mark.parametrize("raw", [None, [], [vehicle_row()], "ABC1234", 42, 4.2, True])
def test_not_an_object(raw: object) -> None:
    record = reject(raw)
    assert record.reason == NOT_AN_OBJECT
    assert record.message.startswith("expected a JSON object, got")
    assert record.raw is raw
    assert record.placa is None


@pytest.mark.parametrize("plate", [None, "", "  ", "null"])
def test_missing_plate(plate: object) -> None:
    raw = vehicle_row(placa=plate)
    record = reject(raw)
    assert (record.reason, record.raw) == (MISSING_PLATE, raw)
    assert record.raw is raw


def test_absent_plate() -> None:
    raw = vehicle_row()
    del raw["placa"]
    assert reject(raw).reason == MISSING_PLATE


@pytest.mark.parametrize("plate", ["xx", "ABC12345", 1234, ["ABC1234"]])
def test_bad_plate(plate: object) -> None:
    record = reject(vehicle_row(placa=plate))
    assert record.reason == BAD_PLATE
    assert "expected a Brazilian plate like ABC1234 or ABC1D23" in record.message


@pytest.mark.parametrize("sent", [None, "", " ", "null"])
def test_missing_timestamp(sent: object) -> None:
    record = reject(vehicle_row(data_transmissao=sent))
    assert record.reason == MISSING_TIMESTAMP
    assert record.placa == "ABC1234"  # so the ingest can file the reject under its vehicle


def test_absent_timestamp() -> None:
    raw = vehicle_row()
    del raw["data_transmissao"]
    assert reject(raw).reason == MISSING_TIMESTAMP


@pytest.mark.parametrize("sent", ["ontem", "31/02/2025 08:00:00", 1751367600, {"d": 1}])
def test_bad_timestamp(sent: object) -> None:
    record = reject(vehicle_row(data_transmissao=sent))
    assert record.reason == BAD_TIMESTAMP
    assert record.placa == "ABC1234"
    assert "data_transmissao" in record.message


# ------------------------------------------------------- per-row quality


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [("0", "0"), (0, 0), ("0.0", "-0.0"), (None, None), ("", ""), (None, "-46.6"), ("-23.5", None)],
)
def test_no_fix(latitude: object, longitude: object) -> None:
    assert position(vehicle_row(latitude=latitude, longitude=longitude)).quality == NO_FIX


def test_absent_coordinates_are_no_fix() -> None:
    raw = vehicle_row()
    del raw["latitude"], raw["longitude"]
    assert position(raw).quality == NO_FIX


def test_the_equator_is_a_real_place() -> None:
    # Macapá sits on the equator: latitude 0 alone is a fix.
    assert position(vehicle_row(latitude="0", longitude="-51.07")).quality == VALID


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [
        ("90.0001", "-46.6"),
        ("-91", "-46.6"),
        ("-23.5", "180.5"),
        ("-23.5", "-181"),
        ("abc", "-46.6"),
        ("-23.5", "nan"),
        ("NaN", "NaN"),
        ("23.5 S", "46.6 W"),
        ([], {}),
        ("0", "500"),
    ],
)
def test_out_of_range(latitude: object, longitude: object) -> None:
    record = position(vehicle_row(latitude=latitude, longitude=longitude))
    assert record.quality == OUT_OF_RANGE


def test_unparseable_coordinates_are_listed() -> None:
    record = position(vehicle_row(latitude="abc"))
    assert record.latitude is None
    assert record.longitude == -46.633308
    assert "latitude" in record.bad_fields


def test_range_limits_are_inclusive() -> None:
    assert position(vehicle_row(latitude="-90", longitude="180")).quality == VALID


def test_future_beyond_tolerance() -> None:
    now = utc(2025, 7, 1, 11, 0, 0)  # == 08:00 local, the row's time
    at_limit = now + timedelta(seconds=TOLERANCE_S)
    local_limit = at_limit.astimezone(SAO_PAULO).strftime("%d/%m/%Y %H:%M:%S")
    local_after = (
        (at_limit + timedelta(seconds=1)).astimezone(SAO_PAULO).strftime("%d/%m/%Y %H:%M:%S")
    )
    at_tolerance = parse(vehicle_row(data_transmissao=local_limit), now=now)
    assert isinstance(at_tolerance, Position)
    assert at_tolerance.quality == VALID
    record = parse(vehicle_row(data_transmissao=local_after), now=now)
    assert isinstance(record, Position)
    assert record.quality == FUTURE


def test_future_wins_over_no_fix() -> None:
    record = parse(vehicle_row(latitude="0", longitude="0"), now=utc(2025, 6, 1))
    assert isinstance(record, Position)
    assert record.quality == FUTURE


def test_a_naive_now_is_taken_as_utc() -> None:
    naive_now = datetime(2025, 7, 1, 11, 0, 0)
    record = parse_position(
        vehicle_row(data_transmissao="01/07/2025 08:20:00"),
        SAO_PAULO,
        now=naive_now,
        future_tolerance_s=600,
    )
    assert isinstance(record, Position)
    assert record.quality == FUTURE


def test_parse_positions_splits_records_and_rejects() -> None:
    rows: list[object] = [
        vehicle_row(),
        "junk",
        vehicle_row(placa="xx"),
        vehicle_row(latitude="0", longitude="0"),
    ]
    parsed = parse_positions(rows, SAO_PAULO, now=NOW, future_tolerance_s=TOLERANCE_S)
    assert [p.quality for p in parsed.positions] == [VALID, NO_FIX]
    assert [r.reason for r in parsed.rejects] == [NOT_AN_OBJECT, BAD_PLATE]


# ----------------------------------------------------------------- trips


def test_a_realistic_trip_row() -> None:
    raw = trip_row()
    record = parse_trip(raw, SAO_PAULO)
    assert isinstance(record, ProviderTrip)
    assert record.placa == "ABC1D23"
    assert record.data_inicio_conducao == utc(2025, 7, 1, 11, 0, 0)
    assert record.data_fim_conducao == utc(2025, 7, 1, 12, 30, 15)
    assert record.duracao_conducao == 5415
    assert record.distancia_conducao == pytest.approx(429.5)
    assert record.odometro_inicio_conducao == pytest.approx(1234.5)
    assert record.odometro_fim_conducao == pytest.approx(1664.0)
    assert (record.latitude_inicio_conducao, record.longitude_fim_conducao) == (
        -23.55052,
        -43.172896,
    )
    assert record.localizacao_fim_conducao == "Rio de Janeiro - RJ"
    assert record.cliente_fantasia == "Exemplo"
    assert record.condutor_nome is None
    assert record.condutor_identificacao is None
    assert record.raw is raw
    assert record.bad_fields == ()
    assert record.key == ("ABC1D23", utc(2025, 7, 1, 11, 0, 0))


def test_trip_with_unreadable_optional_fields() -> None:
    record = parse_trip(
        trip_row(
            duracao_conducao="1h30",
            distancia_conducao="longe",
            data_fim_conducao="depois",
            latitude_inicio_conducao="-95",
        ),
        SAO_PAULO,
    )
    assert isinstance(record, ProviderTrip)
    assert record.duracao_conducao is None
    assert record.distancia_conducao is None
    assert record.data_fim_conducao is None
    assert record.latitude_inicio_conducao is None
    assert set(record.bad_fields) == {
        "duracao_conducao",
        "distancia_conducao",
        "data_fim_conducao",
        "latitude_inicio_conducao",
    }


def test_trip_in_progress_has_no_end() -> None:
    record = parse_trip(trip_row(data_fim_conducao="", duracao_conducao=""), SAO_PAULO)
    assert isinstance(record, ProviderTrip)
    assert record.data_fim_conducao is None
    assert record.bad_fields == ()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([], NOT_AN_OBJECT),
        (None, NOT_AN_OBJECT),
        (trip_row(placa=None), MISSING_PLATE),
        (trip_row(placa="ABC-12"), BAD_PLATE),
        (trip_row(data_inicio_conducao=""), MISSING_TIMESTAMP),
        (trip_row(data_inicio_conducao="01/07/2025"), BAD_TIMESTAMP),
    ],
)
def test_trip_rejects(raw: object, reason: str) -> None:
    record = parse_trip(raw, SAO_PAULO)
    assert isinstance(record, Reject)
    assert record.reason == reason
    assert record.raw is raw


def test_terminal_block() -> None:
    raw = {"placa": "abc-1234", "descricao": "Caminhão 12", "frota": ""}
    record = parse_terminal(raw)
    assert record == Terminal("ABC1234", "Caminhão 12", None, "abc-1234", raw, ())
    bad = parse_terminal({"placa": "?"})
    assert isinstance(bad, Reject)
    assert bad.reason == BAD_PLATE
    assert isinstance(parse_terminal("x"), Reject)


# ------------------------------------------------------------ sequence flags

ORIGIN_LAT, ORIGIN_LON = -23.5, -46.6
KM_IN_LON_DEGREES = 1 / (111.319 * math.cos(math.radians(ORIGIN_LAT)))
LOCAL_START = datetime(2025, 7, 1, 8, 0, 0)


def fix(minute: float, lat: float, lon: float, plate: str = "ABC1234", **extra: Any) -> Position:
    when = LOCAL_START + timedelta(minutes=minute)
    return position(
        {
            "placa": plate,
            "data_transmissao": when.strftime("%d/%m/%Y %H:%M:%S"),
            "latitude": lat,
            "longitude": lon,
            **extra,
        }
    )


def driving(minutes: range, plate: str = "ABC1234") -> list[Position]:
    """A vehicle driving east at 60 km/h: one km per minute."""
    return [
        fix(minute, ORIGIN_LAT, ORIGIN_LON + minute * KM_IN_LON_DEGREES, plate)
        for minute in minutes
    ]


def far_away(minute: float, plate: str = "ABC1234") -> Position:
    """A GPS jump: ~390 km north of the track."""
    return fix(minute, ORIGIN_LAT + 3.5, ORIGIN_LON, plate)


def qualities(positions: list[Position], **kwargs: Any) -> list[str]:
    return [p.quality for p in flag_sequence(positions, jump_speed_kmh=JUMP_KMH, **kwargs)]


def test_a_clean_track_stays_valid() -> None:
    assert qualities(driving(range(20))) == [VALID] * 20


def test_empty_input() -> None:
    assert flag_sequence([], jump_speed_kmh=JUMP_KMH) == []


def test_a_single_outlier_in_the_middle() -> None:
    track = driving(range(10))
    track[5] = far_away(5)
    assert qualities(track) == [VALID] * 5 + [JUMP] + [VALID] * 4


def test_an_outlier_first() -> None:
    track = [far_away(0), *driving(range(1, 10))]
    assert qualities(track) == [JUMP] + [VALID] * 9


def test_an_outlier_last() -> None:
    track = [*driving(range(9)), far_away(9)]
    assert qualities(track) == [VALID] * 9 + [JUMP]


def test_an_outlier_first_in_a_short_sequence() -> None:
    assert qualities([far_away(0), *driving(range(1, 3))]) == [JUMP, VALID, VALID]


def test_an_outlier_last_in_a_short_sequence() -> None:
    assert qualities([*driving(range(2)), far_away(2)]) == [VALID, VALID, JUMP]


def test_two_outliers_in_a_row() -> None:
    track = driving(range(10))
    track[4] = far_away(4)
    track[5] = fix(5, ORIGIN_LAT + 3.5, ORIGIN_LON + 0.001)
    assert qualities(track) == [VALID] * 4 + [JUMP, JUMP] + [VALID] * 4


def test_a_burst_longer_than_the_window_does_not_cut_the_track() -> None:
    track = driving(range(60))
    for minute in range(20, 35):
        track[minute] = far_away(minute)
    assert qualities(track) == [VALID] * 20 + [JUMP] * 15 + [VALID] * 25


def test_outliers_scattered_in_different_places() -> None:
    track = driving(range(30))
    track[3] = far_away(3)
    track[10] = fix(10, ORIGIN_LAT - 4.0, ORIGIN_LON)
    track[11] = fix(11, ORIGIN_LAT, ORIGIN_LON + 5.0)
    flagged = qualities(track)
    assert [i for i, q in enumerate(flagged) if q == JUMP] == [3, 10, 11]


def test_a_long_gap_is_not_a_jump() -> None:
    # 10 h without data, 50 km further: 5 km/h.
    later = fix(600, ORIGIN_LAT, ORIGIN_LON + 50 * KM_IN_LON_DEGREES)
    assert qualities([fix(0, ORIGIN_LAT, ORIGIN_LON), later]) == [VALID, VALID]
    assert qualities([*driving(range(5)), later]) == [VALID] * 6


def test_a_fast_but_possible_vehicle_is_not_a_jump() -> None:
    # 4 km a minute is 240 km/h: below the 300 km/h threshold.
    track = [fix(m, ORIGIN_LAT, ORIGIN_LON + 4 * m * KM_IN_LON_DEGREES) for m in range(5)]
    assert qualities(track) == [VALID] * 5


def test_two_inconsistent_points_alone_keep_the_earlier() -> None:
    assert qualities([fix(0, ORIGIN_LAT, ORIGIN_LON), far_away(1)]) == [VALID, JUMP]


def test_invalid_points_are_not_neighbours_and_not_jumps() -> None:
    track = driving(range(6))
    track[2] = fix(2, 0, 0)  # no fix
    track[3] = fix(3, 95, 0)  # out of range
    assert qualities(track) == [VALID, VALID, NO_FIX, OUT_OF_RANGE, VALID, VALID]


def test_same_timestamp_in_different_places_does_not_divide_by_zero() -> None:
    first = fix(5, ORIGIN_LAT, ORIGIN_LON)
    second = fix(5, ORIGIN_LAT + 1.0, ORIGIN_LON + 1.0)
    flagged = flag_sequence([first, second], jump_speed_kmh=JUMP_KMH)
    assert [p.quality for p in flagged] == [VALID, DUPLICATE]
    assert flagged[1].duplicate_differs


def test_identical_duplicates() -> None:
    track = driving(range(5))
    copy_of_two = position(dict(track[2].raw))
    flagged = flag_sequence([*track, copy_of_two], jump_speed_kmh=JUMP_KMH)
    assert [p.quality for p in flagged] == [VALID] * 5 + [DUPLICATE]
    assert not flagged[5].duplicate_differs
    assert flagged[2].quality == VALID


def test_duplicates_ignore_plate_dressing_and_storage_time() -> None:
    one = position(vehicle_row(placa="ABC-1234", data_gravacao="01/07/2025 08:00:03"))
    two = position(vehicle_row(placa="abc1234", data_gravacao="01/07/2025 08:05:00"))
    flagged = flag_sequence([one, two], jump_speed_kmh=JUMP_KMH)
    assert [p.quality for p in flagged] == [VALID, DUPLICATE]
    assert not flagged[1].duplicate_differs


def test_duplicates_differing_in_a_measurement() -> None:
    one = position(vehicle_row(velocidade="54"))
    two = position(vehicle_row(velocidade="55"))
    flagged = flag_sequence([one, two], jump_speed_kmh=JUMP_KMH)
    assert flagged[1].quality == DUPLICATE
    assert flagged[1].duplicate_differs


def test_the_first_occurrence_keeps_its_quality() -> None:
    no_fix = position(vehicle_row(latitude="0", longitude="0"))
    with_fix = position(vehicle_row())
    flagged = flag_sequence([no_fix, with_fix], jump_speed_kmh=JUMP_KMH)
    assert [p.quality for p in flagged] == [NO_FIX, DUPLICATE]
    assert flagged[1].duplicate_differs


def test_out_of_order_input_gets_the_same_flags_in_input_order() -> None:
    track = driving(range(30))
    track[0] = far_away(0)
    track[14] = far_away(14)
    track[29] = far_away(29)
    expected = {p.key: p.quality for p in flag_sequence(track, jump_speed_kmh=JUMP_KMH)}
    shuffled = track[:]
    random.Random(7).shuffle(shuffled)
    flagged = flag_sequence(shuffled, jump_speed_kmh=JUMP_KMH)
    assert [p.key for p in flagged] == [p.key for p in shuffled]
    assert {p.key: p.quality for p in flagged} == expected
    assert sum(q == JUMP for q in expected.values()) == 3


def test_plates_are_judged_separately() -> None:
    one = driving(range(10), plate="ABC1234")
    other = [fix(m, -10.0, -40.0 + m * 0.001, plate="XYZ9A87") for m in range(10)]
    interleaved = [p for pair in zip(one, other, strict=True) for p in pair]
    assert qualities(interleaved) == [VALID] * 20


def test_previous_point_catches_a_lone_latest_jump() -> None:
    previous = fix(0, ORIGIN_LAT, ORIGIN_LON)
    latest = far_away(10)
    assert qualities([latest], previous={"ABC1234": previous}) == [JUMP]
    assert qualities([latest]) == [VALID]  # nothing to compare with


def test_previous_point_consistent_with_the_latest() -> None:
    previous = fix(0, ORIGIN_LAT, ORIGIN_LON)
    latest = fix(10, ORIGIN_LAT, ORIGIN_LON + 8 * KM_IN_LON_DEGREES)
    assert qualities([latest], previous={"ABC1234": previous}) == [VALID]


def test_previous_point_lets_a_first_outlier_be_seen_in_a_pair() -> None:
    previous = fix(0, ORIGIN_LAT, ORIGIN_LON)
    pair = [far_away(1), fix(2, ORIGIN_LAT, ORIGIN_LON + 2 * KM_IN_LON_DEGREES)]
    assert qualities(pair, previous={"ABC1234": previous}) == [JUMP, VALID]


def test_previous_point_with_the_same_timestamp_is_the_row_itself() -> None:
    stored = far_away(5)
    assert qualities([far_away(5)], previous={"ABC1234": stored}) == [VALID]


def test_previous_point_that_is_not_valid_is_ignored() -> None:
    stored = fix(0, ORIGIN_LAT, ORIGIN_LON)._replace(quality=JUMP)
    assert qualities([far_away(10)], previous={"ABC1234": stored}) == [VALID]


def test_previous_point_of_another_plate_is_ignored() -> None:
    previous = fix(0, ORIGIN_LAT, ORIGIN_LON, plate="XYZ9A87")
    assert qualities([far_away(10)], previous={"XYZ9A87": previous}) == [VALID]


def test_a_wrong_stored_point_is_outvoted_by_a_consistent_track() -> None:
    stored = far_away(0)
    assert qualities(driving(range(1, 6)), previous={"ABC1234": stored}) == [VALID] * 5


def test_min_jump_distance() -> None:
    # 300 m in one second is 1080 km/h: GPS jitter, unless a floor says otherwise.
    jitter = [
        fix(0, ORIGIN_LAT, ORIGIN_LON),
        fix(1 / 60, ORIGIN_LAT, ORIGIN_LON + 0.3 * KM_IN_LON_DEGREES),
        fix(2 / 60, ORIGIN_LAT, ORIGIN_LON),
    ]
    assert qualities(jitter) == [VALID, JUMP, VALID]
    assert qualities(jitter, min_jump_m=500.0) == [VALID] * 3


def test_flag_sequence_is_idempotent() -> None:
    track = driving(range(12))
    track[6] = far_away(6)
    track.append(position(dict(track[3].raw, velocidade="99")))
    track.append(fix(20, 0, 0))
    once = flag_sequence(track, jump_speed_kmh=JUMP_KMH)
    assert flag_sequence(once, jump_speed_kmh=JUMP_KMH) == once


def test_flag_sequence_does_not_touch_its_input() -> None:
    track = driving(range(5))
    track[2] = far_away(2)
    before = list(track)
    flag_sequence(track, jump_speed_kmh=JUMP_KMH)
    assert track == before
    assert track[2].quality == VALID


# ------------------------------------------------------------ poisoned rows
def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    record = position(vehicle_row(logradouro="Rua \ud800 Augusta", descricao="\udc00Truck"))
    assert (record.logradouro, record.descricao) == ("Rua \ufffd Augusta", "\ufffdTruck")
    assert record.bad_fields == ()
    # Every stored text now encodes: this is what COPY does with it.
    assert record.logradouro is not None
    record.logradouro.encode("utf-8")
    trip = parse_trip(trip_row(localizacao_inicio_conducao="\ud83d"), SAO_PAULO)
    assert isinstance(trip, ProviderTrip)
    assert trip.localizacao_inicio_conducao == "\ufffd"


@pytest.mark.parametrize(
    ("field", "value"),
    [("velocidade", "9" * 5000), ("odometro", "1e400"), ("latitude", "-1e999")],
)
def test_a_number_no_float_holds_rejects_its_row(field: str, value: str) -> None:
    raw = vehicle_row(**{field: OutOfRangeNumber(value)})
    record = parse(raw)
    assert isinstance(record, Reject)
    assert (record.reason, record.placa, record.raw) == (NUMBER_OUT_OF_RANGE, "ABC1234", raw)
    assert record.message.startswith(f"{field}: ")
    assert len(record.message) < 120


def test_a_number_no_float_holds_in_a_trip_rejects_the_trip() -> None:
    record = parse_trip(trip_row(distancia_conducao=OutOfRangeNumber("1e400")), SAO_PAULO)
    assert isinstance(record, Reject)
    assert record.reason == NUMBER_OUT_OF_RANGE


def test_an_out_of_range_text_field_is_kept_as_its_digits() -> None:
    record = position(vehicle_row(equipamento_serial=OutOfRangeNumber("9" * 400)))
    assert record.equipamento_serial == "9" * 400


def test_the_decoders_reject_passes_through_and_neighbours_stay() -> None:
    decoded = Reject("too_deep", "retorno[1]: nested deeper than ...", "[[[", "ABC1235")
    parsed = parse_positions(
        [vehicle_row(), decoded, 7, vehicle_row(placa="XYZ9876")],
        SAO_PAULO,
        now=NOW,
        future_tolerance_s=TOLERANCE_S,
    )
    assert [p.placa for p in parsed.positions] == ["ABC1234", "XYZ9876"]
    assert parsed.rejects[0] is decoded
    assert parsed.rejects[1].reason == NOT_AN_OBJECT
