-- 0014: drivers, how the provider names them, manual assignments, and the
-- driver of each detected trip (etrack/drivers/, docs/drivers.md).
--
-- A driver's id is the provider's condutor_identificacao when it sends one,
-- else the normalized condutor_nome (etrack.drivers.identity.driver_key).
-- `document` is a CPF (11 digits, check digits valid) or a registration.
CREATE TABLE drivers (
    id          text PRIMARY KEY CHECK (id <> '' AND length(id) <= 200),
    name        text NOT NULL CHECK (name <> ''),
    document    text,
    frota       text,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- How the provider names a driver in `trips`: 'id:' || condutor_identificacao,
-- or 'name:' || condutor_nome (trimmed) when it sends no identification. A
-- merge points the aliases of one driver at another.
CREATE TABLE driver_aliases (
    alias      text PRIMARY KEY,
    driver_id  text NOT NULL REFERENCES drivers (id) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX driver_aliases_driver_idx ON driver_aliases (driver_id);

-- A driver put on a vehicle for a period by hand: fills the trips the
-- provider gives no driver for.
CREATE TABLE driver_assignments (
    id          bigserial PRIMARY KEY,
    driver_id   text NOT NULL REFERENCES drivers (id) ON DELETE CASCADE ON UPDATE CASCADE,
    placa       text NOT NULL,
    from_ts     timestamptz NOT NULL,
    to_ts       timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (to_ts > from_ts),
    UNIQUE (placa, from_ts)
);
CREATE INDEX driver_assignments_placa_idx ON driver_assignments (placa, from_ts, to_ts);

-- The driver of each detected trip, and where it came from. route_trips is
-- rewritten by every routes computation; the attribution is a function of
-- the provider's trips and the assignments, recomputed with it.
ALTER TABLE route_trips
    -- Time in motion (etrack.trips.detect.moving_seconds): a driver's driving
    -- time; null in trips computed before this migration (their duration serves).
    ADD COLUMN moving_s integer,
    ADD COLUMN driver_id text,
    ADD COLUMN driver_source text CHECK (driver_source IN ('provider', 'assignment'));
-- A driver's trips in time order (the driver page, a merge); every trip of
-- a range of moments (the working days of everyone, the trips nobody drove).
CREATE INDEX route_trips_driver_idx ON route_trips (driver_id, start_ts) WHERE driver_id IS NOT NULL;
CREATE INDEX route_trips_start_idx ON route_trips (start_ts);
