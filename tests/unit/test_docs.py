"""Keep the docs honest: the README's commands, .env.example, CI."""

from __future__ import annotations

import re
from pathlib import Path

from etrack.settings import documented_settings, render_env_example

ROOT = Path(__file__).resolve().parents[2]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", setup)


def test_readme_has_the_two_setup_commands() -> None:
    main_job, tests = readme_commands()
    assert main_job.startswith("python3 -m venv .venv && ")
    assert "etrack" in main_job
    assert tests.startswith("python3 -m venv .venv && ")
    assert tests.endswith(".venv/bin/pytest")


def test_ci_runs_exactly_the_readme_test_command() -> None:
    _, tests = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_env_example_is_current() -> None:
    assert (ROOT / ".env.example").read_text() == render_env_example()


def test_every_setting_is_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    for variable, *_ in documented_settings():
        assert re.search(rf"^#? ?{variable}=", text, re.MULTILINE), variable
