"""`fetch-latest --loop`: fetch every N seconds until told to stop.

Survives outages: an unreachable API or database is logged and retried at the
next tick. SIGTERM/SIGINT stop the loop after the current fetch has finished
its write (the fetch is never cancelled half-way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
import psycopg
from psycopg_pool import PoolTimeout

from etrack import db
from etrack.collector import Collector, RunSummary, open_collector
from etrack.etrac.client import ApiUnavailable
from etrack.settings import Settings

logger = logging.getLogger("etrack.loop")

# Failures that are worth waiting out; anything else (bad credentials, an
# outdated schema, a bug) ends the loop so the supervisor sees it.
TRANSIENT = (
    db.DatabaseUnavailable,
    psycopg.OperationalError,
    PoolTimeout,
    ApiUnavailable,
    httpx.TransportError,
)


def run_forever(settings: Settings, *, interval: float, database: Callable[[], db.Target]) -> None:
    asyncio.run(_run(settings, interval=interval, database=database))


async def _run(settings: Settings, *, interval: float, database: Callable[[], db.Target]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    cycle = 0
    async with AsyncExitStack() as stack:
        collector: Collector | None = None
        while not stop.is_set():
            cycle += 1
            started = time.monotonic()
            try:
                if collector is None:
                    target = await asyncio.to_thread(database)
                    collector = await stack.enter_async_context(open_collector(settings, target))
                collector.summary = RunSummary()
                # Shielded: a stop signal lets the current write finish.
                await asyncio.shield(collector.fetch_latest())
                print(f"cycle {cycle}: {collector.summary.line()}", flush=True)
            except TRANSIENT as exc:
                logger.warning(
                    "cycle %d failed (%s: %s); next try in %.0f s",
                    cycle,
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                    interval,
                )
                print(f"cycle {cycle}: failed ({type(exc).__name__}), retrying", flush=True)
            remaining = max(0.0, interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=remaining)
    print(f"stopped after {cycle} cycle(s)", file=sys.stderr, flush=True)
