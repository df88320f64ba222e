"""Async HTTP client for the eTrac monitoring API (WebService 1.1).

The client speaks the wire protocol and nothing more: it returns the
provider's rows as raw dicts (parsing them is :mod:`etrack.provider.parse`'s
job) and turns everything else the provider can answer into either a retry or
one of the typed errors of :mod:`etrack.errors`.

What the provider can answer, and what the caller sees:

============================================  ==========================================
HTTP 200 with ``retorno``/``posicoes``        the rows
``erro`` saying there is no data               an empty result (never an error), unless
                                               rows came beside it: then the rows
HTTP 401/403, or ``code_header`` 401/403       :class:`AuthenticationError`, no retry
``erro`` about the plate / date / window       :class:`BusinessError` subclass, no retry
429 (``Retry-After`` honoured), 408, 5xx,      retried with backoff, then
timeouts, dropped connections, bad JSON        :class:`ApiUnavailable`
an answer larger than *max_answer_bytes*       :class:`AnswerTooLarge`, no retry
  once decompressed
============================================  ==========================================

A poisoned row never costs its neighbours: the body is decoded so that a
number no float holds becomes an :class:`~etrack.model.OutOfRangeNumber` (the
parser rejects its row), an element nested deeper than the decoder allows
becomes a :class:`~etrack.model.Reject` holding its text, and an element that
is not an object is handed on for the parser to reject. No decoder exception
leaves the client: per row it is a ``Reject``, per answer a
:class:`~etrack.errors.ProviderError`.

The body is read as a stream and decompressed here, a bounded chunk at a
time, so a gzip bomb stops at the cap instead of filling memory.

Retries go through stamina (exponential backoff with jitter; ``stamina.
set_testing`` turns the waits off in tests). Each logical call is bounded
twice: by *max_attempts*, and by a time budget (*total_timeout*) that does
not count the time spent queueing in the rate limiter.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import json
import logging
import re
import socket
import time
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeAlias, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import stamina
from pydantic import SecretStr

from etrack.config import Settings
from etrack.errors import (
    AnswerTooLarge,
    ApiHostUnknown,
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
from etrack.model import InvalidPlate, OutOfRangeNumber, Reject, canonical_plate
from etrack.provider.ratelimit import PyrateLimiter, RateLimiter

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_MAX_ANSWER_BYTES",
    "HISTORY",
    "LATEST_POSITION",
    "LATEST_POSITIONS",
    "MAX_WINDOW",
    "TOO_DEEP",
    "TRIPS",
    "ClientStats",
    "EtracClient",
    "History",
    "Row",
    "Window",
    "split_window",
]

log = logging.getLogger("etrack.etrac")

Row: TypeAlias = dict[str, Any]
"""One record exactly as the provider sent it (values are often strings)."""

LATEST_POSITIONS = "/ultimas-posicoes"
LATEST_POSITION = "/ultimaposicao"
HISTORY = "/ultimasposicoesterminal"
TRIPS = "/resumoviagens"

MAX_WINDOW = timedelta(hours=24)
"""Longest window ``/ultimasposicoesterminal`` accepts in one call."""

DEFAULT_RATE_LIMIT = 5.0
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
"""Most decompressed bytes one step of reading produces: the answer held in
memory never exceeds the cap by more than this."""
DEFAULT_TOTAL_TIMEOUT = 300.0
_ONE_SECOND = timedelta(seconds=1)
_WIRE_DATETIME = "%d/%m/%Y %H:%M:%S"

T = TypeVar("T")


# --------------------------------------------------------------------- errors
class _Retryable(Exception):
    """A failure worth another attempt; never escapes the client."""

    def __init__(
        self, cause: str, *, retry_after: float | None = None, throttled: bool = False
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.retry_after = retry_after
        self.throttled = throttled


# Deployment mistakes, not outages: retrying them only delays the error.
_NOT_TRANSIENT = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


# ---------------------------------------------------------- error messages
def _fold(text: str) -> str:
    """Lower case, accents stripped, spaces collapsed: 'Posições' -> 'posicoes'."""
    decomposed = unicodedata.normalize("NFKD", text)
    ascii_ish = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(ascii_ish.lower().split())


_DATA_NOUN = r"(registro|dado|posic|viage|resultado|informac|evento|ponto)"
_NO_DATA = re.compile(
    rf"\bnenhum[a]?\s+(\w+\s+){{0,2}}{_DATA_NOUN}"
    rf"|\bsem\s+(\w+\s+)?{_DATA_NOUN}"
    rf"|\bnao\s+(ha|houve|existe|existem|constam?|possui|foram|foi)\b.{{0,40}}{_DATA_NOUN}"
    r"|\bno\s+(data|records?|positions?|trips?)\b|\bvazi[oa]\b|\bempty\b"
)
# "Sem acesso aos dados" is a refusal, not an empty day.
_DENIED = re.compile(r"permiss|acesso|autoriza|bloquead|suspens|credencia|senha|login|denied")
_VEHICLE = re.compile(r"\b(placa|veiculo|terminal|equipamento|plate|vehicle)")
_NOT_FOUND = re.compile(
    r"nao\s+(encontrad|localizad|cadastrad|pertence|existe|vinculad|autorizad|reconhecid)"
    r"|inexistente|invalid|desconhecid|nenhum\s+veiculo|not\s+found|unknown"
)
_WINDOW = re.compile(r"24\s*h|vinte e quatro|periodo|intervalo|janela|window|range")
_TOO_LARGE = re.compile(r"maior|superior|exced|ultrapass|maxim|limite|acima|longo|larger|exceed")
_DATE = re.compile(r"\bdata|\bdate|\bhora|periodo|intervalo|formato|format")


def _classify(erro: str) -> type[BusinessError] | None:
    """Which refusal *erro* describes; None when it only says "no data".

    The provider's wording is free text (and our simulator's differs), so
    this is a liberal keyword match. The order matters: "Placa nao
    encontrada" is an unknown plate although it says "not found", while
    "Nenhum registro encontrado para a placa" is an empty day.
    """
    text = _fold(erro)
    if _VEHICLE.search(text) and _NOT_FOUND.search(text):
        return UnknownPlate
    if _DENIED.search(text):
        return BusinessError
    if _NO_DATA.search(text):
        return None
    if _WINDOW.search(text) and _TOO_LARGE.search(text):
        return WindowTooLarge
    if _DATE.search(text):
        return InvalidDate
    return BusinessError


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _as_int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


def _decode(content: bytes, charset: str | None) -> str:
    if charset:
        try:
            codecs.lookup(charset)
        except LookupError:
            pass
        else:
            return content.decode(charset, errors="replace")
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Brazilian legacy stacks send Windows-1252 undeclared: keep the row
        # with a mangled accent rather than lose it to a decode error.
        return content.decode("cp1252", errors="replace")


# ----------------------------------------------------------------- bodies
def _body_decoder(encoding: str) -> Any:
    """A zlib decompressor for *encoding*, None for an uncompressed body."""
    name = encoding.strip().lower()
    if name in ("", "identity"):
        return None
    if name in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if name == "deflate":
        return _Deflate()
    raise UnexpectedResponse(f"unsupported Content-Encoding {encoding!r} (expected gzip)")


class _Deflate:
    """A "deflate" body is zlib-wrapped by the RFC, raw from some servers: try both."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj()
        self._started = False
        self.unconsumed_tail = b""

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if not self._started:
            self._started = True
            try:
                return self._step(data, max_length)
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._step(data, max_length)

    def _step(self, data: bytes, max_length: int) -> bytes:
        out = self._inner.decompress(data, max_length)
        self.unconsumed_tail = self._inner.unconsumed_tail
        return out

    def flush(self) -> bytes:
        return self._inner.flush()


# ---------------------------------------------------------------- decoding
# Numbers no float holds (1e400 is inf, a 5,000-digit integer exceeds Python's
# int digit limit) and structures deeper than the decoder's recursion limit
# would fail the whole answer in json.loads. The fast path is plain json.loads;
# an answer holding a suspicious number, or failing to decode that way, goes
# through a decoder that keeps such numbers as text and decodes the rows one
# by one, so only the poisoned row is lost to the parser (kept as a reject).
# One pass over the bytes folds every digit to 0, E to e and drops "+", so
# two substring searches find a three-digit exponent or a 300-digit run. A
# regex over the answer cost four times json.loads itself, and str.translate
# is slower still on text with accents; bytes.translate is a table lookup.
# A false alarm (text like "1e000") only takes the tolerant decoder, which
# gives the same result.
_SUSPECT_FOLD = bytes.maketrans(b"123456789E", b"000000000e")
_FLOAT_DIGITS = 308  # an integer of more digits is beyond every float
_LONG_RUN = b"0" * 300


def _suspect_number(text: str) -> bool:
    """A number that might not fit a float: an exponent of 3 digits, or 300 digits."""
    folded = text.encode("utf-8", "surrogatepass").translate(_SUSPECT_FOLD, b"+")
    return b"0e000" in folded or _LONG_RUN in folded


_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRUCTURE = re.compile(r'[\[\]{}"]')
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_PLATE_IN_TEXT = re.compile(r'"placa"\s*:\s*"([^"\\]{1,32})"')
TOO_DEEP = "too_deep"


def _int_or_text(text: str) -> int | OutOfRangeNumber:
    if len(text.lstrip("-")) > _FLOAT_DIGITS:
        return OutOfRangeNumber(text)
    return int(text)


def _float_or_text(text: str) -> float | OutOfRangeNumber:
    number = float(text)
    return number if number - number == 0.0 else OutOfRangeNumber(text)


_TOLERANT = json.JSONDecoder(parse_int=_int_or_text, parse_float=_float_or_text)


def _loads(text: str) -> object:
    """The answer's JSON; raises json.JSONDecodeError (retried) or
    UnexpectedResponse, nothing else."""
    if not _suspect_number(text):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError):
            pass  # too deep, or an integer past the digit limit: decode tolerantly
    try:
        return _TOLERANT.decode(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        pass
    return _loads_by_parts(text)


def _skip(text: str, index: int) -> int:
    match = _WHITESPACE.match(text, index)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _expect(text: str, index: int, char: str, what: str) -> int:
    if not text.startswith(char, index):
        raise json.JSONDecodeError(f"Expecting {what}", text, index)
    return _skip(text, index + 1)


def _loads_by_parts(text: str) -> Row:
    """The envelope object decoded member by member and each array element on
    its own: an element too deep to decode becomes a Reject holding its text."""
    index = _skip(text, 0)
    if not text.startswith("{", index):
        raise UnexpectedResponse("an answer nested deeper than the JSON decoder allows")
    index = _skip(text, index + 1)
    envelope: Row = {}
    if text.startswith("}", index):
        index += 1
    else:
        while True:
            quoted = _STRING.match(text, index)
            if quoted is None:
                raise json.JSONDecodeError("Expecting property name", text, index)
            key, index = str(json.loads(quoted.group())), quoted.end()
            index = _expect(text, _skip(text, index), ":", "':' delimiter")
            if text.startswith("[", index):
                envelope[key], index = _array_by_elements(text, index, key)
            else:
                envelope[key], index = _value_or_reject(text, index, key)
            index = _skip(text, index)
            if text.startswith(",", index):
                index = _skip(text, index + 1)
                continue
            index = _expect(text, index, "}", "',' delimiter")
            break
    if _skip(text, index) != len(text):
        raise json.JSONDecodeError("Extra data", text, index)
    return envelope


def _array_by_elements(text: str, index: int, key: str) -> tuple[list[object], int]:
    index = _skip(text, index + 1)
    items: list[object] = []
    if text.startswith("]", index):
        return items, index + 1
    while True:
        item, index = _value_or_reject(text, index, f"{key}[{len(items)}]")
        items.append(item)
        index = _skip(text, index)
        if text.startswith(",", index):
            index = _skip(text, index + 1)
            continue
        if text.startswith("]", index):
            return items, index + 1
        raise json.JSONDecodeError("Expecting ',' delimiter", text, index)


def _value_or_reject(text: str, index: int, where: str) -> tuple[object, int]:
    try:
        return _TOLERANT.raw_decode(text, index)
    except RecursionError:
        end = _value_end(text, index)
    element = text[index:end]
    found = _PLATE_IN_TEXT.search(element)
    plate: str | None = None
    if found is not None:
        try:
            plate = canonical_plate(found.group(1))
        except InvalidPlate:
            plate = found.group(1)
    reject = Reject(
        TOO_DEEP,
        f"{where}: nested deeper than the JSON decoder allows; kept as text",
        element,
        plate,
    )
    return reject, end


def _value_end(text: str, index: int) -> int:
    """Where the array or object starting at *index* ends, without decoding it."""
    depth = 0
    position = index
    while True:
        match = _STRUCTURE.search(text, position)
        if match is None:
            raise json.JSONDecodeError("Unterminated value", text, index)
        char = match.group()
        if char == '"':
            string = _STRING.match(text, match.start())
            if string is None:
                raise json.JSONDecodeError("Unterminated string", text, match.start())
            position = string.end()
            continue
        depth += 1 if char in "[{" else -1
        position = match.end()
        if depth == 0:
            return position


# ----------------------------------------------------------------- windows
class Window(NamedTuple):
    """One history call's bounds, both inclusive, aware in the account's zone."""

    first: datetime
    last: datetime

    def as_body(self) -> dict[str, str]:
        return {
            "data_inicio": self.first.strftime(_WIRE_DATETIME),
            "data_fim": self.last.strftime(_WIRE_DATETIME),
        }


def _ceil_second(moment: datetime) -> datetime:
    if moment.microsecond:
        return moment.replace(microsecond=0) + _ONE_SECOND
    return moment


def _first_instant_reading(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which clocks in *tz* read *wall* or later.

    That is *wall* itself, its first occurrence when a DST fall-back repeats
    it, or the end of the gap when a spring-forward skips it.
    """
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = min(first, second), max(first, second)

    def reading(instant: datetime) -> datetime:
        return instant.astimezone(tz).replace(tzinfo=None)

    if reading(lo) >= wall:
        return lo
    # *wall* falls in a gap: the two readings straddle the transition instant.
    lo_s, hi_s = 0, int((hi - lo).total_seconds())
    while lo_s < hi_s:
        mid = (lo_s + hi_s) // 2
        if reading(lo + timedelta(seconds=mid)) >= wall:
            hi_s = mid
        else:
            lo_s = mid + 1
    return lo + timedelta(seconds=lo_s)


def split_window(start: datetime, end: datetime, tz: ZoneInfo) -> list[Window]:
    """Split the half-open span ``[start, end)`` into history calls.

    Naive datetimes are local times of *tz*; aware ones are converted.

    Seam rule: the provider's ``data_inicio``/``data_fim`` are taken as
    inclusive at both ends, to the second (the same reading as its ``data``
    day query, 00:00:00 through 23:59:59), so each window ends one second
    before the next one starts. Every second of ``[start, end)`` is asked for
    exactly once, with no gap and no overlap.

    Each window lasts at most 24 h both in elapsed time and on the wall
    clock, because the provider compares local times that carry no offset: on
    a DST change day the window is cut at the smaller of the two. In the hour
    a DST fall-back repeats, local strings are ambiguous and the provider may
    answer rows of that hour twice; the collector deduplicates on
    ``(placa, data_transmissao)`` anyway.
    """
    lo = _ceil_second(start if start.tzinfo else start.replace(tzinfo=tz)).astimezone(UTC)
    hi = _ceil_second(end if end.tzinfo else end.replace(tzinfo=tz)).astimezone(UTC)
    if hi < lo:
        raise ValueError(f"window end {end.isoformat()} is before its start {start.isoformat()}")
    windows: list[Window] = []
    while lo < hi:
        wall = lo.astimezone(tz).replace(tzinfo=None, fold=0)
        nxt = min(hi, lo + MAX_WINDOW, _first_instant_reading(wall + MAX_WINDOW, tz))
        windows.append(Window(lo.astimezone(tz), (nxt - _ONE_SECOND).astimezone(tz)))
        lo = nxt
    return windows


# ----------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class History:
    """Answer of ``/ultimasposicoesterminal``: the terminal block and its rows.

    ``terminal`` is None when the provider had no data (it sends no block then).
    """

    terminal: Row | None
    rows: list[Any]
    """The provider's rows; see :func:`_rows` for what else may sit among them."""


@dataclass(slots=True)
class ClientStats:
    """What one client has done so far; the CLI prints :meth:`summary`."""

    calls: Counter[str] = field(default_factory=Counter)
    """Logical calls per endpoint path (a 60 h window counts 3)."""
    requests: int = 0
    """HTTP requests sent, retries included."""
    retries: int = 0
    failures: int = 0
    """Calls that ended in an error (after their retries, if any)."""
    rate_limited: int = 0
    """429 answers received."""
    retry_after_seconds: float = 0.0
    """Total wait the provider asked for through ``Retry-After``."""
    bytes_received: int = 0
    """Bytes read from the wire (compressed, when the answer was)."""
    bytes_decoded: int = 0
    """Bytes the answers decompressed to, as far as they were read."""

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def summary(self) -> str:
        return f"API calls {self.total_calls}, retries {self.retries}"


@dataclass(slots=True)
class _Call:
    """Book-keeping for one logical call across its attempts."""

    path: str
    deadline: float
    attempts: int = 0
    failed_at: float = 0.0
    last_cause: str = ""


# ------------------------------------------------------------------ client
class EtracClient:
    """The eTrac API over one ``httpx.AsyncClient``; use it as ``async with``.

    Safe to share between asyncio tasks: the limiter paces them together.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        key: str | SecretStr,
        *,
        tz: ZoneInfo | str = "America/Sao_Paulo",
        timeouts: float | tuple[float, float] = 30.0,
        max_attempts: int = 5,
        total_timeout: float | None = None,
        limiter: RateLimiter | None = None,
        wait_initial: float = 0.5,
        wait_max: float = 30.0,
        wait_jitter: float = 1.0,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """
        Args:
            base_url: API root including ``/monitoramento``.
            user: account e-mail (HTTP Basic user).
            key: API key (HTTP Basic password); never logged nor shown.
            tz: the account's time zone; history windows are sent in it.
            timeouts: ``read`` seconds (connect is then ``min(10, read)``),
                or ``(connect, read)``.
            max_attempts: attempts per call, the first one included.
            total_timeout: seconds one call may spend on requests and
                backoffs, retries included (rate-limiter queueing excluded).
                Defaults to ``max(300, max_attempts * (connect + read))``.
            limiter: shared pacing; defaults to an in-process
                :class:`PyrateLimiter` at 5 requests/s, owned by this client.
            wait_initial, wait_max, wait_jitter: stamina's backoff knobs.
            max_answer_bytes: the largest answer accepted once decompressed;
                a larger one is :class:`AnswerTooLarge`, not retried.
            transport: an httpx transport, for tests.
        """
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s):// URL")
        if parts.username or parts.password:
            # Refuse rather than echo: the URL would end up in logs and reprs.
            raise ValueError("put the credentials in user/key, not in base_url")
        secret = key.get_secret_value() if isinstance(key, SecretStr) else key
        if not user or not secret:
            raise MissingCredentials
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        connect, read = (
            (min(10.0, float(timeouts)), float(timeouts))
            if isinstance(timeouts, int | float)
            else (float(timeouts[0]), float(timeouts[1]))
        )
        self._base_url = base_url.rstrip("/")
        self._base_path = parts.path.rstrip("/")
        self._user = user
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.max_attempts = max_attempts
        self.max_answer_bytes = max_answer_bytes
        self.total_timeout = (
            total_timeout
            if total_timeout is not None
            else max(DEFAULT_TOTAL_TIMEOUT, max_attempts * (connect + read))
        )
        self._owned_limiter: PyrateLimiter | None = None
        if limiter is None:
            limiter = self._owned_limiter = PyrateLimiter(DEFAULT_RATE_LIMIT)
        self._limiter = limiter
        self._wait = (wait_initial, wait_max, wait_jitter)
        self.stats = ClientStats()
        self._http = httpx.AsyncClient(
            base_url=self._base_url + "/",
            auth=httpx.BasicAuth(user, secret),
            timeout=httpx.Timeout(read, connect=connect),
            # Only the encodings _read_body decompresses itself, under the cap.
            headers={
                "Accept": "application/json",
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": "etrack",
            },
            transport=transport,
            follow_redirects=False,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        limiter: RateLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Self:
        """Build from :class:`etrack.config.Settings` (ETRAC_* variables).

        Without *limiter*, paces requests with an in-process
        :class:`PyrateLimiter` at ``ETRAC_RATE_LIMIT`` per second and
        ``ETRAC_RATE_SLEEP`` between requests.
        """
        if not settings.etrac_user or settings.etrac_key is None:
            raise MissingCredentials
        owned = (
            PyrateLimiter(settings.etrac_rate_limit, min_interval=settings.etrac_rate_sleep)
            if limiter is None
            else None
        )
        client = cls(
            settings.etrac_api_base,
            settings.etrac_user,
            settings.etrac_key,
            tz=settings.tz,
            timeouts=settings.timeouts,
            max_attempts=settings.etrac_max_attempts,
            max_answer_bytes=settings.etrac_max_answer_bytes,
            limiter=owned or limiter,
            transport=transport,
        )
        client._owned_limiter = owned
        return client

    def __repr__(self) -> str:
        return f"EtracClient(base_url={self._base_url!r}, user={self._user!r})"

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds of each HTTP request."""
        timeout = self._http.timeout
        assert timeout.connect is not None
        assert timeout.read is not None
        return (timeout.connect, timeout.read)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._owned_limiter is not None:
            self._owned_limiter.close()

    # ------------------------------------------------------------ endpoints
    async def latest_positions(self) -> list[Any]:
        """Latest position of every vehicle of the account's fleet."""
        return await self._post(LATEST_POSITIONS, None, _retorno)

    async def latest_position(self, placa: str) -> list[Any]:
        """Latest position of one vehicle (a list, normally of one row)."""
        return await self._post(LATEST_POSITION, {"placa": _plate(placa)}, _retorno)

    async def history_day(self, placa: str, day: date) -> History:
        """Every position of one local day, as the provider's ``data`` query."""
        body = {"placa": _plate(placa), "data": day.strftime("%d/%m/%Y")}
        return await self._post(HISTORY, body, _history)

    async def history_window(self, placa: str, start: datetime, end: datetime) -> History:
        """Positions stamped in ``[start, end)``, in calls of at most 24 h.

        See :func:`split_window` for the seam rule. Rows come in call order;
        ``terminal`` is the first one any call returned.
        """
        plate = _plate(placa)
        terminal: Row | None = None
        rows: list[Any] = []
        for window in split_window(start, end, self.tz):
            part = await self._post(HISTORY, {"placa": plate, **window.as_body()}, _history)
            terminal = terminal or part.terminal
            rows.extend(part.rows)
        return History(terminal, rows)

    async def trip_summaries(self, placa: str, day: date) -> list[Any]:
        """The provider's own trip summaries of one local day."""
        body = {"placa": _plate(placa), "data": day.strftime("%d-%m-%Y")}
        return await self._post(TRIPS, body, _retorno)

    # ------------------------------------------------------------ machinery
    async def _post(
        self, endpoint: str, body: dict[str, str] | None, extract: Callable[[Row | None], T]
    ) -> T:
        """One logical call with retries.

        *extract* turns the envelope (None: "the provider has no data") into
        the result; it runs inside the attempt so that a well-formed JSON of
        the wrong shape is retried like a truncated one.
        """
        call = _Call(
            path=self._base_path + endpoint, deadline=time.monotonic() + self.total_timeout
        )
        self.stats.calls[endpoint] += 1
        try:
            async for attempt in stamina.retry_context(
                on=lambda exc: self._retry_decision(call, exc),
                attempts=self.max_attempts,
                timeout=None,  # the budget is call.deadline, which skips limiter queueing
                wait_initial=self._wait[0],
                wait_max=self._wait[1],
                wait_jitter=self._wait[2],
            ):
                with attempt:
                    return await self._attempt(call, endpoint, body, extract)
        except _Retryable as exc:
            self.stats.failures += 1
            raise ApiUnavailable(call.path, call.attempts, exc.cause) from exc
        except ProviderError:
            self.stats.failures += 1
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_decision(self, call: _Call, exc: Exception) -> bool | float:
        """stamina's hook: False stops, True backs off, a float waits that long."""
        if not isinstance(exc, _Retryable) or call.attempts >= self.max_attempts:
            return False
        now = time.monotonic()
        if exc.retry_after is None:
            return now < call.deadline
        if now + exc.retry_after >= call.deadline:
            exc.cause += f", longer than the {self.total_timeout:g} s budget of one call"
            return False
        # Everyone sharing the limiter holds back, not just this task.
        self._limiter.penalize(exc.retry_after)
        self.stats.retry_after_seconds += exc.retry_after
        return exc.retry_after

    async def _attempt(
        self,
        call: _Call,
        endpoint: str,
        body: dict[str, str] | None,
        extract: Callable[[Row | None], T],
    ) -> T:
        queued = time.monotonic()
        await self._limiter.acquire()
        call.deadline += time.monotonic() - queued
        remaining = call.deadline - time.monotonic()
        if remaining <= 0:
            raise ApiUnavailable(
                call.path,
                call.attempts,
                f"{call.last_cause}; then out of the {self.total_timeout:g} s budget of one call",
            )
        call.attempts += 1
        if call.attempts > 1:
            self.stats.retries += 1
            # A 429 is how the adaptive pace learns the API's limit: expected,
            # not worth a warning in every cron log.
            throttled = "429" in call.last_cause
            log.log(
                logging.INFO if throttled else logging.WARNING,
                "eTrac POST %s: attempt %d of %d after %s (waited %.1f s)",
                call.path,
                call.attempts,
                self.max_attempts,
                call.last_cause,
                time.monotonic() - call.failed_at,
            )
        self.stats.requests += 1
        try:
            try:
                sent = time.monotonic()
                async with asyncio.timeout(remaining):
                    async with self._http.stream("POST", endpoint, json=body) as response:
                        content = await self._read_body(response, call.path)
                latency = time.monotonic() - sent
            except TimeoutError:
                raise ApiUnavailable(
                    call.path,
                    call.attempts,
                    f"no answer within the {self.total_timeout:g} s budget of one call",
                ) from None
            except _NOT_TRANSIENT as exc:
                raise ProviderError(f"cannot send POST {call.path}: {_describe(exc)}") from exc
            except httpx.ConnectError as exc:
                if _name_does_not_exist(exc):
                    host = self._http.base_url.host
                    base = self._http.base_url
                    # Scheme, host and path: a query string may carry a token.
                    shown = f"{base.scheme}://{base.host}{base.path}".rstrip("/")
                    raise ApiHostUnknown(host, shown) from None
                raise _Retryable(_describe(exc)) from exc
            except httpx.TransportError as exc:
                raise _Retryable(_describe(exc)) from exc
            except httpx.HTTPError as exc:
                # The rest of httpx's errors: no library error leaves the client.
                raise UnexpectedResponse(f"POST {call.path}: {_describe(exc)}") from exc
            log.debug("eTrac POST %s -> HTTP %d", call.path, response.status_code)
            try:
                envelope = self._interpret(response, content, call.path)
            except _Retryable as exc:
                if exc.throttled:
                    await self._limiter.record(
                        latency, throttled=True, retry_after_s=exc.retry_after
                    )
                raise
            if response.status_code < 500:
                # A 5xx says nothing about the pace; every other answer is a success for it.
                await self._limiter.record(latency, throttled=False)
            return extract(envelope)
        except _Retryable as exc:
            call.failed_at = time.monotonic()
            call.last_cause = exc.cause
            raise

    async def _read_body(self, response: httpx.Response, path: str) -> bytes:
        """The body, decompressed here one bounded step at a time: never more
        than *max_answer_bytes* plus one step (CHUNK_BYTES, or one network read
        of an uncompressed body) is held."""
        limit = self.max_answer_bytes
        try:
            preloaded = response.content
        except httpx.ResponseNotRead:
            pass
        else:
            # A transport that hands over a body already read and decoded
            # (httpx.MockTransport): nothing to stream.
            self.stats.bytes_received += len(preloaded)
            self.stats.bytes_decoded += len(preloaded)
            if len(preloaded) > limit:
                raise AnswerTooLarge(path, limit)
            return preloaded
        decoder = _body_decoder(response.headers.get("Content-Encoding", ""))
        declared = _as_int(response.headers.get("Content-Length"))
        if decoder is None and declared is not None and declared > limit:
            raise AnswerTooLarge(path, limit)
        parts: list[bytes] = []
        size = 0

        def keep(data: bytes) -> None:
            nonlocal size
            size += len(data)
            self.stats.bytes_decoded += len(data)
            if size > limit:
                raise AnswerTooLarge(path, limit)
            parts.append(data)

        try:
            async for raw in response.aiter_raw():
                self.stats.bytes_received += len(raw)
                if decoder is None:
                    keep(raw)
                    continue
                data = decoder.decompress(raw, CHUNK_BYTES)
                while data:
                    keep(data)
                    data = decoder.decompress(decoder.unconsumed_tail, CHUNK_BYTES)
            if decoder is not None:
                keep(decoder.flush())
        except zlib.error as exc:
            raise UnexpectedResponse(f"POST {path}: undecodable compressed body ({exc})") from None
        return b"".join(parts)

    def _interpret(self, response: httpx.Response, content: bytes, path: str) -> Row | None:
        """Map one HTTP answer to its envelope, None (no data), or an error."""
        status = response.status_code
        if status in (401, 403):
            raise AuthenticationError(status)
        if status == 429:
            self.stats.rate_limited += 1
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            after = f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""
            raise _Retryable(f"HTTP 429{after}", retry_after=retry_after, throttled=True)
        if status >= 500 or status == 408:
            raise _Retryable(f"HTTP {status}")
        if status == 204:
            return None
        text = _decode(content, response.charset_encoding)
        try:
            body = _loads(text)
        except json.JSONDecodeError as exc:
            if status >= 400:
                raise UnexpectedResponse(f"HTTP {status} from POST {path}, not JSON") from None
            raise _Retryable(
                f"malformed JSON ({exc.msg} at char {exc.pos} of {len(text)})"
            ) from None
        if not isinstance(body, dict):
            if status >= 400:
                raise UnexpectedResponse(f"HTTP {status} from POST {path}, not an object")
            raise _Retryable(f"malformed JSON (a {type(body).__name__}, not an object)")
        code = _as_int(body.get("code_header"))
        if code is not None and code in (401, 403):
            raise AuthenticationError(code)
        if code == 429:
            self.stats.rate_limited += 1
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            raise _Retryable("code_header 429", retry_after=retry_after, throttled=True)
        if code is not None and code >= 500:
            raise _Retryable(f"code_header {code}")
        erro = body.get("erro")
        if erro:
            kind = _classify(str(erro))
            if kind is None:
                # "Nenhum registro" beside real rows: the rows win, never dropped.
                return body if _carries_rows(body) else None
            raise kind(str(erro), code, path)
        if status >= 400:
            raise UnexpectedResponse(f"HTTP {status} from POST {path} without an erro message")
        return body


_NO_SUCH_NAME = {
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
}


def _name_does_not_exist(exc: BaseException) -> bool:
    """Whether a connect error comes from DNS saying the name does not exist
    (EAI_NONAME), not from a resolver that is down for now (EAI_AGAIN)."""
    seen: BaseException | None = exc
    for _ in range(8):  # the chain httpx -> httpcore -> socket is three long
        if seen is None:
            return False
        if isinstance(seen, socket.gaierror):
            return seen.errno in _NO_SUCH_NAME
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: httpx.HTTPError) -> str:
    """Exception class first (ConnectTimeout vs ReadTimeout); httpx messages carry no URL."""
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _plate(placa: str) -> str:
    plate = placa.strip()
    if not plate:
        raise ValueError("placa must not be empty")
    return plate


def _carries_rows(body: Row) -> bool:
    return any(isinstance(body.get(key), list | dict) and body[key] for key in _ROW_KEYS)


_ROW_KEYS = ("retorno", "posicoes")


def _rows(envelope: Row | None, key: str) -> list[Any]:
    """The rows under *key*. An element that is not an object (or a Reject the
    decoder made of one too deep) is handed on: the parser rejects that
    element alone, its neighbours are stored."""
    if envelope is None:
        return []
    if key not in envelope:
        # Returning [] here would silently store nothing for a day with data.
        raise _Retryable(f"malformed answer (no {key!r})")
    value = envelope[key]
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise _Retryable(f"malformed answer ({key!r} is not a list of objects)")


def _retorno(envelope: Row | None) -> list[Any]:
    return _rows(envelope, "retorno")


def _history(envelope: Row | None) -> History:
    if envelope is None:
        return History(None, [])
    terminal = envelope.get("terminal")
    return History(terminal if isinstance(terminal, dict) else None, _rows(envelope, "posicoes"))
