-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- Alerts: the rules (etrack/store/alerts.py, `etrack alerts`), what is queued
-- for delivery and the record of every attempt (etrack/jobs/alerts.py).

-- name: alerts_rule_add
-- A new rule; nothing when the name is taken (the caller says so).
INSERT INTO alert_rules (name, kinds, plates, fleets, fences, min_value, channel, url, secret,
                         emails)
VALUES (%(name)s, %(kinds)s, %(plates)s, %(fleets)s, %(fences)s, %(min_value)s, %(channel)s,
        %(url)s, %(secret)s, %(emails)s)
ON CONFLICT (name) DO NOTHING
RETURNING name

-- name: alerts_rule_remove
DELETE FROM alert_rules WHERE name = %(name)s RETURNING name

-- name: alerts_rule_set_active
-- Pause (false) or resume (true) a rule; nothing comes back for an unknown name.
-- A paused rule queues nothing new (alerts_queue) and its queued pairs wait
-- (alerts_delivery_start, deliver_alert_once) until it is resumed.
UPDATE alert_rules SET active = %(active)s WHERE name = %(name)s RETURNING name

-- name: alerts_rule_get
SELECT name, kinds, plates, fleets, fences, min_value, channel, url, secret, emails, active,
       created_at
  FROM alert_rules WHERE name = %(name)s

-- name: alerts_rules_list
-- Every rule with its deliveries by state and the newest error of a
-- delivery not sent (what `etrack alerts list` shows).
SELECT r.name, r.kinds, r.plates, r.fleets, r.fences, r.min_value, r.channel, r.url, r.secret,
       r.emails, r.active, r.created_at,
       count(s.event_id) FILTER (WHERE s.state = 'queued') AS queued,
       count(s.event_id) FILTER (WHERE s.state = 'sent') AS sent,
       count(s.event_id) FILTER (WHERE s.state = 'failed') AS failed,
       (SELECT s2.last_error FROM alert_sends s2
         WHERE s2.rule = r.name AND s2.state <> 'sent' AND s2.last_error IS NOT NULL
         ORDER BY s2.queued_at DESC LIMIT 1) AS last_error
  FROM alert_rules r
  LEFT JOIN alert_sends s ON s.rule = r.name
 GROUP BY r.name
 ORDER BY r.name

-- name: alerts_queue
-- Queue (rule, event) pairs for delivery, in one statement: the events
-- matching each active rule (kind, plates or fleets through terminals.frota,
-- fences, value at least min_value) that have no alert_sends row yet, inserted as
-- 'queued'; plus the 'queued' rows whose job is neither waiting nor running
-- (lost between the insert and the defer), to be deferred again, when
-- their rule is active: the pairs of a paused rule wait (their job found the
-- rule paused and left them queued), and go out once it is resumed.
-- Without a window (lo and hi null: after each computation) only events
-- that started after the rule was created and less than max_age seconds
-- ago: a range scan of events_start_idx per rule, so this is cheap when
-- nothing is new. A replay gives a rule and a window, which replaces that
-- bound. Two of these at once insert each pair once: the primary key
-- decides, and only the inserter gets it back. The orphans part reads the
-- statement's snapshot, so a pair inserted here is not listed twice.
-- A rule naming fences takes only the events those fences decided (their
-- `rule` is 'fence:NAME': the fences' enter/exit events, and overspeed under
-- a fence's own speed limit); a rule without fences takes any.
-- An event overlapping one already sent or queued for the same rule,
-- vehicle and kind is that event with a moved start (see migration 0011),
-- and is not queued again. Not so for geofence_enter and geofence_exit:
-- they are instants, and two fences entered (or left) at the same position
-- give two events at the same moment, which that test would take for one
-- event moved, sending only the first fence's; a fence event's id is its
-- natural key (md5 of vehicle, kind, fence and time), so a recomputation
-- keeps it and the primary key alone sends it once.
WITH found AS (
    INSERT INTO alert_sends (rule, event_id, placa, kind, start_ts, end_ts)
    SELECT r.name, e.id, e.placa, e.kind, e.start_ts, e.end_ts
      FROM alert_rules r
      JOIN events e
        ON e.start_ts >= coalesce(%(lo)s::timestamptz,
                                  greatest(r.created_at, now() - make_interval(secs => %(max_age)s::float8)))
       AND e.start_ts < coalesce(%(hi)s::timestamptz, 'infinity')
       AND e.kind = ANY(r.kinds)
       AND (r.plates IS NULL OR e.placa = ANY(r.plates))
       AND (r.fleets IS NULL OR EXISTS (
                SELECT 1 FROM terminals t WHERE t.placa = e.placa AND t.frota = ANY(r.fleets)))
       AND (r.fences IS NULL OR (e.rule LIKE 'fence:%%' AND substr(e.rule, 7) = ANY(r.fences)))
       AND (r.min_value IS NULL OR e.value >= r.min_value)
     WHERE (r.active OR %(rule)s::text IS NOT NULL)
       AND (%(rule)s::text IS NULL OR r.name = %(rule)s)
       AND NOT EXISTS (SELECT 1 FROM alert_sends s WHERE s.rule = r.name AND s.event_id = e.id)
       AND (e.kind IN ('geofence_enter', 'geofence_exit') OR NOT EXISTS (
           SELECT 1 FROM alert_sends s
            WHERE s.rule = r.name AND s.placa = e.placa AND s.kind = e.kind
              AND s.state IN ('queued', 'sent')
              AND s.start_ts <= coalesce(e.end_ts, 'infinity')
              AND coalesce(s.end_ts, 'infinity') >= e.start_ts))
    ON CONFLICT DO NOTHING
    RETURNING rule, event_id
)
SELECT rule, event_id FROM found
UNION ALL
SELECT s.rule, s.event_id
  FROM alert_sends s
  JOIN alert_rules r ON r.name = s.rule AND r.active
 WHERE s.state = 'queued'
   AND (%(rule)s::text IS NULL OR s.rule = %(rule)s)
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                    WHERE j.id = s.job_id AND j.status IN ('todo', 'doing'))

-- name: alerts_requeue
-- `alerts replay --force`: the rule's pairs of the window already sent or
-- failed go back to 'queued' to be sent again (a queued one is on its way).
UPDATE alert_sends s
   SET state = 'queued', attempts = 0, last_error = NULL, job_id = NULL, sent_at = NULL,
       queued_at = now()
  FROM events e
 WHERE s.rule = %(rule)s AND e.id = s.event_id AND s.state <> 'queued'
   AND e.start_ts >= %(lo)s AND e.start_ts < %(hi)s
RETURNING s.rule, s.event_id

-- name: alerts_superseded
-- A queued pair whose event a recompute replaced (another id, the same run):
-- the new event is queued in its place by the next alerts_queue.
UPDATE alert_sends SET state = 'superseded'
 WHERE rule = %(rule)s AND event_id = %(event_id)s AND state = 'queued'
   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = %(event_id)s)

-- name: alerts_set_job
UPDATE alert_sends SET job_id = %(job_id)s
 WHERE rule = %(rule)s AND event_id = %(event_id)s AND state = 'queued'

-- name: alerts_delivery_start
-- One attempt begins: count it and name its job. Nothing comes back when the
-- pair is gone (rule removed, event no longer found); its state tells a
-- duplicate job ('sent' or 'failed': nothing to do) from a delivery to make.
-- The rule and the event come with it, as the send needs them. A paused
-- rule's pair is not an attempt: it keeps its count and waits, queued.
UPDATE alert_sends s
   SET attempts = s.attempts + CASE WHEN s.state = 'queued' AND r.active THEN 1 ELSE 0 END,
       job_id = CASE WHEN s.state = 'queued' THEN %(job_id)s ELSE s.job_id END
  FROM alert_rules r, events e
 WHERE s.rule = %(rule)s AND s.event_id = %(event_id)s AND r.name = s.rule AND e.id = s.event_id
RETURNING s.state, s.attempts, r.name, r.kinds, r.plates, r.fleets, r.fences, r.min_value,
          r.channel, r.url, r.secret, r.emails, r.active, r.created_at, e.id, e.placa, e.kind, e.start_ts,
          e.end_ts, e.duration_s, e.value, e.limit_value, e.latitude, e.longitude,
          e.logradouro, e.driver

-- name: alerts_delivery_record
-- The attempt's outcome, in deliveries and on the pair: 'sent' on success,
-- 'failed' after the last attempt, else still 'queued' with the error.
-- A rule removed during the attempt takes its history with it: nothing is
-- recorded then (the foreign key would refuse the row).
WITH attempt AS (
    INSERT INTO deliveries (rule, event_id, attempt, status, http_status, error)
    SELECT name, %(event_id)s, %(attempt)s, %(status)s, %(http_status)s, %(error)s::text
      FROM alert_rules WHERE name = %(rule)s
)
UPDATE alert_sends
   SET state = %(state)s::text, last_error = %(error)s::text,
       sent_at = CASE WHEN %(state)s::text = 'sent' THEN now() ELSE sent_at END
 WHERE rule = %(rule)s AND event_id = %(event_id)s

-- name: alerts_deliveries_list
SELECT rule, event_id, attempt, status, http_status, error, at
  FROM deliveries WHERE rule = %(rule)s ORDER BY at, id
