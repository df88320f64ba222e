"""`etrack users|tokens|share|audit` against a real PostgreSQL, through the
real entry point: secrets are read from stdin, shown once at most, stored
hashed, and every change leaves an audit row naming the CLI's actor."""

from __future__ import annotations

import getpass
import hashlib
import io
import re
from collections.abc import Iterator

import pytest

from etrack.store import db
from etrack.store.audit import acting, current_actor
from fixtures_cli import RunEtrack

PASSWORD = "correct horse battery"
ANA = "ana@example.com"


@pytest.fixture(autouse=True)
def cli_database(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)


@pytest.fixture(autouse=True)
def _actor_restored() -> Iterator[None]:
    # The CLI sets the process's actor (cli:<user>) for its one command; give
    # the tests after these the actor they had.
    with acting(current_actor()):
        yield


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    # A StringIO is no terminal: the command reads the password's line from it.
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def add_viewer(run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch, login: str = ANA) -> None:
    stdin(monkeypatch, PASSWORD + "\n")
    code, out, err = run_etrack(
        "users", "add", login, "--role", "viewer", "--fleets", "north", "--name", "Ana"
    )
    assert (code, err) == (0, ""), err
    assert f"user {login} added: viewer, fleets north" in out


def epoch(conn: db.Conn, login: str) -> int:
    row = conn.execute("SELECT session_epoch FROM users WHERE login = %s", (login,)).fetchone()
    assert row is not None
    return int(row[0])


# -------------------------------------------------------------------- users
def test_add_reads_the_password_from_stdin_and_stores_only_an_argon2_hash(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch, conn: db.Conn
) -> None:
    stdin(monkeypatch, PASSWORD + "\n")
    code, out, err = run_etrack(
        "users", "add", "Ana@Example.com", "--role", "viewer", "--fleets", "north"
    )
    assert code == 0, err
    row = conn.execute("SELECT login, password_hash FROM users").fetchone()
    assert row is not None
    login, hashed = row
    assert login == ANA
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in out + err
    assert hashed not in out + err

    code, out, err = run_etrack("users", "list")
    assert code == 0, err
    assert ANA in out
    assert "fleets north" in out
    assert "viewer" in out
    assert "$argon2" not in out
    assert PASSWORD not in out
    code, out, _ = run_etrack("users", "list", "--format", "csv")
    assert code == 0
    lines = out.lstrip("\ufeff").splitlines()
    assert lines[0] == "login,name,role,scope,active,2fa,created,last_login"
    assert lines[1].startswith(f"{ANA},,viewer,fleets north,yes,no,")
    assert "$argon2" not in out


def test_add_refuses_a_scopeless_viewer_a_short_password_and_a_taken_login(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch, conn: db.Conn
) -> None:
    stdin(monkeypatch, PASSWORD + "\n")
    code, out, err = run_etrack("users", "add", ANA, "--role", "viewer")
    assert code == 2
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "needs a scope" in err
    assert PASSWORD not in err

    stdin(monkeypatch, "short\n")
    code, _, err = run_etrack("users", "add", ANA, "--role", "admin")
    assert code == 2
    assert "at least 10 characters" in err
    assert "short" not in err  # the typed password is not echoed back
    row = conn.execute("SELECT count(*) FROM users").fetchone()
    assert row == (0,)

    add_viewer(run_etrack, monkeypatch)
    stdin(monkeypatch, PASSWORD + "\n")
    code, _, err = run_etrack("users", "add", ANA, "--role", "admin")
    assert code == 2
    assert "exists already" in err

    code, _, err = run_etrack(
        "users", "add", "bob@example.com", "--role", "viewer", "--accounts", "nope"
    )
    assert code == 2
    assert "no account nope" in err


def test_passwd_bumps_the_session_epoch_and_disable_twice_is_unchanged(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch, conn: db.Conn
) -> None:
    add_viewer(run_etrack, monkeypatch)
    before = epoch(conn, ANA)
    stdin(monkeypatch, "another good password\n")
    code, out, err = run_etrack("users", "passwd", ANA)
    assert code == 0, err
    assert "another good password" not in out + err
    assert epoch(conn, ANA) == before + 1

    code, out, _ = run_etrack("users", "disable", ANA)
    assert code == 0
    assert f"user {ANA} disabled" in out
    assert epoch(conn, ANA) == before + 2
    code, out, _ = run_etrack("users", "disable", ANA)
    assert code == 0
    assert "unchanged" in out
    assert epoch(conn, ANA) == before + 2
    code, out, _ = run_etrack("users", "list")
    assert re.search(rf"{re.escape(ANA)} .* no ", out)
    code, out, _ = run_etrack("users", "enable", ANA)
    assert code == 0
    assert f"user {ANA} enabled" in out


def test_set_changes_the_scope_and_remove_twice_is_a_usage_error(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch, conn: db.Conn
) -> None:
    add_viewer(run_etrack, monkeypatch)
    code, out, err = run_etrack("users", "set", ANA, "--role", "manager", "--fleets", "north,south")
    assert code == 0, err
    assert "manager, fleets north,south" in out
    code, out, _ = run_etrack("users", "set", ANA, "--role", "manager")
    assert code == 0
    assert "unchanged" in out

    code, out, _ = run_etrack("users", "remove", ANA)
    assert code == 0
    assert f"user {ANA} removed" in out
    code, _, err = run_etrack("users", "remove", ANA)
    assert code == 2
    assert "already removed?" in err
    code, _, err = run_etrack("users", "disable", "nobody@example.com")
    assert code == 2
    assert "no user" in err


def test_totp_enroll_shows_the_secret_once_and_off_removes_it(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch, conn: db.Conn
) -> None:
    stdin(monkeypatch, PASSWORD + "\n")
    assert run_etrack("users", "add", "root@example.com", "--role", "admin")[0] == 0
    code, out, err = run_etrack("users", "totp", "root@example.com")
    assert code == 0, err
    secret = re.search(r"^secret: (\S+)$", out, re.MULTILINE)
    assert secret is not None
    assert f"secret={secret[1]}" in out  # the otpauth URI
    code, out, _ = run_etrack("users", "list")
    assert secret[1] not in out
    assert re.search(r"root@example.com .* yes +\d{4}-", out)
    code, out, _ = run_etrack("users", "totp", "root@example.com", "--off")
    assert code == 0
    assert "removed" in out
    row = conn.execute("SELECT totp_secret FROM users").fetchone()
    assert row == (None,)


# ------------------------------------------------------------------- tokens
def test_a_token_is_printed_once_stored_as_its_sha256_and_revoked(
    run_etrack: RunEtrack, conn: db.Conn
) -> None:
    code, out, err = run_etrack(
        "users", "add", "bot@example.com", "--role", "api", "--accounts", "default"
    )
    assert code == 0, err
    code, out, err = run_etrack("tokens", "create", "--user", "bot@example.com", "--label", "erp")
    assert code == 0, err
    token = out.splitlines()[-1]
    assert token.startswith("etk_")
    assert len(token) > 40
    row = conn.execute("SELECT id, token_hash, expires_at FROM api_tokens").fetchone()
    assert row is not None
    token_id, stored, expires = row
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()
    assert expires is not None
    assert f"token {token_id} " in out

    code, out, _ = run_etrack("tokens", "list", "--user", "bot@example.com")
    assert code == 0
    assert token not in out
    assert token[:10] in out
    assert "erp" in out

    code, out, _ = run_etrack("tokens", "create", "--user", "bot@example.com", "--expires", "never")
    assert code == 0
    assert "expires never" in out
    code, out, _ = run_etrack("tokens", "revoke", str(token_id))
    assert code == 0
    assert "revoked" in out
    code, out, _ = run_etrack("tokens", "revoke", str(token_id))
    assert code == 0
    assert "unchanged" in out
    code, _, err = run_etrack("tokens", "revoke", "9999")
    assert code == 2
    assert "no token 9999" in err
    row = conn.execute(
        "SELECT revoked_at IS NOT NULL FROM api_tokens WHERE id = %s", (token_id,)
    ).fetchone()
    assert row == (True,)


# -------------------------------------------------------------- share links
def test_share_create_list_revoke(
    run_etrack: RunEtrack, conn: db.Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute("INSERT INTO terminals (placa, frota) VALUES ('ABC1234', 'north')")
    monkeypatch.setenv("ETRACK_PUBLIC_URL", "https://frota.example.com/")
    code, _, err = run_etrack("share", "create", "XYZ9999", "--date", "2026-12-01")
    assert code == 2
    assert "unknown plate XYZ9999" in err

    code, out, err = run_etrack(
        "share", "create", "ABC-1234", "--date", "2026-12-01", "--days", "3"
    )
    assert code == 0, err
    url = out.splitlines()[-1]
    match = re.fullmatch(r"https://frota\.example\.com/share/(shr_\S+)", url)
    assert match is not None
    row = conn.execute(
        "SELECT id, token_hash, placa, rota_date::text, created_by,"
        " expires_at - created_at > interval '71 hours' FROM share_links"
    ).fetchone()
    assert row is not None
    share_id, stored, placa, day, created_by, long_enough = row
    assert bytes(stored) == hashlib.sha256(match[1].encode()).digest()
    assert (placa, day, long_enough) == ("ABC1234", "2026-12-01", True)
    assert created_by.startswith("cli:")

    code, out, _ = run_etrack("share", "list", "--plate", "ABC1234")
    assert code == 0
    assert match[1] not in out
    assert re.search(rf"^{share_id} +ABC1234 +2026-12-01 +live ", out, re.MULTILINE)
    code, out, _ = run_etrack("share", "list", "--date", "2026-12-02")
    assert code == 0
    assert out == "no share links\n"

    code, out, _ = run_etrack("share", "revoke", str(share_id))
    assert code == 0
    assert "revoked" in out
    code, out, _ = run_etrack("share", "revoke", str(share_id))
    assert code == 0
    assert "unchanged" in out
    code, out, _ = run_etrack("share", "list")
    assert re.search(rf"^{share_id} +ABC1234 +2026-12-01 +revoked ", out, re.MULTILINE)


# -------------------------------------------------------------------- audit
def test_audit_lists_the_cli_changes_with_their_actor(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch, conn: db.Conn
) -> None:
    add_viewer(run_etrack, monkeypatch)
    run_etrack("users", "disable", ANA)
    me = f"cli:{getpass.getuser()}"
    code, out, err = run_etrack("audit", "list", "--action", "user.add")
    assert code == 0, err
    assert re.search(rf"{re.escape(me)} +local +user\.add +{re.escape(ANA)} +yes ", out)
    assert "user.disable" not in out
    code, out, _ = run_etrack("audit", "list", "--actor", me, "--format", "csv")
    assert code == 0
    lines = out.lstrip("\ufeff").splitlines()
    assert lines[0] == "id,at,actor,address,action,target,ok,detail"
    assert [line.split(",")[4] for line in lines[1:]] == ["user.disable", "user.add"]
    assert PASSWORD not in out
    assert "$argon2" not in out
    code, out, _ = run_etrack("audit", "list", "--failed")
    assert code == 0
    assert out == "no audit rows\n"
    code, out, _ = run_etrack("audit", "list", "--since", "2000-01-01", "--until", "2000-01-02")
    assert code == 0
    assert out == "no audit rows\n"
    code, out, _ = run_etrack("audit", "list", "--limit", "1")
    assert code == 0
    assert "user.disable" in out
    assert "user.add" not in out


def test_audit_prune_deletes_rows_past_the_retention_once(
    run_etrack: RunEtrack, monkeypatch: pytest.MonkeyPatch, conn: db.Conn
) -> None:
    add_viewer(run_etrack, monkeypatch)
    conn.execute(
        "INSERT INTO audit (at, actor, action, target)"
        " VALUES (now() - interval '3 years', 'old@example.com', 'login', NULL)"
    )
    code, out, err = run_etrack("audit", "prune")
    assert code == 0, err
    assert out.startswith("audit: 1 rows before ")
    rows = conn.execute("SELECT actor, action FROM audit ORDER BY id").fetchall()
    assert ("old@example.com", "login") not in rows
    assert [action for _, action in rows] == ["user.add", "audit.prune"]
    code, out, _ = run_etrack("audit", "prune")
    assert code == 0
    assert out.startswith("audit: 0 rows before ")
    count = conn.execute("SELECT count(*) FROM audit").fetchone()
    assert count == (2,)

    monkeypatch.setenv("ETRACK_AUDIT_RETENTION", "")
    code, out, _ = run_etrack("audit", "prune")
    assert code == 0
    assert "kept" in out
