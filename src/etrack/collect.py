"""The fetch steps: API answer -> records -> batch upsert, and the fetch loop.

Each function fetches one thing, parses and flags it, and stores it; the CLI,
the jobs and the web only call these. HTTP is async (many plates at once under
one rate limit); database writes are plain psycopg calls run in a worker
thread so they overlap with the next requests.

`fetch-latest --loop` (:func:`run_forever`) survives outages: an unreachable
API or database is logged and retried at the next tick. Latest positions
fetched while the database is down go to a bounded disk spool
(`etrack.spool`) and are written, oldest first, when it answers again.
SIGTERM/SIGINT stop the loop after the current fetch has finished its write
(the fetch is never cancelled half-way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from etrack.config import DEFAULT_ACCOUNT, Settings
from etrack.errors import DatabaseUnavailable, UnexpectedResponse, is_transient
from etrack.model import VALID, Position, ProviderTrip, Reject, Terminal
from etrack.provider import parse
from etrack.provider.client import (
    HISTORY,
    LATEST_POSITION,
    LATEST_POSITIONS,
    TRIPS,
    EtracClient,
    Row,
    split_window,
)
from etrack.quality import flag_sequence, plausibility
from etrack.spool import LatestSpool
from etrack.store import db
from etrack.store import positions as ingest

logger = logging.getLogger("etrack.collect")

# Checkout timeout while answers wait in the spool: the database is known to
# be down, so a cycle probes it briefly instead of stalling for the pool's 15 s.
SPOOL_PROBE_S = 2.0

T = TypeVar("T")


@dataclass(slots=True)
class RunSummary:
    """The one-line summary every fetch command ends with."""

    positions: ingest.IngestStats = field(default_factory=ingest.IngestStats)
    trips: ingest.TripStats = field(default_factory=ingest.TripStats)
    api_calls: int = 0
    retries: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        p, t = self.positions, self.trips
        parts = [
            f"received {p.received + t.received}",
            f"inserted {p.inserted + t.inserted}",
            f"already present {p.unchanged + p.duplicates + t.unchanged}",
        ]
        if p.updated or t.updated:
            parts.append(f"updated {p.updated + t.updated}")
        flags = ", ".join(f"{k} {v}" for k, v in sorted(p.flags.items()) if k != "duplicate")
        parts.append(f"flagged invalid {p.flagged}" + (f" ({flags})" if flags else ""))
        parts.append(f"rejected {p.rejected + t.rejected}")
        parts.append(f"API calls {self.api_calls}")
        parts.append(f"retries {self.retries}")
        parts.append(f"{time.monotonic() - self.started:.2f} s")
        return ", ".join(parts)


class Collector:
    """Fetch steps bound to one API client and one database."""

    def __init__(
        self,
        settings: Settings,
        client: EtracClient,
        pool: db.Pool,
        *,
        account: str = DEFAULT_ACCOUNT,
        spool: LatestSpool | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.pool = pool
        self.account = account
        # Only the --loop keeps latest answers through an outage; one-shot
        # commands and jobs fail as before (exit 3, retried by the worker).
        self.spool = spool
        self.checkout_timeout: float | None = None
        self.partitions = ingest.PartitionKeeper()
        self.summary = RunSummary()

    # -------------------------------------------------------------- helpers
    def _now(self) -> datetime:
        return datetime.now(UTC)

    @contextmanager
    def _conn(self) -> Iterator[db.Conn]:
        with self.pool.connection(self.checkout_timeout) as conn:
            yield conn

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def _sync_api_counts(self) -> None:
        stats = self.client.stats
        self.summary.api_calls = stats.total_calls
        self.summary.retries = stats.retries

    def parse_positions(
        self, rows: Sequence[object], *, use_stored_neighbours: bool
    ) -> tuple[list[Position], list[Reject]]:
        """Parse and flag one answer's rows."""
        parsed, rejects = parse.parse_positions(
            rows,
            self.settings.tz,
            now=self._now(),
            future_tolerance_s=self.settings.etrac_future_tolerance_s,
        )
        previous: dict[str, Position] | None = None
        if use_stored_neighbours and parsed:
            previous = self._stored_neighbours(parsed)
        flagged = flag_sequence(
            parsed,
            jump_speed_kmh=self.settings.etrac_jump_speed_kmh,
            previous=previous,
            limits=plausibility(self.settings),
        )
        return flagged, rejects

    def _stored_neighbours(self, parsed: Sequence[Position]) -> dict[str, Position]:
        plates = sorted({p.placa for p in parsed})
        newest = max(p.data_transmissao for p in parsed)
        with self._conn() as conn:
            found = ingest.last_valid_positions(conn, plates, before=newest)
        return {placa: stored_point(placa, *point) for placa, point in found.items()}

    def _store(
        self,
        positions: Sequence[Position],
        rejects: Sequence[Reject],
        endpoint: str,
        terminals: Sequence[Terminal],
    ) -> ingest.IngestStats:
        with self._conn() as conn:
            return ingest.store_positions(
                conn,
                positions,
                rejects,
                endpoint=endpoint,
                partitions=self.partitions,
                terminals=terminals,
                account=self.account,
                listed=endpoint == LATEST_POSITIONS,
            )

    async def _ingest_rows(
        self,
        rows: Sequence[object],
        endpoint: str,
        *,
        use_stored_neighbours: bool,
        terminal: Row | None = None,
    ) -> ingest.IngestStats:
        def parse_answer() -> tuple[list[Position], list[Reject], list[Terminal]]:
            positions, rejects = self.parse_positions(
                rows, use_stored_neighbours=use_stored_neighbours
            )
            terminals: list[Terminal] = []
            if terminal is not None:
                block = parse.parse_terminal(terminal)
                if isinstance(block, Terminal):
                    terminals.append(block)
                else:
                    rejects.append(block)
            return positions, rejects, terminals

        positions, rejects, terminals = await self._in_thread(parse_answer)
        stats = await self._in_thread(self._store, positions, rejects, endpoint, terminals)
        self.summary.positions.add(stats)
        self._sync_api_counts()
        return stats

    # ---------------------------------------------------------------- steps
    async def fetch_latest(self) -> ingest.IngestStats:
        """Latest position of every vehicle; new plates become terminals."""
        rows = await self.client.latest_positions()
        if self.spool is None:
            return await self._ingest_rows(rows, LATEST_POSITIONS, use_stored_neighbours=True)
        try:
            # Older answers first, so the jump check sees positions in time order.
            await self.drain_spool()
            return await self._ingest_rows(rows, LATEST_POSITIONS, use_stored_neighbours=True)
        except DatabaseUnavailable:
            try:
                await self._in_thread(self.spool.put, rows, self._now())
            except OSError as exc:
                # A full or unwritable disk must not turn an outage into a crash.
                logger.error("cannot spool the latest positions (%d rows lost): %s", len(rows), exc)
            raise

    async def drain_spool(self) -> int:
        """Store the spooled latest answers, oldest first; how many were stored.

        Each answer is removed only after its write committed: a failure half
        way leaves it (and the newer ones) for the next try, and a crash
        between the commit and the removal only writes it twice, which the
        upsert dedupes.
        """
        spool = self.spool
        if spool is None:
            return 0
        answers = await self._in_thread(spool.pending)
        self.checkout_timeout = SPOOL_PROBE_S if answers else None
        for answer in answers:
            await self._ingest_rows(answer.rows, LATEST_POSITIONS, use_stored_neighbours=True)
            await self._in_thread(spool.done, answer)
        self.checkout_timeout = None
        await self._in_thread(spool.drained)
        return len(answers)

    async def fetch_plate(self, placa: str) -> ingest.IngestStats:
        """One vehicle's latest position."""
        rows = await self.client.latest_position(placa)
        return await self._ingest_rows(rows, LATEST_POSITION, use_stored_neighbours=True)

    async def fetch_history_day(self, placa: str, day: date) -> ingest.IngestStats:
        """One plate's positions for one local day (one API call)."""
        answer = await self.client.history_day(placa, day)
        return await self._ingest_rows(
            answer.rows, HISTORY, use_stored_neighbours=False, terminal=answer.terminal
        )

    async def fetch_history_range(
        self, placa: str, start: datetime, end: datetime
    ) -> ingest.IngestStats:
        """Positions in [start, end), one <=24 h call and one batch at a time.

        The write of one window overlaps the request for the next; at most one
        batch is in flight, so memory stays flat whatever the range.
        """
        total = ingest.IngestStats()
        pending: asyncio.Task[ingest.IngestStats] | None = None
        try:
            for window in split_window(start, end, self.settings.tz):
                answer = await self.client.history_window(
                    placa, window.first, window.last + _SECOND
                )
                if pending is not None:
                    total.add(await pending)
                pending = asyncio.create_task(
                    self._ingest_rows(
                        answer.rows, HISTORY, use_stored_neighbours=False, terminal=answer.terminal
                    )
                )
            if pending is not None:
                total.add(await pending)
                pending = None
        finally:
            if pending is not None:
                # Let an in-flight write finish (or fail) before leaving.
                await asyncio.gather(pending, return_exceptions=True)
        return total

    async def fetch_trips(self, placa: str, day: date) -> ingest.TripStats:
        """The provider's trip summaries of one plate and day."""
        rows = await self.client.trip_summaries(placa, day)
        trips: list[ProviderTrip] = []
        rejects: list[Reject] = []
        for raw in rows:
            result = parse.parse_trip(raw, self.settings.tz)
            if isinstance(result, Reject):
                rejects.append(result)
            else:
                trips.append(result)

        def store() -> ingest.TripStats:
            with self._conn() as conn:
                return ingest.store_trips(conn, trips, rejects, tz=self.settings.tz, endpoint=TRIPS)

        stats = await self._in_thread(store)
        summary = self.summary.trips
        summary.received += stats.received
        summary.inserted += stats.inserted
        summary.updated += stats.updated
        summary.unchanged += stats.unchanged
        summary.rejected += stats.rejected
        self._sync_api_counts()
        return stats


_SECOND = timedelta(seconds=1)


def stored_point(placa: str, ts: datetime, latitude: float, longitude: float) -> Position:
    """A stored valid point as a Position, to serve as a jump-check neighbour."""
    return Position(
        placa=placa,
        data_transmissao=ts,
        latitude=latitude,
        longitude=longitude,
        velocidade=None,
        ignicao=None,
        odometro=None,
        odometro_can=None,
        horimetro=None,
        bateria=None,
        logradouro=None,
        descricao=None,
        frota=None,
        equipamento_serial=None,
        data_gravacao=None,
        placa_raw=placa,
        quality=VALID,
        raw={},
    )


@asynccontextmanager
async def open_collector(
    settings: Settings,
    target: db.Target,
    *,
    account: str = DEFAULT_ACCOUNT,
    spool: LatestSpool | None = None,
) -> AsyncIterator[Collector]:
    """A Collector with its own API client and connection pool; `settings`
    are the account's (etrack.config.Settings.for_account)."""
    client = EtracClient.from_settings(settings)
    pool = db.make_pool(target)
    try:
        yield Collector(settings, client, pool, account=account, spool=spool)
    finally:
        await client.aclose()
        await asyncio.to_thread(pool.close)


def run_forever(settings: Settings, *, interval: float, database: Callable[[], db.Target]) -> None:
    asyncio.run(_run(settings, interval=interval, database=database))


async def _run(settings: Settings, *, interval: float, database: Callable[[], db.Target]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    cycle = 0
    spool: LatestSpool | None = None
    if settings.etrack_spool_max_mb > 0:
        spool = LatestSpool.for_account(
            settings.etrack_data_dir, DEFAULT_ACCOUNT, max_mb=settings.etrack_spool_max_mb
        )
    async with AsyncExitStack() as stack:
        collector: Collector | None = None
        while not stop.is_set():
            cycle += 1
            started = time.monotonic()
            try:
                if collector is None:
                    target = await asyncio.to_thread(database)
                    collector = await stack.enter_async_context(
                        open_collector(settings, target, spool=spool)
                    )
                collector.summary = RunSummary()
                # Shielded: a stop signal lets the current write finish.
                await asyncio.shield(collector.fetch_latest())
                print(f"cycle {cycle}: {collector.summary.line()}", flush=True)
            except Exception as exc:
                # An outage is waited out, and so is one unreadable answer (a
                # bomb, garbage): the next cycle is a new answer, and ending the
                # loop would only make systemd restart into the same cycle.
                # Anything else (bad credentials, an outdated schema, a bug)
                # ends the loop so the supervisor sees it.
                if not (is_transient(exc) or isinstance(exc, UnexpectedResponse)):
                    raise
                logger.warning(
                    "cycle %d failed (%s: %s); next try in %.0f s",
                    cycle,
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                    interval,
                )
                kept = ""
                if spool is not None and isinstance(exc, DatabaseUnavailable) and len(spool):
                    kept = f", {len(spool)} answer(s) spooled"
                print(f"cycle {cycle}: failed ({type(exc).__name__}){kept}, retrying", flush=True)
            remaining = max(0.0, interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=remaining)
    print(f"stopped after {cycle} cycle(s)", file=sys.stderr, flush=True)
