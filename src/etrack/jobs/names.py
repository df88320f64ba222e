"""The names jobs are known by in the database: queues, tasks, locks.

They are part of the stored state (a queued job names its task, a running one
its lock), so they never change; every module of the jobs layer, and the web
and the command line that enqueue jobs, take them from here.
"""

from __future__ import annotations

__all__ = [
    "BACKFILL_PARTITION",
    "BACKFILL_QUEUE",
    "BACKFILL_ROUTES",
    "COMPUTE_VISITS",
    "DAILY",
    "DAILY_LOCK",
    "DAILY_SCHEDULED",
    "DELIVER_ALERT",
    "ETRACK_QUEUE",
    "FETCH_LATEST",
    "PRUNE_RETENTION",
    "RECOVER_STALLED",
    "REPORT_TICK",
    "SEND_REPORT",
    "VISITS_LOCK",
]

# `etrack` holds the scheduled jobs and the daily run, `backfill` the backfill
# partitions and their routes (a backfill's in-process worker only listens there).
ETRACK_QUEUE = "etrack"
BACKFILL_QUEUE = "backfill"

FETCH_LATEST = "etrack.fetch_latest"
DAILY_SCHEDULED = "etrack.daily_scheduled"
DAILY = "etrack.daily"
RECOVER_STALLED = "etrack.recover_stalled"
PRUNE_RETENTION = "etrack.prune_retention"
BACKFILL_PARTITION = "etrack.backfill_partition"
BACKFILL_ROUTES = "etrack.backfill_routes"
# One job per (rule, event): etrack.jobs.alerts.
DELIVER_ALERT = "etrack.deliver_alert"

# Scheduled reports (etrack.jobs.reports): the tick that queues the periods
# due, and one job per (schedule, period).
REPORT_TICK = "etrack.report_tick"
SEND_REPORT = "etrack.send_report"

# Daily jobs run one at a time (catch-up days queue behind each other); the
# advisory lock ETRAC_DAILY_LOCK_ID also keeps out a concurrent `etrack daily`.
DAILY_LOCK = "etrack-daily"

# Geofence visits over the stored history, one job per calendar month
# (etrack.jobs.visits); its locks are VISITS_LOCK:YYYY-MM-DD (the month's first day).
COMPUTE_VISITS = "etrack.compute_visits"
VISITS_LOCK = "etrack-visits"
