"""Shared fixtures: each concern lives in its own fixtures_*.py plugin module.

Hypothesis runs through a profile: `ci` (the default, what the README's test
command and CI run) keeps 2,000 examples per property; `dev` (for the fast
subset, `HYPOTHESIS_PROFILE=dev`) runs 100, enough to catch a regression
while editing.

Every test under tests/acceptance is `slow` (commands run end to end, as a
user would); so are the few integration tests that take seconds. The fast
subset is `-m "not slow"` over tests/unit and tests/integration.
"""

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = [
    "fixtures_db",
    "fixtures_simulator",
    "fixtures_cli",
    "fixtures_jobs",
    "fixtures_outage",
]

settings.register_profile(
    "ci",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_ACCEPTANCE = Path(__file__).parent / "acceptance"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _ACCEPTANCE in item.path.parents:
            item.add_marker(pytest.mark.slow)
