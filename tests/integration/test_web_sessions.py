"""Sessions of the web UI's users (docs/users.md "Sessions"): cookie flags,
idle and absolute timeouts, the end of every session on a password change or
a disable, the admins' second factor, one's own password, and that no secret
ever reaches an answer. In-process over HTTP, on a database of its own."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pyotp
import pytest
from pydantic import SecretStr

from etrack.access import users as access
from etrack.config import Settings
from etrack.store import db
from etrack.store.audit import Actor, acting
from etrack.web import auth, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

LOCAL = "http://127.0.0.1:5001"
ADMIN = "chefe@example.com"
ADMIN_PASSWORD = "admin-password-1"
VIEWER = "ana@example.com"
VIEWER_PASSWORD = "viewer-password-1"


def settings_for(target: db.Target, tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=SecretStr(target.conninfo),
        etrack_data_dir=tmp_path / "data",
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def people(target: db.Target) -> db.Target:
    with db.connection(target) as conn, acting(Actor("test")):
        access.add_user(conn, ADMIN, role="admin", password=ADMIN_PASSWORD)
        access.add_user(conn, VIEWER, role="viewer", password=VIEWER_PASSWORD, fleets=["F1"])
    return target


def log_in(client: TestClient, login: str, password: str, code: str = "") -> int:
    form = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    data = {"username": login, "password": password, "csrf_token": token.group(1)}
    if code:
        data["code"] = code
    return client.post("/login", data=data, follow_redirects=False).status_code


SESSION = "etrack_session"


def session_of(client: TestClient) -> str:
    """The session cookie the server set last."""
    values = [c.value for c in client.cookies.jar if c.name == SESSION and c.value]
    assert values
    return str(values[-1])


def csrf_of(client: TestClient, path: str = "/account") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(
    people: db.Target, tmp_path: Path
) -> None:
    plain = create_app(settings_for(people, tmp_path), people, scheduler=False)
    with TestClient(plain, base_url=LOCAL) as client:
        form = client.get("/login")
        cookie = form.headers["set-cookie"]
        assert "etrack_session=" in cookie
        assert "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower()
        assert "secure" not in cookie.lower()
    with TestClient(plain, base_url="https://127.0.0.1:5001") as client:
        assert "; Secure" in client.get("/login").headers["set-cookie"]
    # Behind a proxy: believed only when told to.
    proxied = {"x-forwarded-proto": "https", "x-forwarded-for": "198.51.100.7"}
    with TestClient(plain, base_url=LOCAL) as client:
        assert "secure" not in client.get("/login", headers=proxied).headers["set-cookie"].lower()
    trusting = create_app(
        settings_for(people, tmp_path, etrack_web_trust_proxy=True), people, scheduler=False
    )
    with TestClient(trusting, base_url=LOCAL) as client:
        assert "; Secure" in client.get("/login", headers=proxied).headers["set-cookie"]
    # (A Secure cookie comes back over https only.)
    with TestClient(trusting, base_url="https://127.0.0.1:5001") as client:
        form = client.get("/login", headers=proxied).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        client.post(
            "/login",
            headers=proxied,
            data={"username": VIEWER, "password": "wrong-password", "csrf_token": token.group(1)},
        )
    with db.connection(people) as conn:
        row = conn.execute(
            "SELECT address FROM audit WHERE action = 'login.failure' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    # The audit records the client's address as the trusted proxy saw it.
    assert row == ("198.51.100.7",)


def test_idle_and_absolute_timeouts_end_a_session(
    people: db.Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(
        people, tmp_path, etrack_web_session_idle_s=600, etrack_web_session_max_s=3600
    )
    app = create_app(settings, people, scheduler=False)
    clock = [1_800_000_000.0]
    monkeypatch.setattr(auth, "_now", lambda: clock[0])
    with TestClient(app, base_url=LOCAL) as client:
        assert log_in(client, VIEWER, VIEWER_PASSWORD) == 303
        assert client.get("/api/vehicles").status_code == 200
        clock[0] += 599
        assert client.get("/api/vehicles").status_code == 200
        # Used again: the idle time starts over, up to the absolute limit.
        for _ in range(5):
            clock[0] += 590
            assert client.get("/api/vehicles").status_code == 200
        clock[0] += 590  # 3549 s after the login plus this step: past 3600
        assert client.get("/api/vehicles").status_code == 401
    with TestClient(app, base_url=LOCAL) as client:
        assert log_in(client, VIEWER, VIEWER_PASSWORD) == 303
        clock[0] += 601
        assert client.get("/api/vehicles").status_code == 401
        assert client.get("/", follow_redirects=False).headers["location"].startswith("/login")


def test_a_password_change_or_a_disable_ends_every_session_at_once(
    people: db.Target, tmp_path: Path
) -> None:
    app = create_app(settings_for(people, tmp_path), people, scheduler=False)
    # Two sessions of one user, as two browsers (one client: one event loop).
    with TestClient(app, base_url=LOCAL) as client:
        assert log_in(client, VIEWER, VIEWER_PASSWORD) == 303
        first = session_of(client)
        client.cookies.clear()
        assert log_in(client, VIEWER, VIEWER_PASSWORD) == 303
        second = session_of(client)

        def as_session(value: str) -> TestClient:
            client.cookies.clear()
            client.cookies.set(SESSION, value, domain="127.0.0.1", path="/")
            return client

        # A viewer may change their own password (the one post it may make).
        token = csrf_of(as_session(first))
        wrong = client.post(
            "/account/password",
            data={"current": "not-it-at-all", "new": "new-password-22", "again": "new-password-22",
                  "csrf_token": token},
        )  # fmt: skip
        assert wrong.status_code == 400
        changed = client.post(
            "/account/password",
            data={"current": VIEWER_PASSWORD, "new": "new-password-22", "again": "new-password-22",
                  "csrf_token": token},
        )  # fmt: skip
        assert changed.status_code == 200
        assert 'id="password-changed"' in changed.text
        first = session_of(client)
        # This session goes on; the other one ended.
        assert client.get("/api/vehicles").status_code == 200
        assert as_session(second).get("/api/vehicles").status_code == 401
        client.cookies.clear()
        assert log_in(client, VIEWER, VIEWER_PASSWORD) == 401
        assert log_in(client, VIEWER, "new-password-22") == 303
        second = session_of(client)
        with db.connection(people) as conn, acting(Actor("test")):
            access.set_active(conn, VIEWER, False)
        assert as_session(first).get("/api/vehicles").status_code == 401
        assert as_session(second).get("/api/vehicles").status_code == 401
        client.cookies.clear()
        assert log_in(client, VIEWER, "new-password-22") == 401


def test_an_admin_with_a_second_factor_needs_the_code(people: db.Target, tmp_path: Path) -> None:
    with db.connection(people) as conn, acting(Actor("test")):
        secret, uri = access.enroll_totp(conn, ADMIN)
    assert uri.startswith("otpauth://totp/")
    app = create_app(settings_for(people, tmp_path), people, scheduler=False)
    bodies: list[str] = []
    with TestClient(app, base_url=LOCAL) as client:
        # The right password alone: the form asks for the code.
        form = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token
        asked = client.post(
            "/login",
            data={"username": ADMIN, "password": ADMIN_PASSWORD, "csrf_token": token.group(1)},
        )
        assert asked.status_code == 401
        assert 'id="code-needed"' in asked.text
        bodies.append(asked.text)
        assert log_in(client, ADMIN, ADMIN_PASSWORD, code="000000") in (401,)
        assert log_in(client, ADMIN, ADMIN_PASSWORD, code=pyotp.TOTP(secret).now()) == 303
        page = client.get("/")
        assert page.status_code == 200
        bodies.append(page.text)
        bodies.append(client.get("/account").text)
    with TestClient(app, base_url=LOCAL) as script:
        basic = script.get("/api/vehicles", auth=(ADMIN, ADMIN_PASSWORD))
        assert basic.status_code == 401
        assert "second factor" in basic.json()["detail"]
        bodies.append(basic.text)
    with db.connection(people) as conn:
        hashes = [str(r[0]) for r in conn.execute("SELECT password_hash FROM users").fetchall()]
        audit = str(conn.execute("SELECT * FROM audit").fetchall())
    for text in (*bodies, audit):
        assert secret not in text
        assert ADMIN_PASSWORD not in text
        assert all(h not in text for h in hashes)


def test_a_viewer_may_read_but_not_post_and_never_reaches_the_admin_pages(
    people: db.Target, tmp_path: Path
) -> None:
    app = create_app(settings_for(people, tmp_path), people, scheduler=False)
    with TestClient(app, base_url=LOCAL) as client:
        assert log_in(client, VIEWER, VIEWER_PASSWORD) == 303
        token = csrf_of(client, "/")
        assert client.get("/api/vehicles").status_code == 200
        for path in ("/rules", "/geofences", "/reports/schedules", "/jobs/fetch-latest"):
            assert client.post(path, data={"csrf_token": token}).status_code == 403, path
        for path in ("/users", "/audit"):
            assert client.get(path).status_code == 403, path
        # Logging out is always allowed.
        assert (
            client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code
            == 303
        )
        assert client.get("/api/vehicles").status_code == 401


def test_without_users_only_loopback_is_served_and_then_everything_needs_a_login(
    target: db.Target, tmp_path: Path
) -> None:
    app = create_app(settings_for(target, tmp_path), target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as local:
        assert local.get("/api/vehicles").status_code == 200
    with TestClient(app, base_url="http://192.0.2.10:5001") as remote:
        refused = remote.get("/api/vehicles")
        assert refused.status_code == 403
        assert "etrack users add" in refused.json()["detail"]
    with db.connection(target) as conn, acting(Actor("test")):
        access.add_user(conn, VIEWER, role="viewer", password=VIEWER_PASSWORD, fleets=["F1"])
    fresh = create_app(settings_for(target, tmp_path), target, scheduler=False)
    with TestClient(fresh, base_url=LOCAL) as local:
        assert local.get("/api/vehicles").status_code == 401


def test_a_token_records_its_last_use_once_a_minute_and_stops_when_revoked(
    people: db.Target, tmp_path: Path
) -> None:
    with db.connection(people) as conn, acting(Actor("test")):
        made = access.create_token(conn, VIEWER, expires="30d", label="erp")
    app = create_app(settings_for(people, tmp_path), people, scheduler=False)
    bearer = {"Authorization": f"Bearer {made.clear}"}

    def uses() -> list[tuple[object, ...]]:
        with db.connection(people) as conn:
            return conn.execute(
                "SELECT actor, address FROM audit WHERE action = 'token.use' ORDER BY id"
            ).fetchall()

    with TestClient(app, base_url=LOCAL, client=("192.0.2.44", 1234)) as script:
        assert script.get("/api/vehicles", headers=bearer).status_code == 200
        assert script.get("/api/vehicles", headers=bearer).status_code == 200
        assert uses() == [(VIEWER, "192.0.2.44")]
        with db.connection(people) as conn:
            row = conn.execute("SELECT last_used_from FROM api_tokens").fetchone()
        assert row == ("192.0.2.44",)
        # A viewer's token reads, never writes.
        assert script.post("/rules", headers=bearer).status_code == 403
        with db.connection(people) as conn, acting(Actor("test")):
            assert access.revoke_token(conn, made.id)
            assert not access.revoke_token(conn, made.id)
        refused = script.get("/api/vehicles", headers=bearer)
        assert refused.status_code == 401
        assert made.clear not in refused.text
