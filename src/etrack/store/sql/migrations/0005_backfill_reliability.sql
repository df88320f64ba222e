-- 0005: backfill reliability.
--
-- 'partial': the partition was fetched before its day was over (in the
-- account's time zone, plus ETRACK_LATE_DATA_MARGIN_S for late data). Its
-- backfill counts it as settled (its routes are computed with what came),
-- but history_at stays NULL, so the next backfill over that day fetches it
-- again; only a fetch after the day's end plus the margin makes it 'done'.
ALTER TABLE backfill_partitions DROP CONSTRAINT backfill_partitions_state_check;
ALTER TABLE backfill_partitions ADD CONSTRAINT backfill_partitions_state_check
    CHECK (state IN ('pending', 'running', 'done', 'partial', 'failed'));

-- The advisory lock (two-key form, see etrack.jobs.backfill) held by the
-- backfill controller whose in-process worker claimed the partition; NULL
-- for `etrack worker` processes. A re-run that finds that lock free knows
-- the controller's process is gone and recovers its jobs at once, instead of
-- waiting ETRACK_JOB_STALLED_AFTER_S for missing heartbeats. controller_worker
-- is the Procrastinate worker of that claim: the lock vouches for that
-- worker only, and then for all of its running jobs (also those killed
-- before they could claim their partition).
ALTER TABLE backfill_partitions ADD COLUMN controller_lock integer;
ALTER TABLE backfill_partitions ADD COLUMN controller_worker bigint;
