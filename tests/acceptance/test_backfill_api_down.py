"""With the eTrac API fully down, `etrack backfill` stops asking (the
per-account circuit breaker probes once in a while instead of sending every
attempt of every partition) and says one line per failed partition, without
a traceback."""

from __future__ import annotations

from pathlib import Path

from acceptance.test_backfill_support import jobs_env, prepare_database, run_etrack
from fixtures_simulator import MakeSimulator


def test_a_backfill_against_a_dead_api_fails_quietly_and_cheaply(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=2, error_rate=1.0)
    plates = sim.fleet.plates()
    prepare_database(database_url)
    env = jobs_env(
        sim,
        database_url,
        ETRAC_MAX_ATTEMPTS="2",
        ETRACK_API_BREAKER_FAILURES="2",
        ETRACK_API_BREAKER_WAIT_S="1",
    )
    done = run_etrack(
        "backfill",
        "--date-start",
        "2025-01-04",
        "--date-end",
        "2025-01-08",
        "--plates",
        ",".join(plates),
        "--concurrency",
        "2",
        env=env,
        cwd=tmp_path,
        timeout=180,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    # 10 partitions x 6 job attempts x 2 client attempts without the breaker:
    # 120. With it: the first wave, then one probe (2 attempts) per round.
    sent = sim.stats().count("ultimasposicoesterminal")
    assert sent <= 40, sent  # about 20 when the machine is idle
    assert "Traceback" not in done.stderr
    ended = [line for line in done.stderr.splitlines() if "ended with status: Error," in line]
    assert len(ended) == 10, done.stderr
    assert all("ApiUnavailable" in line or "ApiCircuitOpen" in line for line in ended), ended
    gave_up = [line for line in done.stdout.splitlines() if "gave up:" in line]
    assert sorted(line.split()[0] for line in gave_up) == sorted(plates * 5), done.stdout
