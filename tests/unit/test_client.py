"""Narrow tests of the eTrac HTTP client over httpx.MockTransport.

The provider's behaviour is scripted per test; the simulator-backed tests in
tests/integration cover the same client against real HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import gzip
import itertools
import json
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import stamina
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from etrack.config import Settings
from etrack.errors import (
    AnswerTooLarge,
    ApiUnavailable,
    AuthenticationError,
    BusinessError,
    InvalidDate,
    MissingCredentials,
    ProviderError,
    UnexpectedResponse,
    UnknownPlate,
    WindowTooLarge,
)
from etrack.model import OutOfRangeNumber, Reject
from etrack.provider.client import (
    CHUNK_BYTES,
    MAX_WINDOW,
    TOO_DEEP,
    EtracClient,
    History,
    _suspect_number,
    split_window,
)
from etrack.provider.ratelimit import PyrateLimiter, UnlimitedLimiter, rate_for
from etrack.simulator.wire import gzip_bomb

pytestmark = pytest.mark.anyio

BASE = "https://api.test/monitoramento"
USER = "frota@example.com"
KEY = "k3y-SUPER-secret-0042"
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
NEW_YORK = ZoneInfo("America/New_York")

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    # Backoffs off, but the client's own max_attempts still decides.
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


class RecordingLimiter:
    def __init__(self) -> None:
        self.acquired = 0
        self.penalties: list[float] = []
        self.recorded: list[tuple[bool, float | None]] = []

    async def acquire(self) -> None:
        self.acquired += 1

    def penalize(self, seconds: float) -> None:
        self.penalties.append(seconds)

    async def record(
        self, latency_s: float, *, throttled: bool, retry_after_s: float | None = None
    ) -> None:
        self.recorded.append((throttled, retry_after_s))
        assert latency_s >= 0


def make_client(handler: Handler, **kwargs: Any) -> EtracClient:
    kwargs.setdefault("limiter", RecordingLimiter())
    kwargs.setdefault("max_attempts", 4)
    return EtracClient(BASE, USER, KEY, transport=httpx.MockTransport(handler), **kwargs)


def ok(payload: object, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=payload, headers=headers)


def scripted(*answers: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving *answers* in order (the last one forever) and its request log."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


VEHICLE = {
    "placa": "ABC-1234",
    "descricao": "Caminhão 1",
    "frota": "Norte",
    "data_transmissao": "08/01/2025 11:59:00",
    "latitude": "-23.550520",
    "longitude": "-46.633308",
    "velocidade": "54 km/h",
    "ignicao": "1",
}
TERMINAL = {"placa": "ABC-1234", "descricao": "Caminhão 1", "frota": "Norte"}


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content) if request.content else None


# ------------------------------------------------------------------ envelopes
async def test_latest_positions_posts_no_body_with_basic_auth() -> None:
    handler, seen = scripted(ok({"code_header": 200, "retorno": [VEHICLE, VEHICLE]}))
    async with make_client(handler) as client:
        rows = await client.latest_positions()
    assert rows == [VEHICLE, VEHICLE]
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/monitoramento/ultimas-posicoes"
    assert request.content == b""
    expected = base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


async def test_latest_position_sends_the_plate() -> None:
    handler, seen = scripted(ok({"code_header": 200, "retorno": [VEHICLE]}))
    async with make_client(handler) as client:
        rows = await client.latest_position("ABC-1234")
    assert rows == [VEHICLE]
    assert seen[0].url.path == "/monitoramento/ultimaposicao"
    assert body_of(seen[0]) == {"placa": "ABC-1234"}


async def test_history_day_returns_terminal_and_rows() -> None:
    positions = [VEHICLE, {**VEHICLE, "data_transmissao": "08/01/2025 11:58:00"}]
    handler, seen = scripted(ok({"code_header": 200, "terminal": TERMINAL, "posicoes": positions}))
    async with make_client(handler) as client:
        history = await client.history_day("ABC1234", date(2025, 1, 8))
    assert history == History(TERMINAL, positions)
    assert seen[0].url.path == "/monitoramento/ultimasposicoesterminal"
    assert body_of(seen[0]) == {"placa": "ABC1234", "data": "08/01/2025"}


async def test_trip_summaries_use_dashes_in_the_date() -> None:
    trip = {"placa": "ABC1234", "distancia_conducao": "12,5", "duracao_conducao": "00:31:00"}
    handler, seen = scripted(ok({"code_header": 200, "retorno": [trip]}))
    async with make_client(handler) as client:
        assert await client.trip_summaries("ABC1234", date(2025, 1, 7)) == [trip]
    assert seen[0].url.path == "/monitoramento/resumoviagens"
    assert body_of(seen[0]) == {"placa": "ABC1234", "data": "07-01-2025"}


async def test_code_header_as_string_and_single_object_retorno_are_accepted() -> None:
    handler, _ = scripted(ok({"code_header": "200", "retorno": VEHICLE}))
    async with make_client(handler) as client:
        assert await client.latest_position("ABC1234") == [VEHICLE]


async def test_undeclared_cp1252_body_is_decoded_not_dropped() -> None:
    raw = (
        '{"code_header": 200, "retorno": [{"placa": "ABC1234", "logradouro": "Avenida São João"}]}'
    )
    handler, _ = scripted(
        httpx.Response(
            200, content=raw.encode("cp1252"), headers={"Content-Type": "application/json"}
        )
    )
    async with make_client(handler) as client:
        rows = await client.latest_positions()
    assert rows[0]["logradouro"] == "Avenida São João"


# ----------------------------------------------------------------- no retries
async def test_401_fails_fast_naming_the_variables() -> None:
    handler, seen = scripted(httpx.Response(401, text="Unauthorized"))
    async with make_client(handler) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.latest_positions()
        assert client.stats.failures == 1
        assert client.stats.retries == 0
    assert len(seen) == 1
    assert str(info.value) == (
        "eTrac rejected the credentials (HTTP 401): check ETRAC_USER and ETRAC_KEY"
    )


async def test_code_header_401_inside_http_200_is_an_authentication_error() -> None:
    handler, seen = scripted(ok({"code_header": 401, "erro": "Usuário ou chave inválidos"}))
    async with make_client(handler) as client:
        with pytest.raises(AuthenticationError):
            await client.latest_positions()
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("erro", "kind"),
    [
        ("Placa não encontrada", UnknownPlate),
        ("Veículo inexistente ou não pertence ao cliente", UnknownPlate),
        ("PLACA INVALIDA", UnknownPlate),
        ("Data inválida", InvalidDate),
        ("Formato de data incorreto, use DD/MM/YYYY", InvalidDate),
        ("O período não pode ser maior que 24 horas", WindowTooLarge),
        ("Intervalo excede o máximo de 24h", WindowTooLarge),
        ("Erro interno de validação", BusinessError),
    ],
)
async def test_business_error_in_http_200_is_typed_and_not_retried(
    erro: str, kind: type[BusinessError]
) -> None:
    handler, seen = scripted(ok({"erro": erro, "code_header": 400}))
    async with make_client(handler) as client:
        with pytest.raises(BusinessError) as info:
            await client.history_day("ABC1234", date(2025, 1, 8))
        assert client.stats.failures == 1
    assert type(info.value) is kind
    assert info.value.erro == erro
    assert info.value.code_header == 400
    assert info.value.path == "/monitoramento/ultimasposicoesterminal"
    assert len(seen) == 1


@pytest.mark.parametrize(
    "erro",
    [
        "Nenhum registro encontrado",
        "Sem dados",
        "nenhuma posição",
        "Nenhuma posição encontrada para o veículo ABC1234 na data 08/01/2025",
        "Não há dados para o período informado",
        "Sem registros para a placa ABC1234",
        "Veículo não possui posições na data",
        "Nenhuma viagem encontrada",
    ],
)
async def test_no_data_is_an_empty_result(erro: str) -> None:
    handler, seen = scripted(ok({"erro": erro, "code_header": 200}))
    async with make_client(handler) as client:
        assert await client.history_day("ABC1234", date(2025, 1, 8)) == History(None, [])
        assert await client.trip_summaries("ABC1234", date(2025, 1, 8)) == []
        assert await client.latest_position("ABC1234") == []
        assert client.stats.failures == 0
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("erro", "kind"),
    [
        ("Sem acesso aos dados deste veículo", BusinessError),
        ("Usuário sem permissão para consultar posições", BusinessError),
        ("Nenhuma data informada", InvalidDate),
    ],
)
async def test_refusals_are_not_mistaken_for_no_data(erro: str, kind: type[BusinessError]) -> None:
    handler, _ = scripted(ok({"erro": erro, "code_header": 200}))
    async with make_client(handler) as client:
        with pytest.raises(BusinessError) as info:
            await client.history_day("ABC1234", date(2025, 1, 8))
    assert type(info.value) is kind


async def test_no_data_with_http_404_is_also_empty() -> None:
    handler, _ = scripted(ok({"erro": "Nenhum registro encontrado", "code_header": 404}, 404))
    async with make_client(handler) as client:
        assert await client.trip_summaries("ABC1234", date(2025, 1, 8)) == []


async def test_empty_retorno_is_an_empty_list() -> None:
    handler, _ = scripted(ok({"code_header": 200, "retorno": []}))
    async with make_client(handler) as client:
        assert await client.latest_positions() == []


async def test_other_4xx_without_json_is_unexpected_and_not_retried() -> None:
    handler, seen = scripted(httpx.Response(404, text="<html>Not Found</html>"))
    async with make_client(handler) as client:
        with pytest.raises(UnexpectedResponse, match="HTTP 404"):
            await client.latest_positions()
    assert len(seen) == 1


# -------------------------------------------------------------------- retries
async def test_5xx_then_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="etrack.etrac")
    handler, seen = scripted(
        httpx.Response(503, text="busy"),
        httpx.Response(502, text="bad gateway"),
        ok({"code_header": 200, "retorno": [VEHICLE]}),
    )
    async with make_client(handler) as client:
        assert await client.latest_position("ABC1234") == [VEHICLE]
        assert (client.stats.requests, client.stats.retries, client.stats.failures) == (3, 2, 0)
    assert len(seen) == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "etrack.etrac"]
    assert messages[0].startswith("eTrac POST /monitoramento/ultimaposicao: attempt 2 of 4")
    assert "HTTP 503" in messages[0]
    assert "attempt 3 of 4" in messages[1]
    assert "HTTP 502" in messages[1]


async def test_code_header_5xx_inside_http_200_is_retried() -> None:
    handler, seen = scripted(
        ok({"code_header": 500, "erro": "Erro interno"}), ok({"code_header": 200, "retorno": []})
    )
    async with make_client(handler) as client:
        assert await client.latest_positions() == []
    assert len(seen) == 2


async def test_retry_after_seconds_is_requested_and_penalizes_the_limiter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="etrack.etrac")
    limiter = RecordingLimiter()
    handler, seen = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}, text="slow down"),
        ok({"code_header": 200, "retorno": [VEHICLE]}),
    )
    async with make_client(handler, limiter=limiter) as client:
        assert await client.latest_positions() == [VEHICLE]
        assert client.stats.rate_limited == 1
        assert client.stats.retry_after_seconds == 7.0
    assert len(seen) == 2
    assert limiter.penalties == [7.0]
    assert limiter.acquired == 2
    assert "HTTP 429 (Retry-After 7 s)" in caplog.text
    # Expected while the pace learns: logged, but not as a warning.
    assert [r.levelno for r in caplog.records if "429" in r.getMessage()] == [logging.INFO]
    # The pace learns from both answers: one 429 (with its Retry-After), one success.
    assert limiter.recorded == [(True, 7.0), (False, None)]


async def test_the_pace_learns_from_code_header_429_but_not_from_5xx() -> None:
    limiter = RecordingLimiter()
    handler, _ = scripted(
        httpx.Response(503),
        ok({"code_header": 429, "erro": "Limite"}, **{"Retry-After": "2"}),
        ok({"code_header": 200, "retorno": []}),
    )
    async with make_client(handler, limiter=limiter, wait_initial=0.0, wait_jitter=0.0) as client:
        assert await client.latest_positions() == []
    assert limiter.recorded == [(True, 2.0), (False, None)]


async def test_retry_after_is_the_wait_stamina_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    # Backoff on for real, but asyncio.sleep only records what it was asked.
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, *args: Any) -> Any:
        slept.append(delay)
        return await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    handler, _ = scripted(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503),
        httpx.Response(503),
        ok({"code_header": 200, "retorno": []}),
    )
    with stamina.set_testing(False):
        async with make_client(handler, wait_initial=0.5, wait_jitter=0.0) as client:
            started = time.monotonic()
            await client.latest_positions()
            elapsed = time.monotonic() - started
    # 7 s from Retry-After, then stamina's own exponential backoff for the 503s.
    assert [d for d in slept if d > 0] == [7.0, 1.0, 2.0]
    assert elapsed < 2.0


async def test_retry_after_as_http_date() -> None:
    limiter = RecordingLimiter()
    when = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    handler, _ = scripted(
        httpx.Response(429, headers={"Retry-After": when}), ok({"code_header": 200, "retorno": []})
    )
    async with make_client(handler, limiter=limiter) as client:
        await client.latest_positions()
    (penalty,) = limiter.penalties
    assert 27.0 <= penalty <= 30.0


async def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    limiter = RecordingLimiter()
    handler, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))
    async with make_client(handler, limiter=limiter, total_timeout=60) as client:
        with pytest.raises(ApiUnavailable) as info:
            await client.latest_positions()
    assert len(seen) == 1
    assert info.value.attempts == 1
    assert "Retry-After 3600 s" in str(info.value)
    assert "60 s budget" in str(info.value)
    assert limiter.penalties == []


async def test_429_without_retry_after_uses_backoff() -> None:
    limiter = RecordingLimiter()
    handler, seen = scripted(httpx.Response(429), ok({"code_header": 200, "retorno": []}))
    async with make_client(handler, limiter=limiter) as client:
        assert await client.latest_positions() == []
        assert client.stats.rate_limited == 1
    assert len(seen) == 2
    assert limiter.penalties == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"code_header": 200, "retorno": [{"placa": "ABC-12',
        b"",
        b"<html><body>502 Bad Gateway</body></html>",
        b'{"code_header": 200}',
        b'[{"placa": "ABC1234"}]',
        b'{"code_header": 200, "retorno": "ABC1234"}',
    ],
)
async def test_malformed_json_is_retried_then_bounded(body: bytes) -> None:
    handler, seen = scripted(httpx.Response(200, content=body))
    async with make_client(handler, max_attempts=3) as client:
        with pytest.raises(ApiUnavailable) as info:
            await client.latest_positions()
        assert (client.stats.requests, client.stats.retries, client.stats.failures) == (3, 2, 1)
    assert len(seen) == 3
    assert info.value.attempts == 3
    assert "after 3 attempts" in str(info.value)
    assert "malformed" in info.value.cause


async def test_truncated_json_once_then_success() -> None:
    handler, seen = scripted(
        httpx.Response(200, content=b'{"code_header": 200, "posicoes": [{"pla'),
        ok({"code_header": 200, "terminal": TERMINAL, "posicoes": [VEHICLE]}),
    )
    async with make_client(handler) as client:
        history = await client.history_day("ABC1234", date(2025, 1, 8))
    assert history.rows == [VEHICLE]
    assert len(seen) == 2


async def test_timeout_classes_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="etrack.etrac")

    def handler(request: httpx.Request) -> httpx.Response:
        attempt = len(calls) + 1
        calls.append(request)
        if attempt == 1:
            raise httpx.ConnectTimeout("", request=request)
        if attempt == 2:
            raise httpx.ReadTimeout("timed out", request=request)
        if attempt == 3:
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return ok({"code_header": 200, "retorno": []})

    calls: list[httpx.Request] = []
    async with make_client(handler, max_attempts=5) as client:
        assert await client.latest_position("ABC1234") == []
    messages = [r.getMessage() for r in caplog.records if r.name == "etrack.etrac"]
    assert len(messages) == 3
    assert all("/monitoramento/ultimaposicao" in m for m in messages)
    assert "attempt 2 of 5 after ConnectTimeout" in messages[0]
    assert "attempt 3 of 5 after ReadTimeout: timed out" in messages[1]
    assert "attempt 4 of 5 after RemoteProtocolError" in messages[2]


async def test_exhausted_retries_name_attempts_and_last_cause() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with make_client(handler, max_attempts=3) as client:
        with pytest.raises(ApiUnavailable) as info:
            await client.latest_positions()
    assert str(info.value) == (
        "eTrac API unavailable: POST /monitoramento/ultimas-posicoes failed after 3 attempts; "
        "last cause: ConnectError: [Errno 111] Connection refused"
    )
    assert isinstance(info.value.__cause__.__cause__, httpx.ConnectError)  # type: ignore[union-attr]


async def test_a_hanging_answer_is_cut_by_the_call_budget() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return ok({"code_header": 200, "retorno": []})

    async with make_client(handler, total_timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(ApiUnavailable, match=r"0\.3 s budget"):
            await client.latest_positions()
        assert time.monotonic() - started < 2.0


async def test_cancellation_passes_through_untouched() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return ok({"code_header": 200, "retorno": []})

    async with make_client(handler) as client:
        task = asyncio.create_task(client.latest_positions())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (client.stats.requests, client.stats.retries) == (1, 0)


async def test_no_httpx_error_leaves_the_client() -> None:
    # A deployment mistake is a ProviderError at once; the rest of httpx's
    # errors (an undecodable body, say) are an UnexpectedResponse.
    mistake, _ = scripted(httpx.UnsupportedProtocol("no such scheme"))
    async with make_client(mistake) as client:
        with pytest.raises(ProviderError, match="cannot send POST"):
            await client.latest_positions()
    undecodable, seen = scripted(httpx.DecodingError("bad gzip"))
    async with make_client(undecodable) as client:
        with pytest.raises(UnexpectedResponse, match="DecodingError: bad gzip"):
            await client.latest_positions()
    assert len(seen) == 1


def test_unsupported_scheme_and_credentials_in_url_are_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        EtracClient("ftp://api.test/x", USER, KEY)
    with pytest.raises(ValueError, match="not in base_url") as info:
        EtracClient(f"https://{USER}:{KEY}@api.test/x", USER, KEY)
    assert KEY not in str(info.value)
    with pytest.raises(MissingCredentials):
        EtracClient(BASE, USER, "", limiter=UnlimitedLimiter())


# -------------------------------------------------------------------- windows
def bodies(windows: list[Any]) -> list[tuple[str, str]]:
    return [(w.as_body()["data_inicio"], w.as_body()["data_fim"]) for w in windows]


def test_split_60_hours_in_sao_paulo() -> None:
    start = datetime(2025, 1, 6, 8, 30, 15, tzinfo=SAO_PAULO)
    assert bodies(split_window(start, start + timedelta(hours=60), SAO_PAULO)) == [
        ("06/01/2025 08:30:15", "07/01/2025 08:30:14"),
        ("07/01/2025 08:30:15", "08/01/2025 08:30:14"),
        ("08/01/2025 08:30:15", "08/01/2025 20:30:14"),
    ]


def test_split_converts_aware_bounds_and_reads_naive_ones_as_local() -> None:
    utc_start = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)  # 00:00 in Sao Paulo
    naive_end = datetime(2025, 1, 6, 12, 0)
    assert bodies(split_window(utc_start, naive_end, SAO_PAULO)) == [
        ("06/01/2025 00:00:00", "06/01/2025 11:59:59")
    ]
    assert split_window(naive_end, naive_end, SAO_PAULO) == []
    with pytest.raises(ValueError, match="before its start"):
        split_window(naive_end, naive_end - timedelta(seconds=1), SAO_PAULO)


def test_split_rounds_sub_second_bounds_to_whole_seconds() -> None:
    start = datetime(2025, 1, 6, 0, 0, 0, 500_000)
    end = datetime(2025, 1, 6, 0, 0, 10, 1)
    # Rows are stamped to the second: 00:00:00 is before start, 00:00:10 is before end.
    assert bodies(split_window(start, end, SAO_PAULO)) == [
        ("06/01/2025 00:00:01", "06/01/2025 00:00:10")
    ]


def test_split_across_spring_forward_keeps_wall_clock_within_24h() -> None:
    windows = split_window(datetime(2025, 3, 8), datetime(2025, 3, 11), NEW_YORK)
    assert bodies(windows) == [
        ("08/03/2025 00:00:00", "08/03/2025 23:59:59"),
        ("09/03/2025 00:00:00", "09/03/2025 23:59:59"),  # a 23 h day
        ("10/03/2025 00:00:00", "10/03/2025 23:59:59"),
    ]


def test_split_across_fall_back_keeps_elapsed_time_within_24h() -> None:
    windows = split_window(datetime(2025, 11, 1), datetime(2025, 11, 4), NEW_YORK)
    assert bodies(windows) == [
        ("01/11/2025 00:00:00", "01/11/2025 23:59:59"),
        ("02/11/2025 00:00:00", "02/11/2025 22:59:59"),  # 24 h elapsed on a 25 h day
        ("02/11/2025 23:00:00", "03/11/2025 22:59:59"),
        ("03/11/2025 23:00:00", "03/11/2025 23:59:59"),
    ]


def test_split_when_midnight_does_not_exist() -> None:
    # Brazil's 2018 DST began at midnight: 04/11/2018 00:00 never happened.
    windows = split_window(datetime(2018, 11, 3), datetime(2018, 11, 5), SAO_PAULO)
    assert bodies(windows) == [
        ("03/11/2018 00:00:00", "03/11/2018 23:59:59"),
        ("04/11/2018 01:00:00", "04/11/2018 23:59:59"),
    ]


def check_windows(start: datetime, end: datetime, tz: ZoneInfo) -> None:
    # Aware datetimes sharing a tzinfo subtract as wall clocks: compare in UTC.
    windows = [
        (w.first.astimezone(UTC), w.last.astimezone(UTC), w) for w in split_window(start, end, tz)
    ]
    lo, hi = start.astimezone(UTC), end.astimezone(UTC)
    if lo >= hi:
        assert windows == []
        return
    assert windows[0][0] == lo
    assert windows[-1][1] + timedelta(seconds=1) == hi
    for first, last, window in windows:
        assert first <= last
        assert last - first < MAX_WINDOW  # elapsed
        naive = window.last.replace(tzinfo=None) - window.first.replace(tzinfo=None)
        assert naive < MAX_WINDOW  # what the provider sees
    for (_, before, _), (after, _, _) in itertools.pairwise(windows):
        assert after - before == timedelta(seconds=1)  # no gap, no overlap


@given(
    start=st.datetimes(min_value=datetime(2017, 1, 1), max_value=datetime(2026, 12, 31)),
    hours=st.integers(min_value=0, max_value=24 * 9),
    seconds=st.integers(min_value=0, max_value=3599),
    zone=st.sampled_from(["America/Sao_Paulo", "America/New_York", "Europe/Berlin", "UTC"]),
)
def test_split_never_gaps_overlaps_or_exceeds_24h(
    start: datetime, hours: int, seconds: int, zone: str
) -> None:
    tz = ZoneInfo(zone)
    start = start.replace(microsecond=0)
    end = (start.replace(tzinfo=tz) + timedelta(hours=hours, seconds=seconds)).astimezone(tz)
    check_windows(start.replace(tzinfo=tz), end, tz)


async def test_history_window_of_60_hours_makes_3_calls_with_exact_bounds() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(body_of(request))
        stamp = body_of(request)["data_inicio"]
        return ok({"code_header": 200, "terminal": TERMINAL, "posicoes": [{"t": stamp}]})

    seen: list[dict[str, str]] = []
    async with make_client(handler) as client:
        history = await client.history_window(
            "ABC1234", datetime(2025, 1, 6, tzinfo=SAO_PAULO), datetime(2025, 1, 8, 12)
        )
        assert client.stats.calls["/ultimasposicoesterminal"] == 3
    assert seen == [
        {
            "placa": "ABC1234",
            "data_inicio": "06/01/2025 00:00:00",
            "data_fim": "06/01/2025 23:59:59",
        },
        {
            "placa": "ABC1234",
            "data_inicio": "07/01/2025 00:00:00",
            "data_fim": "07/01/2025 23:59:59",
        },
        {
            "placa": "ABC1234",
            "data_inicio": "08/01/2025 00:00:00",
            "data_fim": "08/01/2025 11:59:59",
        },
    ]
    assert history.terminal == TERMINAL
    assert [row["t"] for row in history.rows] == [s["data_inicio"] for s in seen]


async def test_empty_history_window_makes_no_call() -> None:
    handler, seen = scripted(ok({"code_header": 200, "terminal": None, "posicoes": []}))
    async with make_client(handler) as client:
        moment = datetime(2025, 1, 6, 8, 0)
        assert await client.history_window("ABC1234", moment, moment) == History(None, [])
    assert seen == []


async def test_history_window_skips_empty_parts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if body_of(request)["data_inicio"].startswith("06/01"):
            return ok({"code_header": 200, "erro": "Nenhum registro encontrado"})
        return ok({"code_header": 200, "terminal": TERMINAL, "posicoes": [VEHICLE]})

    async with make_client(handler, tz=SAO_PAULO) as client:
        history = await client.history_window("ABC1234", datetime(2025, 1, 6), datetime(2025, 1, 8))
    assert history == History(TERMINAL, [VEHICLE])


async def test_history_window_uses_the_client_zone() -> None:
    handler, seen = scripted(ok({"code_header": 200, "terminal": None, "posicoes": []}))
    async with make_client(handler, tz="America/Manaus") as client:
        await client.history_window(
            "ABC1234",
            datetime(2025, 1, 6, 4, 0, tzinfo=UTC),
            datetime(2025, 1, 6, 5, 0, tzinfo=UTC),
        )
    assert body_of(seen[0])["data_inicio"] == "06/01/2025 00:00:00"
    assert body_of(seen[0])["data_fim"] == "06/01/2025 00:59:59"


# --------------------------------------------------------------- rate limiter
def test_rate_for_fractional_rates() -> None:
    assert (rate_for(5).limit, rate_for(5).interval) == (5, 1000)
    assert (rate_for(2.5).limit, rate_for(2.5).interval) == (2, 800)
    assert (rate_for(0.5).limit, rate_for(0.5).interval) == (1, 2000)
    with pytest.raises(ValueError, match="positive"):
        rate_for(0)


async def test_limiter_holds_n_per_second_across_concurrent_tasks() -> None:
    per_second, total = 10, 25
    stamps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        return ok({"code_header": 200, "retorno": []})

    limiter = PyrateLimiter(per_second)
    try:
        async with make_client(handler, limiter=limiter) as client:
            started = time.monotonic()
            async with asyncio.TaskGroup() as group:
                for _ in range(total):
                    group.create_task(client.latest_position("ABC1234"))
            elapsed = time.monotonic() - started
    finally:
        limiter.close()
    stamps.sort()
    assert len(stamps) == total
    # No 1 s window ever holds more than `per_second` requests (the slack is
    # for scheduling between the limiter and the transport; a broken limiter
    # would show gaps near 0)...
    for i in range(total - per_second):
        assert stamps[i + per_second] - stamps[i] >= 0.9
    # ...and the limiter does not crawl either: 25 at 10/s is about 2 s.
    assert 1.95 <= elapsed < 6.0


async def test_limiter_min_interval_spaces_one_workers_requests() -> None:
    limiter = PyrateLimiter(1000, min_interval=0.1)
    stamps: list[float] = []
    try:

        async def one() -> None:
            await limiter.acquire()
            stamps.append(time.monotonic())

        async with asyncio.TaskGroup() as group:
            for _ in range(4):
                group.create_task(one())
    finally:
        limiter.close()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.098 for gap in gaps), gaps


async def test_limiter_penalty_holds_everyone_back() -> None:
    limiter = PyrateLimiter(1000)
    try:
        await limiter.acquire()
        limiter.penalize(0.3)
        started = time.monotonic()
        await asyncio.gather(limiter.acquire(), limiter.acquire())
        assert time.monotonic() - started >= 0.29
    finally:
        limiter.close()


async def test_limiter_queueing_does_not_eat_the_call_budget() -> None:
    class SlowLimiter(RecordingLimiter):
        async def acquire(self) -> None:
            await asyncio.sleep(0.3)

    handler, _ = scripted(ok({"code_header": 200, "retorno": []}))
    async with make_client(handler, limiter=SlowLimiter(), total_timeout=0.2) as client:
        assert await client.latest_positions() == []


# ----------------------------------------------------- construction and stats
def test_timeouts_single_number_and_pair() -> None:
    assert make_client(scripted()[0], timeouts=30).timeouts == (10.0, 30.0)
    assert make_client(scripted()[0], timeouts=4).timeouts == (4.0, 4.0)
    assert make_client(scripted()[0], timeouts=(3, 60)).timeouts == (3.0, 60.0)


async def test_from_settings() -> None:
    settings_ = Settings(
        _env_file=None,  # type: ignore[call-arg]
        etrac_user=USER,
        etrac_key=SecretStr(KEY),
        etrac_api_base=BASE + "/",
        etrac_timezone="America/Manaus",
        etrac_timeout="5,20",
        etrac_max_attempts=2,
        etrac_rate_limit=50,
    )
    handler, seen = scripted(httpx.Response(503))
    async with EtracClient.from_settings(
        settings_, transport=httpx.MockTransport(handler)
    ) as client:
        assert client.tz == ZoneInfo("America/Manaus")
        assert client.timeouts == (5.0, 20.0)
        assert client.max_attempts == 2
        assert repr(client) == f"EtracClient(base_url={BASE!r}, user={USER!r})"
        with pytest.raises(ApiUnavailable):
            await client.latest_positions()
    assert len(seen) == 2
    with pytest.raises(MissingCredentials):
        EtracClient.from_settings(Settings(_env_file=None, etrac_user=None))  # type: ignore[call-arg]


async def test_stats_count_calls_per_endpoint_and_bytes() -> None:
    handler, _ = scripted(httpx.Response(500), ok({"code_header": 200, "retorno": [VEHICLE]}))
    async with make_client(handler) as client:
        await client.latest_positions()
        await client.latest_position("ABC1234")
        await client.latest_position("XYZ9876")
        stats = client.stats
    assert stats.calls == {"/ultimas-posicoes": 1, "/ultimaposicao": 2}
    assert (stats.total_calls, stats.requests, stats.retries) == (3, 4, 1)
    assert stats.bytes_received > 3 * len(json.dumps(VEHICLE))
    assert stats.summary() == "API calls 3, retries 1"


# -------------------------------------------------------------------- secrets
async def test_the_key_never_shows_in_logs_errors_or_reprs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"{USER}:{KEY}".encode()).decode()
    texts: list[str] = []
    answers: list[httpx.Response | Exception] = [
        httpx.Response(503),
        httpx.Response(429, headers={"Retry-After": "1"}),
        httpx.Response(200, content=b"{truncated"),
        httpx.Response(401),
    ]
    handler, _ = scripted(*answers)
    client = make_client(handler, max_attempts=5)
    async with client:
        with pytest.raises(AuthenticationError) as auth:
            await client.latest_positions()
        texts += [str(auth.value), repr(auth.value)]
    handler, _ = scripted(ok({"erro": "Placa não encontrada", "code_header": 404}))
    async with make_client(handler) as other:
        with pytest.raises(UnknownPlate) as business:
            await other.latest_position("ABC1234")
        texts += [str(business.value), repr(business.value)]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with make_client(refuse, max_attempts=2) as third:
        with pytest.raises(ApiUnavailable) as unavailable:
            await third.latest_positions()
        texts += [
            str(unavailable.value),
            repr(unavailable.value),
            repr(unavailable.value.__cause__),
        ]
    texts += [repr(client), str(client), repr(client.stats)]
    texts += [caplog.text, *(repr(r.__dict__) for r in caplog.records)]
    assert caplog.records  # the retries above did log
    for text in texts:
        assert KEY not in text
        assert basic not in text


# ------------------------------------------------------------ poisoned answers
async def test_elements_that_are_not_objects_are_handed_on_not_retried() -> None:
    handler, seen = scripted(ok({"code_header": 200, "retorno": [VEHICLE, 42, "x", None, VEHICLE]}))
    async with make_client(handler) as client:
        rows = await client.latest_positions()
    assert len(seen) == 1
    assert rows == [VEHICLE, 42, "x", None, VEHICLE]


async def test_numbers_no_float_holds_and_deep_rows_are_per_row_not_per_answer() -> None:
    deep = '{"placa":"ABC-1235","x":' + "[" * 3000 + "]" * 3000 + "}"
    body = (
        '{"code_header":200,"retorno":[{"placa":"ABC1234","velocidade":' + "9" * 5000 + "},"
        '{"placa":"ABC1236","odometro":1e400,"latitude":-23.5},' + deep + "]}"
    )
    handler, seen = scripted(httpx.Response(200, content=body.encode()))
    async with make_client(handler) as client:
        rows = await client.latest_positions()
    assert len(seen) == 1
    big, inf, too_deep = rows
    assert isinstance(big["velocidade"], OutOfRangeNumber)
    assert big["velocidade"] == "9" * 5000
    assert inf == {"placa": "ABC1236", "odometro": OutOfRangeNumber("1e400"), "latitude": -23.5}
    assert isinstance(too_deep, Reject)
    assert (too_deep.reason, too_deep.placa, too_deep.raw) == (TOO_DEEP, "ABC1235", deep)
    assert "retorno[2]" in too_deep.message


async def test_an_answer_too_deep_outside_its_rows_is_one_typed_error() -> None:
    handler, _ = scripted(httpx.Response(200, content=b"[" * 5000 + b"]" * 5000))
    async with make_client(handler, max_attempts=1) as client:
        with pytest.raises(UnexpectedResponse, match="nested deeper"):
            await client.latest_positions()


async def test_no_data_erro_beside_rows_gives_the_rows() -> None:
    handler, _ = scripted(
        ok({"erro": "Nenhum registro encontrado", "code_header": 404, "retorno": [VEHICLE]})
    )
    async with make_client(handler) as client:
        assert await client.latest_positions() == [VEHICLE]
    handler, _ = scripted(
        ok({"erro": "Nenhum registro encontrado", "terminal": TERMINAL, "posicoes": [VEHICLE]})
    )
    async with make_client(handler) as client:
        assert await client.history_day("ABC1234", date(2025, 1, 8)) == History(TERMINAL, [VEHICLE])


class Trickle(httpx.AsyncByteStream):
    """A body handed over in network-sized pieces, as a socket does (not preloaded)."""

    def __init__(self, data: bytes, piece: int = 16 * 1024) -> None:
        self.data = data
        self.piece = piece
        self.sent = 0

    async def __aiter__(self) -> Any:
        for start in range(0, len(self.data), self.piece):
            self.sent += len(self.data[start : start + self.piece])
            yield self.data[start : start + self.piece]


async def test_a_gzip_bomb_stops_at_the_cap_unretried() -> None:
    cap = 256 * 1024
    bomb = gzip_bomb(256 << 20)
    streams: list[Trickle] = []

    def handler(request: httpx.Request) -> httpx.Response:
        streams.append(Trickle(bomb))
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=streams[-1])

    async with make_client(handler, max_answer_bytes=cap) as client:
        with pytest.raises(AnswerTooLarge) as info:
            await client.latest_positions()
        stats = client.stats
    assert len(streams) == 1
    assert cap < stats.bytes_decoded <= cap + CHUNK_BYTES
    # Stopped reading the wire too: a few pieces, not the whole bomb.
    assert stats.bytes_received == streams[0].sent < len(bomb)
    assert str(info.value) == (
        "eTrac answer to POST /monitoramento/ultimas-posicoes is larger than 262,144 bytes"
        " once decompressed (ETRAC_MAX_ANSWER_BYTES); refused, not retried"
    )


async def test_an_uncompressed_answer_over_the_cap_is_refused() -> None:
    body = json.dumps({"code_header": 200, "retorno": [VEHICLE] * 2000}).encode()
    handler, seen = scripted(httpx.Response(200, stream=Trickle(body)))
    async with make_client(handler, max_answer_bytes=64 * 1024) as client:
        with pytest.raises(AnswerTooLarge):
            await client.latest_positions()
        assert client.stats.bytes_decoded <= 64 * 1024 + 16 * 1024
    assert len(seen) == 1
    declared = httpx.Response(200, headers={"Content-Length": str(len(body))}, stream=Trickle(body))
    handler, _ = scripted(declared)
    async with make_client(handler, max_answer_bytes=64 * 1024) as client:
        with pytest.raises(AnswerTooLarge):
            await client.latest_positions()
        assert client.stats.bytes_received == 0


async def test_a_gzip_answer_under_the_cap_is_read_whole() -> None:
    payload = json.dumps({"code_header": 200, "retorno": [VEHICLE] * 50}).encode()
    packed = gzip.compress(payload)
    handler, _ = scripted(
        httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Trickle(packed, 100))
    )
    async with make_client(handler) as client:
        assert await client.latest_positions() == [VEHICLE] * 50
        assert (client.stats.bytes_received, client.stats.bytes_decoded) == (
            len(packed),
            len(payload),
        )


@pytest.mark.parametrize(
    ("text", "suspect"),
    [
        ('{"v": 1e400}', True),
        ('{"v": 1E+400}', True),
        ('{"v": 1.5e309}', True),
        ('{"v": ' + "9" * 300 + "}", True),
        ('{"v": 1e-5, "t": "Rua 1", "x": 12345678}', False),
        ('{"v": 2.5e10}', False),
    ],
)
def test_numbers_that_may_not_fit_a_float_are_spotted(text: str, suspect: bool) -> None:
    assert _suspect_number(text) is suspect
