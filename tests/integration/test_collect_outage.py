"""`fetch-latest --loop` through a PostgreSQL outage: what it fetched meanwhile is kept
(issue 13, point 2).

The loop runs as a user runs it (`python e-track/collector.py --fetch-latest --loop`),
against the simulator over HTTP and a private PostgreSQL that the test stops and
starts. The simulator's clock runs fast (two simulated minutes per second), so its
latest positions change from one cycle to the next, as a real fleet's do: a row
served only during the outage can be stored only if the loop kept it.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest

from etrack.provider import parse
from etrack.simulator.config import Account, QuirkConfig
from etrack.spool import LatestSpool
from fixtures_db import subprocess_env
from fixtures_outage import RestartableServer
from fixtures_simulator import SIMULATOR_NOW, SIMULATOR_TZ, MakeSimulator

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = str(ROOT / "e-track" / "collector.py")
SPEEDUP = 120.0  # simulated seconds per real second: moving vehicles report every ~60 s


class Lines:
    """A subprocess stream read by a thread, so the test can wait for a line with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)

    def wait_for(self, matches: Callable[[list[str]], bool], deadline_s: float, what: str) -> None:
        deadline = time.monotonic() + deadline_s
        while not matches(self.seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{what} not seen in time; got {self.seen!r}")
            try:
                self.seen.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                continue


def stored_keys(url: str) -> set[tuple[str, datetime]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        rows = conn.execute("SELECT placa, data_transmissao FROM e_track.positions").fetchall()
    return {(placa, ts) for placa, ts in rows}


def keys_of(rows: list[Any]) -> set[tuple[str, datetime]]:
    parsed = parse.parse_positions(
        rows, SIMULATOR_TZ, now=datetime.now(UTC), future_tolerance_s=300
    )
    assert parsed.rejects == [], parsed.rejects
    return {(p.placa, p.data_transmissao) for p in parsed.positions}


@pytest.mark.slow
def test_latest_positions_fetched_during_a_database_outage_are_stored_when_it_returns(
    make_simulator: MakeSimulator,
    restartable_server: RestartableServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = make_simulator(vehicles=20, quirks=QuirkConfig.none())
    started = time.monotonic()
    monkeypatch.setattr(
        sim.fleet,
        "now",
        lambda: SIMULATOR_NOW.fromtimestamp(
            SIMULATOR_NOW.timestamp() + (time.monotonic() - started) * SPEEDUP, SIMULATOR_TZ
        ),
    )
    # Every answer the simulator serves, with when it served it.
    served: list[tuple[float, list[Any]]] = []
    answer = sim.fleet.latest_rows_json

    def recording(now: datetime | None = None, account: str | Account | None = None) -> bytes:
        body: bytes = answer(now, account)
        served.append((time.monotonic(), json.loads(body)))
        return body

    monkeypatch.setattr(sim.fleet, "latest_rows_json", recording)

    data_dir = tmp_path / "data"
    env = subprocess_env(
        DATABASE_URL=restartable_server.url,
        ETRAC_API_BASE=sim.base_url,
        ETRAC_USER=sim.user,
        ETRAC_KEY=sim.key,
        ETRAC_RATE_LIMIT="200",
        ETRACK_DATA_DIR=str(data_dir),
    )
    proc = subprocess.Popen(
        [sys.executable, COLLECTOR, "--fetch-latest", "--loop", "--interval", "1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    try:
        out.wait_for(lambda s: any("cycle 1: received 20," in x for x in s), 60, "cycle 1")

        restartable_server.stop()
        down_at = time.monotonic()

        def failed(lines: list[str]) -> int:
            return sum("failed (DatabaseUnavailable)" in line for line in lines)

        # Several cycles fetch while the database is down.
        out.wait_for(lambda s: failed(s) >= 4, 120, "four failed cycles")
        up_at = time.monotonic()
        restartable_server.start()
        out.wait_for(
            lambda s: any(re.match(r"cycle \d+: received", x) for x in s[-1:]) and failed(s) >= 4,
            120,
            "a stored cycle after the outage",
        )

        during = set().union(*(keys_of(rows) for at, rows in served if down_at <= at < up_at))
        after = set().union(*(keys_of(rows) for at, rows in served if at >= up_at))
        before = set().union(*(keys_of(rows) for at, rows in served if at < down_at))
        # The fast clock makes the outage's rows ones nobody will serve again.
        assert during - after - before, "the simulator served no row only during the outage"
        everything = before | during | after

        deadline = time.monotonic() + 60
        while missing := everything - stored_keys(restartable_server.url):
            assert time.monotonic() < deadline, (
                f"{len(missing)} of {len(everything)} distinct latest rows never stored"
            )
            time.sleep(0.2)  # poll interval while the loop drains, not a wait-for

        err.wait_for(
            lambda s: any("every spooled latest-position answer is stored" in x for x in s),
            30,
            "the drained log line",
        )
        assert sum("PostgreSQL unavailable: keeping latest positions" in x for x in err.seen) == 1
        assert list((data_dir / "spool").rglob("*.json")) == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def row(placa: str, second: int) -> dict[str, Any]:
    return {"placa": placa, "data_transmissao": f"08/01/2025 12:00:{second:02d}", "x": "y" * 200}


def second_of(value: object) -> int:
    assert isinstance(value, dict)
    return int(str(value["data_transmissao"])[-2:])


def test_spool_keeps_the_newest_answers_within_its_cap_oldest_first(tmp_path: Path) -> None:
    spool = LatestSpool(tmp_path / "spool", max_bytes=2_000)
    fetched = datetime(2025, 1, 8, 15, 0, tzinfo=UTC)
    for second in range(10):
        assert spool.put([row("ABC1234", second), row("XYZ9876", 0)], fetched)
    assert spool.size() <= 2_000
    kept = spool.pending()
    seconds = [second_of(a.rows[0]) for a in kept]
    # The newest answers, oldest first, none missing in between.
    assert seconds == list(range(10 - len(kept), 10))
    assert 2 <= len(kept) < 10
    for answer in kept:
        spool.done(answer)
    spool.drained()
    assert spool.pending() == []


def test_spool_writes_a_repeated_row_once_per_outage(tmp_path: Path) -> None:
    spool = LatestSpool(tmp_path / "spool", max_bytes=1_000_000)
    fetched = datetime(2025, 1, 8, 15, 0, tzinfo=UTC)
    spool.put([row("ABC1234", 0), row("XYZ9876", 0)], fetched)
    spool.put([row("ABC1234", 1), row("XYZ9876", 0)], fetched)
    spool.put([row("XYZ9876", 0)], fetched)  # nothing new: no file
    rows = [r for answer in spool.pending() for r in answer.rows]
    assert rows == [row("ABC1234", 0), row("XYZ9876", 0), row("ABC1234", 1)]


def test_spool_survives_a_restart_and_sets_a_damaged_file_aside(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    LatestSpool(directory, max_bytes=1_000_000).put(
        [row("ABC1234", 0)], datetime(2025, 1, 8, 15, 0, tzinfo=UTC)
    )
    (directory / "00000000000000000001-1.json").write_text("{not json")
    again = LatestSpool(directory, max_bytes=1_000_000)
    assert [a.rows for a in again.pending()] == [[row("ABC1234", 0)]]
    assert [p.name for p in directory.glob("*.bad")] == ["00000000000000000001-1.bad"]
