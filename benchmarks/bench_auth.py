"""What knowing who asks costs a request (issue 20, docs/users.md).

Side by side in one run, the same GET /api/vehicles (a small fleet: the
request's own work is small, so the login's share shows) answered by the real
app under uvicorn on a loopback port, over one keep-alive connection:

- open: no user exists, loopback is served without a login (the path before
  users existed: no read to know who asks);
- session: a logged-in viewer scoped to a fleet (its user row read on every
  request, the scope's plates resolved);
- token: `Authorization: Bearer` (the token's and user's rows joined, the last
  use written at most once a minute);
- basic: HTTP Basic after the first check (the proven header is remembered,
  the user row still read);
- bare: the user row's query alone over the same kind of pool (the floor of
  the per-request read);
- argon2: one password check (what each login costs, off the event loop).

Usage: ETRACK_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    .venv/bin/python benchmarks/bench_auth.py [--requests 1000] [--repeat 3]
Target: the per-request read adds about a millisecond, and a login's hash
stays well under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database

from etrack.access import users as access
from etrack.access.passwords import hash_password, verify_password
from etrack.config import Settings
from etrack.store import db
from etrack.store.audit import Actor, acting
from etrack.store.queries import query
from etrack.web import create_app

VIEWER = "bench@example.com"
PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway user of the benchmark database)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(settings: Settings, target: db.Target) -> Iterator[str]:
    app = create_app(settings, target, scheduler=False)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def per_request_ms(client: httpx.Client, url: str, n: int, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(n):
            answer = client.get(url)
            if answer.status_code != 200:
                raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")
        runs.append((time.perf_counter() - started) / n * 1000)
    return statistics.median(runs)


def fill(target: db.Target, vehicles: int) -> None:
    with db.connection(target) as conn:
        for i in range(vehicles):
            conn.execute(
                "INSERT INTO terminals (placa, frota) VALUES (%s, %s)",
                (f"BEN{i:04d}", "F1" if i % 2 else "F2"),
            )


def bare_ms(target: db.Target, user_id: int, n: int, repeat: int) -> float:
    async def go() -> float:
        pool = db.AsyncPool(target, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
        await pool.open(wait=True)
        runs = []
        try:
            for _ in range(repeat):
                started = time.perf_counter()
                for _ in range(n):
                    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
                        await cur.execute(query("users_get_by_id"), {"id": user_id})
                        await cur.fetchall()
                runs.append((time.perf_counter() - started) / n * 1000)
        finally:
            await pool.close()
        return statistics.median(runs)

    return asyncio.run(go())


def timed_ms(work: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--vehicles", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, repeat = args.requests, args.repeat
    with bench_database("etrack_bench_auth") as target, tempfile.TemporaryDirectory() as tmp:
        fill(target, args.vehicles)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=target.conninfo,
            etrack_data_dir=Path(tmp),
        )
        url = "/api/vehicles"
        with served(settings, target) as base, httpx.Client(base_url=base) as client:
            open_ms = per_request_ms(client, url, n, repeat)
        with db.connection(target) as conn, acting(Actor("bench")):
            user = access.add_user(conn, VIEWER, role="viewer", password=PASSWORD, fleets=["F1"])
            token = access.create_token(conn, VIEWER, expires="never").clear
        with served(settings, target) as base:
            with httpx.Client(base_url=base) as client:
                form = client.get("/login").text
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
                assert csrf is not None
                client.post(
                    "/login",
                    data={"username": VIEWER, "password": PASSWORD, "csrf_token": csrf.group(1)},
                )
                session_ms = per_request_ms(client, url, n, repeat)
            bearer = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=bearer) as client:
                token_ms = per_request_ms(client, url, n, repeat)
            with httpx.Client(base_url=base, auth=(VIEWER, PASSWORD)) as client:
                basic_ms = per_request_ms(client, url, n, repeat)
        floor_ms = bare_ms(target, user.id, n, repeat)
        stored = hash_password(PASSWORD)
        argon_ms = timed_ms(lambda: verify_password(PASSWORD, stored), repeat)
    print(f"GET {url}, {args.vehicles} vehicles, {n} requests x {repeat} (median ms/request)")
    print(f"  open (no user, loopback)   {open_ms:7.2f}")
    print(f"  session (viewer, fleet F1) {session_ms:7.2f}  (+{session_ms - open_ms:.2f})")
    print(f"  bearer token               {token_ms:7.2f}  (+{token_ms - open_ms:.2f})")
    print(f"  basic (proven header)      {basic_ms:7.2f}  (+{basic_ms - open_ms:.2f})")
    print(f"  bare user-row query        {floor_ms:7.2f}")
    print(f"  argon2 check (one login)   {argon_ms:7.1f}")


if __name__ == "__main__":
    main()
