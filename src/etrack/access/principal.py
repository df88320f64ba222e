"""Who is asking, and which vehicles they may see.

A `Scope` is the set of vehicles a request reaches: some accounts, some
fleets (terminals.frota) and, for a share link, one plate; None at a level
means no limit there, and levels intersect (a manager of fleet F in account A
sees F's vehicles of A). A `Principal` is the person, token or link behind a
request with its role and scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from etrack.store.users import Role, User

__all__ = ["EVERYTHING", "Principal", "Scope", "Via", "intersect"]

Via = Literal["local", "session", "token", "basic", "share"]


def intersect(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


@dataclass(frozen=True, slots=True)
class Scope:
    accounts: frozenset[str] | None = None
    fleets: frozenset[str] | None = None
    plates: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.accounts is None and self.fleets is None and self.plates is None

    def within(self, accounts: frozenset[str] | None) -> Scope:
        """Narrowed to these accounts (the server's ETRACK_WEB_ACCOUNTS, a page's ?account=)."""
        return Scope(intersect(self.accounts, accounts), self.fleets, self.plates)


EVERYTHING = Scope()


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    scope: Scope
    via: Via
    user_id: int | None = None
    can_write: bool = False
    # A share link reaches one vehicle's one day, nothing else.
    share_day: date | None = None
    share_id: int | None = field(default=None)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def may_write(self) -> bool:
        if self.via == "share":
            return False
        return self.role in ("admin", "manager") or (self.role == "api" and self.can_write)

    @classmethod
    def of_user(cls, user: User, via: Via, server: frozenset[str] | None) -> Principal:
        scope = Scope(frozenset(user.accounts) or None, frozenset(user.fleets) or None).within(
            server
        )
        return cls(user.login, user.role, scope, via, user.id, user.can_write)

    @classmethod
    def local(cls, server: frozenset[str] | None) -> Principal:
        """Loopback without any user: the machine's owner, as before users existed."""
        return cls("local", "admin", Scope(server), "local")
