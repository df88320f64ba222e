"""The Procrastinate App of etrack, bound to one database and the settings.

`make_app(env, schedule=...)` builds an `EtrackApp` that loads etrack's tasks
(the blueprint of etrack.jobs.tasks), whose connector talks to the etrack
schema (Procrastinate's tables live there too: `etrack db upgrade` installs
them), and which carries the `JobEnv` (etrack.jobs.env) its tasks share.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from procrastinate import PsycopgConnector

from etrack.errors import SchemaNotCurrent
from etrack.jobs.env import EtrackApp, JobEnv
from etrack.jobs.tasks import blueprint
from etrack.store import db, migrations

__all__ = ["make_app", "open_app", "pool_sizes", "require_job_queue"]


def pool_sizes(concurrency: int) -> tuple[int, int]:
    """(collector pool, Procrastinate pool) sizes for `concurrency` jobs at once.

    Capped: jobs hold a connection only for short writes, and a few workers
    with a large concurrency must not exhaust the server's max_connections.
    """
    collector = min(concurrency, 8) + 1
    return collector, collector + 3


def make_app(env: JobEnv, *, schedule: bool = False, max_pool: int = 10) -> EtrackApp:
    """The App with etrack's tasks; `schedule` adds the periodic ones (only
    `etrack worker` needs them: a backfill's in-process worker must not
    schedule anything)."""
    connector = PsycopgConnector(
        conninfo=db.session_conninfo(env.target),
        min_size=1,
        max_size=max_pool,
        kwargs={"connect_timeout": 10},
    )
    app = EtrackApp(env=env, connector=connector)
    # No namespace: the task names are stored with every job (etrack.jobs.names).
    app.add_tasks_from(blueprint(env.settings, env.tuning, schedule=schedule), namespace="")
    return app


@asynccontextmanager
async def open_app(
    env: JobEnv, *, schedule: bool = False, max_pool: int = 10
) -> AsyncIterator[EtrackApp]:
    """An opened App; the shared resources of `env` are closed with it."""
    await asyncio.to_thread(require_job_queue, env.target)
    app = make_app(env, schedule=schedule, max_pool=max_pool)
    try:
        async with app.open_async():
            yield app
    finally:
        await env.aclose()


def require_job_queue(target: db.Target) -> None:
    """Refuse to run jobs on a database without Procrastinate's tables."""
    with db.connection(target, autocommit=True) as conn:
        installed = migrations.job_queue_installed(conn)
    if not installed:
        raise SchemaNotCurrent(
            f"the job queue is not installed in schema {target.schema!r} of "
            f"{target.describe()}: run `etrack db upgrade`"
        )
