-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- The jobs layer (etrack/jobs/): run records, the daily run, backfill
-- partitions (the shared API pace is in rates.sql). Procrastinate's tables
-- live in the same schema (procrastinate_jobs, procrastinate_workers).

-- name: job_queue_installed
-- Procrastinate's tables in the etrack schema itself (not one in public).
SELECT to_regclass(format('%I.procrastinate_jobs', current_schema())) IS NOT NULL

-- name: jobs_try_advisory_lock
SELECT pg_try_advisory_lock(%(lock_id)s)

-- name: jobs_advisory_lock
SELECT pg_advisory_lock(%(lock_id)s)

-- name: jobs_run_start
INSERT INTO job_runs (kind, args, job_id, host, pid)
VALUES (%(kind)s, %(args)s, %(job_id)s, %(host)s, %(pid)s)
RETURNING id

-- name: jobs_run_finish
UPDATE job_runs
   SET finished_at = now(), status = %(status)s, counts = %(counts)s, summary = %(summary)s,
       error = %(error)s
 WHERE id = %(id)s

-- name: jobs_runs_interrupt
-- The open runs of jobs the stalled-job recovery put back in the queue.
UPDATE job_runs SET status = 'interrupted', finished_at = now(), error = %(error)s
 WHERE job_id = ANY(%(job_ids)s::bigint[]) AND status = 'running'
RETURNING id

-- name: jobs_runs_list
-- Newest first; a 'running' worker run whose job is no longer running died.
-- With failed_only, command runs still 'running' come too: the caller tells
-- the dead ones by their pid.
SELECT id, kind, args, job_id, host, pid, started_at, finished_at, status, counts, summary, error
  FROM (SELECT r.id, r.kind, r.args, r.job_id, r.host, r.pid, r.started_at, r.finished_at,
               CASE WHEN r.status = 'running' AND r.job_id IS NOT NULL
                         AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                                          WHERE j.id = r.job_id AND j.status = 'doing')
                    THEN 'interrupted' ELSE r.status END AS status,
               r.counts, r.summary, r.error
          FROM job_runs r) AS runs
 WHERE NOT %(failed_only)s OR status IN ('failed', 'interrupted')
    OR (status = 'running' AND job_id IS NULL)
 ORDER BY started_at DESC, id DESC
 LIMIT %(limit)s

-- name: jobs_fleet_plates
SELECT placa FROM terminals ORDER BY placa

-- name: jobs_daily_done
-- The day's daily run completed for the whole fleet.
INSERT INTO daily_runs (day, plates, summary) VALUES (%(day)s, %(plates)s, %(summary)s)
ON CONFLICT (day) DO UPDATE
   SET completed_at = now(), plates = EXCLUDED.plates, summary = EXCLUDED.summary

-- name: jobs_daily_days
SELECT day FROM daily_runs WHERE day BETWEEN %(first)s AND %(last)s ORDER BY day

-- name: jobs_daily_last
SELECT day FROM daily_runs ORDER BY day DESC LIMIT 1

-- name: jobs_daily_queued
-- Days whose daily job is waiting or running.
SELECT args ->> 'day' AS day FROM procrastinate_jobs
 WHERE task_name = %(task_name)s AND status IN ('todo', 'doing')

-- name: jobs_backfill_last
SELECT id, date_start, date_end, plates, with_trips, created_at, finished_at, routes_summary,
       routes_job_id
  FROM backfills ORDER BY id DESC LIMIT 1

-- name: jobs_backfill_get
SELECT id, date_start, date_end, plates, with_trips, created_at, finished_at, routes_summary,
       routes_job_id
  FROM backfills WHERE id = %(id)s

-- name: jobs_backfill_find_open
-- An unfinished backfill of exactly this request: a re-run resumes it.
SELECT id, date_start, date_end, plates, with_trips, created_at, finished_at, routes_summary,
       routes_job_id
  FROM backfills
 WHERE finished_at IS NULL AND date_start = %(start)s AND date_end = %(end)s
   AND plates = %(plates)s::text[] AND with_trips = %(with_trips)s
 ORDER BY id DESC LIMIT 1

-- name: jobs_backfill_create
-- A new backfill and its audit row ("backfill.start", by the actor who
-- started it) in one statement: the job connector gives each statement a
-- transaction of its own, and the two must commit together.
WITH created AS (
    INSERT INTO backfills (date_start, date_end, plates, with_trips)
    VALUES (%(start)s, %(end)s, %(plates)s::text[], %(with_trips)s)
    RETURNING id, date_start, date_end, plates, with_trips, created_at, finished_at,
              routes_summary, routes_job_id
), audited AS (
    INSERT INTO audit (actor, address, action, target, detail)
    SELECT %(actor)s::text, %(address)s::text, 'backfill.start', created.id::text,
           jsonb_build_object('plates', cardinality(created.plates),
                              'from', created.date_start, 'to', created.date_end,
                              'with_trips', created.with_trips)
      FROM created
)
SELECT id, date_start, date_end, plates, with_trips, created_at, finished_at, routes_summary,
       routes_job_id
  FROM created

-- name: jobs_backfill_enqueued
UPDATE backfills SET enqueued_at = now() WHERE id = %(id)s

-- name: jobs_backfill_routes_job
UPDATE backfills SET routes_job_id = %(job_id)s WHERE id = %(id)s

-- name: jobs_backfill_finished
UPDATE backfills SET finished_at = now(), routes_summary = %(summary)s WHERE id = %(id)s

-- name: jobs_backfill_reopen
UPDATE backfills SET finished_at = NULL, routes_job_id = NULL, routes_summary = NULL
 WHERE id = %(id)s

-- name: jobs_partitions_register
-- Every (plate, day) of a backfill, in key order (two controllers lock rows
-- in the same order). A day done without the trips now asked for is pending again.
INSERT INTO backfill_partitions AS p (placa, day, backfill_id, want_trips)
SELECT pl.placa, d.day::date, %(id)s, %(want_trips)s
  FROM unnest(%(plates)s::text[]) AS pl(placa)
 CROSS JOIN generate_series(%(start)s::date, %(end)s::date, interval '1 day') AS d(day)
 ORDER BY 1, 2
ON CONFLICT (placa, day) DO UPDATE
   SET backfill_id = EXCLUDED.backfill_id,
       want_trips = p.want_trips OR EXCLUDED.want_trips,
       state = CASE WHEN p.state = 'done' AND EXCLUDED.want_trips AND p.trips_at IS NULL
                    THEN 'pending' ELSE p.state END,
       updated_at = now()

-- name: jobs_partitions_force
-- --force: forget what was fetched, except for partitions being fetched now.
UPDATE backfill_partitions
   SET history_at = NULL, trips_at = NULL, state = 'pending', error = NULL, will_retry = false,
       updated_at = now()
 WHERE placa = ANY(%(plates)s::text[]) AND day BETWEEN %(start)s AND %(end)s
   AND state <> 'running'

-- name: jobs_partitions_open
-- A backfill's partitions with work left ('partial' ones included: their
-- history_at is NULL), and the state of their job: 'stalled' when it is
-- 'doing' for a worker that stopped beating; controller_lock, when a
-- backfill controller's own worker holds it.
SELECT p.placa, p.day, p.job_id, j.status::text AS job_status, j.worker_id,
       CASE WHEN p.controller_worker = j.worker_id THEN p.controller_lock END AS controller_lock,
       coalesce(j.status = 'doing'
                AND (j.worker_id IS NULL OR w.id IS NULL
                     OR w.last_heartbeat < now() - make_interval(secs => %(stalled_after)s)),
                false) AS stalled
  FROM backfill_partitions p
  LEFT JOIN procrastinate_jobs j ON j.id = p.job_id
  LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
 WHERE p.placa = ANY(%(plates)s::text[]) AND p.day BETWEEN %(start)s AND %(end)s
   AND (p.history_at IS NULL OR (p.want_trips AND p.trips_at IS NULL))
 ORDER BY p.day, p.placa

-- name: jobs_partitions_queued
-- The new jobs of some partitions (a job that already claimed its row keeps it).
UPDATE backfill_partitions p
   SET job_id = q.job_id,
       state = CASE WHEN p.job_id = q.job_id THEN p.state ELSE 'pending' END,
       error = CASE WHEN p.job_id = q.job_id THEN p.error END,
       will_retry = false, updated_at = now()
  FROM unnest(%(plates)s::text[], %(days)s::date[], %(job_ids)s::bigint[]) AS q(placa, day, job_id)
 WHERE p.placa = q.placa AND p.day = q.day

-- name: jobs_partitions_reset_failed
-- retry-failed: partitions that failed for good become pending again.
UPDATE backfill_partitions
   SET state = 'pending', error = NULL, will_retry = false, updated_at = now()
 WHERE placa = ANY(%(plates)s::text[]) AND day BETWEEN %(start)s AND %(end)s
   AND state = 'failed' AND NOT will_retry
RETURNING placa, day

-- name: jobs_partition_claim
-- A job takes its partition when work is left and no other live job holds
-- it (row lock: of two jobs at once, the second sees the first's claim).
-- Returns what is left to fetch, or no row.
UPDATE backfill_partitions p
   SET state = 'running', attempts = p.attempts + 1, job_id = %(job_id)s, error = NULL,
       will_retry = false, controller_lock = %(controller_lock)s,
       controller_worker = (SELECT worker_id FROM procrastinate_jobs WHERE id = %(job_id)s),
       updated_at = now()
 WHERE p.placa = %(placa)s AND p.day = %(day)s
   AND (p.history_at IS NULL OR (p.want_trips AND p.trips_at IS NULL))
   AND (p.state <> 'running' OR p.job_id IS NULL OR p.job_id = %(job_id)s
        OR NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                        WHERE j.id = p.job_id AND j.status = 'doing'))
RETURNING p.history_at IS NULL AS need_history, (p.want_trips AND p.trips_at IS NULL) AS need_trips

-- name: jobs_partition_settle
-- A partition with nothing left to fetch is done (a job that died between
-- storing and saying so left it 'running').
UPDATE backfill_partitions p
   SET state = 'done', error = NULL, will_retry = false, updated_at = now()
 WHERE p.placa = %(placa)s AND p.day = %(day)s AND p.state <> 'done'
   AND p.history_at IS NOT NULL AND (NOT p.want_trips OR p.trips_at IS NOT NULL)
   AND (p.state <> 'running' OR p.job_id = %(job_id)s
        OR NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                        WHERE j.id = p.job_id AND j.status = 'doing'))

-- name: jobs_partition_history_done
UPDATE backfill_partitions
   SET history_at = now(), rows_fetched = %(received)s, rows_inserted = %(inserted)s,
       updated_at = now()
 WHERE placa = %(placa)s AND day = %(day)s

-- name: jobs_partition_trips_done
UPDATE backfill_partitions SET trips_at = now(), trips_fetched = %(trips)s, updated_at = now()
 WHERE placa = %(placa)s AND day = %(day)s

-- name: jobs_partition_partial
-- Fetched before the day was over (plus the late-data margin): the rows are
-- stored, but history_at / trips_at stay NULL so that a later run fetches
-- the day again; its backfill counts it as settled.
UPDATE backfill_partitions
   SET state = 'partial', rows_fetched = %(received)s, rows_inserted = %(inserted)s,
       trips_fetched = coalesce(%(trips)s, trips_fetched), history_at = NULL, trips_at = NULL,
       error = NULL, will_retry = false, updated_at = now()
 WHERE placa = %(placa)s AND day = %(day)s AND job_id = %(job_id)s

-- name: jobs_controllers_gone
-- Of these controller locks (two-key advisory locks), those nobody holds:
-- their controller's session ended, so its process is gone. Taken and given
-- back in one statement, so this (pooled) session never keeps one.
SELECT k AS controller_lock
  FROM unnest(%(keys)s::integer[]) AS k
 WHERE CASE WHEN pg_try_advisory_lock(%(namespace)s, k)
            THEN pg_advisory_unlock(%(namespace)s, k) ELSE false END

-- name: jobs_controller_lock
-- A backfill controller's lock, on its own dedicated session.
SELECT pg_try_advisory_lock(%(namespace)s, %(key)s)

-- name: jobs_partition_done
UPDATE backfill_partitions SET state = 'done', error = NULL, will_retry = false, updated_at = now()
 WHERE placa = %(placa)s AND day = %(day)s AND job_id = %(job_id)s

-- name: jobs_partition_failed
-- Visible in `backfill status` while it lasts; will_retry says whether the
-- job will run again.
UPDATE backfill_partitions
   SET state = 'failed', error = %(error)s, will_retry = %(will_retry)s, updated_at = now()
 WHERE placa = %(placa)s AND day = %(day)s AND job_id = %(job_id)s

-- name: jobs_partition_history_settled
-- jobs_partition_history_done and jobs_partition_done at once, for a final
-- day whose trips are not wanted: one statement less per partition.
-- The history is stored whoever holds the partition now; only its own job
-- settles it.
UPDATE backfill_partitions
   SET history_at = now(), rows_fetched = %(received)s, rows_inserted = %(inserted)s,
       state      = CASE WHEN job_id = %(job_id)s THEN 'done' ELSE state END,
       error      = CASE WHEN job_id = %(job_id)s THEN NULL ELSE error END,
       will_retry = CASE WHEN job_id = %(job_id)s THEN false ELSE will_retry END,
       updated_at = now()
 WHERE placa = %(placa)s AND day = %(day)s

-- name: jobs_backfills_ready
-- Unfinished backfills (all, one by id, or those holding one partition)
-- whose partitions have all settled (done, partial, or failed for good) and whose
-- routes job is not already queued or running.
SELECT b.id
  FROM backfills b
 WHERE b.finished_at IS NULL AND b.enqueued_at IS NOT NULL
   AND (%(id)s::bigint IS NULL OR b.id = %(id)s::bigint)
   AND (%(placa)s::text IS NULL
        OR (%(placa)s::text = ANY(b.plates) AND %(day)s::date BETWEEN b.date_start AND b.date_end))
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                    WHERE j.id = b.routes_job_id AND j.status IN ('todo', 'doing'))
   AND NOT EXISTS (SELECT 1 FROM backfill_partitions p
                    WHERE p.placa = ANY(b.plates) AND p.day BETWEEN b.date_start AND b.date_end
                      AND NOT (p.state IN ('done', 'partial')
                               OR (p.state = 'failed' AND NOT p.will_retry)))
 ORDER BY b.id

-- name: jobs_backfill_counts
SELECT count(*) AS total,
       count(*) FILTER (WHERE state = 'done') AS done,
       count(*) FILTER (WHERE state = 'partial') AS partial,
       count(*) FILTER (WHERE state = 'running') AS running,
       count(*) FILTER (WHERE state = 'pending') AS pending,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       count(*) FILTER (WHERE state = 'failed' AND will_retry) AS retrying,
       coalesce(sum(rows_fetched), 0) AS rows
  FROM backfill_partitions
 WHERE placa = ANY(%(plates)s::text[]) AND day BETWEEN %(start)s AND %(end)s

-- name: jobs_backfill_failures
SELECT placa, day, attempts, will_retry, error, updated_at
  FROM backfill_partitions
 WHERE placa = ANY(%(plates)s::text[]) AND day BETWEEN %(start)s AND %(end)s
   AND state = 'failed'
 ORDER BY updated_at DESC, placa, day
 LIMIT %(limit)s

-- name: jobs_job_status
SELECT status::text AS status FROM procrastinate_jobs WHERE id = %(id)s

-- name: jobs_backfill_summary
-- The seed's summarize_backfill: per plate, days with a route holding
-- points, and the points and distance of those days.
SELECT pl.placa,
       count(r.rota_date) FILTER (WHERE r.point_count > 0) AS days_with_routes,
       coalesce(sum(r.point_count), 0) AS points,
       coalesce(sum(r.distance_m), 0) AS distance_m
  FROM unnest(%(plates)s::text[]) AS pl(placa)
  LEFT JOIN routes r ON r.placa = pl.placa AND r.rota_date BETWEEN %(start)s AND %(end)s
 GROUP BY pl.placa
 ORDER BY pl.placa
