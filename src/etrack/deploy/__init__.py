"""Deployment files, generated from one source: systemd units (`systemd`),
crontab lines (`cron`), a Docker Compose stack (`compose`).

The processes are the same everywhere (the argv constants of `common`): the
web UI without its embedded scheduler, one or more workers, or, instead of a
worker, a periodic fetch of the latest positions and the daily run. The
schedule comes from the settings (ETRACK_FETCH_CRON, ETRACK_DAILY_AT,
ETRAC_TIMEZONE), so a unit, a crontab and the worker agree. No file carries a
secret: systemd units read an env file (EnvironmentFile=), the compose stack
reads `.env` at run time, and the image holds code only.

`etrack deploy systemd|cron|compose` (etrack.cli.ops) writes or prints them.
"""
