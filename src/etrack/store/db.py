"""Where the database is, and connections to it.

Target, in order: DATABASE_URL, else the PG* variables, else the embedded
PostgreSQL in the data directory (started on demand). Every connection gets
the session options of `session_options` (search_path set to the etrack
schema, so the SQL of sql/*.sql and the migrations uses unqualified names;
UTC), whoever opens it.

This is the boundary where PostgreSQL outages become `DatabaseUnavailable`:
a failed connect, a pool that hands out no connection in time, and a
connection lost while in use inside `connection()` or a pool's
`connection()` block. SQL errors (a lock timeout, a constraint) are left as
they are: they are not outages.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from etrack.config import Settings
from etrack.errors import DatabaseUnavailable
from etrack.logs import redact
from etrack.store import embedded

logger = logging.getLogger("etrack.store.db")

EMBEDDED_DATABASE = "etrack"

Conn: TypeAlias = psycopg.Connection[tuple[Any, ...]]
AsyncConn: TypeAlias = psycopg.AsyncConnection[tuple[Any, ...]]

# SQLSTATEs that mean the server went away (class 08: connection exception;
# 57P01-03: shut down, crashed, not accepting connections yet).
_OUTAGE_STATES = ("57P01", "57P02", "57P03")


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved connection target. `conninfo` may hold a password: never log it."""

    conninfo: str
    schema: str
    embedded: bool

    def describe(self) -> str:
        return describe_conninfo(self.conninfo)

    def __repr__(self) -> str:
        return f"Target({self.describe()!r}, schema={self.schema!r}, embedded={self.embedded})"


def describe_conninfo(conninfo: str) -> str:
    """host:port/dbname (user) without any password, for messages."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "an unparseable connection string"
    host = str(params.get("host") or "localhost")
    port = str(params.get("port") or "5432")
    place = f"socket {host}" if host.startswith("/") else f"{host}:{port}"
    extras = [f"database {params['dbname']}" if params.get("dbname") else ""]
    extras.append(f"user {params['user']}" if params.get("user") else "")
    described = ", ".join(e for e in extras if e)
    return f"{place} ({described})" if described else place


def resolve_target(settings: Settings, *, start_embedded: bool = True) -> Target:
    if settings.database_url is not None:
        conninfo = settings.database_url.get_secret_value()
        return Target(conninfo=conninfo, schema=settings.etrac_schema, embedded=False)
    if not settings.uses_embedded_database:
        conninfo = make_conninfo(
            "",
            host=settings.pghost,
            port=settings.pgport,
            dbname=settings.pgdatabase,
            user=settings.pguser,
            password=settings.pgpassword.get_secret_value() if settings.pgpassword else None,
        )
        return Target(conninfo=conninfo, schema=settings.etrac_schema, embedded=False)
    if not start_embedded:
        current = embedded.status(settings.etrack_data_dir)
        if current.url is None:
            raise DatabaseUnavailable(
                f"the embedded PostgreSQL in {current.pgdata} is not running (etrack db start)"
            )
        return Target(_embedded_db_url(current.url), settings.etrac_schema, embedded=True)
    # EmbeddedError is a DatabaseUnavailable: it goes up as it is.
    server_url = embedded.start(settings.etrack_data_dir)
    _ensure_embedded_database(server_url)
    return Target(_embedded_db_url(server_url), settings.etrac_schema, embedded=True)


def _embedded_db_url(server_url: str) -> str:
    parts = urlsplit(server_url)
    return parts._replace(path=f"/{EMBEDDED_DATABASE}").geturl()


def _ensure_embedded_database(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
        ).fetchone()
        if exists:
            return
        # Two commands may race to create it; the loser's error is harmless.
        with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(EMBEDDED_DATABASE)))


INTERACTIVE_WORK_MEM = "32MB"
"""work_mem of interactive sessions (the web): a month's fleet report sorts
and groups a few hundred thousand small rows, which spilled to disk at the
default 4 MB. At most the web pool's size (10) sessions per process hold it,
each for one sort of one request."""


def session_options(schema: str, *, interactive: bool = False) -> str:
    """The `options` every etrack session runs with: the schema, UTC, and JIT
    off. etrack's queries are short (an index range, one day, a month of daily
    rows); JIT only pays for long analytic scans, and on a new partition
    without statistics PostgreSQL 15 was measured spending 431 ms of a 476 ms
    fleet query compiling.

    *interactive* sessions (the web) also get INTERACTIVE_WORK_MEM and custom
    plans only: psycopg prepares a statement after a few runs, and the generic
    plan PostgreSQL then caches misjudges a date range (150 rows instead of
    60,000 for a month's report: a sort instead of a hash, 47 ms instead of
    28 ms at 2,000 vehicles)."""
    options = f"-c search_path={schema},public -c timezone=UTC -c jit=off"
    if interactive:
        options += f" -c work_mem={INTERACTIVE_WORK_MEM} -c plan_cache_mode=force_custom_plan"
    return options


def session_conninfo(
    target: Target, *, application_name: str = "etrack", interactive: bool = False
) -> str:
    """`target`'s connection string with the session options, for code that
    opens connections itself (pools, async connections). Holds the password."""
    return make_conninfo(
        target.conninfo,
        options=session_options(target.schema, interactive=interactive),
        application_name=application_name,
    )


def server_version(conn: Conn) -> str:
    """The server's PostgreSQL version, as `SHOW server_version` gives it."""
    row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def is_outage(exc: psycopg.OperationalError) -> bool:
    """The server cannot be reached or dropped the connection (not an SQL error)."""
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _OUTAGE_STATES


@contextlib.contextmanager
def outage_as_unavailable(target: Target, *, connecting: bool = False) -> Iterator[None]:
    """Turn an outage raised in the block into `DatabaseUnavailable` naming
    host:port (never the password); any other error goes up unchanged.
    `connecting`: the block only opens a connection, so every
    OperationalError (refused, timed out, bad password) means unavailable."""
    try:
        yield
    except PoolTimeout:
        raise DatabaseUnavailable(
            f"cannot reach PostgreSQL at {target.describe()}: no connection in time"
        ) from None
    except psycopg.OperationalError as exc:
        if not (connecting or is_outage(exc)):
            raise
        reason = outage_reason(str(exc)) or type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot reach PostgreSQL at {target.describe()}: {redact(reason, [target.conninfo])}"
        ) from None


# psycopg's prefixes before the reason itself: 'connection failed: ' and
# 'connection to server at "HOST", port N failed: ' (the place, which the
# message names already from the target).
_CONNECT_PREFIX = re.compile(
    r"^(?:connection failed: )?(?:connection to server (?:at|on) .*? failed: )?", re.DOTALL
)
# What psycopg says when something other than PostgreSQL answers the port.
_NOT_POSTGRES = "invalid response to SSL negotiation"


def outage_reason(message: str) -> str:
    """The whole reason of a psycopg connection error, on one line.

    The reason may itself hold ': ' ('received invalid response to SSL
    negotiation: H'), so only psycopg's known prefixes are cut; its hint
    lines ('Is the server running on that host...') are kept after a ';'.
    """
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    first = _CONNECT_PREFIX.sub("", lines[0], count=1).strip() or lines[0]
    reason = "; ".join([first, *lines[1:]])
    if _NOT_POSTGRES in reason:
        reason += " (something other than PostgreSQL answers on that port)"
    return reason


def connect(target: Target, *, autocommit: bool = False) -> Conn:
    """One connection with the etrack session options, or DatabaseUnavailable."""
    with outage_as_unavailable(target, connecting=True):
        return psycopg.connect(
            target.conninfo,
            autocommit=autocommit,
            options=session_options(target.schema),
            connect_timeout=10,
            application_name="etrack",
        )


@contextlib.contextmanager
def connection(target: Target, *, autocommit: bool = False) -> Iterator[Conn]:
    """A connection for the block (committed at its end unless autocommit);
    an outage inside the block is DatabaseUnavailable too."""
    conn = connect(target, autocommit=autocommit)
    try:
        with outage_as_unavailable(target), conn:
            yield conn
    finally:
        conn.close()


async def connect_async(
    target: Target, *, autocommit: bool = True, application_name: str = "etrack"
) -> AsyncConn:
    """One async connection with the etrack session options, or DatabaseUnavailable."""
    with outage_as_unavailable(target, connecting=True):
        return await psycopg.AsyncConnection.connect(
            session_conninfo(target, application_name=application_name),
            autocommit=autocommit,
            connect_timeout=10,
        )


class Pool(ConnectionPool[Conn]):
    """A ConnectionPool whose `connection()` raises DatabaseUnavailable on an
    outage (no connection in time, or one lost inside the block)."""

    def __init__(self, target: Target, **options: Any) -> None:
        self.target = target
        super().__init__(session_conninfo(target), **options)

    @contextlib.contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Conn]:
        with outage_as_unavailable(self.target), super().connection(timeout) as conn:
            yield conn


class AsyncPool(AsyncConnectionPool[AsyncConn]):
    """An AsyncConnectionPool whose `connection()` raises DatabaseUnavailable
    on an outage, like `Pool`."""

    def __init__(
        self,
        target: Target,
        *,
        application_name: str = "etrack",
        interactive: bool = False,
        **options: Any,
    ) -> None:
        self.target = target
        super().__init__(
            session_conninfo(target, application_name=application_name, interactive=interactive),
            **options,
        )

    @contextlib.asynccontextmanager
    async def connection(
        self,
        timeout: float | None = None,  # noqa: ASYNC109  (the overridden method's signature)
    ) -> AsyncIterator[AsyncConn]:
        with outage_as_unavailable(self.target):
            async with super().connection(timeout) as conn:
                yield conn


def make_pool(target: Target, *, min_size: int = 1, max_size: int = 4) -> Pool:
    """An opened pool, or DatabaseUnavailable when the server does not answer."""
    # A short checkout timeout: during an outage callers fail fast and retry
    # on their own schedule instead of hanging.
    pool = Pool(
        target,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=15,
        kwargs={"connect_timeout": 10},
        check=ConnectionPool.check_connection,
    )
    try:
        pool.open(wait=True, timeout=15)
    except PoolTimeout:
        pool.close()
        # Report the real cause with one direct attempt.
        connect(target).close()
        raise DatabaseUnavailable(f"cannot reach PostgreSQL at {target.describe()}") from None
    return pool


_T = TypeVar("_T")


def read_ahead(
    target: Target,
    produce: Callable[[Conn], Iterator[_T]],
    *,
    depth: int = 2,
    name: str = "etrack-reader",
) -> Generator[_T, None, None]:
    """The items of `produce(conn)`, made ahead on a thread with a connection
    of its own, so PostgreSQL reads the next batch while the caller works on
    the current one (routes, events). At most `depth` items wait; an error
    of the thread is raised in the caller's; closing the generator stops
    the thread."""
    items: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: int, value: object) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def run() -> None:
        try:
            with connection(target, autocommit=True) as conn:
                for item in produce(conn):
                    if not put(_ITEM, item):
                        return
            put(_END, None)
        except BaseException as exc:  # raised again in the consumer's thread
            put(_ERROR, exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == _ITEM:
                yield value
            elif kind == _ERROR:
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join()


_ITEM, _END, _ERROR = 0, 1, 2


class WriteBehind(Generic[_T]):
    """Items written on a thread with a connection of its own, in the order
    put, so PostgreSQL stores one batch while the caller computes the next
    (the visits). At most `depth` items wait; an error of the thread is
    raised by the next `put` and by `close`, which waits for the rest."""

    def __init__(
        self,
        target: Target,
        write: Callable[[Conn, _T], None],
        *,
        depth: int = 2,
        name: str = "etrack-writer",
    ) -> None:
        self._items: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._target = target
        self._write = write
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with connection(self._target, autocommit=True) as conn:
                while True:
                    kind, item = self._items.get()
                    if kind == _END:
                        return
                    self._write(conn, item)
        except BaseException as exc:  # raised again in the caller's thread
            self._error = exc
            # Unblock a caller waiting on a full queue: nothing more is written.
            while True:
                try:
                    kind, _ = self._items.get_nowait()
                except queue.Empty:
                    break

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _offer(self, kind: int, item: object) -> bool:
        """Queue it while the thread lives (a full queue is waited on); False if it died."""
        while self._thread.is_alive():
            try:
                self._items.put((kind, item), timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def put(self, item: _T) -> None:
        if not self._offer(_ITEM, item):
            self._raise()
            raise RuntimeError("the writer thread has stopped")

    def close(self) -> None:
        """Wait for every item put to be written; raise the thread's error."""
        self._offer(_END, None)
        self._thread.join()
        self._raise()

    def __enter__(self) -> WriteBehind[_T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
