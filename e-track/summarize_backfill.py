"""Seed-compatible `python3 e-track/summarize_backfill.py ...`: translates the seed's flags
into an `etrack` command (etrack.cli.seedcompat.summarize_backfill)."""

from _bootstrap import ensure_etrack

ensure_etrack()

from etrack.cli.seedcompat import summarize_backfill  # noqa: E402

summarize_backfill()
