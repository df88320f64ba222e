-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- Storing what the collector fetched (etrack/store/positions.py).

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
-- Each plate's newest valid row among those written goes on to
-- latest_positions in the same statement (and so the same transaction).
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
    -- whose updated_at is still NULL. The stored values and quality come
    -- back (an update keeps the stored row's quality, fills in its NULLs).
    RETURNING (updated_at IS NULL) AS inserted, placa, data_transmissao, data_gravacao,
              latitude, longitude, velocidade, ignicao, odometro, odometro_can, horimetro,
              bateria, logradouro, quality
), newest AS (
    SELECT DISTINCT ON (placa) *
      FROM upserted
     WHERE quality = 'valid'
     ORDER BY placa, data_transmissao DESC
), latest AS (
    -- Plates in order, as every ingest writes them: two concurrent batches
    -- lock their rows in the same order and cannot deadlock here.
    INSERT INTO latest_positions AS l (placa, data_transmissao, data_gravacao, latitude,
        longitude, velocidade, ignicao, odometro, odometro_can, horimetro, bateria, logradouro)
    SELECT placa, data_transmissao, data_gravacao, latitude, longitude, velocidade, ignicao,
           odometro, odometro_can, horimetro, bateria, logradouro
      FROM newest
     ORDER BY placa
    ON CONFLICT (placa) DO UPDATE SET
        data_transmissao = EXCLUDED.data_transmissao,
        data_gravacao    = EXCLUDED.data_gravacao,
        latitude         = EXCLUDED.latitude,
        longitude        = EXCLUDED.longitude,
        velocidade       = EXCLUDED.velocidade,
        ignicao          = EXCLUDED.ignicao,
        odometro         = EXCLUDED.odometro,
        odometro_can     = EXCLUDED.odometro_can,
        horimetro        = EXCLUDED.horimetro,
        bateria          = EXCLUDED.bateria,
        logradouro       = EXCLUDED.logradouro,
        updated_at       = now()
    -- Only forward: an older batch never moves it back. The same timestamp
    -- is the same stored row, filled in by this batch.
    WHERE EXCLUDED.data_transmissao > l.data_transmissao
       OR (EXCLUDED.data_transmissao = l.data_transmissao
           AND (EXCLUDED.data_gravacao, EXCLUDED.latitude, EXCLUDED.longitude,
                EXCLUDED.velocidade, EXCLUDED.ignicao, EXCLUDED.odometro,
                EXCLUDED.odometro_can, EXCLUDED.horimetro, EXCLUDED.bateria,
                EXCLUDED.logradouro)
               IS DISTINCT FROM (l.data_gravacao, l.latitude, l.longitude, l.velocidade,
                l.ignicao, l.odometro, l.odometro_can, l.horimetro, l.bateria, l.logradouro))
)
-- A data-modifying WITH runs whether or not the final SELECT reads it.
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
