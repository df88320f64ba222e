"""The adaptive API pace against the real simulator over HTTP, on a real
PostgreSQL: it finds a limit it is not told, keeps what it learned for the
next run, and every process of the account follows one pace."""

from __future__ import annotations

import asyncio
import time
import warnings

import pytest
from pydantic import SecretStr

from etrack.config import Settings
from etrack.jobs.env import JobEnv
from etrack.pace import PaceBounds
from etrack.provider.client import EtracClient
from etrack.provider.ratelimit import PgRateLimiter
from etrack.simulator.server import SimulatorHandle
from etrack.store import db, rates
from etrack.web import create_app
from fixtures_cli import RunEtrack
from fixtures_outage import RestartableServer
from fixtures_simulator import MakeSimulator

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.slow

BOUNDS = PaceBounds(start=5.0, floor=0.5, ceiling=20.0)


def limiter_for(target: db.Target, sim: SimulatorHandle, **options: object) -> PgRateLimiter:
    return PgRateLimiter(target, sim.user, BOUNDS.start, bounds=BOUNDS, **options)  # type: ignore[arg-type]


async def fetch_latest(sim: SimulatorHandle, limiters: list[PgRateLimiter], calls: int) -> None:
    """*calls* requests spread over one client per limiter (one per
    "process"), 8 at a time each, as a backfill's worker sends them."""
    clients = [
        EtracClient(sim.base_url, sim.user, sim.key, limiter=limiter, wait_initial=0.01)
        for limiter in limiters
    ]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(calls):
        queue.put_nowait(number)

    async def work(client: EtracClient) -> None:
        while not queue.empty():
            queue.get_nowait()
            await client.latest_positions()

    try:
        await asyncio.gather(*(work(client) for client in clients for _ in range(8)))
    finally:
        for client in clients:
            await client.aclose()
        for limiter in limiters:
            await limiter.aclose()


def stored(conn: db.Conn, account: str) -> rates.AccountRate:
    (found,) = rates.account_rates(conn, [account])
    return found


def test_it_finds_a_limit_it_is_not_told_and_keeps_it(
    make_simulator: MakeSimulator, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(rate_limit_per_s=6.0, latency_ms=100)
    asyncio.run(fetch_latest(sim, [limiter_for(target, sim)], calls=45))
    served = sim.stats()
    ok = served.count(status=200)
    assert ok == 45  # every call succeeded in the end
    pace = stored(conn, sim.user)
    assert not pace.learning
    assert 4.0 <= (pace.rate or 0) <= 7.2  # learned: near 6/s, from a start of 5/s
    assert pace.throttled == served.count(status=429)
    assert pace.throttled <= 6
    assert pace.requests == served.total

    # The next run starts where this one ended: its first pace is the learned one.
    again = limiter_for(target, sim, join_within_s=0.0)

    async def first_pace() -> float:
        await again.acquire()
        rate = again.rate
        await again.aclose()
        return rate

    assert asyncio.run(first_pace()) == pytest.approx(pace.rate)


def test_a_generous_account_is_paced_up_to_the_maximum(
    make_simulator: MakeSimulator, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(rate_limit_per_s=50.0, latency_ms=50)
    asyncio.run(fetch_latest(sim, [limiter_for(target, sim)], calls=60))
    pace = stored(conn, sim.user)
    assert pace.rate == BOUNDS.ceiling
    assert pace.learning  # never throttled
    assert sim.stats().count(status=429) == 0


def test_processes_of_one_account_follow_one_pace(
    make_simulator: MakeSimulator, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(rate_limit_per_s=8.0, latency_ms=100)
    limiters = [limiter_for(target, sim) for _ in range(3)]
    asyncio.run(fetch_latest(sim, limiters, calls=48))
    served = sim.stats()
    assert served.count(status=200) == 48
    pace = stored(conn, sim.user)
    # Three processes together, not three times the limit: few 429s, one pace.
    assert served.count(status=429) <= 8
    assert 5.0 <= (pace.rate or 0) <= 9.6
    seen = {round(limiter.rate, 6) for limiter in limiters}
    assert max(seen) <= BOUNDS.ceiling


def test_a_fixed_pace_keeps_its_rate_and_leaves_the_learned_pace_alone(
    make_simulator: MakeSimulator, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(latency_ms=20)
    asyncio.run(fetch_latest(sim, [limiter_for(target, sim)], calls=20))
    learned = stored(conn, sim.user)
    assert learned.rate == BOUNDS.ceiling

    fixed = PaceBounds(start=8.0, floor=0.5, ceiling=20.0, adapt=False)
    limiter = PgRateLimiter(target, sim.user, 8.0, bounds=fixed)
    started = time.monotonic()
    asyncio.run(fetch_latest(sim, [limiter], calls=17))
    took = time.monotonic() - started
    assert took >= 16 / 8.0 * 0.9  # its own 8/s, not the learned 20/s
    assert limiter.rate == 8.0
    after = stored(conn, sim.user)
    assert (after.rate, after.requests) == (learned.rate, learned.requests)


def test_requests_go_on_at_the_last_pace_while_postgresql_is_down(
    make_simulator: MakeSimulator, restartable_server: RestartableServer
) -> None:
    sim = make_simulator(latency_ms=20)
    limiter = limiter_for(restartable_server.target, sim)
    client = EtracClient(sim.base_url, sim.user, sim.key, limiter=limiter, wait_initial=0.01)

    async def go() -> tuple[int, float]:
        for _ in range(5):
            await client.latest_positions()
        pace = limiter.rate
        restartable_server.stop()
        served = 0
        for _ in range(6):
            await client.latest_positions()  # none may fail for the database
            served += 1
        await client.aclose()
        await limiter.aclose()
        return served, pace

    served, pace = asyncio.run(go())
    assert served == 6
    assert limiter.rate == pace  # never faster than the last pace seen
    assert sim.stats().count(status=200) == 11


def test_a_row_held_by_a_stopped_process_does_not_hang_requests(
    make_simulator: MakeSimulator, target: db.Target, conn: db.Conn
) -> None:
    sim = make_simulator(latency_ms=20)
    asyncio.run(fetch_latest(sim, [limiter_for(target, sim)], calls=4))
    # Another process stopped (Ctrl-Z) inside its pace transaction: the row
    # stays locked until the server ends that idle transaction.
    with db.connection(target) as holder:
        holder.execute("SELECT 1 FROM rate_limits WHERE account = %s FOR UPDATE", (sim.user,))
        started = time.monotonic()
        asyncio.run(fetch_latest(sim, [limiter_for(target, sim, join_within_s=0.0)], calls=8))
        took = time.monotonic() - started
        holder.rollback()
    assert took < 6.0  # the lock timeout (2 s), then its own pace; not the hold
    assert sim.stats().count(status=200) == 12


def test_etrack_accounts_shows_the_pace_and_rate_reset_forgets_it(
    make_simulator: MakeSimulator,
    target: db.Target,
    conn: db.Conn,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    run_etrack: RunEtrack,
) -> None:
    sim = make_simulator(rate_limit_per_s=50.0, latency_ms=20)
    asyncio.run(fetch_latest(sim, [limiter_for(target, sim)], calls=20))
    for name, value in {
        "DATABASE_URL": database_url,
        "ETRAC_API_BASE": sim.base_url,
        "ETRAC_USER": sim.user,
        "ETRAC_KEY": sim.key,
    }.items():
        monkeypatch.setenv(name, value)

    code, out, _ = run_etrack("accounts")
    assert code == 0
    header, line = out.splitlines()[:2]
    assert "pace/s" in header
    assert "429s/requests" in header
    columns = line.split()
    assert "learning" in columns  # no 429 yet: still growing
    assert "0/20" in columns
    assert sim.key not in out

    code, out, _ = run_etrack("accounts", "rate")
    assert code == 0
    assert "adaptive, start 5/s, between 0.5 and 20/s" in out
    assert "still growing (no 429 yet), 0 429s in 20 requests" in out

    code, out, _ = run_etrack("accounts", "rate", "--reset")
    assert code == 0
    assert "forgot its learned pace; the next run starts at 5/s" in out
    assert rates.account_rates(conn) == []
    code, out, _ = run_etrack("accounts", "rate", "--reset")  # twice: nothing more to do
    assert code == 0
    assert "had no learned pace" in out


def test_the_jobs_page_and_metrics_show_each_accounts_pace(
    make_simulator: MakeSimulator, target: db.Target, settings: Settings
) -> None:
    sim = make_simulator(rate_limit_per_s=50.0, latency_ms=20)
    asyncio.run(fetch_latest(sim, [limiter_for(target, sim)], calls=12))
    current = settings.model_copy(update={"etrac_user": sim.user, "etrac_key": SecretStr(sim.key)})
    app = create_app(current, target, scheduler=False)
    with TestClient(app, base_url="http://127.0.0.1:5001") as client:
        page = client.get("/jobs")
        assert page.status_code == 200
        cell = page.text.split('<td class="pace">', 1)[1].split("</td>", 1)[0]
        assert "req/s, aumentando (sem 429 ainda); 0 429 em 12 requisições" in cell
        assert "latência" in cell
        metrics = client.get("/metrics").text
    line = next(
        row
        for row in metrics.splitlines()
        if row.startswith("etrack_api_pace_requests_per_second{")
    )
    assert 'account="default"' in line  # by account name: /metrics is open, logins stay out
    assert sim.user not in metrics
    assert 5.0 <= float(line.rsplit(" ", 1)[1]) <= 20.0
    assert 'etrack_api_requests{account="default"} 12.0' in metrics
    assert 'etrack_api_pace_learning{account="default"} 1.0' in metrics


def test_the_backfill_progress_bar_reads_the_pace_a_worker_sends_at(
    make_simulator: MakeSimulator, target: db.Target, settings: Settings
) -> None:
    sim = make_simulator(latency_ms=20)
    current = settings.model_copy(
        update={
            "etrac_api_base": sim.base_url,
            "etrac_user": sim.user,
            "etrac_key": SecretStr(sim.key),
        }
    )

    async def go() -> tuple[float | None, float | None, float]:
        env = JobEnv(current, target, pool_size=2)
        before = env.pace()
        collector = await env.shared_collector()
        for _ in range(6):
            await collector.client.latest_positions()
        during = env.pace()
        (_, _, limiter) = next(iter(env._collectors.values()))
        await env.aclose()
        return before, during, limiter.rate

    before, during, rate = asyncio.run(go())
    assert before is None  # nothing sent yet: the bar shows no pace
    assert during == rate
    assert during is not None
    assert 5.0 <= during <= 20.0
