"""The outage fixture itself: a stopped server refuses, a started one answers."""

from __future__ import annotations

import pytest

from etrack.errors import DatabaseUnavailable
from etrack.store import db
from fixtures_outage import RestartableServer


@pytest.mark.slow
def test_a_stopped_server_is_unavailable_and_comes_back(
    restartable_server: RestartableServer,
) -> None:
    with db.connection(restartable_server.target) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    restartable_server.stop()
    assert not restartable_server.running()
    with pytest.raises(DatabaseUnavailable), db.connection(restartable_server.target):
        pass
    restartable_server.start()
    with db.connection(restartable_server.target) as conn:
        assert conn.execute("SELECT count(*) FROM positions").fetchone() == (0,)
