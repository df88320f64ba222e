"""Issue 13, point 1: the web's embedded scheduler rides out a database
outage, and /healthz says so (503 with the reasons) until all is well again.

Before the fix the scheduler went to `stopped` for good while /healthz kept
answering 200 "ok". The web app runs in-process (its lifespan starts the
scheduler) against a private PostgreSQL that the test stops for ~10 s and
~30 s, and the simulator over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pydantic
import pytest

from etrack.config import Settings
from etrack.web import create_app
from etrack.web.api.operations import fetch_overdue_since
from fixtures_jobs import FAST
from fixtures_outage import RestartableServer
from fixtures_simulator import MakeSimulator

LOCAL = "http://127.0.0.1:5001"


async def until(check: Callable[[], Awaitable[Any]], *, deadline_s: float, what: str) -> Any:
    """Poll `check` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)  # the polling interval, not a wait for the event


def outage_settings(
    server: RestartableServer, sim_base: str, user: str, key: str, tmp: Path
) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=pydantic.SecretStr(server.url),
        etrack_data_dir=tmp / "data",
        etrack_log_dir=tmp / "logs",
        etrac_api_base=sim_base,
        etrac_user=user,
        etrac_key=pydantic.SecretStr(key),
        etrac_rate_limit=100.0,
        etrack_fetch_cron="* * * * * */2",  # every 2 seconds
        etrack_job_poll_s=FAST.poll_s,
        etrack_job_heartbeat_s=FAST.heartbeat_s,
        etrack_job_stalled_after_s=FAST.stalled_after_s,
        etrack_job_recover_cron=FAST.recover_cron,
    )


@pytest.mark.slow
def test_the_embedded_scheduler_and_healthz_through_two_outages(
    restartable_server: RestartableServer, make_simulator: MakeSimulator, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=2)
    settings = outage_settings(restartable_server, sim.base_url, sim.user, sim.key, tmp_path)
    app = create_app(settings, restartable_server.target, scheduler=True)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=LOCAL, timeout=60) as client,
        ):

            async def health() -> httpx.Response:
                return await client.get("/healthz")

            async def healthy() -> httpx.Response | None:
                answer = await health()
                return answer if answer.status_code == 200 and answer.json()["last_fetch"] else None

            async def fetched_after(moment: datetime) -> bool:
                answer = (await health()).json()
                last = answer.get("last_fetch")
                return bool(last) and datetime.fromisoformat(last) > moment

            first = await until(healthy, deadline_s=60, what="a first fetch and 200")
            assert first.json()["status"] == "ok"
            assert first.json()["reasons"] == []
            assert first.json()["scheduler"]["state"] == "running"
            for outage_s in (10, 30):
                restartable_server.stop()
                down = await health()
                assert down.status_code == 503
                assert down.json()["status"] == "degraded"
                assert "database unreachable" in down.json()["reasons"]
                # The whole outage: 503 every time we look, never a 500 nor a 200.
                end = time.monotonic() + outage_s
                while time.monotonic() < end:
                    assert (await health()).status_code == 503
                    await asyncio.sleep(0.5)  # how often we look
                await asyncio.to_thread(restartable_server.start)
                back = datetime.now(UTC)
                await until(
                    lambda back=back: fetched_after(back),  # type: ignore[misc]
                    deadline_s=90,
                    what=f"a fetch after the {outage_s} s outage",
                )
                ok = await until(healthy, deadline_s=30, what="200 after the outage")
                assert ok.json()["status"] == "ok"
                assert ok.json()["scheduler"]["state"] == "running"

    asyncio.run(run())


def test_a_fetch_older_than_three_ticks_is_overdue() -> None:
    settings = Settings(_env_file=None, etrack_fetch_cron="*/2 * * * *")  # type: ignore[call-arg]
    last = datetime(2025, 1, 8, 15, 0, 5, tzinfo=UTC)  # the 15:00 run, done 5 s later
    assert fetch_overdue_since(settings, last) == last + timedelta(minutes=6)
    # A schedule that pauses at night is not overdue at night.
    night = Settings(
        _env_file=None, etrack_fetch_cron="*/10 8-18 * * *", etrac_timezone=ZoneInfo("UTC")
    )  # type: ignore[call-arg]
    evening = datetime(2025, 1, 8, 18, 50, 3, tzinfo=UTC)
    assert fetch_overdue_since(night, evening) == datetime(2025, 1, 9, 8, 20, 3, tzinfo=UTC)
