"""The long-haul profile: a few vehicles drive long stretches with few breaks.

A long-haul vehicle follows a weekly template of seven slots (the slot of a
local day is `(weekday - shift) % 7`, the shift differs between the fleet's
long-haul vehicles so that any three consecutive days of a fleet with four
of them show every slot pair):

- 0 `long` (crew driver A): from 05:00-05:45, a stretch of 6h15-6h50 of
  driving (uninterrupted_driving and rest_in_driving), a break of 1h-1h30,
  a stretch of 3h45-4h15: working time > 10 h (working_time);
- 1 `late` (A): from 17:30-18:00, a stretch of 4h-4h30 before midnight, a
  break over midnight, a stretch of 2h-2h30 from 00:20-00:40 of the next
  local day: one compliant working day over midnight;
- 2 `after_late` (A): from 11:00-12:00 (7h20-9h25 after the late day's end:
  daily_rest), stretches of 3h30-4h15 and 2h-3h, compliant otherwise;
- 3, 4 `normal` (crew driver B): from 06:00-07:00, stretches of 3h30-4h30 and
  2h30-3h30, compliant;
- 5, 6 rest days.

Inside a stretch, trips (2 or 3) are separated by stops of 11-23 min (never a
break); breaks last an hour or more. Every threshold of
`etrack.drivers.workday` is kept at least ~15 minutes away, so detection from
positions a minute apart cannot flip a rule. The stretch durations of a slot
are fixed per vehicle (so the kilometres and engine hours of a weekday stay
closed-form, see `etrack.simulator.dayplan`); start times, trip splits and
stops vary by day.

Drivers: the crew driving a trip is the one of its **service day**, the
local day of (ignition on - 4 h), so the after-midnight part of a late day
is driven by the late day's driver.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "CREW_OF_SLOT",
    "IDLE_PER_STRETCH_S",
    "SERVICE_SHIFT_S",
    "SLOTS",
    "StretchPlan",
    "TripTiming",
    "driver_names",
    "schedule",
    "slot_of",
    "stretch_durations",
    "weekday_totals",
]

SLOTS = ("long", "late", "after_late", "normal", "normal", "rest", "rest")
CREW_OF_SLOT = (0, 0, 0, 1, 1, 0, 0)
SERVICE_SHIFT_S = 4 * 3600
IDLE_PER_STRETCH_S = 900
"""Ignition on and still (warm-up and after arriving) per stretch, shared by its trips."""
_MIN_LAST_TRIP_S = 6000
"""The last trip of a plan drives back to the depot: it needs room for it."""

_FIRST = ("João", "José", "Antônio", "Francisco", "Sebastião", "Conceição", "Luís", "Márcio",
          "Inês", "Cícero", "Raimundo", "Zé Mário", "Vitória", "Luzia", "Aurélio", "Joaquim")  # fmt: skip
_LAST = ("Conceição", "Gonçalves", "Magalhães", "Simões", "Araújo", "Brandão", "Falcão",
         "Guimarães", "Assunção", "Patrício", "Estêvão", "Damião", "Romão", "Lourenço")  # fmt: skip

# Stretch driving ranges (s) per slot: (low, high) of each stretch, in order.
_RANGES: dict[str, tuple[tuple[int, int], ...]] = {
    "long": ((22500, 24600), (13500, 15300)),
    "late": ((14400, 16200), (7200, 9000)),
    "after_late": ((12600, 15300), (7200, 10800)),
    "normal": ((12600, 16200), (9000, 12600)),
    "rest": (),
}


@dataclass(frozen=True)
class TripTiming:
    departure: int
    """Epoch seconds of the first movement, as planned (the plan builder keeps it
    unless the trip before arrived late)."""
    driving_s: int


@dataclass(frozen=True)
class StretchPlan:
    trips: tuple[TripTiming, ...]


def driver_names(salt: int, count: int) -> list[str]:
    """`count` distinct accented Portuguese names."""
    rng = random.Random(salt)  # noqa: S311  (simulated data)
    names: list[str] = []
    while len(names) < count:
        name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        if len(names) >= len(_FIRST) * len(_LAST) // 2:
            name = f"{name} {len(names)}"
        if name not in names:
            names.append(name)
    return names


def slot_of(shift: int, day: date) -> int:
    return (day.weekday() - shift) % 7


def stretch_durations(salt: int, spk: int, slot: int) -> tuple[int, ...]:
    """Driving seconds of each stretch of the slot, each a multiple of `spk`."""
    rng = random.Random(salt ^ (0x5107 + slot))  # noqa: S311
    return tuple(round(rng.randint(low, high) / spk) * spk for low, high in _RANGES[SLOTS[slot]])


def weekday_totals(salt: int, spk: int, shift: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(km, idle seconds) of each weekday: a day drives its own stretches, but a
    `late` day's last stretch belongs to the next day's plan."""
    km = [0] * 7
    idle = [0] * 7
    for weekday in range(7):
        slot = (weekday - shift) % 7
        own = stretch_durations(salt, spk, slot)
        if SLOTS[slot] == "late":
            own = own[:-1]
        prev = (slot - 1) % 7
        tail = stretch_durations(salt, spk, prev)[-1:] if SLOTS[prev] == "late" else ()
        stretches = (*tail, *own)
        km[weekday] = sum(stretches) // spk
        idle[weekday] = IDLE_PER_STRETCH_S * len(stretches)
    return tuple(km), tuple(idle)


def _template(
    seed: int, plate: str, salt: int, spk: int, shift: int, day: date, tz: ZoneInfo
) -> list[StretchPlan]:
    """The stretches of the working day starting on `day` (a late day runs past midnight)."""
    slot = slot_of(shift, day)
    style = SLOTS[slot]
    durations = stretch_durations(salt, spk, slot)
    if not durations:
        return []
    rng = random.Random(f"{seed}|{plate}|{day.isoformat()}|long-haul")  # noqa: S311
    midnight = int(datetime.combine(day, datetime.min.time(), tz).timestamp())
    next_midnight = int(
        datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).timestamp()
    )
    first = {"long": 5 * 3600, "late": 17 * 3600 + 1800, "after_late": 11 * 3600}.get(
        style, 6 * 3600
    )
    window = {"long": 2700, "late": 1800}.get(style, 3600)
    moment = midnight + first + rng.randint(0, window)
    stretches: list[StretchPlan] = []
    for number, driving in enumerate(durations):
        if number:
            if style == "late":
                moment = next_midnight + 1200 + rng.randint(0, 1200)
            else:
                moment += rng.randint(3600, 5400)
        trips: list[TripTiming] = []
        for index, part in enumerate(_split(rng, driving)):
            if index:
                moment += rng.randint(660, 1380)  # a stop, never a break
            trips.append(TripTiming(moment, part))
            moment += part
        stretches.append(StretchPlan(tuple(trips)))
    return stretches


def _split(rng: random.Random, driving: int) -> list[int]:
    last = max(_MIN_LAST_TRIP_S, int(driving * rng.uniform(0.35, 0.5)))
    rest = driving - last
    if rest < 1200:
        return [driving]
    count = 2 if rest < 2400 or rng.random() < 0.5 else 3
    if count == 2:
        return [rest, last]
    first = int(rest * rng.uniform(0.4, 0.6))
    return [first, rest - first, last]


def schedule(
    seed: int, plate: str, salt: int, spk: int, shift: int, day: date, tz: ZoneInfo
) -> list[StretchPlan]:
    """The stretches whose trips start in local `day`: the previous day's
    after-midnight stretch (a `late` day's), then the day's own ones."""
    start = int(datetime.combine(day, datetime.min.time(), tz).timestamp())
    end = int(datetime.combine(day + timedelta(days=1), datetime.min.time(), tz).timestamp())
    found: list[StretchPlan] = []
    for source in (day - timedelta(days=1), day):
        for stretch in _template(seed, plate, salt, spk, shift, source, tz):
            if start <= stretch.trips[0].departure < end:
                found.append(stretch)
    return found
