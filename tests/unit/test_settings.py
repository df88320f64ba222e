"""Settings: the seed's variable names, clear one-line errors, no secrets shown."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from etrack.config import Duration, Settings, documented_settings, load_settings
from etrack.errors import SettingsError
from fixtures_db import subprocess_env


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "ETRAC_DAILY_LOCK_ID",
            "abc",
            "invalid setting ETRAC_DAILY_LOCK_ID: expected an integer, got 'abc'",
        ),
        (
            "ETRAC_BACKFILL_LOCK_ID",
            "1.5",
            "invalid setting ETRAC_BACKFILL_LOCK_ID: expected an integer",
        ),
        (
            "ETRAC_SCHEMA",
            "e-track; drop",
            "invalid setting ETRAC_SCHEMA: expected a plain lower-case SQL identifier",
        ),
        ("ETRAC_SCHEMA", "E_Track", "invalid setting ETRAC_SCHEMA"),
        (
            "ETRAC_TIMEZONE",
            "Mars/Olympus",
            "invalid setting ETRAC_TIMEZONE: expected an IANA time zone",
        ),
        ("ETRAC_API_BASE", "ftp://x", "invalid setting ETRAC_API_BASE: expected an http(s):// URL"),
        ("ETRAC_API_BASE", "not a url", "invalid setting ETRAC_API_BASE"),
        ("DATABASE_URL", "mysql://u@h/d", "invalid setting DATABASE_URL: expected a postgresql://"),
        ("PGPORT", "five", "invalid setting PGPORT: expected an integer"),
        ("ETRAC_RATE_SLEEP", "-1", "invalid setting ETRAC_RATE_SLEEP"),
        ("ETRAC_BATCH_SIZE", "0", "invalid setting ETRAC_BATCH_SIZE"),
        ("ETRAC_LOG_LEVEL", "LOUD", "invalid setting ETRAC_LOG_LEVEL: expected one of DEBUG"),
        ("DISABLE_UI_SCHEDULER", "maybe", "invalid setting DISABLE_UI_SCHEDULER: expected 1/0"),
        ("ETRAC_TIMEOUT", "0", "invalid setting ETRAC_TIMEOUT: expected seconds"),
        (
            "ETRACK_RETENTION",
            "0d",
            "invalid setting ETRACK_RETENTION: a retention period must be at least one day, "
            "got '0d'",
        ),
        ("ETRACK_RETENTION_RAW", "3h", "invalid setting ETRACK_RETENTION_RAW: expected a duration"),
        (
            "ETRACK_FETCH_CRON",
            "61 * * * *",
            "invalid setting ETRACK_FETCH_CRON: expected a cron expression",
        ),
        ("ETRACK_JOB_RECOVER_CRON", "* * *", "invalid setting ETRACK_JOB_RECOVER_CRON"),
        ("ETRACK_SPOOL_MAX_MB", "-1", "invalid setting ETRACK_SPOOL_MAX_MB"),
        (
            "ETRAC_API_BASE",
            "https://someone:hunter2@api.example.com/x",
            "invalid setting ETRAC_API_BASE: expected a URL without credentials",
        ),
    ],
)
def test_bad_values_give_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    message = str(info.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_defaults_are_the_seeds() -> None:
    current = Settings(_env_file=None)  # type: ignore[call-arg]
    assert current.etrac_api_base == "https://api.etrac.com.br/monitoramento"
    assert current.etrac_schema == "e_track"
    assert current.etrac_daily_lock_id == 123456789
    assert current.etrac_backfill_lock_id == 987654321
    assert str(current.etrac_timezone) == "America/Sao_Paulo"
    assert current.disable_ui_scheduler is False
    assert current.uses_embedded_database


def test_typed_values_are_parsed_once_and_shown_as_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETRACK_RETENTION", " 400D ")
    monkeypatch.setenv("ETRACK_RETENTION_RAW", "")
    monkeypatch.setenv("ETRAC_TIMEZONE", "America/Manaus")
    monkeypatch.setenv("ETRACK_FETCH_CRON", "*/5   * * * *")
    current = load_settings(_env_file=None)
    assert current.etrack_retention == Duration(400, "d")
    assert current.etrack_retention_raw is None
    assert current.etrac_timezone == ZoneInfo("America/Manaus")
    assert current.tz is current.etrac_timezone
    assert current.etrack_fetch_cron == "*/5 * * * *"
    # str() is what `etrack settings` prints, and it reads back the same.
    assert str(current.etrack_retention) == "400d"
    assert str(current.etrac_timezone) == "America/Manaus"
    again = Settings(  # type: ignore[call-arg]
        _env_file=None,
        etrack_retention=str(current.etrack_retention),
        etrac_timezone=str(current.etrac_timezone),
    )
    assert again.etrack_retention == current.etrack_retention
    assert again.etrac_timezone == current.etrac_timezone
    assert '"etrack_retention":"400d"' in current.model_dump_json()


def test_durations_count_calendar_months() -> None:
    assert Duration(1, "m").before(date(2025, 3, 31)) == date(2025, 2, 28)
    assert Duration(2, "y").before(date(2024, 2, 29)) == date(2022, 2, 28)
    assert Duration(2, "w").before(date(2025, 1, 10)) == date(2024, 12, 27)


def test_documented_defaults_are_the_typed_text() -> None:
    defaults = {variable: default for variable, default, _, _ in documented_settings()}
    assert defaults["ETRAC_TIMEZONE"] == "America/Sao_Paulo"
    assert defaults["ETRACK_FETCH_CRON"] == "*/2 * * * *"
    assert defaults["ETRACK_RETENTION"] == ""


def test_settings_command_shows_values_as_typed(
    monkeypatch: pytest.MonkeyPatch, run_etrack: Callable[..., tuple[int, str, str]]
) -> None:
    monkeypatch.setenv("ETRACK_RETENTION", "400d")
    monkeypatch.setenv("ETRAC_TIMEZONE", "America/Manaus")
    code, out, err = run_etrack("settings")
    assert code == 0, err
    assert "ETRACK_RETENTION=400d" in out.splitlines()
    assert "ETRAC_TIMEZONE=America/Manaus" in out.splitlines()


def test_zero_retention_stops_etrack_settings_with_one_line(
    monkeypatch: pytest.MonkeyPatch, run_etrack: Callable[..., tuple[int, str, str]]
) -> None:
    monkeypatch.setenv("ETRACK_RETENTION", "0d")
    code, out, err = run_etrack("settings")
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "etrack: error: invalid setting ETRACK_RETENTION: a retention period must be at least "
        "one day, got '0d'"
    ]


@pytest.mark.parametrize("command", ["settings", "fetch-latest"])
@pytest.mark.parametrize(
    "base", ["https://someone:hunter2@api.example.com/monitoramento", "http://hunter2@h:8080"]
)
def test_credentials_in_the_api_base_are_one_line_exit_2_without_the_secret(
    monkeypatch: pytest.MonkeyPatch,
    run_etrack: Callable[..., tuple[int, str, str]],
    command: str,
    base: str,
) -> None:
    monkeypatch.setenv("ETRAC_API_BASE", base)
    monkeypatch.setenv("ETRAC_USER", "u@example.com")
    monkeypatch.setenv("ETRAC_KEY", "k-1")
    code, out, err = run_etrack(command)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("etrack: error: invalid setting ETRAC_API_BASE: ")
    assert "ETRAC_USER and ETRAC_KEY" in lines[0]
    assert "hunter2" not in out + err


def test_timeout_one_number_is_read_with_shorter_connect() -> None:
    assert Settings(_env_file=None, etrac_timeout="30").timeouts == (10.0, 30.0)  # type: ignore[call-arg]
    assert Settings(_env_file=None, etrac_timeout="5").timeouts == (5.0, 5.0)  # type: ignore[call-arg]
    assert Settings(_env_file=None, etrac_timeout="3,60").timeouts == (3.0, 60.0)  # type: ignore[call-arg]


def test_disable_ui_scheduler_reads_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISABLE_UI_SCHEDULER", "1")
    assert load_settings(_env_file=None).disable_ui_scheduler is True


def test_dotenv_is_read_without_overriding_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("ETRAC_USER=from-file@x.com\nETRAC_RATE_SLEEP=0.7\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ETRAC_RATE_SLEEP", "0.2")
    current = load_settings()
    assert current.etrac_user == "from-file@x.com"
    assert current.etrac_rate_sleep == 0.2


def test_pg_variables_select_an_external_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "db.example")
    assert not load_settings(_env_file=None).uses_embedded_database


def test_secrets_never_show_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETRAC_KEY", "sekret-key-123")
    monkeypatch.setenv("PGPASSWORD", "pg-pass-456")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:url-pass-789@h/d")
    current = load_settings(_env_file=None)
    shown = repr(current) + str(current) + current.model_dump_json()
    for secret in ("sekret-key-123", "pg-pass-456", "url-pass-789"):
        assert secret not in shown
    monkeypatch.setenv("DATABASE_URL", "mysql://u:url-pass-789@h/d")
    with pytest.raises(SettingsError) as info:
        load_settings(_env_file=None)
    assert "url-pass-789" not in str(info.value)


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    env = subprocess_env(ETRAC_DAILY_LOCK_ID="not-a-number", ETRACK_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "etrack", "db", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "etrack: error: invalid setting ETRAC_DAILY_LOCK_ID: expected an integer, got 'not-a-number'"
    ]


def test_help_shows_no_secret(tmp_path: Path) -> None:
    env = subprocess_env(ETRAC_KEY="sekret-key-123", PGPASSWORD="pg-pass-456")
    result = subprocess.run(
        [sys.executable, "-m", "etrack", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert "sekret-key-123" not in result.stdout + result.stderr
    assert "pg-pass-456" not in result.stdout + result.stderr
