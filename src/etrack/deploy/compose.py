"""A Docker Compose stack (PostgreSQL, the web UI, a worker) and the image's
Dockerfile, filled in from the templates beside this module.

`etrack deploy compose` (etrack.cli.ops) writes or prints them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import PurePosixPath

from etrack.deploy.common import UPGRADE_ARGV, WEB_PORT, WORKER_ARGV, web_argv

__all__ = ["POSTGRES_IMAGE", "PYTHON_IMAGE", "render_compose"]

PYTHON_IMAGE = "python:3.11-slim"
POSTGRES_IMAGE = "postgres:16"

_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def _template(name: str) -> str:
    return resources.files("etrack").joinpath("deploy/templates", name).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        return values[match[1]]

    return _PLACEHOLDER.sub(one, text)


def _flow(argv: Sequence[str]) -> str:
    # A JSON array is a valid YAML flow sequence, quoting included.
    return json.dumps(list(argv))


def render_compose(context: str = ".", dockerfile: str = "Dockerfile") -> dict[str, str]:
    """docker-compose.yml, Dockerfile and its ignore file (BuildKit reads
    `<Dockerfile>.dockerignore` beside the Dockerfile).

    `context` is the project root as seen from the compose file's folder;
    `dockerfile` is the Dockerfile's path relative to that context.
    """
    port = str(WEB_PORT)
    values = {
        "CONTEXT": json.dumps(context),
        "DOCKERFILE": json.dumps(str(PurePosixPath(dockerfile))),
        "PYTHON_IMAGE": PYTHON_IMAGE,
        "POSTGRES_IMAGE": POSTGRES_IMAGE,
        "WEB_PORT": port,
        "WEB_COMMAND": _flow(["etrack", *web_argv("0.0.0.0", WEB_PORT)]),  # noqa: S104 - inside the container
        "WORKER_COMMAND": _flow(["etrack", *WORKER_ARGV]),
        "MIGRATE_COMMAND": _flow(["etrack", *UPGRADE_ARGV]),
        "WEB_HEALTHCHECK": _flow(
            [
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=5)",
            ]
        ),
        "WORKER_HEALTHCHECK": _flow(["CMD", "etrack", "db", "status"]),
    }
    return {
        "docker-compose.yml": _fill(_template("docker-compose.yml"), values),
        "Dockerfile": _fill(_template("Dockerfile"), values),
        "Dockerfile.dockerignore": _template("Dockerfile.dockerignore"),
    }
