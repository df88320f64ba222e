-- 0013: alert rules by fence, and every stored visit with its events.
--
-- A rule may name fences (NULL: any): it then matches the events a fence
-- decided, whose `rule` is 'fence:NAME': the enter/exit events of those
-- fences, and the overspeed events under their speed limit.
ALTER TABLE alert_rules ADD COLUMN fences text[]
    CHECK (fences IS NULL OR cardinality(fences) > 0);

-- From now on a visit's enter event and, once it is closed, its exit are
-- written with it (etrack.store.geofences.write_visits): a visit left
-- unchanged by a recomputation leaves its events alone. Visits stored
-- before held no exit event for a departure past the end of the range
-- that computed them: those events are added here, with the ids the
-- computation gives (md5 of the natural key), so the invariant holds for
-- every stored visit.
INSERT INTO events (id, placa, kind, start_ts, end_ts, duration_s, value, rule)
SELECT md5(placa || '|' || kind || '|' || fence || '|'
           || (extract(epoch FROM start_ts) * 1000000)::bigint)::uuid,
       placa, kind, start_ts, start_ts, duration_s, value, 'fence:' || fence
  FROM (
        SELECT placa, fence, 'geofence_enter' AS kind, arrive_ts AS start_ts,
               0.0::float8 AS duration_s, NULL::float8 AS value
          FROM geofence_visits
        UNION ALL
        SELECT placa, fence, 'geofence_exit', depart_ts, dwell_s, dwell_s / 60.0
          FROM geofence_visits WHERE depart_ts IS NOT NULL
       ) derived
ON CONFLICT (placa, kind, start_ts, rule) DO NOTHING;
