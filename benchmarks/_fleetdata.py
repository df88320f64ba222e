"""A big, realistic fleet history for the scale and web benchmarks.

`load_fleet(target, vehicles=2000, days=5, rows_per_day=100)` fills an empty
etrack database the way months of ingest would: `positions` (monthly
partitions made by the project's own `ensure_positions_partition`, through
`etrack.store.positions.PartitionKeeper`), `terminals` and
`latest_positions` as the ingest keeps them, then the stored routes and day
summaries of every plate-day (`etrack.trips.compute.compute_routes`), then
ANALYZE.

The positions are generated inside PostgreSQL (one `INSERT ... SELECT` from
generate_series per local day, rows in time order as the live ingest appends
them, so the BRIN index on data_transmissao is as tight as in production).
Each vehicle drives a loop of greater São Paulo: per day, cycles of 20 fixes
two minutes apart while driving (ignition on, cruise speed 35-75 km/h with
noise, at most 90) then 5 fixes 25 minutes apart while parked (speed 0, the
first with the ignition on: idling), starting between 06:00 and 07:00 local
time; the next day goes on from where the vehicle stopped, the odometer (km)
only grows. Every row is quality 'valid' with a raw JSON of about 300 bytes,
the fields the provider's history rows carry, so `prune --raw-only` has
something to clear.

`day_rows(conn, fleet, day)` gives the same rows for any other day as
`etrack.model.Position` tuples (the benchmarks' "new day's ingest").
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from etrack.model import Position
from etrack.store import db
from etrack.store import positions as ingest
from etrack.trips.compute import RoutesSummary, compute_routes
from etrack.trips.params import RouteParams

__all__ = ["TZ", "Fleet", "day_rows", "default_end_day", "load_fleet", "make_plates"]

TZ = ZoneInfo("America/Sao_Paulo")

FLEETS = ("Norte", "Sul", "Leste", "Oeste", "Centro", "ABC", "Guarulhos", "Osasco")
MODELS = ("Volvo FH 540", "Scania R450", "Mercedes Actros", "VW Delivery 11.180",
          "Iveco Daily", "Fiat Fiorino", "Renault Master", "Ford Cargo 1119")  # fmt: skip
STREETS = ("Av. Paulista", "Rua Augusta", "Av. Brig. Faria Lima", "Marginal Tietê",
           "Marginal Pinheiros", "Av. do Estado", "Rod. Anhanguera", "Rod. dos Bandeirantes",
           "Av. Rebouças", "Rua da Consolação", "Av. Ipiranga", "Rod. Régis Bittencourt",
           "Av. Interlagos", "Estr. do M'Boi Mirim", "Av. Jabaquara", "Rod. Presidente Dutra")  # fmt: skip
CITIES = ("São Paulo", "Guarulhos", "Osasco", "Santo André", "São Bernardo do Campo",
          "Diadema", "Barueri", "Taboão da Serra")  # fmt: skip

# Fixes per cycle: DRIVE two minutes apart, then PARK 25 minutes apart.
DRIVE, PARK = 20, 5


def default_end_day() -> date:
    """Yesterday in São Paulo: every loaded day is a past day (stored routes served)."""
    return datetime.now(TZ).date() - timedelta(days=1)


def make_plates(count: int, seed: int = 15) -> list[str]:
    """Distinct real-looking Brazilian plates, sorted: about a third in the old
    format (ABC1234), the rest Mercosul (ABC1D23); first letters B-G, as São
    Paulo's ranges."""
    rng = random.Random(seed)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    found: set[str] = set()
    while len(found) < count:
        head = rng.choice("BCDEFG") + rng.choice(letters) + rng.choice(letters)
        if rng.random() < 0.35:
            plate = f"{head}{rng.randrange(10000):04d}"
        else:
            plate = f"{head}{rng.randrange(10)}{rng.choice(letters)}{rng.randrange(100):02d}"
        found.add(plate)
    return sorted(found)


@dataclass(slots=True)
class Fleet:
    """What was loaded, and how long each step took."""

    plates: list[str]
    days: list[date]
    rows_per_day: int
    rows: int = 0
    load_s: float = 0.0
    latest_s: float = 0.0
    routes_s: float = 0.0
    analyze_s: float = 0.0
    routes: RoutesSummary = field(default_factory=RoutesSummary)

    @property
    def first_day(self) -> date:
        return self.days[0]

    @property
    def end_day(self) -> date:
        return self.days[-1]

    def lines(self) -> list[str]:
        plate_days = len(self.plates) * len(self.days)
        return [
            f"loaded {self.rows:,} positions ({len(self.plates):,} vehicles x {len(self.days)} "
            f"days {self.first_day} .. {self.end_day} x {self.rows_per_day} rows) in "
            f"{self.load_s:.1f} s ({self.rows / max(self.load_s, 1e-9):,.0f} rows/s, "
            "generated in PostgreSQL)",
            f"terminals + latest_positions in {self.latest_s:.1f} s",
            f"stored routes + day summaries of {plate_days:,} plate-days with compute_routes in "
            f"{self.routes_s:.1f} s ({plate_days / max(self.routes_s, 1e-9):,.0f} plate-days/s; "
            f"{self.routes.line()})",
            f"ANALYZE in {self.analyze_s:.1f} s",
        ]


# One local day of fixes for every plate: (placa, p) from the plate list; k the
# fix of the day; c its cycle, j its place in the cycle. The time scale `scale`
# squeezes the cycles into 05:00-23:00 when rows_per_day is large. The
# vehicle's loop: centre (clat, clon), radius r_km, start angle theta0;
# `steps` counts the driving fixes since the first loaded day, each
# step_km along the loop.
_DAY_ROWS = """
WITH plates AS (
    SELECT u.placa, (u.n - 1)::int AS p
      FROM unnest(%(plates)s::text[]) WITH ORDINALITY AS u(placa, n)
), params AS (
    SELECT pl.placa, pl.p,
           35 + (pl.p * 37) %% 40 AS cruise,
           4.0 + (pl.p * 13) %% 12 AS r_km,
           -23.55 + ((pl.p * 7919) %% 1000 - 500) / 2200.0 AS clat,
           -46.63 + ((pl.p * 104729) %% 1000 - 500) / 1800.0 AS clon,
           2 * pi() * ((pl.p * 0.6180339887) - floor(pl.p * 0.6180339887)) AS theta0,
           360 + (pl.p * 17) %% 60 AS start_min
      FROM plates pl
), fixes AS (
    SELECT pr.*, k, k / %(cycle)s AS c, k %% %(cycle)s AS j,
           (pr.cruise * 2 * %(scale)s / 60.0) AS step_km
      FROM params pr CROSS JOIN generate_series(0, %(rows)s - 1) AS k
), timed AS (
    SELECT f.*,
           (f.j < %(drive)s) AS driving,
           %(day_index)s::bigint * %(drives_per_day)s + f.c * %(drive)s
               + least(f.j, %(drive)s - 1) AS steps,
           (%(day)s::date::timestamp AT TIME ZONE 'America/Sao_Paulo')
             + make_interval(secs => 60 * (f.start_min + %(scale)s * (
                   f.c * 165 + CASE WHEN f.j < %(drive)s THEN 2 * f.j
                                    ELSE 45 + 25 * (f.j - %(drive)s) END)))
             AS ts
      FROM fixes f
), shaped AS (
    SELECT t.placa, t.p, t.k, t.j, t.ts, t.driving,
           t.ts + make_interval(secs => 5 + t.p %% 20) AS recorded,
           t.clat + (t.r_km / 111.32) * sin(t.theta0 + t.steps * t.step_km / t.r_km) AS lat,
           t.clon + (t.r_km / (111.32 * 0.9167)) * cos(t.theta0 + t.steps * t.step_km / t.r_km)
               AS lon,
           CASE WHEN t.driving
                THEN least(90, greatest(5, t.cruise + (t.p * 31 + t.k * 17 + %(day_index)s * 7) %% 21 - 10))
                ELSE 0 END::double precision AS speed,
           (t.driving OR t.j = %(drive)s) AS ignition,
           round((1000 + (t.p * 7877) %% 90000 + t.steps * t.step_km)::numeric, 2)::float8 AS odo,
           round((500 + (t.p * 31) %% 4000 + t.steps * 2 * %(scale)s / 60.0)::numeric, 2)::float8
               AS hours,
           round((12.4 + ((t.p + t.k) %% 17) / 10.0)::numeric, 1)::float8 AS battery,
           (%(streets)s::text[])[1 + (t.p + t.steps / 7) %% %(n_streets)s] || ', '
               || (10 + (t.p * 131 + t.steps * 7) %% 3000) || ' - '
               || (%(cities)s::text[])[1 + t.p %% %(n_cities)s] || ' - SP' AS address,
           'Veículo ' || lpad((t.p + 1)::text, 4, '0') || ' - '
               || (%(models)s::text[])[1 + t.p %% %(n_models)s] AS descricao,
           'Frota ' || (%(fleets)s::text[])[1 + (t.p * 7) %% %(n_fleets)s] AS frota,
           (3000000 + t.p * 7919)::text AS serial
      FROM timed t
)
SELECT s.placa, s.ts, s.recorded, s.lat, s.lon, s.speed, s.ignition, s.odo, s.hours,
       s.battery, s.address,
       jsonb_build_object(
           'placa', s.placa, 'descricao', s.descricao, 'frota', s.frota,
           'equipamento_serial', s.serial,
           'data_transmissao', to_char(s.ts AT TIME ZONE 'America/Sao_Paulo',
                                       'DD/MM/YYYY HH24:MI:SS'),
           'latitude', to_char(s.lat, 'FM990.000000'),
           'longitude', to_char(s.lon, 'FM990.000000'),
           'logradouro', s.address, 'velocidade', s.speed::int,
           'ignicao', CASE WHEN s.ignition THEN 1 ELSE 0 END,
           'odometro', s.odo, 'horimetro', s.hours,
           'bateria', s.battery) AS raw,
       s.descricao, s.frota, s.serial
  FROM shaped s
"""

_INSERT_DAY = f"""
INSERT INTO positions (placa, data_transmissao, data_gravacao, latitude, longitude, velocidade,
    ignicao, odometro, horimetro, bateria, logradouro, quality, raw)
SELECT placa, ts, recorded, lat, lon, speed, ignition, odo, hours, battery, address, 'valid', raw
  FROM ({_DAY_ROWS}) d
 ORDER BY ts, placa
"""

# latest_positions and terminals as the ingest leaves them: each plate's
# newest valid row (all rows are valid), found in the last loaded day.
_LATEST = """
INSERT INTO latest_positions AS l (placa, data_transmissao, data_gravacao, latitude, longitude,
    velocidade, ignicao, odometro, odometro_can, horimetro, bateria, logradouro)
SELECT DISTINCT ON (placa) placa, data_transmissao, data_gravacao, latitude, longitude,
       velocidade, ignicao, odometro, odometro_can, horimetro, bateria, logradouro
  FROM positions
 WHERE data_transmissao >= %(lo)s AND quality = 'valid'
 ORDER BY placa, data_transmissao DESC
ON CONFLICT (placa) DO UPDATE SET
    data_transmissao = EXCLUDED.data_transmissao, data_gravacao = EXCLUDED.data_gravacao,
    latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
    velocidade = EXCLUDED.velocidade, ignicao = EXCLUDED.ignicao,
    odometro = EXCLUDED.odometro, odometro_can = EXCLUDED.odometro_can,
    horimetro = EXCLUDED.horimetro, bateria = EXCLUDED.bateria,
    logradouro = EXCLUDED.logradouro, updated_at = now()
WHERE EXCLUDED.data_transmissao > l.data_transmissao
"""

_TERMINALS = """
INSERT INTO terminals AS t (placa, placa_raw, descricao, frota, equipamento_serial, first_seen,
    updated_at, last_position_ts, last_latitude, last_longitude, raw)
SELECT DISTINCT ON (placa) placa, placa, raw ->> 'descricao', raw ->> 'frota',
       raw ->> 'equipamento_serial', %(first_seen)s, now(), data_transmissao, latitude,
       longitude, raw
  FROM positions
 WHERE data_transmissao >= %(lo)s
 ORDER BY placa, data_transmissao DESC
ON CONFLICT (placa) DO UPDATE SET
    last_position_ts = EXCLUDED.last_position_ts, last_latitude = EXCLUDED.last_latitude,
    last_longitude = EXCLUDED.last_longitude, raw = EXCLUDED.raw, updated_at = now()
WHERE EXCLUDED.last_position_ts > t.last_position_ts
"""


def _day_args(fleet: Fleet, day: date) -> dict[str, object]:
    cycles = -(-fleet.rows_per_day // (DRIVE + PARK))
    # The day's cycles fit in 05:00-23:00 whatever rows_per_day.
    scale = min(1.0, (18 * 60 - 60) / (165 * cycles))
    return {
        "plates": fleet.plates,
        "rows": fleet.rows_per_day,
        "cycle": DRIVE + PARK,
        "drive": DRIVE,
        "drives_per_day": cycles * DRIVE,
        "scale": scale,
        "day": day,
        "day_index": (day - fleet.first_day).days,
        "streets": list(STREETS),
        "n_streets": len(STREETS),
        "cities": list(CITIES),
        "n_cities": len(CITIES),
        "models": list(MODELS),
        "n_models": len(MODELS),
        "fleets": list(FLEETS),
        "n_fleets": len(FLEETS),
    }


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), TZ)


def load_fleet(
    target: db.Target,
    *,
    vehicles: int = 2000,
    days: int = 5,
    rows_per_day: int = 100,
    end_day: date | None = None,
    params: RouteParams | None = None,
    log: bool = True,
) -> Fleet:
    """Fill an empty database with `vehicles` x `days` local days (ending on
    `end_day`, default yesterday in São Paulo) x `rows_per_day` positions,
    their terminals, latest_positions, stored routes and day summaries."""
    last = end_day or default_end_day()
    fleet = Fleet(
        plates=make_plates(vehicles),
        days=[last - timedelta(days=n) for n in range(days - 1, -1, -1)],
        rows_per_day=rows_per_day,
    )
    started = time.perf_counter()
    with db.connection(target, autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET synchronous_commit = off")
        keeper = ingest.PartitionKeeper()
        bounds = [_local_midnight(d) for d in [*fleet.days, last + timedelta(days=1)]]
        keeper.ensure(conn, [b.astimezone(UTC) for b in bounds])
        for n, day in enumerate(fleet.days):
            cur = conn.execute(_INSERT_DAY, _day_args(fleet, day))
            fleet.rows += cur.rowcount
            if log and (n % 10 == 9 or n == len(fleet.days) - 1):
                elapsed = time.perf_counter() - started
                print(f"  ... {n + 1}/{len(fleet.days)} days, {fleet.rows:,} rows, {elapsed:.0f} s")
        fleet.load_s = time.perf_counter() - started
        started = time.perf_counter()
        lo = _local_midnight(last)
        conn.execute(_LATEST, {"lo": lo})
        conn.execute(_TERMINALS, {"lo": lo, "first_seen": _local_midnight(fleet.first_day)})
        conn.execute("ANALYZE terminals")
        conn.execute("ANALYZE latest_positions")
        conn.execute("ANALYZE positions")
        fleet.latest_s = time.perf_counter() - started
    started = time.perf_counter()
    fleet.routes = compute_routes(
        target, params or RouteParams(tz=TZ), plates=fleet.plates, days=fleet.days
    )
    fleet.routes_s = time.perf_counter() - started
    started = time.perf_counter()
    with db.connection(target, autocommit=True) as conn:
        conn.execute("ANALYZE")
    fleet.analyze_s = time.perf_counter() - started
    return fleet


def day_rows(conn: db.Conn, fleet: Fleet, day: date) -> list[list[Position]]:
    """The fleet's rows of `day` (any day, loaded or not) as Positions, one
    list per plate (a plate-day each), raw JSON included."""
    per_plate: dict[str, list[Position]] = {}
    for r in conn.execute(_DAY_ROWS + " ORDER BY s.placa, s.ts", _day_args(fleet, day)):
        placa, ts, recorded, lat, lon, speed, ignition, odo, hours, battery, address = r[:11]
        raw, descricao, frota, serial = r[11:]
        per_plate.setdefault(placa, []).append(
            Position(
                placa, ts, lat, lon, speed, ignition, odo, None, hours, battery, address,
                descricao, frota, serial, recorded, placa, "valid",
                raw if isinstance(raw, dict) else orjson.loads(raw),
            )
        )  # fmt: skip
    return list(per_plate.values())
