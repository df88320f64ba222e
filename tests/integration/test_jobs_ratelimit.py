"""The PostgreSQL-backed rate limiter: one pace per account, whatever the
number of limiters (processes) sharing it."""

from __future__ import annotations

import asyncio
import time

from etrack.provider.ratelimit import PgRateLimiter, RateLimiter
from etrack.store import db


def test_it_satisfies_the_clients_protocol(target: db.Target) -> None:
    assert isinstance(PgRateLimiter(target, "a@b.c", 5.0), RateLimiter)


async def acquire_times(limiters: list[PgRateLimiter], each: int) -> list[float]:
    stamps: list[float] = []

    async def run(limiter: PgRateLimiter) -> None:
        for _ in range(each):
            await limiter.acquire()
            stamps.append(time.monotonic())

    await asyncio.gather(*(run(limiter) for _ in range(3) for limiter in limiters))
    for limiter in limiters:
        await limiter.aclose()
    return sorted(stamps)


def test_limiters_sharing_an_account_share_its_rate(target: db.Target) -> None:
    rate = 20.0
    limiters = [PgRateLimiter(target, "fleet@example.com", rate) for _ in range(3)]
    stamps = asyncio.run(acquire_times(limiters, each=4))  # 3 limiters x 3 tasks x 4 = 36
    elapsed = stamps[-1] - stamps[0]
    assert elapsed >= (len(stamps) - 1) / rate * 0.9
    # No one-second window ever holds more than the rate (plus clock jitter).
    window = [b - a for a, b in zip(stamps, stamps[int(rate) :], strict=False)]
    assert min(window) >= 0.9


def test_other_accounts_are_not_held_back(target: db.Target) -> None:
    async def run() -> float:
        slow = PgRateLimiter(target, "slow@example.com", 2.0)
        fast = PgRateLimiter(target, "fast@example.com", 1000.0)
        await slow.acquire()
        started = time.monotonic()
        for _ in range(20):
            await fast.acquire()
        took = time.monotonic() - started
        await slow.aclose()
        await fast.aclose()
        return took

    assert asyncio.run(run()) < 0.5


def test_a_penalty_holds_back_every_limiter_of_the_account(target: db.Target) -> None:
    async def run() -> float:
        first = PgRateLimiter(target, "busy@example.com", 100.0)
        other = PgRateLimiter(target, "busy@example.com", 100.0)
        await first.acquire()
        first.penalize(1.0)
        await first.flush()
        started = time.monotonic()
        await other.acquire()
        took = time.monotonic() - started
        await first.aclose()
        await other.aclose()
        return took

    assert 0.7 <= asyncio.run(run()) <= 1.5


def test_min_interval_paces_one_process(target: db.Target) -> None:
    async def run() -> float:
        limiter = PgRateLimiter(target, "paced@example.com", 1000.0, min_interval=0.2)
        started = time.monotonic()
        for _ in range(4):
            await limiter.acquire()
        took = time.monotonic() - started
        await limiter.aclose()
        return took

    assert asyncio.run(run()) >= 0.6
