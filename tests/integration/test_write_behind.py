"""store.db.WriteBehind against a real PostgreSQL: items written in the
order put, on a connection of its own, all of them by close(); an error of
the writer is raised in the caller's thread and stops the writing."""

from __future__ import annotations

import pytest

from etrack.store import db


def make_table(conn: db.Conn) -> None:
    conn.execute("CREATE TABLE behind (n integer PRIMARY KEY, thread_conn integer)")


def test_items_are_written_in_order_by_close(conn: db.Conn, target: db.Target) -> None:
    make_table(conn)
    mine = conn.info.backend_pid

    def write(writer: db.Conn, n: int) -> None:
        writer.execute("INSERT INTO behind VALUES (%s, %s)", (n, writer.info.backend_pid))

    with db.WriteBehind(target, write, depth=2) as behind:
        for n in range(20):
            behind.put(n)
    rows = conn.execute("SELECT n, thread_conn FROM behind ORDER BY n").fetchall()
    assert [n for n, _ in rows] == list(range(20))
    (writer_pid,) = {pid for _, pid in rows}
    assert writer_pid != mine


def test_an_error_of_the_writer_is_raised_here_and_stops_it(
    conn: db.Conn, target: db.Target
) -> None:
    make_table(conn)

    def write(writer: db.Conn, n: int) -> None:
        if n == 3:
            raise ValueError("item 3 is bad")
        writer.execute("INSERT INTO behind VALUES (%s, NULL)", (n,))

    def put_all() -> None:
        # The error surfaces at a later put (the writer is behind) or at close.
        for n in range(100):
            behind.put(n)
        behind.close()

    behind = db.WriteBehind(target, write, depth=1)
    with pytest.raises(ValueError, match="item 3 is bad"):
        put_all()
    with pytest.raises(ValueError, match="item 3 is bad"):
        behind.close()
    written = [n for (n,) in conn.execute("SELECT n FROM behind ORDER BY n").fetchall()]
    assert written == [0, 1, 2]
