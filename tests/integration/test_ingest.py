"""The batch upsert path against a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from etrack.model import Position, Reject, Terminal
from etrack.provider import parse as records
from etrack.quality import flag_sequence
from etrack.store import db
from etrack.store import positions as ingest

TZ = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def raw_row(minute: int, **extra: Any) -> dict[str, Any]:
    stamp = datetime(2025, 5, 20, 8, 0) + timedelta(minutes=minute)
    row: dict[str, Any] = {
        "placa": "ABC-1234",
        "data_transmissao": stamp.strftime("%d/%m/%Y %H:%M:%S"),
        "latitude": f"{-23.55 + minute * 0.001:.6f}",
        "longitude": "-46.633308",
        "velocidade": "40 km/h",
        "ignicao": "1",
        "odometro": f"{1000 + minute * 0.5:.1f}",
        "logradouro": "Av. Paulista",
        "descricao": "Caminhão 7",
        "frota": "Norte",
    }
    row.update(extra)
    return row


def parse(rows: Sequence[object]) -> tuple[list[Position], list[Reject]]:
    parsed = records.parse_positions(rows, TZ, now=NOW, future_tolerance_s=600)
    return flag_sequence(parsed.positions, jump_speed_kmh=300), parsed.rejects


def snapshot(conn: db.Conn) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT placa, data_transmissao, latitude, longitude, velocidade, ignicao, odometro,"
        " logradouro, quality, raw, updated_at FROM positions ORDER BY 1, 2"
    ).fetchall()


def test_batch_is_stored_and_a_rerun_changes_nothing(conn: db.Conn) -> None:
    rows = [raw_row(m) for m in range(30)]
    positions, rejects = parse(rows)
    first = ingest.store_positions(conn, positions, rejects)
    assert (first.received, first.inserted, first.unchanged) == (30, 30, 0)
    before = snapshot(conn)
    second = ingest.store_positions(conn, *parse(rows))
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 30)
    assert snapshot(conn) == before
    stored = conn.execute(
        "SELECT data_transmissao, velocidade, ignicao, raw->>'velocidade' FROM positions"
        " ORDER BY 1 LIMIT 1"
    ).fetchone()
    # Local 08:00 in São Paulo is 11:00 UTC; units are stripped; raw is kept.
    assert stored == (datetime(2025, 5, 20, 11, 0, tzinfo=UTC), 40.0, True, "40 km/h")
    # The plate's newest valid position went to latest_positions in the same batch.
    latest = conn.execute("SELECT placa, data_transmissao, velocidade FROM latest_positions")
    assert latest.fetchall() == [("ABC1234", datetime(2025, 5, 20, 11, 29, tzinfo=UTC), 40.0)]


def test_a_later_answer_fills_gaps_but_never_overwrites(conn: db.Conn) -> None:
    ingest.store_positions(conn, *parse([raw_row(0, logradouro="", velocidade="50")]))
    stats = ingest.store_positions(
        conn, *parse([raw_row(0, logradouro="Rua Augusta", velocidade="", odometro="")])
    )
    assert stats.updated == 1
    row = conn.execute("SELECT logradouro, velocidade, odometro FROM positions").fetchone()
    assert row == ("Rua Augusta", 50.0, 1000.0)


def test_flags_and_rejects_are_kept_not_dropped(conn: db.Conn) -> None:
    rows: list[object] = [
        raw_row(0),
        raw_row(1, latitude="0", longitude="0"),
        raw_row(2),
        raw_row(3, latitude="-3.1", longitude="-60.0"),  # Manaus, 2,700 km away in a minute
        raw_row(4),
        raw_row(4),  # exact duplicate
        raw_row(4, velocidade="99"),  # same key, different measurement
        {"placa": "", "data_transmissao": "01/05/2025 10:00:00"},
        {"placa": "ABC1234", "data_transmissao": "ontem"},
        "not even an object",
    ]
    stats = ingest.store_positions(conn, *parse(rows), endpoint="/ultimasposicoesterminal")
    assert stats.inserted == 5
    assert stats.duplicates == 1
    assert stats.conflicts == 1
    assert stats.rejected == 3
    qualities = dict(conn.execute("SELECT quality, count(*) FROM positions GROUP BY 1").fetchall())
    assert qualities == {"valid": 3, "no_fix": 1, "jump": 1}
    reasons = sorted(r[0] for r in conn.execute("SELECT reason FROM position_rejects"))
    assert "duplicate_conflict" in reasons
    assert len(reasons) == 4
    # Storing the same rejects again keeps one copy of each.
    ingest.store_positions(conn, *parse(rows), endpoint="/ultimasposicoesterminal")
    assert conn.execute("SELECT count(*) FROM position_rejects").fetchone() == (4,)


def test_terminals_take_the_newest_description(conn: db.Conn) -> None:
    ingest.store_positions(conn, *parse([raw_row(0), raw_row(5, descricao="Caminhão 8")]))
    ingest.store_positions(conn, *parse([raw_row(1, descricao="Velho")]))
    row = conn.execute(
        "SELECT placa, placa_raw, descricao, frota, last_position_ts FROM terminals"
    ).fetchone()
    assert row is not None
    assert row[:4] == ("ABC1234", "ABC-1234", "Caminhão 8", "Norte")
    assert row[4] == datetime(2025, 5, 20, 11, 5, tzinfo=UTC)


def test_history_rows_get_the_terminal_block(conn: db.Conn) -> None:
    rows = [raw_row(0, descricao=None, frota=None)]
    terminal = records.parse_terminal({"placa": "ABC1234", "descricao": "Van", "frota": "Sul"})
    assert isinstance(terminal, Terminal)
    ingest.store_positions(conn, *parse(rows), terminals=[terminal])
    assert conn.execute("SELECT descricao, frota FROM terminals").fetchone() == ("Van", "Sul")


def test_a_nul_in_the_terminal_block_keeps_the_batch(conn: db.Conn) -> None:
    rows = [raw_row(k, descricao=None, frota=None) for k in range(3)]
    terminal = records.parse_terminal(
        {"placa": "ABC-1234", "descricao": "Van\x00 1", "frota": "null"}
    )
    assert isinstance(terminal, Terminal)
    stats = ingest.store_positions(conn, *parse(rows), terminals=[terminal])
    assert (stats.inserted, stats.rejected) == (3, 0)
    assert conn.execute("SELECT descricao, frota FROM terminals").fetchone() == ("Van 1", None)


def test_positions_far_in_time_never_fail_the_batch(conn: db.Conn) -> None:
    rows = [raw_row(0), raw_row(0, data_transmissao="01/01/1990 00:00:00")]
    stats = ingest.store_positions(conn, *parse(rows))
    assert stats.inserted == 2


class KillingRows(Sequence[Position]):
    """Rows whose iteration kills the writing connection half-way: a crash
    in the middle of the COPY."""

    def __init__(self, rows: list[Position], kill: Any, after: int) -> None:
        self._rows, self._kill, self._after = rows, kill, after

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        return self._rows[index]

    def __iter__(self) -> Iterator[Position]:
        for n, row in enumerate(self._rows):
            if n == self._after:
                self._kill()
            yield row


def test_connection_killed_mid_batch_then_rerun(target: db.Target) -> None:
    rows = [raw_row(m) for m in range(2000)]
    positions, rejects = parse(rows)
    victim = db.connect(target)
    pid = victim.info.backend_pid
    with db.connection(target, autocommit=True) as killer:
        doomed = KillingRows(
            positions,
            lambda: killer.execute("SELECT pg_terminate_backend(%s)", (pid,)),
            after=1000,
        )
        with pytest.raises(psycopg.OperationalError):
            ingest.store_positions(victim, doomed, rejects)
        victim.close()
        # All or nothing: the killed batch left no row behind.
        assert killer.execute("SELECT count(*) FROM positions").fetchone() == (0,)
        assert killer.execute("SELECT count(*) FROM terminals").fetchone() == (0,)
        assert killer.execute("SELECT count(*) FROM latest_positions").fetchone() == (0,)
    with db.connection(target) as conn:
        stats = ingest.store_positions(conn, positions, rejects)
        assert stats.inserted == 2000
        again = ingest.store_positions(conn, positions, rejects)
        assert again.inserted == 0
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (2000,)
        # The batch's newest valid row, committed with it.
        assert conn.execute("SELECT placa, data_transmissao FROM latest_positions").fetchall() == [
            ("ABC1234", max(p.data_transmissao for p in positions if p.quality == "valid"))
        ]


def test_nul_characters_in_raw_json_do_not_fail_the_batch(conn: db.Conn) -> None:
    rows: list[object] = [raw_row(0, logradouro="Rua\x00 Um"), {"placa": "\x00", "x": "a\x00b"}]
    stats = ingest.store_positions(conn, *parse(rows))
    assert (stats.inserted, stats.rejected) == (1, 1)
    assert conn.execute("SELECT logradouro FROM positions").fetchone() == ("Rua Um",)


def test_lone_surrogates_and_odd_raws_store_instead_of_failing_the_batch(conn: db.Conn) -> None:
    poisoned = raw_row(5, logradouro="Rua \ud800", descricao="\udc00 7", extra={"\ud801": "x"})
    deep: object = "bottom"
    for _ in range(300):  # past orjson's 255 levels
        deep = [deep]
    rows: list[object] = [raw_row(0), raw_row(2, nested=deep), poisoned]  # newest: terminals
    positions, rejects = parse(rows)
    rejects.append(Reject("internal_error", "ValueError: \ud800", {"placa": "\ud800"}))
    rejects.append(Reject("too_big", "a big one", {"n": 10**5000}))
    stats = ingest.store_positions(conn, positions, rejects, endpoint="/ultimas-posicoes")
    assert (stats.inserted, stats.rejected) == (3, 2)
    stored = conn.execute(
        "SELECT logradouro, raw->>'logradouro', raw->'extra' FROM positions"
        " WHERE logradouro LIKE 'Rua %'"
    ).fetchone()
    assert stored == ("Rua \ufffd", "Rua \\ud800", {"\\ud801": "x"})
    assert conn.execute("SELECT descricao FROM terminals").fetchone() == ("\ufffd 7",)
    kept = conn.execute("SELECT message, placa, raw FROM position_rejects ORDER BY id").fetchall()
    assert kept[0] == ("ValueError: \ufffd", "\ufffd", {"placa": "\\ud800"})
    assert kept[1][2] == {"n": f"<an integer of {(10**5000).bit_length()} bits>"}
