-- Reports (etrack/reports/kinds.py) read what the route computation stored:
-- nothing here recomputes a route. Scope: `plates` (NULL = every vehicle)
-- and `frota` (NULL = any fleet); `tz` is the report's time zone name.

-- name: reports_fleet_days
-- fleet-summary: one row per plate and local day of [first, last] with a
-- stored route; the first trip's start and the last trip's end; with
-- `odometers`, the day's first and last odometer reading (two probes of the
-- positions key per row, skipped otherwise: the per-vehicle report asks
-- reports_fleet_odometers once per vehicle instead).
WITH days AS (
    SELECT s.placa, s.rota_date, s.distance_km::float8 AS distance_km,
           (s.driving_h * 3600)::float8 AS driving_s, (s.idle_h * 3600)::float8 AS idle_s,
           (s.parked_h * 3600)::float8 AS parked_s, s.max_speed_kmh::float8 AS max_speed_kmh,
           (s.over_limit_h * 3600)::float8 AS over_limit_s, s.speed_limit_kmh,
           s.trip_count, s.stop_count,
           s.rota_date::timestamp AT TIME ZONE %(tz)s AS lo,
           (s.rota_date + 1)::timestamp AT TIME ZONE %(tz)s AS hi
      FROM route_day_summaries s
     WHERE s.rota_date >= %(first)s AND s.rota_date <= %(last)s
       AND (%(plates)s::text[] IS NULL OR s.placa = ANY(%(plates)s::text[]))
       AND (%(frota)s::text IS NULL
            OR s.placa IN (SELECT placa FROM terminals WHERE frota = %(frota)s::text))
), activity AS (
    SELECT t.placa, t.rota_date, min(t.start_ts) AS first_activity, max(t.end_ts) AS last_activity
      FROM route_trips t
      JOIN days d ON d.placa = t.placa AND d.rota_date = t.rota_date
     GROUP BY t.placa, t.rota_date
)
SELECT d.placa, d.rota_date, tm.descricao, tm.frota, d.distance_km, d.driving_s, d.idle_s,
       d.parked_s, d.max_speed_kmh, d.over_limit_s, d.speed_limit_kmh, d.trip_count,
       d.stop_count, a.first_activity, a.last_activity,
       CASE WHEN %(odometers)s THEN
           (SELECT p.odometro FROM positions p
             WHERE p.placa = d.placa AND p.data_transmissao >= d.lo AND p.data_transmissao < d.hi
               AND p.odometro IS NOT NULL AND p.quality = 'valid'
             ORDER BY p.data_transmissao LIMIT 1)
       END AS odometer_start_km,
       CASE WHEN %(odometers)s THEN
           (SELECT p.odometro FROM positions p
             WHERE p.placa = d.placa AND p.data_transmissao >= d.lo AND p.data_transmissao < d.hi
               AND p.odometro IS NOT NULL AND p.quality = 'valid'
             ORDER BY p.data_transmissao DESC LIMIT 1)
       END AS odometer_end_km
  FROM days d
  LEFT JOIN activity a ON a.placa = d.placa AND a.rota_date = d.rota_date
  LEFT JOIN terminals tm ON tm.placa = d.placa
 ORDER BY d.placa, d.rota_date

-- name: reports_fleet_odometers
-- The first and last odometer reading of each plate in [lo, hi).
SELECT k.placa,
       (SELECT p.odometro FROM positions p
         WHERE p.placa = k.placa AND p.data_transmissao >= %(lo)s AND p.data_transmissao < %(hi)s
           AND p.odometro IS NOT NULL AND p.quality = 'valid'
         ORDER BY p.data_transmissao LIMIT 1) AS odometer_start_km,
       (SELECT p.odometro FROM positions p
         WHERE p.placa = k.placa AND p.data_transmissao >= %(lo)s AND p.data_transmissao < %(hi)s
           AND p.odometro IS NOT NULL AND p.quality = 'valid'
         ORDER BY p.data_transmissao DESC LIMIT 1) AS odometer_end_km
  FROM unnest(%(plates)s::text[]) AS k(placa)

-- name: reports_fleet_plates
SELECT placa FROM terminals WHERE frota = %(frota)s ORDER BY placa

-- name: reports_event_counts
-- Events that began in [lo, hi), by plate and local day (an offline event
-- open since before is not counted again on every later report).
SELECT e.placa, (e.start_ts AT TIME ZONE %(tz)s)::date AS day, count(*)::integer AS events
  FROM events e
 WHERE e.start_ts >= %(lo)s AND e.start_ts < %(hi)s
   AND (%(plates)s::text[] IS NULL OR e.placa = ANY(%(plates)s::text[]))
 GROUP BY e.placa, day

-- name: reports_day_trips
-- vehicle-day: the day's detected trips, with their driver.
SELECT t.seq, t.start_ts, t.end_ts, t.start_address, t.end_address,
       t.start_latitude, t.start_longitude, t.end_latitude, t.end_longitude,
       t.distance_m / 1000.0 AS distance_km, t.duration_s, t.moving_s, t.max_speed_kmh,
       t.avg_speed_kmh, d.name AS driver
  FROM route_trips t
  LEFT JOIN drivers d ON d.id = t.driver_id
 WHERE t.placa = %(placa)s AND t.rota_date = %(day)s
 ORDER BY t.seq

-- name: reports_day_stops
-- vehicle-day: the day's stops.
SELECT s.seq, s.start_ts, s.end_ts, s.latitude, s.longitude, s.address, s.duration_s,
       s.ignition_on_s
  FROM route_stops s
 WHERE s.placa = %(placa)s AND s.rota_date = %(day)s
 ORDER BY s.seq

-- name: reports_day_points
-- vehicle-day: the day's valid positions in time order.
SELECT p.data_transmissao, p.latitude, p.longitude, p.velocidade, p.ignicao, p.odometro,
       p.logradouro
  FROM positions p
 WHERE p.placa = %(placa)s AND p.data_transmissao >= %(lo)s AND p.data_transmissao < %(hi)s
   AND p.quality = 'valid' AND p.latitude IS NOT NULL AND p.longitude IS NOT NULL
 ORDER BY p.data_transmissao

-- name: reports_schedule_add
INSERT INTO report_schedules (kind, every, at_local, timezone, emails, webhook_url, secret,
    formats, plates, fleet, account, by_day, csv_dialect, lang, first_period)
VALUES (%(kind)s, %(every)s, %(at_local)s, %(timezone)s, %(emails)s, %(webhook_url)s, %(secret)s,
        %(formats)s, %(plates)s, %(fleet)s, %(account)s, %(by_day)s, %(csv_dialect)s,
        %(lang)s, %(first_period)s)
RETURNING id

-- name: reports_schedule_find
-- An identical schedule (same kind, period, time, recipients, formats and
-- scope): `schedule add` run twice adds it once.
SELECT id FROM report_schedules
 WHERE kind = %(kind)s AND every = %(every)s AND at_local = %(at_local)s
   AND timezone = %(timezone)s AND emails = %(emails)s
   AND webhook_url IS NOT DISTINCT FROM %(webhook_url)s AND formats = %(formats)s
   AND plates IS NOT DISTINCT FROM %(plates)s AND fleet IS NOT DISTINCT FROM %(fleet)s
   AND account IS NOT DISTINCT FROM %(account)s AND by_day = %(by_day)s
   AND csv_dialect = %(csv_dialect)s AND lang = %(lang)s

-- name: reports_schedules_list
-- Every schedule with its runs by state, the last period sent and the
-- newest error of a run not sent.
SELECT s.id, s.kind, s.every, s.at_local, s.timezone, s.emails, s.webhook_url, s.formats,
       s.plates, s.fleet, s.account, s.by_day, s.csv_dialect, s.lang, s.active,
       s.first_period, s.created_at, s.secret,
       count(r.period_start) FILTER (WHERE r.state = 'queued') AS queued,
       count(r.period_start) FILTER (WHERE r.state = 'sent') AS sent,
       count(r.period_start) FILTER (WHERE r.state = 'failed') AS failed,
       max(r.period_start) FILTER (WHERE r.state = 'sent') AS last_sent_period,
       (SELECT r2.last_error FROM report_runs r2
         WHERE r2.schedule_id = s.id AND r2.state <> 'sent' AND r2.last_error IS NOT NULL
         ORDER BY r2.period_start DESC LIMIT 1) AS last_error
  FROM report_schedules s
  LEFT JOIN report_runs r ON r.schedule_id = s.id
 GROUP BY s.id
 ORDER BY s.id

-- name: reports_schedule_get
SELECT id, kind, every, at_local, timezone, emails, webhook_url, formats, plates, fleet,
       account, by_day, csv_dialect, lang, active, first_period, created_at, secret
  FROM report_schedules WHERE id = %(id)s

-- name: reports_schedule_set_active
-- A paused schedule queues no new period; its queued runs wait for a resume.
-- Resuming a paused one starts it again with the period running now
-- (`current`): a month's pause does not end in thirty mails at once.
UPDATE report_schedules
   SET first_period = CASE WHEN %(active)s AND NOT active
                           THEN greatest(first_period, %(current)s::date)
                           ELSE first_period END,
       active = %(active)s
 WHERE id = %(id)s RETURNING id

-- name: reports_schedule_remove
DELETE FROM report_schedules WHERE id = %(id)s RETURNING id

-- name: reports_schedules_active
SELECT id, kind, every, at_local, timezone, emails, webhook_url, formats, plates, fleet,
       account, by_day, csv_dialect, lang, active, first_period, created_at, secret
  FROM report_schedules WHERE active ORDER BY id

-- name: reports_runs_queue
-- Insert the due (schedule, period) pairs not seen before, as 'queued', and
-- return them with the 'queued' runs whose job is neither waiting nor
-- running (lost between the insert and the defer), to defer. Two ticks at
-- once insert each pair once: the primary key decides, and only the
-- inserter gets it back; the orphans part reads the statement's snapshot,
-- so a run inserted here is not listed twice.
WITH found AS (
    INSERT INTO report_runs (schedule_id, period_start, period_end)
    SELECT k.schedule_id, k.period_start, k.period_end
      FROM unnest(%(schedules)s::bigint[], %(starts)s::date[], %(ends)s::date[])
           AS k(schedule_id, period_start, period_end)
    ON CONFLICT DO NOTHING
    RETURNING schedule_id, period_start, period_end
)
SELECT schedule_id, period_start, period_end FROM found
UNION ALL
SELECT r.schedule_id, r.period_start, r.period_end
  FROM report_runs r
  JOIN report_schedules s ON s.id = r.schedule_id AND s.active
 WHERE r.state = 'queued'
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                    WHERE j.id = r.job_id AND j.status IN ('todo', 'doing'))

-- name: reports_run_set_job
UPDATE report_runs SET job_id = %(job_id)s
 WHERE schedule_id = %(schedule_id)s AND period_start = %(period_start)s

-- name: reports_run_start
-- A run's job begins: its state and attempt number (the job's id noted, so
-- the queueing does not defer it again while it runs).
UPDATE report_runs SET attempts = attempts + 1, job_id = %(job_id)s
 WHERE schedule_id = %(schedule_id)s AND period_start = %(period_start)s AND state = 'queued'
RETURNING attempts, period_end

-- name: reports_run_state
SELECT state FROM report_runs
 WHERE schedule_id = %(schedule_id)s AND period_start = %(period_start)s

-- name: reports_run_record
UPDATE report_runs
   SET state = %(state)s, last_error = %(error)s,
       sent_at = CASE WHEN %(state)s = 'sent' THEN now() ELSE sent_at END
 WHERE schedule_id = %(schedule_id)s AND period_start = %(period_start)s

-- name: reports_runs_of
SELECT schedule_id, period_start, period_end, state, attempts, last_error, queued_at, sent_at
  FROM report_runs WHERE schedule_id = %(schedule_id)s ORDER BY period_start
