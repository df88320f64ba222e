"""Roles, scopes, password hashes and token expiry (etrack.access), without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pyotp
import pytest

from etrack.access.passwords import (
    check_new_password,
    hash_password,
    hash_pbkdf2,
    needs_rehash,
    verify_password,
)
from etrack.access.principal import EVERYTHING, Principal, Scope
from etrack.access.users import check_login, check_role, expiry, hash_token, verify_totp
from etrack.errors import UsageError
from etrack.logs import redact
from etrack.store.users import User, UserSecrets


def user(role: str = "viewer", **extra: object) -> User:
    values: dict[str, object] = {
        "id": 7,
        "login": "ana@example.com",
        "name": "Ana",
        "role": role,
        "accounts": (),
        "fleets": ("F1",),
        "can_write": False,
        "active": True,
        "session_epoch": 0,
        "created_at": None,
        "last_login_at": None,
        **extra,
    }
    return User(**values)  # type: ignore[arg-type]


def test_argon2_hashes_verify_and_old_forms_ask_for_a_rehash() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batter", stored)
    assert not needs_rehash(stored)
    legacy = hash_pbkdf2("s3cret-s3cret", iterations=1000)
    assert verify_password("s3cret-s3cret", legacy)
    assert needs_rehash(legacy)
    assert needs_rehash("plain text")
    assert not verify_password("x", "$argon2id$garbage")


def test_a_new_password_is_long_enough_and_has_no_stray_spaces() -> None:
    assert check_new_password("ten chars!") == "ten chars!"
    for bad, why in (("short", "at least 10"), (" padded password ", "spaces")):
        with pytest.raises(UsageError, match=why):
            check_new_password(bad)


def test_logins_are_lower_cased_e_mails_and_roles_are_known() -> None:
    assert check_login("  Ana@Example.COM ") == "ana@example.com"
    with pytest.raises(UsageError, match="login: expected an e-mail"):
        check_login("ana")
    assert check_role("manager") == "manager"
    with pytest.raises(UsageError, match="role: expected one of admin, manager, viewer, api"):
        check_role("root")


def test_scopes_intersect_and_never_widen() -> None:
    fleet = Scope(fleets=frozenset({"F1"}))
    assert fleet.within(None) == fleet
    assert fleet.within(frozenset({"north"})) == Scope(frozenset({"north"}), frozenset({"F1"}))
    north = Scope(accounts=frozenset({"north", "south"}))
    assert north.within(frozenset({"south", "east"})).accounts == frozenset({"south"})
    # An unknown account picked on a page: nothing at all, not everything.
    assert north.within(frozenset({"west"})).accounts == frozenset()
    assert EVERYTHING.everything
    assert not Scope(plates=frozenset({"ABC1D23"})).everything


def test_what_each_role_may_change() -> None:
    server = frozenset({"north"})
    assert not Principal.of_user(user("viewer"), "session", None).may_write
    assert Principal.of_user(user("manager"), "session", None).may_write
    assert not Principal.of_user(user("api"), "token", None).may_write
    assert Principal.of_user(user("api", can_write=True), "token", None).may_write
    admin = Principal.of_user(user("admin", fleets=()), "session", server)
    assert admin.is_admin
    assert admin.scope == Scope(accounts=server)
    assert Principal.local(None).scope.everything
    shared = Principal("share:1", "viewer", Scope(plates=frozenset({"A"})), "share")
    assert not shared.may_write


def test_secrets_stay_out_of_reprs() -> None:
    secrets = UserSecrets(user(), password_hash="$argon2id$secret-hash", totp_secret="JBSWY3DP")
    assert "secret-hash" not in repr(secrets)
    assert "JBSWY3DP" not in repr(secrets)


def test_token_expiry_and_hash() -> None:
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert expiry("90d", now=now) == datetime(2026, 5, 1, 12, tzinfo=UTC)
    # A calendar month back from the day, counted forward: 31 days here.
    assert expiry("1m", now=now) == datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert expiry("never", now=now) is None
    with pytest.raises(UsageError, match="--expires: expected a duration"):
        expiry("soon", now=now)
    assert hash_token("etk_a") != hash_token("etk_b")
    assert len(hash_token("etk_a")) == 32


def test_a_totp_code_is_checked_with_one_step_of_drift() -> None:
    secret = pyotp.random_base32()
    code = pyotp.TOTP(secret).now()
    assert verify_totp(secret, code)
    assert verify_totp(secret, f" {code[:3]} {code[3:]} ")
    assert not verify_totp(secret, "000000" if code != "000000" else "111111")
    assert not verify_totp(secret, "abcdef")


def test_tokens_and_share_links_are_redacted_from_logs() -> None:
    link = "shr_" + "A1b2" * 11
    token = "etk_" + "z9Y8" * 11
    line = f'127.0.0.1:5 - "GET /share/{link} HTTP/1.1" 303; Authorization: Bearer {token}'
    cleaned = redact(line, [])
    assert link not in cleaned
    assert token not in cleaned
    assert "/share/shr_*** HTTP/1.1" in cleaned
    # Words that merely start alike stay.
    assert redact("etk_short and shr_ing", []) == "etk_short and shr_ing"
