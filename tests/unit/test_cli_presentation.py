"""How `etrack` presents itself: --version, the help's panels and flags,
the one format of moments, settings found from any directory, and the
checks a command makes before it starts anything (credentials, the port)."""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer

from etrack import __version__
from etrack.cli import PANELS, app
from etrack.config import env_files, load_settings
from etrack.logs import MomentFormatter, format_moment
from etrack.web.entry import listen_problem
from etrack.web.i18n import localize
from fixtures_cli import RunEtrack
from fixtures_db import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
# Nothing listens on port 1: a command that opened the database before
# checking its credentials would fail on the database (exit 3).
DEAD_DATABASE = "postgresql://u:p@127.0.0.1:1/x"


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rich wraps at the terminal width; wide enough that names stay whole.
    monkeypatch.setenv("COLUMNS", "200")


# ---------------------------------------------------------------- --version
def test_version_prints_the_version_and_exits_0(run_etrack: RunEtrack) -> None:
    code, out, err = run_etrack("--version")
    assert (code, out, err) == (0, f"etrack {__version__}\n", "")


def test_version_needs_no_valid_settings(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETRAC_TIMEZONE", "Mars/Olympus")
    code, out, _err = run_etrack("--version")
    assert (code, out) == (0, f"etrack {__version__}\n")


# --------------------------------------------------------------------- help
def test_every_command_sits_in_a_portuguese_panel(run_etrack: RunEtrack, wide: None) -> None:
    command = typer.main.get_command(app)
    assert isinstance(command, typer.core.TyperGroup)
    placed = {name for names in PANELS.values() for name in names}
    assert set(command.commands) == placed
    code, out, _err = run_etrack("--help")
    assert code == 0
    panels = re.findall(r"╭─ (\S+) ─", out)
    assert panels == ["Options", "Coleta", "Processamento", "Serviços", "Administração"]
    assert "─ Commands ─" not in out
    coleta = out.split("─ Coleta ─")[1].split("╰")[0]
    for name in ("fetch-latest", "backfill", "daily"):
        assert re.search(rf"│ {name} ", coleta), name


@pytest.mark.parametrize(
    "args",
    [("--help",), ("routes", "compute", "--help"), ("backfill", "--help"), ("web", "--help")],
)
def test_flags_show_no_bool_metavar(
    run_etrack: RunEtrack, wide: None, args: tuple[str, ...]
) -> None:
    code, out, _err = run_etrack(*args)
    assert code == 0
    assert "--help" in out
    assert "<bool>" not in out
    # Options that take a value still say which kind.
    if "routes" in args:
        assert re.search(r"--plates\s+<str>", out)


# ------------------------------------------------------------------ moments
def test_format_moment_is_local_to_the_second_with_the_zone() -> None:
    moment = datetime(2026, 12, 2, 5, 45, 30, 787754, tzinfo=UTC)
    assert format_moment(moment, SAO_PAULO) == "2026-12-02 02:45:30 -03"
    assert format_moment(moment, ZoneInfo("UTC")) == "2026-12-02 05:45:30 UTC"
    # Naive moments are etrack's UTC clocks.
    assert format_moment(moment.replace(tzinfo=None), SAO_PAULO) == "2026-12-02 02:45:30 -03"


def test_log_lines_carry_the_same_local_timestamp() -> None:
    formatter = MomentFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", SAO_PAULO)
    record = logging.LogRecord("etrack.trips", logging.INFO, __file__, 1, "routes: 1", None, None)
    record.created = datetime(2026, 12, 2, 5, 45, 30, 500000, tzinfo=UTC).timestamp()
    assert formatter.format(record) == "2026-12-02 02:45:30 -03 INFO etrack.trips: routes: 1"


# ---------------------------------------------------- settings from anywhere
@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout-like directory: e-track/ and a .env at its root."""
    (tmp_path / "e-track").mkdir()
    (tmp_path / ".env").write_text("ETRAC_USER=root-user\nETRAC_KEY=root-key\n")
    return tmp_path


def test_settings_are_found_in_the_project_root_from_e_track(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "e-track")
    assert env_files()[:2] == [project / "e-track" / ".env", project / ".env"]
    assert load_settings().etrac_user == "root-user"


def test_the_current_directory_wins_over_the_project_root(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "e-track" / ".env").write_text("ETRAC_USER=here-user\n")
    monkeypatch.chdir(project / "e-track")
    current = load_settings()
    assert (current.etrac_user, current.etrac_key is not None) == ("here-user", True)


def test_the_seed_files_find_the_checkouts_settings_from_any_directory(tmp_path: Path) -> None:
    # The script's own checkout is the project root, wherever we run it from.
    script = ROOT / "e-track" / "collector.py"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = sys.argv[1]; "
            "from etrack.config import env_files; print(env_files())",
            str(script),
        ],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert str(ROOT / ".env") in result.stdout
    assert str(tmp_path / ".env") in result.stdout


# ------------------------------------------------- credentials before the DB
@pytest.mark.parametrize(
    "args",
    [
        ("fetch-latest",),
        ("fetch-plate", "ABC1234"),
        ("daily", "--date", "2025-01-07"),
        ("backfill", "--date-start", "2025-01-01", "--date-end", "2025-01-02"),
        ("accounts", "check"),
    ],
)
def test_missing_credentials_are_said_before_the_database_is_opened(
    run_etrack: RunEtrack,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", DEAD_DATABASE)
    code, _out, err = run_etrack(*args)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("etrack: error: ETRAC_USER and ETRAC_KEY must be set")
    assert str(tmp_path / ".env") in lines[0]
    assert "PostgreSQL" not in err


# ----------------------------------------------------------- the web's port
@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_listen_problem_names_the_taken_address(taken_port: int) -> None:
    problem = listen_problem("127.0.0.1", taken_port)
    assert problem is not None
    assert problem.startswith(f"cannot listen on 127.0.0.1:{taken_port}: address already in use")
    assert "--port" in problem


def test_listen_problem_is_none_for_a_free_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert listen_problem("127.0.0.1", free) is None


def test_etrack_web_on_a_taken_port_says_so_and_exits_3(
    run_etrack: RunEtrack, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database is not reachable: the port is checked before it.
    monkeypatch.setenv("DATABASE_URL", DEAD_DATABASE)
    code, _out, err = run_etrack("web", "--port", str(taken_port))
    assert code == 3
    assert err == (
        f"etrack: error: cannot listen on 127.0.0.1:{taken_port}: address already in use "
        "(another etrack web? choose a free port with --port)\n"
    )


def test_the_seed_web_ui_on_a_taken_port_fails_in_one_line_before_starting(
    taken_port: int, tmp_path: Path
) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "e-track" / "web_ui.py"), "--port", str(taken_port)],
        cwd=tmp_path,
        env=subprocess_env(DATABASE_URL=DEAD_DATABASE, DISABLE_UI_SCHEDULER="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [
        f"etrack web: error: cannot listen on 127.0.0.1:{taken_port}: address already in use "
        "(another etrack web? choose a free port with --port)"
    ]
    assert time.monotonic() - started < 30


def test_the_seed_collector_run_from_e_track_says_where_it_looked() -> None:
    # The error names both places, e-track/ itself and the project root above it.
    if (ROOT / ".env").exists() or (ROOT / "e-track" / ".env").exists():
        pytest.skip("this checkout has its own .env: the seed would use its settings")
    result = subprocess.run(
        [sys.executable, "collector.py", "--fetch-latest"],
        cwd=ROOT / "e-track",
        env=subprocess_env(DATABASE_URL=DEAD_DATABASE),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "etrack: error: ETRAC_USER and ETRAC_KEY must be set to call the eTrac API (looked in "
        f"the environment and in {ROOT / 'e-track' / '.env'}, {ROOT / '.env'})"
    ]


def test_a_backfill_summary_with_its_events_reads_in_portuguese() -> None:
    """The routes line holds "; " itself, and the backfill appends the events
    line to it: each is translated whole, not cut at every "; "."""
    text = (
        "routes: 2 plate-days computed, 1 skipped unchanged, 0 empty; 3 trips, 4 stops, "
        "50 points in 0.2 s (+1 neighbouring days recomputed); events: 2 plates, 100 "
        "positions; 5 events (overspeed 3, idle 2): 5 new, 0 updated, 0 unchanged, 0 deleted "
        "in 0.1 s"
    )
    shown = localize(text, "pt-BR")
    assert shown.startswith("rotas: 2 veículo-dias calculados, 1 sem mudança, 0 vazios; ")
    assert "(+1 dias vizinhos recalculados); eventos: 2 veículos, 100 posições; 5 eventos " in shown
    assert "(excesso de velocidade 3, motor ocioso 2): 5 novos" in shown
    assert localize("routes: nothing known; neither this", "pt-BR") == (
        "routes: nothing known; neither this"
    )
