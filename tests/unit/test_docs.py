"""Keep the docs honest: the README's commands, .env.example, CI, and the
generated files (docs/cli.md, docs/configuration.md, e-track/schema.sql)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from etrack.config import documented_settings, render_env_example

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
    # The command itself, its failure stopping the script.
    assert f"{tests} || exit 1" in ci


def test_env_example_is_current() -> None:
    assert (ROOT / ".env.example").read_text() == render_env_example()


def test_every_setting_is_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    for variable, *_ in documented_settings():
        assert re.search(rf"^#? ?{variable}=", text, re.MULTILINE), variable


def test_generated_reference_docs_are_current(monkeypatch: pytest.MonkeyPatch) -> None:
    from etrack.cli import docgen

    monkeypatch.chdir(ROOT)
    for name, render in docgen.RENDERERS.items():
        committed = (ROOT / name).read_text(encoding="utf-8")
        assert committed == render(), f"{name} is stale: run python -m etrack.cli.docgen --write"


def test_every_cli_command_is_documented() -> None:
    import typer

    from etrack.cli import app

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")

    def names(command: object, path: list[str]) -> list[str]:
        found = [" ".join(path)] if path else []
        for name, sub in getattr(command, "commands", {}).items():
            found += names(sub, [*path, name])
        return found

    for name in names(typer.main.get_command(app), []):
        assert f"## `{name}`" in text, name


def test_architecture_doc_names_every_module_and_layer() -> None:
    """docs/architecture.md is where a newcomer learns the layout: a module
    it does not name, or a layer of the import contract it does not show, is
    a module nobody was told where it belongs."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    src = ROOT / "src" / "etrack"
    unnamed = [
        str(path.relative_to(src))
        for path in sorted(src.rglob("*.py"))
        if path.name not in {"__init__.py", "__main__.py"}
        # One module per resource or page: the doc names the packages.
        and path.parent.relative_to(src).parts not in {("web", "api"), ("web", "pages")}
        and path.name not in text
        and f"`{path.stem}`" not in text
    ]
    assert unnamed == []
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c.get("containers") == ["etrack"])
    diagram = text.split("```")[1]
    rows = [
        line.split()[: len(layer.split())]
        for line, layer in zip(diagram.strip().splitlines(), layers["layers"], strict=True)
    ]
    assert [" ".join(r) for r in rows] == layers["layers"]
