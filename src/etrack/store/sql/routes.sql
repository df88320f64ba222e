-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- Route, trip and stop reconstruction (etrack/trips/compute.py).

-- name: routes_plates_with_positions
-- Plates holding any position in [lo, hi): one index probe per known plate
-- (every ingest upserts the plate's terminals row) instead of a scan of the
-- month partitions.
SELECT t.placa
  FROM terminals t
 WHERE EXISTS (SELECT 1 FROM positions p
                WHERE p.placa = t.placa
                  AND p.data_transmissao >= %(lo)s AND p.data_transmissao < %(hi)s)
 ORDER BY t.placa

-- name: routes_fingerprints
-- Per plate and local day (bounds given, computed by the caller in its time
-- zone): rows in the day (all, and not valid), and a fingerprint of everything
-- its route depends on: the positions of the day widened by the data gap on
-- both sides (the midnight cut uses the neighbours), the provider's trips of
-- that day (for the comparison), and the parameters. `unchanged` compares it
-- with the stored route's. One index range scan per plate-day: a join of the
-- whole batch plans a hash join that re-evaluates the bounds per row pair.
WITH wanted AS MATERIALIZED (
    SELECT pl.placa, d.day, d.day_start, d.day_end
      FROM unnest(%(plates)s::text[]) AS pl(placa)
     CROSS JOIN unnest(%(days)s::date[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])
           AS d(day, day_start, day_end)
)
SELECT w.placa, w.day, s.day_rows, s.invalid_rows, f.fingerprint,
       r.source_fingerprint IS NOT DISTINCT FROM f.fingerprint AS unchanged
  FROM wanted w
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE p.data_transmissao >= w.day_start
                                 AND p.data_transmissao < w.day_end) AS day_rows,
              count(*) FILTER (WHERE p.data_transmissao >= w.day_start
                                 AND p.data_transmissao < w.day_end
                                 AND p.quality <> 'valid') AS invalid_rows,
              count(*) AS window_rows,
              extract(epoch FROM max(coalesce(p.updated_at, p.ingested_at))) AS changed,
              extract(epoch FROM max(p.data_transmissao)) AS newest
         FROM positions p
        WHERE p.placa = w.placa
          AND p.data_transmissao >= w.day_start - %(gap)s
          AND p.data_transmissao < w.day_end + %(gap)s) s
 CROSS JOIN LATERAL (
       SELECT concat_ws('|', s.window_rows, s.changed, s.newest, count(*),
                        sum(t.distancia_conducao), extract(epoch FROM max(t.data_fim_conducao)),
                        extract(epoch FROM max(t.ingested_at)), %(params_key)s::text) AS fingerprint
         FROM trips t
        WHERE t.placa = w.placa AND t.rota_date = w.day) f
  LEFT JOIN routes r ON r.placa = w.placa AND r.rota_date = w.day
 ORDER BY w.placa, w.day

-- name: routes_load_positions
-- Valid positions of some plates over a window: one row per plate, each
-- field an array in time order (time as POSIX seconds). Arrays arrive as
-- Python lists in one go: cheaper than a tuple per point turned into columns.
SELECT placa,
       array_agg(date_part('epoch', data_transmissao) ORDER BY data_transmissao),
       array_agg(latitude ORDER BY data_transmissao),
       array_agg(longitude ORDER BY data_transmissao),
       array_agg(velocidade ORDER BY data_transmissao),
       array_agg(ignicao ORDER BY data_transmissao),
       array_agg(coalesce(odometro, odometro_can) ORDER BY data_transmissao),
       array_agg(logradouro ORDER BY data_transmissao)
  FROM positions
 WHERE placa = ANY(%(plates)s::text[])
   AND data_transmissao >= %(lo)s AND data_transmissao < %(hi)s
   AND quality = 'valid' AND latitude IS NOT NULL AND longitude IS NOT NULL
 GROUP BY placa

-- name: routes_provider_trips
-- The provider's trips (resumoviagens) of some plates and days, to compare with ours.
SELECT placa, rota_date, data_inicio_conducao, data_fim_conducao, distancia_conducao
  FROM trips
 WHERE placa = ANY(%(plates)s::text[]) AND rota_date = ANY(%(days)s::date[])
 ORDER BY placa, rota_date, data_inicio_conducao

-- name: routes_lock_days
-- Serializes two runs storing the same plate-days (taken in key order, held
-- to the end of the transaction): the second then deletes what the first stored.
SELECT count(pg_advisory_xact_lock(hashtextextended('etrack.routes|' || k.placa || '|' || k.day, 0)))
  FROM (SELECT * FROM unnest(%(plates)s::text[], %(days)s::date[]) AS u(placa, day)
         ORDER BY 1, 2) k

-- name: routes_delete_days
-- The days about to be stored again; their trips and stops go with them (cascade).
DELETE FROM routes r
 USING unnest(%(plates)s::text[], %(days)s::date[]) AS k(placa, day)
 WHERE r.placa = k.placa AND r.rota_date = k.day

-- name: routes_copy_routes
COPY routes (placa, rota_date, points, geojson, simplified, start_ts, end_ts,
    point_count, invalid_count, distance_m, odometer_m, driving_s, idle_s, parked_s,
    max_speed_kmh, avg_speed_kmh, over_limit_s, trip_count, stop_count, provider_comparison,
    source_fingerprint, params)
FROM STDIN (FORMAT BINARY)

-- name: routes_copy_trips
COPY route_trips (placa, rota_date, seq, start_ts, end_ts, start_latitude, start_longitude,
    end_latitude, end_longitude, start_address, end_address, distance_m, duration_s,
    max_speed_kmh, avg_speed_kmh, moving_s)
FROM STDIN (FORMAT BINARY)

-- name: routes_copy_stops
COPY route_stops (placa, rota_date, seq, start_ts, end_ts, latitude, longitude, address,
    duration_s, ignition_on_s)
FROM STDIN (FORMAT BINARY)

-- name: routes_store_summaries
-- The day summaries of the days just stored (route_day_summaries, migration
-- 0008), in the same transaction: the expressions the route_day_summary view
-- computed at every read until then, now paid once per computed day. The
-- delete above took the old summaries with their routes (cascade).
INSERT INTO route_day_summaries (placa, rota_date, distance_km, odometer_km, driving_h, idle_h,
    parked_h, max_speed_kmh, avg_speed_kmh, over_limit_h, speed_limit_kmh, trip_count,
    stop_count, point_count, invalid_count, start_ts, end_ts, provider_trip_count,
    provider_agrees, computed_at)
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
  FROM routes r
  JOIN unnest(%(plates)s::text[], %(days)s::date[]) AS k(placa, day)
    ON r.placa = k.placa AND r.rota_date = k.day
