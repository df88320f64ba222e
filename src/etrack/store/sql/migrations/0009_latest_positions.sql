-- 0009: latest_positions, one row per vehicle: its newest valid position.
--
-- The fleet map and /api/vehicles read it instead of probing positions once
-- per plate (an index probe per plate and month partition, and a plan that
-- JIT-compiled on a new partition without statistics): the fleet snapshot
-- is one small table joined to terminals, O(fleet) whatever the history.
-- The ingest upserts it in the statement that stores the positions (see
-- upsert_positions_from_staging), so it is exactly as current as positions;
-- a row only moves to a newer position, so an out-of-order batch (a
-- backfill of last month) never moves it back.
--
-- No foreign key to terminals: the ingest writes positions (and this table)
-- before terminals, in the same transaction.
-- fillfactor 50: every ingest of a vehicle updates its row and only the
-- primary key is indexed, so the free space keeps those updates HOT (no
-- index write, no bloat of the index).
CREATE TABLE latest_positions (
    placa               text PRIMARY KEY,
    data_transmissao    timestamptz NOT NULL,
    data_gravacao       timestamptz,
    latitude            double precision,
    longitude           double precision,
    velocidade          double precision,
    ignicao             boolean,
    odometro            double precision,
    odometro_can        double precision,
    horimetro           double precision,
    bateria             double precision,
    logradouro          text,
    updated_at          timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);

-- Filled from what positions already holds. Its plates come from a skip
-- scan of the primary key (one index descent per plate and partition, not a
-- read of every row), then each plate's newest valid row is one backward
-- index scan from its end.
WITH RECURSIVE plates AS (
    SELECT min(placa) AS placa FROM positions
    UNION ALL
    SELECT (SELECT min(p.placa) FROM positions p WHERE p.placa > plates.placa)
      FROM plates
     WHERE plates.placa IS NOT NULL
)
INSERT INTO latest_positions (placa, data_transmissao, data_gravacao, latitude, longitude,
    velocidade, ignicao, odometro, odometro_can, horimetro, bateria, logradouro)
SELECT v.placa, v.data_transmissao, v.data_gravacao, v.latitude, v.longitude, v.velocidade,
       v.ignicao, v.odometro, v.odometro_can, v.horimetro, v.bateria, v.logradouro
  FROM plates
 CROSS JOIN LATERAL (
        SELECT p.placa, p.data_transmissao, p.data_gravacao, p.latitude, p.longitude,
               p.velocidade, p.ignicao, p.odometro, p.odometro_can, p.horimetro, p.bateria,
               p.logradouro
          FROM positions p
         WHERE p.placa = plates.placa AND p.quality = 'valid'
         ORDER BY p.data_transmissao DESC
         LIMIT 1) v
 WHERE plates.placa IS NOT NULL;
