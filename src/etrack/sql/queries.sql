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
