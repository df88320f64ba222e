-- 0001: the seed's tables (terminals, positions, trips, routes) done properly.
-- Runs with search_path set to the etrack schema (ETRAC_SCHEMA), so names are
-- unqualified here.

CREATE TABLE terminals (
    placa               text PRIMARY KEY CHECK (placa ~ '^[A-Z]{3}[0-9][A-Z0-9][0-9]{2}$'),
    placa_raw           text,
    descricao           text,
    frota               text,
    equipamento_serial  text,
    first_seen          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz,
    -- The newest position we hold for the plate: fetch-latest compares a new
    -- point with it to catch GPS jumps across answers.
    last_position_ts    timestamptz,
    last_latitude       double precision,
    last_longitude      double precision,
    raw                 jsonb
);

-- Natural key (placa, data_transmissao); monthly range partitions on the
-- timestamp. Every unique key includes placa so the table can later be
-- distributed by placa (Citus) without changing a key.
CREATE TABLE positions (
    placa               text NOT NULL,
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
    quality             text NOT NULL DEFAULT 'valid',
    raw                 jsonb,
    ingested_at         timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz,
    PRIMARY KEY (placa, data_transmissao)
) PARTITION BY RANGE (data_transmissao);

-- Rows far outside any month we created (a tracker with a broken clock) land
-- here instead of failing their batch.
CREATE TABLE positions_default PARTITION OF positions DEFAULT;

CREATE INDEX positions_quality_idx ON positions (quality) WHERE quality <> 'valid';

-- Creates the month partition holding `ts`, moving any rows of that month
-- out of the default partition first (PostgreSQL refuses to create the
-- partition while the default one holds rows of its range).
CREATE FUNCTION ensure_positions_partition(ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamptz := date_trunc('month', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    month_end   timestamptz := month_start + interval '1 month';
    part_name   text := 'positions_y' || to_char(month_start AT TIME ZONE 'UTC', 'YYYY"m"MM');
    parent_schema text;
    moved       bigint;
BEGIN
    SELECT n.nspname INTO parent_schema
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = 'positions'::regclass;
    IF to_regclass(format('%I.%I', parent_schema, part_name)) IS NOT NULL THEN
        RETURN part_name;
    END IF;
    -- Serialize creators: two ingests touching a new month at once.
    PERFORM pg_advisory_xact_lock(hashtext(parent_schema || '.positions_partitions'));
    IF to_regclass(format('%I.%I', parent_schema, part_name)) IS NOT NULL THEN
        RETURN part_name;
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS _etrack_moved_positions
        (LIKE positions INCLUDING DEFAULTS) ON COMMIT DROP;
    EXECUTE format(
        'WITH gone AS (DELETE FROM %I.positions_default
                        WHERE data_transmissao >= $1 AND data_transmissao < $2 RETURNING *)
         INSERT INTO _etrack_moved_positions SELECT * FROM gone', parent_schema)
        USING month_start, month_end;
    GET DIAGNOSTICS moved = ROW_COUNT;
    BEGIN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.positions FOR VALUES FROM (%L) TO (%L)',
                       parent_schema, part_name, parent_schema, month_start, month_end);
    EXCEPTION WHEN duplicate_table THEN
        -- Another session created it between our check and our lock (the
        -- catalog snapshot of the re-check can be stale): it exists, fine.
        NULL;
    END;
    IF moved > 0 THEN
        EXECUTE format('INSERT INTO %I.positions SELECT * FROM _etrack_moved_positions', parent_schema);
    END IF;
    TRUNCATE _etrack_moved_positions;
    RETURN part_name;
END;
$$;

-- Rows the API sent that could not be parsed at all (no plate, no
-- timestamp...): kept with the reason, never dropped. raw_hash makes a
-- re-run idempotent.
CREATE TABLE position_rejects (
    id           bigserial PRIMARY KEY,
    raw_hash     text NOT NULL,
    reason       text NOT NULL,
    message      text,
    endpoint     text,
    placa        text,
    raw          jsonb,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (raw_hash, reason)
);

-- The provider's own trip summaries (/resumoviagens), field names as the API's.
CREATE TABLE trips (
    placa                        text NOT NULL,
    data_inicio_conducao         timestamptz NOT NULL,
    data_fim_conducao            timestamptz,
    rota_date                    date NOT NULL,
    cliente                      text,
    cliente_fantasia             text,
    descricao                    text,
    frota                        text,
    latitude_inicio_conducao     double precision,
    longitude_inicio_conducao    double precision,
    latitude_fim_conducao        double precision,
    longitude_fim_conducao       double precision,
    localizacao_inicio_conducao  text,
    localizacao_fim_conducao     text,
    odometro_inicio_conducao     double precision,
    odometro_fim_conducao        double precision,
    duracao_conducao             interval,
    distancia_conducao           double precision,
    condutor_nome                text,
    condutor_identificacao       text,
    raw                          jsonb,
    ingested_at                  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (placa, data_inicio_conducao)
);
CREATE INDEX trips_day_idx ON trips (placa, rota_date);

-- One row per plate and local day: the seed's table, with what fleet users
-- otherwise compute by hand.
CREATE TABLE routes (
    placa            text NOT NULL,
    rota_date        date NOT NULL,
    points           jsonb NOT NULL DEFAULT '[]'::jsonb,
    geojson          jsonb,
    simplified       jsonb,
    start_ts         timestamptz,
    end_ts           timestamptz,
    point_count      integer NOT NULL DEFAULT 0,
    invalid_count    integer NOT NULL DEFAULT 0,
    distance_m       double precision NOT NULL DEFAULT 0,
    odometer_m       double precision,
    driving_s        integer NOT NULL DEFAULT 0,
    idle_s           integer NOT NULL DEFAULT 0,
    parked_s         integer NOT NULL DEFAULT 0,
    max_speed_kmh    double precision,
    avg_speed_kmh    double precision,
    over_limit_s     integer NOT NULL DEFAULT 0,
    trip_count       integer NOT NULL DEFAULT 0,
    stop_count       integer NOT NULL DEFAULT 0,
    provider_comparison jsonb,
    -- Fingerprint of the positions the route was computed from: an unchanged
    -- day is skipped cheaply, a day a late backfill touched is recomputed.
    source_fingerprint text,
    computed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (placa, rota_date)
);

CREATE TABLE route_trips (
    placa          text NOT NULL,
    rota_date      date NOT NULL,
    seq            integer NOT NULL,
    start_ts       timestamptz NOT NULL,
    end_ts         timestamptz NOT NULL,
    start_latitude double precision,
    start_longitude double precision,
    end_latitude   double precision,
    end_longitude  double precision,
    start_address  text,
    end_address    text,
    distance_m     double precision NOT NULL,
    duration_s     integer NOT NULL,
    max_speed_kmh  double precision,
    avg_speed_kmh  double precision,
    PRIMARY KEY (placa, rota_date, seq),
    FOREIGN KEY (placa, rota_date) REFERENCES routes (placa, rota_date) ON DELETE CASCADE
);

CREATE TABLE route_stops (
    placa          text NOT NULL,
    rota_date      date NOT NULL,
    seq            integer NOT NULL,
    start_ts       timestamptz NOT NULL,
    end_ts         timestamptz NOT NULL,
    latitude       double precision,
    longitude      double precision,
    address        text,
    duration_s     integer NOT NULL,
    ignition_on_s  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (placa, rota_date, seq),
    FOREIGN KEY (placa, rota_date) REFERENCES routes (placa, rota_date) ON DELETE CASCADE
);
