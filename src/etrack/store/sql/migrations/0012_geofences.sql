-- 0012: geofences (customer sites and areas) and the visits vehicles paid
-- them (etrack/geofences/, docs/geofences.md).
--
-- A fence is a GeoJSON geometry in longitude/latitude: a Polygon or
-- MultiPolygon, the centre Point of a circle, the LineString of a corridor;
-- radius_m is a circle's radius or a corridor's half-width. Its name is the
-- key users import, edit and delete it by.
CREATE TABLE geofences (
    name             text PRIMARY KEY CHECK (name <> '' AND length(name) <= 200),
    kind             text NOT NULL CHECK (kind IN ('polygon', 'circle', 'corridor')),
    geometry         jsonb NOT NULL,
    radius_m         double precision CHECK (radius_m > 0),
    fence_group      text,
    speed_limit_kmh  double precision CHECK (speed_limit_kmh > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'polygon') = (radius_m IS NULL))
);

-- One row per visit: `id` is uuid5 of "placa|fence|arrive_ts"
-- (etrack.geofences.compute.visit_id), so recomputing upserts in place.
-- depart_ts is NULL while the vehicle is still inside where its data ends;
-- dwell_s is then the time seen inside so far. Deleting a fence deletes its
-- visits; renaming one follows.
CREATE TABLE geofence_visits (
    id           uuid PRIMARY KEY,
    placa        text NOT NULL,
    fence        text NOT NULL REFERENCES geofences (name) ON DELETE CASCADE ON UPDATE CASCADE,
    arrive_ts    timestamptz NOT NULL,
    depart_ts    timestamptz,
    dwell_s      double precision NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (placa, fence, arrive_ts),
    CHECK (depart_ts IS NULL OR depart_ts >= arrive_ts)
);

-- The visits of a range of days (the report, the API, a recompute's delete).
CREATE INDEX geofence_visits_arrive_idx ON geofence_visits (arrive_ts, placa);
-- A fence's visits (its report, its re-application).
CREATE INDEX geofence_visits_fence_idx ON geofence_visits (fence, arrive_ts);

-- Fence events (geofence_enter, geofence_exit) of two fences entered at one
-- position are two events: the fence (in `rule`, 'fence:NAME') joins the key.
ALTER TABLE events DROP CONSTRAINT events_placa_kind_start_ts_key;
ALTER TABLE events ADD CONSTRAINT events_placa_kind_start_ts_rule_key
    UNIQUE (placa, kind, start_ts, rule);
