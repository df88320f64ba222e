"""Seed-compatible `python3 e-track/daily_routes_runner.py ...`: translates the seed's flags
into an `etrack` command (etrack.cli.seedcompat.daily_routes_runner)."""

from _bootstrap import ensure_etrack

ensure_etrack()

from etrack.cli.seedcompat import daily_routes_runner  # noqa: E402

daily_routes_runner()
