"""Two accounts' backfills together against each one alone.

Each eTrac account has its own API budget, so a backfill over two accounts
should take about as long as the longer one alone (target: at most 1.2 x),
not the sum. The simulator serves two accounts with distinct plates, each
enforcing its own rate limit (429 beyond it); `etrack backfill` (a real
subprocess, its in-process worker, one PostgreSQL-backed limiter per account)
runs three times on fresh databases: `--account north`, `--account south`,
and both. Every run must see no 429 (each account within its own limit).

Usage: python benchmarks/bench_accounts.py [--north-plates 30] [--north-rate 10]
       [--south-plates 20] [--south-rate 5] [--days 3] [--latency-ms 100]
       [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database

from etrack.simulator.config import Account
from etrack.simulator.server import SimulatorHandle, build_config, run_in_thread

TZ = ZoneInfo("America/Sao_Paulo")
SIMULATOR_NOW = datetime(2025, 1, 8, 12, 0, tzinfo=TZ)


def clean_env(**extra: str) -> dict[str, str]:
    own = ("ETRAC_", "ETRACK_", "PG", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env.update(extra)
    return env


def accounts_file(folder: Path, sim: SimulatorHandle, args: argparse.Namespace) -> Path:
    path = folder / "accounts.toml"
    path.write_text(
        f"""
[accounts.north]
user = "north@example.com"
key_env = "NORTH_KEY"
api_base = "{sim.base_url}"
rate_limit = {args.north_rate}

[accounts.south]
user = "south@example.com"
key_env = "SOUTH_KEY"
api_base = "{sim.base_url}"
rate_limit = {args.south_rate}
"""
    )
    return path


def backfill(
    sim: SimulatorHandle, args: argparse.Namespace, folder: Path, account: str | None
) -> tuple[float, int, int]:
    """(wall seconds, calls, 429 answers) of one backfill on a fresh database."""
    first = SIMULATOR_NOW.date() - timedelta(days=args.days)
    last = SIMULATOR_NOW.date() - timedelta(days=1)
    name = f"etrack_bench_accounts_{account or 'both'}"
    with bench_database(name) as target:
        env = clean_env(
            DATABASE_URL=target.conninfo,
            ETRACK_ACCOUNTS_FILE=str(accounts_file(folder, sim, args)),
            NORTH_KEY="north-key",
            SOUTH_KEY="south-key",
            # Fairness between accounts at the rates they are told (fixed):
            # bench_pace.py measures the pace finding a rate by itself.
            ETRAC_RATE_ADAPT="0",
            ETRAC_RATE_SLEEP="0",
            ETRAC_LOG_LEVEL="WARNING",
        )
        command = [
            sys.executable,
            "-m",
            "etrack",
            "backfill",
            "--date-start",
            first.isoformat(),
            "--date-end",
            last.isoformat(),
            "--concurrency",
            str(args.concurrency),
            *(["--account", account] if account else []),
        ]
        sim.reset_stats()
        started = time.perf_counter()
        result = subprocess.run(
            command, env=env, cwd=folder, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            print(result.stdout, result.stderr, file=sys.stderr)
            raise SystemExit(f"backfill failed with exit code {result.returncode}")
        stats = sim.stats()
    return wall, stats.total, stats.count(status=429)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--north-plates", type=int, default=30)
    parser.add_argument("--north-rate", type=float, default=10.0)
    parser.add_argument("--south-plates", type=int, default=20)
    parser.add_argument("--south-rate", type=float, default=5.0)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    config = build_config(
        seed=42,
        now=SIMULATOR_NOW,
        latency_ms=args.latency_ms,
        accounts=(
            Account(
                "north@example.com",
                "north-key",
                vehicles=args.north_plates,
                rate_limit_per_s=args.north_rate,
            ),
            Account(
                "south@example.com",
                "south-key",
                vehicles=args.south_plates,
                rate_limit_per_s=args.south_rate,
            ),
        ),
    )
    with run_in_thread(config) as sim, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = {
            label: backfill(sim, args, folder, account)
            for label, account in (("north", "north"), ("south", "south"), ("both", None))
        }
    print(
        f"backfill {args.days} days; north {args.north_plates} plates at {args.north_rate:g} "
        f"req/s, south {args.south_plates} plates at {args.south_rate:g} req/s; simulator "
        f"latency {args.latency_ms} ms; --concurrency {args.concurrency}"
    )
    for label, (wall, calls, limited) in runs.items():
        print(f"  {label:<6} {wall:7.2f} s  {calls:5d} calls  {limited} answered 429")
    longer = max(runs["north"][0], runs["south"][0])
    ratio = runs["both"][0] / longer
    verdict = "within" if ratio <= 1.2 and not any(r[2] for r in runs.values()) else "OVER"
    print(f"both / longer alone: {ratio:.3f} (target <= 1.2) -> {verdict} target")
    print(f"sum of both alone: {runs['north'][0] + runs['south'][0]:.2f} s")


if __name__ == "__main__":
    main()
