"""`etrack ARGS` run in-process, through the real entry point and app."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from etrack import cli

RunEtrack = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_etrack(capsys: pytest.CaptureFixture[str]) -> RunEtrack:
    """(exit code, stdout, stderr) of `etrack ARGS`, as `cli.main` ends it."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            cli.main(list(args), prog_name="etrack")
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
