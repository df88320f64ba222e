"""The accounts file (ETRACK_ACCOUNTS_FILE): parsing, defaults, and one
clear line (exit 2) for every way it can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from etrack import cli
from etrack.config import Settings, load_accounts, select_accounts
from etrack.errors import AccountsError

GOOD = """
[accounts.north]
user = "north@example.com"
key = "north-key"
rate_limit = 2.5
timezone = "America/Manaus"

[accounts.south-2]
user = "south@example.com"
key_env = "SOUTH_KEY"
api_base = "http://127.0.0.1:9/monitoramento/"
"""


def settings_for(path: Path | None, **extra: object) -> Settings:
    return Settings(_env_file=None, etrack_accounts_file=path, **extra)  # type: ignore[call-arg]


def test_without_a_file_the_single_account_is_default() -> None:
    current = settings_for(None, etrac_user="me@example.com", etrac_key="k")
    [account] = load_accounts(current)
    assert account.name == "default"
    assert current.for_account(account) is current


def test_each_account_has_its_own_credentials_zone_and_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOUTH_KEY", "south-secret")
    path = tmp_path / "accounts.toml"
    path.write_text(GOOD)
    north, south = load_accounts(settings_for(path, etrac_rate_limit=7.0))
    assert (north.name, north.user, north.rate_limit) == ("north", "north@example.com", 2.5)
    assert north.timezone.key == "America/Manaus"
    assert south.timezone.key == "America/Sao_Paulo"
    assert south.rate_limit == 7.0  # ETRAC_RATE_LIMIT is the default
    assert south.key is not None
    assert south.key.get_secret_value() == "south-secret"
    assert south.api_base == "http://127.0.0.1:9/monitoramento"
    # The settings one account's fetches run with carry its values.
    current = settings_for(path, etrac_rate_limit=7.0)
    north_settings = current.for_account(north)
    assert north_settings.tz.key == "America/Manaus"
    assert north_settings.etrac_rate_limit == 2.5
    assert north_settings.etrac_user == "north@example.com"
    assert current.for_account(south).etrac_api_base == "http://127.0.0.1:9/monitoramento"
    assert current.tz.key == "America/Sao_Paulo"
    # A changed key changes the fingerprint (a failing account is retried).
    before = south.fingerprint
    monkeypatch.setenv("SOUTH_KEY", "fixed")
    assert load_accounts(settings_for(path))[1].fingerprint != before
    assert [a.name for a in select_accounts([north, south], "south-2")] == ["south-2"]
    with pytest.raises(AccountsError, match="unknown account 'west'; accounts: north, south-2"):
        select_accounts([north, south], "west")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[accounts.a\nuser=1", "not valid TOML"),
        ("", "expected one [accounts.NAME] table per account, found none"),
        ('[accounts.A]\nuser="u"\nkey="k"', "account name 'A': expected lower-case"),
        ('[accounts.a]\nkey="k"', "account 'a': 'user' (the eTrac login e-mail) is missing"),
        ('[accounts.a]\nuser="u"', "account 'a': give exactly one of 'key' or 'key_env'"),
        ('[accounts.a]\nuser="u"\nkey_env="NOPE_KEY"', "environment variable NOPE_KEY is not set"),
        ('[accounts.a]\nuser="u"\nkey="k"\ncolour="red"', "account 'a': unknown key 'colour'"),
        (
            '[accounts.a]\nuser="u"\nkey="k"\ntimezone="Mars/Base"',
            "account 'a': timezone: expected an IANA time zone",
        ),
        (
            '[accounts.a]\nuser="u"\nkey="k"\nrate_limit=0',
            "account 'a': rate_limit: Input should be greater than 0",
        ),
        (
            '[accounts.a]\nuser="u"\nkey="k"\n[accounts.b]\nuser="U"\nkey="k"',
            "accounts 'a' and 'b' have the same user",
        ),
    ],
)
def test_a_malformed_file_is_one_line_naming_it(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    with pytest.raises(AccountsError) as error:
        load_accounts(settings_for(path))
    message = str(error.value)
    assert message.startswith(f"accounts file {path}: ")
    assert problem in message
    assert "\n" not in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AccountsError, match=r"accounts\.toml: no such file"):
        load_accounts(settings_for(tmp_path / "accounts.toml"))


@pytest.mark.parametrize(
    "argv",
    [
        ["fetch-latest"],
        ["fetch-plate", "ABC1234"],
        ["accounts"],
        ["accounts", "check"],
        ["daily", "--account", "north"],
        ["backfill", "--date-start", "2025-01-01", "--date-end", "2025-01-02", "--account", "x"],
        ["worker"],
    ],
)
def test_commands_refuse_a_malformed_file_with_exit_2(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text("[accounts.north]\nuser = 'north@example.com'\n")
    monkeypatch.setenv("ETRACK_ACCOUNTS_FILE", str(path))
    # Never reached: the file is refused before any database is opened.
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv, prog_name="etrack")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"etrack: error: accounts file {path}: account 'north': give exactly one of 'key' or "
        "'key_env'"
    )


def test_an_unknown_account_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text("[accounts.north]\nuser = 'north@example.com'\nkey = 'k'\n")
    monkeypatch.setenv("ETRACK_ACCOUNTS_FILE", str(path))
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fetch-latest", "--account", "south"], prog_name="etrack")
    assert exit_info.value.code == 2
    assert "unknown account 'south'; accounts: north" in capsys.readouterr().err
