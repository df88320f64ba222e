"""The jobs layer's pure parts: crons in UTC, catch-up days, retry decisions,
summaries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from procrastinate.jobs import Job

from etrack.config import load_settings
from etrack.errors import ApiUnavailable, SettingsError, UnknownPlate
from etrack.jobs.backfill import Counts, PlateSummary, summary_lines
from etrack.jobs.daily import DailyResult, due_days
from etrack.jobs.tasks import Backoff, daily_cron, local_cron_to_utc, local_day_before
from etrack.trips.compute import RoutesSummary

SP = ZoneInfo("America/Sao_Paulo")
NY = ZoneInfo("America/New_York")


def next_fire(cron: str, after: datetime) -> datetime:
    """When Procrastinate would fire `cron` next: croniter on a UTC timestamp."""
    iterator = croniter(cron)
    iterator.set_current(start_time=after.timestamp())
    return datetime.fromtimestamp(iterator.get_next(float), UTC)


def test_daily_cron_fires_at_the_local_time() -> None:
    now = datetime(2025, 1, 8, 15, 0, tzinfo=SP)
    cron = daily_cron("01:00", SP, now=now)
    assert cron == "0 4 * * *"
    assert next_fire(cron, now).astimezone(SP) == datetime(2025, 1, 9, 1, 0, tzinfo=SP)


def test_daily_cron_uses_the_offset_of_the_next_occurrence() -> None:
    # New York on the eve of the spring change: 01:30 tomorrow is already EDT.
    now = datetime(2025, 3, 8, 12, 0, tzinfo=NY)
    cron = daily_cron("01:30", NY, now=now)
    assert next_fire(cron, now).astimezone(NY) == datetime(2025, 3, 9, 1, 30, tzinfo=NY)


def test_fractional_offsets_keep_the_minute() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    now = datetime(2025, 1, 8, 12, 0, tzinfo=kolkata)
    cron = daily_cron("01:00", kolkata, now=now)
    assert next_fire(cron, now).astimezone(kolkata) == datetime(2025, 1, 9, 1, 0, tzinfo=kolkata)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("*/2 * * * *", "*/2 * * * *"),
        ("* * * * * */2", "* * * * * */2"),
        ("0 1 * * *", "0 4 * * *"),
        ("15 8-10 * * *", "15 11,12,13 * * *"),
        ("0 22,23 * * *", "0 1,2 * * *"),
        ("0 */12 * * *", "0 3,15 * * *"),
        ("0 22 * * 1", "0 22 * * 1"),  # would move to Tuesday UTC: left alone
        ("0 nonsense * * *", "0 nonsense * * *"),
    ],
)
def test_local_cron_to_utc(cron: str, expected: str) -> None:
    assert local_cron_to_utc(cron, SP, now=datetime(2025, 1, 8, tzinfo=UTC)) == expected


def test_the_daily_tick_processes_the_local_day_before() -> None:
    tick = datetime(2025, 1, 9, 4, 0, tzinfo=UTC)  # 01:00 in Sao Paulo
    assert local_day_before(int(tick.timestamp()), SP) == date(2025, 1, 8)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 1, day, hour, minute, tzinfo=SP)


def test_before_the_daily_time_yesterday_is_not_due_yet() -> None:
    completed = {date(2025, 1, 6)}
    assert due_days(at(8, 0, 30), "01:00", completed=completed) == []
    assert due_days(at(8, 1, 0), "01:00", completed=completed) == [date(2025, 1, 7)]


def test_missed_days_since_the_last_completed_one_are_due() -> None:
    completed = {date(2025, 1, 3)}
    assert due_days(at(8, 9), "01:00", completed=completed) == [
        date(2025, 1, d) for d in (4, 5, 6, 7)
    ]


def test_catch_up_is_bounded() -> None:
    completed = {date(2024, 12, 1)}
    days = due_days(at(20, 9), "01:00", completed=completed, horizon=7)
    assert days == [date(2025, 1, d) for d in range(13, 20)]


def test_a_new_install_catches_up_only_the_last_day() -> None:
    assert due_days(at(8, 9), "01:00", completed=set()) == [date(2025, 1, 7)]


def test_nothing_is_due_when_up_to_date() -> None:
    assert due_days(at(8, 9), "01:00", completed={date(2025, 1, 7)}) == []


def job(attempts: int) -> Job:
    return Job(id=1, queue="q", lock=None, queueing_lock=None, task_name="t", attempts=attempts)


def test_backoff_retries_transient_errors_with_growing_waits() -> None:
    strategy = Backoff(attempts=3, first_s=2.0, max_s=3.0)
    error = ApiUnavailable("/x", 5, "HTTP 503")
    first = strategy.get_retry_decision(exception=error, job=job(0))
    second = strategy.get_retry_decision(exception=error, job=job(1))
    assert first is not None
    assert first.retry_at is not None
    assert second is not None
    assert second.retry_at is not None
    now = datetime.now(UTC)
    assert 1.5 < (first.retry_at - now).total_seconds() <= 2.0
    assert 2.5 < (second.retry_at - now).total_seconds() <= 3.0  # capped
    assert strategy.get_retry_decision(exception=error, job=job(2)) is None


def test_backoff_gives_up_at_once_on_what_asking_again_cannot_fix() -> None:
    strategy = Backoff(attempts=5, first_s=1.0, max_s=10.0)
    refused = UnknownPlate("Placa não encontrada", 404, "/x")
    assert strategy.get_retry_decision(exception=refused, job=job(0)) is None


def test_settings_refuse_a_stall_threshold_below_two_heartbeats() -> None:
    with pytest.raises(SettingsError, match="at least twice"):
        load_settings(_env_file=None, etrack_job_heartbeat_s=5, etrack_job_stalled_after_s=6)


def test_summary_lines() -> None:
    rows = [
        PlateSummary("ABC1234", days=3, days_with_routes=2, points=120, distance_km=12.345),
        PlateSummary("XYZ9A87", days=3, days_with_routes=0, points=0, distance_km=0.0),
    ]
    lines = summary_lines(rows)
    assert lines[1].split() == ["ABC1234", "2/3", "120", "12.3"]
    assert lines[-1] == "total: 2 plates, 2 plate-days with routes, 120 points"


def test_counts_line_and_settled() -> None:
    counts = Counts(total=10, done=6, running=1, pending=1, failed=2, retrying=1, rows=500)
    assert counts.settled == 7
    assert counts.line() == (
        "6/10 partitions done, running 1, pending 1, failed 2 (1 to be retried); 500 rows fetched"
    )


def test_a_daily_result_with_failures_is_not_complete() -> None:
    result = DailyResult(day=date(2025, 1, 7), plates=3, fetch_line="received 10")
    result.routes = RoutesSummary(computed=2)
    assert result.complete
    result.failed = {"ABC1234": "ApiUnavailable: HTTP 503"}
    assert not result.complete
    assert "1 plate failed: ABC1234 (ApiUnavailable: HTTP 503)" in result.line()
    assert result.outcome().status == "failed"
