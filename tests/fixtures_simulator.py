"""Fixtures that run the built-in eTrac simulator over real HTTP.

`make_simulator(**overrides)` starts one simulator per call (each on its own free
port, in a background thread) and stops them all at teardown. Overrides are
flat: any field of `FleetConfig` (seed, vehicles, accounts, now, quirks,
timezone, region...), `QuirkConfig` (duplicate_rate, jump_rate...),
`FaultConfig` (error_rate, hang_rate, latency_ms, rate_limit_per_s...) or
`SimulatorConfig` (host, fault_seed...).

`simulator` is the default one: seed 42, 10 vehicles, now frozen at
2025-01-08 12:00:00 America/Sao_Paulo, default quirks on, faults off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from etrack.simulator.server import SimulatorHandle, build_config, run_in_thread

SIMULATOR_TZ = ZoneInfo("America/Sao_Paulo")
SIMULATOR_NOW = datetime(2025, 1, 8, 12, 0, 0, tzinfo=SIMULATOR_TZ)
SIMULATOR_DEFAULTS: dict[str, Any] = {"seed": 42, "vehicles": 10, "now": SIMULATOR_NOW}

MakeSimulator = Callable[..., SimulatorHandle]


@pytest.fixture
def make_simulator() -> Iterator[MakeSimulator]:
    with ExitStack() as stack:

        def make(**overrides: Any) -> SimulatorHandle:
            config = build_config(**{**SIMULATOR_DEFAULTS, **overrides})
            return stack.enter_context(run_in_thread(config))

        yield make


@pytest.fixture
def simulator(make_simulator: MakeSimulator) -> SimulatorHandle:
    return make_simulator()
