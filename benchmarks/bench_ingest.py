"""Ingest throughput: HTTP answer bytes -> committed rows.

Three paths over the same positions, side by side in one run:

- etrack: the collector's own path (`Collector.fetch_history_day`), its HTTP
  client answered in memory: per answer (one plate-day, as
  /ultimasposicoesterminal sends it) JSON bytes -> parse_positions ->
  flag_sequence -> store_positions (COPY to staging + INSERT ... ON
  CONFLICT), one transaction per answer, `--concurrency` answers in flight.
- bare: the database limit: already-parsed tuples, the same COPY + INSERT ...
  ON CONFLICT, no Python parsing.
- seed: what the seed's collector did: one INSERT and COMMIT per row (on a
  sample, extrapolated as a rate).

Usage: python benchmarks/bench_ingest.py [--plates 100] [--days 3] [--concurrency 8]
       [--batch-answers 20]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database

from etrack.collect import Collector
from etrack.config import Settings
from etrack.provider import parse
from etrack.provider.client import EtracClient
from etrack.provider.ratelimit import UnlimitedLimiter
from etrack.store import db
from etrack.store.queries import query

TZ = ZoneInfo("America/Sao_Paulo")


API_BASE = "http://bench.invalid/monitoramento"


def answers(plates: int, days: int) -> dict[tuple[str, str], bytes]:
    """One JSON answer per (plate, "DD/MM/YYYY"), 1 row a minute while
    'driving' (16 h), shaped like the API's: strings, units, decimal commas."""
    out = {}
    start = date(2025, 3, 3)
    for p in range(plates):
        placa = f"BEN{p // 100 % 10}{chr(65 + p % 26)}{p % 100:02d}"
        for d in range(days):
            day = start + timedelta(days=d)
            rows = []
            base = datetime(day.year, day.month, day.day, 5, 0)
            for m in range(960):
                t = base + timedelta(minutes=m)
                rows.append(
                    {
                        "placa": placa[:3] + "-" + placa[3:] if p % 2 else placa,
                        "data_transmissao": t.strftime("%d/%m/%Y %H:%M:%S"),
                        "data_gravacao": (t + timedelta(seconds=7)).strftime("%d/%m/%Y %H:%M:%S"),
                        "latitude": f"{-23.6 + m * 0.0004:.6f}",
                        "longitude": f"{-46.7 + p * 0.001:.6f}",
                        "logradouro": "Av. Paulista, 1000 - Bela Vista, São Paulo",
                        "velocidade": f"{30 + m % 40} km/h",
                        "ignicao": "1",
                        "odometro": f"{10000 + m * 0.4:.1f}".replace(".", ","),
                        "odometro_can": None,
                        "horimetro": f"{500 + m / 60:.2f}",
                        "bateria": "12,6 V",
                    }
                )
            out[(placa, day.strftime("%d/%m/%Y"))] = orjson.dumps(
                {
                    "code_header": 200,
                    "terminal": {"placa": placa, "descricao": f"Veículo {p}", "frota": "Bench"},
                    "posicoes": rows,
                }
            )
    return out


def reset(target: db.Target) -> None:
    with db.connection(target, autocommit=True) as conn:
        conn.execute("TRUNCATE positions, terminals, position_rejects")


def run_etrack(
    target: db.Target, bodies: dict[tuple[str, str], bytes], concurrency: int
) -> tuple[int, float]:
    """Every answer through the collector, as `etrack fetch-history` runs it."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked = orjson.loads(request.content)
        return httpx.Response(200, content=bodies[(asked["placa"], asked["data"])])

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        etrac_api_base=API_BASE,
        etrac_user="bench@example.com",
        etrac_key="bench",
        etrac_timezone=TZ.key,
    )
    client = EtracClient(
        API_BASE,
        "bench@example.com",
        "bench",
        tz=TZ,
        limiter=UnlimitedLimiter(),
        transport=httpx.MockTransport(answer),
    )
    requests = [(placa, datetime.strptime(day, "%d/%m/%Y").date()) for placa, day in bodies]

    async def fetch_all(collector: Collector) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(placa: str, day: date) -> None:
            async with gate:
                await collector.fetch_history_day(placa, day)

        await asyncio.gather(*(one(placa, day) for placa, day in requests))

    pool = db.make_pool(target, max_size=max(1, concurrency // 2))
    try:
        collector = Collector(settings, client, pool)
        started = time.perf_counter()
        asyncio.run(fetch_all(collector))
        elapsed = time.perf_counter() - started
    finally:
        asyncio.run(client.aclose())
        pool.close()
    return collector.summary.positions.inserted, elapsed


def prepared_tuples(bodies: list[bytes]) -> list[list[tuple[Any, ...]]]:
    now = datetime.now(UTC)
    batches = []
    for body in bodies:
        answer = orjson.loads(body)
        parsed = parse.parse_positions(answer["posicoes"], TZ, now=now, future_tolerance_s=600)
        batches.append(
            [
                (
                    p.placa, p.data_transmissao, p.data_gravacao, p.latitude, p.longitude,
                    p.velocidade, p.ignicao, p.odometro, p.odometro_can, p.horimetro,
                    p.bateria, p.logradouro, p.quality, orjson.dumps(p.raw).decode(),
                )
                for p in parsed.positions
            ]
        )  # fmt: skip
    return batches


def run_bare(
    target: db.Target, batches: list[list[tuple[Any, ...]]], batch_answers: int
) -> tuple[int, float]:
    total = 0
    with db.connection(target) as conn:
        # Partitions exist already (same months as the etrack run).
        started = time.perf_counter()
        for i in range(0, len(batches), batch_answers):
            rows = [row for b in batches[i : i + batch_answers] for row in b]
            with conn.transaction():
                conn.execute(query("create_positions_staging"))
                with conn.cursor() as cur:
                    with cur.copy(query("copy_positions_staging")) as copy:
                        copy.set_types(
                            ["text", "timestamptz", "timestamptz", "float8", "float8", "float8",
                             "bool", "float8", "float8", "float8", "float8", "text", "text", "text"]
                        )  # fmt: skip
                        for row in rows:
                            copy.write_row(row)
                    inserted = cur.execute(query("upsert_positions_from_staging")).fetchone()
                    assert inserted is not None
                    total += int(inserted[0])
        elapsed = time.perf_counter() - started
    return total, elapsed


def run_seed(target: db.Target, rows: list[tuple[Any, ...]]) -> tuple[int, float]:
    with db.connection(target) as conn:
        started = time.perf_counter()
        for row in rows:
            conn.execute(
                "INSERT INTO positions (placa, data_transmissao, data_gravacao, latitude, longitude,"
                " velocidade, ignicao, odometro, odometro_can, horimetro, bateria, logradouro,"
                " quality, raw) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s::jsonb)"
                " ON CONFLICT DO NOTHING",
                row,
            )
            conn.commit()
        elapsed = time.perf_counter() - started
    return len(rows), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plates", type=int, default=100)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-answers", type=int, default=20, help="bare path's batch size")
    parser.add_argument("--seed-sample", type=int, default=3000)
    args = parser.parse_args()

    by_request = answers(args.plates, args.days)
    bodies = list(by_request.values())
    total_rows = sum(len(orjson.loads(b)["posicoes"]) for b in bodies)
    print(
        f"{len(bodies)} answers, {total_rows} positions, {sum(map(len, bodies)) / 1e6:.1f} MB of JSON"
    )
    gc.collect()
    with bench_database() as target:
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        n, t = run_etrack(target, by_request, args.concurrency)
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        ours = n / t
        print(
            f"etrack end to end: {n} rows in {t:.2f} s = {ours:,.0f} rows/s"
            f" (peak RSS grew {(rss_after - rss_before) / 1024:.0f} MB)"
        )
        reset(target)
        batches = prepared_tuples(bodies)
        n2, t2 = run_bare(target, batches, args.batch_answers)
        bare = n2 / t2
        print(f"bare COPY + INSERT ON CONFLICT: {n2} rows in {t2:.2f} s = {bare:,.0f} rows/s")
        reset(target)
        sample = [row for b in batches for row in b][: args.seed_sample]
        n3, t3 = run_seed(target, sample)
        seed = n3 / t3
        print(f"seed (INSERT + COMMIT per row): {n3} rows in {t3:.2f} s = {seed:,.0f} rows/s")
        print(f"ratio etrack / bare = {ours / bare:.2f}; etrack / seed = {ours / seed:.1f}x")
        ok = ours >= 40_000 and ours / bare >= 0.5
        print("targets (>= 40,000 rows/s and >= 50% of bare):", "met" if ok else "NOT met")


if __name__ == "__main__":
    main()
