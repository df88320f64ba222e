-- 0006: the adaptive API pace (etrack.provider.pace).
--
-- Each account's row now also keeps the pace every process of the account
-- sends at (`rate`, requests/s) and what the controller learned: the pace
-- when the last 429 came and when latency last made it back off (both NULL:
-- still in slow start), the current segment (successes since the last 429's
-- pause, as epoch seconds of the database clock), the last latencies, their
-- median and the best median of the run, and the request and 429 counters. The next run starts from `rate`: what the last one learned.
ALTER TABLE rate_limits ADD COLUMN rate double precision;
ALTER TABLE rate_limits ADD COLUMN throttled_at_rate double precision;
ALTER TABLE rate_limits ADD COLUMN segment_start timestamptz;
ALTER TABLE rate_limits ADD COLUMN recent_ok double precision[] NOT NULL DEFAULT '{}';
ALTER TABLE rate_limits ADD COLUMN grown_at timestamptz;
ALTER TABLE rate_limits ADD COLUMN decreased_at timestamptz;
ALTER TABLE rate_limits ADD COLUMN eased_at_rate double precision;
ALTER TABLE rate_limits ADD COLUMN recent_latency double precision[] NOT NULL DEFAULT '{}';
ALTER TABLE rate_limits ADD COLUMN latency_s double precision;
ALTER TABLE rate_limits ADD COLUMN baseline_s double precision;
ALTER TABLE rate_limits ADD COLUMN requests bigint NOT NULL DEFAULT 0;
ALTER TABLE rate_limits ADD COLUMN throttled bigint NOT NULL DEFAULT 0;
ALTER TABLE rate_limits ADD COLUMN updated_at timestamptz;
ALTER TABLE rate_limits ADD CONSTRAINT rate_limits_rate_check CHECK (rate IS NULL OR rate > 0);
