"""`etrack deploy cron`: the seed's two lines, installed idempotently between
markers in a crontab file (and through a stand-in `crontab` program), removed
exactly, and runnable by /bin/sh as cron runs them."""

from __future__ import annotations

import re
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from etrack import errors
from etrack.deploy.cron import (
    CRON_BEGIN,
    CRON_END,
    UserCrontab,
    install_cron_block,
    remove_cron_block,
)
from etrack.errors import CrontabError

USER_LINES = "MAILTO=ops@example.com\n# my backups\n30 4 * * * /usr/local/bin/backup --all\n"


def active(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_prints_the_seeds_two_lines(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]]
) -> None:
    code, out, _ = run_etrack("deploy", "cron", "--workdir", str(tmp_path), "--log-dir", "/var/log")
    assert code == 0
    assert active(out) == [
        f"*/2 * * * * cd {tmp_path} && .venv/bin/python e-track/collector.py --fetch-latest"
        " >> /var/log/etrac_fetch_latest.log 2>&1",
        f"0 1 * * * cd {tmp_path} && .venv/bin/python e-track/collector.py"
        " --compute-routes-current-day-all >> /var/log/etrac_routes.log 2>&1",
    ]
    assert out.startswith(CRON_BEGIN)
    assert out.rstrip().endswith(CRON_END)


def test_default_logs_and_schedule_follow_the_settings(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETRACK_DAILY_AT", "02:15")
    monkeypatch.setenv("ETRACK_FETCH_CRON", "*/5 * * * *")
    code, out, _ = run_etrack("deploy", "cron", "--workdir", str(tmp_path), "--daily")
    assert code == 0
    fetch, daily = active(out)
    assert fetch.startswith("*/5 * * * * ")
    assert fetch.endswith(f">> {tmp_path}/e-track/logs/etrac_fetch_latest.log 2>&1")
    assert daily.startswith("15 2 * * * ")
    assert "e-track/daily_routes_runner.py >>" in daily


def test_seconds_cannot_go_to_cron(
    run_etrack: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ETRACK_FETCH_CRON", "* * * * * */30")
    code, _, err = run_etrack("deploy", "cron")
    assert code == errors.EXIT_USAGE
    assert "5 fields" in err


def test_install_is_idempotent_and_uninstall_exact(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]]
) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text(USER_LINES)
    logs = tmp_path / "logs"
    args = ["deploy", "cron", "--workdir", str(tmp_path), "--log-dir", str(logs)]
    code, out, _ = run_etrack(*args, "--install", "--crontab-file", str(crontab))
    assert code == 0
    assert "installed" in out
    assert logs.is_dir()  # cron's >> needs the folder
    installed = crontab.read_text()
    assert installed.startswith(USER_LINES)
    assert len(active(installed)) == 2 + 2  # MAILTO, backup, and ours

    code, out, _ = run_etrack(*args, "--install", "--crontab-file", str(crontab))
    assert code == 0
    assert "already" in out
    assert crontab.read_text() == installed

    # A new setting replaces the block in place, not a second copy.
    code, out, _ = run_etrack(*args, "--daily", "--install", "--crontab-file", str(crontab))
    assert code == 0
    changed = crontab.read_text()
    assert changed.count(CRON_BEGIN) == 1
    assert "daily_routes_runner.py" in changed

    code, out, _ = run_etrack(*args, "--uninstall", "--crontab-file", str(crontab))
    assert code == 0
    assert "removed" in out
    assert crontab.read_text() == USER_LINES
    code, out, _ = run_etrack(*args, "--uninstall", "--crontab-file", str(crontab))
    assert code == 0
    assert "nothing to remove" in out
    assert crontab.read_text() == USER_LINES


def test_warns_about_seed_lines_outside_the_block(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]]
) -> None:
    crontab = tmp_path / "crontab"
    seed = "*/2 * * * * cd /srv/sync_apis && .venv/bin/python e-track/collector.py --fetch-latest\n"
    crontab.write_text(seed)
    code, _, err = run_etrack(
        "deploy", "cron", "--install", "--crontab-file", str(crontab), "--log-dir", str(tmp_path)
    )
    assert code == 0
    assert "also runs the collector" in err
    assert crontab.read_text().startswith(seed)


def test_damaged_block_is_left_alone(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]]
) -> None:
    crontab = tmp_path / "crontab"
    damaged = USER_LINES + CRON_BEGIN + "\n*/2 * * * * something\n"
    crontab.write_text(damaged)
    code, _, err = run_etrack(
        "deploy", "cron", "--install", "--crontab-file", str(crontab), "--log-dir", str(tmp_path)
    )
    assert code == errors.EXIT_FAILURE
    assert "damaged" in err
    assert crontab.read_text() == damaged
    with pytest.raises(CrontabError):
        remove_cron_block(damaged)


def test_block_functions_keep_other_lines() -> None:
    block = f"{CRON_BEGIN}\n* * * * * a\n{CRON_END}"
    text, changed = install_cron_block("", block)
    assert (text, changed) == (block + "\n", True)
    text, changed = install_cron_block(USER_LINES + block + "\n0 0 * * * after\n", block)
    assert not changed
    assert remove_cron_block(text) == (USER_LINES + "0 0 * * * after\n", True)


def test_lines_run_under_sh_with_awkward_paths(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]]
) -> None:
    """What cron does: turn \\% back into %, hand the command to /bin/sh."""
    workdir = tmp_path / "my fleet 100%"
    (workdir / ".venv" / "bin").mkdir(parents=True)
    fake_python = workdir / ".venv" / "bin" / "python"
    fake_python.write_text('#!/bin/sh\necho "ran in $(pwd): $*"\n')
    fake_python.chmod(fake_python.stat().st_mode | stat.S_IXUSR)
    logs = tmp_path / "log dir"
    logs.mkdir()
    code, out, _ = run_etrack("deploy", "cron", "--workdir", str(workdir), "--log-dir", str(logs))
    assert code == 0
    for line in active(out):
        assert re.search(r"(?<!\\)%", line) is None, "an unescaped % is a newline to cron"
        command = line.split(" ", 5)[5].replace("\\%", "%")
        subprocess.run(["/bin/sh", "-c", command], check=True, timeout=30)
    assert (logs / "etrac_fetch_latest.log").read_text() == (
        f"ran in {workdir}: e-track/collector.py --fetch-latest\n"
    )
    assert (logs / "etrac_routes.log").read_text() == (
        f"ran in {workdir}: e-track/collector.py --compute-routes-current-day-all\n"
    )


def test_user_crontab_through_the_crontab_program(tmp_path: Path) -> None:
    """UserCrontab speaks `crontab -l` / `crontab -` (a stand-in program here,
    keeping the real user's crontab out of the tests)."""
    store_file = tmp_path / "store"
    program = tmp_path / "crontab"
    program.write_text(
        "#!/bin/sh\n"
        f'STORE="{store_file}"\n'
        'if [ "$1" = "-l" ]; then\n'
        '  if [ -f "$STORE" ]; then cat "$STORE"; else echo "no crontab for tester" >&2; exit 1; fi\n'
        'elif [ "$1" = "-" ]; then cat > "$STORE"\n'
        "else exit 2; fi\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    crontab = UserCrontab(str(program))
    assert crontab.read() == ""
    block = f"{CRON_BEGIN}\n* * * * * a\n{CRON_END}"
    text, _ = install_cron_block(crontab.read(), block)
    crontab.write(text)
    assert crontab.read() == block + "\n"
    with pytest.raises(CrontabError, match="not installed"):
        UserCrontab(str(tmp_path / "missing")).read()
