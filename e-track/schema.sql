-- etrack: the full schema, readable in one file.
--
-- The seed documents applying this file with psql:
--   psql -h 127.0.0.1 -U sync_user -d sync_apis -f e-track/schema.sql
-- It creates schema e_track (the default ETRAC_SCHEMA) and records the
-- migrations it contains, so `etrack db upgrade` afterwards is a no-op.
-- The source of truth is src/etrack/sql/migrations/; a test checks that this
-- file and the migrations produce the same schema.

CREATE SCHEMA IF NOT EXISTS e_track;
SET search_path TO e_track, public;

BEGIN;

CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);


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
    -- Mode and thresholds the stored trips, stops and over-limit time came
    -- from, so a reader knows what "over the limit" meant for that day.
    params           jsonb,
    PRIMARY KEY (placa, rota_date)
);

-- Store a day's points and line uncompressed (out of line): recomputing a
-- fleet's days is bound by PostgreSQL compressing these with pglz (the only
-- method every build has), about a third of the storing time, and the UI
-- reads them back without decompressing. They stay small beside the day's
-- positions.
ALTER TABLE routes ALTER COLUMN points SET STORAGE EXTERNAL,
                   ALTER COLUMN geojson SET STORAGE EXTERNAL;

-- What the JSON columns hold, for whoever reads them with psql.
COMMENT ON COLUMN routes.points IS
    'Valid points of the local day in time order: [epoch_seconds, latitude, longitude, speed_kmh, ignition]';
COMMENT ON COLUMN routes.geojson IS
    'GeoJSON LineString (lon, lat) through the points, cut at local midnight when a trip crosses it; a Point for a single point';
COMMENT ON COLUMN routes.simplified IS
    'The LineString simplified with Douglas-Peucker (params.simplify_tolerance_m) for fleet-zoom maps';

-- The fleet views read one day (or a few) for every plate; the primary key
-- leads with placa.
CREATE INDEX routes_day_idx ON routes (rota_date);

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

-- One row per plate and local day, in the units people read.
CREATE VIEW route_day_summary AS
SELECT r.placa,
       r.rota_date,
       t.descricao,
       t.frota,
       round((r.distance_m / 1000.0)::numeric, 3) AS distance_km,
       round((r.odometer_m / 1000.0)::numeric, 3) AS odometer_km,
       round(r.driving_s / 3600.0, 3) AS driving_h,
       round(r.idle_s / 3600.0, 3) AS idle_h,
       round(r.parked_s / 3600.0, 3) AS parked_h,
       round(r.max_speed_kmh::numeric, 1) AS max_speed_kmh,
       round(r.avg_speed_kmh::numeric, 1) AS avg_speed_kmh,
       round(r.over_limit_s / 3600.0, 3) AS over_limit_h,
       (r.params ->> 'speed_limit_kmh')::double precision AS speed_limit_kmh,
       r.trip_count,
       r.stop_count,
       r.point_count,
       r.invalid_count,
       r.start_ts,
       r.end_ts,
       (r.provider_comparison ->> 'provider_trips')::integer AS provider_trip_count,
       (r.provider_comparison ->> 'agrees')::boolean AS provider_agrees,
       r.computed_at
  FROM routes r
  LEFT JOIN terminals t ON t.placa = r.placa;

-- ===== jobs (0003) =====
-- Every run of every job (worker jobs and command-line runs alike), for
-- `etrack jobs`. A run whose process died stays 'running' here; readers tell
-- it apart through its Procrastinate job or its pid (etrack.jobs.runs).
CREATE TABLE job_runs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    args         jsonb NOT NULL DEFAULT '{}'::jsonb,
    job_id       bigint,
    host         text,
    pid          integer,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'interrupted')),
    counts       jsonb,
    summary      text,
    error        text
);
CREATE INDEX job_runs_started_idx ON job_runs (started_at DESC);
CREATE INDEX job_runs_failed_idx ON job_runs (started_at DESC) WHERE status = 'failed';
CREATE INDEX job_runs_job_idx ON job_runs (job_id) WHERE job_id IS NOT NULL;

-- Local days whose daily run completed for the whole fleet: a worker starting
-- after a missed 01:00 defers the days missing here, so none is skipped.
CREATE TABLE daily_runs (
    day           date PRIMARY KEY,
    completed_at  timestamptz NOT NULL DEFAULT now(),
    plates        integer NOT NULL,
    summary       text
);

-- One row per `etrack backfill` request. `plates` is the resolved list, so a
-- backfill's partitions are the plates x days of its range.
CREATE TABLE backfills (
    id             bigserial PRIMARY KEY,
    date_start     date NOT NULL,
    date_end       date NOT NULL,
    plates         text[] NOT NULL,
    with_trips     boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    enqueued_at    timestamptz,
    routes_job_id  bigint,
    finished_at    timestamptz,
    routes_summary text,
    CHECK (date_end >= date_start)
);

-- The unit of backfill work, keyed by plate and local day only, so a later
-- backfill over an overlapping range skips the days already fetched.
-- history_at / trips_at say what is stored; `state` is what people read.
CREATE TABLE backfill_partitions (
    placa          text NOT NULL,
    day            date NOT NULL,
    state          text NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts       integer NOT NULL DEFAULT 0,
    rows_fetched   integer NOT NULL DEFAULT 0,
    rows_inserted  integer NOT NULL DEFAULT 0,
    trips_fetched  integer,
    history_at     timestamptz,
    trips_at       timestamptz,
    -- Some backfill asked for this day's trips too (--with-trips).
    want_trips     boolean NOT NULL DEFAULT false,
    error          text,
    will_retry     boolean NOT NULL DEFAULT false,
    job_id         bigint,
    backfill_id    bigint REFERENCES backfills (id) ON DELETE SET NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (placa, day)
);
CREATE INDEX backfill_partitions_open_idx ON backfill_partitions (state) WHERE state <> 'done';

-- Request pacing per eTrac account, shared by every process on this
-- database: each request reserves the next free slot with one UPDATE.
CREATE TABLE rate_limits (
    account     text PRIMARY KEY,
    next_slot   timestamptz NOT NULL,
    interval_s  double precision NOT NULL
);

-- ===== accounts (0004) =====

-- The account whose fetch of latest positions last listed the plate; NULL
-- for plates stored before accounts existed (they belong to the first one).
ALTER TABLE terminals ADD COLUMN account text;
CREATE INDEX terminals_account_idx ON terminals (account);

-- A plate seen by another account than before: history stays where it is,
-- new data comes from the new account.
CREATE TABLE terminal_moves (
    id            bigserial PRIMARY KEY,
    placa         text NOT NULL,
    from_account  text NOT NULL,
    to_account    text NOT NULL,
    moved_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX terminal_moves_placa_idx ON terminal_moves (placa, moved_at DESC);

-- Health of each account, shared by every worker: an account whose
-- credentials were refused is 'failing' and left alone until retry_at, or
-- until its credentials change (fingerprint: a digest, never the key).
CREATE TABLE accounts (
    name             text PRIMARY KEY,
    state            text NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'failing')),
    reason           text,
    fingerprint      text,
    failing_since    timestamptz,
    retry_at         timestamptz,
    last_success_at  timestamptz,
    last_check_at    timestamptz
);

INSERT INTO schema_migrations (version, name) VALUES
    (1, 'initial'),
    (2, 'routes'),
    (3, 'jobs'),
    (4, 'accounts')
ON CONFLICT (version) DO NOTHING;

COMMIT;
