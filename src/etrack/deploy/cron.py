"""The seed's two crontab lines, and their installation between marker
comments in a crontab (the user's, through `crontab`, or a plain file).

`etrack deploy cron` (etrack.cli.ops) prints, installs or removes them.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from etrack.deploy.common import SEED_DAILY, SEED_FETCH_LATEST, SEED_ROUTES
from etrack.errors import CrontabError

__all__ = [
    "CRON_BEGIN",
    "CRON_END",
    "CrontabFile",
    "CrontabStore",
    "UserCrontab",
    "cron_block",
    "install_cron_block",
    "remove_cron_block",
    "render_cron",
    "stray_seed_lines",
]

CRON_BEGIN = "# BEGIN etrack (managed by `etrack deploy cron`; remove with --uninstall)"
CRON_END = "# END etrack"
_BEGIN_PREFIX = "# BEGIN etrack"


def _cron_quote(value: str | Path) -> str:
    # cron turns an unescaped % into a newline before the shell sees the line.
    return shlex.quote(str(value)).replace("%", "\\%")


def _cron_schedule(expr: str) -> str:
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron takes 5 fields (no seconds); ETRACK_FETCH_CRON is {expr!r}")
    return " ".join(fields)


def render_cron(
    workdir: Path,
    log_dir: Path,
    *,
    fetch_cron: str = "*/2 * * * *",
    daily_at: str = "01:00",
    daily: bool = False,
) -> list[str]:
    """The seed's two crontab lines: fetch the latest positions, and at
    ETRACK_DAILY_AT the routes (the seed's --compute-routes-current-day-all,
    or with `daily` the daily run of e-track/daily_routes_runner.py:
    yesterday's history, trips and routes), each appending to a log file."""
    hour, minute = (int(p) for p in daily_at.split(":"))
    start = f"cd {_cron_quote(workdir)} && .venv/bin/python"
    routes = SEED_DAILY if daily else SEED_ROUTES
    return [
        f"{_cron_schedule(fetch_cron)} {start} {' '.join(SEED_FETCH_LATEST)}"
        f" >> {_cron_quote(log_dir / 'etrac_fetch_latest.log')} 2>&1",
        f"{minute} {hour} * * * {start} {' '.join(routes)}"
        f" >> {_cron_quote(log_dir / 'etrac_routes.log')} 2>&1",
    ]


def cron_block(lines: Sequence[str], *, timezone: str) -> str:
    return "\n".join(
        [
            CRON_BEGIN,
            f"# Times are the system's time zone (cron's), not ETRAC_TIMEZONE={timezone}.",
            *lines,
            CRON_END,
        ]
    )


def _find_block(lines: list[str]) -> tuple[int, int] | None:
    begins = [i for i, line in enumerate(lines) if line.startswith(_BEGIN_PREFIX)]
    ends = [i for i, line in enumerate(lines) if line.strip() == CRON_END]
    if not begins and not ends:
        return None
    if len(begins) != 1 or len(ends) != 1 or ends[0] < begins[0]:
        raise CrontabError(
            "the crontab's etrack block is damaged (unmatched '# BEGIN etrack' / "
            "'# END etrack' lines): fix it with `crontab -e`"
        )
    return begins[0], ends[0]


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _text(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def install_cron_block(existing: str, block: str) -> tuple[str, bool]:
    """The crontab with `block` in place of etrack's (or appended); changed?"""
    lines = _lines(existing)
    found = _find_block(lines)
    new = block.splitlines()
    before, after = (lines, []) if found is None else (lines[: found[0]], lines[found[1] + 1 :])
    text = _text([*before, *new, *after])
    return text, text != _text(lines)


def remove_cron_block(existing: str) -> tuple[str, bool]:
    """The crontab without etrack's block (other lines untouched); changed?"""
    lines = _lines(existing)
    found = _find_block(lines)
    if found is None:
        return existing, False
    return _text([*lines[: found[0]], *lines[found[1] + 1 :]]), True


def stray_seed_lines(existing: str) -> list[str]:
    """Active lines outside etrack's block that already run the collector:
    installing would run it twice."""
    lines = _lines(existing)
    found = _find_block(lines)
    outside = lines if found is None else [*lines[: found[0]], *lines[found[1] + 1 :]]
    patterns = ("e-track/collector.py", "etrack fetch-latest", "e-track/daily_routes_runner.py")
    return [
        line
        for line in outside
        if not line.lstrip().startswith("#") and any(p in line for p in patterns)
    ]


class CrontabStore(Protocol):
    def read(self) -> str: ...

    def write(self, text: str) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, slots=True)
class CrontabFile:
    """A crontab kept in a plain file (tests, /etc/cron.d-style set-ups)."""

    path: Path

    def read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def write(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(text, encoding="utf-8")

    def describe(self) -> str:
        return str(self.path)


@dataclass(frozen=True, slots=True)
class UserCrontab:
    """The invoking user's crontab, through the `crontab` program."""

    program: str = "crontab"

    def read(self) -> str:
        try:
            done = subprocess.run(
                [self.program, "-l"], capture_output=True, text=True, check=False, timeout=30
            )
        except FileNotFoundError:
            raise CrontabError(
                "the `crontab` program is not installed (Debian: apt-get install cron)"
            ) from None
        if done.returncode == 0:
            return done.stdout
        if "no crontab" in done.stderr.lower():
            return ""
        raise CrontabError(f"crontab -l failed: {done.stderr.strip()}")

    def write(self, text: str) -> None:
        done = subprocess.run(
            [self.program, "-"], input=text, capture_output=True, text=True, check=False, timeout=30
        )
        if done.returncode != 0:
            raise CrontabError(f"crontab - failed: {done.stderr.strip()}")

    def describe(self) -> str:
        return "your crontab"
