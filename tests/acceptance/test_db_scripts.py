"""The seed's database helpers (e-track/manage_db.sh, start-db.sh, stop-db.sh,
db/apply-all-migrations.sh, db/docker-compose.yml) run as a user would.

The embedded path runs for real. The Docker path needs an engine, which test
machines lack: there a stand-in `docker` that records its arguments checks
what the scripts would run, and a `docker` whose engine does not answer
checks that the scripts say so and fall back without attempting compose.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures_db import subprocess_env

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = [
    ROOT / "e-track" / "manage_db.sh",
    ROOT / "e-track" / "start-db.sh",
    ROOT / "e-track" / "stop-db.sh",
    ROOT / "db" / "apply-all-migrations.sh",
]
VENV = Path(sys.executable).parent.parent
BASH = shutil.which("bash") or "/bin/bash"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout of its own (the scripts, the compose file, the venv): the
    scripts run from the repository root and read its .env, which must not
    be the developer's."""
    repo = tmp_path / "repo"
    for script in SCRIPTS:
        target = repo / script.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(script, target)
    shutil.copy2(ROOT / "db" / "docker-compose.yml", repo / "db" / "docker-compose.yml")
    (repo / ".venv").symlink_to(VENV)
    return repo


def fake_docker(folder: Path, *, engine: bool) -> Path:
    """A `docker` that logs its arguments; `docker info` succeeds only with `engine`."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "docker.log"
    program = folder / "docker"
    program.write_text(
        "#!/bin/sh\n"
        f'echo "docker $*" >> "{log}"\n'
        'case "$1" in\n'
        f"  info) exit {0 if engine else 1} ;;\n"
        '  compose) [ "$2" = version ] && echo "Docker Compose version v2.99.0-fake"; exit 0 ;;\n'
        "esac\n"
        "exit 0\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return log


def run(
    script: Path, *args: str, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def embedded_env(tmp_path: Path, checkout: Path) -> Iterator[dict[str, str]]:
    data = tmp_path / "etrack-data"
    shim = tmp_path / "bin"
    fake_docker(shim, engine=False)
    (tmp_path / "tmp").mkdir()
    env = subprocess_env(
        ETRACK_DATA_DIR=str(data),
        PATH=f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
        # pgserver wants a private TMPDIR when not root (design notes).
        TMPDIR=str(tmp_path / "tmp"),
    )
    env.pop("ETRACK_DB_MODE", None)
    yield env
    # Whatever happened, leave no server running.
    subprocess.run(
        [str(checkout / ".venv" / "bin" / "etrack"), "db", "stop"],
        env=env,
        cwd=checkout,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_scripts_are_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None
    done = subprocess.run(
        [shellcheck, *map(str, SCRIPTS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


def test_scripts_are_strict_and_executable() -> None:
    for script in SCRIPTS:
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n"), script
        assert "set -euo pipefail" in text, script
        assert os.access(script, os.X_OK), f"{script} is not executable"
        subprocess.run([BASH, "-n", str(script)], check=True)


def test_embedded_path_end_to_end(
    checkout: Path, embedded_env: dict[str, str], tmp_path: Path
) -> None:
    env = embedded_env
    manage = checkout / "e-track" / "manage_db.sh"
    announced = "etrack's embedded PostgreSQL (no Docker engine answers (docker info failed)"

    started = run(checkout / "e-track" / "start-db.sh", env=env)
    assert started.returncode == 0, started.stderr
    assert announced in started.stdout
    assert "so docker compose is not attempted" in started.stdout
    assert "embedded PostgreSQL running" in started.stdout
    assert str(tmp_path / "etrack-data") in started.stdout

    applied = run(checkout / "db" / "apply-all-migrations.sh", env=env)
    assert applied.returncode == 0, applied.stderr
    assert "applied" in applied.stdout
    assert "schema e_track" in applied.stdout
    again = run(checkout / "db" / "apply-all-migrations.sh", env=env)
    assert again.returncode == 0, again.stderr
    assert "is current" in again.stdout

    status = run(manage, "status", env=env)
    assert status.returncode == 0, status.stderr
    assert "current" in status.stdout

    if shutil.which("psql"):
        # search_path is set: etrack's tables by their plain names.
        queried = run(manage, "psql", "-Atc", "SELECT count(*) FROM terminals", env=env)
        assert queried.returncode == 0, queried.stderr
        assert queried.stdout == "0\n"  # the announcement went to stderr
        assert announced in queried.stderr
        piped = run(manage, "psql", "-At", env=env, stdin="SELECT 40 + 2;\n")
        assert piped.stdout == "42\n"

    stopped = run(checkout / "e-track" / "stop-db.sh", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "embedded PostgreSQL stopped" in stopped.stdout
    twice = run(checkout / "e-track" / "stop-db.sh", env=env)
    assert twice.returncode == 0
    assert "was not running" in twice.stdout

    # No engine: compose was reported, never attempted.
    calls = (tmp_path / "bin" / "docker.log").read_text().splitlines()
    assert calls
    assert set(calls) == {"docker info"}


def test_compose_path_runs_the_seeds_commands(checkout: Path, tmp_path: Path) -> None:
    shim = tmp_path / "bin"
    log = fake_docker(shim, engine=True)
    env = subprocess_env(PATH=f"{shim}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("ETRACK_DB_MODE", None)
    compose_file = checkout / "db" / "docker-compose.yml"

    started = run(checkout / "e-track" / "start-db.sh", env=env)
    assert started.returncode == 0, started.stderr
    assert "docker compose with db/docker-compose.yml (a Docker engine answers)" in started.stdout
    assert "PostgreSQL is up on 127.0.0.1:5432" in started.stdout
    queried = run(checkout / "e-track" / "manage_db.sh", "psql", "-c", "SELECT 1", env=env)
    assert queried.returncode == 0, queried.stderr
    stopped = run(checkout / "e-track" / "stop-db.sh", env=env)
    assert stopped.returncode == 0, stopped.stderr

    calls = log.read_text().splitlines()
    assert f"docker compose -f {compose_file} up -d db" in calls
    assert (
        f"docker compose -f {compose_file} exec -T db pg_isready -q -U sync_user -d sync_apis"
        in calls
    )
    assert (
        f"docker compose -f {compose_file} exec -T db psql -U sync_user -d sync_apis -c SELECT 1"
        in calls
    )
    assert f"docker compose -f {compose_file} down" in calls


def test_usage_errors(checkout: Path, tmp_path: Path) -> None:
    env = subprocess_env()
    manage = checkout / "e-track" / "manage_db.sh"
    assert run(manage, env=env).returncode == 2
    unknown = run(manage, "explode", env=env)
    assert unknown.returncode == 2
    assert "unknown command" in unknown.stderr
    helped = run(manage, "--help", env=env)
    assert helped.returncode == 0
    assert "up" in helped.stdout
    forced = run(manage, "status", env={**env, "ETRACK_DB_MODE": "cloud"})
    assert forced.returncode == 2
    assert "ETRACK_DB_MODE" in forced.stderr


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        done = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False, timeout=60
        )
        if done.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


COMPOSE = _compose_command()


@pytest.mark.skipif(
    COMPOSE is None,
    reason="neither `docker compose` nor `docker-compose` installed (Debian: docker-compose)",
)
def test_db_compose_file_has_the_seeds_defaults(tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    assert COMPOSE is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DB_PORT"))}
    done = subprocess.run(
        [*COMPOSE, "-f", str(ROOT / "db" / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    db = yaml.safe_load(done.stdout)["services"]["db"]
    assert db["image"] == "postgres:16"
    assert db["environment"] == {
        "POSTGRES_USER": "sync_user",
        "POSTGRES_PASSWORD": "sync_pass",
        "POSTGRES_DB": "sync_apis",
    }
    published = db["ports"][0]
    if isinstance(published, dict):  # compose v2 prints the long form
        assert (published["host_ip"], str(published["published"])) == ("127.0.0.1", "5432")
    else:
        assert published.removesuffix("/tcp") == "127.0.0.1:5432:5432"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
