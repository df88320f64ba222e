"""Batch writes: parsed records -> PostgreSQL, idempotently.

Positions go through COPY into a per-session staging table, then one
`INSERT ... ON CONFLICT` into the partitioned `positions` table, all in one
transaction: a crash leaves all of a batch or none of it. Re-running over the
same data inserts nothing and changes no stored value; a later answer only
fills in what a stored row lacked. The same statement moves each plate's
`latest_positions` row (its newest valid position, what the fleet map reads)
forward, never back: an out-of-order batch leaves it alone.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import orjson

from etrack.model import DUPLICATE, VALID, Position, ProviderTrip, Reject, Terminal
from etrack.store.accounts import note_plates
from etrack.store.db import Conn
from etrack.store.queries import query

logger = logging.getLogger("etrack.store.positions")

# Months outside this window go to the default partition rather than get a
# partition of their own: a tracker with a broken clock must not create
# hundreds of empty tables.
_OLDEST_PARTITION = datetime(2000, 1, 1, tzinfo=UTC)
_NEWEST_PARTITION_AHEAD = timedelta(days=400)


@dataclass(slots=True)
class IngestStats:
    """What one or more batches did; printed as the command's summary line."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    flagged: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    flags: dict[str, int] = field(default_factory=dict)

    def add(self, other: IngestStats) -> None:
        self.received += other.received
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.flagged += other.flagged
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.conflicts += other.conflicts
        for flag, count in other.flags.items():
            self.flags[flag] = self.flags.get(flag, 0) + count


def json_text(raw: object) -> str:
    """JSON text for a jsonb column, whatever the provider sent: a row is kept,
    never failed. PostgreSQL refuses the NUL character (\\u0000) in jsonb, so
    it becomes U+FFFD; what orjson cannot write (lone surrogates, nesting past
    its 255 levels, integers past 64 bits, other types) goes through
    `_storable`."""
    try:
        text = orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        text = orjson.dumps(_storable(raw), option=orjson.OPT_NON_STR_KEYS).decode()
    if "\\u0000" in text:
        text = text.replace("\\u0000", "\\ufffd")
    return text


def reject_hash(raw: object) -> str:
    """Stable identity of a rejected row, so storing it twice keeps one copy."""
    option = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    try:
        text = orjson.dumps(raw, option=option)
    except TypeError:
        text = orjson.dumps(_storable(raw), option=option)
    return hashlib.sha256(text).hexdigest()


# A lone surrogate has no UTF-8 and PostgreSQL's json refuses its escape: it is
# kept as the six characters of its escape ("\\ud800" as text), so the raw
# still says what came. Deeper than this the raw is cut, with a note saying so.
_SURROGATE = re.compile("[\ud800-\udfff]")
_STORABLE_DEPTH = 200
_INT64 = range(-(2**63), 2**64)


def _escaped(text: str) -> str:
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _storable(value: object, depth: int = 0) -> object:
    """*value* rebuilt from what orjson can always write."""
    if isinstance(value, str):
        return _escaped(value)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        if value in _INT64:
            return value
        try:
            return str(value)
        except ValueError:  # more digits than int->str allows
            return f"<an integer of {value.bit_length()} bits>"
    if depth >= _STORABLE_DEPTH:
        return f"<nested deeper than {_STORABLE_DEPTH} levels: not kept>"
    if isinstance(value, dict):
        return {_escaped(str(k)): _storable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item, depth + 1) for item in value]
    return _escaped(repr(value))


class PartitionKeeper:
    """Remembers which monthly partitions exist so each is ensured once per process."""

    def __init__(self) -> None:
        self._known: set[tuple[int, int]] = set()

    def ensure(self, conn: Conn, timestamps: Iterable[datetime]) -> None:
        now = datetime.now(UTC)
        months = {(ts.year, ts.month) for ts in timestamps} - self._known
        for year, month in sorted(months):
            start = datetime(year, month, 1, tzinfo=UTC)
            if start < _OLDEST_PARTITION or start > now + _NEWEST_PARTITION_AHEAD:
                continue
            # Its own short transaction: partition DDL must not hold locks for
            # the length of a big batch.
            with conn.transaction():
                conn.execute(query("ensure_positions_partition"), {"ts": start})
            self._known.add((year, month))


def store_positions(
    conn: Conn,
    positions: Sequence[Position],
    rejects: Sequence[Reject] = (),
    *,
    endpoint: str = "",
    partitions: PartitionKeeper | None = None,
    update_terminals: bool = True,
    terminals: Iterable[Terminal] = (),
    account: str | None = None,
    listed: bool = False,
) -> IngestStats:
    """Write one batch of flagged positions (and the rows that could not be
    parsed) in one transaction. `terminals` are the answer's terminal blocks
    (history answers carry one), see `upsert_terminals`; `account`, the one
    that fetched them, is noted on their plates in the same transaction
    (`listed`: the answer was the account's fleet list, see
    etrack.store.accounts.record_plates)."""
    stats = IngestStats(received=len(positions) + len(rejects))
    keeper = partitions or PartitionKeeper()
    stored = [p for p in positions if p.quality != DUPLICATE]
    # An exact copy of a row is nothing new; a copy that disagrees with the
    # row kept under the same key is kept as a reject, so nothing is lost.
    conflicting = [
        Reject(
            "duplicate_conflict",
            "same plate and timestamp as another row of the answer, with different values",
            p.raw,
            p.placa,
        )
        for p in positions
        if p.quality == DUPLICATE and p.duplicate_differs
    ]
    rejects = [*rejects, *conflicting]
    stats.duplicates = len(positions) - len(stored) - len(conflicting)
    for position in positions:
        if position.quality != VALID:
            stats.flags[position.quality] = stats.flags.get(position.quality, 0) + 1
    stats.flagged = sum(n for q, n in stats.flags.items() if q != DUPLICATE)
    keeper.ensure(conn, (p.data_transmissao for p in stored))
    with conn.transaction():
        if stored:
            inserted, updated = _copy_and_upsert(conn, stored)
            stats.inserted, stats.updated = inserted, updated
            stats.unchanged = len(stored) - inserted - updated
        if rejects:
            store_rejects(conn, rejects, endpoint=endpoint)
            stats.rejected = len(rejects) - len(conflicting)
            stats.conflicts = len(conflicting)
        if update_terminals and stored:
            upsert_terminals(conn, stored, terminals=terminals)
            if account is not None:
                note_plates(conn, account, sorted({p.placa for p in stored}), listed=listed)
    return stats


def _copy_and_upsert(conn: Conn, positions: Sequence[Position]) -> tuple[int, int]:
    conn.execute(query("create_positions_staging"))
    with conn.cursor() as cur:
        with cur.copy(query("copy_positions_staging")) as copy:
            copy.set_types(
                [
                    "text", "timestamptz", "timestamptz", "float8", "float8", "float8",
                    "bool", "float8", "float8", "float8", "float8", "text", "text", "text",
                ]
            )  # fmt: skip
            write = copy.write_row
            for p in positions:
                write(
                    (
                        p.placa, p.data_transmissao, p.data_gravacao, p.latitude, p.longitude,
                        p.velocidade, p.ignicao, p.odometro, p.odometro_can, p.horimetro,
                        p.bateria, p.logradouro, p.quality, json_text(p.raw),
                    )
                )  # fmt: skip
        row = cur.execute(query("upsert_positions_from_staging")).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def upsert_terminals(
    conn: Conn, positions: Iterable[Position], *, terminals: Iterable[Terminal] = ()
) -> int:
    """One terminals row per plate seen; returns how many rows changed.

    History rows lack descricao/frota: the answer's terminal block of the
    same plate supplies them.
    """
    blocks = {terminal.placa: terminal for terminal in terminals}
    newest: dict[str, Position] = {}
    for p in positions:
        current = newest.get(p.placa)
        if current is None or p.data_transmissao > current.data_transmissao:
            newest[p.placa] = p
    if not newest:
        return 0
    rows = list(newest.values())
    described = [(p, blocks.get(p.placa)) for p in rows]
    params: dict[str, list[Any]] = {
        "placa": [p.placa for p in rows],
        "placa_raw": [p.placa_raw for p in rows],
        "descricao": [p.descricao or (block and block.descricao) for p, block in described],
        "frota": [p.frota or (block and block.frota) for p, block in described],
        "equipamento_serial": [p.equipamento_serial for p in rows],
        "last_position_ts": [p.data_transmissao for p in rows],
        "last_latitude": [p.latitude if p.quality == VALID else None for p in rows],
        "last_longitude": [p.longitude if p.quality == VALID else None for p in rows],
        "raw": [json_text(p.raw) for p in rows],
    }
    return len(conn.execute(query("upsert_terminals"), params).fetchall())


def store_rejects(conn: Conn, rejects: Sequence[Reject], *, endpoint: str) -> None:
    params: dict[str, list[Any]] = {
        "raw_hash": [reject_hash(r.raw) for r in rejects],
        "reason": [r.reason for r in rejects],
        "message": [_no_nul(r.message) for r in rejects],
        "endpoint": [endpoint for _ in rejects],
        "placa": [_no_nul(r.placa or _plate_hint(r.raw)) for r in rejects],
        "raw": [json_text(r.raw) for r in rejects],
    }
    conn.execute(query("insert_rejects"), params)


def _no_nul(text: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL, nor anything holding a lone surrogate
    # (no encoding writes one); a reject must still be stored.
    if not text:
        return text
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return _SURROGATE.sub("\ufffd", text)


def _plate_hint(raw: object) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("placa")
        return str(value)[:32] if value is not None else None
    return None


def known_plates(conn: Conn) -> list[str]:
    """Every plate in terminals, sorted."""
    return [str(r[0]) for r in conn.execute(query("known_plates"))]


def last_valid_positions(
    conn: Conn, plates: Sequence[str], *, before: datetime
) -> dict[str, tuple[datetime, float, float]]:
    """Newest stored valid point per plate: the neighbour a single new point
    is checked against for GPS jumps."""
    rows = conn.execute(query("last_valid_positions"), {"plates": list(plates), "before": before})
    return {str(r[0]): (r[1], float(r[2]), float(r[3])) for r in rows}


@dataclass(slots=True)
class TripStats:
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


def store_trips(
    conn: Conn,
    trips: Sequence[ProviderTrip],
    rejects: Sequence[Reject] = (),
    *,
    tz: tzinfo,
    endpoint: str = "",
) -> TripStats:
    """Upsert the provider's trip summaries; twice keeps one copy of each."""
    stats = TripStats(received=len(trips) + len(rejects), rejected=len(rejects))
    with conn.transaction():
        for trip in trips:
            row = conn.execute(query("upsert_trips"), trip_params(trip, tz)).fetchone()
            if row is None:
                stats.unchanged += 1
            elif row[0]:
                stats.inserted += 1
            else:
                stats.updated += 1
        if rejects:
            store_rejects(conn, rejects, endpoint=endpoint)
    return stats


def trip_params(trip: ProviderTrip, tz: tzinfo) -> dict[str, Any]:
    return {
        "placa": trip.placa,
        "data_inicio_conducao": trip.data_inicio_conducao,
        "data_fim_conducao": trip.data_fim_conducao,
        "rota_date": trip.data_inicio_conducao.astimezone(tz).date(),
        "cliente": trip.cliente,
        "cliente_fantasia": trip.cliente_fantasia,
        "descricao": trip.descricao,
        "frota": trip.frota,
        "latitude_inicio_conducao": trip.latitude_inicio_conducao,
        "longitude_inicio_conducao": trip.longitude_inicio_conducao,
        "latitude_fim_conducao": trip.latitude_fim_conducao,
        "longitude_fim_conducao": trip.longitude_fim_conducao,
        "localizacao_inicio_conducao": trip.localizacao_inicio_conducao,
        "localizacao_fim_conducao": trip.localizacao_fim_conducao,
        "odometro_inicio_conducao": trip.odometro_inicio_conducao,
        "odometro_fim_conducao": trip.odometro_fim_conducao,
        "duracao_conducao": (
            timedelta(seconds=trip.duracao_conducao) if trip.duracao_conducao is not None else None
        ),
        "distancia_conducao": trip.distancia_conducao,
        "condutor_nome": trip.condutor_nome,
        "condutor_identificacao": trip.condutor_identificacao,
        "raw": json_text(trip.raw),
    }
