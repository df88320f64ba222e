-- 0003: the jobs layer: a record of every run, the days the daily run
-- completed, backfills and their (plate, day) partitions, and the shared
-- per-account request pacing. Procrastinate's own tables are installed by
-- `etrack db upgrade` after the migrations (etrack.migrations).

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
