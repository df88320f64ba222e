"""What every kind of deployment runs: the etrack processes, as argv."""

from __future__ import annotations

__all__ = [
    "DAILY_ARGV",
    "FETCH_LATEST_ARGV",
    "PRUNE_ARGV",
    "SEED_DAILY",
    "SEED_FETCH_LATEST",
    "SEED_ROUTES",
    "UPGRADE_ARGV",
    "WEB_PORT",
    "WORKER_ARGV",
    "web_argv",
]

WEB_PORT = 5001
WORKER_ARGV = ("worker",)
FETCH_LATEST_ARGV = ("fetch-latest",)
DAILY_ARGV = ("daily",)
PRUNE_ARGV = ("prune",)
UPGRADE_ARGV = ("db", "upgrade")
# The seed's own command lines (e-track/collector.py), kept for its unit and crontab.
SEED_FETCH_LATEST = ("e-track/collector.py", "--fetch-latest")
SEED_ROUTES = ("e-track/collector.py", "--compute-routes-current-day-all")
SEED_DAILY = ("e-track/daily_routes_runner.py",)


def web_argv(host: str = "127.0.0.1", port: int = WEB_PORT) -> tuple[str, ...]:
    return ("web", "--host", host, "--port", str(port))
