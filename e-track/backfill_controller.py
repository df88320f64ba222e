"""Seed-compatible `python3 e-track/backfill_controller.py ...`: translates the seed's flags
into an `etrack` command (etrack.compat.backfill_controller)."""

from _bootstrap import ensure_etrack

ensure_etrack()

from etrack.compat import backfill_controller  # noqa: E402

backfill_controller()
