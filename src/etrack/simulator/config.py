"""What a simulated fleet is made of: its accounts, region, quirks and clock.

`FleetConfig` is everything the fleet's data depends on: the same config gives
the same rows on any machine (see `etrack.simulator.fleet`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_USER",
    "Account",
    "FleetConfig",
    "QuirkConfig",
    "Region",
    "check_rate_limit",
]

DEFAULT_USER = "demo@etrack.local"
DEFAULT_KEY = "demo-key"  # a fake credential of the simulator, not a secret


def check_rate_limit(per_s: float | None, burst: int | None) -> None:
    """An API rate limit (an account's, or the faults' default): None or > 0
    requests a second, a burst of None or >= 1; raises ValueError."""
    if per_s is not None and per_s <= 0:
        raise ValueError(f"rate_limit_per_s must be > 0, got {per_s}")
    if burst is not None and burst < 1:
        raise ValueError(f"rate_limit_burst must be >= 1, got {burst}")


@dataclass(frozen=True)
class Region:
    """Where vehicles drive (degrees). The default is greater São Paulo."""

    lat_min: float = -23.9
    lat_max: float = -23.3
    lon_min: float = -46.9
    lon_max: float = -46.3

    def __post_init__(self) -> None:
        if not (-80 <= self.lat_min < self.lat_max <= 80):
            raise ValueError(f"region latitudes must satisfy -80 <= min < max <= 80: {self}")
        if not (-180 <= self.lon_min < self.lon_max <= 180):
            raise ValueError(f"region longitudes must satisfy -180 <= min < max <= 180: {self}")

    @classmethod
    def parse(cls, text: str) -> Region:
        """'LAT_MIN,LAT_MAX,LON_MIN,LON_MAX' (degrees)."""
        try:
            lat_min, lat_max, lon_min, lon_max = (float(part) for part in text.split(","))
        except ValueError:
            raise ValueError(f"expected LAT_MIN,LAT_MAX,LON_MIN,LON_MAX, got {text!r}") from None
        return cls(lat_min, lat_max, lon_min, lon_max)


@dataclass(frozen=True)
class Account:
    """One eTrac account: Basic-auth user and key, and the size of its fleet.

    `rate_limit_per_s` (with `rate_limit_burst`) is this account's own API rate
    limit; None means the simulator's fault setting applies (no limit by default).
    """

    user: str
    key: str
    vehicles: int = 10
    cliente: str = "DEMO TRANSPORTES LTDA"
    cliente_fantasia: str = "Demo Transportes"
    rate_limit_per_s: float | None = None
    rate_limit_burst: int | None = None

    def __post_init__(self) -> None:
        if not self.user or not self.key:
            raise ValueError("an account needs a user and a key")
        if self.vehicles < 0:
            raise ValueError(f"vehicles must be >= 0, got {self.vehicles}")
        check_rate_limit(self.rate_limit_per_s, self.rate_limit_burst)

    @classmethod
    def parse(cls, text: str, index: int = 1) -> Account:
        """'EMAIL:APIKEY:VEHICLES[:RATE_PER_S]', as the CLI's --account takes it."""
        parts = text.split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"expected EMAIL:APIKEY:VEHICLES[:RATE_PER_S], got {text!r}")
        try:
            vehicles = int(parts[2])
            rate = float(parts[3]) if len(parts) == 4 else None
        except ValueError:
            raise ValueError(f"expected EMAIL:APIKEY:VEHICLES[:RATE_PER_S], got {text!r}") from None
        return cls(
            user=parts[0],
            key=parts[1],
            vehicles=vehicles,
            cliente=f"CLIENTE {index} LTDA",
            cliente_fantasia=f"Cliente {index}",
            rate_limit_per_s=rate,
        )


@dataclass(frozen=True)
class QuirkConfig:
    """Data quirks of real eTrac answers; each rate is per row, 0 switches it off."""

    duplicate_rate: float = 0.01
    no_fix_rate: float = 0.005
    jump_rate: float = 0.003
    out_of_order_rate: float = 0.01
    empty_address_rate: float = 0.03
    unit_strings_rate: float = 0.05
    no_data_error: bool = False

    def __post_init__(self) -> None:
        for name in (
            "duplicate_rate",
            "no_fix_rate",
            "jump_rate",
            "out_of_order_rate",
            "empty_address_rate",
            "unit_strings_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")
        if self.no_fix_rate + self.jump_rate > 0.5:
            raise ValueError("no_fix_rate + jump_rate must stay <= 0.5 (extra rows need gaps)")

    @classmethod
    def none(cls) -> QuirkConfig:
        """Clean data: every quirk off."""
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, False)


@dataclass(frozen=True)
class FleetConfig:
    """Everything the fleet's data depends on.

    `accounts=None` means one default account (`DEFAULT_USER`/`DEFAULT_KEY`)
    with `vehicles` vehicles. `now=None` follows the real clock; a naive `now`
    is a local time of `timezone`.
    """

    seed: int = 42
    vehicles: int = 10
    accounts: tuple[Account, ...] | None = None
    timezone: str = "America/Sao_Paulo"
    region: Region = field(default_factory=Region)
    now: datetime | None = None
    quirks: QuirkConfig = field(default_factory=QuirkConfig)
    history_start: date = date(2024, 1, 1)
    install_spread_days: int = 180
    plan_cache_size: int | None = None
    long_haul_share: float = 0.1
    """floor(share * vehicles) vehicles follow the long-haul profile
    (etrack.simulator.longhaul); 0 switches it off."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.long_haul_share <= 1.0:
            raise ValueError(f"long_haul_share must be within 0..1, got {self.long_haul_share}")
        if self.vehicles < 0:
            raise ValueError(f"vehicles must be >= 0, got {self.vehicles}")
        if self.accounts is not None:
            accounts = tuple(self.accounts)
            object.__setattr__(self, "accounts", accounts)
            users = [account.user.casefold() for account in accounts]
            if len(set(users)) != len(users):
                raise ValueError("account users must be distinct")
            if not accounts:
                raise ValueError("accounts, when given, must name at least one account")
        zone = ZoneInfo(self.timezone)  # raises on unknown zones
        if self.now is not None and self.now.tzinfo is None:
            object.__setattr__(self, "now", self.now.replace(tzinfo=zone))
        if self.install_spread_days < 0:
            raise ValueError("install_spread_days must be >= 0")

    def resolved_accounts(self) -> tuple[Account, ...]:
        if self.accounts is not None:
            return self.accounts
        return (Account(user=DEFAULT_USER, key=DEFAULT_KEY, vehicles=self.vehicles),)
