"""Seed-compatible collector: `python3 e-track/collector.py --fetch-latest` etc.
Translates the seed's flags into `etrack` commands (etrack.cli.seedcompat)."""

from _bootstrap import ensure_etrack

ensure_etrack()

from etrack.cli.seedcompat import collector  # noqa: E402

collector()
