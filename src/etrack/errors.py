"""Every error etrack raises on purpose, in one hierarchy.

Two properties of the class decide what happens to an error everywhere: its
`exit_code` (what `etrack`, the web entry points and the deploy units report)
and `transient` (whether the fetch loop waits and tries again, the worker
retries the job, and the web answers 503 with Retry-After instead of 500).

Library errors (psycopg, httpx, pydantic) are converted into these once, at
the boundary that first sees them: `store.db` for PostgreSQL, the provider
client for HTTP, `config` for settings. Code above those boundaries catches
`EtrackError` subclasses only.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SCHEMA",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "AccountsError",
    "AnswerTooLarge",
    "ApiCircuitOpen",
    "ApiUnavailable",
    "AuthenticationError",
    "BusinessError",
    "CredentialsError",
    "CredentialsRefused",
    "CrontabError",
    "DailyBusy",
    "DailyIncomplete",
    "DatabaseUnavailable",
    "EmbeddedError",
    "EtrackError",
    "Interrupted",
    "InvalidDate",
    "MissingCredentials",
    "ProviderError",
    "SchemaNotCurrent",
    "SettingsError",
    "UnexpectedResponse",
    "UnknownPlate",
    "UsageError",
    "WindowTooLarge",
    "exit_code_for",
    "is_transient",
]

# Exit codes a script can rely on (documented in docs/cli.md). systemd units
# list the permanent ones in RestartPreventExitStatus.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_SCHEMA = 4
EXIT_INTERRUPTED = 130


class EtrackError(Exception):
    """Base of every error etrack raises on purpose; the message is one line."""

    exit_code: ClassVar[int] = EXIT_FAILURE
    transient: ClassVar[bool] = False


# ------------------------------------------------------------ usage, settings
class UsageError(EtrackError):
    """Bad input from the user (an argument, a file, a date)."""

    exit_code = EXIT_USAGE


class SettingsError(UsageError):
    """A setting has a value we cannot use; the message names the variable."""


class AccountsError(SettingsError):
    """The accounts file cannot be used (the message names the file), or an
    unknown account was asked for."""


class Interrupted(EtrackError):
    """The user stopped the command (Ctrl-C, SIGTERM to a foreground run)."""

    exit_code = EXIT_INTERRUPTED


# ------------------------------------------------------------------ database
class DatabaseUnavailable(EtrackError):
    """PostgreSQL did not answer; the message names host/port, never a password."""

    exit_code = EXIT_UNREACHABLE
    transient = True


class EmbeddedError(DatabaseUnavailable):
    """The embedded server could not be started or stopped."""


class SchemaNotCurrent(EtrackError):
    """The database schema is older than this etrack: run `etrack db upgrade`."""

    exit_code = EXIT_SCHEMA


# ------------------------------------------------------------------ provider
class ProviderError(EtrackError):
    """Base of every error the eTrac client raises on purpose."""


class CredentialsError(ProviderError):
    """The account cannot log in: asking again with the same credentials
    cannot work, so the account is marked failing until they change."""

    exit_code = EXIT_USAGE


class MissingCredentials(CredentialsError):
    """ETRAC_USER or ETRAC_KEY is not set."""

    def __init__(self) -> None:
        super().__init__("ETRAC_USER and ETRAC_KEY must be set to call the eTrac API")


class AuthenticationError(CredentialsError):
    """The provider rejected the account's credentials. Never retried."""

    def __init__(self, status: int = 401) -> None:
        self.status = status
        super().__init__(
            f"eTrac rejected the credentials (HTTP {status}): check ETRAC_USER and ETRAC_KEY"
        )


class CredentialsRefused(CredentialsError):
    """The account's credentials were refused a moment ago, in this process:
    this call was not sent (the account's breaker in etrack.jobs.accounts),
    as it could only be refused again."""

    def __init__(self, account: str, reason: str) -> None:
        self.account = account
        self.reason = reason
        super().__init__(f"account {account}: {reason}; not sent")


class BusinessError(ProviderError):
    """The provider understood the request and refused it (``erro`` set).

    Often arrives inside an HTTP 200. Never retried: asking again gives the
    same answer. Subclasses tell the common refusals apart; this class itself
    means "some other refusal".
    """

    kind: ClassVar[str] = "other"

    def __init__(self, erro: str, code_header: int | None, path: str) -> None:
        self.erro = erro
        self.code_header = code_header
        self.path = path
        code = f", code_header {code_header}" if code_header is not None else ""
        super().__init__(f"eTrac refused POST {path}: {erro!r}{code}")


class UnknownPlate(BusinessError):
    """The plate is not in this account's fleet (or is not a plate).

    Exit 2: the plate typed is the mistake. The client does not know which
    plate a request named; whoever does gives it with `naming`."""

    kind = "unknown_plate"
    exit_code = EXIT_USAGE
    placa: str | None = None

    def naming(self, placa: str, account: str | None = None) -> UnknownPlate:
        """This refusal as one line naming the plate (and the account asked)."""
        named = UnknownPlate(self.erro, self.code_header, self.path)
        named.placa = placa
        where = f" (account {account})" if account else ""
        named.args = (
            f"unknown plate {placa}: eTrac does not know it{where}, it answered {self.erro!r}",
        )
        return named


class InvalidDate(BusinessError):
    """The provider rejected a date or a date/time bound."""

    kind = "bad_date"


class WindowTooLarge(BusinessError):
    """The history window exceeded what the provider accepts (24 h)."""

    kind = "window_too_large"


class UnexpectedResponse(ProviderError):
    """An answer that is neither data nor a known error, and not worth retrying."""


class AnswerTooLarge(UnexpectedResponse):
    """The answer grew past ETRAC_MAX_ANSWER_BYTES once decompressed (a gzip bomb,
    say). Never retried: asking again gives the same answer."""

    def __init__(self, path: str, limit: int) -> None:
        self.path = path
        self.limit = limit
        super().__init__(
            f"eTrac answer to POST {path} is larger than {limit:,} bytes once decompressed "
            "(ETRAC_MAX_ANSWER_BYTES); refused, not retried"
        )


class ApiUnavailable(ProviderError):
    """Retries are exhausted (attempts or time budget); the API stayed unusable."""

    exit_code = EXIT_UNREACHABLE
    transient = True

    def __init__(self, path: str, attempts: int, cause: str) -> None:
        self.path = path
        self.attempts = attempts
        self.cause = cause
        plural = "attempt" if attempts == 1 else "attempts"
        super().__init__(
            f"eTrac API unavailable: POST {path} failed after {attempts} {plural}; "
            f"last cause: {cause}"
        )


class ApiHostUnknown(ProviderError):
    """The API's host name does not resolve (the name does not exist, as
    opposed to DNS being down for a moment): a configuration mistake that no
    retry fixes, so it fails at once."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, host: str, base_url: str) -> None:
        self.host = host
        super().__init__(
            f"eTrac API host {host!r} does not resolve (no such name in DNS): check "
            f"ETRAC_API_BASE (now {base_url})"
        )


class ApiCircuitOpen(ApiUnavailable):
    """The account's last calls all found the API unavailable: this call was
    not sent (the circuit breaker of etrack.jobs.accounts); the next probe is
    due in `retry_after_s` seconds."""

    def __init__(self, account: str, failures: int, retry_after_s: float) -> None:
        self.path = "(not sent)"
        self.attempts = 0
        self.cause = f"{failures} calls in a row failed"
        self.account = account
        self.retry_after_s = retry_after_s
        ProviderError.__init__(
            self,
            f"eTrac API unavailable for account {account}: {failures} calls in a row failed; "
            f"not sent, next probe in {retry_after_s:.0f} s",
        )


# ---------------------------------------------------------------------- jobs
class DailyBusy(EtrackError):
    """Another daily run holds ETRAC_DAILY_LOCK_ID."""

    # `etrack daily` beside a running one says so and exits 0: nothing is wrong.
    # A worker's daily job retries later instead: the other run may fail.
    exit_code = EXIT_OK
    transient = True

    def __init__(self, lock_id: int) -> None:
        self.lock_id = lock_id
        super().__init__(
            f"another daily run is active (advisory lock ETRAC_DAILY_LOCK_ID={lock_id}); "
            "nothing done"
        )


class DailyIncomplete(EtrackError):
    """Some plates failed: the job is retried (the day is not marked done)."""

    transient = True


# -------------------------------------------------------------------- deploy
class CrontabError(EtrackError):
    """The crontab cannot be read or written, or its etrack block is damaged."""


# ------------------------------------------------------------------- mapping
def exit_code_for(exc: BaseException) -> int:
    """The one mapping from an error to a process exit code."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, EtrackError):
        return exc.exit_code
    return EXIT_FAILURE


def is_transient(exc: BaseException) -> bool:
    """Worth waiting and trying again (an outage), as opposed to a mistake."""
    return isinstance(exc, EtrackError) and exc.transient
