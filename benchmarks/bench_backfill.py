"""Backfill wall time against the account's rate limit.

The simulator answers with a fixed latency and enforces a per-account rate
limit; `etrack backfill` (a real subprocess, its in-process worker, the
PostgreSQL-backed limiter) fetches P plates x D days. A rate-bound backfill
needs at least calls / rate seconds; the target is 1.15 x that. Beside it,
what the seed's sequential loop would take on the same settings: every call
waits for its answer, then sleeps: calls x (latency + sleep).

Usage: python benchmarks/bench_backfill.py [--plates 50] [--days 7]
       [--latency-ms 300] [--rate 10] [--concurrency 16] [--seed-sleep 0.5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database

from etrack.simulator.server import build_config, run_in_thread
from etrack.store import db

TZ = ZoneInfo("America/Sao_Paulo")
SIMULATOR_NOW = datetime(2025, 1, 8, 12, 0, tzinfo=TZ)


def etrack_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "etrack", *args]


def clean_env(**extra: str) -> dict[str, str]:
    own = ("ETRAC_", "ETRACK_", "PG", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(extra)
    return env


def run(args: argparse.Namespace, target: db.Target) -> None:
    config = build_config(
        seed=42,
        vehicles=args.plates,
        now=SIMULATOR_NOW,
        latency_ms=args.latency_ms,
        rate_limit_per_s=args.rate,
    )
    first = SIMULATOR_NOW.date() - timedelta(days=args.days)
    last = SIMULATOR_NOW.date() - timedelta(days=1)
    with run_in_thread(config) as sim, tempfile.TemporaryDirectory() as folder:
        plates_file = Path(folder) / "plates.txt"
        plates_file.write_text("\n".join(sim.fleet.plates()) + "\n")
        env = clean_env(
            DATABASE_URL=target.conninfo,
            ETRAC_API_BASE=sim.base_url,
            ETRAC_USER=sim.user,
            ETRAC_KEY=sim.key,
            ETRAC_RATE_LIMIT=str(args.rate),
            # The backfill path at a rate it is told; bench_pace.py measures
            # the pace finding the rate by itself.
            ETRAC_RATE_ADAPT="0",
            ETRAC_RATE_SLEEP="0",
            ETRAC_LOG_LEVEL="WARNING",
        )
        command = etrack_argv(
            "backfill",
            "--date-start",
            first.isoformat(),
            "--date-end",
            last.isoformat(),
            "--plates-file",
            str(plates_file),
            "--concurrency",
            str(args.concurrency),
        )
        started = time.perf_counter()
        result = subprocess.run(
            command, env=env, cwd=folder, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stdout, result.stderr, file=sys.stderr)
            raise SystemExit(f"backfill failed with exit code {result.returncode}")
        stats = sim.stats()
    report(args, first, last, wall, stats.total, stats.count(status=429))


def report(
    args: argparse.Namespace,
    first: date,
    last: date,
    wall: float,
    calls: int,
    limited: int,
) -> None:
    partitions = args.plates * args.days
    floor = calls / args.rate
    bound = 1.15 * floor
    seed = calls * (args.latency_ms / 1000 + args.seed_sleep)
    print(
        f"backfill {args.plates} plates x {args.days} days ({first}..{last}) = {partitions} "
        f"partitions; simulator latency {args.latency_ms} ms, limit {args.rate:g} requests/s; "
        f"--concurrency {args.concurrency}"
    )
    print(f"calls made: {calls} ({limited} answered 429)")
    print(f"etrack backfill wall time: {wall:.2f} s (whole command: start, enqueue, fetch, routes)")
    print(f"rate floor calls/rate: {floor:.2f} s; target 1.15 x floor: {bound:.2f} s")
    print(f"etrack / floor: {wall / floor:.3f} -> {'within' if wall <= bound else 'OVER'} target")
    print(
        f"seed sequential estimate calls x (latency + sleep {args.seed_sleep:g} s): {seed:.1f} s; "
        f"seed / etrack: {seed / wall:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plates", type=int, default=50)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--seed-sleep", type=float, default=0.5, help="the seed's --sleep between requests"
    )
    args = parser.parse_args()
    with bench_database("etrack_bench_backfill") as target:
        run(args, target)


if __name__ == "__main__":
    main()
