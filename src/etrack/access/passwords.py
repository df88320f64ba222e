"""Password hashes: argon2id through argon2-cffi for users; the pbkdf2 form
(and a plain text) that ETRACK_WEB_PASSWORD may hold stays verifiable, for
the single-admin shortcut."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from etrack.errors import UsageError

__all__ = [
    "DUMMY_HASH",
    "MIN_LENGTH",
    "check_new_password",
    "hash_password",
    "hash_pbkdf2",
    "needs_rehash",
    "verify_password",
]

PBKDF2_ITERATIONS = 600_000
MIN_LENGTH = 10
_hasher = PasswordHasher()


def check_new_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise UsageError(f"password: expected at least {MIN_LENGTH} characters")
    if password.strip() != password or "\n" in password:
        raise UsageError("password: no leading or trailing spaces or line breaks")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def hash_pbkdf2(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """The value to put in ETRACK_WEB_PASSWORD instead of the password itself."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(digest).decode()}"


def verify_password(given: str, stored: str) -> bool:
    """Constant-time check of `given` against an argon2 or pbkdf2 hash or a plain password."""
    if stored.startswith("$argon2"):
        try:
            return _hasher.verify(stored, given)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    if stored.startswith("pbkdf2_sha256$"):
        try:
            _, iterations, salt, expected = stored.split("$", 3)
            digest = hashlib.pbkdf2_hmac("sha256", given.encode(), salt.encode(), int(iterations))
        except ValueError:
            return False
        return hmac.compare_digest(base64.b64encode(digest).decode(), expected)
    # Hash both sides first so the comparison time does not depend on the
    # lengths either.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(stored.encode()).digest()
    )


def needs_rehash(stored: str) -> bool:
    """A pbkdf2 or plain value from the shortcut, or argon2 with old parameters."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


# A hash to verify against when the login does not exist: the answer takes
# as long as for a real user, so timing does not tell which logins exist.
DUMMY_HASH = _hasher.hash(secrets.token_hex(16))
