-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- Retention (etrack/store/retention.py). Whole monthly partitions of positions go with
-- one DROP TABLE (no row-by-row delete, no bloat); only the default
-- partition and the small tables are deleted row by row. Raw JSON is cleared
-- in bounded batches over time slices, found through the BRIN index on
-- data_transmissao (migration 0007). `{partition}` is filled in with a
-- psycopg.sql.Identifier taken from the catalog.

-- name: retention_try_lock
-- One prune at a time per schema (the worker's daily task and a command may meet).
SELECT pg_try_advisory_lock(hashtextextended('etrack.prune|' || current_schema(), 0))

-- name: retention_unlock
SELECT pg_advisory_unlock(hashtextextended('etrack.prune|' || current_schema(), 0))

-- name: retention_partitions
-- The partitions of positions: bounds (NULL for the default partition; read
-- back from the catalog's own text, which carries the UTC offset), the
-- planner's row estimate (-1: never analyzed), size on disk and comment
-- (where prune marks a month whose raw JSON it cleared).
SELECT n.nspname AS schema_name,
       c.relname AS name,
       b.bound = 'DEFAULT' AS is_default,
       (regexp_match(b.bound, 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[1]::timestamptz AS lower_bound,
       (regexp_match(b.bound, 'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)'))[2]::timestamptz AS upper_bound,
       c.reltuples::bigint AS estimated_rows,
       pg_total_relation_size(c.oid) AS bytes,
       obj_description(c.oid, 'pg_class') AS note
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
 WHERE i.inhparent = 'positions'::regclass
 ORDER BY 4 NULLS FIRST, 2

-- name: retention_lock_timeout
-- Dropping a partition takes a brief exclusive lock on positions: give up
-- after a while (and retry later) rather than queue every reader behind a
-- long query.
SELECT set_config('lock_timeout', %(timeout)s, true)

-- name: retention_summarize_brin
-- Summarize the block ranges of a month's BRIN index that nothing has
-- summarized yet: autovacuum's queue of summarization requests overflows
-- during bulk loads (a backfill), and an unsummarized range matches every
-- query, so a count "before the cutoff" would read the whole month. Only
-- new ranges are read, once; returns how many were summarized.
SELECT coalesce(sum(brin_summarize_new_values(x.indexrelid)), 0)::bigint
  FROM pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_am a ON a.oid = i.relam
 WHERE x.indrelid = %(relation)s::regclass AND a.amname = 'brin'

-- name: retention_raw_estimate
-- Rows of a whole month still holding raw JSON, from the planner's
-- statistics (no scan): its row estimate times the share of non-null raw.
-- No row when the month was never analyzed.
SELECT round(c.reltuples * (1 - coalesce(s.null_frac, 0)))::bigint
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname
                      AND s.attname = 'raw'
 WHERE c.oid = %(relation)s::regclass AND c.reltuples >= 0

-- name: retention_count_estimate
-- The planner's estimate of retention_count_partition's with_raw, for a
-- month too large to count in a dry run.
EXPLAIN (FORMAT JSON)
SELECT 1 FROM {partition} WHERE data_transmissao < %(cutoff)s AND raw IS NOT NULL

-- name: retention_count_partition
-- Rows of one partition before the cutoff, and how many still hold raw JSON.
-- On the month holding the cutoff this is a bitmap heap scan of the BRIN
-- index: only the pages of the days before the cutoff are read.
SELECT count(*) AS rows, count(*) FILTER (WHERE raw IS NOT NULL) AS with_raw
  FROM {partition}
 WHERE data_transmissao < %(cutoff)s

-- name: retention_drop_partition
DROP TABLE IF EXISTS {partition}

-- name: retention_delete_partition_rows
-- Only for the default partition (rows far outside any month): small.
DELETE FROM {partition} WHERE data_transmissao < %(cutoff)s

-- name: retention_clear_partition_raw
-- Only for the default partition (rows far outside any month): small.
-- Keeps the parsed columns; `raw IS NOT NULL` makes a second run a no-op.
UPDATE {partition} SET raw = NULL
 WHERE data_transmissao < %(cutoff)s AND raw IS NOT NULL

-- name: retention_clear_raw_batch
-- One batch of a month: at most %(limit)s rows of the slice [lo, hi) that
-- still hold raw JSON (the slice's pages come from the BRIN index), by ctid
-- (a TID scan: the rows just found, nothing read twice). A row updated by
-- another session in between is skipped (its ctid moved) and left, with its
-- raw JSON, for the next run. `raw IS NOT NULL` makes a re-run after a kill
-- write only what is left.
UPDATE {partition} SET raw = NULL
 WHERE ctid = ANY(ARRAY(SELECT ctid FROM {partition}
                         WHERE data_transmissao >= %(lo)s AND data_transmissao < %(hi)s
                           AND raw IS NOT NULL
                         LIMIT %(limit)s))

-- name: retention_mark_partition
-- Remembers that a whole month's raw JSON is gone, so later runs skip the
-- month instead of scanning it again every day.
COMMENT ON TABLE {partition} IS {note}

-- name: retention_count_rejects
SELECT count(*) AS rows, count(*) FILTER (WHERE raw IS NOT NULL) AS with_raw
  FROM position_rejects
 WHERE received_at < %(cutoff)s

-- name: retention_delete_rejects
DELETE FROM position_rejects WHERE received_at < %(cutoff)s

-- name: retention_clear_rejects_raw
UPDATE position_rejects SET raw = NULL WHERE received_at < %(cutoff)s AND raw IS NOT NULL

-- name: retention_count_routes
-- Per-day tables: a day goes when it ended before the cutoff's local date.
SELECT (SELECT count(*) FROM route_stops WHERE rota_date < %(day)s) AS route_stops,
       (SELECT count(*) FROM route_trips WHERE rota_date < %(day)s) AS route_trips,
       (SELECT count(*) FROM routes WHERE rota_date < %(day)s) AS routes,
       (SELECT count(*) FROM trips WHERE rota_date < %(day)s) AS trips

-- name: retention_delete_route_stops
DELETE FROM route_stops WHERE rota_date < %(day)s

-- name: retention_delete_route_trips
DELETE FROM route_trips WHERE rota_date < %(day)s

-- name: retention_delete_routes
DELETE FROM routes WHERE rota_date < %(day)s

-- name: retention_delete_trips
-- The provider's trip summaries (resumoviagens) of those days.
DELETE FROM trips WHERE rota_date < %(day)s

-- name: retention_vacuum_partition
-- Plain VACUUM (not FULL) after a month's batches: the space of the old row
-- versions becomes free for the next batches and the next days' prunes of
-- the month, without the exclusive lock and whole-month rewrite of VACUUM
-- FULL. ANALYZE: the planner's view of the month after the change.
VACUUM (ANALYZE) {partition}

-- name: retention_session_lock_timeout
-- VACUUM runs outside a transaction, where set_config(..., true) does not last.
SELECT set_config('lock_timeout', %(timeout)s, false)

-- name: retention_reset_lock_timeout
RESET lock_timeout

-- name: retention_count_latest
-- Vehicles whose newest valid position is older than the cutoff: retention
-- removes that position from latest_positions too (the map then shows the
-- vehicle without a position, as the history has none left).
SELECT count(*) FROM latest_positions WHERE data_transmissao < %(cutoff)s

-- name: retention_delete_latest
DELETE FROM latest_positions WHERE data_transmissao < %(cutoff)s
