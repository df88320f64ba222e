-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- The web UI and JSON API (etrack/web). Request text only ever reaches these
-- as bound parameters.

-- name: web_ping
SELECT 1

-- name: web_vehicles_latest
-- Every vehicle with its newest valid position (the fleet map). terminals
-- knows the newest timestamp of any quality; latest_positions holds each
-- plate's newest valid row, kept by the ingest: two small tables joined,
-- no read of positions however long the history.
SELECT t.placa, t.descricao, t.frota, t.last_position_ts,
       l.data_transmissao, l.latitude, l.longitude, l.velocidade, l.ignicao, l.logradouro
  FROM terminals t
  LEFT JOIN latest_positions l ON l.placa = t.placa
 ORDER BY t.placa

-- name: web_vehicle
SELECT placa, descricao, frota, equipamento_serial, last_position_ts
  FROM terminals WHERE placa = %(placa)s

-- name: web_positions_page
-- One plate's positions in [lo, hi), oldest first; the caller pages by moving lo.
SELECT data_transmissao, data_gravacao, latitude, longitude, velocidade, ignicao, odometro,
       horimetro, bateria, logradouro, quality
  FROM positions
 WHERE placa = %(placa)s AND data_transmissao >= %(lo)s AND data_transmissao < %(hi)s
 ORDER BY data_transmissao
 LIMIT %(limit)s

-- name: web_route_feature_text
-- A stored plate-day as a GeoJSON Feature, serialized by PostgreSQL: the
-- route API's fast path never parses the line in Python.
SELECT json_build_object(
         'type', 'Feature',
         'geometry', CASE WHEN %(simplified)s THEN coalesce(r.simplified, r.geojson) ELSE r.geojson END,
         'properties', json_build_object(
             'placa', r.placa, 'rota_date', r.rota_date, 'start_ts', r.start_ts,
             'end_ts', r.end_ts, 'point_count', r.point_count,
             'invalid_count', r.invalid_count, 'distance_m', r.distance_m,
             'odometer_m', r.odometer_m, 'driving_s', r.driving_s, 'idle_s', r.idle_s,
             'parked_s', r.parked_s, 'max_speed_kmh', r.max_speed_kmh,
             'avg_speed_kmh', r.avg_speed_kmh, 'over_limit_s', r.over_limit_s,
             'trip_count', r.trip_count, 'stop_count', r.stop_count,
             'speed_limit_kmh', (r.params ->> 'speed_limit_kmh')::double precision,
             'simplified', %(simplified)s, 'stored', true, 'computed_at', r.computed_at)
       )::text
  FROM routes r
 WHERE r.placa = %(placa)s AND r.rota_date = %(day)s

-- name: web_route_row
-- A stored plate-day with everything the vehicle-day page draws.
SELECT placa, rota_date, points, geojson, simplified, start_ts, end_ts, point_count,
       invalid_count, distance_m, odometer_m, driving_s, idle_s, parked_s, max_speed_kmh,
       avg_speed_kmh, over_limit_s, trip_count, stop_count, provider_comparison, params,
       computed_at
  FROM routes
 WHERE placa = %(placa)s AND rota_date = %(day)s

-- name: web_route_trips
SELECT seq, start_ts, end_ts, start_latitude, start_longitude, end_latitude, end_longitude,
       start_address, end_address, distance_m, duration_s, max_speed_kmh, avg_speed_kmh
  FROM route_trips
 WHERE placa = %(placa)s AND rota_date = %(day)s
 ORDER BY seq

-- name: web_route_stops
SELECT seq, start_ts, end_ts, latitude, longitude, address, duration_s, ignition_on_s
  FROM route_stops
 WHERE placa = %(placa)s AND rota_date = %(day)s
 ORDER BY seq

-- name: web_provider_trips
-- The provider's own trips (resumoviagens) of a plate-day.
SELECT data_inicio_conducao, data_fim_conducao, distancia_conducao,
       extract(epoch FROM duracao_conducao)::integer AS duracao_s,
       localizacao_inicio_conducao, localizacao_fim_conducao, condutor_nome
  FROM trips
 WHERE placa = %(placa)s AND rota_date = %(day)s
 ORDER BY data_inicio_conducao

-- name: web_route_days
-- The newest stored days of one plate (summary only), newest first.
SELECT rota_date, start_ts, end_ts, point_count, distance_m, trip_count, stop_count,
       max_speed_kmh
  FROM routes
 WHERE placa = %(placa)s AND rota_date <= %(before)s
 ORDER BY rota_date DESC
 LIMIT %(limit)s

-- name: web_day_summaries_page
-- One page of the day summaries of a range, in (rota_date, placa) order,
-- after a key (the previous page's last row; (first, '') for the first
-- page): a range scan of the key's index from the key on, whatever page it
-- is, where an OFFSET would read and drop every row before it.
SELECT s.placa, s.rota_date, t.descricao, t.frota, s.distance_km, s.odometer_km, s.driving_h,
       s.idle_h, s.parked_h, s.max_speed_kmh, s.avg_speed_kmh, s.over_limit_h,
       s.speed_limit_kmh, s.trip_count, s.stop_count, s.point_count, s.invalid_count,
       s.start_ts, s.end_ts, s.provider_trip_count, s.provider_agrees
  FROM route_day_summaries s
  LEFT JOIN terminals t ON t.placa = s.placa
 WHERE (s.rota_date, s.placa) > (%(after_date)s::date, %(after_placa)s::text)
   AND s.rota_date >= %(first)s AND s.rota_date <= %(last)s
   AND (%(plates)s::text[] IS NULL OR s.placa = ANY(%(plates)s::text[]))
 ORDER BY s.rota_date, s.placa
 LIMIT %(limit)s

-- name: web_day_summaries_count
-- How many day summaries the range holds (the pages' total).
SELECT count(*)
  FROM route_day_summaries
 WHERE rota_date >= %(first)s AND rota_date <= %(last)s
   AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))

-- name: web_fleet_report
-- The fleet report: one row per vehicle over [first, last], optionally one
-- fleet. Sums the stored day summaries (plain rows, the numbers the view
-- gave, so the downloads keep their figures) and joins the vehicle's name
-- once per vehicle rather than once per day.
WITH per_plate AS (
    SELECT s.placa, count(*) AS days,
           coalesce(sum(s.distance_km), 0) AS distance_km,
           coalesce(sum(s.driving_h), 0) AS driving_h,
           coalesce(sum(s.idle_h), 0) AS idle_h,
           coalesce(sum(s.parked_h), 0) AS parked_h,
           max(s.max_speed_kmh) AS max_speed_kmh,
           coalesce(sum(s.over_limit_h), 0) AS over_limit_h,
           coalesce(sum(s.trip_count), 0)::integer AS trip_count,
           max(s.speed_limit_kmh) AS speed_limit_kmh
      FROM route_day_summaries s
     WHERE s.rota_date >= %(first)s AND s.rota_date <= %(last)s
       AND (%(frota)s::text IS NULL
            OR s.placa IN (SELECT placa FROM terminals WHERE frota = %(frota)s::text))
     GROUP BY s.placa
)
SELECT p.placa, t.descricao, t.frota, p.days, p.distance_km, p.driving_h, p.idle_h,
       p.parked_h, p.max_speed_kmh, p.over_limit_h, p.trip_count, p.speed_limit_kmh
  FROM per_plate p
  LEFT JOIN terminals t ON t.placa = p.placa
 ORDER BY p.placa

-- name: web_fleets
SELECT DISTINCT frota FROM terminals WHERE frota IS NOT NULL ORDER BY frota

-- name: web_health
-- Newest position held (data freshness) and the last successful fetch run.
SELECT (SELECT max(last_position_ts) FROM terminals) AS newest_position,
       (SELECT max(finished_at) FROM job_runs
         WHERE kind = 'fetch_latest' AND status = 'succeeded') AS last_fetch

-- name: web_metrics_runs
-- Job runs by kind and status, with durations (for /metrics).
SELECT kind, status, count(*) AS runs,
       coalesce(sum(extract(epoch FROM finished_at - started_at)), 0) AS seconds,
       max(finished_at) AS last_finished
  FROM job_runs
 GROUP BY kind, status

-- name: web_metrics_last_durations
-- Duration of the newest finished run of each kind.
SELECT DISTINCT ON (kind) kind, extract(epoch FROM finished_at - started_at) AS seconds
  FROM job_runs
 WHERE finished_at IS NOT NULL
 ORDER BY kind, finished_at DESC

-- name: web_metrics_counts
-- Sums of every numeric count the runs recorded (rows inserted, API calls, retries...).
SELECT r.kind, c.key, sum((c.value)::text::numeric) AS total
  FROM job_runs r
 CROSS JOIN LATERAL jsonb_each(coalesce(r.counts, '{}'::jsonb)) AS c(key, value)
 WHERE jsonb_typeof(c.value) = 'number'
 GROUP BY r.kind, c.key

-- name: web_metrics_tables
-- Row estimates from the planner statistics (no scan of the big tables).
SELECT (SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'positions'::regclass) AS positions,
       (SELECT count(*) FROM terminals) AS terminals,
       (SELECT max(last_position_ts) FROM terminals) AS newest_position

-- name: web_metrics_partitions
-- Backfill partitions not done yet, by state.
SELECT state, count(*) AS partitions FROM backfill_partitions WHERE state <> 'done' GROUP BY state

-- name: web_db_terminals
SELECT placa, placa_raw, descricao, frota, equipamento_serial, first_seen, updated_at,
       last_position_ts, last_latitude, last_longitude
  FROM terminals
 WHERE placa > %(after_placa)s AND (%(placa)s::text IS NULL OR placa = %(placa)s::text)
 ORDER BY placa
 LIMIT %(limit)s

-- name: web_db_terminal
SELECT * FROM terminals WHERE placa = %(placa)s

-- name: web_db_positions
SELECT placa, data_transmissao, latitude, longitude, velocidade, ignicao, odometro,
       logradouro, quality, ingested_at
  FROM positions
 WHERE (placa, data_transmissao) > (%(after_placa)s, %(after_key)s::timestamptz)
 ORDER BY placa, data_transmissao
 LIMIT %(limit)s

-- name: web_db_positions_of_plate
SELECT placa, data_transmissao, latitude, longitude, velocidade, ignicao, odometro,
       logradouro, quality, ingested_at
  FROM positions
 WHERE placa = %(placa)s AND data_transmissao > %(after_key)s::timestamptz
 ORDER BY data_transmissao
 LIMIT %(limit)s

-- name: web_db_position
SELECT * FROM positions WHERE placa = %(placa)s AND data_transmissao = %(key)s::timestamptz

-- name: web_db_trips
SELECT placa, data_inicio_conducao, data_fim_conducao, rota_date, descricao, frota,
       distancia_conducao, duracao_conducao, localizacao_inicio_conducao,
       localizacao_fim_conducao, condutor_nome
  FROM trips
 WHERE (placa, data_inicio_conducao) > (%(after_placa)s, %(after_key)s::timestamptz)
 ORDER BY placa, data_inicio_conducao
 LIMIT %(limit)s

-- name: web_db_trips_of_plate
SELECT placa, data_inicio_conducao, data_fim_conducao, rota_date, descricao, frota,
       distancia_conducao, duracao_conducao, localizacao_inicio_conducao,
       localizacao_fim_conducao, condutor_nome
  FROM trips
 WHERE placa = %(placa)s AND data_inicio_conducao > %(after_key)s::timestamptz
 ORDER BY data_inicio_conducao
 LIMIT %(limit)s

-- name: web_db_trip
SELECT * FROM trips WHERE placa = %(placa)s AND data_inicio_conducao = %(key)s::timestamptz

-- name: web_db_routes
SELECT placa, rota_date, start_ts, end_ts, point_count, invalid_count, distance_m,
       trip_count, stop_count, max_speed_kmh, computed_at
  FROM routes
 WHERE (placa, rota_date) > (%(after_placa)s, %(after_key)s::date)
 ORDER BY placa, rota_date
 LIMIT %(limit)s

-- name: web_db_routes_of_plate
SELECT placa, rota_date, start_ts, end_ts, point_count, invalid_count, distance_m,
       trip_count, stop_count, max_speed_kmh, computed_at
  FROM routes
 WHERE placa = %(placa)s AND rota_date > %(after_key)s::date
 ORDER BY rota_date
 LIMIT %(limit)s

-- name: web_db_route
SELECT placa, rota_date, start_ts, end_ts, point_count, invalid_count, distance_m, odometer_m,
       driving_s, idle_s, parked_s, max_speed_kmh, avg_speed_kmh, over_limit_s, trip_count,
       stop_count, provider_comparison, params, source_fingerprint, computed_at,
       jsonb_array_length(points) AS listed_points
  FROM routes WHERE placa = %(placa)s AND rota_date = %(key)s::date


-- name: web_jobs_backfills_recent
-- The newest backfills (their progress is read through etrack.jobs.backfill.status).
SELECT id FROM backfills ORDER BY id DESC LIMIT %(limit)s
