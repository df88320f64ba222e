-- etrack's SQL, one named block per statement (see etrack/store/queries.py).
-- Every connection's search_path is the etrack schema, so names are unqualified.

-- Schema bookkeeping: applied migrations, monthly partitions of positions
-- (etrack/store/migrations.py).

-- name: create_migrations_table
-- Bookkeeping of applied migrations (also filled by e-track/schema.sql).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)

-- name: applied_migrations
SELECT version, name, applied_at FROM schema_migrations ORDER BY version

-- name: record_migration
INSERT INTO schema_migrations (version, name) VALUES (%(version)s, %(name)s)

-- name: migrations_table_exists
SELECT to_regclass('schema_migrations') IS NOT NULL

-- name: current_schema_version
SELECT coalesce(max(version), 0) FROM schema_migrations

-- name: ensure_positions_partition
SELECT ensure_positions_partition(%(ts)s)
