"""Describe a schema from the catalog, to compare two ways of building it.

Procrastinate's objects (procrastinate_*) are left out: `etrack db upgrade`
installs them after the migrations, schema.sql does not carry them.
"""

from __future__ import annotations

from typing import Any

import psycopg

_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind::text, coalesce(pg_get_expr(c.relpartbound, c.oid), '')
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
           AND c.relname !~ '^positions_y[0-9]{4}m[0-9]{2}$'
           AND c.relname NOT LIKE 'procrastinate%%'
         ORDER BY 1""",
    "columns": """
        SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
          FROM information_schema.columns
         WHERE table_schema = %(schema)s AND table_name !~ '^positions_y[0-9]{4}m[0-9]{2}$'
           AND table_name NOT LIKE 'procrastinate%%'
         ORDER BY 1, ordinal_position""",
    "constraints": """
        SELECT cl.relname, co.conname, pg_get_constraintdef(co.oid)
          FROM pg_constraint co JOIN pg_class cl ON cl.oid = co.conrelid
          JOIN pg_namespace n ON n.oid = cl.relnamespace
         WHERE n.nspname = %(schema)s AND cl.relname !~ '^positions_y[0-9]{4}m[0-9]{2}$'
           AND cl.relname NOT LIKE 'procrastinate%%'
         ORDER BY 1, 2""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
         WHERE schemaname = %(schema)s AND tablename !~ '^positions_y[0-9]{4}m[0-9]{2}$'
           AND tablename NOT LIKE 'procrastinate%%'
         ORDER BY 1, 2""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = %(schema)s AND p.proname NOT LIKE 'procrastinate%%'
         ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
          FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = %(schema)s AND NOT t.tgisinternal
           AND c.relname NOT LIKE 'procrastinate%%' ORDER BY 1, 2""",
    "migrations": "SELECT version, name FROM {schema}.schema_migrations ORDER BY 1",
}


def describe_schema(conn: psycopg.Connection[Any], schema: str) -> dict[str, list[tuple[Any, ...]]]:
    # Definitions render schema-qualified names relative to search_path:
    # pin it so both sides render alike.
    conn.execute("SET search_path TO pg_catalog")
    described = {}
    for key, text in _QUERIES.items():
        statement = text.replace("{schema}", schema)
        described[key] = [tuple(row) for row in conn.execute(statement, {"schema": schema})]
    return described
