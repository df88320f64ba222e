"""A database that does not answer: the web says 503 with Retry-After (try
again later), JSON for the API and a short page for a browser, never a 500.

No database is needed: the app points at a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from etrack.config import Settings
from etrack.store import db
from etrack.web import create_app

LOCAL = "http://127.0.0.1:5001"


def closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_app(tmp_path: Path) -> tuple[FastAPI, int]:
    port = closed_port()
    url = f"postgresql://nobody@127.0.0.1:{port}/none"
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(url),
        etrack_data_dir=tmp_path / "data",
    )
    return create_app(settings, db.Target(url, "e_track", embedded=False), scheduler=False), port


def get_all(app: FastAPI, paths: list[str]) -> list[httpx.Response]:
    """GET the paths at once (each waits for the pool's checkout timeout),
    inside the app's lifespan; app errors are raised, not turned into 500s."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=LOCAL, timeout=60) as client,
        ):
            return list(await asyncio.gather(*(client.get(p) for p in paths)))

    return asyncio.run(run())


@pytest.mark.slow
def test_an_outage_is_a_503_with_retry_after_for_the_api_and_the_pages(tmp_path: Path) -> None:
    app, port = unreachable_app(tmp_path)
    api, page, jobs, health = get_all(app, ["/api/vehicles", "/", "/api/jobs/runs", "/healthz"])

    for response in (api, jobs):
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) > 0
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == {"detail": "database unavailable, try again in a moment"}

    assert page.status_code == 503, page.text
    assert int(page.headers["retry-after"]) > 0
    assert page.headers["content-type"].startswith("text/html")
    # The pages speak the UI's Portuguese (issue 14); the API keeps the English above.
    assert "o banco de dados não responde" in page.text
    assert "Traceback" not in page.text

    for response in (api, page, jobs):
        # The log names the server; the answer does not.
        assert f"127.0.0.1:{port}" not in response.text
        assert "nobody" not in response.text

    # The health report stays what it was: degraded, in its own JSON shape.
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert health.json()["database"]["reachable"] is False
