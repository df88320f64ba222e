"""docs/operations.md and docs/scaling.md stay true: the commands and options
they show exist, the files they name exist, the metrics they alert on are
the ones /metrics serves, and the variables are real settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer

from etrack import cli
from etrack.config import documented_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "operations.md", ROOT / "docs" / "scaling.md"]
# Variables that are not etrack settings: the scripts' own, the web layer's
# login (read by etrack.web.security), the test and benchmark harness.
OTHER_VARIABLES = {
    "ETRACK_DB_MODE",
    "ETRACK_WEB_USER",
    "ETRACK_WEB_PASSWORD",
    "ETRACK_TEST_DATABASE_URL",
    "ETRACK_BENCH_DATABASE_URL",
}
# Commands other layers add to `etrack`; checked once they are wired in.
ELSEWHERE = {"web"}

# `etrack` where a shell would run it: line start, after a space or `(`, or bin/.
_COMMAND = re.compile(
    r"(?:^|(?<=[\s(])|(?<=bin/))etrack((?: [a-z][a-z-]*)+)((?: (?:--[a-z-]+|[A-Z0-9][^ `|]*))*)"
)


def full_app() -> Any:
    """The `etrack` command tree, every group's commands registered."""
    return typer.main.get_command(cli.app)


def mentions() -> list[tuple[str, list[str], list[str]]]:
    """(document, command words, options) of every `etrack ...` in code."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        fenced = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
        code = fenced + re.findall(r"`([^`\n]+)`", prose)
        for snippet in code:
            for line in snippet.splitlines():
                for match in _COMMAND.finditer(line):
                    words = match.group(1).split()
                    options = re.findall(r"--[a-z-]+", match.group(2))
                    found.append((doc.name, words, options))
    return found


def test_documented_commands_and_options_exist() -> None:
    tree = full_app()
    checked = 0
    for doc, words, options in mentions():
        command = tree
        for word in words:
            sub = getattr(command, "commands", {}).get(word)
            if sub is None:
                break
            command = sub
        if command is tree:
            if words[0] in ELSEWHERE:
                continue
            pytest.fail(f"{doc}: `etrack {' '.join(words)}` is not an etrack command")
        known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
        for option in options:
            assert option in known, f"{doc}: `etrack {' '.join(words)} {option}` does not exist"
        checked += 1
    assert checked >= 20


def test_named_files_exist() -> None:
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for path in set(
            re.findall(
                r"\b((?:e-track|db|benchmarks|docs|tests/\w+)/[\w./-]+\.(?:sh|yml|py|md))", text
            )
        ):
            assert (ROOT / path).exists(), f"{doc.name} names {path}"
        for target in re.findall(r"\]\(([\w./-]+\.md)(?:#[\w-]+)?\)", text):
            assert (doc.parent / target).exists(), f"{doc.name} links to {target}"


def test_alerted_metrics_are_served() -> None:
    served = (ROOT / "src" / "etrack" / "web" / "metrics.py").read_text(encoding="utf-8")
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    names = set(re.findall(r"\b(etrack_[a-z_]+)", text)) - {"etrack_web"}
    assert len(names) >= 8
    for name in names:
        assert f'"{name.removesuffix("_total")}"' in served, f"/metrics has no {name}"


def test_named_variables_are_settings() -> None:
    settings = {variable for variable, *_ in documented_settings()}
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for name in set(re.findall(r"\b(ETRACK?_[A-Z_]+[A-Z])\b", text)):
            assert name in settings or name in OTHER_VARIABLES, f"{doc.name}: {name}"
