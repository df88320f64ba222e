"""The thresholds events are detected with: the settings, overridden per fleet
and per vehicle by a small TOML file (ETRACK_EVENTS_FILE).

```toml
[fleet."Entregas"]          # terminals.frota, as the provider names it
speed_limit_kmh = 60
working_hours = "mon-sat 06:00-20:00"

[vehicle."ABC1D23"]         # any spelling of the plate
speed_limit_kmh = 100
holidays = ["2025-12-24"]
```

A vehicle's thresholds are the settings, then its fleet's section, then its
own section, each key replacing the one before; its events' `rule` names the
most specific section that applied ('vehicle:ABC1D23', 'fleet:Entregas' or
'settings'). A file that cannot be used is a `SettingsError` (exit 2) naming
the file, the section, the key and what was expected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, tzinfo
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from etrack.config import (
    Settings,
    WeeklyHours,
    parse_elapsed,
    parse_holidays,
    parse_working_hours,
    read_toml,
)
from etrack.errors import SettingsError
from etrack.model import InvalidPlate, canonical_plate

__all__ = ["OVERRIDABLE", "EventParams", "Thresholds", "load_overrides"]


def _default_hours() -> WeeklyHours:
    return parse_working_hours("mon-fri 07:00-19:00")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """One vehicle's thresholds. Defaults are the settings' defaults."""

    speed_limit_kmh: float = 80.0
    """Overspeed: speeds strictly above this."""
    overspeed_min_s: float = 60.0
    moving_speed_kmh: float = 5.0
    """Idle: ignition on and speed strictly below this."""
    idle_min_s: float = 300.0
    max_gap_s: float = 3600.0
    """A silence longer than this ends any run (ETRAC_TRIP_MAX_GAP_S)."""
    low_battery_v: float = 11.5
    low_battery_min_s: float = 600.0
    late_data_after_s: float = 1800.0
    working_hours: WeeklyHours = field(default_factory=_default_hours)
    holidays: frozenset[date] = frozenset()
    tz: tzinfo = field(default_factory=lambda: ZoneInfo("America/Sao_Paulo"))
    """Whose local time the working hours are (the account's, ETRAC_TIMEZONE)."""


Overrides = dict[str, object]
"""Thresholds field -> value, as `dataclasses.replace` takes them."""


def _number(minimum: float, strict: bool) -> Callable[[object], object]:
    def read(value: object) -> object:
        # TOML booleans are ints to Python: refuse them explicitly.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError
        if value < minimum or (strict and value == minimum):
            raise ValueError
        return float(value)

    return read


def _elapsed(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError
        return float(value)
    if isinstance(value, str):
        return parse_elapsed(value)
    raise ValueError


def _hours(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError
    return parse_working_hours(value)


def _holidays(value: object) -> object:
    if isinstance(value, str):
        return frozenset(parse_holidays(value))
    if isinstance(value, list) and all(isinstance(v, date | str) for v in value):
        days = [v if isinstance(v, date) else date.fromisoformat(v) for v in value]
        return frozenset(days)
    raise ValueError


# File key -> (Thresholds field, reader, what is expected).
OVERRIDABLE: Mapping[str, tuple[str, Callable[[object], object], str]] = {
    "speed_limit_kmh": ("speed_limit_kmh", _number(0, False), "a number of km/h >= 0"),
    "overspeed_min_s": ("overspeed_min_s", _number(0, False), "a number of seconds >= 0"),
    "moving_speed_kmh": ("moving_speed_kmh", _number(0, False), "a number of km/h >= 0"),
    "idle_min_s": ("idle_min_s", _number(0, False), "a number of seconds >= 0"),
    "low_battery_v": ("low_battery_v", _number(0, True), "a number of volts > 0"),
    "low_battery_min_s": ("low_battery_min_s", _number(0, False), "a number of seconds >= 0"),
    "late_data_after": (
        "late_data_after_s",
        _elapsed,
        "a time like '30m' or '2h', or seconds > 0",
    ),
    "working_hours": (
        "working_hours",
        _hours,
        "hours like 'mon-fri 07:00-19:00, sat 08:00-12:00' (or 'none')",
    ),
    "holidays": ("holidays", _holidays, "a list of days like ['2025-12-25']"),
}


@dataclass(frozen=True, slots=True)
class EventParams:
    """Everything event detection depends on: the settings' thresholds, the
    overrides, and the offline delay (global: it is checked over the whole
    fleet's latest positions at once)."""

    base: Thresholds = field(default_factory=Thresholds)
    offline_after_s: float = 7200.0
    fleets: Mapping[str, Overrides] = field(default_factory=dict)
    vehicles: Mapping[str, Overrides] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> EventParams:
        """The ETRACK_* event settings, the ETRAC_* route thresholds they share
        and the overrides file (read now: a bad one fails before any work)."""
        base = Thresholds(
            speed_limit_kmh=settings.etrac_speed_limit_kmh,
            overspeed_min_s=settings.etrack_overspeed_min_s,
            moving_speed_kmh=settings.etrac_moving_speed_kmh,
            idle_min_s=settings.etrack_idle_min_s,
            max_gap_s=settings.etrac_trip_max_gap_s,
            low_battery_v=settings.etrack_low_battery_v,
            low_battery_min_s=settings.etrack_low_battery_min_s,
            late_data_after_s=parse_elapsed(settings.etrack_late_data_after),
            working_hours=parse_working_hours(settings.etrack_working_hours),
            holidays=frozenset(parse_holidays(settings.etrack_holidays)),
            tz=settings.tz,
        )
        fleets: dict[str, Overrides] = {}
        vehicles: dict[str, Overrides] = {}
        if settings.etrack_events_file is not None:
            fleets, vehicles = load_overrides(settings.etrack_events_file)
        return cls(base, parse_elapsed(settings.etrack_offline_after), fleets, vehicles)

    def for_vehicle(self, placa: str, frota: str | None) -> tuple[Thresholds, str]:
        """(the vehicle's thresholds, the rule that names their source)."""
        fleet = self.fleets.get(frota) if frota is not None else None
        own = self.vehicles.get(placa)
        if fleet is None and own is None:
            return self.base, "settings"
        changes = {**(fleet or {}), **(own or {})}
        rule = f"vehicle:{placa}" if own is not None else f"fleet:{frota}"
        # Each value was read by its key's reader (OVERRIDABLE): the field's type.
        return dataclasses.replace(self.base, **cast("dict[str, Any]", changes)), rule


def load_overrides(path: Path) -> tuple[dict[str, Overrides], dict[str, Overrides]]:
    """(per fleet, per vehicle) overrides of the events file at `path`."""

    def problem(message: str) -> SettingsError:
        return SettingsError(f"events file {path}: {message}")

    data = read_toml(path, problem, missing="no such file (ETRACK_EVENTS_FILE)")
    unknown = sorted(set(data) - {"fleet", "vehicle"})
    if unknown:
        raise problem(
            f'unknown top-level key {unknown[0]!r}: expected [fleet."NAME"] or '
            '[vehicle."PLACA"] sections'
        )
    fleets: dict[str, Overrides] = {}
    vehicles: dict[str, Overrides] = {}
    for section, found in (("fleet", fleets), ("vehicle", vehicles)):
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise problem(f'{section}: expected [{section}."NAME"] tables')
        for name, entry in table.items():
            where = f'[{section}."{name}"]'
            if not isinstance(entry, dict):
                raise problem(f"{where}: expected a table of thresholds")
            key = name
            if section == "vehicle":
                try:
                    key = canonical_plate(name)
                except InvalidPlate:
                    raise problem(f"{where}: expected a plate like ABC1234 or ABC1D23") from None
            found[key] = _overrides(entry, where, problem)
    return fleets, vehicles


def _overrides(
    entry: dict[str, object], where: str, problem: Callable[[str], SettingsError]
) -> Overrides:
    changes: Overrides = {}
    for key, value in entry.items():
        known = OVERRIDABLE.get(key)
        if known is None:
            raise problem(f"{where} unknown key {key!r}: expected one of {', '.join(OVERRIDABLE)}")
        name, read, expected = known
        try:
            changes[name] = read(value)
        except ValueError:
            raise problem(f"{where} {key}: expected {expected}, got {value!r}") from None
    return changes
