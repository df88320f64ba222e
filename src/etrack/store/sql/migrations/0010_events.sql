-- 0010: events, one row per detected event (etrack/events/, docs/events.md).
--
-- `id` is uuid5 of "placa|kind|start_ts" (etrack.events.compute.event_id):
-- recomputing a range upserts by it, so an event is never stored twice and
-- a later position only moves its end. end_ts is NULL while an event is
-- still open (a vehicle offline now). `rule` says where the thresholds came
-- from: 'settings', 'fleet:NAME' or 'vehicle:PLACA'.
--
-- No foreign key to terminals: events follow positions, which have none either.
CREATE TABLE events (
    id            uuid PRIMARY KEY,
    placa         text NOT NULL,
    kind          text NOT NULL,
    start_ts      timestamptz NOT NULL,
    end_ts        timestamptz,
    duration_s    double precision,
    value         double precision,
    limit_value   double precision,
    latitude      double precision,
    longitude     double precision,
    logradouro    text,
    driver        text,
    rule          text,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    -- Also the index of a recompute's delete (plates x kinds x a start range).
    UNIQUE (placa, kind, start_ts)
);

-- Listing a range of days, in pages ordered by (start_ts, placa): a range
-- scan from the page's key whatever the page (the API's cursor).
CREATE INDEX events_start_idx ON events (start_ts, placa);

-- At most one open offline event per vehicle; detect_offline finds them by it.
CREATE UNIQUE INDEX events_open_offline_idx ON events (placa)
    WHERE kind = 'offline' AND end_ts IS NULL;
