-- etrack's SQL, one named block per statement (see etrack/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- name: create_migrations_table
-- Bookkeeping of applied migrations (also filled by e-track/schema.sql).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)

-- name: applied_migrations
SELECT version, name, applied_at FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s)

-- name: migrations_table_exists
SELECT to_regclass('schema_migrations') IS NOT NULL

-- name: current_schema_version
SELECT coalesce(max(version), 0) FROM schema_migrations

-- name: ensure_positions_partition
SELECT ensure_positions_partition(%(ts)s)

-- name: create_positions_staging
-- Per-session staging table for the COPY path; emptied at each commit.
CREATE TEMP TABLE IF NOT EXISTS positions_staging (
    placa text, data_transmissao timestamptz, data_gravacao timestamptz,
    latitude double precision, longitude double precision, velocidade double precision,
    ignicao boolean, odometro double precision, odometro_can double precision,
    horimetro double precision, bateria double precision, logradouro text,
    quality text, raw text
) ON COMMIT DELETE ROWS

-- name: copy_positions_staging
COPY positions_staging (placa, data_transmissao, data_gravacao, latitude, longitude,
    velocidade, ignicao, odometro, odometro_can, horimetro, bateria, logradouro, quality, raw)
FROM STDIN (FORMAT BINARY)

-- name: upsert_positions_from_staging
-- Insert new rows; for rows already stored only fill in what they lacked
-- (never overwrite a value, never with NULL), so a re-run changes nothing.
-- Returns (inserted, updated).
WITH upserted AS (
    INSERT INTO positions AS p (placa, data_transmissao, data_gravacao, latitude, longitude,
        velocidade, ignicao, odometro, odometro_can, horimetro, bateria, logradouro, quality, raw)
    SELECT DISTINCT ON (placa, data_transmissao)
           placa, data_transmissao, data_gravacao, latitude, longitude, velocidade, ignicao,
           odometro, odometro_can, horimetro, bateria, logradouro, quality, raw::jsonb
      FROM positions_staging
     ORDER BY placa, data_transmissao
    ON CONFLICT (placa, data_transmissao) DO UPDATE SET
        data_gravacao = coalesce(p.data_gravacao, EXCLUDED.data_gravacao),
        latitude      = coalesce(p.latitude, EXCLUDED.latitude),
        longitude     = coalesce(p.longitude, EXCLUDED.longitude),
        velocidade    = coalesce(p.velocidade, EXCLUDED.velocidade),
        ignicao       = coalesce(p.ignicao, EXCLUDED.ignicao),
        odometro      = coalesce(p.odometro, EXCLUDED.odometro),
        odometro_can  = coalesce(p.odometro_can, EXCLUDED.odometro_can),
        horimetro     = coalesce(p.horimetro, EXCLUDED.horimetro),
        bateria       = coalesce(p.bateria, EXCLUDED.bateria),
        logradouro    = coalesce(p.logradouro, EXCLUDED.logradouro),
        updated_at    = now()
    WHERE (p.data_gravacao IS NULL AND EXCLUDED.data_gravacao IS NOT NULL)
       OR (p.latitude IS NULL AND EXCLUDED.latitude IS NOT NULL)
       OR (p.longitude IS NULL AND EXCLUDED.longitude IS NOT NULL)
       OR (p.velocidade IS NULL AND EXCLUDED.velocidade IS NOT NULL)
       OR (p.ignicao IS NULL AND EXCLUDED.ignicao IS NOT NULL)
       OR (p.odometro IS NULL AND EXCLUDED.odometro IS NOT NULL)
       OR (p.odometro_can IS NULL AND EXCLUDED.odometro_can IS NOT NULL)
       OR (p.horimetro IS NULL AND EXCLUDED.horimetro IS NOT NULL)
       OR (p.bateria IS NULL AND EXCLUDED.bateria IS NOT NULL)
       OR (p.logradouro IS NULL AND EXCLUDED.logradouro IS NOT NULL)
    -- xmax is not available on partitioned tables: an inserted row is one
    -- whose updated_at is still NULL.
    RETURNING (updated_at IS NULL) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted

-- name: upsert_terminals
-- One row per plate. Descriptive fields and the last position follow the
-- newest data (vehicles get renamed; an old backfill must not undo that),
-- and an empty value never replaces a known one.
INSERT INTO terminals AS t (placa, placa_raw, descricao, frota, equipamento_serial,
                            last_position_ts, last_latitude, last_longitude, raw)
SELECT * FROM unnest(%(placa)s::text[], %(placa_raw)s::text[], %(descricao)s::text[],
                     %(frota)s::text[], %(equipamento_serial)s::text[],
                     %(last_position_ts)s::timestamptz[], %(last_latitude)s::float8[],
                     %(last_longitude)s::float8[], %(raw)s::text[]::jsonb[])
ON CONFLICT (placa) DO UPDATE SET
    placa_raw          = CASE WHEN EXCLUDED.last_position_ts >= t.last_position_ts OR t.placa_raw IS NULL
                              THEN coalesce(EXCLUDED.placa_raw, t.placa_raw) ELSE t.placa_raw END,
    descricao          = CASE WHEN EXCLUDED.last_position_ts >= t.last_position_ts OR t.descricao IS NULL
                              THEN coalesce(EXCLUDED.descricao, t.descricao) ELSE t.descricao END,
    frota              = CASE WHEN EXCLUDED.last_position_ts >= t.last_position_ts OR t.frota IS NULL
                              THEN coalesce(EXCLUDED.frota, t.frota) ELSE t.frota END,
    equipamento_serial = CASE WHEN EXCLUDED.last_position_ts >= t.last_position_ts OR t.equipamento_serial IS NULL
                              THEN coalesce(EXCLUDED.equipamento_serial, t.equipamento_serial)
                              ELSE t.equipamento_serial END,
    last_position_ts   = greatest(t.last_position_ts, EXCLUDED.last_position_ts),
    last_latitude      = CASE WHEN EXCLUDED.last_position_ts > t.last_position_ts OR t.last_position_ts IS NULL
                              THEN coalesce(EXCLUDED.last_latitude, t.last_latitude) ELSE t.last_latitude END,
    last_longitude     = CASE WHEN EXCLUDED.last_position_ts > t.last_position_ts OR t.last_position_ts IS NULL
                              THEN coalesce(EXCLUDED.last_longitude, t.last_longitude) ELSE t.last_longitude END,
    raw                = CASE WHEN EXCLUDED.last_position_ts > t.last_position_ts OR t.last_position_ts IS NULL
                              THEN coalesce(EXCLUDED.raw, t.raw) ELSE t.raw END,
    updated_at         = now()
WHERE t.last_position_ts IS NULL
   OR EXCLUDED.last_position_ts > t.last_position_ts
   OR (t.descricao IS NULL AND EXCLUDED.descricao IS NOT NULL)
   OR (t.frota IS NULL AND EXCLUDED.frota IS NOT NULL)
   OR (t.equipamento_serial IS NULL AND EXCLUDED.equipamento_serial IS NOT NULL)
   OR (EXCLUDED.last_position_ts = t.last_position_ts
       AND (coalesce(EXCLUDED.descricao, t.descricao), coalesce(EXCLUDED.frota, t.frota),
            coalesce(EXCLUDED.equipamento_serial, t.equipamento_serial))
           IS DISTINCT FROM (t.descricao, t.frota, t.equipamento_serial))
RETURNING (updated_at IS NULL) AS inserted

-- name: known_plates
SELECT placa FROM terminals ORDER BY placa

-- name: last_valid_positions
-- The newest valid stored point per plate, for jump detection across answers.
SELECT DISTINCT ON (placa) placa, data_transmissao, latitude, longitude
  FROM positions
 WHERE placa = ANY(%(plates)s) AND quality = 'valid' AND data_transmissao <= %(before)s
 ORDER BY placa, data_transmissao DESC

-- name: insert_rejects
INSERT INTO position_rejects (raw_hash, reason, message, endpoint, placa, raw)
SELECT * FROM unnest(%(raw_hash)s::text[], %(reason)s::text[], %(message)s::text[],
                     %(endpoint)s::text[], %(placa)s::text[], %(raw)s::text[]::jsonb[])
ON CONFLICT (raw_hash, reason) DO NOTHING

-- name: upsert_trips
-- The provider's trip summaries; a re-run keeps one copy and changes nothing.
INSERT INTO trips AS t (placa, data_inicio_conducao, data_fim_conducao, rota_date, cliente,
    cliente_fantasia, descricao, frota, latitude_inicio_conducao, longitude_inicio_conducao,
    latitude_fim_conducao, longitude_fim_conducao, localizacao_inicio_conducao,
    localizacao_fim_conducao, odometro_inicio_conducao, odometro_fim_conducao,
    duracao_conducao, distancia_conducao, condutor_nome, condutor_identificacao, raw)
VALUES (%(placa)s, %(data_inicio_conducao)s, %(data_fim_conducao)s, %(rota_date)s, %(cliente)s,
    %(cliente_fantasia)s, %(descricao)s, %(frota)s, %(latitude_inicio_conducao)s,
    %(longitude_inicio_conducao)s, %(latitude_fim_conducao)s, %(longitude_fim_conducao)s,
    %(localizacao_inicio_conducao)s, %(localizacao_fim_conducao)s, %(odometro_inicio_conducao)s,
    %(odometro_fim_conducao)s, %(duracao_conducao)s, %(distancia_conducao)s, %(condutor_nome)s,
    %(condutor_identificacao)s, %(raw)s::jsonb)
ON CONFLICT (placa, data_inicio_conducao) DO UPDATE SET
    data_fim_conducao = coalesce(EXCLUDED.data_fim_conducao, t.data_fim_conducao),
    localizacao_inicio_conducao = coalesce(t.localizacao_inicio_conducao, EXCLUDED.localizacao_inicio_conducao),
    localizacao_fim_conducao = coalesce(t.localizacao_fim_conducao, EXCLUDED.localizacao_fim_conducao),
    distancia_conducao = coalesce(EXCLUDED.distancia_conducao, t.distancia_conducao),
    duracao_conducao = coalesce(EXCLUDED.duracao_conducao, t.duracao_conducao),
    odometro_fim_conducao = coalesce(EXCLUDED.odometro_fim_conducao, t.odometro_fim_conducao),
    condutor_nome = coalesce(t.condutor_nome, EXCLUDED.condutor_nome),
    condutor_identificacao = coalesce(t.condutor_identificacao, EXCLUDED.condutor_identificacao),
    raw = EXCLUDED.raw
WHERE (EXCLUDED.data_fim_conducao, EXCLUDED.distancia_conducao, EXCLUDED.duracao_conducao,
       EXCLUDED.odometro_fim_conducao)
      IS DISTINCT FROM (t.data_fim_conducao, t.distancia_conducao, t.duracao_conducao,
       t.odometro_fim_conducao)
   OR (t.localizacao_inicio_conducao IS NULL AND EXCLUDED.localizacao_inicio_conducao IS NOT NULL)
   OR (t.localizacao_fim_conducao IS NULL AND EXCLUDED.localizacao_fim_conducao IS NOT NULL)
   OR (t.condutor_nome IS NULL AND EXCLUDED.condutor_nome IS NOT NULL)
RETURNING (xmax = 0) AS inserted

-- ===== routes =====
-- Route, trip and stop reconstruction (etrack/routes_store.py).

-- name: routes_plates_with_positions
-- Plates holding any position in [lo, hi): one index probe per known plate
-- (every ingest upserts the plate's terminals row) instead of a scan of the
-- month partitions.
SELECT t.placa
  FROM terminals t
 WHERE EXISTS (SELECT 1 FROM positions p
                WHERE p.placa = t.placa
                  AND p.data_transmissao >= %(lo)s AND p.data_transmissao < %(hi)s)
 ORDER BY t.placa

-- name: routes_fingerprints
-- Per plate and local day (bounds given, computed by the caller in its time
-- zone): rows in the day (all, and not valid), and a fingerprint of everything
-- its route depends on: the positions of the day widened by the data gap on
-- both sides (the midnight cut uses the neighbours), the provider's trips of
-- that day (for the comparison), and the parameters. `unchanged` compares it
-- with the stored route's. One index range scan per plate-day: a join of the
-- whole batch plans a hash join that re-evaluates the bounds per row pair.
WITH wanted AS MATERIALIZED (
    SELECT pl.placa, d.day, d.day_start, d.day_end
      FROM unnest(%(plates)s::text[]) AS pl(placa)
     CROSS JOIN unnest(%(days)s::date[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
           AS d(day, day_start, day_end)
)
SELECT w.placa, w.day, s.day_rows, s.invalid_rows, f.fingerprint,
       r.source_fingerprint IS NOT DISTINCT FROM f.fingerprint AS unchanged
  FROM wanted w
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE p.data_transmissao >= w.day_start
                                 AND p.data_transmissao < w.day_end) AS day_rows,
              count(*) FILTER (WHERE p.data_transmissao >= w.day_start
                                 AND p.data_transmissao < w.day_end
                                 AND p.quality <> 'valid') AS invalid_rows,
              count(*) AS window_rows,
              extract(epoch FROM max(coalesce(p.updated_at, p.ingested_at))) AS changed,
              extract(epoch FROM max(p.data_transmissao)) AS newest
         FROM positions p
        WHERE p.placa = w.placa
          AND p.data_transmissao >= w.day_start - %(gap)s
          AND p.data_transmissao < w.day_end + %(gap)s) s
 CROSS JOIN LATERAL (
       SELECT concat_ws('|', s.window_rows, s.changed, s.newest, count(*),
                        sum(t.distancia_conducao), extract(epoch FROM max(t.data_fim_conducao)),
                        extract(epoch FROM max(t.ingested_at)), %(params_key)s::text) AS fingerprint
         FROM trips t
        WHERE t.placa = w.placa AND t.rota_date = w.day) f
  LEFT JOIN routes r ON r.placa = w.placa AND r.rota_date = w.day
 ORDER BY w.placa, w.day

-- name: routes_load_positions
-- Valid positions of some plates over a window: one row per plate, each
-- field an array in time order (time as POSIX seconds). Arrays arrive as
-- Python lists in one go: cheaper than a tuple per point turned into columns.
SELECT placa,
       array_agg(date_part('epoch', data_transmissao) ORDER BY data_transmissao),
       array_agg(latitude ORDER BY data_transmissao),
       array_agg(longitude ORDER BY data_transmissao),
       array_agg(velocidade ORDER BY data_transmissao),
       array_agg(ignicao ORDER BY data_transmissao),
       array_agg(coalesce(odometro, odometro_can) ORDER BY data_transmissao),
       array_agg(logradouro ORDER BY data_transmissao)
  FROM positions
 WHERE placa = ANY(%(plates)s::text[])
   AND data_transmissao >= %(lo)s AND data_transmissao < %(hi)s
   AND quality = 'valid' AND latitude IS NOT NULL AND longitude IS NOT NULL
 GROUP BY placa

-- name: routes_provider_trips
-- The provider's trips (resumoviagens) of some plates and days, to compare with ours.
SELECT placa, rota_date, data_inicio_conducao, data_fim_conducao, distancia_conducao
  FROM trips
 WHERE placa = ANY(%(plates)s::text[]) AND rota_date = ANY(%(days)s::date[])
 ORDER BY placa, rota_date, data_inicio_conducao

-- name: routes_lock_days
-- Serializes two runs storing the same plate-days (taken in key order, held
-- to the end of the transaction): the second then deletes what the first stored.
SELECT count(pg_advisory_xact_lock(hashtextextended('etrack.routes|' || k.placa || '|' || k.day, 0)))
  FROM (SELECT * FROM unnest(%(plates)s::text[], %(days)s::date[]) AS u(placa, day)
         ORDER BY 1, 2) k

-- name: routes_delete_days
-- The days about to be stored again; their trips and stops go with them (cascade).
DELETE FROM routes r
 USING unnest(%(plates)s::text[], %(days)s::date[]) AS k(placa, day)
 WHERE r.placa = k.placa AND r.rota_date = k.day

-- name: routes_copy_routes
COPY routes (placa, rota_date, points, geojson, simplified, start_ts, end_ts,
    point_count, invalid_count, distance_m, odometer_m, driving_s, idle_s, parked_s,
    max_speed_kmh, avg_speed_kmh, over_limit_s, trip_count, stop_count, provider_comparison,
    source_fingerprint, params)
FROM STDIN (FORMAT BINARY)

-- name: routes_copy_trips
COPY route_trips (placa, rota_date, seq, start_ts, end_ts, start_latitude, start_longitude,
    end_latitude, end_longitude, start_address, end_address, distance_m, duration_s,
    max_speed_kmh, avg_speed_kmh)
FROM STDIN (FORMAT BINARY)

-- name: routes_copy_stops
COPY route_stops (placa, rota_date, seq, start_ts, end_ts, latitude, longitude, address,
    duration_s, ignition_on_s)
FROM STDIN (FORMAT BINARY)

-- name: routes_fleet_day_summary
-- The fleet day summary (UI table, CSV export): every plate's days in
-- [first, last], or only `plates` when given.
SELECT placa, rota_date, descricao, frota, distance_km, odometer_km, driving_h, idle_h,
       parked_h, max_speed_kmh, avg_speed_kmh, over_limit_h, speed_limit_kmh, trip_count,
       stop_count, point_count, invalid_count, start_ts, end_ts, provider_trip_count,
       provider_agrees
  FROM route_day_summary
 WHERE rota_date >= %(first)s AND rota_date <= %(last)s
   AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))
 ORDER BY rota_date, placa

-- ===== web =====
-- The web UI and JSON API (etrack/web). Request text only ever reaches these
-- as bound parameters.

-- name: web_ping
SELECT 1

-- name: web_vehicles_latest
-- Every vehicle with its newest valid position (the fleet map). terminals
-- knows the newest timestamp; the position row is one index probe per plate,
-- bounded to a week so run-time partition pruning keeps it to one or two
-- month partitions.
SELECT t.placa, t.descricao, t.frota, t.last_position_ts,
       p.data_transmissao, p.latitude, p.longitude, p.velocidade, p.ignicao, p.logradouro
  FROM terminals t
  LEFT JOIN LATERAL (
        SELECT data_transmissao, latitude, longitude, velocidade, ignicao, logradouro
          FROM positions p
         WHERE p.placa = t.placa AND p.quality = 'valid'
           AND p.data_transmissao <= t.last_position_ts
           AND p.data_transmissao > t.last_position_ts - interval '7 days'
         ORDER BY p.data_transmissao DESC
         LIMIT 1) p ON true
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

-- name: web_day_summaries
-- Day summaries (route_day_summary) of a range, all plates or some.
SELECT placa, rota_date, descricao, frota, distance_km, odometer_km, driving_h, idle_h,
       parked_h, max_speed_kmh, avg_speed_kmh, over_limit_h, speed_limit_kmh, trip_count,
       stop_count, point_count, invalid_count, start_ts, end_ts, provider_trip_count,
       provider_agrees
  FROM route_day_summary
 WHERE rota_date >= %(first)s AND rota_date <= %(last)s
   AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))
 ORDER BY rota_date, placa
 LIMIT %(limit)s

-- name: web_fleet_report
-- The fleet report: one row per vehicle over [first, last], optionally one fleet.
SELECT placa, max(descricao) AS descricao, max(frota) AS frota, count(*) AS days,
       coalesce(sum(distance_km), 0) AS distance_km,
       coalesce(sum(driving_h), 0) AS driving_h,
       coalesce(sum(idle_h), 0) AS idle_h,
       coalesce(sum(parked_h), 0) AS parked_h,
       max(max_speed_kmh) AS max_speed_kmh,
       coalesce(sum(over_limit_h), 0) AS over_limit_h,
       coalesce(sum(trip_count), 0)::integer AS trip_count,
       max(speed_limit_kmh) AS speed_limit_kmh
  FROM route_day_summary
 WHERE rota_date >= %(first)s AND rota_date <= %(last)s
   AND (%(frota)s::text IS NULL OR frota = %(frota)s::text)
 GROUP BY placa
 ORDER BY placa

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

-- ===== jobs =====
-- The jobs layer (etrack/jobs/): run records, the daily run, backfill
-- partitions, the shared rate limiter. Procrastinate's tables live in the
-- same schema (procrastinate_jobs, procrastinate_workers).

-- name: job_queue_installed
-- Procrastinate's tables in the etrack schema itself (not one in public).
SELECT to_regclass(format('%I.procrastinate_jobs', current_schema())) IS NOT NULL

-- name: jobs_try_advisory_lock
SELECT pg_try_advisory_lock(%(lock_id)s)

-- name: jobs_advisory_lock
SELECT pg_advisory_lock(%(lock_id)s)

-- name: jobs_rate_reserve
-- Reserve the account's next request slot; returns the seconds to wait for
-- it. One statement, so the read and the write are atomic under the row
-- lock; the database clock, so machines' clocks never matter.
INSERT INTO rate_limits AS r (account, next_slot, interval_s)
VALUES (%(account)s, clock_timestamp() + make_interval(secs => %(interval)s), %(interval)s)
ON CONFLICT (account) DO UPDATE
   SET next_slot = greatest(r.next_slot, clock_timestamp()) + make_interval(secs => %(interval)s),
       interval_s = EXCLUDED.interval_s
RETURNING greatest(0, extract(epoch FROM r.next_slot - clock_timestamp())::float8 - %(interval)s)

-- name: jobs_rate_penalize
-- The provider said 429: nobody sends before `seconds` from now.
INSERT INTO rate_limits AS r (account, next_slot, interval_s)
VALUES (%(account)s, clock_timestamp() + make_interval(secs => %(seconds)s), %(interval)s)
ON CONFLICT (account) DO UPDATE
   SET next_slot = greatest(r.next_slot, clock_timestamp() + make_interval(secs => %(seconds)s))
RETURNING next_slot

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
INSERT INTO backfills (date_start, date_end, plates, with_trips)
VALUES (%(start)s, %(end)s, %(plates)s::text[], %(with_trips)s)
RETURNING id, date_start, date_end, plates, with_trips, created_at, finished_at, routes_summary,
          routes_job_id

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
-- A backfill's partitions with work left, and the state of their job:
-- 'stalled' when it is 'doing' for a worker that stopped beating.
SELECT p.placa, p.day, p.job_id, j.status::text AS job_status,
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
       will_retry = false, updated_at = now()
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

-- name: jobs_partition_done
UPDATE backfill_partitions SET state = 'done', error = NULL, will_retry = false, updated_at = now()
 WHERE placa = %(placa)s AND day = %(day)s AND job_id = %(job_id)s

-- name: jobs_partition_failed
-- Visible in `backfill status` while it lasts; will_retry says whether the
-- job will run again.
UPDATE backfill_partitions
   SET state = 'failed', error = %(error)s, will_retry = %(will_retry)s, updated_at = now()
 WHERE placa = %(placa)s AND day = %(day)s AND job_id = %(job_id)s

-- name: jobs_backfills_ready
-- Unfinished backfills (all, one by id, or those holding one partition)
-- whose partitions have all settled (done, or failed for good) and whose
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
                      AND NOT (p.state = 'done' OR (p.state = 'failed' AND NOT p.will_retry)))
 ORDER BY b.id

-- name: jobs_backfill_counts
SELECT count(*) AS total,
       count(*) FILTER (WHERE state = 'done') AS done,
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

-- ===== web (jobs page) =====

-- name: web_jobs_backfills_recent
-- The newest backfills (their progress is read through etrack.jobs.backfill.status).
SELECT id FROM backfills ORDER BY id DESC LIMIT %(limit)s

-- ===== retention =====
-- Retention (etrack/prune.py). Whole monthly partitions of positions go with
-- one DROP TABLE (no row-by-row delete, no bloat); only the default
-- partition and the small tables are deleted row by row. `{partition}` is
-- filled in with a psycopg.sql.Identifier taken from the catalog.

-- name: retention_try_lock
-- One prune at a time per schema (the worker's daily task and a command may meet).
SELECT pg_try_advisory_lock(hashtextextended('etrack.prune|' || current_schema(), 0))

-- name: retention_unlock
SELECT pg_advisory_unlock(hashtextextended('etrack.prune|' || current_schema(), 0))

-- name: retention_partitions
-- The partitions of positions: bounds (NULL for the default partition; read
-- back from the catalog's own text, which carries the UTC offset), the
-- planner's row estimate (-1: never analyzed), size on disk and comment
-- (where prune marks a month whose raw JSON it cleared).
SELECT n.nspname AS schema_name,
       c.relname AS name,
       b.bound = 'DEFAULT' AS is_default,
       (regexp_match(b.bound, 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[1]::timestamptz AS lower_bound,
       (regexp_match(b.bound, 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[2]::timestamptz AS upper_bound,
       c.reltuples::bigint AS estimated_rows,
       pg_total_relation_size(c.oid) AS bytes,
       obj_description(c.oid, 'pg_class') AS note
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
 WHERE i.inhparent = 'positions'::regclass
 ORDER BY 4 NULLS FIRST, 2

-- name: retention_lock_timeout
-- Dropping a partition takes a brief exclusive lock on positions: give up
-- after a while (and retry later) rather than queue every reader behind a
-- long query.
SELECT set_config('lock_timeout', %(timeout)s, true)

-- name: retention_count_partition
-- Rows of one partition before the cutoff, and how many still hold raw JSON.
SELECT count(*) AS rows, count(*) FILTER (WHERE raw IS NOT NULL) AS with_raw
  FROM {partition}
 WHERE data_transmissao < %(cutoff)s

-- name: retention_drop_partition
DROP TABLE IF EXISTS {partition}

-- name: retention_delete_partition_rows
-- Only for the default partition (rows far outside any month): small.
DELETE FROM {partition} WHERE data_transmissao < %(cutoff)s

-- name: retention_clear_partition_raw
-- Keeps the parsed columns; `raw IS NOT NULL` makes a second run a no-op.
UPDATE {partition} SET raw = NULL
 WHERE data_transmissao < %(cutoff)s AND raw IS NOT NULL

-- name: retention_mark_partition
-- Remembers that a whole month's raw JSON is gone, so later runs skip the
-- month instead of scanning it again every day.
COMMENT ON TABLE {partition} IS {note}

-- name: retention_count_rejects
SELECT count(*) AS rows, count(*) FILTER (WHERE raw IS NOT NULL) AS with_raw
  FROM position_rejects
 WHERE received_at < %(cutoff)s

-- name: retention_delete_rejects
DELETE FROM position_rejects WHERE received_at < %(cutoff)s

-- name: retention_clear_rejects_raw
UPDATE position_rejects SET raw = NULL WHERE received_at < %(cutoff)s AND raw IS NOT NULL

-- name: retention_count_routes
-- Per-day tables: a day goes when it ended before the cutoff's local date.
SELECT (SELECT count(*) FROM route_stops WHERE rota_date < %(day)s) AS route_stops,
       (SELECT count(*) FROM route_trips WHERE rota_date < %(day)s) AS route_trips,
       (SELECT count(*) FROM routes WHERE rota_date < %(day)s) AS routes,
       (SELECT count(*) FROM trips WHERE rota_date < %(day)s) AS trips

-- name: retention_delete_route_stops
DELETE FROM route_stops WHERE rota_date < %(day)s

-- name: retention_delete_route_trips
DELETE FROM route_trips WHERE rota_date < %(day)s

-- name: retention_delete_routes
DELETE FROM routes WHERE rota_date < %(day)s

-- name: retention_delete_trips
-- The provider's trip summaries (resumoviagens) of those days.
DELETE FROM trips WHERE rota_date < %(day)s

-- name: retention_compact_partition
-- After its raw JSON is cleared a past month takes no new rows, so the space
-- would never be reused: rewrite it (exclusive lock on that month only).
VACUUM (FULL, ANALYZE) {partition}

-- name: retention_session_lock_timeout
-- VACUUM runs outside a transaction, where set_config(..., true) does not last.
SELECT set_config('lock_timeout', %(timeout)s, false)

-- name: retention_reset_lock_timeout
RESET lock_timeout

-- name: retention_partition_bytes
SELECT pg_total_relation_size(format('%%I.%%I', %(schema)s::text, %(name)s::text)::regclass)

-- ===================================================================== accounts

-- name: accounts_claim_plates
-- The account `account` lists these plates among its vehicles: plates seen
-- by nobody yet become its own; a plate another account had is moved, and
-- the move is logged. Plates not in terminals yet are left to ingest.
WITH previous AS (
    SELECT placa, account FROM terminals
    WHERE placa = ANY(%(plates)s::text[]) AND account IS DISTINCT FROM %(account)s
    FOR UPDATE
), claimed AS (
    UPDATE terminals t SET account = %(account)s
    FROM previous p WHERE t.placa = p.placa
    RETURNING t.placa, p.account AS from_account
)
INSERT INTO terminal_moves (placa, from_account, to_account)
SELECT placa, from_account, %(account)s FROM claimed WHERE from_account IS NOT NULL

-- name: accounts_adopt_plates
-- Plates fetched through `account` (history, one plate) that no account
-- has listed yet; a plate another account lists is left to that account.
UPDATE terminals SET account = %(account)s
WHERE placa = ANY(%(plates)s::text[]) AND account IS NULL

-- name: accounts_plates
-- The plates of one account; plates stored before accounts existed
-- (account NULL) belong to the first account, `fallback`.
SELECT placa FROM terminals
WHERE COALESCE(account, %(fallback)s) = ANY(%(accounts)s::text[])
ORDER BY placa

-- name: accounts_plate_owners
SELECT placa, account FROM terminals WHERE placa = ANY(%(plates)s::text[])

-- name: accounts_mark_ok
INSERT INTO accounts (name, state, fingerprint, last_success_at, last_check_at)
VALUES (%(account)s, 'ok', %(fingerprint)s, now(), now())
ON CONFLICT (name) DO UPDATE SET
    state = 'ok', reason = NULL, failing_since = NULL, retry_at = NULL,
    fingerprint = EXCLUDED.fingerprint, last_success_at = now(), last_check_at = now()

-- name: accounts_mark_failing
-- Credentials refused: left alone for `retry_s` seconds (or until its
-- fingerprint changes); failing_since keeps the first failure.
INSERT INTO accounts (name, state, reason, fingerprint, failing_since, retry_at, last_check_at)
VALUES (%(account)s, 'failing', %(reason)s, %(fingerprint)s, now(),
        now() + make_interval(secs => %(retry_s)s), now())
ON CONFLICT (name) DO UPDATE SET
    state = 'failing', reason = EXCLUDED.reason, fingerprint = EXCLUDED.fingerprint,
    failing_since = COALESCE(accounts.failing_since, now()),
    retry_at = EXCLUDED.retry_at, last_check_at = now()

-- name: accounts_states
-- Every account with a recorded state, its fleet size and whether it is due
-- for a try (ok, or failing and past retry_at).
SELECT a.name, a.state, a.reason, a.fingerprint, a.failing_since, a.retry_at,
       a.last_success_at, a.last_check_at, (a.retry_at IS NULL OR a.retry_at <= now()) AS due,
       (SELECT count(*) FROM terminals t
        WHERE COALESCE(t.account, %(fallback)s) = a.name) AS vehicles
FROM accounts a
ORDER BY a.name

-- name: accounts_fleet_sizes
SELECT COALESCE(account, %(fallback)s) AS name, count(*) AS vehicles
FROM terminals GROUP BY 1

-- name: accounts_moves
SELECT placa, from_account, to_account, moved_at
FROM terminal_moves ORDER BY moved_at DESC, id DESC LIMIT %(limit)s
