"""The real client against the real simulator over HTTP (no mocked transport).

Ground truth comes from the simulator's `fleet`; faults are switched on with
`set_faults` and counted on both sides (`simulator.stats()`, `client.stats`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import stamina

from etrack.errors import ApiUnavailable, AuthenticationError, UnknownPlate
from etrack.provider.client import EtracClient, History, split_window
from etrack.provider.ratelimit import PyrateLimiter, UnlimitedLimiter
from etrack.simulator.server import SimulatorHandle
from etrack.simulator.wire import parse_local

pytestmark = pytest.mark.anyio

TZ = ZoneInfo("America/Sao_Paulo")
DAY = date(2025, 1, 7)  # the simulator's now is 2025-01-08 12:00 local


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


def client_for(simulator: SimulatorHandle, **kwargs: Any) -> EtracClient:
    kwargs.setdefault("limiter", UnlimitedLimiter())
    kwargs.setdefault("timeouts", (2.0, 10.0))
    return EtracClient(simulator.base_url, simulator.user, simulator.key, tz=TZ, **kwargs)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)  # polling a condition, bounded by the deadline


# ------------------------------------------------------------------ endpoints
async def test_latest_positions_match_the_fleet(simulator: SimulatorHandle) -> None:
    async with client_for(simulator) as client:
        rows = await client.latest_positions()
    assert rows == simulator.fleet.latest_rows()
    assert len(rows) == 10


async def test_latest_position_of_each_plate(simulator: SimulatorHandle) -> None:
    async with client_for(simulator) as client:
        for plate in simulator.fleet.plates()[:3]:
            assert await client.latest_position(plate) == [simulator.fleet.latest_row(plate)]


async def test_history_of_a_plate_day_equals_the_fleet_exactly(
    simulator: SimulatorHandle,
) -> None:
    plate = simulator.fleet.plates()[0]
    async with client_for(simulator) as client:
        history = await client.history_day(plate, DAY)
    expected = simulator.fleet.history_rows(plate, DAY)
    assert expected  # a working or parked day always reports
    assert history.rows == expected
    assert history.terminal is not None
    assert history.terminal["descricao"] == simulator.fleet.vehicle(plate).descricao


async def test_history_window_splits_without_gap_or_overlap(simulator: SimulatorHandle) -> None:
    plate = simulator.fleet.plates()[1]
    start = datetime(2025, 1, 5, 6, 0, tzinfo=TZ)
    end = datetime(2025, 1, 8, 0, 0, tzinfo=TZ)  # 66 h: 3 calls
    async with client_for(simulator) as client:
        history = await client.history_window(plate, start, end)
        assert client.stats.calls["/ultimasposicoesterminal"] == 3
    expected = [
        row
        for day in (date(2025, 1, 5), date(2025, 1, 6), date(2025, 1, 7))
        for row in simulator.fleet.history_rows(plate, day)
        if parse_local(row["data_transmissao"], TZ) >= start
    ]
    assert history.rows == expected
    # The windows the simulator served are exactly what split_window planned.
    windows = split_window(start, end, TZ)
    served = [simulator.fleet.window_rows(plate, w.first, w.last) for w in windows]
    assert [row for part in served for row in part] == expected


async def test_trip_summaries_match_the_fleet(simulator: SimulatorHandle) -> None:
    async with client_for(simulator) as client:
        for plate in simulator.fleet.plates()[:3]:
            trips = await client.trip_summaries(plate, DAY)
            assert trips == simulator.fleet.trip_summaries(plate, DAY)


async def test_no_data_as_an_erro_is_an_empty_result(
    make_simulator: Callable[..., SimulatorHandle],
) -> None:
    simulator = make_simulator(no_data_error=True)
    plate = simulator.fleet.plates()[0]
    long_ago = date(2023, 6, 1)  # before any vehicle was installed
    async with client_for(simulator) as client:
        assert await client.history_day(plate, long_ago) == History(None, [])
        assert await client.trip_summaries(plate, long_ago) == []
        assert client.stats.failures == 0
    assert sum(simulator.stats().business_errors.values()) == 2


async def test_no_data_as_an_empty_list_is_an_empty_result(simulator: SimulatorHandle) -> None:
    plate = simulator.fleet.plates()[0]
    async with client_for(simulator) as client:
        history = await client.history_day(plate, date(2023, 6, 1))
    assert history.rows == []


# ---------------------------------------------------------------------- errors
async def test_wrong_key_fails_fast(simulator: SimulatorHandle) -> None:
    client = EtracClient(
        simulator.base_url, simulator.user, "not-the-key", limiter=UnlimitedLimiter()
    )
    async with client:
        with pytest.raises(AuthenticationError, match="check ETRAC_USER and ETRAC_KEY"):
            await client.latest_positions()
    assert simulator.stats().count("ultimas-posicoes", 401) == 1
    assert simulator.stats().total == 1


async def test_unknown_plate_is_a_business_error_not_retried(simulator: SimulatorHandle) -> None:
    async with client_for(simulator) as client:
        with pytest.raises(UnknownPlate) as info:
            await client.history_day("ZZZ9Z99", DAY)
    assert info.value.code_header == 404
    assert "ZZZ9Z99" in info.value.erro
    assert simulator.stats().total == 1


async def test_429_waits_for_retry_after(make_simulator: Callable[..., SimulatorHandle]) -> None:
    simulator = make_simulator(rate_limit_per_s=2.0, rate_limit_burst=1)
    limiter = PyrateLimiter(100)  # far above the provider's limit: 429s will happen
    plate = simulator.fleet.plates()[0]
    try:
        with stamina.set_testing(False):
            async with client_for(simulator, limiter=limiter) as client:
                started = time.monotonic()
                for _ in range(3):
                    assert await client.latest_position(plate) == [
                        simulator.fleet.latest_row(plate)
                    ]
                elapsed = time.monotonic() - started
                stats = client.stats
    finally:
        limiter.close()
    served_429 = simulator.stats().faults["rate_limited"]
    assert served_429 >= 1
    assert stats.rate_limited == served_429
    assert stats.failures == 0
    # Every 429 said Retry-After: 1 (whole seconds), and the client waited it.
    assert stats.retry_after_seconds == served_429
    assert elapsed >= served_429 * 1.0


async def test_client_pacing_avoids_429(make_simulator: Callable[..., SimulatorHandle]) -> None:
    # The provider counts arrivals and the limiter departures; in one process
    # the server thread shares the GIL with the client, so arrivals can bunch
    # up behind a pause. A burst of 15 against our 10 absorbs half a second of
    # that, while a client sending all 30 at once would collect 15 429s.
    simulator = make_simulator(rate_limit_per_s=10.0, rate_limit_burst=15)
    limiter = PyrateLimiter(10)
    plate = simulator.fleet.plates()[0]
    expected = [simulator.fleet.latest_row(plate)]  # builds the day plan before the clock starts
    try:
        async with client_for(simulator, limiter=limiter) as client:
            started = time.monotonic()
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(client.latest_position(plate)) for _ in range(30)]
            elapsed = time.monotonic() - started
    finally:
        limiter.close()
    assert all(task.result() == expected for task in tasks)
    assert simulator.stats().faults["rate_limited"] == 0
    assert simulator.stats().count("ultimaposicao", 200) == 30
    assert elapsed >= 1.9  # 30 at 10/s: two full windows after the first


async def test_5xx_is_retried(make_simulator: Callable[..., SimulatorHandle]) -> None:
    simulator = make_simulator(error_rate=0.5, fault_seed=7)
    plates = simulator.fleet.plates()
    async with client_for(simulator, max_attempts=10) as client:
        for plate in plates:
            assert await client.trip_summaries(plate, DAY) == simulator.fleet.trip_summaries(
                plate, DAY
            )
        stats = client.stats
    faults = simulator.stats().faults
    assert faults["error_500"] + faults["error_503"] >= 1
    assert stats.retries == faults["error_500"] + faults["error_503"]
    assert stats.failures == 0


async def test_truncated_json_is_retried(
    make_simulator: Callable[..., SimulatorHandle], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="etrack.etrac")
    simulator = make_simulator(truncate_rate=0.5, fault_seed=3)
    plate = simulator.fleet.plates()[2]
    async with client_for(simulator, max_attempts=10) as client:
        for day in (date(2025, 1, 6), DAY):
            history = await client.history_day(plate, day)
            assert history.rows == simulator.fleet.history_rows(plate, day)
        stats = client.stats
    truncated = simulator.stats().faults["truncated"]
    assert truncated >= 1
    assert stats.retries == truncated
    assert "malformed JSON" in caplog.text


async def test_a_hanging_request_times_out_and_retries_are_bounded(
    simulator: SimulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="etrack.etrac")
    simulator.set_faults(hang_rate=1.0, hang_seconds=60)
    started = time.monotonic()
    async with client_for(simulator, timeouts=(2.0, 0.3), max_attempts=3) as client:
        with pytest.raises(ApiUnavailable) as info:
            await client.latest_positions()
    assert time.monotonic() - started < 5.0
    assert info.value.attempts == 3
    assert info.value.cause.startswith("ReadTimeout")
    assert caplog.text.count("after ReadTimeout") == 2
    # The simulator saw three requests, each abandoned by the client.
    wait_until(lambda: simulator.stats().count("ultimas-posicoes") == 3)
    assert simulator.stats().faults["hang"] == 3


async def test_persistent_5xx_ends_in_api_unavailable(simulator: SimulatorHandle) -> None:
    simulator.set_faults(error_rate=1.0)
    async with client_for(simulator, max_attempts=4) as client:
        with pytest.raises(ApiUnavailable, match=r"after 4 attempts; last cause: HTTP 50[03]"):
            await client.latest_position(simulator.fleet.plates()[0])
        assert (client.stats.requests, client.stats.retries, client.stats.failures) == (4, 3, 1)
    assert simulator.stats().total == 4


async def test_the_key_stays_out_of_logs_and_errors(
    simulator: SimulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    simulator.set_faults(error_rate=0.5, truncate_rate=0.5)
    texts: list[str] = []
    async with client_for(simulator, max_attempts=2) as client:
        texts.append(repr(client))
        for plate in simulator.fleet.plates()[:4]:
            try:
                await client.history_day(plate, DAY)
            except ApiUnavailable as error:
                texts += [str(error), repr(error)]
    assert client.stats.retries >= 1
    texts.append(caplog.text)
    assert all(simulator.key not in text for text in texts)
