-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- Events: what their computation reads and writes (etrack/events/compute.py,
-- etrack/store/events.py), offline detection, and the listings of the CLI
-- and the web API.

-- name: events_load_positions
-- Valid positions of some plates over a window, one row per plate, each
-- field an array in time order: only what the detectors read (time as POSIX
-- seconds, speed, ignition, battery, reception delay in seconds). Where an
-- event starts (place, driver) is read afterwards for those few rows only
-- (events_start_details): the addresses are the heaviest column. The rows
-- come sorted from the primary key (see load_event_positions for the plan),
-- so each array is built in that order without a sort per aggregate.
SELECT placa, array_agg(ts), array_agg(velocidade), array_agg(ignicao), array_agg(bateria),
       array_agg(delay)
  FROM (SELECT placa, date_part('epoch', data_transmissao) AS ts, velocidade, ignicao, bateria,
               date_part('epoch', data_gravacao - data_transmissao) AS delay
          FROM positions
         WHERE placa = ANY(%(plates)s::text[])
           AND data_transmissao >= %(lo)s AND data_transmissao < %(hi)s
           AND quality = 'valid' AND latitude IS NOT NULL AND longitude IS NOT NULL
         ORDER BY placa, data_transmissao) s
 GROUP BY placa

-- name: events_index_plan
-- For the load above: read the primary key in order (a merge of the month
-- partitions' index scans) instead of a bitmap scan, then a sort to disk
-- and one sort per aggregate: three times faster here (PostgreSQL 15, 350
-- vehicles x 3 days), and JIT costs more than the query on this size.
-- Local to the transaction; events_restore_plan puts back what it returns.
SELECT current_setting('enable_bitmapscan'), current_setting('enable_seqscan'),
       current_setting('jit'), set_config('enable_bitmapscan', 'off', true),
       set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)

-- name: events_restore_plan
SELECT set_config('enable_bitmapscan', %(bitmapscan)s, true),
       set_config('enable_seqscan', %(seqscan)s, true), set_config('jit', %(jit)s, true)

-- name: events_plate_fleets
-- The fleet (frota) of some plates, for the per-fleet thresholds.
SELECT placa, frota FROM terminals WHERE placa = ANY(%(plates)s::text[])

-- name: events_start_details
-- Where and by whom each event began: the position at its start (one primary
-- key probe) and the driver of the provider's trip (resumoviagens) under way
-- then, when the provider names one.
SELECT k.placa, k.start_ts, p.latitude, p.longitude, p.logradouro, d.driver
  FROM unnest(%(plates)b::text[], %(starts)b::timestamptz[]) AS k(placa, start_ts)
  LEFT JOIN positions p ON p.placa = k.placa AND p.data_transmissao = k.start_ts
  LEFT JOIN LATERAL (
        SELECT nullif(btrim(t.condutor_nome), '') AS driver
          FROM trips t
         WHERE t.placa = k.placa AND t.data_inicio_conducao <= k.start_ts
           AND coalesce(t.data_fim_conducao, t.data_inicio_conducao) >= k.start_ts
         ORDER BY t.data_inicio_conducao DESC
         LIMIT 1) d ON true

-- name: events_start_drivers
-- events_start_details' driver alone, for events whose place is already stored.
SELECT k.placa, k.start_ts, d.driver
  FROM unnest(%(plates)b::text[], %(starts)b::timestamptz[]) AS k(placa, start_ts)
 CROSS JOIN LATERAL (
        SELECT nullif(btrim(t.condutor_nome), '') AS driver
          FROM trips t
         WHERE t.placa = k.placa AND t.data_inicio_conducao <= k.start_ts
           AND coalesce(t.data_fim_conducao, t.data_inicio_conducao) >= k.start_ts
         ORDER BY t.data_inicio_conducao DESC
         LIMIT 1) d

-- name: events_lock_plates
-- Two computations over one plate wait for each other (taken in plate
-- order, so they never deadlock); released at commit.
SELECT pg_advisory_xact_lock(hashtext('etrack.events:' || placa))
  FROM (SELECT DISTINCT placa FROM unnest(%(plates)s::text[]) AS u(placa) ORDER BY placa) k

-- name: events_upsert
-- Insert the events, or update the stored one of the same id when a field
-- changed (a later position moved its end); an unchanged row is not
-- written at all. Counts (inserted, updated).
WITH incoming AS (
    SELECT * FROM unnest(%(id)b::uuid[], %(placa)b::text[], %(kind)b::text[],
                         %(start_ts)b::timestamptz[], %(end_ts)b::timestamptz[],
                         %(duration_s)b::float8[], %(value)b::float8[], %(limit_value)b::float8[],
                         %(latitude)b::float8[], %(longitude)b::float8[], %(logradouro)b::text[],
                         %(driver)b::text[], %(rule)b::text[])
           AS r(id, placa, kind, start_ts, end_ts, duration_s, value, limit_value, latitude,
                longitude, logradouro, driver, rule)
), written AS (
    INSERT INTO events AS e (id, placa, kind, start_ts, end_ts, duration_s, value, limit_value,
                             latitude, longitude, logradouro, driver, rule)
    SELECT * FROM incoming
    ON CONFLICT (id) DO UPDATE
       SET end_ts = EXCLUDED.end_ts, duration_s = EXCLUDED.duration_s, value = EXCLUDED.value,
           limit_value = EXCLUDED.limit_value, latitude = EXCLUDED.latitude,
           longitude = EXCLUDED.longitude, logradouro = EXCLUDED.logradouro,
           driver = EXCLUDED.driver, rule = EXCLUDED.rule, computed_at = now()
     WHERE (e.end_ts, e.duration_s, e.value, e.limit_value, e.latitude, e.longitude,
            e.logradouro, e.driver, e.rule)
           IS DISTINCT FROM
           (EXCLUDED.end_ts, EXCLUDED.duration_s, EXCLUDED.value, EXCLUDED.limit_value,
            EXCLUDED.latitude, EXCLUDED.longitude, EXCLUDED.logradouro, EXCLUDED.driver,
            EXCLUDED.rule)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written

-- name: events_stored
-- The stored events of these plates and kinds starting in [lo, hi): what a
-- recomputation compares its result with (the unique key's index).
SELECT id, placa, kind, start_ts, end_ts, duration_s, value, limit_value, latitude, longitude,
       logradouro, driver, rule
  FROM events
 WHERE placa = ANY(%(plates)s::text[]) AND kind = ANY(%(kinds)s::text[])
   AND start_ts >= %(lo)s AND start_ts < %(hi)s

-- name: events_stored_from
-- The stored events of these kinds of some plates, each starting from its own
-- lo, before hi (a batch of geofence visits replaces its enter/exit events so).
SELECT e.id, e.placa, e.kind, e.start_ts, e.end_ts, e.duration_s, e.value, e.limit_value,
       e.latitude, e.longitude, e.logradouro, e.driver, e.rule
  FROM events e
  JOIN unnest(%(plates)s::text[], %(los)s::timestamptz[]) AS r(placa, lo) ON r.placa = e.placa
 WHERE e.kind = ANY(%(kinds)s::text[]) AND e.start_ts >= r.lo AND e.start_ts < %(hi)s

-- name: events_delete
-- The events a recomputation no longer finds (their positions changed, or the thresholds).
DELETE FROM events WHERE id = ANY(%(ids)b::uuid[])

-- name: events_offline_close
-- Close the open offline event of every vehicle that reported again: its end
-- is the first valid position after the silence (one index probe of its
-- plate), its value the silence in minutes.
WITH closing AS (
    SELECT e.id, coalesce(n.first_ts, l.data_transmissao) AS end_ts
      FROM events e
      JOIN latest_positions l ON l.placa = e.placa
     CROSS JOIN LATERAL (
           SELECT min(p.data_transmissao) AS first_ts
             FROM positions p
            WHERE p.placa = e.placa AND p.data_transmissao > e.start_ts
              AND p.data_transmissao <= l.data_transmissao AND p.quality = 'valid') n
     WHERE e.kind = 'offline' AND e.end_ts IS NULL AND l.data_transmissao > e.start_ts
)
UPDATE events e
   SET end_ts = c.end_ts,
       duration_s = extract(epoch FROM c.end_ts - e.start_ts)::float8,
       value = extract(epoch FROM c.end_ts - e.start_ts)::float8 / 60.0,
       computed_at = now()
  FROM closing c
 WHERE e.id = c.id
RETURNING e.placa

-- name: events_offline_candidates
-- Vehicles silent since before `cutoff` (their newest valid position, one row
-- per vehicle) with no offline event from that moment yet.
SELECT l.placa, l.data_transmissao, l.latitude, l.longitude, l.logradouro
  FROM latest_positions l
 WHERE l.data_transmissao < %(cutoff)s
   AND NOT EXISTS (SELECT 1 FROM events e
                    WHERE e.placa = l.placa AND e.kind = 'offline'
                      AND e.start_ts = l.data_transmissao)
 ORDER BY l.placa

-- name: events_offline_open
-- Open offline events (end_ts NULL); a vehicle already holding one is left
-- alone (the partial unique index), so two detections at once insert one.
INSERT INTO events (id, placa, kind, start_ts, limit_value, latitude, longitude, logradouro, rule)
SELECT * FROM unnest(%(id)s::uuid[], %(placa)s::text[], %(kind)s::text[],
                     %(start_ts)s::timestamptz[], %(limit_value)s::float8[],
                     %(latitude)s::float8[], %(longitude)s::float8[], %(logradouro)s::text[],
                     %(rule)s::text[])
ON CONFLICT DO NOTHING

-- name: events_offline_open_count
SELECT count(*) FROM events WHERE kind = 'offline' AND end_ts IS NULL

-- name: events_list
-- Events starting in [lo, hi), and the offline events still open that began
-- before it (a vehicle silent now belongs to today's list), optionally of
-- some plates and one kind, in (start_ts, placa, kind) order.
SELECT id, placa, kind, start_ts, end_ts, duration_s, value, limit_value, latitude, longitude,
       logradouro, driver, rule
  FROM events
 WHERE ((start_ts >= %(lo)s AND start_ts < %(hi)s)
        OR (kind = 'offline' AND end_ts IS NULL AND start_ts < %(lo)s))
   AND (%(plates)s::text[] IS NULL OR placa = ANY(%(plates)s::text[]))
   AND (%(kind)s::text IS NULL OR kind = %(kind)s::text)
 ORDER BY start_ts, placa, kind

-- name: web_events_page
-- One page of events_list after a key (the previous page's last row): a
-- range scan of events_start_idx from the key on, whatever the page.
SELECT e.id, e.placa, e.kind, e.start_ts, e.end_ts, e.duration_s, e.value, e.limit_value,
       e.latitude, e.longitude, e.logradouro, e.driver, e.rule
  FROM events e
 WHERE ((e.start_ts >= %(lo)s AND e.start_ts < %(hi)s)
        OR (e.kind = 'offline' AND e.end_ts IS NULL AND e.start_ts < %(lo)s))
   AND (%(plates)s::text[] IS NULL OR e.placa = ANY(%(plates)s::text[]))
   AND (%(kind)s::text IS NULL OR e.kind = %(kind)s::text)
   AND (e.start_ts, e.placa, e.kind) > (%(after_ts)s::timestamptz, %(after_placa)s::text,
                                        %(after_kind)s::text)
 ORDER BY e.start_ts, e.placa, e.kind
 LIMIT %(limit)s

-- name: web_events_count
-- How many events the listing holds (the pages' total).
SELECT count(*)
  FROM events e
 WHERE ((e.start_ts >= %(lo)s AND e.start_ts < %(hi)s)
        OR (e.kind = 'offline' AND e.end_ts IS NULL AND e.start_ts < %(lo)s))
   AND (%(plates)s::text[] IS NULL OR e.placa = ANY(%(plates)s::text[]))
   AND (%(kind)s::text IS NULL OR e.kind = %(kind)s::text)

-- name: web_events_counts
-- The Events page's tallies: how many events of each kind each vehicle had
-- in the listing (the same rows as web_events_count); the fleet report
-- counts only the events starting on its days (open_offline false).
SELECT e.placa, e.kind, count(*)::integer AS events
  FROM events e
 WHERE ((e.start_ts >= %(lo)s AND e.start_ts < %(hi)s)
        OR (%(open_offline)s AND e.kind = 'offline' AND e.end_ts IS NULL
            AND e.start_ts < %(lo)s))
   AND (%(plates)s::text[] IS NULL OR e.placa = ANY(%(plates)s::text[]))
   AND (%(kind)s::text IS NULL OR e.kind = %(kind)s::text)
 GROUP BY e.placa, e.kind
 ORDER BY e.placa, e.kind

-- name: web_day_events
-- One vehicle's events that overlap [lo, hi) (a local day): those starting in
-- it, and those begun before it and still going in it (an offline since
-- yesterday, an after-hours run across midnight).
SELECT id, placa, kind, start_ts, end_ts, duration_s, value, limit_value, latitude, longitude,
       logradouro, driver
  FROM events
 WHERE placa = %(placa)s
   AND start_ts < %(hi)s
   AND (end_ts IS NULL OR end_ts >= %(lo)s)
   -- Closed events span hours, not weeks: the bound keeps the scan short;
   -- an offline still open is shown however old.
   AND (start_ts >= %(lo)s - interval '31 days' OR (kind = 'offline' AND end_ts IS NULL))
 ORDER BY start_ts, kind

-- name: web_events_newest
-- The Events page's listing: the newest events of the listing first (a
-- busy fleet's page shows today's, not the first hours of the range).
SELECT e.id, e.placa, e.kind, e.start_ts, e.end_ts, e.duration_s, e.value, e.limit_value,
       e.latitude, e.longitude, e.logradouro, e.driver, e.rule
  FROM events e
 WHERE ((e.start_ts >= %(lo)s AND e.start_ts < %(hi)s)
        OR (e.kind = 'offline' AND e.end_ts IS NULL AND e.start_ts < %(lo)s))
   AND (%(plates)s::text[] IS NULL OR e.placa = ANY(%(plates)s::text[]))
   AND (%(kind)s::text IS NULL OR e.kind = %(kind)s::text)
 ORDER BY e.start_ts DESC, e.placa, e.kind
 LIMIT %(limit)s
