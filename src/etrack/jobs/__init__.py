"""The jobs layer: Procrastinate worker, periodic schedule, daily run, backfill.

Its modules import one way only, from the bottom up:

- `names`: the queue, task and lock names stored with every job.
- `env`: what jobs run with (`JobEnv`, `JobTuning`), the App type that carries
  it (`EtrackApp`), and the queries a job runs through that App.
- `runs`: every run of every job, recorded for `etrack jobs`; stalled-job recovery.
- `accounts`: one piece of work for every eTrac account, each on its own budget.
- `daily`, `backfill`: the two long runs, each step callable alone.
- `tasks`: the tasks and their schedule, as a Procrastinate Blueprint.
- `app`: the App bound to one database and the settings, with those tasks.
- `worker`: `etrack worker` (catch-up at start, file logs).
"""
