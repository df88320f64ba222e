"""Issue 13, point 1: `etrack worker` rides out PostgreSQL outages.

A worker runs against a private PostgreSQL that the test stops for ~10 s and
then for ~30 s. Before the fix the worker exited (status 0 after a short
outage, 1 after a long one) and nothing restarted it. Now it stays up, says
at most once per outage that the database is gone and once that it is back,
and the periodic fetch of latest positions runs again after each restart.
"""

from __future__ import annotations

import time
from pathlib import Path

from acceptance.test_backfill_support import (
    jobs_env,
    one,
    prepare_database,
    start_etrack,
    stop,
    wait_until,
)
from fixtures_outage import RestartableServer
from fixtures_simulator import MakeSimulator

FETCHED = "SELECT coalesce(max(id), 0) FROM job_runs WHERE kind = 'fetch_latest'"
FETCHED_OK = FETCHED + " AND status = 'succeeded'"


def stays_alive(proc: object, seconds: float) -> None:
    """The outage itself lasts `seconds`; the worker must be running all along."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert proc.poll() is None, "the worker exited during the outage"  # type: ignore[attr-defined]
        time.sleep(0.2)  # how often we look, not a wait for an event


def test_the_worker_survives_a_10_s_and_a_30_s_database_outage(
    restartable_server: RestartableServer, make_simulator: MakeSimulator, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=2)
    url = restartable_server.url
    prepare_database(url)
    env = jobs_env(sim, url, ETRACK_FETCH_CRON="* * * * * */2")  # every 2 seconds
    worker = start_etrack("worker", env=env, cwd=tmp_path)
    try:
        wait_until(lambda: one(url, FETCHED_OK), deadline_s=60, what="a first fetch")
        for outage_s in (10, 30):
            before = one(url, FETCHED)
            restartable_server.stop()
            stays_alive(worker, outage_s)
            restartable_server.start()
            assert worker.poll() is None, "the worker exited when the database came back"
            # A fetch run that started after the restart (a newer run id) succeeded.
            wait_until(
                lambda before=before: one(url, FETCHED_OK) > before,
                deadline_s=90,
                what=f"a fetch after the {outage_s} s outage",
            )
            assert worker.poll() is None
        positions = one(url, "SELECT count(*) FROM positions")
        assert positions > 0
    finally:
        code, out, err = stop(worker)
    # Stopped by SIGTERM, as asked: a clean exit.
    assert code == 0, out + err
    # One line per state change, not one per attempt to reconnect. A short
    # outage may pass inside Procrastinate's pool timeout (30 s) without the
    # worker stopping at all; the 30 s one stops it, and it comes back.
    paused = err.count("worker paused")
    assert 1 <= paused <= 2, err
    assert err.count("answers again") == paused, err
    assert err.count("worker resumed") == paused, err
    # psycopg's pools retry several times a second: one line per pool and outage.
    assert err.count("error connecting in") <= 4 * 2, err
    assert "Traceback" not in err, err
