"""Load benchmark of the web API on a big database: what users ask, cold and warm.

    ETRACK_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python benchmarks/bench_web.py [--vehicles 2000] [--days 25]
        [--clients 50] [--seconds 10] [--workers 2] [--repeat 3]

The database (benchmarks/_db.py: ETRACK_BENCH_DATABASE_URL or an embedded
PostgreSQL) is filled by benchmarks/_fleetdata.py: by default 2,000 vehicles x
25 days x 100 positions = 5M positions with raw JSON, terminals,
latest_positions, the stored route and day summary of every plate-day; then
one current fix per vehicle goes through the real ingest
(etrack.store.positions.store_positions) so the fleet has moving, idle, off
and stale vehicles. The server is `uvicorn --workers N` running the real app
(etrack.web) as a subprocess. The clients are keep-alive HTTP/1.1 connections
written directly on asyncio streams (an httpx client would measure mostly
itself), sending Accept-Encoding: gzip as browsers do.

Each endpoint is measured for `--seconds` with `--clients` clients, COLD and
WARM separately:

- route of a plate-day, GET /api/vehicles/{plate}/days/{day}/route
  (target p95 < 50 ms). COLD: a different plate-day per request, drawn from a
  seeded RNG over every loaded plate-day and never asked twice in the run, so
  the web's 5 s route body cache never answers. WARM: 20 hot plate-days.
- fleet list, GET /api/vehicles (target p95 < 150 ms). COLD: one client,
  each request after the 5 s fleet snapshot of every worker expired (6 per
  repetition): the Reader's query on latest_positions plus encoding; see
  benchmarks/bench_scale.py for the same in-process. WARM: 50 clients polling.
- fleet filtered, /api/vehicles?state=..&frota=..&plate=.. (target p95 <
  150 ms). COLD: a different filter per request (no encoded body reused; the
  snapshot is rebuilt whenever 5 s old, as in production). WARM: 5 filters.
- month report, GET /api/report over 30 days (no cache exists; COLD: a
  different window, fleet or sort per request; WARM: one URL).
- summaries, GET /api/summaries over 7 days (5,000 rows a page, the default):
  the first page, and a later page by its cursor (COLD: cursors built as the
  API writes next_cursor, at a random key of the range; WARM: the `next` a
  first page returned).

Each repetition draws its cold URLs from its own share of the distinct ones:
a cold phase that runs out of them ends early (its line says how many
requests in how long). Per endpoint and phase: requests/s, p50, p95, p99,
errors; the whole measurement is repeated `--repeat` times and the min/median/max of p95 is
printed, the median p95 checked against the targets.

Takes about 10 minutes at the defaults on 2 cores (about 4 to load 5M rows
and compute 50,000 routes); `--vehicles 200 --days 5 --seconds 3 --repeat 1`
is a one-minute check.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _db import bench_database
from _fleetdata import FLEETS, Fleet, load_fleet

from etrack.model import Position
from etrack.store import db
from etrack.store import positions as ingest

ROOT = Path(__file__).resolve().parents[1]
TARGET_ROUTE_P95_MS = 50.0
TARGET_FLEET_P95_MS = 150.0
COLD_FLEET_SAMPLES = 6
SNAPSHOT_TTL_S = 5.0
HOT_ROUTES = 20
STATES = ("moving", "idle", "off", "stale", "unknown")
SORTS = ("placa", "descricao", "frota", "days", "distance_km", "driving_h", "idle_h",
         "parked_h", "max_speed_kmh", "over_limit_h", "trip_count")  # fmt: skip


def live_fixes(conn: db.Conn, fleet: Fleet, rng: random.Random) -> int:
    """One fix per vehicle near now through the real ingest, so the fleet has
    every state: 40% moving, 20% idle, 30% off, 10% none (stale)."""
    now = datetime.now(UTC).replace(microsecond=0)
    rows = conn.execute(
        "SELECT l.placa, l.latitude, l.longitude, l.odometro, t.descricao, t.frota"
        " FROM latest_positions l JOIN terminals t USING (placa) ORDER BY l.placa"
    ).fetchall()
    batch: list[Position] = []
    for placa, lat, lon, odo, descricao, frota in rows:
        draw = rng.random()
        if draw >= 0.9:
            continue
        speed, ignition = (55.0, True) if draw < 0.4 else (0.0, draw < 0.6)
        ts = now - timedelta(seconds=rng.randrange(30, 1800))
        batch.append(
            Position(
                placa, ts, lat + 0.001, lon + 0.001, speed, ignition, odo, None, None, 13.1,
                "Av. Paulista, 1000 - São Paulo - SP", descricao, frota, None, ts, placa,
                "valid", {"placa": placa, "velocidade": int(speed), "ignicao": int(ignition)},
            )
        )  # fmt: skip
    return ingest.store_positions(conn, batch).inserted


class Connection:
    """One keep-alive HTTP/1.1 connection; GET returns (status, body length)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> tuple[int, int]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        # Accept gzip as every browser does (the body is not decompressed here).
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: gzip\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status, length

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def hammer(
    port: int, next_path: Callable[[], str | None], clients: int, seconds: float
) -> tuple[list[float], int, float]:
    """`clients` clients asking `next_path()` until `seconds` pass or it
    returns None; (latencies, failures, elapsed)."""
    latencies: list[float] = []
    failures = 0
    started = time.perf_counter()
    stop_at = started + seconds

    async def client() -> None:
        nonlocal failures
        conn = Connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at:
                path = next_path()
                if path is None:
                    return
                t0 = time.perf_counter()
                status, _ = await conn.get(path)
                latencies.append(time.perf_counter() - t0)
                failures += status != 200
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, failures, time.perf_counter() - started


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass(slots=True)
class Result:
    name: str
    phase: str
    target_ms: float | None
    p95s: list[float] = field(default_factory=list)


def report(result: Result, ms: list[float], failures: int, elapsed: float, clients: int) -> None:
    if not ms:
        print(f"  {result.name:<22} {result.phase:<4} no requests")
        return
    p95 = percentile(ms, 95)
    result.p95s.append(p95)
    print(
        f"  {result.name:<22} {result.phase:<4} {len(ms):6d} req in {elapsed:4.1f} s "
        f"({len(ms) / elapsed:6.0f}/s), {clients:2d} clients: p50 {statistics.median(ms):7.1f}  "
        f"p95 {p95:7.1f}  p99 {percentile(ms, 99):7.1f}  max {max(ms):7.1f} ms, errors {failures}"
    )


def cycle(paths: list[str], rng: random.Random) -> Callable[[], str]:
    return lambda: rng.choice(paths)


def draw(paths: Iterator[str]) -> Callable[[], str | None]:
    return lambda: next(paths, None)


def cold_fleet(port: int, result: Result) -> None:
    """Sequential requests, each after every worker's snapshot expired."""
    ms = []
    failures = 0
    headers = {"accept-encoding": "gzip"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        client.get("/healthz")  # the connection is open before the first sample
        for _ in range(COLD_FLEET_SAMPLES):
            time.sleep(SNAPSHOT_TTL_S + 0.3)
            started = time.perf_counter()
            response = client.get("/api/vehicles")
            ms.append((time.perf_counter() - started) * 1000)
            failures += response.status_code != 200
    report(result, ms, failures, sum(ms) / 1000, 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(target: db.Target, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETRAC", "PG", "DATABASE_URL"))}
    env.update(
        DATABASE_URL=target.conninfo,
        DISABLE_UI_SCHEDULER="1",
        ETRACK_DATA_DIR=tempfile.mkdtemp(prefix="etrack-bench-web-"),
        ETRAC_LOG_LEVEL="WARNING",
    )
    server_argv = [
        str(Path(sys.executable).parent / "uvicorn"),
        "--factory",
        "etrack.web.entry:asgi_app_from_env",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", str(workers),
        "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    print("server:", " ".join(server_argv[1:]))
    server = subprocess.Popen(server_argv, cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server, port
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.terminate()
            raise SystemExit("the server did not start")
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument("--rows-per-day", type=int, default=100)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0, help="per endpoint and phase")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    print("command:", " ".join([".venv/bin/python", "benchmarks/bench_web.py", *sys.argv[1:]]))
    rng = random.Random(args.seed)
    with bench_database("etrack_bench_web") as target:
        fleet = load_fleet(
            target, vehicles=args.vehicles, days=args.days, rows_per_day=args.rows_per_day
        )
        for line in fleet.lines():
            print(line)
        with db.connection(target, autocommit=True) as conn:
            live = live_fixes(conn, fleet, rng)
            conn.execute("ANALYZE latest_positions")
        print(f"{live} current fixes stored through store_positions (the live fleet)")
        server, port = start_server(target, args.workers)
        try:
            ok = measure(port, fleet, args, rng)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0 if ok else 1


def measure(port: int, fleet: Fleet, args: argparse.Namespace, rng: random.Random) -> bool:
    base = f"http://127.0.0.1:{port}"
    days = fleet.days
    plate_days = [(p, d) for p in fleet.plates for d in days]
    rng.shuffle(plate_days)
    hot = plate_days[:HOT_ROUTES]
    # Never asked twice in the whole run: no body cache, no repeat of a row.
    # Each repetition draws from its own share of the distinct URLs.
    cold_routes = [
        f"/api/vehicles/{p}/days/{d.isoformat()}/route" for p, d in plate_days[HOT_ROUTES:]
    ]
    hot_routes = [f"/api/vehicles/{p}/days/{d.isoformat()}/route" for p, d in hot]

    fleets = [f"Frota {name}" for name in FLEETS]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    filters = [
        (state, frota, a + b)
        for state in (None, *STATES)
        for frota in (None, *fleets)
        for a in letters
        for b in letters
        if state or frota
    ]
    rng.shuffle(filters)

    def filter_path(state: str | None, frota: str | None, plate: str | None) -> str:
        parts = [f"state={state}"] if state else []
        parts += [f"frota={quote(frota)}"] if frota else []
        parts += [f"plate={plate}"] if plate else []
        return "/api/vehicles?" + "&".join(parts)

    cold_filters = [filter_path(*f) for f in filters]
    hot_filters = [
        filter_path("moving", None, None),
        filter_path("idle", None, None),
        filter_path("stale", None, None),
        filter_path(None, fleets[0], None),
        filter_path(None, None, fleet.plates[0][:2]),
    ]

    end = fleet.end_day

    def report_path(last_day: date, frota: str | None, sort: str, order: str) -> str:
        first = last_day - timedelta(days=29)
        path = f"/api/report?start={first.isoformat()}&end={last_day.isoformat()}"
        path += f"&sort={sort}&order={order}"
        return path + (f"&frota={quote(frota)}" if frota else "")

    reports = [
        report_path(d, f, s, o)
        for d in days
        for f in (None, *fleets)
        for s in SORTS
        for o in ("asc", "desc")
    ]
    rng.shuffle(reports)
    hot_report = [report_path(end, None, "placa", "asc")]

    span = min(7, len(days))
    starts = days[: len(days) - span + 1]

    def summaries_path(first: date) -> str:
        last = first + timedelta(days=span - 1)
        return f"/api/summaries?start={first.isoformat()}&end={last.isoformat()}"

    def cold_first_page() -> str:
        return summaries_path(rng.choice(starts))

    def cold_later_page() -> str:
        first = rng.choice(starts)
        key = first + timedelta(days=rng.randrange(span))
        return summaries_path(first) + f"&cursor={key.isoformat()}_{rng.choice(fleet.plates)}"

    hot_first = [summaries_path(starts[-1])]
    page = httpx.get(base + hot_first[0]).json()
    print(
        f"summaries over {span} days: {page['total']} rows, {page['count']} on the first page"
        f" (limit {page['limit']})"
    )
    hot_later = [page["next"]] if page["next"] else hot_first
    fleet_body = httpx.get(base + "/api/vehicles").json()
    counts: dict[str, int] = {}
    for v in fleet_body["vehicles"]:
        counts[v["state"]] = counts.get(v["state"], 0) + 1
    print(f"fleet: {fleet_body['count']} vehicles, states {dict(sorted(counts.items()))}")

    repeat = args.repeat

    def share(paths: list[str]) -> Callable[[int], Callable[[], str | None]]:
        return lambda n: draw(iter(paths[n::repeat]))

    def always(supplier: Callable[[], str | None]) -> Callable[[int], Callable[[], str | None]]:
        return lambda n: supplier

    Supplier = Callable[[], str | None]
    plan: list[tuple[Result, Result, Callable[[int], Supplier], Supplier | None]]
    plan = [
        (
            Result("route of a plate-day", "cold", TARGET_ROUTE_P95_MS),
            Result("route of a plate-day", "warm", TARGET_ROUTE_P95_MS),
            share(cold_routes),
            cycle(hot_routes, rng),
        ),
        (
            Result("fleet list", "cold", TARGET_FLEET_P95_MS),
            Result("fleet list", "warm", TARGET_FLEET_P95_MS),
            always(cycle(["/api/vehicles"], rng)),
            None,
        ),
        (
            Result("fleet filtered", "cold", TARGET_FLEET_P95_MS),
            Result("fleet filtered", "warm", TARGET_FLEET_P95_MS),
            share(cold_filters),
            cycle(hot_filters, rng),
        ),
        (
            Result("month report", "cold", None),
            Result("month report", "warm", None),
            share(reports),
            cycle(hot_report, rng),
        ),
        (
            Result("summaries first page", "cold", None),
            Result("summaries first page", "warm", None),
            always(cold_first_page),
            cycle(hot_first, rng),
        ),
        (
            Result("summaries later page", "cold", None),
            Result("summaries later page", "warm", None),
            always(cold_later_page),
            cycle(hot_later, rng),
        ),
    ]
    # Connections and the workers' pools up, on URLs the measurement never asks.
    asyncio.run(hammer(port, cycle(hot_routes[:1], rng), args.clients, 2.0))
    for n in range(args.repeat):
        print(f"repetition {n + 1}/{args.repeat}:")
        for cold, warm, cold_next, warm_next in plan:
            if warm_next is None:  # the unfiltered fleet list: one URL
                cold_fleet(port, cold)
                warm_next = cold_next(n)
            else:
                latencies, failures, elapsed = asyncio.run(
                    hammer(port, cold_next(n), args.clients, args.seconds)
                )
                report(cold, [v * 1000 for v in latencies], failures, elapsed, args.clients)
            asyncio.run(hammer(port, warm_next, args.clients, 1.0))  # warm-up
            latencies, failures, elapsed = asyncio.run(
                hammer(port, warm_next, args.clients, args.seconds)
            )
            report(warm, [v * 1000 for v in latencies], failures, elapsed, args.clients)
    print(f"\np95 over {args.repeat} repetitions (min / median / max), target on the median:")
    ok = True
    for cold, warm, _, _ in plan:
        for result in (cold, warm):
            if not result.p95s:
                continue
            median = statistics.median(result.p95s)
            verdict = ""
            if result.target_ms is not None:
                met = median < result.target_ms
                ok &= met
                verdict = f"-> {'OK' if met else 'OVER'} target p95 < {result.target_ms:.0f} ms"
            print(
                f"  {result.name:<22} {result.phase:<4} p95 {min(result.p95s):7.1f} / "
                f"{median:7.1f} / {max(result.p95s):7.1f} ms {verdict}"
            )
    return ok


if __name__ == "__main__":
    sys.exit(main())
