"""A backfill with a refused key (ETRAC_KEY wrong) stops the account at its
first 401: one line naming ETRAC_USER/ETRAC_KEY, exit 2, no traceback; the
partitions not fetched are fetched by the same command once the key is fixed."""

from __future__ import annotations

from pathlib import Path

from acceptance.test_backfill_support import jobs_env, prepare_database, rows, run_etrack
from fixtures_simulator import MakeSimulator

CONCURRENCY = 2


def test_a_refused_key_stops_the_backfill_at_the_first_401_and_a_rerun_does_the_rest(
    make_simulator: MakeSimulator, database_url: str, tmp_path: Path
) -> None:
    sim = make_simulator(vehicles=4)
    plates = sim.fleet.plates()
    prepare_database(database_url)
    command = (
        "backfill",
        "--date-start",
        "2025-01-02",
        "--date-end",
        "2025-01-06",
        "--plates",
        ",".join(plates),
        "--concurrency",
        str(CONCURRENCY),
    )
    wrong = jobs_env(sim, database_url, ETRAC_KEY="not-the-key", ETRAC_RATE_LIMIT="20")
    done = run_etrack(*command, env=wrong, cwd=tmp_path)
    output = done.stdout + done.stderr

    assert done.returncode == 2, output
    # The first wave of requests (one per worker slot) is all the API saw:
    # 20 partitions, each sent before the fix.
    refused = sim.stats().count(status=401)
    assert 1 <= refused <= CONCURRENCY, sim.stats().requests
    assert sim.stats().total == refused
    assert "Traceback" not in output
    assert "ended with status: Error" not in output
    naming = [line for line in output.splitlines() if "ETRAC_KEY" in line]
    assert len(naming) == 1, output
    assert naming[0].startswith("etrack: error: backfill #1: credentials refused"), naming
    assert "ETRAC_USER" in naming[0]
    assert "not-the-key" not in output
    states = rows(database_url, "SELECT state, will_retry, error FROM backfill_partitions")
    assert len(states) == 20
    assert {(state, will_retry) for state, will_retry, _ in states} == {("failed", False)}
    assert all(error.startswith("credentials refused for account default") for *_, error in states)

    fixed = jobs_env(sim, database_url, ETRAC_RATE_LIMIT="20")
    again = run_etrack(*command, env=fixed, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert rows(database_url, "SELECT DISTINCT state FROM backfill_partitions") == [("done",)]
    assert sum(sim.stats().history_fetches.values()) >= 20
    stored = rows(database_url, "SELECT count(DISTINCT placa) FROM positions")
    assert stored == [(len(plates),)]
