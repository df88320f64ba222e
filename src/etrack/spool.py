"""A bounded disk spool of latest-position answers fetched while PostgreSQL is down.

Latest positions cannot be asked for again later (`/ultimas-posicoes` only
ever answers "now"), so `fetch-latest --loop` keeps each answer it could not
store here and writes them, oldest first, when the database answers again.

On disk rather than in memory: the loop runs under systemd, and a restart or
a reboot during a long outage must not lose what was already fetched. Each
answer is one JSON file, written to a temporary name and renamed, so a crash
leaves either the whole answer or nothing; files are named by the time they
were written, so sorting names is oldest first. The raw rows are kept (not
parsed records): parsing and quality flags then run at write time with the
stored neighbours, exactly as for a fresh answer, and nothing the API sent is
lost to a parser change in between. Writing an answer twice is harmless: the
positions upsert dedupes.

Bounded by `ETRACK_SPOOL_MAX_MB`: when full, the oldest answers are dropped
(logged), so after a long outage what is kept is the most recent stretch,
contiguous up to the database's return. Rows identical to one already spooled
in the same outage are not written again (a parked vehicle repeats its
latest row for many cycles), which keeps the spool small.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["LatestSpool", "SpooledAnswer"]

logger = logging.getLogger("etrack.spool")

_SUFFIX = ".json"
_FORMAT = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class SpooledAnswer:
    """One spooled answer: where it lies and the rows the API sent."""

    path: Path
    fetched_at: str
    rows: list[object]


class LatestSpool:
    """The spool of one account's latest-position answers."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._seen: set[str] = set()
        self._dropped = 0
        self._written = 0
        existing = self._files()
        # Answers left by an earlier run are written like this run's own.
        self._active = bool(existing)
        if existing:
            logger.warning(
                "%d latest-position answer(s) spooled by an earlier run in %s: "
                "writing them when PostgreSQL answers",
                len(existing),
                directory,
            )

    @classmethod
    def for_account(cls, data_dir: Path, account: str, *, max_mb: int) -> LatestSpool:
        name = _UNSAFE.sub("_", account) or "_"
        return cls(Path(data_dir) / "spool" / f"latest-{name}", max_bytes=max_mb * 1024 * 1024)

    # ------------------------------------------------------------- queries
    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.name.endswith(_SUFFIX))
        except FileNotFoundError:
            return []

    def __len__(self) -> int:
        return len(self._files())

    def size(self) -> int:
        total = 0
        for path in self._files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue  # drained by another process meanwhile
        return total

    # ------------------------------------------------------------- writing
    def put(self, rows: Sequence[object], fetched_at: datetime) -> bool:
        """Keep one answer; False when it could not be kept (logged why)."""
        fresh: list[object] = []
        digests: list[str] = []
        for row in rows:
            kept: object = row
            try:
                encoded = json.dumps(row, sort_keys=True, ensure_ascii=True)
            except (TypeError, ValueError, RecursionError):
                # Not JSON-encodable in Python: keep its repr so it is not lost silently.
                kept = {"unencodable_row": repr(row)[:10_000]}
                encoded = json.dumps(kept)
            digest = hashlib.blake2b(encoded.encode("ascii"), digest_size=16).hexdigest()
            if digest in self._seen:
                continue
            fresh.append(kept)
            digests.append(digest)
        if not self._active:
            self._active = True
            logger.warning(
                "PostgreSQL unavailable: keeping latest positions in %s (cap %d MiB) "
                "until it answers",
                self.directory,
                self.max_bytes // (1024 * 1024),
            )
        if not fresh:
            return True  # every row is already in the spool
        body = json.dumps(
            {"format": _FORMAT, "fetched_at": fetched_at.isoformat(), "rows": fresh},
            ensure_ascii=True,
            separators=(",", ":"),
        ).encode("ascii")
        if len(body) > self.max_bytes:
            self._dropped += 1
            logger.error(
                "an answer of %d bytes is larger than ETRACK_SPOOL_MAX_MB; %d latest positions "
                "fetched at %s are lost",
                len(body),
                len(fresh),
                fetched_at.isoformat(),
            )
            return False
        self._make_room(len(body))
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}"
        temporary = self.directory / f".{name}.tmp"
        with temporary.open("wb") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        temporary.replace(self.directory / f"{name}{_SUFFIX}")
        self._seen.update(digests)
        self._written += 1
        return True

    def _make_room(self, needed: int) -> None:
        files = self._files()
        sizes: dict[Path, int] = {}
        for path in files:
            try:
                sizes[path] = path.stat().st_size
            except FileNotFoundError:
                continue
        total = sum(sizes.values())
        for path, size in sizes.items():
            if total + needed <= self.max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            # A row of the dropped answer may be served again: spool it again then.
            self._seen.clear()
            if self._dropped == 0:
                logger.warning(
                    "the latest-position spool is full (ETRACK_SPOOL_MAX_MB=%d): dropping the "
                    "oldest answers",
                    self.max_bytes // (1024 * 1024),
                )
            self._dropped += 1

    # ------------------------------------------------------------- draining
    def pending(self) -> list[SpooledAnswer]:
        """The spooled answers, oldest first (an unreadable file is set aside as .bad)."""
        answers = []
        for path in self._files():
            try:
                content = json.loads(path.read_text(encoding="ascii"))
                answers.append(
                    SpooledAnswer(path, str(content["fetched_at"]), list(content["rows"]))
                )
            except FileNotFoundError:
                continue  # drained by another process meanwhile
            except (ValueError, KeyError, TypeError) as exc:
                bad = path.with_suffix(".bad")
                path.replace(bad)
                logger.error("unreadable spool file set aside as %s: %s", bad, exc)
        return answers

    def done(self, answer: SpooledAnswer) -> None:
        """The answer is stored: forget it."""
        answer.path.unlink(missing_ok=True)

    def drained(self) -> None:
        """Called once nothing is pending: log the end of the outage's spooling once."""
        if not self._active:
            return
        dropped = f", {self._dropped} dropped for the cap" if self._dropped else ""
        logger.info(
            "PostgreSQL answers again: every spooled latest-position answer is stored "
            "(%d spooled by this run%s)",
            self._written,
            dropped,
        )
        self._active = False
        self._seen.clear()
        self._dropped = 0
        self._written = 0
