"""Worker timings for tests: one definition shared by every jobs test."""

from __future__ import annotations

import pytest

from etrack.jobs.app import JobTuning

# Poll ten times a second, call a job stalled after 2 s without a heartbeat and
# look for stalled jobs every second: crash-recovery tests finish in seconds.
FAST = JobTuning(poll_s=0.1, heartbeat_s=0.5, stalled_after_s=2.0, recover_cron="* * * * * */1")


@pytest.fixture
def fast_tuning() -> JobTuning:
    return FAST
