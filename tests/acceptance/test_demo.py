"""`etrack demo`: the product's main job on a fresh data directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from etrack.store import embedded
from fixtures_db import subprocess_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(proc: subprocess.Popen[str], needle: str, deadline_s: float) -> list[str]:
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    seen: list[str] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line:
            seen.append(line)
            if needle in line:
                return seen
            continue
        if proc.poll() is not None:
            break
        time.sleep(0.05)  # poll interval between reads, not a wait-for
    raise AssertionError(f"{needle!r} not printed in time: {seen!r}")


def start_demo(data_dir: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "etrack", "demo", "--port", str(port)],
        env=subprocess_env(ETRACK_DATA_DIR=str(data_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(timeout=60)


def test_demo_serves_the_fleet_with_yesterdays_routes_and_stops_cleanly() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="etrack-demo-test-"))
    port = free_port()
    yesterday: date = datetime.now(ZoneInfo("America/Sao_Paulo")).date() - timedelta(days=1)
    proc = start_demo(data_dir, port)
    try:
        started = time.monotonic()
        lines = wait_for_line(proc, "ready: ", 180)
        ready_after = time.monotonic() - started
        assert f"http://127.0.0.1:{port}/" in lines[-1]
        base = f"http://127.0.0.1:{port}"
        vehicles = httpx.get(f"{base}/api/vehicles", timeout=30).json()
        assert vehicles["count"] == 25
        summary = httpx.get(
            f"{base}/api/summaries", params={"date": yesterday.isoformat()}, timeout=30
        ).json()
        assert summary["count"] == 25
        assert all(row["point_count"] > 0 for row in summary["rows"])
        page = httpx.get(f"{base}/", timeout=30)
        assert page.status_code == 200
        assert stop(proc) == 0
        assert not embedded.status(data_dir / "demo").running
        print(f"demo ready after {ready_after:.1f} s")

        # Again: the data is reused, the backfill has nothing left to fetch.
        port = free_port()
        proc = start_demo(data_dir, port)
        lines = wait_for_line(proc, "ready: ", 120)
        assert any("175 already done, 0 enqueued" in line for line in lines), lines
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        embedded.destroy(data_dir / "demo")
        shutil.rmtree(data_dir, ignore_errors=True)
