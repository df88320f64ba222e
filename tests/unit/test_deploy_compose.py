"""`etrack deploy compose`: docker-compose.yml and Dockerfile, checked by
reading them and with `docker compose config` (or Debian's docker-compose
1.29), which validate a file without a Docker engine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML reads the generated compose file")

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "PGPASSWORD": "pg-secret",
    "ETRAC_USER": "fleet@example.com",
    "ETRAC_KEY": "api-secret",
    "ETRACK_WEB_USER": "ops",
    "ETRACK_WEB_PASSWORD": "web-secret",
    # Written for a run outside Docker: compose must override these two.
    "PGHOST": "127.0.0.1",
    "DATABASE_URL": "postgresql://u:p@localhost/x",
}


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        done = subprocess.run(
            [docker, "compose", "version"], capture_output=True, check=False, timeout=60
        )
        if done.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture
def generated(
    tmp_path: Path, run_etrack: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "deploy"
    code, stdout, stderr = run_etrack("deploy", "compose", "--output", str(out))
    assert code == 0, stderr
    assert "wrote 3 file(s)" in stdout
    return out


def load(out: Path) -> dict[str, Any]:
    data = yaml.safe_load((out / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_file(generated: Path) -> None:
    text = (generated / "docker-compose.yml").read_text()
    assert "while true" not in text
    assert "sleep" not in text
    data = load(generated)
    services = data["services"]
    assert set(services) == {"db", "migrate", "web", "worker"}
    assert services["db"]["image"] == "postgres:16"
    assert "${PGPASSWORD:?" in services["db"]["environment"]["POSTGRES_PASSWORD"]
    for name in ("db", "web", "worker"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL"), name
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["etrack", "db", "upgrade"]
    everywhere = "0.0.0.0"  # noqa: S104 - inside the container, behind the published loopback port
    assert services["web"]["command"] == ["etrack", "web", "--host", everywhere, "--port", "5001"]
    assert services["worker"]["command"] == ["etrack", "worker"]
    for name in ("migrate", "web", "worker"):
        service = services[name]
        assert service["env_file"] == ".env"
        assert service["environment"]["PGHOST"] == "db"
        assert service["environment"]["DATABASE_URL"] == ""
        assert service["image"] == "etrack:latest"
        assert service["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["web"]["environment"]["DISABLE_UI_SCHEDULER"] == "1"
    assert services["web"]["ports"] == ["127.0.0.1:5001:5001"]
    assert "/healthz" in " ".join(services["web"]["healthcheck"]["test"])
    # The build context is the project, the Dockerfile the generated one.
    build = services["web"]["build"]
    context = (generated / build["context"]).resolve()
    assert (context / "pyproject.toml").is_file()
    assert (context / build["dockerfile"]).resolve() == generated / "Dockerfile"


def test_dockerfile_is_slim_non_root_and_secret_free(generated: Path) -> None:
    text = (generated / "Dockerfile").read_text()
    instructions = [
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")
    ]
    froms = [rest for word, *rest in instructions if word == "FROM"]
    assert froms
    assert all(re.match(r"python:3\.\d+-slim\b", rest[0]) for rest in froms)
    users = [rest[0].strip() for word, *rest in instructions if word == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    assert re.search(r"useradd .*--uid 10001", text.replace("\\\n", " "))
    for word, *rest in instructions:
        if word in ("ENV", "ARG"):
            assert not re.search(r"KEY|PASSWORD|SECRET|TOKEN|DATABASE_URL", rest[0]), rest
        if word in ("COPY", "ADD"):
            sources = rest[0].split()[:-1]
            assert not any(s in (".", "./") or ".env" in s for s in sources), rest
    assert 'CMD ["etrack", "web", "--host", "0.0.0.0", "--port", "5001"]' in text
    ignore = (generated / "Dockerfile.dockerignore").read_text().splitlines()
    assert ".env" in ignore
    assert ".venv" in ignore


def test_every_file_the_dockerfile_copies_exists(generated: Path) -> None:
    text = (generated / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert list(ROOT.glob(source)), source


def test_printed_without_output(
    run_etrack: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, _ = run_etrack("deploy", "compose")
    assert code == 0
    assert "# ===== docker-compose.yml =====" in out
    assert "# ===== Dockerfile =====" in out
    assert 'context: "."' in out


COMPOSE = compose_command()


@pytest.mark.skipif(
    COMPOSE is None,
    reason="neither `docker compose` nor `docker-compose` installed (Debian: docker-compose)",
)
def test_docker_compose_config_accepts_it(generated: Path) -> None:
    assert COMPOSE is not None
    (generated / ".env").write_text("".join(f"{k}={v}\n" for k, v in ENV.items()))
    env = {k: v for k, v in os.environ.items() if k not in ENV and not k.startswith("PG")}
    done = subprocess.run(
        [*COMPOSE, "-f", str(generated / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
        cwd=generated,
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    web = resolved["services"]["web"]["environment"]
    # .env's values arrive, except those Docker must override.
    assert web["ETRAC_KEY"] == "api-secret"
    assert web["PGHOST"] == "db"
    assert web["DATABASE_URL"] in ("", None)
    assert resolved["services"]["db"]["environment"]["POSTGRES_PASSWORD"] == "pg-secret"

    (generated / ".env").write_text("ETRAC_USER=fleet@example.com\n")
    missing = subprocess.run(
        [*COMPOSE, "-f", str(generated / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
        cwd=generated,
    )
    assert missing.returncode != 0
    assert "set PGPASSWORD in .env" in missing.stderr
