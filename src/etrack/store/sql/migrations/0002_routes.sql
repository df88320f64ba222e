-- 0002: what route reconstruction needs beyond 0001's tables: the parameters
-- a route was computed with, a by-day index for fleet-wide reads, and the
-- fleet day summary the UI and the CSV export read.

-- Mode and thresholds the stored trips, stops and over-limit time came from,
-- so a reader knows what "over the limit" meant for that day.
ALTER TABLE routes ADD COLUMN params jsonb;

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
