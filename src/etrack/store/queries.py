"""All SQL lives in sql/*.sql as named blocks, one file per concern
(schema, positions, routes, web, jobs, retention, accounts); this loads them.

A block starts with a line `-- name: some_name`; the comment lines right after
it are its documentation, the rest up to the next block is the statement.
Names are unique across the files. Keeping SQL in plain files keeps it
visible and greppable.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import LiteralString

__all__ = ["all_queries", "query"]

_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def all_queries() -> dict[str, LiteralString]:
    folder = resources.files("etrack").joinpath("store/sql")
    queries: dict[str, LiteralString] = {}
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    for file in files:
        parts = _BLOCK.split(file.read_text(encoding="utf-8"))
        # parts = [preamble, name1, body1, name2, body2, ...]
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"sql/{file.name} defines {name!r}, already defined")
            statement = "\n".join(
                line for line in body.strip().splitlines() if not line.startswith("--")
            ).strip()
            queries[name] = statement
    return queries


def query(name: str) -> LiteralString:
    """The SQL of the block `name`.

    Typed as literal SQL (what psycopg and Procrastinate ask for): the text
    comes from the package's own .sql files, never from a request.
    """
    return all_queries()[name]
