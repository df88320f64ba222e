"""Seed-compatible collector: `python3 e-track/collector.py --fetch-latest` etc.
Translates the seed's flags into `etrack` commands (etrack.compat)."""

from _bootstrap import ensure_etrack

ensure_etrack()

from etrack.compat import collector  # noqa: E402

collector()
