"""Planner statistics for the month partitions of positions.

A new month's partition starts without statistics, and autovacuum analyzes it
only after enough rows changed (or never, when it is off). Until then the
planner guesses: on the first days of a month a query over the fleet can pick
a plan hundreds of times too slow, or cross `jit_above_cost` (JIT is off in
etrack's sessions, see etrack.store.db, but the plan stays bad). So the steps
that read what they just wrote (the daily run and the backfill before their
routes, the periodic latest fetch) call :func:`analyze_new_partitions`: one
catalog query when there is nothing to do, an ANALYZE (a sample of 30,000 rows,
not a scan) of each partition that holds rows but was never analyzed.
"""

from __future__ import annotations

from psycopg import sql

from etrack.store.db import Conn, Target, connection
from etrack.store.queries import query

__all__ = ["analyze_new_partitions", "analyze_new_partitions_at"]


def analyze_new_partitions(conn: Conn) -> list[str]:
    """ANALYZE every positions partition that holds rows and was never
    analyzed; the names analyzed. Idempotent: a second call finds none."""
    analyzed: list[str] = []
    for schema, name in conn.execute(query("stats_unanalyzed_partitions")).fetchall():
        part = sql.Identifier(str(schema), str(name))
        row = conn.execute(sql.SQL(query("stats_partition_has_rows")).format(part=part)).fetchone()
        if row is None or not row[0]:
            continue  # an empty month: nothing to learn yet
        conn.execute(sql.SQL(query("stats_analyze_partition")).format(part=part))
        analyzed.append(str(name))
    return analyzed


def analyze_new_partitions_at(target: Target) -> list[str]:
    """:func:`analyze_new_partitions` on a connection of its own."""
    with connection(target, autocommit=True) as conn:
        return analyze_new_partitions(conn)
