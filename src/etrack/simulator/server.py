"""The built-in eTrac API simulator: an HTTP server over a deterministic `Fleet`.

It answers the four endpoints of the eTrac monitoring API under
`/monitoramento`, all POST with HTTP Basic auth, with the provider's envelopes
and its habit of reporting business errors inside HTTP 200 as
`{"erro": ..., "code_header": 4xx}`. Data and ground truth
come from `etrack.simulator.fleet` (read its docstring for the data model and the
quirks). A day without data answers an empty list (`"posicoes": []`,
`"retorno": []`, code_header 200) unless `QuirkConfig.no_data_error` is on,
then `{"erro": "Nenhum registro encontrado", "code_header": 404}`.

Outside the API base path, without auth:

- `GET /_stats`: requests per endpoint and HTTP status, business errors per
  code_header, faults injected, and per (plate, local day) how many times the
  history (`/ultimasposicoesterminal`) and trips (`/resumoviagens`) of that day
  were served. A partition counts each time a request reached the handler for
  it (a window touching two days counts both); requests stopped earlier by a
  fault, the rate limit or auth do not count. `POST /_stats/reset` clears it.
- `GET /_faults`, `POST /_faults` (JSON with any `FaultConfig` field): read or
  change the injected faults at runtime.

Faults (all off by default) come in this order: added latency, auth (401),
per-account rate limit (429 with an integer `Retry-After`), then one draw from
the fault RNG picks a 500/503, a hanging request (held until `hang_seconds`,
the client disconnecting, or server shutdown) or a truncated JSON body (HTTP
200, body cut short). The fault RNG is seeded by `SimulatorConfig.fault_seed`.
Last, a hostile mode (`FaultConfig.poison`, see `wire.POISONS`) poisons every
answer of the three position endpoints: lone surrogates, numbers no float
holds, rows nested 5,000 deep, elements that are not objects, "Nenhum
registro" beside real rows, or a gzip bomb of `bomb_bytes`.
Hanging requests only await, so they never block other requests, and stopping
the server releases them at once.

`run_in_thread(config)` runs the server in a background thread for tests;
`command(...)` is the `etrack simulator` CLI command.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import math
import random
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from etrack.simulator.config import (
    DEFAULT_KEY,
    DEFAULT_USER,
    Account,
    FleetConfig,
    QuirkConfig,
    Region,
    check_rate_limit,
)
from etrack.simulator.dayplan import Vehicle
from etrack.simulator.fences import DEFAULT_RADIUS_M, stop_fences
from etrack.simulator.fleet import Fleet
from etrack.simulator.wire import POISONS, gzip_bomb, parse_local, poison_answer

__all__ = [
    "API_BASE_PATH",
    "ENDPOINTS",
    "FaultConfig",
    "SimulatorApp",
    "SimulatorConfig",
    "SimulatorHandle",
    "SimulatorStats",
    "build_config",
    "command",
    "run_in_thread",
]

API_BASE_PATH = "/monitoramento"
ENDPOINTS = ("ultimas-posicoes", "ultimaposicao", "ultimasposicoesterminal", "resumoviagens")
MAX_WINDOW_S = 24 * 3600
# Endpoint -> the key of its rows, for the hostile mode.
_POSITION_ENDPOINTS = {
    "ultimas-posicoes": "retorno",
    "ultimaposicao": "retorno",
    "ultimasposicoesterminal": "posicoes",
}
_HANG_POLL_S = 0.05
_CLIENT_GONE = 499  # nginx's "client closed request": what we record for abandoned hangs


# --------------------------------------------------------------------- config
@dataclass(frozen=True)
class FaultConfig:
    """Injected faults; every one is off by default.

    `rate_limit_per_s` (and `rate_limit_burst`, default ceil(rate)) applies to
    accounts without their own `Account.rate_limit_per_s`. The three rates are
    fractions of API requests (after auth and rate limit) and must sum to <= 1.
    """

    latency_ms: float = 0.0
    saturate_at: int | None = None
    """A server that saturates: beyond this many API requests in flight, each
    request waits `latency_ms` more per request in flight above it (a queue),
    long before any 429."""
    rate_limit_per_s: float | None = None
    rate_limit_burst: int | None = None
    error_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 300.0
    truncate_rate: float = 0.0
    poison: tuple[str, ...] = ()
    """Hostile mode: kinds of `wire.POISONS` put in every position answer."""
    bomb_bytes: int = 1 << 30
    """What the gzip_bomb poison expands to."""

    def __post_init__(self) -> None:
        # POST /_faults gives a JSON list; the config stays hashable and frozen.
        object.__setattr__(self, "poison", tuple(self.poison))
        unknown = sorted(set(self.poison) - set(POISONS))
        if unknown:
            raise ValueError(f"unknown poison {unknown}, expected some of {list(POISONS)}")
        if self.bomb_bytes < 1:
            raise ValueError(f"bomb_bytes must be >= 1, got {self.bomb_bytes}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, got {self.latency_ms}")
        if self.saturate_at is not None and self.saturate_at < 1:
            raise ValueError(f"saturate_at must be >= 1, got {self.saturate_at}")
        check_rate_limit(self.rate_limit_per_s, self.rate_limit_burst)
        for name in ("error_rate", "hang_rate", "truncate_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.error_rate + self.hang_rate + self.truncate_rate > 1.0 + 1e-9:
            raise ValueError("error_rate + hang_rate + truncate_rate must be <= 1")
        if self.hang_seconds < 0:
            raise ValueError(f"hang_seconds must be >= 0, got {self.hang_seconds}")


@dataclass(frozen=True)
class SimulatorConfig:
    fleet: FleetConfig = field(default_factory=FleetConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    host: str = "127.0.0.1"
    port: int = 0
    fault_seed: int = 0
    cache_answers: bool = False
    """Remember each history answer by (account, request body) and serve it
    again unchanged. Only for a frozen clock (a day's history is then fixed):
    load benchmarks, where generating every answer anew would take the CPU
    the client under test needs."""

    def __post_init__(self) -> None:
        if self.cache_answers and self.fleet.now is None:
            raise ValueError("cache_answers needs a frozen clock (now), or answers go stale")


_FLEET_FIELDS = {f.name for f in fields(FleetConfig)}
_QUIRK_FIELDS = {f.name for f in fields(QuirkConfig)}
_FAULT_FIELDS = {f.name for f in fields(FaultConfig)}
_SIMULATOR_FIELDS = {f.name for f in fields(SimulatorConfig)} - {"fleet", "faults"}


def build_config(base: SimulatorConfig | None = None, **overrides: Any) -> SimulatorConfig:
    """A `SimulatorConfig` from flat overrides.

    Any field of FleetConfig, QuirkConfig, FaultConfig or SimulatorConfig may be
    given by name (`vehicles=3, jump_rate=0, error_rate=0.5, port=8765`);
    `quirks`/`faults`/`fleet` also take a whole object or a dict.
    """
    config = base or SimulatorConfig()
    fleet = config.fleet
    faults = config.faults
    quirks = fleet.quirks
    fleet_changes: dict[str, Any] = {}
    quirk_changes: dict[str, Any] = {}
    fault_changes: dict[str, Any] = {}
    simulator_changes: dict[str, Any] = {}
    for name, value in overrides.items():
        if name == "fleet":
            fleet = value if isinstance(value, FleetConfig) else FleetConfig(**value)
            quirks = fleet.quirks
        elif name == "quirks":
            quirks = value if isinstance(value, QuirkConfig) else replace(quirks, **value)
        elif name == "faults":
            faults = value if isinstance(value, FaultConfig) else replace(faults, **value)
        elif name in _FLEET_FIELDS:
            fleet_changes[name] = (
                tuple(value) if name == "accounts" and value is not None else value
            )
        elif name in _QUIRK_FIELDS:
            quirk_changes[name] = value
        elif name in _FAULT_FIELDS:
            fault_changes[name] = value
        elif name in _SIMULATOR_FIELDS:
            simulator_changes[name] = value
        else:
            raise TypeError(f"unknown simulator setting {name!r}")
    quirks = replace(quirks, **quirk_changes)
    fleet = replace(fleet, quirks=quirks, **fleet_changes)
    faults = replace(faults, **fault_changes)
    return replace(config, fleet=fleet, faults=faults, **simulator_changes)


# ---------------------------------------------------------------------- stats
PartitionKey = tuple[str, date]


@dataclass
class SimulatorStats:
    """A snapshot of what the simulator served since start or the last reset."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    """(endpoint, HTTP status) -> count; endpoint is e.g. 'ultimasposicoesterminal'."""
    business_errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    """(endpoint, code_header) of `{"erro": ...}` answers sent with HTTP 200."""
    faults: Counter[str] = field(default_factory=Counter)
    """'latency', 'rate_limited', 'error_500', 'error_503', 'hang', 'truncated',
    'poisoned', 'gzip_bomb', 'saturated' -> count."""
    history_fetches: Counter[PartitionKey] = field(default_factory=Counter)
    """(canonical plate, local day) -> times its history was served."""
    trip_fetches: Counter[PartitionKey] = field(default_factory=Counter)
    """(canonical plate, local day) -> times its resumoviagens was served."""
    first_arrival: float | None = None
    """time.monotonic() when the first API request arrived (None: none yet)."""
    last_answer: float | None = None
    """time.monotonic() when the last API answer was ready."""

    @property
    def api_span_s(self) -> float:
        """Seconds from the first request's arrival to the last answer."""
        if self.first_arrival is None or self.last_answer is None:
            return 0.0
        return self.last_answer - self.first_arrival

    def count(self, endpoint: str | None = None, status: int | None = None) -> int:
        """Requests to `endpoint` (any if None) answered with `status` (any if None)."""
        return sum(
            number
            for (name, code), number in self.requests.items()
            if (endpoint is None or name == endpoint.strip("/"))
            and (status is None or code == status)
        )

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def max_history_fetches(self) -> int:
        return max(self.history_fetches.values(), default=0)

    def copy(self) -> SimulatorStats:
        return SimulatorStats(
            Counter(self.requests),
            Counter(self.business_errors),
            Counter(self.faults),
            Counter(self.history_fetches),
            Counter(self.trip_fetches),
            self.first_arrival,
            self.last_answer,
        )

    def to_json(self) -> dict[str, Any]:
        def nested(counter: Counter[tuple[str, Any]]) -> dict[str, dict[str, int]]:
            result: dict[str, dict[str, int]] = {}
            for (outer, inner), number in sorted(counter.items(), key=lambda item: str(item[0])):
                key = inner.isoformat() if isinstance(inner, date) else str(inner)
                result.setdefault(outer, {})[key] = number
            return result

        return {
            "total": self.total,
            "requests": nested(self.requests),
            "business_errors": nested(self.business_errors),
            "faults": dict(sorted(self.faults.items())),
            "history_fetches": nested(self.history_fetches),
            "trip_fetches": nested(self.trip_fetches),
            "max_history_fetches": self.max_history_fetches(),
        }


class _BusinessError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Bucket:
    tokens: float
    updated: float


# ------------------------------------------------------------------------ app
class SimulatorApp:
    """The ASGI application. Safe to inspect and reconfigure from other threads."""

    def __init__(self, config: SimulatorConfig | None = None, fleet: Fleet | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.fleet = fleet or Fleet(self.config.fleet)
        self._faults = self.config.faults
        self._lock = threading.Lock()
        self._stats = SimulatorStats()
        self._buckets: dict[str, _Bucket] = {}
        self._in_flight = 0
        # Simulated faults, not security: a seeded generator keeps failures reproducible.
        self._fault_rng = random.Random(self.config.fault_seed)  # noqa: S311
        self._stopping = threading.Event()
        self._answers: dict[tuple[str, bytes], bytes] = {}
        routes = [
            Route(f"{API_BASE_PATH}/{name}", self._endpoint(name), methods=["POST"])
            for name in ENDPOINTS
        ]
        routes += [
            Route("/_stats", self._get_stats, methods=["GET"]),
            Route("/_stats/reset", self._reset_stats, methods=["POST"]),
            Route("/_faults", self._faults_endpoint, methods=["GET", "POST"]),
        ]
        self._starlette = Starlette(routes=routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._starlette(scope, receive, send)

    # ------------------------------------------------------------- controls
    @property
    def faults(self) -> FaultConfig:
        return self._faults

    def set_faults(self, faults: FaultConfig | None = None, **changes: Any) -> FaultConfig:
        """Replace the faults (or change some fields); takes effect on the next request."""
        with self._lock:
            self._faults = replace(faults or self._faults, **changes)
            self._buckets.clear()
            return self._faults

    def stats(self) -> SimulatorStats:
        with self._lock:
            return self._stats.copy()

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = SimulatorStats()

    def begin_shutdown(self) -> None:
        """Release hanging requests (they answer 503) and refuse to start new hangs."""
        self._stopping.set()

    # ------------------------------------------------------------- plumbing
    def _record(self, endpoint: str, status: int, arrived: float) -> None:
        answered = time.monotonic()
        with self._lock:
            stats = self._stats
            stats.requests[(endpoint, status)] += 1
            if stats.first_arrival is None or arrived < stats.first_arrival:
                stats.first_arrival = arrived
            if stats.last_answer is None or answered > stats.last_answer:
                stats.last_answer = answered

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._stats.faults[kind] += 1

    def _count_partitions(self, counter_name: str, plate: str, days: list[date]) -> None:
        with self._lock:
            counter: Counter[PartitionKey] = getattr(self._stats, counter_name)
            for day in days:
                counter[(plate, day)] += 1

    def _authenticate(self, request: Request) -> Account | None:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, key = base64.b64decode(encoded, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        account = self.fleet.account(user)
        if account is None or account.key != key:
            return None
        return account

    def _take_token(self, account: Account, faults: FaultConfig) -> float:
        """0 if the request may go on, else the seconds until it could."""
        rate = account.rate_limit_per_s or faults.rate_limit_per_s
        if rate is None:
            return 0.0
        burst = account.rate_limit_burst or faults.rate_limit_burst or max(1, math.ceil(rate))
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get(account.user)
            if bucket is None:
                bucket = self._buckets[account.user] = _Bucket(float(burst), now)
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / rate

    def _draw_fault(self, faults: FaultConfig) -> str | None:
        if faults.error_rate + faults.hang_rate + faults.truncate_rate <= 0:
            return None
        with self._lock:
            draw = self._fault_rng.random()
            status = self._fault_rng.choice((500, 503))
        if draw < faults.error_rate:
            return f"error_{status}"
        if draw < faults.error_rate + faults.hang_rate:
            return "hang"
        if draw < faults.error_rate + faults.hang_rate + faults.truncate_rate:
            return "truncated"
        return None

    def _truncate_at(self, length: int) -> int:
        with self._lock:
            return self._fault_rng.randint(1, max(1, length - 1))

    async def _hang(
        self, request: Request, seconds: float
    ) -> Literal["elapsed", "gone", "stopping"]:
        """Hold the request without blocking the event loop."""

        async def wait_disconnect() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass

        watcher = asyncio.ensure_future(wait_disconnect())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            while True:
                if watcher.done():
                    return "gone"
                # A threading.Event, polled: shutdown comes from another thread.
                if self._stopping.is_set():
                    return "stopping"
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return "elapsed"
                await asyncio.wait({watcher}, timeout=min(_HANG_POLL_S, remaining))
        finally:
            watcher.cancel()

    # ------------------------------------------------------------ API calls
    def _endpoint(self, name: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            status = 500
            arrived = time.monotonic()
            with self._lock:
                self._in_flight += 1
            try:
                response = await self._handle(name, request)
                status = response.status_code
                return response
            finally:
                with self._lock:
                    self._in_flight -= 1
                self._record(name, status, arrived)

        return endpoint

    def _latency_s(self, faults: FaultConfig) -> float:
        base = faults.latency_ms / 1000
        if faults.saturate_at is None:
            return base
        with self._lock:
            queued = max(0, self._in_flight - faults.saturate_at)
        if queued:
            self._count_fault("saturated")
        return base * (1 + queued)

    async def _handle(self, name: str, request: Request) -> Response:
        faults = self._faults
        body = await request.body()
        if faults.latency_ms > 0:
            self._count_fault("latency")
            await asyncio.sleep(self._latency_s(faults))
        account = self._authenticate(request)
        if account is None:
            return JSONResponse(
                {"erro": "Usuário ou chave de acesso inválidos", "code_header": 401},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="eTrac"'},
            )
        wait = self._take_token(account, faults)
        if wait > 0:
            self._count_fault("rate_limited")
            return JSONResponse(
                {"erro": "Limite de requisições excedido", "code_header": 429},
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        fault = self._draw_fault(faults)
        if fault is not None:
            self._count_fault(fault)
        if fault == "error_500":
            return Response(
                "<html><body><h1>500 Internal Server Error</h1></body></html>",
                status_code=500,
                media_type="text/html",
            )
        if fault == "error_503":
            return Response("Service Unavailable", status_code=503, media_type="text/plain")
        if fault == "hang":
            outcome = await self._hang(request, faults.hang_seconds)
            if outcome == "gone":
                return Response(status_code=_CLIENT_GONE)
            if outcome == "stopping":
                return Response("Service Unavailable", status_code=503, media_type="text/plain")
        try:
            if name == "ultimas-posicoes":
                # Joined from per-vehicle cached JSON: 5,000 vehicles stay well under 200 ms.
                rows = self.fleet.latest_rows_json(account=account)
                content = b'{"code_header":200,"retorno":' + rows + b"}"
            elif self.config.cache_answers and name == "ultimasposicoesterminal":
                key = (account.user, body)
                cached = self._answers.get(key)
                if cached is None:
                    cached = self._answers.setdefault(
                        key, _to_json(self._answer(name, account, body))
                    )
                content = cached
            else:
                content = _to_json(self._answer(name, account, body))
        except _BusinessError as error:
            with self._lock:
                self._stats.business_errors[(name, error.code)] += 1
            content = _to_json({"erro": error.message, "code_header": error.code})
        if faults.poison and name in _POSITION_ENDPOINTS:
            if "gzip_bomb" in faults.poison:
                self._count_fault("gzip_bomb")
                return Response(
                    gzip_bomb(faults.bomb_bytes),
                    media_type="application/json",
                    headers={"Content-Encoding": "gzip"},
                )
            self._count_fault("poisoned")
            content = poison_answer(content, _POSITION_ENDPOINTS[name], faults.poison)
        if fault == "truncated":
            content = content[: self._truncate_at(len(content))]
        return Response(content, media_type="application/json")

    def _answer(self, name: str, account: Account, body: bytes) -> dict[str, Any]:
        fleet = self.fleet
        request = _parse_body(body)
        vehicle = self._vehicle(request, account)
        if name == "ultimaposicao":
            row = fleet.latest_row(vehicle.placa)
            if row is None:
                return self._no_data("retorno")
            return {"code_header": 200, "retorno": [row]}
        if name == "ultimasposicoesterminal":
            return self._history(vehicle, request)
        return self._trips(vehicle, request)

    def _vehicle(self, request: dict[str, Any], account: Account) -> Vehicle:
        plate = request.get("placa")
        if plate is None or plate == "":
            raise _BusinessError(400, "Campo obrigatório não informado: placa")
        vehicle = self.fleet.find_vehicle(str(plate), account)
        if vehicle is None:
            raise _BusinessError(404, f"Placa {plate} não encontrada")
        return vehicle

    def _history(self, vehicle: Vehicle, request: dict[str, Any]) -> dict[str, Any]:
        fleet = self.fleet
        start_text = request.get("data_inicio")
        end_text = request.get("data_fim")
        if start_text is not None or end_text is not None:
            if not start_text or not end_text:
                missing = "data_fim" if start_text else "data_inicio"
                raise _BusinessError(400, f"Campo obrigatório não informado: {missing}")
            start = _parse_moment(start_text, fleet)
            end = _parse_moment(end_text, fleet)
            if end < start:
                raise _BusinessError(400, "data_fim anterior a data_inicio")
            if (end - start).total_seconds() > MAX_WINDOW_S:
                raise _BusinessError(400, "O período consultado não pode ser superior a 24 horas")
            days = fleet.days_between(start, end)
            rows = fleet.window_rows(vehicle.placa, start, end)
        else:
            day_text = request.get("data")
            if not day_text:
                raise _BusinessError(400, "Campo obrigatório não informado: data")
            day = _parse_day(day_text, "%d/%m/%Y", "DD/MM/AAAA")
            days = [day]
            rows = fleet.history_rows(vehicle.placa, day)
        self._count_partitions("history_fetches", vehicle.placa, days)
        if not rows and fleet.quirks.no_data_error:
            raise _BusinessError(404, "Nenhum registro encontrado")
        terminal = {
            "placa": vehicle.display_plate,
            "descricao": vehicle.descricao,
            "frota": vehicle.frota,
        }
        return {"code_header": 200, "terminal": terminal, "posicoes": rows}

    def _trips(self, vehicle: Vehicle, request: dict[str, Any]) -> dict[str, Any]:
        day_text = request.get("data")
        if not day_text:
            raise _BusinessError(400, "Campo obrigatório não informado: data")
        day = _parse_day(day_text, "%d-%m-%Y", "DD-MM-AAAA")
        self._count_partitions("trip_fetches", vehicle.placa, [day])
        trips = self.fleet.trip_summaries(vehicle.placa, day)
        if not trips and self.fleet.quirks.no_data_error:
            raise _BusinessError(404, "Nenhum registro encontrado")
        return {"code_header": 200, "retorno": trips}

    def _no_data(self, key: str) -> dict[str, Any]:
        if self.fleet.quirks.no_data_error:
            raise _BusinessError(404, "Nenhum registro encontrado")
        return {"code_header": 200, key: []}

    # --------------------------------------------------------- side routes
    async def _get_stats(self, request: Request) -> Response:
        return JSONResponse(self.stats().to_json())

    async def _reset_stats(self, request: Request) -> Response:
        self.reset_stats()
        return JSONResponse({"reset": True})

    async def _faults_endpoint(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = json.loads(await request.body() or b"{}")
                if not isinstance(changes, dict) or not set(changes) <= _FAULT_FIELDS:
                    raise ValueError(
                        f"expected a JSON object with fields of {sorted(_FAULT_FIELDS)}"
                    )
                self.set_faults(**changes)
            except (ValueError, TypeError) as error:
                return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(asdict(self._faults))


# Our payloads are plain trees: skipping the circular-reference check is free speed.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def _to_json(payload: dict[str, Any]) -> bytes:
    return _ENCODER.encode(payload).encode()


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _BusinessError(400, "Corpo da requisição inválido: JSON esperado") from None
    if not isinstance(parsed, dict):
        raise _BusinessError(400, "Corpo da requisição inválido: objeto JSON esperado")
    return parsed


def _parse_day(text: Any, pattern: str, shown: str) -> date:
    try:
        return datetime.strptime(str(text), pattern).date()
    except ValueError:
        raise _BusinessError(400, f"Data inválida: {text!r}, formato esperado {shown}") from None


def _parse_moment(text: Any, fleet: Fleet) -> datetime:
    try:
        return parse_local(str(text), fleet.tz)
    except ValueError:
        raise _BusinessError(
            400, f"Data inválida: {text!r}, formato esperado DD/MM/AAAA HH:MM:SS"
        ) from None


# --------------------------------------------------------------- the server
class _Server(uvicorn.Server):
    """uvicorn that releases hanging requests as soon as it is asked to stop."""

    def __init__(
        self, config: uvicorn.Config, app: SimulatorApp, banner: str | None = None
    ) -> None:
        super().__init__(config)
        self.simulator = app
        self.banner = banner
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.simulator.begin_shutdown()
        super().handle_exit(sig, frame)

    def request_exit(self) -> None:
        """Stop from another thread, waking the main loop instead of waiting for its tick."""
        self.simulator.begin_shutdown()
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        # uvicorn's loop, but its 0.1 s sleep can be cut short by request_exit():
        # tests start and stop a simulator per test, and those ticks add up.
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's graceful shutdown, polling every few ms instead of sleeping
        # 0.1 s steps; hanging handlers return within _HANG_POLL_S of begin_shutdown().
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or 5)
        state = self.server_state
        while (state.connections or state.tasks) and not self.force_exit:
            if loop.time() > deadline:
                for task in state.tasks:
                    task.cancel()
                break
            await asyncio.sleep(0.005)
        else:
            for server in self.servers:
                await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.banner is not None and self.started:
            print(self.banner, flush=True)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto is IPPROTO_TCP, and without it Nagle + delayed ACK add ~40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(
    app: SimulatorApp, log_level: str = "warning", access_log: bool = False
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        # A backstop only: hanging handlers return within _HANG_POLL_S of shutdown.
        timeout_graceful_shutdown=5,
    )


def _root_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class SimulatorHandle:
    """A running simulator: where it listens, its fleet, and its controls."""

    def __init__(
        self, app: SimulatorApp, server: _Server, thread: threading.Thread, host: str, port: int
    ) -> None:
        self.app = app
        self._server = server
        self._thread = thread
        self.host = host
        self.port = port
        self.root_url = _root_url(host, port)
        self.base_url = self.root_url + API_BASE_PATH
        account = app.fleet.accounts[0]
        self.user = account.user
        self.key = account.key

    @property
    def fleet(self) -> Fleet:
        return self.app.fleet

    @property
    def config(self) -> SimulatorConfig:
        return self.app.config

    @property
    def accounts(self) -> tuple[Account, ...]:
        return self.app.fleet.accounts

    @property
    def auth(self) -> tuple[str, str]:
        """(user, key) of the first account, as httpx's `auth=` takes it."""
        return (self.user, self.key)

    @property
    def faults(self) -> FaultConfig:
        return self.app.faults

    def url(self, endpoint: str) -> str:
        return f"{self.base_url}/{endpoint.lstrip('/')}"

    def stats(self) -> SimulatorStats:
        return self.app.stats()

    def reset_stats(self) -> None:
        self.app.reset_stats()

    def set_faults(self, faults: FaultConfig | None = None, **changes: Any) -> FaultConfig:
        return self.app.set_faults(faults, **changes)

    def clear_faults(self) -> FaultConfig:
        return self.app.set_faults(FaultConfig())

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server, releasing hanging requests; idempotent."""
        self._server.request_exit()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)


@contextmanager
def run_in_thread(
    config: SimulatorConfig | None = None, *, startup_timeout: float = 15.0
) -> Iterator[SimulatorHandle]:
    """Serve the simulator from a background thread until the block ends."""
    config = config or SimulatorConfig()
    app = SimulatorApp(config)
    sock = _bind(config.host, config.port)
    port = int(sock.getsockname()[1])
    server = _Server(_uvicorn_config(app), app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"etrac-simulator-{port}", daemon=True
    )
    thread.start()
    handle = SimulatorHandle(app, server, thread, config.host, port)
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the eTrac simulator stopped during startup")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the eTrac simulator did not start within {startup_timeout} s")
            time.sleep(0.002)  # polling startup, bounded by the deadline above
        yield handle
    finally:
        handle.stop()
        sock.close()


# ------------------------------------------------------------------------ CLI
def _write_fences(fleet: Fleet, path: Path, days: int, radius_m: float) -> None:
    today = fleet.local_day(fleet.now())
    wanted = [today - timedelta(days=k) for k in range(days, 0, -1)]
    collection = stop_fences(fleet, wanted, radius_m)
    path.write_text(json.dumps(collection, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    typer.echo(
        f"wrote {len(collection['features'])} fences around the stopping places of "
        f"{wanted[0]:%Y-%m-%d}..{wanted[-1]:%Y-%m-%d} to {path}"
    )


def _parse_now(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"expected 'YYYY-MM-DD HH:MM:SS' (local) or an ISO 8601 time, got {text!r}"
        ) from None


def command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks any free port.")] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the fleet: same seed, same data.")] = 42,
    vehicles: Annotated[int, typer.Option(help="Vehicles of the default account.")] = 10,
    user: Annotated[str, typer.Option(help="User (e-mail) of the default account.")] = DEFAULT_USER,
    key: Annotated[str, typer.Option(help="API key of the default account.")] = DEFAULT_KEY,
    account: Annotated[
        list[str] | None,
        typer.Option(
            help="Extra account EMAIL:APIKEY:VEHICLES[:RATE_PER_S] (repeatable); "
            "its plates are distinct from the other accounts'."
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(help="Freeze the clock: 'YYYY-MM-DD HH:MM:SS' local time, or ISO 8601."),
    ] = None,
    timezone: Annotated[str, typer.Option(help="Time zone of the account's local times.")] = (
        "America/Sao_Paulo"
    ),
    region: Annotated[
        str | None,
        typer.Option(
            help="Driving region LAT_MIN,LAT_MAX,LON_MIN,LON_MAX (default greater São Paulo)."
        ),
    ] = None,
    quirks: Annotated[bool, typer.Option(help="Master switch of the data quirks below.")] = True,
    duplicates: Annotated[bool, typer.Option(help="Duplicate rows inside one answer.")] = True,
    no_fix: Annotated[
        bool,
        typer.Option("--no-fix-rows/--all-fixed", help="Rows without GPS fix (0/0)."),
    ] = True,
    jumps: Annotated[bool, typer.Option(help="Isolated GPS jumps hundreds of km away.")] = True,
    out_of_order: Annotated[bool, typer.Option(help="Answers not sorted by time.")] = True,
    empty_addresses: Annotated[bool, typer.Option(help="Rows with an empty logradouro.")] = True,
    unit_strings: Annotated[
        bool, typer.Option(help="Numbers as strings with units or decimal commas.")
    ] = True,
    no_data_error: Annotated[
        bool,
        typer.Option(
            "--empty-day-error/--empty-day-ok",
            help="A day without data is answered with an erro (404) instead of an empty list.",
        ),
    ] = False,
    latency_ms: Annotated[
        float, typer.Option(help="Added latency of every API request (ms).")
    ] = 0.0,
    rate_limit: Annotated[
        float | None,
        typer.Option(help="Requests per second per account; beyond it, 429 with Retry-After."),
    ] = None,
    error_rate: Annotated[float, typer.Option(help="Fraction of requests answered 500/503.")] = 0.0,
    hang_rate: Annotated[float, typer.Option(help="Fraction of requests that hang.")] = 0.0,
    hang_seconds: Annotated[
        float, typer.Option(help="How long a hanging request is held.")
    ] = 300.0,
    truncate_rate: Annotated[
        float, typer.Option(help="Fraction of answers with a truncated JSON body (HTTP 200).")
    ] = 0.0,
    fault_seed: Annotated[int, typer.Option(help="Seed of the fault injection.")] = 0,
    cache_answers: Annotated[
        bool,
        typer.Option(
            help="Serve each history answer again from memory once generated (needs --now): "
            "for load benchmarks, so the simulator leaves the CPU to the client."
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    write_fences: Annotated[
        Path | None,
        typer.Option(
            help="Write a GeoJSON of circle fences around the fleet's stopping places "
            "of the --fence-days days before today (for `etrack geofences import`) and exit."
        ),
    ] = None,
    fence_days: Annotated[
        int, typer.Option(min=1, max=366, help="Days of stops --write-fences covers.")
    ] = 7,
    fence_radius: Annotated[
        float, typer.Option(min=1.0, help="Radius of the --write-fences circles (m).")
    ] = DEFAULT_RADIUS_M,
) -> None:
    """Run a local eTrac API simulator with a deterministic fleet."""
    try:
        accounts = (
            Account(user=user, key=key, vehicles=vehicles),
            *tuple(Account.parse(text, index) for index, text in enumerate(account or [], start=2)),
        )
        quirk_config = QuirkConfig(no_data_error=no_data_error)
        switches = {
            "duplicate_rate": duplicates,
            "no_fix_rate": no_fix,
            "jump_rate": jumps,
            "out_of_order_rate": out_of_order,
            "empty_address_rate": empty_addresses,
            "unit_strings_rate": unit_strings,
        }
        off: dict[str, Any] = {name: 0.0 for name, on in switches.items() if not (quirks and on)}
        quirk_config = replace(quirk_config, **off)
        config = SimulatorConfig(
            fleet=FleetConfig(
                seed=seed,
                vehicles=vehicles,
                accounts=accounts,
                timezone=timezone,
                region=Region.parse(region) if region else Region(),
                now=_parse_now(now),
                quirks=quirk_config,
            ),
            faults=FaultConfig(
                latency_ms=latency_ms,
                rate_limit_per_s=rate_limit,
                error_rate=error_rate,
                hang_rate=hang_rate,
                hang_seconds=hang_seconds,
                truncate_rate=truncate_rate,
            ),
            host=host,
            port=port,
            fault_seed=fault_seed,
            cache_answers=cache_answers,
        )
    except (ValueError, KeyError) as error:
        raise typer.BadParameter(str(error)) from None
    if write_fences is not None:
        _write_fences(Fleet(config.fleet), write_fences, fence_days, fence_radius)
        return
    app = SimulatorApp(config)
    try:
        sock = _bind(host, port)
    except OSError as error:
        typer.echo(f"cannot listen on {host}:{port}: {error}", err=True)
        raise typer.Exit(1) from None
    root = _root_url(host, int(sock.getsockname()[1]))
    lines = [
        f"eTrac simulator listening on {root}{API_BASE_PATH} (user {a.user}, key {a.key}, "
        f"{a.vehicles} vehicles)"
        for a in app.fleet.accounts
    ]
    clock = (
        "real time"
        if config.fleet.now is None
        else f"frozen at {app.fleet.now():%Y-%m-%d %H:%M:%S %Z}"
    )
    lines.append(f"stats: GET {root}/_stats, faults: GET/POST {root}/_faults, clock: {clock}")
    server = _Server(_uvicorn_config(app, log_level, access_log), app, banner="\n".join(lines))
    # Plan today for every vehicle in the background: a large fleet's first
    # /ultimas-posicoes would otherwise pay for it (about 0.3 ms per vehicle).
    threading.Thread(target=app.fleet.warm, name="etrac-simulator-warm", daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn re-raises the Ctrl+C it handled gracefully; the shutdown is done.
        pass
    finally:
        sock.close()
    if not server.started:
        sys.exit(1)
