"""`etrack deploy systemd`: the units, checked with a parser (sections, keys,
commands, no secrets) and with `systemd-analyze verify` where it exists."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from etrack import errors
from etrack.deploy.systemd import SystemdOptions, _exec_arg, cron_to_calendar, render_systemd

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent  # the running one: its executables exist
# A PG* variable would mean a server: the embedded case gets only these.
SECRETS = {"ETRAC_KEY": "s3cr3t-api-key", "ETRACK_WEB_PASSWORD": "web-pass-word"}
SERVER_SECRET = "pg-pass-word"
LONG_RUNNING = ("etrack-web.service", "etrack-worker.service", "etrac-collector.service")
TIMERS = ("fetch-latest", "daily", "prune")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def parse(text: str) -> configparser.ConfigParser:
    # systemd's syntax is ini-like: sections, Key=Value, # comments. strict
    # rejects duplicate sections or keys, which our units never need.
    parser = configparser.ConfigParser(
        strict=True, interpolation=None, delimiters=("=",), comment_prefixes=("#",)
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


def generate(
    tmp_path: Path,
    run_etrack: Callable[..., tuple[int, str, str]],
    env_lines: list[str] | None = None,
    *extra: str,
) -> dict[str, configparser.ConfigParser]:
    env_file = tmp_path / "etrack.env"
    env_file.write_text(
        "\n".join([*(f"{k}={v}" for k, v in SECRETS.items()), *(env_lines or [])]) + "\n"
    )
    out = tmp_path / "units"
    code, stdout, stderr = run_etrack("deploy", "systemd", "--user", "etrack", "--workdir", str(ROOT), "--venv", str(VENV),
         "--env-file", str(env_file), "--output", str(out), *extra)  # fmt: skip
    assert code == 0, stderr
    assert "wrote" in stdout
    texts = {p.name: p.read_text() for p in sorted(out.iterdir())}
    for name, text in texts.items():
        for secret in (*SECRETS.values(), SERVER_SECRET):
            assert secret not in text, f"{name} holds a secret"
    return {name: parse(text) for name, text in texts.items()}


def test_units_embedded(tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]]) -> None:
    units = generate(tmp_path, run_etrack)
    assert set(units) == {
        "etrack-db.service",
        *LONG_RUNNING,
        *(f"etrack-{t}.service" for t in TIMERS),
        *(f"etrack-{t}.timer" for t in TIMERS),
    }
    for name, unit in units.items():
        assert unit["Unit"]["Description"], name
        if name.endswith(".timer"):
            assert unit["Timer"]["OnCalendar"]
            assert unit["Install"]["WantedBy"] == "timers.target"
            assert unit["Unit"]["Conflicts"] == "etrack-worker.service"
            continue
        service = unit["Service"]
        assert service["User"] == "etrack"
        assert service["WorkingDirectory"] == str(ROOT)
        assert service["EnvironmentFile"] == f"-{tmp_path / 'etrack.env'}"
        assert Path(service["ExecStart"].split()[0]).is_absolute()
        for key in service:
            assert not any(word in key.upper() for word in ("PASSWORD", "SECRET")), key
        if name != "etrack-db.service":
            assert unit["Unit"]["Requires"] == "etrack-db.service"
            assert "etrack-db.service" in unit["Unit"]["After"]
    for name in LONG_RUNNING:
        service = units[name]["Service"]
        # Restart even after exit 0 (issue 13: a worker once exited 0 after an
        # outage and was never restarted), with a rate limit against crash loops.
        assert service["Restart"] == "always"
        assert service["RestartPreventExitStatus"] == "2 4"
        assert units[name]["Unit"]["StartLimitIntervalSec"] == "10min"
        assert units[name]["Unit"]["StartLimitBurst"] == "10"
        assert units[name]["Install"]["WantedBy"] == "multi-user.target"
    web = units["etrack-web.service"]["Service"]["ExecStart"]
    assert web == (
        f"/usr/bin/env DISABLE_UI_SCHEDULER=1 {VENV}/bin/etrack web --host 127.0.0.1 --port 5001"
    )
    assert units["etrack-worker.service"]["Service"]["ExecStart"] == f"{VENV}/bin/etrack worker"
    assert units["etrac-collector.service"]["Service"]["ExecStart"] == (
        f"{VENV}/bin/python e-track/collector.py --fetch-latest --loop"
    )
    assert "etrack-worker.service" in units["etrac-collector.service"]["Unit"]["Conflicts"]
    db = units["etrack-db.service"]["Service"]
    assert (db["Type"], db["RemainAfterExit"]) == ("oneshot", "yes")
    assert db["ExecStart"].endswith("etrack db start")
    assert db["ExecStop"].endswith("etrack db stop")
    for timer in TIMERS:
        service = units[f"etrack-{timer}.service"]["Service"]
        assert service["Type"] == "oneshot"
    assert units["etrack-fetch-latest.service"]["Service"]["ExecStart"].endswith(
        "etrack fetch-latest"
    )
    assert units["etrack-daily.service"]["Service"]["ExecStart"].endswith("etrack daily")
    assert units["etrack-daily.service"]["Service"]["Restart"] == "on-failure"
    assert units["etrack-fetch-latest.timer"]["Timer"]["OnCalendar"] == (
        "*-*-* *:00/2:00 America/Sao_Paulo"
    )
    assert units["etrack-daily.timer"]["Timer"]["OnCalendar"] == (
        "*-*-* 01:00:00 America/Sao_Paulo"
    )
    assert units["etrack-daily.timer"]["Timer"]["Persistent"] == "yes"


def test_units_for_a_server_follow_the_env_file(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]]
) -> None:
    units = generate(
        tmp_path,
        run_etrack,
        [
            f"DATABASE_URL=postgresql://etrack:{SERVER_SECRET}@db.example:5432/etrack",
            f"PGPASSWORD={SERVER_SECRET}",
            "ETRACK_DAILY_AT=02:30",
            "ETRACK_FETCH_CRON=*/5 6-22 * * 1-5",
            "ETRAC_TIMEZONE=America/Manaus",
        ],
        "--web-host",
        "0.0.0.0",  # noqa: S104 - the unit under test listens beyond loopback
        "--web-port",
        "8080",
    )
    assert "etrack-db.service" not in units
    web = units["etrack-web.service"]
    assert "Requires" not in web["Unit"]
    assert web["Unit"]["After"] == "network-online.target postgresql.service"
    assert web["Service"]["ExecStart"].endswith("web --host 0.0.0.0 --port 8080")
    assert units["etrack-daily.timer"]["Timer"]["OnCalendar"] == "*-*-* 02:30:00 America/Manaus"
    assert units["etrack-fetch-latest.timer"]["Timer"]["OnCalendar"] == (
        "Mon..Fri *-*-* 06..22:00/5:00 America/Manaus"
    )


def test_printed_without_output(run_etrack: Callable[..., tuple[int, str, str]]) -> None:
    code, out, _ = run_etrack(
        "deploy", "systemd", "--user", "etrack", "--workdir", str(ROOT), "--venv", str(VENV)
    )
    assert code == 0
    assert "# ===== etrack-web.service =====" in out
    assert "# ===== etrack-daily.timer =====" in out
    assert "[Service]" in out


def test_bad_user_is_a_usage_error(run_etrack: Callable[..., tuple[int, str, str]]) -> None:
    code, _, err = run_etrack("deploy", "systemd", "--user", "bad user;rm")
    assert code == errors.EXIT_USAGE
    assert "--user" in err


@pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed (Debian: systemd)"
)
@pytest.mark.parametrize("database", ["embedded", "server"])
def test_systemd_analyze_verify(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]], database: str
) -> None:
    generate(tmp_path, run_etrack, [], "--database", database)
    files = sorted(str(p) for p in (tmp_path / "units").iterdir())
    done = subprocess.run(
        [str(SYSTEMD_ANALYZE), "verify", "--man=no", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # verify exits 0 even when it ignored a bad line: read what it said about our files.
    ours = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "etrack" in line or "etrac-" in line
    ]
    assert done.returncode == 0, done.stderr
    assert ours == []


# ----------------------------------------------------------- cron -> OnCalendar
@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("*/2 * * * *", "*-*-* *:00/2:00"),
        ("0 1 * * *", "*-*-* 01:00:00"),
        ("15,45 8-18 * * 1-5", "Mon..Fri *-*-* 08..18:15,45:00"),
        ("0 3 1 * *", "*-*-01 03:00:00"),
        ("0 0 * 1,7 sun", "Sun *-01,07-* 00:00:00"),
        ("* * * * * */30", "*-*-* *:*:00/30"),
        ("0 12 * * 7", "Sun *-*-* 12:00:00"),
    ],
)
def test_cron_to_calendar(cron: str, calendar: str) -> None:
    assert cron_to_calendar(cron) == calendar
    if SYSTEMD_ANALYZE:
        done = subprocess.run(
            [SYSTEMD_ANALYZE, "calendar", f"{calendar} UTC"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "cron", ["* * *", "61 * * * *", "0 1 1 * 1", "0 1-5/2 * * *", "x * * * *", "*/0 * * * *"]
)
def test_cron_to_calendar_refuses_what_it_cannot_express(cron: str) -> None:
    with pytest.raises(ValueError, match="cron"):
        cron_to_calendar(cron)


def test_exec_arguments_are_quoted_for_systemd() -> None:
    assert _exec_arg("/opt/etrack/bin/etrack") == "/opt/etrack/bin/etrack"
    assert _exec_arg("/srv/my fleet/etrack") == '"/srv/my fleet/etrack"'
    assert _exec_arg("50%") == "50%%"
    assert _exec_arg("$HOME") == "$$HOME"
    assert _exec_arg('say "hi"') == '"say \\"hi\\""'


def test_relative_paths_are_refused() -> None:
    options = SystemdOptions(
        user="etrack",
        workdir=Path("relative"),
        env_file=Path("/etc/etrack.env"),
        venv=Path("/opt/venv"),
        embedded_db=False,
    )
    with pytest.raises(ValueError, match="absolute"):
        render_systemd(options)
