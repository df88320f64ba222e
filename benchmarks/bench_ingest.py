"""Ingest throughput over real HTTP: simulator answers -> committed rows.

The built-in eTrac simulator runs in its own process (`etrack simulator
--cache-answers`: every answer generated once in a warm-up, then served from
memory over loopback, so the simulator leaves the CPU to the client). The
same plate-days go through three paths, interleaved in each round so that a
noisy moment hits all three, each round on an emptied database:

- etrack ingest: the collector's own path (`Collector.fetch_history_day`,
  its HTTP client and pool): HTTP -> orjson -> parse_positions ->
  flag_sequence -> store_positions (COPY + INSERT ... ON CONFLICT +
  latest_positions + terminals), one transaction per answer,
  `--concurrency` answers in flight, `--pool` connections as a job worker has.
- bare: the same HTTP requests on the same concurrency and the same threads
  (asyncio.to_thread, same pool size), orjson, the least conversion that
  gives typed columns (no validation, no flags), the raw JSON of every row,
  the very same SQL (COPY, the upsert with latest_positions, terminals):
  the limit for this work on this machine.
- etrack backfill end to end: `etrack backfill` as a user runs it (a
  subprocess: start-up, plan, a job per plate-day, the PostgreSQL-backed
  pace, routes of the range at the end) with no API latency and the rate
  limit lifted, on a fresh database. Reported for the whole command and for
  its fetch phase (first partition claimed to last one settled).

Then the seed's way (one INSERT and COMMIT per row) on a sample.

Usage: python benchmarks/bench_ingest.py [--plates 100] [--days 3] [--rounds 3]
       [--concurrency 8] [--pool 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database
from bench_backfill import clean_env, etrack_argv

from etrack.collect import Collector
from etrack.config import Settings
from etrack.provider.client import EtracClient
from etrack.provider.ratelimit import UnlimitedLimiter
from etrack.store import db
from etrack.store.positions import PartitionKeeper
from etrack.store.queries import query

TZ = ZoneInfo("America/Sao_Paulo")
SIMULATOR_NOW = datetime(2025, 1, 8, 12, 0)
HISTORY = "ultimasposicoesterminal"
Round = dict[str, float]


# ----------------------------------------------------------------- simulator
class Simulator:
    """`etrack simulator` in a process of its own."""

    def __init__(self, vehicles: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "etrack",
                "simulator",
                "--port",
                "0",
                "--vehicles",
                str(vehicles),
                "--seed",
                "42",
                "--cache-answers",
                "--now",
                SIMULATOR_NOW.strftime("%Y-%m-%d %H:%M:%S"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        # "eTrac simulator listening on http://127.0.0.1:PORT/monitoramento (user U, key K, ..."
        if "listening on" not in first:
            self.process.kill()
            raise SystemExit(f"simulator did not start: {first!r}")
        words = first.split()
        self.base_url = words[words.index("on") + 1]
        self.user = words[words.index("(user") + 1].rstrip(",")
        self.key = words[words.index("key") + 1].rstrip(",")

    def plates(self) -> list[str]:
        answer = httpx.post(
            f"{self.base_url}/ultimas-posicoes", auth=(self.user, self.key), timeout=60
        ).json()
        return sorted({row["placa"].replace("-", "").upper() for row in answer["retorno"]})

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def for_each(
    requests: Sequence[tuple[str, date]],
    concurrency: int,
    work: Callable[[str, date], Any],
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(placa: str, day: date) -> None:
        async with gate:
            await work(placa, day)

    await asyncio.gather(*(one(placa, day) for placa, day in requests))


async def warm_up(sim: Simulator, requests: Sequence[tuple[str, date]]) -> int:
    """Every answer generated once (the simulator keeps it); rows served."""
    rows = 0
    async with httpx.AsyncClient(auth=(sim.user, sim.key), timeout=120) as client:

        async def fetch(placa: str, day: date) -> None:
            nonlocal rows
            body = {"placa": placa, "data": day.strftime("%d/%m/%Y")}
            answer = (await client.post(f"{sim.base_url}/{HISTORY}", json=body)).json()
            rows += len(answer["posicoes"])

        await for_each(requests, 4, fetch)
    return rows


# -------------------------------------------------------------------- paths
def reset(target: db.Target) -> None:
    with db.connection(target, autocommit=True) as conn:
        conn.execute("TRUNCATE positions, latest_positions, terminals, position_rejects")


def settings_for(sim: Simulator) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        etrac_api_base=sim.base_url,
        etrac_user=sim.user,
        etrac_key=sim.key,
        etrac_timezone=TZ.key,
    )


def run_etrack(
    target: db.Target, sim: Simulator, requests: Sequence[tuple[str, date]], args: Any
) -> tuple[int, float]:
    settings = settings_for(sim)
    pool = db.make_pool(target, min_size=args.pool, max_size=args.pool)

    async def main() -> tuple[Collector, float]:
        client = EtracClient(sim.base_url, sim.user, sim.key, tz=TZ, limiter=UnlimitedLimiter())
        try:
            collector = Collector(settings, client, pool)
            started = time.perf_counter()
            await for_each(requests, args.concurrency, collector.fetch_history_day)
            return collector, time.perf_counter() - started
        finally:
            await client.aclose()

    try:
        collector, elapsed = asyncio.run(main())
    finally:
        pool.close()
    return collector.summary.positions.inserted, elapsed


def _moment(text: str) -> datetime:
    # "DD/MM/YYYY HH:MM:SS", local time
    return datetime(
        int(text[6:10]), int(text[3:5]), int(text[0:2]),
        int(text[11:13]), int(text[14:16]), int(text[17:19]), tzinfo=TZ,
    )  # fmt: skip


def _number(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    return float(str(value).split()[0].replace(",", "."))


COPY_TYPES = [
    "text", "timestamptz", "timestamptz", "float8", "float8", "float8",
    "bool", "float8", "float8", "float8", "float8", "text", "text", "text",
]  # fmt: skip


def bare_store(pool: Any, answer: dict[str, Any]) -> int:
    rows = answer["posicoes"]
    tuples = []
    for row in rows:
        tuples.append(
            (
                row["placa"].replace("-", "").upper(),
                _moment(row["data_transmissao"]),
                _moment(row["data_gravacao"]) if row.get("data_gravacao") else None,
                _number(row["latitude"]), _number(row["longitude"]),
                _number(row.get("velocidade")), str(row.get("ignicao")) in ("1", "true", "True"),
                _number(row.get("odometro")), _number(row.get("odometro_can")),
                _number(row.get("horimetro")), _number(row.get("bateria")),
                row.get("logradouro") or None, "valid", orjson.dumps(row).decode(),
            )
        )  # fmt: skip
    if not tuples:
        return 0
    newest = max(tuples, key=lambda t: t[1])
    terminal = answer.get("terminal") or {}
    with pool.connection() as conn, conn.transaction():
        conn.execute(query("create_positions_staging"))
        with conn.cursor() as cur:
            with cur.copy(query("copy_positions_staging")) as copy:
                copy.set_types(COPY_TYPES)
                for t in tuples:
                    copy.write_row(t)
            inserted = cur.execute(query("upsert_positions_from_staging")).fetchone()
        conn.execute(
            query("upsert_terminals"),
            {
                "placa": [newest[0]], "placa_raw": [rows[0]["placa"]],
                "descricao": [terminal.get("descricao")], "frota": [terminal.get("frota")],
                "equipamento_serial": [None], "last_position_ts": [newest[1]],
                "last_latitude": [newest[3]], "last_longitude": [newest[4]],
                "raw": [newest[13]],
            },
        )  # fmt: skip
    assert inserted is not None
    return int(inserted[0])


def run_bare(
    target: db.Target, sim: Simulator, requests: Sequence[tuple[str, date]], args: Any
) -> tuple[int, float]:
    pool = db.make_pool(target, min_size=args.pool, max_size=args.pool)
    total = 0

    async def main() -> None:
        nonlocal total
        limits = httpx.Limits(max_connections=args.concurrency)
        async with httpx.AsyncClient(auth=(sim.user, sim.key), limits=limits) as client:

            async def one(placa: str, day: date) -> None:
                nonlocal total
                body = {"placa": placa, "data": day.strftime("%d/%m/%Y")}
                response = await client.post(f"{sim.base_url}/{HISTORY}", json=body)
                response.raise_for_status()
                answer = await asyncio.to_thread(orjson.loads, response.content)
                inserted = await asyncio.to_thread(bare_store, pool, answer)
                total += inserted

            await for_each(requests, args.concurrency, one)

    try:
        started = time.perf_counter()
        asyncio.run(main())
        elapsed = time.perf_counter() - started
    finally:
        pool.close()
    return total, elapsed


def run_backfill(
    sim: Simulator, plates: Sequence[str], first: date, last: date, args: Any, name: str
) -> tuple[int, float, float]:
    """(rows inserted, whole command s, fetch phase s) on a fresh database."""
    with bench_database(name) as target, tempfile.TemporaryDirectory() as folder:
        plates_file = Path(folder) / "plates.txt"
        plates_file.write_text("\n".join(plates) + "\n")
        env = clean_env(
            DATABASE_URL=target.conninfo,
            ETRAC_API_BASE=sim.base_url,
            ETRAC_USER=sim.user,
            ETRAC_KEY=sim.key,
            ETRAC_TIMEZONE=TZ.key,
            ETRAC_RATE_LIMIT="100000",
            ETRAC_RATE_MAX="100000",
            ETRAC_RATE_ADAPT="0",
            ETRAC_RATE_SLEEP="0",
            ETRAC_LOG_LEVEL="WARNING",
        )
        command = etrack_argv(
            "backfill", "--date-start", first.isoformat(), "--date-end", last.isoformat(),
            "--plates-file", str(plates_file), "--concurrency", str(args.concurrency),
        )  # fmt: skip
        started = time.perf_counter()
        result = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stdout, result.stderr, file=sys.stderr)
            raise SystemExit(f"backfill failed with exit code {result.returncode}")
        with db.connection(target) as conn:
            row = conn.execute(
                "SELECT sum(rows_inserted), extract(epoch FROM max(history_at) - min(history_at))"
                " FROM backfill_partitions"
            ).fetchone()
            assert row is not None
            # The first partition's settle time approximates the start of the fetch phase
            # from below by one answer: add the mean time per partition back.
            inserted, spread = int(row[0] or 0), float(row[1] or 0.0)
    partitions = len(plates) * ((last - first).days + 1)
    fetch = spread * partitions / max(partitions - 1, 1)
    return inserted, wall, fetch


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


def seed_rows(
    sim: Simulator, requests: Sequence[tuple[str, date]], n: int
) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for placa, day in requests:
        body = {"placa": placa, "data": day.strftime("%d/%m/%Y")}
        answer = httpx.post(
            f"{sim.base_url}/{HISTORY}", json=body, auth=(sim.user, sim.key), timeout=60
        ).json()
        for row in answer["posicoes"]:
            out.append(
                (
                    row["placa"].replace("-", "").upper(), _moment(row["data_transmissao"]),
                    None, _number(row["latitude"]), _number(row["longitude"]),
                    _number(row.get("velocidade")), None, None, None, None, None,
                    row.get("logradouro") or None, "valid", orjson.dumps(row).decode(),
                )
            )  # fmt: skip
            if len(out) >= n:
                return out
    return out


# ------------------------------------------------------------------- report
def spread(values: Sequence[float]) -> str:
    return f"{min(values):>9,.0f} {statistics.median(values):>9,.0f} {max(values):>9,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=100)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--pool", type=int, default=4, help="connections, as a job worker has")
    parser.add_argument("--seed-sample", type=int, default=3000)
    args = parser.parse_args()

    last = SIMULATOR_NOW.date() - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)
    sim = Simulator(args.plates)
    try:
        plates = sim.plates()[: args.plates]
        days = [first + timedelta(days=d) for d in range(args.days)]
        requests = [(placa, day) for day in days for placa in plates]
        started = time.perf_counter()
        served = asyncio.run(warm_up(sim, requests))
        print(
            f"{len(requests)} answers ({args.plates} plates x {args.days} days), {served:,} rows"
            f" served; simulator warm-up {time.perf_counter() - started:.1f} s;"
            f" concurrency {args.concurrency}, pool {args.pool}, {args.rounds} rounds"
        )
        rounds: list[Round] = []
        with bench_database() as target:
            with db.connection(target) as conn:
                PartitionKeeper().ensure(
                    conn, [datetime(d.year, d.month, d.day, 12, tzinfo=TZ) for d in days]
                )
            for r in range(args.rounds):
                result: Round = {}
                reset(target)
                n, t = run_etrack(target, sim, requests, args)
                result["etrack ingest path"] = n / t
                reset(target)
                n2, t2 = run_bare(target, sim, requests, args)
                result["bare (same HTTP, threads, SQL)"] = n2 / t2
                if n2 != n:
                    print(f"  note: bare inserted {n2} rows, etrack {n}")
                n3, wall, fetch = run_backfill(
                    sim, plates, first, last, args, "etrack_bench_backfill_e2e"
                )
                result["backfill, whole command"] = n3 / wall
                result["backfill, fetch phase"] = n3 / fetch
                print(
                    f"round {r + 1}: etrack {n:,} rows in {t:.2f} s; bare {n2:,} in {t2:.2f} s;"
                    f" backfill {n3:,} in {wall:.2f} s (fetch phase {fetch:.2f} s)"
                )
                rounds.append(result)
            reset(target)
            sample = seed_rows(sim, requests, args.seed_sample)
            n4, t4 = run_seed(target, sample)
    finally:
        sim.close()
    print()
    print(f"{'rows/s':<34}{'min':>9} {'median':>9} {'max':>9}")
    for name in rounds[0]:
        print(f"{name:<34}{spread([r[name] for r in rounds])}")
    print(f"{'seed (INSERT + COMMIT per row)':<34}{n4 / t4:>9,.0f}   (one run of {n4} rows)")
    ingest = statistics.median(r["etrack ingest path"] for r in rounds)
    bare = statistics.median(r["bare (same HTTP, threads, SQL)"] for r in rounds)
    whole = statistics.median(r["backfill, whole command"] for r in rounds)
    fetch = statistics.median(r["backfill, fetch phase"] for r in rounds)
    print()
    print(f"etrack ingest / bare (medians):            {ingest / bare:.2f}")
    print(f"backfill whole command / ingest path:      {whole / ingest:.2f}  (target >= 0.40)")
    print(f"backfill fetch phase / ingest path:        {fetch / ingest:.2f}")
    print(f"etrack ingest / seed:                      {ingest / (n4 / t4):.1f}x")


if __name__ == "__main__":
    main()
