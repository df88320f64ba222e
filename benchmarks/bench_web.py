"""Load benchmark of the web API: 50 concurrent clients.

    .venv/bin/python benchmarks/bench_web.py [--clients 50] [--seconds 10] [--workers 2]

Two endpoints, each for `--seconds` after a short warm-up:

- the route of one plate-day of 1,440 points (one a minute):
  GET /api/vehicles/{plate}/days/{day}/route   (target p95 < 50 ms)
- the latest position of every one of 5,000 vehicles:
  GET /api/vehicles                            (target p95 < 150 ms)

The server is `uvicorn --workers N` running the real app (etrack.web) on a
throwaway database (benchmarks/_db.py: ETRACK_BENCH_DATABASE_URL or an embedded
PostgreSQL). The clients are keep-alive HTTP/1.1 connections written directly
on asyncio streams, so the load generator costs little CPU next to the server
on the same machine (an httpx client would measure mostly itself). They send
Accept-Encoding: gzip, as browsers do. The route figure includes the web's
5-second body cache (a stored past day is read from PostgreSQL once per 5 s
however many clients ask); the fleet figure its 5-second fleet snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _db import bench_database

from etrack.model import Position
from etrack.store import db
from etrack.store import positions as ingest
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams

TZ = ZoneInfo("America/Sao_Paulo")
ROOT = Path(__file__).resolve().parents[1]
VEHICLES = 5000
ROUTE_PLATE = "BEN1C44"
TARGET_ROUTE_P95_MS = 50.0
TARGET_FLEET_P95_MS = 150.0


def plate_of(n: int) -> str:
    letters = "".join(chr(65 + (n // 26**k) % 26) for k in (2, 1, 0))
    return f"{letters}{n % 10000:04d}"


def position(
    placa: str, ts: datetime, lat: float, lon: float, speed: float, ignition: bool
) -> Position:
    return Position(
        placa, ts, lat, lon, speed, ignition, None, None, None, None, f"Rua {placa[:3]}, {int(speed)}",
        f"Veículo {placa}", f"Frota {ord(placa[0]) % 7}", None, None, placa, "valid", {},
    )  # fmt: skip


def load(target: db.Target) -> date:
    """5,000 vehicles with their latest positions; one plate-day of 1,440 points."""
    now = datetime.now(UTC).replace(microsecond=0)
    with db.connection(target, autocommit=True) as conn:
        batch: list[Position] = []
        for n in range(VEHICLES):
            placa = plate_of(n)
            lat = -23.55 + ((n * 7919) % 1000) / 2000.0
            lon = -46.63 + ((n * 104729) % 1000) / 2000.0
            for k in range(3):
                ts = now - timedelta(minutes=(n % 90) + 2 * k)
                batch.append(
                    position(placa, ts, lat + k / 1e4, lon, float((n + k) % 70), n % 3 != 0)
                )
            if len(batch) >= 6000:
                ingest.store_positions(conn, batch)
                batch = []
        if batch:
            ingest.store_positions(conn, batch)
        day = datetime.now(TZ).date() - timedelta(days=1)
        start = datetime.combine(day, datetime.min.time(), TZ)
        points = []
        for minute in range(1440):
            angle = 2 * math.pi * minute / 1440
            speed = 0.0 if minute < 360 or minute > 1200 else 40 + 35 * math.sin(minute / 17)
            points.append(
                position(
                    ROUTE_PLATE,
                    start + timedelta(minutes=minute),
                    -23.55 + 0.08 * math.sin(angle) + 0.002 * math.sin(minute / 5),
                    -46.63 + 0.1 * math.cos(angle),
                    speed,
                    speed > 0,
                )
            )
        ingest.store_positions(conn, points)
    compute_routes(target, RouteParams(tz=TZ), plates=[ROUTE_PLATE], days=[day])
    return day


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


async def hammer(
    host: str, port: int, path: str, clients: int, seconds: float
) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal failures
        conn = Connection(host, port)
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status, _ = await conn.get(path)
            latencies.append(time.perf_counter() - started)
            failures += status != 200

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, failures


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def measure(
    name: str, port: int, path: str, clients: int, seconds: float, target_ms: float
) -> bool:
    asyncio.run(hammer("127.0.0.1", port, path, clients, 2.0))  # warm-up
    latencies, failures = asyncio.run(hammer("127.0.0.1", port, path, clients, seconds))
    ms = [v * 1000 for v in latencies]
    p95 = percentile(ms, 95)
    ok = p95 < target_ms and failures == 0
    print(
        f"{name}: {len(ms)} requests in {seconds:.0f} s ({len(ms) / seconds:.0f}/s), "
        f"{clients} clients, p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, "
        f"p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms, errors {failures} "
        f"-> {'OK' if ok else 'OVER'} target p95 < {target_ms:.0f} ms"
    )
    return ok


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()
    print("command:", " ".join([".venv/bin/python", "benchmarks/bench_web.py", *sys.argv[1:]]))
    with bench_database("etrack_bench_web") as target:
        started = time.perf_counter()
        day = load(target)
        print(
            f"loaded {VEHICLES} vehicles and a 1,440-point day in {time.perf_counter() - started:.1f} s"
        )
        port = free_port()
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ETRAC", "PG", "DATABASE_URL"))
        }
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
            "--workers", str(args.workers),
            "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
        print("server:", " ".join(server_argv[1:]))
        server = subprocess.Popen(server_argv, cwd=ROOT, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            route = f"/api/vehicles/{ROUTE_PLATE}/days/{day.isoformat()}/route"
            feature = httpx.get(f"http://127.0.0.1:{port}{route}").json()
            fleet = httpx.get(f"http://127.0.0.1:{port}/api/vehicles").json()
            print(
                f"route: {feature['properties']['point_count']} points, "
                f"{len(feature['geometry']['coordinates'])} coordinates; fleet: {fleet['count']} vehicles"
            )
            ok = measure(
                "route of a day  ", port, route, args.clients, args.seconds, TARGET_ROUTE_P95_MS
            )
            ok &= measure(
                "fleet latest    ",
                port,
                "/api/vehicles",
                args.clients,
                args.seconds,
                TARGET_FLEET_P95_MS,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
