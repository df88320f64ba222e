"""`etrack worker`: a Procrastinate worker running etrack's tasks and schedule.

Any number of workers, on any number of machines, share one PostgreSQL. At
start a worker puts back in the queue the jobs of dead workers
(etrack.jobs.runs.recover_stalled_jobs), and defers the daily runs a stopped
machine missed (etrack.jobs.daily.defer_catch_up).
Scheduled runs also log to rotated files under ETRACK_LOG_DIR.

A database outage does not end a worker. Procrastinate's worker stops by
itself when its connector loses PostgreSQL (a side task fails, and stopping
may fail too), so `run_worker` supervises it: after any stop it did not ask
for, it waits for the database with a capped exponential backoff (probing
with one connection, not with the App's pool) and then runs a new App and
worker, which recover stalled jobs and defer the missed daily runs again;
Procrastinate's periodic deferrer defers the newest missed tick of each
schedule (ticks older than its max delay, 10 minutes, are skipped: the
latest positions cannot be fetched late anyway). It logs once per state
change, never once per attempt. It gives up (exit 1) only when runs fail
again and again while the database answers: a bug or a broken installation,
not an outage. A permanent error (outdated schema, bad setting) ends it at
once with its own exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path

import psycopg
from psycopg_pool import PoolTimeout

from etrack.config import Settings
from etrack.errors import DatabaseUnavailable, EtrackError, is_transient
from etrack.jobs.app import open_app
from etrack.jobs.daily import defer_catch_up
from etrack.jobs.env import JobEnv
from etrack.jobs.names import BACKFILL_QUEUE, ETRACK_QUEUE
from etrack.jobs.runs import record_job, recover_stalled_jobs
from etrack.logs import RedactSecrets, secrets_of
from etrack.store import db

__all__ = [
    "GIVE_UP_AFTER",
    "LOG_FILES",
    "RECONNECT_FIRST_S",
    "RECONNECT_MAX_S",
    "StateListener",
    "remove_file_logging",
    "run_worker",
    "setup_file_logging",
]

logger = logging.getLogger("etrack.jobs.worker")

# File -> loggers writing to it (the seed's names).
LOG_FILES: dict[str, tuple[str, ...]] = {
    "fetch_latest.log": ("etrack.jobs.fetch_latest",),
    "compute_routes.log": ("etrack.jobs.daily", "etrack.trips"),
}
LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 5

# Waits between attempts to reach the database again: 1, 2, 4 ... 30 s, then
# every 30 s for as long as the outage lasts.
RECONNECT_FIRST_S = 1.0
RECONNECT_MAX_S = 30.0
# Failed runs in a row, with the database answering, before the worker gives
# up (exit 1); a run that lasted STEADY_S resets the count.
GIVE_UP_AFTER = 5
STEADY_S = 60.0

# Told each state change: "running", "reconnecting" (the database does not
# answer) or "restarting" (a run failed, the next one starts after a pause),
# with a reason for the last two. The web's embedded scheduler shows it.
StateListener = Callable[[str, str | None], None]


def setup_file_logging(settings: Settings) -> list[logging.Handler]:
    """Rotated log files of the scheduled runs; returns the handlers added."""
    folder = Path(settings.etrack_log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handlers: list[logging.Handler] = []
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for filename, names in LOG_FILES.items():
        handler = RotatingFileHandler(
            folder / filename,
            maxBytes=LOG_FILE_BYTES,
            backupCount=LOG_FILE_BACKUPS,
            encoding="utf-8",
        )
        handler.setFormatter(formatter)
        handler.addFilter(RedactSecrets(secrets_of(settings)))
        handler.setLevel(logging.INFO)
        for name in names:
            named = logging.getLogger(name)
            named.addHandler(handler)
            if named.getEffectiveLevel() > logging.INFO:
                named.setLevel(logging.INFO)
        handlers.append(handler)
    return handlers


class _QuietPoolRetries(logging.Filter):
    """psycopg's pools log a warning at each attempt to reconnect, several a
    second early in an outage: one line per pool every REPEAT_S is enough
    (the worker says itself when the database goes and comes back)."""

    REPEAT_S = 300.0

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("error connecting in") or not record.args:
            return True
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        pool = str(args[0])
        now = time.monotonic()
        if now - self._last.get(pool, -self.REPEAT_S) < self.REPEAT_S:
            return False
        self._last[pool] = now
        return True


POOL_LOGGER = "psycopg.pool"


class _OutageTracebacks(logging.Filter):
    """On Procrastinate's loggers: an error logged because PostgreSQL went
    away becomes one line without its traceback (the worker reports the
    outage itself), and is kept so that the supervisor knows why the
    Procrastinate worker stopped by itself (a failed side task is only logged)."""

    def __init__(self) -> None:
        super().__init__()
        self.last: BaseException | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _is_outage(exc):
            self.last = exc
            record.msg = " ".join(record.getMessage().split()) + " (PostgreSQL unreachable)"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def remove_file_logging(handlers: Iterable[logging.Handler]) -> None:
    for handler in handlers:
        for names in LOG_FILES.values():
            for name in names:
                logging.getLogger(name).removeHandler(handler)
        handler.close()


async def run_worker(
    env: JobEnv,
    *,
    concurrency: int,
    queues: list[str] | None = None,
    max_pool: int = 10,
    name: str = "etrack",
    install_signal_handlers: bool = True,
    on_state: StateListener | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (which let running jobs finish), or until
    cancelled: a host that owns the signals itself (the web server) passes
    install_signal_handlers=False and cancels the task to stop it.

    Rides out database outages of any length (see the module docstring);
    raises only a permanent error, or an EtrackError when it gives up."""
    handlers = setup_file_logging(env.settings)
    quiet = _QuietPoolRetries()
    logging.getLogger(POOL_LOGGER).addFilter(quiet)
    outages = _OutageTracebacks()
    # Filters act on the logger a record is logged on, not on its parents.
    procrastinate_loggers = [
        logging.getLogger(n)
        for n in ("procrastinate.worker", f"procrastinate.worker.{name}", "procrastinate.utils")
    ]
    for named in procrastinate_loggers:
        named.addFilter(outages)
    supervisor = _Supervisor(
        env,
        concurrency=concurrency,
        queues=queues,
        max_pool=max_pool,
        name=name,
        on_state=on_state,
        outages=outages,
    )
    try:
        if install_signal_handlers:
            with _on_stop_signal(supervisor.request_stop):
                await supervisor.run()
        else:
            await supervisor.run()
    finally:
        logging.getLogger(POOL_LOGGER).removeFilter(quiet)
        for named in procrastinate_loggers:
            named.removeFilter(outages)
        remove_file_logging(handlers)


@contextlib.contextmanager
def _on_stop_signal(callback: Callable[[], None]) -> Iterator[None]:
    """SIGINT/SIGTERM call `callback` once; a second signal has its default
    effect (a second Ctrl-C kills), as with Procrastinate's own handlers."""
    loop = asyncio.get_running_loop()
    stop_signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal() -> None:
        for number in stop_signals:
            loop.remove_signal_handler(number)
        callback()

    installed: list[signal.Signals] = []
    try:
        for number in stop_signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                # Not on Windows, nor outside the main thread: no handler there.
                loop.add_signal_handler(number, on_signal)
                installed.append(number)
        yield
    finally:
        for number in installed:
            loop.remove_signal_handler(number)


def _is_outage(exc: BaseException | None) -> bool:
    """Somewhere in the chain of causes, PostgreSQL did not answer.

    Procrastinate wraps psycopg's errors in its ConnectorException: the
    outage is its cause, not the error itself."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DatabaseUnavailable | PoolTimeout):
            return True
        if isinstance(exc, psycopg.OperationalError) and db.is_outage(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return "the worker stopped by itself"
    # Behind Procrastinate's "Database error." is psycopg's reason: say that.
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, DatabaseUnavailable | psycopg.OperationalError):
            exc = cause
            break
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _Supervisor:
    """Runs Procrastinate workers one after the other until asked to stop."""

    def __init__(
        self,
        env: JobEnv,
        *,
        concurrency: int,
        queues: list[str] | None,
        max_pool: int,
        name: str,
        on_state: StateListener | None,
        outages: _OutageTracebacks,
    ) -> None:
        self.env = env
        self.outages = outages
        self.concurrency = concurrency
        self.queues = queues
        self.max_pool = max_pool
        self.name = name
        self.on_state = on_state
        # Only workers that run the scheduled jobs schedule them: a fleet of
        # backfill-only workers would otherwise queue jobs nobody runs.
        self.scheduling = queues is None or ETRACK_QUEUE in queues
        self.state: str | None = None
        self.runs = 0
        self._stop = asyncio.Event()
        self._current: asyncio.Task[None] | None = None

    def request_stop(self) -> None:
        """Stop for good: a running worker lets its jobs finish first."""
        self._stop.set()
        if self._current is not None:
            # Procrastinate's worker stops gracefully when its run is cancelled.
            self._current.cancel()

    def _set(self, state: str, reason: str | None = None) -> bool:
        """Record a state; True when it changed (so the caller logs it)."""
        changed = state != self.state
        self.state = state
        if self.on_state is not None:
            self.on_state(state, reason)
        return changed

    async def run(self) -> None:
        failures = 0
        pause = RECONNECT_FIRST_S
        while not self._stop.is_set():
            started = time.monotonic()
            error: BaseException | None = None
            self.outages.last = None
            self._current = asyncio.create_task(self._one_run(), name=f"{self.name}-worker-run")
            try:
                await self._current
            except asyncio.CancelledError:
                if self._stop.is_set():
                    return
                raise  # the host cancelled us: it is stopping
            except EtrackError as exc:
                if not is_transient(exc):
                    raise  # an outdated schema, a bad setting: no retry fixes it
                error = exc
            except Exception as exc:
                error = exc
            finally:
                self._current = None
            if self._stop.is_set():
                return
            # Stopped by itself: a side task failed, and said why only in a log.
            error = error or self.outages.last
            if time.monotonic() - started >= STEADY_S:
                failures, pause = 0, RECONNECT_FIRST_S
            if _is_outage(error) or not await self._database_answers():
                await self._ride_out_outage(error)
                failures, pause = 0, RECONNECT_FIRST_S
                continue
            failures += 1
            if failures >= GIVE_UP_AFTER:
                raise EtrackError(
                    f"worker gave up after {failures} failed runs in a row while "
                    f"PostgreSQL answered; last: {_first_line(error)}"
                ) from error
            if self._set("restarting", _first_line(error)):
                logger.error(
                    "worker run ended: %s; restarting in %.0f s",
                    _first_line(error),
                    pause,
                    exc_info=error,
                )
            else:
                logger.warning("worker run ended again: %s", _first_line(error))
            await self._pause(pause)
            pause = min(RECONNECT_MAX_S, pause * 2)

    async def _one_run(self) -> None:
        async with open_app(self.env, schedule=self.scheduling, max_pool=self.max_pool) as app:
            await recover_stalled_jobs(app)
            if self.scheduling:
                await defer_catch_up(app)
            resumed = self.runs > 0
            self.runs += 1
            self._set("running")
            if resumed:
                logger.info("worker resumed: jobs and schedule running again")
            else:
                logger.info(
                    "worker started: concurrency %d, queues %s",
                    self.concurrency,
                    self.queues or "all",
                )
            tuning = self.env.tuning
            await app.run_worker_async(
                queues=self.queues or [ETRACK_QUEUE, BACKFILL_QUEUE],
                name=self.name,
                concurrency=self.concurrency,
                fetch_job_polling_interval=tuning.poll_s,
                update_heartbeat_interval=tuning.heartbeat_s,
                stalled_worker_timeout=tuning.stalled_after_s,
                worker_middleware=[record_job],
                # Ours (request_stop) tell a stop we asked for from one
                # Procrastinate makes by itself when the database goes away.
                install_signal_handlers=False,
            )

    async def _database_answers(self) -> bool:
        try:
            conn = await db.connect_async(self.env.target, autocommit=True)
        except DatabaseUnavailable:
            return False
        except Exception as exc:
            # A server still starting may refuse logins with another error.
            logger.debug("database probe failed: %s", _first_line(exc))
            return False
        await conn.close()
        return True

    async def _ride_out_outage(self, error: BaseException | None) -> None:
        """Wait until PostgreSQL answers again (or a stop is asked for)."""
        where = self.env.target.describe()
        if self._set("reconnecting", "database unreachable"):
            logger.warning(
                "PostgreSQL at %s unreachable (%s): worker paused, trying again every %.0f-%.0f s",
                where,
                _first_line(error) if error is not None else "the worker stopped",
                RECONNECT_FIRST_S,
                RECONNECT_MAX_S,
            )
        pause = RECONNECT_FIRST_S
        outage_started = time.monotonic()
        while not self._stop.is_set():
            await self._pause(pause)
            if self._stop.is_set():
                return
            if await self._database_answers():
                logger.warning(
                    "PostgreSQL at %s answers again after %.0f s: restarting the worker",
                    where,
                    time.monotonic() - outage_started,
                )
                return
            logger.debug("PostgreSQL at %s still unreachable", where)
            pause = min(RECONNECT_MAX_S, pause * 2)

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short by a stop request."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
