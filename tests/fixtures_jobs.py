"""Worker timings for tests: one definition shared by every jobs test."""

from __future__ import annotations

import pytest

from etrack.jobs.env import JobTuning

# Poll ten times a second, call a job stalled after 2 s without a heartbeat and
# look for stalled jobs every second: crash-recovery tests finish in seconds.
FAST = JobTuning(poll_s=0.1, heartbeat_s=0.5, stalled_after_s=2.0, recover_cron="* * * * * */1")

# The same timings as settings, for the commands the acceptance tests start.
FAST_ENV = {
    "ETRACK_JOB_POLL_S": str(FAST.poll_s),
    "ETRACK_JOB_HEARTBEAT_S": str(FAST.heartbeat_s),
    "ETRACK_JOB_STALLED_AFTER_S": str(FAST.stalled_after_s),
    "ETRACK_JOB_RECOVER_CRON": FAST.recover_cron,
}


@pytest.fixture
def fast_tuning() -> JobTuning:
    return FAST
