"""The jobs layer: Procrastinate worker, periodic schedule, daily run, backfill.

- `app`: the Procrastinate App bound to one database and the settings.
- `tasks`: the tasks and their schedule (fetch latest, daily, stalled-job recovery,
  backfill partitions and their routes).
- `runs`: every run of every job, recorded for `etrack jobs`.
- `daily`, `backfill`: the two long runs, each step callable alone.
- `ratelimit`: one request pace per eTrac account, shared through PostgreSQL.
- `worker`: `etrack worker` (catch-up at start, file logs).
- `cli`: the Typer commands, registered by `etrack.cli`.
"""
