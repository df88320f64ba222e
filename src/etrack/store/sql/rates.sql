-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- The API pace of each account, shared by every process and machine
-- (etrack/provider/ratelimit.py, etrack/store/rates.py). Times come from the
-- database clock, so the machines' clocks never matter.

-- name: rates_reserve
-- Reserve the account's next request slot at the row's pace; returns the
-- seconds to wait for it and the pace. One statement, so the read and the
-- write are atomic under the row lock.
-- A fixed pace (ETRAC_RATE_ADAPT=0) spaces its own slots by its own interval
-- and leaves the learned pace alone.
INSERT INTO rate_limits AS r (account, next_slot, interval_s, rate)
VALUES (%(account)s, clock_timestamp() + make_interval(secs => %(interval)s), %(interval)s,
        CASE WHEN %(fixed)s THEN NULL ELSE 1.0 / %(interval)s END)
ON CONFLICT (account) DO UPDATE
   SET next_slot = greatest(r.next_slot, clock_timestamp())
                   + make_interval(secs => CASE WHEN %(fixed)s THEN %(interval)s
                                                ELSE coalesce(1.0 / r.rate, %(interval)s) END),
       interval_s = CASE WHEN %(fixed)s THEN %(interval)s
                         ELSE coalesce(1.0 / r.rate, %(interval)s) END
RETURNING greatest(0, extract(epoch FROM r.next_slot - clock_timestamp())::float8 - r.interval_s),
          CASE WHEN %(fixed)s THEN NULL ELSE r.rate END

-- name: rates_penalize
-- The provider said 429: nobody sends before `seconds` from now.
INSERT INTO rate_limits AS r (account, next_slot, interval_s)
VALUES (%(account)s, clock_timestamp() + make_interval(secs => %(seconds)s), %(interval)s)
ON CONFLICT (account) DO UPDATE
   SET next_slot = greatest(r.next_slot, clock_timestamp() + make_interval(secs => %(seconds)s))
RETURNING next_slot

-- name: rates_lock
-- The pace state of one account, locked until the transaction ends, with the
-- database clock's now (epoch seconds).
SELECT rate, throttled_at_rate, extract(epoch FROM segment_start)::float8, recent_ok,
       extract(epoch FROM grown_at)::float8, extract(epoch FROM decreased_at)::float8,
       latency_s, baseline_s, requests, throttled,
       extract(epoch FROM clock_timestamp())::float8,
       extract(epoch FROM clock_timestamp() - updated_at)::float8,
       eased_at_rate, recent_latency
  FROM rate_limits
 WHERE account = %(account)s
   FOR UPDATE

-- name: rates_session
-- The limiter's own connections: a pace must never hang a request. A
-- statement waits at most 2 s for the row (a process stopped inside its pace
-- transaction), and the server ends a transaction left idle over 5 s.
SET lock_timeout = '2s';
SET statement_timeout = '5s';
SET idle_in_transaction_session_timeout = '5s'

-- name: rates_now
SELECT extract(epoch FROM clock_timestamp())::float8

-- name: rates_save
-- The pace state after the controller ran (etrack.provider.pace.observe).
INSERT INTO rate_limits AS r (account, next_slot, interval_s, rate, throttled_at_rate,
                              segment_start, recent_ok, grown_at, decreased_at, latency_s,
                              baseline_s, requests, throttled, updated_at, eased_at_rate,
                              recent_latency)
VALUES (%(account)s, clock_timestamp(), 1.0 / %(rate)s, %(rate)s, %(throttled_at_rate)s,
        to_timestamp(%(segment_start)s), %(recent_ok)s, to_timestamp(%(grown_at)s),
        to_timestamp(%(decreased_at)s), %(latency_s)s, %(baseline_s)s, %(requests)s,
        %(throttled)s, clock_timestamp(), %(eased_at_rate)s, %(recent_latency)s)
ON CONFLICT (account) DO UPDATE
   SET rate = EXCLUDED.rate, interval_s = EXCLUDED.interval_s,
       throttled_at_rate = EXCLUDED.throttled_at_rate, segment_start = EXCLUDED.segment_start,
       recent_ok = EXCLUDED.recent_ok, grown_at = EXCLUDED.grown_at,
       decreased_at = EXCLUDED.decreased_at, latency_s = EXCLUDED.latency_s,
       baseline_s = EXCLUDED.baseline_s, requests = EXCLUDED.requests,
       throttled = EXCLUDED.throttled, updated_at = EXCLUDED.updated_at,
       eased_at_rate = EXCLUDED.eased_at_rate, recent_latency = EXCLUDED.recent_latency

-- name: rates_all
-- Every account's pace, for `etrack accounts`, /metrics and the Jobs page.
SELECT account, rate, throttled_at_rate, latency_s, baseline_s, requests, throttled, updated_at,
       eased_at_rate
  FROM rate_limits
 ORDER BY account

-- name: rates_forget
-- `etrack accounts rate --reset`: learn the account's pace again from ETRAC_RATE_LIMIT.
DELETE FROM rate_limits WHERE account = %(account)s
