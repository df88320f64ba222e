"""A host name that does not exist fails at once, naming ETRAC_API_BASE; a
resolver that is down for a moment is still retried."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from etrack.errors import ApiHostUnknown, ApiUnavailable, exit_code_for
from etrack.provider.client import EtracClient
from etrack.provider.ratelimit import UnlimitedLimiter


def failing_transport(errno: int, message: str, calls: list[int]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        cause = socket.gaierror(errno, message)
        raise httpx.ConnectError(f"[Errno {errno}] {message}", request=request) from cause

    return httpx.MockTransport(handler)


def client(transport: httpx.MockTransport) -> EtracClient:
    return EtracClient(
        "https://api.etrac.example/monitoramento?token=s3cr3t",
        "fleet@example.com",
        "k3y",
        limiter=UnlimitedLimiter(),
        wait_initial=0.0,
        wait_max=0.0,
        wait_jitter=0.0,
        max_attempts=4,
        transport=transport,
    )


def test_a_name_that_does_not_exist_fails_at_once_naming_the_setting() -> None:
    calls: list[int] = []

    async def go() -> None:
        async with client(
            failing_transport(socket.EAI_NONAME, "Name or service not known", calls)
        ) as c:
            await c.latest_positions()

    with pytest.raises(ApiHostUnknown) as caught:
        asyncio.run(go())
    assert calls == [1]  # not retried
    message = str(caught.value)
    assert "ETRAC_API_BASE" in message
    assert "api.etrac.example" in message
    assert "\n" not in message
    assert "k3y" not in message
    assert "s3cr3t" not in message  # a token in the base's query string stays out
    assert exit_code_for(caught.value) == 3


def test_a_resolver_down_for_now_is_retried() -> None:
    calls: list[int] = []

    async def go() -> None:
        async with client(
            failing_transport(socket.EAI_AGAIN, "Temporary failure in name resolution", calls)
        ) as c:
            await c.latest_positions()

    with pytest.raises(ApiUnavailable):
        asyncio.run(go())
    assert len(calls) == 4
