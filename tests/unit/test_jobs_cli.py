"""The jobs commands' wiring: registration, and bad input refused (exit 2)
before any database or API is touched."""

from __future__ import annotations

import pytest
import typer

from etrack import cli
from etrack.cli.jobs import register


def test_register_adds_the_commands_once() -> None:
    app = typer.Typer()
    register(app)
    register(app)
    assert sorted(info.name or "" for info in app.registered_commands) == [
        "daily",
        "jobs",
        "worker",
    ]
    assert [info.name for info in app.registered_groups] == ["backfill"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["backfill"], "backfill needs --date-start and --date-end"),
        (
            ["backfill", "--date-start", "2025-01-07", "--date-end", "2025-01-01"],
            "--date-end 2025-01-01 is before --date-start 2025-01-07",
        ),
        (
            ["backfill", "--date-start", "2025-13-01", "--date-end", "2025-01-01"],
            "--date-start: 2025-13-01 is not a day of the calendar",
        ),
        (
            ["backfill", "--date-start", "2025-01-01", "--date-end", "2025-01-02", "--plates", "X"],
            "--plates: ",
        ),
        (["daily", "--date", "yesterday"], "--date: expected a date"),
        (
            ["backfill", "summary", "--date-start", "2025-01-02", "--date-end", "2025-01-01"],
            "is before --date-start",
        ),
    ],
)
def test_bad_input_is_a_usage_error(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    register(cli.app)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv, prog_name="etrack")
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
