"""Nonsense values from the API are stored flagged and never reach routes.

A tiny real HTTP server plays the eTrac API and serves one history answer
poisoned with overflowing speeds and odometers, an odometer that runs
backwards and clocks reset to years 1, 1900, 1969 and 1970. The real client
fetches it, the collector parses, flags and stores it in real PostgreSQL, and
the routes are computed from what was stored.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from etrack.collect import open_collector
from etrack.config import Settings
from etrack.model import BAD_ODOMETER, BAD_SPEED, ODOMETER_BACKWARDS, TOO_OLD, VALID
from etrack.provider.client import HISTORY
from etrack.store import db
from etrack.trips.compute import compute_routes
from etrack.trips.params import RouteParams

PLATE = "ABC1234"
DAY = date(2025, 3, 4)
START = datetime(2025, 3, 4, 8, 0, 0)  # local time of the account
CLEAN_TOP_SPEED = 62.0


def wire_time(moment: datetime) -> str:
    # By hand: strftime writes year 1 as "1", the API writes four digits.
    return (
        f"{moment.day:02d}/{moment.month:02d}/{moment.year:04d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def row(moment: datetime, minute: int, **values: Any) -> dict[str, Any]:
    """A moving vehicle: ~0.6 km a minute east, odometer in step."""
    return {
        "placa": PLATE,
        "data_transmissao": wire_time(moment),
        "latitude": "-23.500000",
        "longitude": f"{-46.6 + minute * 0.006:.6f}",
        "velocidade": 40 + minute % 23,
        "ignicao": 1,
        "odometro": round(1000.0 + minute * 0.6, 2),
        "logradouro": "Rua A",
        **values,
    }


POISON: dict[int, dict[str, Any]] = {
    5: {"velocidade": 1e308},
    8: {"velocidade": -1e308},
    11: {"velocidade": "1e30"},
    14: {"odometro": 1e308},
    17: {"odometro": -1e308},
    20: {"odometro": "1e30"},
    23: {"odometro": 5.0},  # backwards: the track around it is at ~1014 km
}
EXPECTED = {
    5: BAD_SPEED,
    8: BAD_SPEED,
    11: BAD_SPEED,
    14: BAD_ODOMETER,
    17: BAD_ODOMETER,
    20: BAD_ODOMETER,
    23: ODOMETER_BACKWARDS,
}
OLD_CLOCKS = [datetime(1, 1, 1, 12), datetime(1900, 1, 1, 12), datetime(1969, 12, 31, 12)]
OLD_CLOCKS.append(datetime(1970, 1, 1, 0, 0))
MINUTES = 40


def poisoned_answer() -> dict[str, Any]:
    rows = [
        row(START + timedelta(minutes=minute), minute, **POISON.get(minute, {}))
        for minute in range(MINUTES)
    ]
    # Clocks reset: otherwise perfect rows (a plausible speed and odometer).
    rows += [row(moment, 30 + i) for i, moment in enumerate(OLD_CLOCKS)]
    return {"terminal": {"placa": PLATE, "descricao": "Caminhao 1"}, "posicoes": rows}


class _Api(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/").endswith(HISTORY):
            status, body = 200, json.dumps(poisoned_answer()).encode()
        else:
            status, body = 404, json.dumps({"erro": "not served here"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # the test output stays clean
        pass


@pytest.fixture
def poisoned_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_nonsense_values_are_flagged_and_kept_out_of_routes(
    poisoned_api: str, settings: Settings, target: db.Target
) -> None:
    current = settings.model_copy(
        update={
            "etrac_api_base": poisoned_api,
            "etrac_user": "user",
            "etrac_key": SecretStr("key"),
            "etrac_rate_limit": 500.0,
        }
    )

    async def fetch() -> None:
        async with open_collector(current, target) as collector:
            stats = await collector.fetch_history_day(PLATE, DAY)
            assert stats.inserted == MINUTES + len(OLD_CLOCKS)

    asyncio.run(fetch())
    tz = current.tz
    with db.connection(target) as conn:
        stored = {
            ts.astimezone(tz).replace(tzinfo=None): (quality, speed, odometer)
            for ts, quality, speed, odometer in conn.execute(
                "SELECT data_transmissao, quality, velocidade, odometro FROM positions"
                " WHERE placa = %s",
                [PLATE],
            )
        }
    assert len(stored) == MINUTES + len(OLD_CLOCKS)
    for minute in range(MINUTES):
        quality, speed, odometer = stored[START + timedelta(minutes=minute)]
        assert quality == EXPECTED.get(minute, VALID), (minute, quality, speed, odometer)
    # Raw values are kept: flagged, not dropped or clamped.
    assert stored[START + timedelta(minutes=5)][1] == 1e308
    assert stored[START + timedelta(minutes=8)][1] == -1e308
    assert stored[START + timedelta(minutes=14)][2] == 1e308
    assert stored[START + timedelta(minutes=20)][2] == 1e30
    for moment in OLD_CLOCKS:
        assert stored[moment][0] == TOO_OLD, moment

    old_days = sorted({moment.date() for moment in OLD_CLOCKS})
    compute_routes(
        target, RouteParams.from_settings(current), plates=[PLATE], days=[DAY, *old_days]
    )
    with db.connection(target) as conn:
        routes = {
            day: (points, max_speed, invalid)
            for day, points, max_speed, invalid in conn.execute(
                "SELECT rota_date, point_count, max_speed_kmh, invalid_count FROM routes"
                " WHERE placa = %s",
                [PLATE],
            )
        }
    points, max_speed, invalid = routes[DAY]
    assert points == MINUTES - len(POISON)
    assert invalid == len(POISON)
    clean_speeds = [40 + m % 23 for m in range(MINUTES) if m not in POISON]
    assert max_speed == max(clean_speeds) == CLEAN_TOP_SPEED
    for day in old_days:
        assert routes.get(day, (0, None, 0))[0] == 0, (day, routes.get(day))
