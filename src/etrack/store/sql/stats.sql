-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- Planner statistics (etrack/store/stats.py).

-- name: stats_unanalyzed_partitions
-- Partitions of positions never analyzed (reltuples = -1 since PostgreSQL 14):
-- a new month before autovacuum gets to it, or with autovacuum off.
SELECT n.nspname, c.relname
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE i.inhparent = 'positions'::regclass
   AND c.reltuples < 0
 ORDER BY c.relname

-- name: stats_partition_has_rows
SELECT EXISTS (SELECT 1 FROM {part})

-- name: stats_analyze_partition
ANALYZE {part}
