"""Seed-compatible `python3 e-track/backfill_controller.py ...`: translates the seed's flags
into an `etrack` command (etrack.cli.seedcompat.backfill_controller)."""

from _bootstrap import ensure_etrack

ensure_etrack()

from etrack.cli.seedcompat import backfill_controller  # noqa: E402

backfill_controller()
