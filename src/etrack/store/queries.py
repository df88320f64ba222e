"""All SQL lives in sql/queries.sql as named blocks; this loads them.

A block starts with a line `-- name: some_name`; the comment lines right after
it are its documentation, the rest up to the next block is the statement.
Keeping SQL in one file keeps it visible and greppable.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def all_queries() -> dict[str, str]:
    text = resources.files("etrack").joinpath("store/sql/queries.sql").read_text(encoding="utf-8")
    parts = _BLOCK.split(text)
    queries: dict[str, str] = {}
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"queries.sql defines {name!r} twice")
        statement = "\n".join(
            line for line in body.strip().splitlines() if not line.startswith("--")
        ).strip()
        queries[name] = statement
    return queries


def query(name: str) -> str:
    """The SQL of the block `name` in queries.sql."""
    return all_queries()[name]
