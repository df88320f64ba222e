"""Running one piece of work for every account, each on its own budget.

Accounts run concurrently (each is bound by its own rate limit, not by the
others). An account whose credentials are refused is marked failing with the
reason and does not stop the others; it is skipped until ETRACK_ACCOUNT_RETRY_S
has passed, or at once when its entry in the accounts file changes.

An account whose API is down is not asked again and again: `breaker` gives
each account of a process a circuit breaker (ETRACK_API_BREAKER_FAILURES
calls in a row unavailable open it; then one probe every
ETRACK_API_BREAKER_WAIT_S, the other calls fail at once without a request).
The same breaker stops an account whose credentials were refused: after the
first refusal its calls fail at once (CredentialsRefused, nothing sent) until
its credentials change or ETRACK_ACCOUNT_RETRY_S has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from etrack.config import DEFAULT_ACCOUNT, Account
from etrack.errors import ApiCircuitOpen, ApiUnavailable, CredentialsError, CredentialsRefused
from etrack.jobs.env import EtrackApp, JobEnv, fetch_all, run_sql
from etrack.jobs.runs import describe_error
from etrack.logs import format_moment, secrets_of
from etrack.store.accounts import is_due, owners_from

__all__ = [
    "AccountsRun",
    "Breaker",
    "breaker",
    "credentials_refused",
    "each_account",
    "mark_refused",
    "plate_accounts",
    "spread",
]

logger = logging.getLogger("etrack.jobs.accounts")

T = TypeVar("T")
D = TypeVar("D")


def credentials_refused(exc: BaseException) -> bool:
    """The account's credentials are missing or were refused: asking again
    with them cannot work, so the account is marked failing."""
    return isinstance(exc, CredentialsError)


@dataclass(slots=True)
class AccountsRun(Generic[T]):
    results: dict[str, T] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # account -> error
    refused: set[str] = field(default_factory=set)  # credentials refused
    skipped: dict[str, str] = field(default_factory=dict)  # failing, not due yet
    errors: dict[str, BaseException] = field(default_factory=dict)

    def raise_if_all_failed(self) -> None:
        """Nothing was done and nothing skipped: fail as a single-account
        run did, with the account's own error (and exit code)."""
        if self.errors and not self.results and not self.skipped:
            raise next(iter(self.errors.values()))

    def notes(self) -> str:
        parts = [f"account {name} failed: {error}" for name, error in sorted(self.failed.items())]
        parts += [f"account {name} skipped: {why}" for name, why in sorted(self.skipped.items())]
        return "; ".join(parts)


async def each_account(
    app: EtrackApp,
    accounts: Sequence[Account],
    work: Callable[[Account], Awaitable[T]],
    *,
    skip_failing: bool = True,
) -> AccountsRun[T]:
    """`work(account)` for every account at once; failures are per account."""
    rows = await fetch_all(app, "accounts_states", fallback=DEFAULT_ACCOUNT)
    recorded = {str(row["name"]): row for row in rows}
    run: AccountsRun[T] = AccountsRun()

    async def one(account: Account) -> None:
        row = recorded.get(account.name)
        if skip_failing and not is_due(row, account):
            assert row is not None
            retry = format_moment(row["retry_at"], account.timezone)
            run.skipped[account.name] = f"failing ({row['reason']}), next try {retry}"
            return
        try:
            run.results[account.name] = await work(account)
        except Exception as exc:
            reason = describe_error(exc, secrets_of(app.env.settings, account))
            run.failed[account.name] = reason
            run.errors[account.name] = exc
            if credentials_refused(exc):
                run.refused.add(account.name)
                logger.warning("account %s is failing: %s", account.name, reason)
                await mark_refused(app, account, exc)
            else:
                logger.warning("account %s: %s", account.name, reason)
            return
        await run_sql(
            app, "accounts_mark_ok", account=account.name, fingerprint=account.fingerprint
        )

    await asyncio.gather(*(one(account) for account in accounts))
    return run


async def plate_accounts(app: EtrackApp, plates: Sequence[str]) -> dict[str, Account]:
    """The account to ask about each plate (see etrack.store.accounts.owners).
    Asked once per backfill partition: through the App's pool, and not at
    all when one account is configured."""
    accounts = app.env.accounts()
    wanted = sorted(set(plates))
    if len(accounts) == 1:
        return owners_from(accounts, wanted, {})
    rows = await fetch_all(app, "accounts_plate_owners", plates=wanted)
    return owners_from(accounts, wanted, {str(row["placa"]): row["account"] for row in rows})


async def spread(app: EtrackApp, items: Sequence[tuple[str, D]]) -> list[tuple[str, D]]:
    """(plate, x) work items in the order that keeps every account busy.

    Workers take jobs in queue order; queued account by account, the first
    account's slow budget would hold every worker while the others idle. Each
    item is placed at the moment it would run if its account worked alone
    (its rank divided by the account's requests per second), so all accounts
    finish together and the whole takes about as long as the largest alone.
    """
    if not items:
        return []
    found = await plate_accounts(app, [placa for placa, _ in items])
    if len({account.name for account in found.values()}) <= 1:
        return list(items)
    ranks: dict[str, int] = {}
    keyed: list[tuple[float, int, tuple[str, D]]] = []
    for index, item in enumerate(items):
        account = found[item[0]]
        rank = ranks.get(account.name, 0)
        ranks[account.name] = rank + 1
        keyed.append((rank / account.rate_limit, index, item))
    keyed.sort(key=lambda entry: (entry[0], entry[1]))
    return [item for _, _, item in keyed]


async def mark_refused(app: EtrackApp, account: Account, exc: BaseException) -> None:
    """Record that the account's credentials were refused."""
    await run_sql(
        app,
        "accounts_mark_failing",
        account=account.name,
        reason=describe_error(exc, secrets_of(app.env.settings, account)),
        fingerprint=account.fingerprint,
        retry_s=app.env.settings.etrack_account_retry_s,
    )


# ------------------------------------------------------------ API breaker
class Breaker:
    """One account's circuit breaker, for the jobs of one process.

    Closed: calls go out; `threshold` ApiUnavailable in a row (each already
    after the client's own retries) open it. Open: calls fail at once with
    ApiCircuitOpen, no request sent, until `wait_s` has passed; then the next
    call is the one probe, and the calls arriving meanwhile wait for its
    outcome: an answer of any kind (even a refusal) closes the breaker, an
    unavailable API opens it for another `wait_s`. Without it, a backfill
    against a dead API sent every attempt of every partition (30 requests a
    partition with the defaults).

    Refused credentials (a CredentialsError) stop the account for
    `refused_s`: every call fails at once with CredentialsRefused, no request
    sent. Without it, a backfill with a wrong key sent one request per
    partition, each refused like the first. `breaker()` forgets the refusal
    as soon as the account's credentials change (its fingerprint).
    """

    def __init__(
        self,
        account: str,
        *,
        threshold: int,
        wait_s: float,
        refused_s: float = 600.0,
        fingerprint: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self.threshold = threshold
        self.wait_s = wait_s
        self.refused_s = refused_s
        self.fingerprint = fingerprint  # of the credentials the refusal is about
        self._clock = clock
        self.failures = 0  # ApiUnavailable in a row
        self.open_until: float | None = None
        self._probe: asyncio.Event | None = None
        self.refused: str | None = None  # why the credentials were refused
        self.refused_until: float | None = None

    @property
    def is_refused(self) -> bool:
        """The credentials were refused less than `refused_s` ago."""
        if self.refused_until is not None and self._clock() >= self.refused_until:
            self.forget_refusal()
        return self.refused is not None

    def forget_refusal(self) -> None:
        self.refused = None
        self.refused_until = None

    @property
    def is_open(self) -> bool:
        return self.open_until is not None

    def _refuse(self) -> ApiCircuitOpen:
        assert self.open_until is not None
        return ApiCircuitOpen(
            self.account, self.failures, max(0.0, self.open_until - self._clock())
        )

    async def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """`work()` if the breaker lets it through (see the class)."""
        if self.is_refused:
            assert self.refused is not None
            raise CredentialsRefused(self.account, self.refused)
        if self.open_until is not None:
            if self._probe is not None:
                await self._probe.wait()
                if self.open_until is not None:
                    raise self._refuse()
            elif self._clock() < self.open_until:
                raise self._refuse()
            else:
                return await self._probe_with(work)
        return await self._attempt(work)

    async def _probe_with(self, work: Callable[[], Awaitable[T]]) -> T:
        self._probe = probe = asyncio.Event()
        logger.info("account %s: probing the eTrac API", self.account)
        try:
            return await self._attempt(work)
        finally:
            # The breaker's state is settled before the waiting calls wake.
            self._probe = None
            probe.set()

    async def _attempt(self, work: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await work()
        except ApiUnavailable:
            self._failed()
            raise
        except CredentialsError as exc:
            self._answered(exc)
            self._refused(exc)
            raise
        except Exception as exc:
            self._answered(exc)
            raise
        self._answered(None)
        return result

    def _failed(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            if self.open_until is None:
                logger.warning(
                    "account %s: eTrac API unavailable %d calls in a row; sending nothing, "
                    "one probe every %.0f s",
                    self.account,
                    self.failures,
                    self.wait_s,
                )
            self.open_until = self._clock() + self.wait_s

    def _refused(self, error: CredentialsError) -> None:
        if self.refused is None:
            logger.warning(
                "account %s: credentials refused; its calls are not sent for %.0f s "
                "(ETRACK_ACCOUNT_RETRY_S) or until its credentials change",
                self.account,
                self.refused_s,
            )
        self.refused = str(error)
        self.refused_until = self._clock() + self.refused_s

    def _answered(self, error: BaseException | None) -> None:
        # Any answer but "unavailable" (a refusal, a bad row, a database
        # error after the call) says the API is reachable again.
        if isinstance(error, ApiUnavailable):
            return
        if self.open_until is not None:
            logger.warning("account %s: the eTrac API answers again", self.account)
        self.failures = 0
        self.open_until = None


# One set per JobEnv (the jobs of one process share its collectors, so they
# share their breakers too); weak, so a closed env takes its breakers along.
_breakers: weakref.WeakKeyDictionary[JobEnv, dict[str, Breaker]] = weakref.WeakKeyDictionary()


def breaker(env: JobEnv, account: Account) -> Breaker:
    """The account's breaker in this process (made on first use); a
    refusal of credentials that have changed since is forgotten."""
    held = _breakers.setdefault(env, {})
    found = held.get(account.name)
    if found is None:
        settings = env.settings
        found = held[account.name] = Breaker(
            account.name,
            threshold=settings.etrack_api_breaker_failures,
            wait_s=settings.etrack_api_breaker_wait_s,
            refused_s=settings.etrack_account_retry_s,
            fingerprint=account.fingerprint,
        )
    elif found.fingerprint != account.fingerprint:
        found.fingerprint = account.fingerprint
        found.forget_refusal()
    return found
