"""Alert delivery as jobs: exactly one delivered alert per (rule, event).

`queue_alerts(app)` runs after events are computed (the daily run, a
backfill, the periodic fetch of latest positions): one statement
(alerts_queue in store/sql/alerts.sql) inserts an `alert_sends` row for each
new (rule, event) pair and returns those, plus the 'queued' rows that lost
their job; each gets a Procrastinate job `etrack.deliver_alert`.

Why each (rule, event) is delivered once:
- the `alert_sends` primary key: however many workers, recomputations and
  replays run at once, one INSERT wins each pair, and only the winner gets
  it back to defer;
- the job's `lock` (etrack-alert:RULE:EVENT) makes two jobs of one pair
  (deferred twice: a re-defer of a lost job racing the first defer, a
  forced replay) run one after the other, never at once;
- the job reads the pair's state first: 'sent' (or 'failed') means a
  duplicate job, or a retry of one that finished, and does nothing.
No `queueing_lock`: Procrastinate puts a retried job back to 'todo' under
its queueing lock, and a second job of the pair waiting under the same one
would make that retry fail on the unique index; a duplicate waiting job is
harmless instead (it runs after the first and finds the pair done).
A worker killed after the receiver got the alert but before 'sent' was
written retries it (stalled-job recovery): delivery to the wire is at least
once, and the `Idempotency-Key` header (the event id) lets a receiver drop
the copy.

A paused rule (`etrack alerts pause`, the Rules page) queues nothing new,
and a job of a pair it had queued before finds it paused and leaves the
pair queued, untouched: it goes out after the rule is resumed.

Each attempt is a row of `deliveries`. A failed attempt raises, and the
task's retry strategy (etrack.jobs.tasks.alert_retry: ETRACK_ALERT_ATTEMPTS,
ETRACK_ALERT_RETRY_S doubling) tries again; the last one marks the pair
'failed' with its error, shown by `etrack alerts list`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from procrastinate.jobs import Job

from etrack.alerts.outcome import AlertNotDelivered, AlertRefused, SendResult
from etrack.alerts.send import send_alert
from etrack.config import parse_elapsed
from etrack.jobs.env import EtrackApp, fetch_all, fetch_one, run_sql
from etrack.jobs.names import DELIVER_ALERT
from etrack.jobs.runs import Outcome
from etrack.store.alerts import rule_from_row
from etrack.store.events import EventRow

__all__ = ["alert_lock", "deliver_alert_once", "queue_alerts", "replay_alerts"]

logger = logging.getLogger("etrack.jobs.alerts")


def alert_lock(rule: str, event_id: uuid.UUID | str) -> str:
    """The Procrastinate lock of one (rule, event)."""
    return f"etrack-alert:{rule}:{event_id}"


async def queue_alerts(app: EtrackApp) -> int:
    """Queue the deliveries of new events for every active rule; how many
    jobs were deferred (0 when nothing is new: one indexed query)."""
    return await _queue(app, rule=None, lo=None, hi=None)


async def replay_alerts(
    app: EtrackApp, rule: str, lo: datetime, hi: datetime, *, force: bool = False
) -> int:
    """Queue `rule`'s events starting in [lo, hi), whatever their age and the
    rule's creation. Pairs already queued, sent or failed are left alone,
    unless `force`: then the sent and failed ones are sent again."""
    if force:
        # Back to 'queued' without a job: the queueing below defers them
        # with the orphans.
        await fetch_all(app, "alerts_requeue", rule=rule, lo=lo, hi=hi)
    return await _queue(app, rule=rule, lo=lo, hi=hi)


async def _queue(
    app: EtrackApp, *, rule: str | None, lo: datetime | None, hi: datetime | None
) -> int:
    max_age = parse_elapsed(app.env.settings.etrack_alert_max_age)
    rows = await fetch_all(app, "alerts_queue", rule=rule, lo=lo, hi=hi, max_age=max_age)
    for row in rows:
        await _defer(app, str(row["rule"]), row["event_id"])
    if rows:
        logger.info("queued %d alert deliveries", len(rows))
    return len(rows)


async def _defer(app: EtrackApp, rule: str, event_id: uuid.UUID) -> None:
    deferrer = app.configure_task(DELIVER_ALERT, lock=alert_lock(rule, event_id))
    job_id = await deferrer.defer_async(rule=rule, event_id=str(event_id))
    # Named on the pair: while this job waits or runs, the pair is not lost.
    await run_sql(app, "alerts_set_job", rule=rule, event_id=event_id, job_id=job_id)


def _event_from_row(row: dict[str, Any]) -> EventRow:
    return EventRow(
        id=row["id"],
        placa=str(row["placa"]),
        kind=str(row["kind"]),
        start_ts=row["start_ts"],
        end_ts=row["end_ts"],
        duration_s=row["duration_s"],
        value=row["value"],
        limit_value=row["limit_value"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        logradouro=row["logradouro"],
        driver=row["driver"],
        rule=None,
    )


async def deliver_alert_once(app: EtrackApp, job: Job, rule: str, event_id: str) -> Outcome:
    """The task's work: one attempt at delivering `rule`'s alert of `event_id`."""
    settings = app.env.settings
    event_uuid = uuid.UUID(event_id)
    row = await fetch_one(
        app, "alerts_delivery_start", rule=rule, event_id=event_uuid, job_id=job.id
    )
    if row is None:
        await run_sql(app, "alerts_superseded", rule=rule, event_id=event_uuid)
        return Outcome(status="skipped", summary=f"{rule}: the rule or event {event_id} is gone")
    if row["state"] != "queued":
        return Outcome(status="skipped", summary=f"{rule}: event {event_id} already {row['state']}")
    if not row["active"]:
        # Paused since the pair was queued: nothing goes out and the pair stays
        # queued, not counted as an attempt. The queueing leaves a paused
        # rule's pairs alone, and defers them again once it is resumed.
        return Outcome(status="skipped", summary=f"{rule}: paused, event {event_id} waits")
    attempt = int(row["attempts"])
    try:
        result = await send_alert(rule_from_row(row), _event_from_row(row), settings)
    except Exception as exc:
        # Anything the channel did not foresee (smtplib's UnicodeEncodeError for
        # a non-ASCII password) is a failed attempt like any other: recorded,
        # retried, then 'failed', never a pair queued forever without an error.
        logger.warning("alert %s, event %s: unexpected %s", rule, event_id, type(exc).__name__)
        result = SendResult(
            ok=False, error=f"unexpected {type(exc).__name__} while sending", http_status=None
        )
    # job.attempts counts the runs before this one, as the retry strategy does.
    last = result.ok or result.permanent or job.attempts + 1 >= settings.etrack_alert_attempts
    state = "sent" if result.ok else "failed" if last else "queued"
    await run_sql(
        app,
        "alerts_delivery_record",
        rule=rule,
        event_id=event_uuid,
        attempt=attempt,
        status="sent" if result.ok else "failed",
        http_status=result.http_status,
        error=result.error,
        state=state,
    )
    if result.ok:
        return Outcome(
            counts={"attempt": attempt},
            summary=f"{rule}: event {event_id} delivered (attempt {attempt})",
        )
    message = f"alert {rule}, event {event_id}, attempt {attempt}: {result.error}"
    if result.permanent:
        raise AlertRefused(message)
    raise AlertNotDelivered(message)
