"""Issue 14's rough edges that need a server, as a new user meets them:
`accounts check` with a wrong key, PostgreSQL's whole reason when something
else answers its port, and plates nobody knows (the database's, the API's):
each one line and exit 2 (3 for the unreachable database)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from etrack.errors import EXIT_UNREACHABLE, EXIT_USAGE
from etrack.simulator.server import SimulatorHandle
from fixtures_cli import RunEtrack


@pytest.fixture
def api_env(
    simulator: SimulatorHandle, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> SimulatorHandle:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ETRAC_API_BASE", simulator.base_url)
    monkeypatch.setenv("ETRAC_USER", simulator.user)
    monkeypatch.setenv("ETRAC_KEY", simulator.key)
    return simulator


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("etrack: error:")]


def test_accounts_check_with_a_wrong_key_exits_2_in_one_line(
    api_env: SimulatorHandle, run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETRAC_KEY", "not-the-key")
    code, out, err = run_etrack("accounts", "check")
    assert code == EXIT_USAGE, out + err
    assert out.splitlines() == [
        "default: credentials refused: eTrac rejected the credentials (HTTP 401): "
        "check ETRAC_USER and ETRAC_KEY"
    ]
    assert "not-the-key" not in out + err
    monkeypatch.setenv("ETRAC_KEY", api_env.key)
    code, out, err = run_etrack("accounts", "check")
    assert code == 0, out + err


@pytest.fixture
def not_postgres() -> Iterator[int]:
    """A port where an HTTP server answers (say, the web UI on 5001)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_the_whole_reason_when_something_else_answers_the_database_port(
    not_postgres: int, run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:s3cret-pw@127.0.0.1:{not_postgres}/x")
    monkeypatch.setenv("ETRAC_USER", "someone")
    monkeypatch.setenv("ETRAC_KEY", "some-key")
    monkeypatch.setenv("ETRAC_API_BASE", "http://127.0.0.1:9")
    code, out, err = run_etrack("fetch-latest")
    assert code == EXIT_UNREACHABLE, out + err
    assert error_lines(err) == [
        f"etrack: error: cannot reach PostgreSQL at 127.0.0.1:{not_postgres} "
        "(database x, user u): received invalid response to SSL negotiation: H "
        "(something other than PostgreSQL answers on that port)"
    ], err
    assert "s3cret-pw" not in out + err


def test_routes_of_a_plate_the_database_does_not_know_exit_2(
    api_env: SimulatorHandle, run_etrack: RunEtrack
) -> None:
    code, out, err = run_etrack("routes", "compute", "--plates", "ZZZ9Z99", "--date", "2025-01-06")
    assert code == EXIT_USAGE, out + err
    assert error_lines(err) == [
        "etrack: error: unknown plate ZZZ9Z99: not in this database's vehicles "
        "(etrack fetch-latest lists the fleet)"
    ]
    assert out == ""
    # Once the fleet is stored, its plates are known (and ZZZ9Z99 still is not).
    assert run_etrack("fetch-latest")[0] == 0
    known = api_env.fleet.plates()[0]
    code, out, err = run_etrack("routes", "compute", "--plates", known, "--date", "2025-01-06")
    assert code == 0, out + err
    code, _, err = run_etrack(
        "routes", "compute", "--plates", f"{known},ZZZ9Z99", "--date", "2025-01-06"
    )
    assert code == EXIT_USAGE
    assert "unknown plate ZZZ9Z99:" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["fetch-plate", "ZZZ9Z99"],
        ["fetch-history", "ZZZ9Z99", "--date", "2025-01-06"],
        ["routes", "compute", "--plates", "ZZZ9Z99", "--date", "2025-01-06", "--with-history"],
    ],
)
def test_a_plate_the_api_does_not_know_is_one_line_and_exit_2(
    api_env: SimulatorHandle, run_etrack: RunEtrack, argv: list[str]
) -> None:
    code, out, err = run_etrack(*argv)
    assert code == EXIT_USAGE, out + err
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith("etrack: error: unknown plate ZZZ9Z99: eTrac does not know it")
    assert "Traceback" not in err
