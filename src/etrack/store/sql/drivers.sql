-- Drivers (etrack/store/drivers.py, etrack/drivers/): identities from the
-- provider's trips, attribution of the detected trips, assignments.

-- name: drivers_unknown_aliases
-- The provider's driver fields of some plates' trips on some local days (and
-- a day either side) not yet known as an alias (what sync_drivers turns into
-- drivers): one row per alias, its newest name and fleet. trips_day_idx.
SELECT DISTINCT ON (alias) alias, condutor_identificacao, condutor_nome, frota
  FROM (SELECT CASE WHEN nullif(btrim(condutor_identificacao), '') IS NOT NULL
                    THEN 'id:' || btrim(condutor_identificacao)
                    WHEN nullif(btrim(condutor_nome), '') IS NOT NULL
                    THEN 'name:' || btrim(condutor_nome) END AS alias,
               btrim(condutor_identificacao) AS condutor_identificacao,
               btrim(condutor_nome) AS condutor_nome, frota, data_inicio_conducao
          FROM trips
         WHERE placa = ANY(%(plates)s::text[])
           AND rota_date BETWEEN %(first_day)s::date - 1 AND %(last_day)s::date + 1) t
 WHERE alias IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM driver_aliases a WHERE a.alias = t.alias)
 ORDER BY alias, data_inicio_conducao DESC

-- name: drivers_insert
-- A driver first seen; one already there (another alias of it) is left as it is.
INSERT INTO drivers (id, name, frota) VALUES (%(id)s, %(name)s, %(frota)s)
ON CONFLICT (id) DO NOTHING

-- name: drivers_merged_into
-- The driver a merged key now is ('key:' aliases: drivers_merge).
SELECT driver_id FROM driver_aliases WHERE alias = 'key:' || %(id)s

-- name: drivers_alias_insert
INSERT INTO driver_aliases (alias, driver_id) VALUES (%(alias)s, %(driver_id)s)
ON CONFLICT (alias) DO NOTHING

-- name: drivers_list
SELECT id, name, document, frota, active, created_at, updated_at FROM drivers ORDER BY name, id

-- name: drivers_get
SELECT id, name, document, frota, active, created_at, updated_at FROM drivers WHERE id = %(id)s

-- name: drivers_update
-- Name, document, fleet or active flag; an unchanged driver is not rewritten.
UPDATE drivers
   SET name = %(name)s, document = %(document)s, frota = %(frota)s, active = %(active)s,
       updated_at = now()
 WHERE id = %(id)s
   AND (name, document, frota, active)
       IS DISTINCT FROM (%(name)s, %(document)s, %(frota)s, %(active)s)
RETURNING id

-- name: drivers_merge
-- Driver `source` becomes `target`: its aliases, assignments and trips move,
-- then it is deleted. Returns the trips moved.
WITH aliases AS (
    UPDATE driver_aliases SET driver_id = %(target)s WHERE driver_id = %(source)s
), merged_key AS (
    -- A spelling not seen yet whose key is the source's finds the target.
    INSERT INTO driver_aliases (alias, driver_id) VALUES ('key:' || %(source)s, %(target)s)
    ON CONFLICT (alias) DO UPDATE SET driver_id = EXCLUDED.driver_id
), assignments AS (
    UPDATE driver_assignments SET driver_id = %(target)s WHERE driver_id = %(source)s
), trips AS (
    UPDATE route_trips SET driver_id = %(target)s WHERE driver_id = %(source)s RETURNING 1
), gone AS (
    DELETE FROM drivers WHERE id = %(source)s
)
SELECT count(*) FROM trips

-- name: drivers_assign
-- A manual assignment; the same vehicle and start again replaces its end and driver.
INSERT INTO driver_assignments (driver_id, placa, from_ts, to_ts)
VALUES (%(driver_id)s, %(placa)s, %(from_ts)s, %(to_ts)s)
ON CONFLICT (placa, from_ts) DO UPDATE SET driver_id = EXCLUDED.driver_id, to_ts = EXCLUDED.to_ts
 WHERE (driver_assignments.driver_id, driver_assignments.to_ts)
       IS DISTINCT FROM (EXCLUDED.driver_id, EXCLUDED.to_ts)
RETURNING id

-- name: drivers_assignment_overlaps
-- Another assignment of the vehicle overlapping [from, to): a vehicle has
-- one driver at a time.
SELECT driver_id, from_ts, to_ts FROM driver_assignments
 WHERE placa = %(placa)s AND from_ts < %(to_ts)s AND to_ts > %(from_ts)s
   AND from_ts <> %(from_ts)s
 ORDER BY from_ts LIMIT 1

-- name: drivers_assignments
SELECT id, driver_id, placa, from_ts, to_ts FROM driver_assignments
 WHERE (%(driver_id)s::text IS NULL OR driver_id = %(driver_id)s)
 ORDER BY from_ts, placa

-- name: drivers_attribute
-- The driver of each detected trip of some plates and local days: the
-- provider trip overlapping it most (its alias's driver), else the manual
-- assignment overlapping it most, else none. Only rows that change are
-- written. Counts (trips with a driver, trips without, rows written).
WITH chosen AS (
    SELECT rt.placa, rt.rota_date, rt.seq,
           coalesce(p.driver_id, m.driver_id) AS driver_id,
           CASE WHEN p.driver_id IS NOT NULL THEN 'provider'
                WHEN m.driver_id IS NOT NULL THEN 'assignment' END AS driver_source
      FROM route_trips rt
      LEFT JOIN LATERAL (
            SELECT a.driver_id
              FROM trips t
              JOIN driver_aliases a
                ON a.alias = CASE WHEN nullif(btrim(t.condutor_identificacao), '') IS NOT NULL
                                  THEN 'id:' || btrim(t.condutor_identificacao)
                                  WHEN nullif(btrim(t.condutor_nome), '') IS NOT NULL
                                  THEN 'name:' || btrim(t.condutor_nome) END
             WHERE t.placa = rt.placa
               AND t.data_inicio_conducao < rt.end_ts
               AND coalesce(t.data_fim_conducao, t.data_inicio_conducao) > rt.start_ts
               -- the provider's trips of the day and the day either side
               AND t.data_inicio_conducao > rt.start_ts - interval '2 days'
             ORDER BY least(coalesce(t.data_fim_conducao, t.data_inicio_conducao), rt.end_ts)
                      - greatest(t.data_inicio_conducao, rt.start_ts) DESC,
                      t.data_inicio_conducao
             LIMIT 1) p ON true
      LEFT JOIN LATERAL (
            SELECT d.driver_id
              FROM driver_assignments d
             WHERE d.placa = rt.placa AND d.from_ts < rt.end_ts AND d.to_ts > rt.start_ts
             ORDER BY least(d.to_ts, rt.end_ts) - greatest(d.from_ts, rt.start_ts) DESC, d.from_ts
             LIMIT 1) m ON true
     WHERE rt.placa = ANY(%(plates)s::text[])
       AND rt.rota_date BETWEEN %(first_day)s AND %(last_day)s
), written AS (
    UPDATE route_trips rt
       SET driver_id = c.driver_id, driver_source = c.driver_source
      FROM chosen c
     WHERE rt.placa = c.placa AND rt.rota_date = c.rota_date AND rt.seq = c.seq
       AND (rt.driver_id, rt.driver_source) IS DISTINCT FROM (c.driver_id, c.driver_source)
    RETURNING 1
)
SELECT count(*) FILTER (WHERE driver_id IS NOT NULL), count(*) FILTER (WHERE driver_id IS NULL),
       (SELECT count(*) FROM written)
  FROM chosen

-- name: drivers_activities
-- The attributed trips starting in [lo, hi), per driver in time order (the
-- working days' input), of every driver or some.
-- With each, the engine-on seconds of the stop that follows it on its
-- vehicle (the stop starting where the trip ends: same plate and day).
SELECT rt.driver_id, rt.placa, rt.start_ts, rt.end_ts, rt.driver_source, rt.moving_s,
       coalesce(s.ignition_on_s, 0)
  FROM route_trips rt
  LEFT JOIN LATERAL (
        SELECT st.ignition_on_s FROM route_stops st
         WHERE st.placa = rt.placa AND st.rota_date = rt.rota_date AND st.start_ts >= rt.end_ts
         ORDER BY st.start_ts LIMIT 1) s ON true
 WHERE rt.driver_id IS NOT NULL AND rt.start_ts >= %(lo)s AND rt.start_ts < %(hi)s
   AND (%(ids)s::text[] IS NULL OR rt.driver_id = ANY(%(ids)s::text[]))
 ORDER BY rt.driver_id, rt.start_ts, rt.end_ts

-- name: drivers_unattributed
-- Detected trips without a driver starting in [lo, hi): "sem motorista".
SELECT count(*), coalesce(sum(duration_s), 0) FROM route_trips
 WHERE driver_id IS NULL AND start_ts >= %(lo)s AND start_ts < %(hi)s
   AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))

-- name: drivers_events_stored
-- The stored violation events starting in [lo, hi) (every vehicle: a driver
-- changes vehicles), as events_stored reads events.
SELECT id, placa, kind, start_ts, end_ts, duration_s, value, limit_value, latitude, longitude,
       logradouro, driver, rule
  FROM events
 WHERE kind = ANY(%(kinds)s::text[]) AND start_ts >= %(lo)s AND start_ts < %(hi)s
   AND rule LIKE 'driver:%%'

-- name: drivers_events_lock
-- One computation of violation events at a time (they span every vehicle).
SELECT pg_advisory_xact_lock(hashtext('etrack:driver-violation-events'))

-- name: drivers_plates_with_routes
-- The plates with a route on the local days (routes_day_idx): what an
-- attribution over every plate covers.
SELECT DISTINCT placa FROM routes WHERE rota_date BETWEEN %(first_day)s AND %(last_day)s
 ORDER BY placa

-- name: drivers_last_end_before
-- Each driver's last activity before a moment (a working day's rest before,
-- however long ago): route_trips_driver_idx, one probe per driver.
SELECT d.id, l.end_ts
  FROM unnest(%(ids)s::text[]) AS d(id)
 CROSS JOIN LATERAL (
       SELECT max(rt.end_ts) AS end_ts FROM (
              SELECT end_ts FROM route_trips
               WHERE driver_id = d.id AND start_ts < %(before)s
               ORDER BY start_ts DESC LIMIT 8) rt) l
 WHERE l.end_ts IS NOT NULL
