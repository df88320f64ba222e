"""The Users and Audit pages and the share links of the vehicle page, over
the real app (in-process TestClient) and a real PostgreSQL loaded from the
simulator, with logins through the /login form: an admin adds a viewer of one
fleet, who sees that fleet only and may change nothing; disabling ends the
viewer's session at once; a token made on the page works as Bearer until
revoked; the audit lists it all (page and CSV); a share link opens one
vehicle's day read only; no secret ever shows in a page."""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from etrack.access import users as access
from etrack.store import db
from etrack.store import users as store
from etrack.web import create_app
from integration.test_web_api import LOCAL, WebData, busiest_plate_day, loaded_web_data

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ADMIN = "admin@example.com"
ADMIN_PASSWORD = "admin-password-1"
NORTH, SOUTH = "Norte", "Sul"


@pytest.fixture(scope="module")
def data(
    pg_server_url: str, template_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebData]:
    folder: Path = tmp_path_factory.mktemp("web-users")
    with loaded_web_data(
        pg_server_url,
        template_database,
        folder,
        vehicles=4,
        etrack_web_user=ADMIN,
        etrack_web_password=SecretStr(ADMIN_PASSWORD),
    ) as loaded:
        with db.connection(loaded.target) as conn:
            # Two fleets of two vehicles each, whatever the simulator drew.
            conn.execute(
                "UPDATE terminals SET frota = CASE WHEN placa = ANY(%s) THEN %s ELSE %s END",
                (loaded.plates[:2], NORTH, SOUTH),
            )
        yield loaded


@pytest.fixture
def app_client(data: WebData) -> Iterator[TestClient]:
    app = create_app(data.settings, data.target, scheduler=False)
    with TestClient(app, base_url=LOCAL) as client:
        yield client


@contextmanager
def new_client(client: TestClient, jar: httpx.Cookies | None = None) -> Iterator[TestClient]:
    """Another browser on the same app for the block: its own cookies (`jar`,
    else none). The same client (one event loop: the app's pool lives on
    it); the cookies it had are put back after."""
    kept = client.cookies
    client.cookies = jar if jar is not None else httpx.Cookies()
    try:
        yield client
    finally:
        client.cookies = kept


def csrf_of(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, "no csrf_token in the page"
    return found.group(1)


def log_in(client: TestClient, login: str, password: str) -> None:
    token = csrf_of(client.get("/login").text)
    answer = client.post(
        "/login",
        data={"username": login, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert client.get("/", follow_redirects=False).status_code == 200


def page_csrf(client: TestClient, path: str = "/users") -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return csrf_of(answer.text)


def add_user(client: TestClient, **fields: str | list[str]) -> str:
    answer = client.post(
        "/users", data={"csrf_token": page_csrf(client), **fields}, follow_redirects=True
    )
    return answer.text


def plates_of(client: TestClient, **headers: str) -> set[str]:
    answer = client.get("/api/vehicles", headers=headers)
    assert answer.status_code == 200, answer.text
    return {v["placa"] for v in answer.json()["vehicles"]}


def test_a_viewer_of_one_fleet_sees_it_only_changes_nothing_and_stops_when_disabled(
    app_client: TestClient, data: WebData
) -> None:
    admin = app_client
    log_in(admin, ADMIN, ADMIN_PASSWORD)
    admin_jar = admin.cookies
    viewer_login = "vera@example.com"
    password = "vera-password-1"

    # Refused: the passwords differ. The form keeps what was typed, never the password.
    refused = admin.post(
        "/users",
        data={
            "csrf_token": page_csrf(admin),
            "login": viewer_login,
            "role": "viewer",
            "fleets": NORTH,
            "password": password,
            "again": "something-else-1",
        },
    )
    assert refused.status_code == 400
    assert 'id="form-error"' in refused.text
    assert f'value="{viewer_login}"' in refused.text
    assert password not in refused.text
    # A viewer without a scope is refused too.
    no_scope = admin.post(
        "/users",
        data={
            "csrf_token": page_csrf(admin),
            "login": viewer_login,
            "role": "viewer",
            "password": password,
            "again": password,
        },
    )
    assert no_scope.status_code == 400
    assert "needs a scope" in no_scope.text or "escolha contas" in no_scope.text

    page = add_user(
        admin,
        login=viewer_login,
        name="Vera",
        role="viewer",
        fleets=NORTH,
        password=password,
        again=password,
    )
    assert f'data-login="{viewer_login}"' in page
    assert "consulta" in page  # the role in pt-BR
    with db.connection(data.target) as conn:
        secrets = store.get_user(conn, viewer_login)
    assert secrets is not None
    assert secrets.user.fleets == (NORTH,)
    assert secrets.password_hash is not None
    assert secrets.password_hash not in page

    # The last active admin stays: refused with the reason, still active.
    last = admin.post(
        f"/users/{ADMIN}/active", data={"csrf_token": page_csrf(admin), "active": "0"}
    )
    assert last.status_code == 400
    assert "last active admin" in last.text
    # The env admin's password is ETRACK_WEB_PASSWORD: not set here.
    env_password = admin.post(
        f"/users/{ADMIN}/password",
        data={"csrf_token": page_csrf(admin), "password": "x" * 12, "again": "x" * 12},
    )
    assert env_password.status_code == 400
    assert "ETRACK_WEB_PASSWORD" in env_password.text
    # Without CSRF: 403, nothing added.
    forged = admin.post("/users", data={"login": "x@example.com", "role": "admin"})
    assert forged.status_code == 403

    # Reset by the admin: the viewer logs in with the new password.
    password = "vera-password-2"
    reset = admin.post(
        f"/users/{viewer_login}/password",
        data={"csrf_token": page_csrf(admin), "password": password, "again": password},
        follow_redirects=False,
    )
    assert reset.status_code == 303
    with new_client(admin) as viewer:
        log_in(viewer, viewer_login, password)
        assert plates_of(viewer) == set(data.plates[:2])
        assert viewer.get("/users").status_code == 403
        assert viewer.get("/audit").status_code == 403
        assert viewer.get("/audit.csv").status_code == 403
        token = csrf_of(viewer.get("/").text)
        for path in ("/users", "/rules", f"/vehicles/{data.plates[0]}/2025-01-01/share"):
            posted = viewer.post(path, data={"csrf_token": token})
            assert posted.status_code == 403, path
        # A vehicle of the other fleet: as if it did not exist.
        other = data.plates[-1]
        assert viewer.get(f"/vehicles/{other}/{data.past_days[-1]}").status_code == 404

        # Disabled: the very next request is a login again.
        with new_client(viewer, admin_jar) as again:
            again.post(
                f"/users/{viewer_login}/active",
                data={"csrf_token": page_csrf(again), "active": "0"},
            )
        with db.connection(data.target) as conn:
            after = store.get_user(conn, viewer_login)
        assert after is not None
        assert after.user.active is False
        gone = viewer.get("/", follow_redirects=False)
        assert gone.status_code == 303
        assert gone.headers["location"].startswith("/login")
        assert viewer.get("/api/vehicles").status_code == 401

    # The audit: the admin added and disabled the viewer (page and CSV).
    audit = admin.get("/audit", params={"action": "user."})
    assert audit.status_code == 200
    rows = re.findall(r'<tr data-action="([^"]+)" data-actor="([^"]+)"', audit.text)
    assert ("user.add", ADMIN) in rows
    assert ("user.disable", ADMIN) in rows
    assert all(action.startswith("user.") for action, _ in rows)
    assert secrets.password_hash not in audit.text
    exported = admin.get("/audit.csv", params={"action": "user.add", "dialect": "rfc4180"})
    assert exported.status_code == 200
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert {"at", "actor", "action", "target", "ok", "detail"} <= set(table[0])
    added = [r for r in table if r["target"] == viewer_login]
    assert [(r["action"], r["actor"], r["ok"]) for r in added] == [("user.add", ADMIN, "1")]
    assert all(r["action"] == "user.add" for r in table)
    excel = admin.get("/audit.csv", params={"action": "user.add", "dialect": "excel-br"})
    assert excel.content.startswith("\ufeff".encode())
    assert viewer_login in excel.text
    failures = admin.get("/audit", params={"failed": "1"})
    assert 'data-ok="1"' not in failures.text


def test_a_token_made_on_the_page_works_until_it_is_revoked(
    app_client: TestClient, data: WebData
) -> None:
    admin = app_client
    log_in(admin, ADMIN, ADMIN_PASSWORD)
    admin_jar = admin.cookies
    robot = "robot@example.com"
    page = add_user(admin, login=robot, role="api", fleets=SOUTH)
    assert f'data-login="{robot}"' in page
    made = admin.post(
        f"/users/{robot}/tokens",
        data={"csrf_token": page_csrf(admin), "label": "painel", "expires": "30d"},
    )
    assert made.status_code == 200
    found = re.search(r'<code id="token-value">([^<]+)</code>', made.text)
    assert found
    clear = found.group(1)
    assert clear.startswith("etk_")
    # Shown once: not on the next view of the page.
    again = admin.get("/users").text
    assert clear not in again
    assert clear[:10] in again  # the prefix is listed

    # A second admin with a second factor: the page says so, never its secret.
    with db.connection(data.target) as conn:
        access.add_user(conn, "otto@example.com", role="admin", password="otto-password-1")
        totp_secret, _ = access.enroll_totp(conn, "otto@example.com")
    listing = admin.get("/users").text
    assert totp_secret not in listing
    otto = re.search(r'<tr data-login="otto@example.com".*?</tr>', listing, re.DOTALL)
    assert otto
    assert '<td class="user-2fa">Sim</td>' in otto.group(0)
    with db.connection(data.target) as conn:
        # The admin of the env stays the only active one (another test relies on it).
        access.set_active(conn, "otto@example.com", False)

    bearer = {"Authorization": f"Bearer {clear}"}
    with new_client(admin) as script:
        assert plates_of(script, **bearer) == set(data.plates[2:])
        with db.connection(data.target) as conn:
            (token,) = store.list_tokens(conn, robot)
        with new_client(script, admin_jar) as again:
            revoked = again.post(
                f"/users/tokens/{token.id}/revoke",
                data={"csrf_token": page_csrf(again)},
                follow_redirects=False,
            )
        assert revoked.status_code == 303
        assert script.get("/api/vehicles", headers=bearer).status_code == 401
    assert (
        admin.post(
            f"/users/tokens/{token.id}/revoke", data={"csrf_token": page_csrf(admin)}
        ).status_code
        == 404
    )
    audit = admin.get("/audit", params={"actor": ADMIN, "action": "token."}).text
    assert 'data-action="token.create"' in audit
    assert 'data-action="token.revoke"' in audit
    assert clear not in audit


def test_a_share_link_opens_one_vehicle_day_read_only_until_revoked(
    app_client: TestClient, data: WebData
) -> None:
    admin = app_client
    log_in(admin, ADMIN, ADMIN_PASSWORD)
    admin_jar = admin.cookies
    plate, day = busiest_plate_day(data)
    page_path = f"/vehicles/{plate}/{day.isoformat()}"
    vehicle_page = admin.get(page_path).text
    assert 'id="share-panel"' in vehicle_page
    made = admin.post(f"{page_path}/share", data={"csrf_token": csrf_of(vehicle_page), "days": "3"})
    assert made.status_code == 200
    found = re.search(r'<code id="share-url">[^<]*/share/([^<]+)</code>', made.text)
    assert found
    clear = found.group(1)
    assert re.search(r'<tr data-share="(\d+)"', made.text)
    # Not in the session's flash: the next view of the list does not show it.
    listed = admin.get(f"{page_path}/shares").text
    assert clear not in listed
    share_id = int(re.findall(r'<tr data-share="(\d+)"', listed)[-1])

    # A manager of the other fleet: neither shares nor revokes this vehicle's links.
    elsewhere = SOUTH if plate in data.plates[:2] else NORTH
    add_user(
        admin,
        login="mara@example.com",
        role="manager",
        fleets=elsewhere,
        password="mara-password-1",
        again="mara-password-1",
    )
    with new_client(admin) as manager:
        log_in(manager, "mara@example.com", "mara-password-1")
        token = csrf_of(manager.get("/").text)
        assert manager.post(f"{page_path}/share", data={"csrf_token": token}).status_code == 404
        assert manager.get(f"{page_path}/shares").status_code == 404
        refused = manager.post(f"/shares/{share_id}/revoke", data={"csrf_token": token})
        assert refused.status_code == 404
    with db.connection(data.target) as conn:
        link = store.get_share(conn, share_id)
    assert link is not None
    assert link.revoked_at is None

    with new_client(admin) as stranger:
        opened = stranger.get(f"/share/{clear}")
        assert opened.status_code == 200
        assert str(opened.url).endswith(page_path)
        assert 'id="share-panel"' not in opened.text  # read only: no share forms
        other_plate = next(p for p in data.plates if p != plate)
        other_day = data.past_days[0] if data.past_days[0] != day else data.past_days[-1]
        assert stranger.get(f"/vehicles/{other_plate}/{day.isoformat()}").status_code == 404
        assert stranger.get(f"/vehicles/{plate}/{other_day.isoformat()}").status_code == 404
        assert stranger.get("/users").status_code == 404
        # No form to post from, and a post is refused before any form check.
        assert "csrf_token" not in opened.text
        assert stranger.post(f"{page_path}/share", data={"csrf_token": "x"}).status_code == 404

        with new_client(stranger, admin_jar) as again:
            revoked = again.post(
                f"/shares/{share_id}/revoke",
                data={"csrf_token": csrf_of(listed)},
                follow_redirects=False,
            )
        assert revoked.status_code == 303
        assert revoked.headers["location"] == f"{page_path}/shares"
        assert stranger.get(page_path, follow_redirects=False).status_code != 200
        assert stranger.get(f"/share/{clear}").status_code == 404
    assert (
        admin.post("/shares/999999/revoke", data={"csrf_token": csrf_of(listed)}).status_code == 404
    )
    audit = admin.get("/audit", params={"action": "share."}).text
    assert 'data-action="share.create"' in audit
    assert 'data-action="share.open"' in audit
    assert 'data-action="share.revoke"' in audit
    assert clear not in audit
    # The same pages in English.
    english = admin.get(f"{page_path}/shares", params={"lang": "en"}).text
    assert "<h2>Share links</h2>" in english
    assert "No live link to this day." in english
    assert "Add a user" in admin.get("/users").text
    assert "failed only" in admin.get("/audit").text
