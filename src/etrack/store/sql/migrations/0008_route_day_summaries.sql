-- 0008: day summaries stored as rows.
--
-- The route_day_summary view rounded every route's numbers through numeric
-- and read its jsonb on each query: a month's fleet report at 10,000
-- vehicles paid that for 300,000 rows every time. The route computation now
-- writes one row here per plate-day in the transaction that writes the day's
-- route (etrack.store.routes.store_days), with the very expressions the view
-- had, so the report sums small plain rows. The key leads with the day: the
-- report and /api/summaries read a range of days for the whole fleet.
CREATE TABLE route_day_summaries (
    placa               text NOT NULL,
    rota_date           date NOT NULL,
    distance_km         numeric NOT NULL,
    odometer_km         numeric,
    driving_h           numeric NOT NULL,
    idle_h              numeric NOT NULL,
    parked_h            numeric NOT NULL,
    max_speed_kmh       numeric,
    avg_speed_kmh       numeric,
    over_limit_h        numeric NOT NULL,
    speed_limit_kmh     double precision,
    trip_count          integer NOT NULL,
    stop_count          integer NOT NULL,
    point_count         integer NOT NULL,
    invalid_count       integer NOT NULL,
    start_ts            timestamptz,
    end_ts              timestamptz,
    provider_trip_count integer,
    provider_agrees     boolean,
    computed_at         timestamptz NOT NULL,
    PRIMARY KEY (rota_date, placa),
    -- Whatever deletes a route (recomputing its day, prune --routes) takes
    -- its summary with it: a summary never outlives its route.
    FOREIGN KEY (placa, rota_date) REFERENCES routes (placa, rota_date) ON DELETE CASCADE
);

COMMENT ON TABLE route_day_summaries IS
    'One row per plate and local day, written with the day''s route; read it through the route_day_summary view';

-- The routes stored before this version: an upgraded database loses nothing.
INSERT INTO route_day_summaries
SELECT r.placa,
       r.rota_date,
       round((r.distance_m / 1000.0)::numeric, 3),
       round((r.odometer_m / 1000.0)::numeric, 3),
       round(r.driving_s / 3600.0, 3),
       round(r.idle_s / 3600.0, 3),
       round(r.parked_s / 3600.0, 3),
       round(r.max_speed_kmh::numeric, 1),
       round(r.avg_speed_kmh::numeric, 1),
       round(r.over_limit_s / 3600.0, 3),
       (r.params ->> 'speed_limit_kmh')::double precision,
       r.trip_count,
       r.stop_count,
       r.point_count,
       r.invalid_count,
       r.start_ts,
       r.end_ts,
       (r.provider_comparison ->> 'provider_trips')::integer,
       (r.provider_comparison ->> 'agrees')::boolean,
       r.computed_at
  FROM routes r;

-- Same name, columns and types as before: users' SQL over the view keeps working.
CREATE OR REPLACE VIEW route_day_summary AS
SELECT s.placa,
       s.rota_date,
       t.descricao,
       t.frota,
       s.distance_km,
       s.odometer_km,
       s.driving_h,
       s.idle_h,
       s.parked_h,
       s.max_speed_kmh,
       s.avg_speed_kmh,
       s.over_limit_h,
       s.speed_limit_kmh,
       s.trip_count,
       s.stop_count,
       s.point_count,
       s.invalid_count,
       s.start_ts,
       s.end_ts,
       s.provider_trip_count,
       s.provider_agrees,
       s.computed_at
  FROM route_day_summaries s
  LEFT JOIN terminals t ON t.placa = s.placa;
