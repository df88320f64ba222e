-- Geofences and their visits (store/geofences.py, docs/geofences.md).

-- name: geofences_upsert
-- Insert or update one fence by name; a fence whose fields are all the same
-- is left alone (no row returned), so importing a file twice changes nothing.
INSERT INTO geofences AS g (name, kind, geometry, radius_m, fence_group, speed_limit_kmh)
VALUES (%(name)s, %(kind)s, %(geometry)s, %(radius_m)s, %(fence_group)s, %(speed_limit_kmh)s)
ON CONFLICT (name) DO UPDATE
   SET kind = EXCLUDED.kind, geometry = EXCLUDED.geometry, radius_m = EXCLUDED.radius_m,
       fence_group = EXCLUDED.fence_group, speed_limit_kmh = EXCLUDED.speed_limit_kmh,
       updated_at = now()
 WHERE (g.kind, g.geometry, g.radius_m, g.fence_group, g.speed_limit_kmh)
       IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.geometry, EXCLUDED.radius_m,
                         EXCLUDED.fence_group, EXCLUDED.speed_limit_kmh)
RETURNING g.name, (g.xmax = 0) AS inserted

-- name: geofences_list
SELECT name, kind, geometry, radius_m, fence_group, speed_limit_kmh, created_at, updated_at
  FROM geofences
 WHERE %(names)s::text[] IS NULL OR name = ANY(%(names)s::text[])
 ORDER BY name

-- name: geofences_delete
-- The fences named; their visits go with them (ON DELETE CASCADE), and so do
-- their enter/exit events.
WITH gone AS (
    DELETE FROM geofences WHERE name = ANY(%(names)s::text[]) RETURNING name
), events_gone AS (
    DELETE FROM events
     WHERE kind IN ('geofence_enter', 'geofence_exit')
       AND rule = ANY(SELECT 'fence:' || name FROM gone)
)
SELECT name FROM gone ORDER BY name

-- name: geofences_load_positions
-- Valid positions of some plates over a window, one row per plate, each
-- field an array in time order (POSIX seconds, latitude, longitude).
SELECT placa,
       array_agg(date_part('epoch', data_transmissao) ORDER BY data_transmissao),
       array_agg(latitude ORDER BY data_transmissao),
       array_agg(longitude ORDER BY data_transmissao)
  FROM positions
 WHERE placa = ANY(%(plates)s::text[])
   AND data_transmissao >= %(lo)s AND data_transmissao < %(hi)s
   AND quality = 'valid' AND latitude IS NOT NULL AND longitude IS NOT NULL
 GROUP BY placa

-- name: geofences_plates_in_range
-- The plates with valid positions in [lo, hi) (a computation over every plate).
SELECT DISTINCT placa FROM positions
 WHERE data_transmissao >= %(lo)s AND data_transmissao < %(hi)s AND quality = 'valid'
 ORDER BY placa

-- name: geofences_position_span
-- Each plate's first and last valid position (how far a computation may extend).
SELECT placa, min(data_transmissao), max(data_transmissao)
  FROM positions
 WHERE placa = ANY(%(plates)s::text[]) AND quality = 'valid'
 GROUP BY placa

-- name: visits_stored
-- The stored visits of some plates, each arriving from its own lo, before hi:
-- what a batch's recomputation replaces.
SELECT v.id, v.placa, v.fence, v.arrive_ts, v.depart_ts, v.dwell_s
  FROM geofence_visits v
  JOIN unnest(%(plates)s::text[], %(los)s::timestamptz[]) AS r(placa, lo) ON r.placa = v.placa
 WHERE v.arrive_ts >= r.lo AND v.arrive_ts < %(hi)s

-- name: visits_begun_before
-- Per plate, the earliest arrival of a stored visit begun before lo and still
-- going at lo: a recomputation from lo starts there instead.
SELECT placa, min(arrive_ts)
  FROM geofence_visits
 WHERE placa = ANY(%(plates)s::text[]) AND arrive_ts < %(lo)s
   AND (depart_ts IS NULL OR depart_ts >= %(lo)s)
 GROUP BY placa

-- name: visits_write
-- Visits found new or changed, and their enter/exit events, by natural key:
-- a stored row keeps its id and an unchanged one is not rewritten. A new
-- row's id is md5 of its key (etrack.store.geofences.visit_id and
-- fence_event_id say the same in Python). An exit's value is the minutes
-- inside, as the other kinds count a duration. Counts (visits, events).
WITH incoming AS (
    SELECT * FROM unnest(%(placa)b::text[], %(fence)b::text[], %(arrive_ts)b::timestamptz[],
                         %(depart_ts)b::timestamptz[], %(dwell_s)b::float8[])
           AS r(placa, fence, arrive_ts, depart_ts, dwell_s)
), visits AS (
    INSERT INTO geofence_visits AS v (id, placa, fence, arrive_ts, depart_ts, dwell_s)
    SELECT md5(placa || '|' || fence || '|'
               || (extract(epoch FROM arrive_ts) * 1000000)::bigint)::uuid,
           placa, fence, arrive_ts, depart_ts, dwell_s
      FROM incoming
    ON CONFLICT (placa, fence, arrive_ts) DO UPDATE
       SET depart_ts = EXCLUDED.depart_ts, dwell_s = EXCLUDED.dwell_s, computed_at = now()
     WHERE (v.depart_ts, v.dwell_s) IS DISTINCT FROM (EXCLUDED.depart_ts, EXCLUDED.dwell_s)
    RETURNING 1
), fence_events AS (
    SELECT placa, fence, 'geofence_enter' AS kind, arrive_ts AS start_ts,
           0.0::float8 AS duration_s, NULL::float8 AS value
      FROM incoming
    UNION ALL
    SELECT placa, fence, 'geofence_exit', depart_ts, dwell_s, dwell_s / 60.0
      FROM incoming WHERE depart_ts IS NOT NULL
), events_written AS (
    INSERT INTO events AS e (id, placa, kind, start_ts, end_ts, duration_s, value, rule)
    SELECT md5(placa || '|' || kind || '|' || fence || '|'
               || (extract(epoch FROM start_ts) * 1000000)::bigint)::uuid,
           placa, kind, start_ts, start_ts, duration_s, value, 'fence:' || fence
      FROM fence_events
    ON CONFLICT (placa, kind, start_ts, rule) DO UPDATE
       SET duration_s = EXCLUDED.duration_s, value = EXCLUDED.value, computed_at = now()
     WHERE (e.duration_s, e.value) IS DISTINCT FROM (EXCLUDED.duration_s, EXCLUDED.value)
    RETURNING 1
)
SELECT (SELECT count(*) FROM visits), (SELECT count(*) FROM events_written)

-- name: visits_delete
-- Visits no longer found (by id) and the events no visit holds any more (by
-- the events' natural key: a gone visit's enter and exit, the old exit of a
-- visit that now departs later). Counts the events deleted.
WITH visits AS (
    DELETE FROM geofence_visits WHERE id = ANY(%(ids)b::uuid[])
), gone AS (
    DELETE FROM events e
     USING unnest(%(placas)b::text[], %(kinds)b::text[], %(starts)b::timestamptz[],
                  %(rules)b::text[]) AS k(placa, kind, start_ts, rule)
     WHERE e.placa = k.placa AND e.kind = k.kind AND e.start_ts = k.start_ts
       AND e.rule = k.rule
    RETURNING 1
)
SELECT count(*) FROM gone

-- name: visits_list
-- Visits overlapping [lo, hi) (an open one overlaps everything after its
-- arrival), optionally of some plates and one fence, in arrival order.
SELECT id, placa, fence, arrive_ts, depart_ts, dwell_s
  FROM geofence_visits
 WHERE arrive_ts < %(hi)s AND (depart_ts IS NULL OR depart_ts >= %(lo)s)
   -- A visit lasts hours or days: the bound keeps the index scan short; an
   -- open one is listed however old.
   AND (arrive_ts >= %(lo)s - interval '62 days' OR depart_ts IS NULL)
   AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))
   AND (%(fence)s::text IS NULL OR fence = %(fence)s::text)
 ORDER BY arrive_ts, placa, fence

-- ------------------------------------------------------------ web pages
-- (web/pages/geofences.py, web/pages/visits.py, web/pages/vehicle.py; read
-- through the web Reader, whose account scope drops other accounts' plates.)

-- name: web_fences_all
-- Every fence, for the maps of the Geofences page and the vehicle day.
SELECT name, kind, geometry, radius_m, fence_group, speed_limit_kmh, updated_at
  FROM geofences
 ORDER BY name

-- name: web_fence_visit_counts
-- Visits per fence and vehicle (the page sums the plates in scope).
SELECT fence, placa, count(*) AS visits
  FROM geofence_visits
 GROUP BY fence, placa

-- name: web_visits_range
-- Visits overlapping [lo, hi), optionally of some plates and one fence, in
-- arrival order (an open one overlaps everything after its arrival).
SELECT v.id, v.placa, v.fence, g.fence_group, v.arrive_ts, v.depart_ts, v.dwell_s
  FROM geofence_visits v
  JOIN geofences g ON g.name = v.fence
 WHERE v.arrive_ts < %(hi)s AND (v.depart_ts IS NULL OR v.depart_ts >= %(lo)s)
   AND (v.arrive_ts >= %(lo)s - interval '62 days' OR v.depart_ts IS NULL)
   AND (%(plates)s::text[] IS NULL OR v.placa = ANY(%(plates)s::text[]))
   AND (%(fence)s::text IS NULL OR v.fence = %(fence)s::text)
 ORDER BY v.arrive_ts, v.placa, v.fence

-- name: web_day_visits
-- One vehicle's visits overlapping [lo, hi) (its day), in arrival order.
SELECT v.id, v.placa, v.fence, v.arrive_ts, v.depart_ts, v.dwell_s
  FROM geofence_visits v
 WHERE v.placa = %(placa)s
   AND v.arrive_ts < %(hi)s AND (v.depart_ts IS NULL OR v.depart_ts >= %(lo)s)
   AND (v.arrive_ts >= %(lo)s - interval '62 days' OR v.depart_ts IS NULL)
 ORDER BY v.arrive_ts, v.fence

-- name: web_stops_range
-- The stored routes' stops on local days first..last (the stops of
-- web_route_stops), optionally of some plates.
SELECT placa, rota_date, seq, start_ts, end_ts, latitude, longitude, address, duration_s
  FROM route_stops
 WHERE rota_date >= %(first)s AND rota_date <= %(last)s
   AND latitude IS NOT NULL AND longitude IS NOT NULL
   AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))
 ORDER BY rota_date, placa, seq

-- name: geofences_history_span
-- The first and last valid position of any plate: the whole stored history a
-- new or changed fence is applied to (etrack geofences import, the job
-- compute_visits). NULLs when no valid position is stored.
SELECT min(data_transmissao), max(data_transmissao)
  FROM positions
 WHERE quality = 'valid'

-- name: visits_list_limited
-- visits_list with a bound on the rows (GET /api/visits): one row more than
-- the caller shows, to tell whether the listing was cut.
SELECT id, placa, fence, arrive_ts, depart_ts, dwell_s
  FROM geofence_visits
 WHERE arrive_ts < %(hi)s AND (depart_ts IS NULL OR depart_ts >= %(lo)s)
   AND (arrive_ts >= %(lo)s - interval '62 days' OR depart_ts IS NULL)
   AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))
   AND (%(fence)s::text IS NULL OR fence = %(fence)s::text)
 ORDER BY arrive_ts, placa, fence
 LIMIT %(limit)s
