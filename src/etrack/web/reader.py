"""What the web reads from the database: small async functions over the
named blocks of store/sql/web.sql, returning plain data the handlers hand on.

The web uses an async pool of its own (etrack.store.db.AsyncPool, so the
session options and the outage -> DatabaseUnavailable conversion are the
store's): handlers await the database instead of parking a thread per
request, which is what keeps latency flat with many clients at once.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from psycopg.rows import dict_row
from psycopg.types.numeric import FloatLoader

from etrack.access.principal import Scope
from etrack.store import db
from etrack.store.queries import query
from etrack.trips.day import DayRoute, compute_sorted, day_bounds
from etrack.trips.params import RouteParams
from etrack.web.scope import current_scope

__all__ = [
    "BodyCache",
    "Encoded",
    "FleetCache",
    "FleetSnapshot",
    "Reader",
    "Vehicle",
    "open_pool",
    "vehicle_state",
]

STALE_AFTER = timedelta(hours=1)
# How long the plate list of an account scope is reused (a plate moving
# between accounts shows up in the right scope after this).
VISIBLE_TTL_S = 5.0


async def _numbers_as_floats(conn: db.AsyncConn) -> None:
    # Stored day summaries are rounded `numeric`s: as Decimals they cost the
    # report a third of its Python time to load and again to encode as JSON
    # (measured on a 5,000-row page: 24 ms -> 14 ms); a double holds them.
    conn.adapters.register_loader("numeric", FloatLoader)


async def open_pool(target: db.Target, *, max_size: int = 10) -> db.AsyncPool:
    """An opened pool. It does not wait for the database: the UI starts (and
    /healthz says why it is degraded) while PostgreSQL is down."""
    pool = db.AsyncPool(
        target,
        application_name="etrack-web",
        interactive=True,
        min_size=1,
        max_size=max_size,
        open=False,
        timeout=10,
        kwargs={"connect_timeout": 5, "autocommit": True},
        configure=_numbers_as_floats,
    )
    await pool.open(wait=False)
    return pool


@dataclass(frozen=True, slots=True)
class Vehicle:
    placa: str
    descricao: str | None
    frota: str | None
    last_report: datetime | None
    ts: datetime | None
    lat: float | None
    lon: float | None
    speed_kmh: float | None
    ignition: bool | None
    address: str | None
    state: str


def vehicle_state(
    ts: datetime | None,
    speed: float | None,
    ignition: bool | None,
    now: datetime,
    moving_kmh: float,
) -> str:
    """moving / idle (ignition on, stopped) / off / stale (no report for an hour) / unknown."""
    if ts is None:
        return "unknown"
    if now - ts > STALE_AFTER:
        return "stale"
    if speed is not None and speed >= moving_kmh:
        return "moving"
    if ignition:
        return "idle"
    return "off"


def _listed(values: frozenset[str] | None) -> list[str] | None:
    return sorted(values) if values is not None else None


class Reader:
    """The web's reads, over one pool.

    Every row carrying a plate passes the request's account scope
    (etrack.web.scope): a user restricted to some accounts never receives
    another account's plate, whichever page or endpoint asked.
    """

    def __init__(
        self, pool: db.AsyncPool, params: RouteParams, *, fallback_account: str = "default"
    ) -> None:
        self.pool = pool
        self.params = params
        self.fallback_account = fallback_account
        self._visible: dict[Scope, tuple[float, frozenset[str]]] = {}

    async def _fetch(self, name: str, args: dict[str, Any] | None) -> list[dict[str, Any]]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query(name), args or {})
            return await cur.fetchall()

    async def visible_plates(self) -> frozenset[str] | None:
        """The plates of the request's scope; None when it holds every vehicle."""
        scope = current_scope()
        if scope.everything:
            return None
        return await self.plates_of(scope)

    async def plates_of(self, scope: Scope) -> frozenset[str]:
        """The plates of this scope's accounts, fleets and plates (kept a few seconds)."""
        cached = self._visible.get(scope)
        if cached is not None and time.monotonic() - cached[0] < VISIBLE_TTL_S:
            return cached[1]
        rows = await self._fetch(
            "scope_plates",
            {
                "fallback": self.fallback_account,
                "accounts": _listed(scope.accounts),
                "fleets": _listed(scope.fleets),
                "plates": _listed(scope.plates),
            },
        )
        plates = frozenset(str(r["placa"]) for r in rows)
        self._visible[scope] = (time.monotonic(), plates)
        return plates

    async def account_states(
        self, configured: Sequence[str], logins: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """State of each account in the request's scope (configured ones
        first, in the file's order; 'unknown' until its first fetch), with
        its API pace when *logins* (name -> pace row key) are given."""
        rows = {
            str(r["name"]): r
            for r in await self._fetch("accounts_states", {"fallback": self.fallback_account})
        }
        paces = {str(r["account"]): r for r in await self._fetch("rates_all", {})} if logins else {}
        accounts = await self._scope_accounts()
        names = [n for n in configured if accounts is None or n in accounts]
        out = []
        for name in names:
            r = rows.get(name)
            out.append(
                {
                    "name": name,
                    "state": r["state"] if r else "unknown",
                    "reason": r["reason"] if r else None,
                    "vehicles": int(r["vehicles"]) if r else 0,
                    "last_success_at": r["last_success_at"] if r else None,
                    "retry_at": r["retry_at"] if r and r["state"] == "failing" else None,
                    "pace": paces.get((logins or {}).get(name, "")),
                }
            )
        return out

    async def _scope_accounts(self) -> frozenset[str] | None:
        """The accounts a request may name: its scope's, or for a scope of
        fleets or plates, the accounts of its vehicles (never the others')."""
        scope = current_scope()
        if scope.fleets is None and scope.plates is None:
            return scope.accounts
        plates = await self.visible_plates() or frozenset()
        rows = await self._fetch("accounts_plate_owners", {"plates": sorted(plates)})
        return frozenset(str(r["account"] or self.fallback_account) for r in rows)

    async def can_see(self, placa: str) -> bool:
        visible = await self.visible_plates()
        return visible is None or placa in visible

    async def rows(self, name: str, args: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        visible = await self.visible_plates()
        if visible is not None and not _may_ask(args, visible):
            return []
        found = await self._fetch(name, args)
        if visible is None:
            return found
        kept = [r for r in found if "placa" not in r or r["placa"] in visible]
        for r in kept:
            if isinstance(r.get("plates"), list):
                r["plates"] = [p for p in r["plates"] if p in visible]
        return kept

    async def row(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any] | None:
        found = await self.rows(name, args)
        return found[0] if found else None

    async def scalar(self, name: str, args: dict[str, Any] | None = None) -> Any:
        visible = await self.visible_plates()
        if visible is not None and not _may_ask(args, visible):
            return None
        async with self.pool.connection() as conn:
            cur = await conn.execute(query(name), args or {})
            found = await cur.fetchone()
            return found[0] if found else None

    async def ping(self) -> float:
        """Seconds one trivial query takes; raises when the database does not answer."""
        started = time.perf_counter()
        await self.scalar("web_ping")
        return time.perf_counter() - started

    # ------------------------------------------------------------- vehicles
    async def vehicle_rows(self) -> list[dict[str, Any]]:
        """Every vehicle of the scope with its newest valid position (latest_positions)."""
        return await self.rows("web_vehicles_latest")

    def fleet_snapshot(self, rows: Sequence[Mapping[str, Any]]) -> FleetSnapshot:
        """The snapshot of *rows* (from `vehicle_rows`), states as of now."""
        now = datetime.now(UTC)
        moving = self.params.moving_speed_kmh
        vehicles = [
            Vehicle(
                placa=r["placa"],
                descricao=r["descricao"],
                frota=r["frota"],
                last_report=r["last_position_ts"],
                ts=r["data_transmissao"],
                lat=r["latitude"],
                lon=r["longitude"],
                speed_kmh=r["velocidade"],
                ignition=r["ignicao"],
                address=r["logradouro"],
                state=vehicle_state(
                    r["last_position_ts"], r["velocidade"], r["ignicao"], now, moving
                ),
            )
            for r in rows
        ]
        return FleetSnapshot(vehicles, now)

    async def vehicle(self, placa: str) -> dict[str, Any] | None:
        return await self.row("web_vehicle", {"placa": placa})

    async def positions(
        self, placa: str, lo: datetime, hi: datetime, limit: int
    ) -> list[dict[str, Any]]:
        return await self.rows(
            "web_positions_page", {"placa": placa, "lo": lo, "hi": hi, "limit": limit}
        )

    async def fleets(self) -> list[str]:
        return [str(r["frota"]) for r in await self.rows("web_fleets")]

    # --------------------------------------------------------------- routes
    async def route_feature_text(self, placa: str, day: date, *, simplified: bool) -> str | None:
        if not await self.can_see(placa):
            return None
        value = await self.scalar(
            "web_route_feature_text", {"placa": placa, "day": day, "simplified": simplified}
        )
        return None if value is None else str(value)

    async def route_row(self, placa: str, day: date) -> dict[str, Any] | None:
        return await self.row("web_route_row", {"placa": placa, "day": day})

    async def route_details(
        self, placa: str, day: date
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        args = {"placa": placa, "day": day}
        trips, stops, provider = await asyncio.gather(
            self.rows("web_route_trips", args),
            self.rows("web_route_stops", args),
            self.rows("web_provider_trips", args),
        )
        return trips, stops, provider

    async def provider_trips(self, placa: str, day: date) -> list[dict[str, Any]]:
        return await self.rows("web_provider_trips", {"placa": placa, "day": day})

    async def route_days(self, placa: str, before: date, limit: int) -> list[dict[str, Any]]:
        return await self.rows("web_route_days", {"placa": placa, "before": before, "limit": limit})

    async def live_route(self, placa: str, day: date) -> DayRoute | None:
        """The day's route computed now from the stored positions (today's, or
        a day no run has stored yet); None when the day has no valid position."""
        if not await self.can_see(placa):
            return None
        params = self.params
        gap = timedelta(seconds=params.max_gap_s)
        start, end = day_bounds(day, params.tz)
        lo = datetime.fromtimestamp(start, UTC) - gap
        hi = datetime.fromtimestamp(end, UTC) + gap
        async with self.pool.connection() as conn, conn.cursor(binary=True) as cur:
            await cur.execute(
                query("routes_load_positions"), {"plates": [placa], "lo": lo, "hi": hi}
            )
            found = await cur.fetchone()
        if found is None:
            return None
        _, ts, lats, lons, speeds, ignitions, odometers, addresses = found
        route = await asyncio.to_thread(
            compute_sorted, ts, lats, lons, speeds, ignitions, odometers, addresses, day, params
        )
        return None if route.empty else route

    async def day_events(self, placa: str, day: date) -> list[dict[str, Any]]:
        """The vehicle's events overlapping the local day, in start order."""
        start, end = day_bounds(day, self.params.tz)
        return await self.rows(
            "web_day_events",
            {
                "placa": placa,
                "lo": datetime.fromtimestamp(start, UTC),
                "hi": datetime.fromtimestamp(end, UTC),
            },
        )

    # ------------------------------------------------------------ reports
    async def fleet_report(
        self, first: date, last: date, frota: str | None
    ) -> list[dict[str, Any]]:
        return await self.rows("web_fleet_report", {"first": first, "last": last, "frota": frota})


_PLATE = re.compile(r"\b[A-Z]{3}-?[0-9][A-Z0-9][0-9]{2}\b")


def hide_plates(text: str | None, visible: frozenset[str] | None) -> str | None:
    """Free text (a run's summary or error) with plates outside the scope masked."""
    if text is None or visible is None:
        return text
    return _PLATE.sub(lambda m: m[0] if m[0].replace("-", "") in visible else "•••••••", text)


def _may_ask(args: dict[str, Any] | None, visible: frozenset[str]) -> bool:
    """A query about one plate (a `placa` argument) outside the scope is not
    even run: its rows may not name the plate (route days, positions)."""
    placa = (args or {}).get("placa")
    return not isinstance(placa, str) or placa in visible


class FleetSnapshot:
    """One read of the fleet, never changed once built: the vehicles, each
    one's JSON encoded once, and which vehicles are in each state. A filter
    (/api/vehicles?state=moving) joins the fragments it keeps instead of
    encoding the fleet again; the bodies asked for are kept with the
    snapshot (gzipped at most once each)."""

    __slots__ = ("_bodies", "at", "by_plate", "by_state", "fragments", "generated_at", "vehicles")

    # Bodies kept per snapshot: the whole fleet, the states, the fleets and a
    # few plate searches; a snapshot lives a few seconds.
    BODIES = 64

    def __init__(self, vehicles: Sequence[Vehicle], generated_at: datetime) -> None:
        self.at = time.monotonic()
        self.generated_at = generated_at
        self.vehicles = tuple(vehicles)
        # Byte for byte what orjson writes for the vehicle inside a list.
        self.fragments = tuple(orjson.dumps(v) for v in self.vehicles)
        self.by_plate = {v.placa: i for i, v in enumerate(self.vehicles)}
        states: dict[str, list[int]] = {}
        for i, v in enumerate(self.vehicles):
            states.setdefault(v.state, []).append(i)
        self.by_state = {state: tuple(found) for state, found in states.items()}
        self._bodies: OrderedDict[Hashable, Encoded] = OrderedDict()

    def select(
        self, plate: str | None = None, frota: str | None = None, state: str | None = None
    ) -> Sequence[int]:
        """Indexes of the vehicles whose plate holds *plate*, of fleet *frota*
        and in *state* (each when given), in plate order."""
        found: Sequence[int] = self.by_state.get(state, ()) if state else range(len(self.vehicles))
        if not (plate or frota):
            return found
        vehicles = self.vehicles
        return [
            i
            for i in found
            if (not plate or plate in vehicles[i].placa)
            and (not frota or vehicles[i].frota == frota)
        ]

    def array(self, indexes: Sequence[int]) -> bytes:
        """The JSON array of those vehicles, from their fragments."""
        fragments = self.fragments
        return b"[" + b",".join([fragments[i] for i in indexes]) + b"]"

    def encoded(self, key: Hashable, build: Callable[[FleetSnapshot], bytes]) -> Encoded:
        """`build(self)` once per *key* for this snapshot."""
        body = self._bodies.get(key)
        if body is None:
            body = self._bodies[key] = Encoded(build(self))
            while len(self._bodies) > self.BODIES:
                self._bodies.popitem(last=False)
        return body


class FleetCache:
    """The fleet snapshot, shared by every request for a few seconds.

    The fleet map polls every 30 s from every open browser and the data only
    changes when a fetch lands (every 2 min by default): one database read
    serves them all. No lock is held while a refresh runs: the request that
    finds the snapshot old starts one refresh and waits for it (so an outage
    reaches it as a 503), requests arriving meanwhile get the previous
    snapshot at once, and only when there is none yet do they wait for that
    same refresh.
    """

    def __init__(self, reader: Reader, ttl_s: float = 5.0) -> None:
        self.reader = reader
        self.ttl_s = ttl_s
        # One snapshot per account scope: a restricted request never gets
        # the snapshot another scope filled.
        self._snapshots: dict[Scope, FleetSnapshot] = {}
        self._refreshes: dict[Scope, asyncio.Future[FleetSnapshot]] = {}
        # Bumped by clear(): a refresh started before it does not store its result.
        self._generation = 0

    async def snapshot(self) -> FleetSnapshot:
        scope = current_scope()
        current = self._snapshots.get(scope)
        if current is not None and time.monotonic() - current.at < self.ttl_s:
            return current
        refresh = self._refreshes.get(scope)
        # A refresh left behind by another event loop (a test client's
        # request that was cancelled) will never finish in this one.
        if refresh is None or refresh.get_loop() is not asyncio.get_running_loop():
            # The task copies the request's context, so it reads with its scope.
            refresh = asyncio.ensure_future(self._refresh(scope, self._generation))
            self._refreshes[scope] = refresh
            refresh.add_done_callback(lambda done: self._refreshed(scope, done))
        elif current is not None:
            return current
        # Shielded: a request that goes away does not cancel the refresh
        # others wait for.
        return await asyncio.shield(refresh)

    async def _refresh(self, scope: Scope, generation: int) -> FleetSnapshot:
        rows = await self.reader.vehicle_rows()
        # Building the vehicles and their JSON is ~5 us a vehicle: off the
        # event loop, so other requests go on while it runs.
        snapshot = await asyncio.to_thread(self.reader.fleet_snapshot, rows)
        if generation == self._generation:
            self._snapshots[scope] = snapshot
        return snapshot

    def _refreshed(self, scope: Scope, done: asyncio.Future[FleetSnapshot]) -> None:
        if self._refreshes.get(scope) is done:
            del self._refreshes[scope]
        if not done.cancelled():
            done.exception()  # retrieved: the waiting requests got it already

    def clear(self) -> None:
        """Forget every snapshot: the next request reads the database."""
        self._generation += 1
        self._snapshots.clear()
        self._refreshes.clear()


class Encoded:
    """A response body encoded once, with its gzip form made on first demand."""

    __slots__ = ("_gzip", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._gzip: bytes | None = None

    @property
    def gzip(self) -> bytes:
        if self._gzip is None:
            # Level 5: most of level 9's ratio on JSON at a fraction of the time.
            self._gzip = gzip.compress(self.raw, compresslevel=5, mtime=0)
        return self._gzip


class BodyCache:
    """Encoded bodies of recent reads, each kept `ttl_s` seconds (newest `size` only).

    For reads that many clients repeat and that change rarely: a stored route
    of a past day changes only when a run recomputes it.
    """

    def __init__(self, ttl_s: float = 5.0, size: int = 256) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._items: OrderedDict[Hashable, tuple[float, Encoded | None]] = OrderedDict()

    def get(self, key: Hashable) -> tuple[bool, Encoded | None]:
        found = self._items.get(key)
        if found is None or time.monotonic() - found[0] >= self.ttl_s:
            return False, None
        self._items.move_to_end(key)
        return True, found[1]

    def put(self, key: Hashable, value: Encoded | None) -> None:
        self._items[key] = (time.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
