"""Make `python3 e-track/<script>.py` work from a checkout: use the project's
virtualenv when the running Python does not have etrack installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def ensure_etrack() -> None:
    try:
        import etrack  # noqa: F401
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        venv_python = root / ".venv" / "bin" / "python"
        if (
            venv_python.exists()
            and Path(sys.prefix).resolve() != venv_python.parent.parent.resolve()
        ):
            os.execv(str(venv_python), [str(venv_python), *sys.argv])  # noqa: S606 - re-run under the project venv, fixed argv
        sys.stderr.write(
            "etrack is not installed for this Python: run "
            "`python3 -m venv .venv && .venv/bin/pip install -e .` in "
            f"{root}, then use .venv/bin/python\n"
        )
        sys.exit(2)
