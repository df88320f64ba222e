"""Speed of the eTrac simulator: `python benchmarks/bench_simulator.py [--quick]`.

Targets (issue): one vehicle-day of history served in under 20 ms, and the
latest positions of 5,000 vehicles in under 200 ms, both over real HTTP.
Prints medians and 95th percentiles; cold figures (first plan of a day) apart.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from etrack.simulator.config import FleetConfig
from etrack.simulator.fleet import Fleet
from etrack.simulator.server import build_config, run_in_thread

TZ = ZoneInfo("America/Sao_Paulo")
NOW = datetime(2025, 1, 8, 12, 0, 0, tzinfo=TZ)


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` runs."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def report(label: str, samples: list[float], target_ms: float | None = None) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    verdict = ""
    if target_ms is not None:
        verdict = f"  target < {target_ms:g} ms: {'OK' if p95 < target_ms else 'MISSED'}"
    print(f"{label:<58} n={len(samples):<4} median {median:8.2f} ms  p95 {p95:8.2f} ms{verdict}")


def bench_fleet(days: int) -> None:
    print("-- fleet (in process, no HTTP)")
    fleet = Fleet(FleetConfig(seed=1, vehicles=50, now=NOW))
    pairs = [
        (plate, date(2024, 11, 1) + timedelta(days=k))
        for plate in fleet.plates()
        for k in range(days)
    ]
    cold: list[float] = []
    for plate, day in pairs:
        started = time.perf_counter()
        fleet.true_trips(plate, day)  # plans the day, nothing else
        cold.append((time.perf_counter() - started) * 1000)
    report("plan one vehicle-day (cold)", cold)
    plate, day = pairs[0]
    rows = len(fleet.history_rows(plate, day))
    report(f"history_rows of one vehicle-day ({rows} rows, warm)", timed(
        lambda: fleet.history_rows(plate, day), 50
    ))  # fmt: skip
    report("expected_positions of one vehicle-day (warm)", timed(
        lambda: fleet.expected_positions(plate, day), 50
    ))  # fmt: skip


def bench_history_http(requests: int) -> None:
    print("-- one vehicle-day of history over HTTP (/ultimasposicoesterminal)")
    config = build_config(seed=1, vehicles=20, now=NOW)
    with run_in_thread(config) as sim, httpx.Client(auth=sim.auth, timeout=30) as client:
        plates = sim.fleet.plates()
        url = sim.url("ultimasposicoesterminal")
        days = [date(2024, 12, 1) + timedelta(days=k) for k in range(28)]
        bodies = [
            {"placa": plate, "data": day.strftime("%d/%m/%Y")} for day in days for plate in plates
        ][:requests]
        client.post(url, json=bodies[0])
        cold = timed_each(lambda body: client.post(url, json=body), bodies)
        report("first request of a vehicle-day (plans it)", cold, 20)
        warm = timed_each(lambda body: client.post(url, json=body), bodies)
        report("same vehicle-days again (plan cached)", warm, 20)
        sizes = [len(client.post(url, json=body).content) for body in bodies[:20]]
        print(f"   answer size: median {statistics.median(sizes) / 1024:.0f} KiB")


def timed_each(
    action: Callable[[dict[str, str]], object], bodies: list[dict[str, str]]
) -> list[float]:
    samples = []
    for body in bodies:
        started = time.perf_counter()
        action(body)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def bench_latest_http(vehicles: int, repeat: int) -> None:
    print(f"-- latest positions of {vehicles} vehicles over HTTP (/ultimas-posicoes), real clock")
    config = build_config(seed=1, vehicles=vehicles, now=None)
    with run_in_thread(config) as sim, httpx.Client(auth=sim.auth, timeout=60) as client:
        url = sim.url("ultimas-posicoes")
        started = time.perf_counter()
        first = client.post(url)
        print(
            f"   first call, plans today for every vehicle: {(time.perf_counter() - started):.2f} s"
        )
        assert len(first.json()["retorno"]) == vehicles
        report(
            f"{vehicles} latest positions (plans cached)",
            timed(lambda: client.post(url), repeat),
            200,
        )
        print(f"   answer size: {len(first.content) / 1024:.0f} KiB")
    fleet = Fleet(FleetConfig(seed=1, vehicles=vehicles))
    started = time.perf_counter()
    fleet.warm()
    print(f"   Fleet.warm() of {vehicles} vehicles (what the CLI does at start): "
          f"{time.perf_counter() - started:.2f} s")  # fmt: skip
    report(f"Fleet.latest_rows() of {vehicles} vehicles, no HTTP", timed(fleet.latest_rows, repeat))
    # Worst case for the per-vehicle cache: a weekday morning, the clock 61 s further
    # at every call, so every moving vehicle has a new latest row each time.
    moments = iter(
        [NOW - timedelta(hours=2) + timedelta(seconds=61 * k) for k in range(repeat + 1)]
    )
    fleet.latest_rows_json(now=next(moments))
    report(
        f"{vehicles} latest_rows_json(), 10:00, clock +61 s a call",
        timed(lambda: fleet.latest_rows_json(now=next(moments)), repeat),
        200,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    repeat = 10 if args.quick else 40
    print(f"python {sys.version.split()[0]}")
    bench_fleet(days=5 if args.quick else 20)
    bench_history_http(requests=50 if args.quick else 200)
    bench_latest_http(5000, repeat)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this benchmark process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
