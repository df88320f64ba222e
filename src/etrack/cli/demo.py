"""`etrack demo`: the whole product on one machine, with no account and no
database: an embedded PostgreSQL of its own, the built-in eTrac simulator, a
backfill of the last days, the worker with its schedule, and the web UI.

Each piece is the real one; the demo only wires them: the simulator stands in
for api.etrac.com.br, everything else is what a production install runs.
Fences around the simulated vehicles' stopping places (`etrack.simulator.fences`)
are imported after the backfill and their visits computed, so the Geofences and
Visits pages have something to show. Running it again reuses the data (the
backfill skips the days it has; the fences and visits come out unchanged).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from pydantic import SecretStr

from etrack.cli.common import echo, settings
from etrack.cli.jobs import backfill_here
from etrack.config import Settings
from etrack.errors import UsageError
from etrack.geofences.compute import VisitParams, compute_visits
from etrack.geofences.imports import parse_fences
from etrack.simulator import server as simulator
from etrack.simulator.fences import stop_fences
from etrack.simulator.fleet import Fleet
from etrack.store import db, embedded, migrations
from etrack.store import geofences as fence_store
from etrack.web.app import create_app

__all__ = ["DemoPlan", "demo_command", "import_stop_fences", "register", "run"]

logger = logging.getLogger("etrack.cli.demo")

DEMO_SEED = 42
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True, slots=True)
class DemoPlan:
    vehicles: int
    days: int
    host: str
    port: int
    data_dir: Path

    def range(self, today: date) -> tuple[date, date]:
        """The last `days` local days before today."""
        return today - timedelta(days=self.days), today - timedelta(days=1)


def demo_settings(
    base: Settings, plan: DemoPlan, simulator_url: str, user: str, key: str
) -> Settings:
    """The user's settings, pointed at the simulator and the demo's own embedded
    database (never at a server or account the user configured)."""
    return base.model_copy(
        update={
            "database_url": None,
            "pghost": None,
            "pgport": None,
            "pgdatabase": None,
            "pguser": None,
            "pgpassword": None,
            "etrack_data_dir": plan.data_dir,
            "etrac_api_base": simulator_url,
            "etrac_user": user,
            "etrac_key": SecretStr(key),
            # The simulator has no rate limit; a generous pace keeps the
            # 7-day backfill within seconds while still going through the limiter.
            "etrac_rate_limit": 60.0,
            "etrac_rate_sleep": 0.0,
            "disable_ui_scheduler": False,
        }
    )


@contextlib.contextmanager
def _simulator(vehicles: int) -> Iterator[tuple[str, str, str, Fleet]]:
    config = simulator.build_config(seed=DEMO_SEED, vehicles=vehicles, now=None, port=0)
    with simulator.run_in_thread(config) as handle:
        yield handle.base_url, handle.user, handle.key, handle.fleet


def import_stop_fences(
    current: Settings, target: db.Target, fleet: Fleet, first: date, last: date
) -> str:
    """Fences around the fleet's stopping places of first..last, stored
    (idempotent by name), and their visits computed: a line saying so."""
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    collection = stop_fences(fleet, days)
    fences = parse_fences(json.dumps(collection), "geojson", source="simulator", group=None)
    with db.connection(target, autocommit=True) as conn:
        counts, _changed = fence_store.upsert_fences(conn, fences)
    visits = compute_visits(target, None, first, last, VisitParams.from_settings(current))
    return (
        f"fences: {len(fences)} around the simulated stopping places "
        f"({counts.inserted} new, {counts.updated} updated); {visits.visits} visits"
    )


def run(
    base: Settings,
    plan: DemoPlan,
    *,
    say: Callable[[str], None],
    backfill: Callable[[Settings, db.Target, date, date], int],
) -> int:
    """Start everything, print the URL when ready, serve until Ctrl-C."""
    with _simulator(plan.vehicles) as (url, user, key, fleet):
        current = demo_settings(base, plan, url, user, key)
        say(f"eTrac simulator: {plan.vehicles} vehicles at {url}")
        target = db.resolve_target(current)
        migrations.upgrade(target)
        say(f"database: embedded PostgreSQL in {embedded.pgdata_path(plan.data_dir)}")
        today = datetime.now(UTC).astimezone(current.tz).date()
        first, last = plan.range(today)
        say(
            f"backfilling {first:%d/%m/%Y}..{last:%d/%m/%Y} (resumes where a previous demo stopped)"
        )
        code = backfill(current, target, first, last)
        if code != 0:
            say(f"the backfill ended with exit code {code}; serving what is there")
        say(import_stop_fences(current, target, fleet, first, last))
        app = create_app(current, target, scheduler=True)
        config = uvicorn.Config(
            app,
            host=plan.host,
            port=plan.port,
            log_level="warning",
            server_header=False,
            log_config=None,
        )
        server = _ReadyServer(
            config, on_ready=lambda: say(f"ready: http://{plan.host}:{plan.port}/")
        )
        try:
            server.run()
        finally:
            say("stopping: web UI, worker, simulator, database")
            embedded.stop(plan.data_dir)
    return 0


class _ReadyServer(uvicorn.Server):
    """uvicorn's server, telling when it accepts connections."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Like uvicorn's, minus re-raising the captured Ctrl-C after the
        # graceful shutdown: the demo then returns normally (exit 0).
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            self._on_ready()


def demo_command(
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port of the web UI.")
    ] = 5001,
    host: Annotated[str, typer.Option("--host", help="Address of the web UI.")] = "127.0.0.1",
    vehicles: Annotated[
        int, typer.Option("--vehicles", min=1, max=5000, help="Simulated fleet size.")
    ] = 25,
    days: Annotated[
        int, typer.Option("--days", min=1, max=60, help="Days to backfill before today.")
    ] = 7,
) -> None:
    """Everything on this machine, no account, no database: an embedded PostgreSQL of its
    own, the eTrac simulator, a backfill of the last days, the worker and the web UI.
    Prints the URL when ready; Ctrl-C stops everything; running it again reuses the data."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise UsageError("the demo serves simulated data without a login: keep --host on loopback")
    current = settings()
    plan = DemoPlan(
        vehicles=vehicles,
        days=days,
        host=host,
        port=port,
        data_dir=current.etrack_data_dir / "demo",
    )
    run(current, plan, say=echo, backfill=backfill_here)


def register(app: typer.Typer) -> None:
    """Add `demo` and `simulator` (the eTrac stand-in it runs) to the `etrack` app
    (once: calling again is harmless)."""
    commands = {info.name for info in app.registered_commands}
    if "demo" not in commands:
        app.command("demo")(demo_command)
    if "simulator" not in commands:
        app.command(
            "simulator", help="Run the built-in eTrac API simulator (for demos, tests, benchmarks)."
        )(simulator.command)
