"""How routes, trips and stops are computed: one frozen parameter set.

Detection (`etrack.trips.detect`), the day's accounting (`etrack.trips.day`)
and the comparison with the provider (`etrack.trips.compare`) all read it; a
stored route keeps `key()` in its fingerprint and `as_json()` beside it, so
other parameters mean another computation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from etrack.config import Settings

__all__ = ["Mode", "RouteParams"]

Mode = Literal["location", "ignition"]


@dataclass(frozen=True, slots=True)
class RouteParams:
    """How routes, trips and stops are detected. Defaults follow Traccar 6.12+."""

    mode: Mode = "location"
    trip_distance_m: float = 200.0
    """A trip starts once the vehicle is this far from where it stood; a stop stays within it."""
    stop_duration_s: float = 180.0
    """Shortest stop; anything shorter (a red light) stays inside its trip."""
    max_gap_s: float = 3600.0
    """A silence longer than this ends the trip in progress."""
    moving_speed_kmh: float = 5.0
    """Speeds at or above this are movement (driving time, and no stop can hold such a point)."""
    speed_limit_kmh: float = 80.0
    """Time above this speed is reported as over_limit_s."""
    simplify_tolerance_m: float = 20.0
    """Douglas-Peucker tolerance of the simplified line drawn at fleet zoom."""
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("America/Sao_Paulo"))
    """Whose local day a route is."""
    compare_time_tolerance_s: float = 900.0
    """A provider trip agrees with ours when its start and end are this close..."""
    compare_distance_ratio: float = 0.10
    """...and its distance differs by at most this fraction."""

    def __post_init__(self) -> None:
        if self.mode not in ("location", "ignition"):
            raise ValueError(f"mode must be 'location' or 'ignition', got {self.mode!r}")
        for name in ("trip_distance_m", "stop_duration_s", "max_gap_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("moving_speed_kmh", "speed_limit_kmh", "simplify_tolerance_m"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> RouteParams:
        """The ETRAC_* route settings and the account's time zone; the comparison
        tolerances, which have no setting, keep their defaults."""
        return cls(
            mode=settings.etrac_route_mode,
            trip_distance_m=settings.etrac_trip_min_distance_m,
            stop_duration_s=settings.etrac_stop_min_duration_s,
            max_gap_s=settings.etrac_trip_max_gap_s,
            moving_speed_kmh=settings.etrac_moving_speed_kmh,
            speed_limit_kmh=settings.etrac_speed_limit_kmh,
            simplify_tolerance_m=settings.etrac_route_simplify_m,
            tz=settings.tz,
        )

    def key(self) -> str:
        """Everything a stored route depends on besides its positions, for its fingerprint."""
        return (
            f"{self.mode}/{self.trip_distance_m:g}/{self.stop_duration_s:g}/{self.max_gap_s:g}/"
            f"{self.moving_speed_kmh:g}/{self.speed_limit_kmh:g}/{self.simplify_tolerance_m:g}/"
            f"{self.tz}/{self.compare_time_tolerance_s:g}/{self.compare_distance_ratio:g}"
        )

    def as_json(self) -> dict[str, str | float]:
        """The parameters stored beside each route (`routes.params`), for people and the UI."""
        return {
            "mode": self.mode,
            "trip_distance_m": self.trip_distance_m,
            "stop_duration_s": self.stop_duration_s,
            "max_gap_s": self.max_gap_s,
            "moving_speed_kmh": self.moving_speed_kmh,
            "speed_limit_kmh": self.speed_limit_kmh,
            "simplify_tolerance_m": self.simplify_tolerance_m,
            "timezone": str(getattr(self.tz, "key", None) or self.tz),
        }
