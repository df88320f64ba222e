"""Every route, every role: no row of another scope, CSRF on every form, no
secret in any answer (issue 20).

Two eTrac accounts (north, south) of the real simulator, loaded with a
backfill (positions, provider trips, routes, events, drivers); north's
vehicles split into fleets F1 and F2. The routes walked are derived from the
app itself (the OpenAPI document for /api, app.routes for the pages), so a
new route is covered without touching this file.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, time
from enum import Enum
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlencode, urlsplit

import openpyxl  # type: ignore[import-untyped]
import pyotp
import pypdf
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from etrack.access.users import (
    add_user,
    create_share,
    create_token,
    enroll_totp,
    revoke_token,
    set_active,
)
from etrack.config import Settings
from etrack.jobs import backfill as bf
from etrack.jobs.env import EtrackApp
from etrack.reports.kinds import KINDS
from etrack.simulator.server import SimulatorHandle
from etrack.store import db
from etrack.store.alerts import RuleSpec, add_rule
from etrack.store.audit import Actor, acting
from etrack.store.drivers import add_driver
from etrack.store.reports import ScheduleSpec, add_schedule
from etrack.web import create_app
from etrack.web.pages.browser import RESOURCES
from integration.test_accounts import (
    NORTH,
    SOUTH,
    _month_partitions,
    accounts_settings,
    two_accounts,
    with_app,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

T = TypeVar("T")

# About two minutes: the whole app, walked as four users.
pytestmark = pytest.mark.slow

LOCAL = "http://127.0.0.1:5001"
DAYS = (date(2025, 1, 5), date(2025, 1, 7))
DAY = DAYS[1]
PASSWORD = "correct horse battery staple 20"
ADMIN, VIEWER, MANAGER, API = (
    "admin@example.com",
    "viewer@example.com",
    "manager@example.com",
    "api@example.com",
)
OTHER_DRIVER_ID = "drv-zeferino"
OTHER_DRIVER_NAME = "Zeferino Sulista Exclusivo"
RULE = "rule-z"
FENCE = "depot-z"
# Non-GET routes a read-only principal may still call, by design
# (etrack.web.auth: OPEN_PATHS, SELF_SERVICE): logging in and out, one's own password.
SELF_SERVICE = {("POST", "/login"), ("POST", "/logout"), ("POST", "/account/password")}
# GET routes that cannot be walked as a page: none today (kept explicit, and
# checked to exist, so a stale entry is noticed).
GET_SKIP: set[str] = set()
ADMIN_ONLY = ("/users", "/audit", "/audit.csv", "/api/users", "/api/audit")


# ----------------------------------------------------------------- setup
# The two accounts of the accounts tests: the simulator, the accounts file,
# the month partitions (autouse) and a jobs App.
__all__ = ["_month_partitions", "accounts_settings", "two_accounts"]


@dataclass
class World:
    settings: Settings
    target: db.Target
    north: list[str]
    south: list[str]
    f1: list[str]
    f2: list[str]
    totp_secret: str
    token: str
    token_id: int
    share: str
    share_id: int
    other_driver: str  # a driver of south's vehicles only (from the provider)
    driver_names: dict[str, list[str]]  # role -> names of drivers outside its scope
    schedule_id: int
    backfill_id: int
    rows: dict[str, str]  # /db resource -> a row id of south
    bodies: list[str] = field(default_factory=list)

    def own(self, role: str) -> list[str]:
        return self.north if role == "manager" else self.f1

    def other(self, role: str) -> list[str]:
        return sorted(set(self.north + self.south) - set(self.own(role)))

    def probes(self, role: str) -> list[str]:
        """Plates of the other scope to ask for: one of south, and one of
        north's other fleet for the fleet-scoped users."""
        return [self.south[0], self.f2[0]] if role != "manager" else self.south[:2]


def build_world(sim: SimulatorHandle, settings: Settings, target: db.Target) -> World:
    async def load(app: EtrackApp) -> int:
        request = bf.BackfillRequest(
            date_start=DAYS[0], date_end=DAYS[1], plates=None, with_trips=True
        )
        result = await bf.plan(app, request)
        assert await bf.work_off(app, result.backfill, concurrency=4, poll_s=0.1)
        # One more, of south only and never run: an id of the other scope.
        other = await bf.plan(
            app,
            bf.BackfillRequest(date_start=DAYS[0], date_end=DAYS[0], plates=south[:1], force=True),
        )
        return other.backfill.id

    north = sorted(sim.fleet.plates(account=NORTH.user))
    south = sorted(sim.fleet.plates(account=SOUTH.user))
    backfill_id = with_app(settings, target, load)
    f1, f2 = north[:2], north[2:]
    with db.connection(target) as conn, acting(Actor("test")):
        conn.execute("UPDATE terminals SET frota = 'F1' WHERE placa = ANY(%s)", (f1,))
        conn.execute("UPDATE terminals SET frota = 'F2' WHERE placa = ANY(%s)", (f2,))
        assert dict(conn.execute("SELECT placa, account FROM terminals").fetchall()) == {
            **dict.fromkeys(north, "north"),
            **dict.fromkeys(south, "south"),
        }
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM routes), (SELECT count(*) FROM route_day_summaries),"
            " (SELECT count(*) FROM trips), (SELECT count(*) FROM drivers)"
        ).fetchone()
        assert counts is not None
        assert all(n > 0 for n in counts), counts

        add_user(conn, ADMIN, role="admin", password=PASSWORD)
        add_user(conn, VIEWER, role="viewer", password=PASSWORD, fleets=["F1"])
        add_user(conn, MANAGER, role="manager", password=PASSWORD, accounts=["north"])
        add_user(conn, API, role="api", password=None, fleets=["F1"])
        token = create_token(conn, API, label="scope test")
        secret, _ = enroll_totp(conn, ADMIN)
        share = create_share(conn, south[0], DAY, days=7, created_by=ADMIN)

        add_driver(conn, OTHER_DRIVER_ID, OTHER_DRIVER_NAME, "F2", f"name:{OTHER_DRIVER_NAME}")
        conn.execute(
            "INSERT INTO driver_assignments (driver_id, placa, from_ts, to_ts)"
            " VALUES (%s, %s, %s::date, %s::date + 1)",
            (OTHER_DRIVER_ID, south[0], DAY, DAY),
        )
        add_rule(
            conn,
            RuleSpec(
                name=RULE, kinds=("overspeed",), plates=(south[0],), fleets=None, fences=None,
                min_value=None, channel="email", url=None, secret=None,
                emails=("ops@example.com",),
            ),
        )  # fmt: skip
        schedule_id, _ = add_schedule(
            conn,
            ScheduleSpec(
                kind="fleet-summary", every="daily", at_local=time(7), timezone="UTC",
                emails=("ops@example.com",), webhook_url=None, secret=None,
                formats=("xlsx",), plates=(south[0],), fleet=None, account="south",
                by_day=False, csv_dialect="excel-br", lang="en", first_period=DAY,
            ),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO geofences (name, kind, geometry, radius_m) VALUES (%s, 'circle', %s, 200)",
            (FENCE, '{"type": "Point", "coordinates": [-46.6, -23.5]}'),
        )

        def only_on(plates: list[str]) -> list[tuple[str, str]]:
            """Drivers (id, name) whose every attributed trip is on these plates."""
            rows = conn.execute(
                "SELECT d.id, d.name FROM drivers d"
                " WHERE EXISTS (SELECT 1 FROM route_trips t WHERE t.driver_id = d.id)"
                " AND NOT EXISTS (SELECT 1 FROM route_trips t"
                "  WHERE t.driver_id = d.id AND NOT t.placa = ANY(%s))",
                (plates,),
            ).fetchall()
            return [(str(i), str(n)) for i, n in rows]

        south_drivers = only_on(south)
        assert south_drivers, "the simulator gave south's vehicles no driver of their own"
        outside_f1 = only_on(south + f2)
        names = {
            "manager": [n for _, n in south_drivers] + [OTHER_DRIVER_NAME],
            "viewer": [n for _, n in outside_f1] + [OTHER_DRIVER_NAME],
            "api": [n for _, n in outside_f1] + [OTHER_DRIVER_NAME],
        }
        rows: dict[str, str] = {}
        for resource, spec in RESOURCES.items():
            key = spec["key"]
            if key is None:
                rows[resource] = south[0]
                continue
            table = {"positions": "positions", "trips": "trips", "routes": "routes"}[resource]
            found = conn.execute(
                f"SELECT {key} FROM {table} WHERE placa = %s LIMIT 1",
                (south[0],),
            ).fetchone()
            assert found is not None, resource
            rows[resource] = f"{south[0]}@{found[0].isoformat()}"
    return World(
        settings=settings, target=target, north=north, south=south, f1=f1, f2=f2,
        totp_secret=secret, token=token.clear, token_id=token.id, share=share.clear,
        share_id=share.id,
        other_driver=south_drivers[0][0], driver_names=names, schedule_id=schedule_id,
        backfill_id=backfill_id, rows=rows,
    )  # fmt: skip


@contextlib.contextmanager
def web_client(world: World) -> Iterator[TestClient]:
    app = create_app(world.settings, world.target, scheduler=False)
    with TestClient(app, base_url=LOCAL, follow_redirects=False) as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no csrf_token in the page"
    return found.group(1)


def log_in(client: TestClient, login: str, *, code: str | None = None) -> str:
    """Through the form, as a browser; the session's CSRF token after it."""
    form = client.get("/login")
    assert form.status_code == 200
    data = {"username": login, "password": PASSWORD, "csrf_token": csrf_of(form.text), "next": "/"}
    if code is not None:
        data["code"] = code
    done = client.post("/login", data=data)
    assert done.status_code == 303, (done.status_code, done.text[:300])
    page = client.get("/account")
    assert page.status_code == 200, page.status_code
    return csrf_of(page.text)


def log_in_admin(client: TestClient, world: World) -> str:
    return log_in(client, ADMIN, code=pyotp.TOTP(world.totp_secret).now())


# ------------------------------------------------------------- the routes
def app_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every route of the app, included routers too."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            for method in sorted(context.methods or ()):
                found.append((method, str(context.path), route))
    return found


PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def enum_values(annotation: Any) -> list[str] | None:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(m.value) for m in annotation]
    return None


def _schema_enum(doc: dict[str, Any], schema: dict[str, Any]) -> list[str] | None:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _schema_enum(doc, doc["components"]["schemas"][name])
    if "enum" in schema:
        return [str(v) for v in schema["enum"]]
    for key in ("anyOf", "oneOf", "allOf"):
        for part in schema.get(key, []):
            found = _schema_enum(doc, part)
            if found:
                return found
    return None


def fill(path: str, world: World, plate: str, enums: dict[str, list[str]]) -> list[str]:
    """Every URL of `path` with its parameters filled with ids of the other scope."""
    urls = [path]
    for name in PARAM.findall(path):
        if name in enums:
            values = enums[name]
        elif name == "plate":
            values = [plate]
        elif name == "day":
            values = [DAY.isoformat()]
        elif name == "kind":
            values = sorted(KINDS)
        elif name == "resource":
            values = sorted(RESOURCES)
        elif name == "row":
            values = ["@ROW@"]
        elif name == "driver_id":
            values = [world.other_driver, OTHER_DRIVER_ID]
        elif name == "name":
            values = [RULE if path.startswith("/rules") else FENCE]
        elif name == "schedule_id":
            values = [str(world.schedule_id)]
        elif name == "backfill_id":
            values = [str(world.backfill_id)]
        elif name == "fmt":
            # A format without an Enum (checked by the handler): every one the app exports.
            values = ["csv", "xlsx", "pdf"]
        elif name == "token":
            values = ["shr_not-a-real-link"]
        elif name == "login":
            values = [MANAGER]
        elif name == "token_id":
            values = [str(world.token_id)]
        elif name == "share_id":
            values = [str(world.share_id)]
        elif name.endswith("_id"):
            # A new kind of id: one that exists in most tables (the first row).
            values = ["1"]
        else:
            raise AssertionError(f"{path}: no value for the path parameter {name!r}")
        pattern = re.compile(r"\{" + name + r"(?::\w+)?\}")
        urls = [
            pattern.sub(quote(v, safe="").replace("\\", "\\\\"), u) for u in urls for v in values
        ]
    out = []
    for url in urls:
        if "%40ROW%40" in url:
            resource = url.split("/")[2]
            url = url.replace("%40ROW%40", quote(world.rows[resource], safe="@:"))
        out.append(url)
    return out


def query_variants(world: World, plate: str) -> list[dict[str, str]]:
    """The query strings a page would send: none (today); the loaded day; the
    loaded days; then filtered on a vehicle, a fleet and a fence of the other scope."""
    days = {
        "start": DAYS[0].isoformat(),
        "end": DAYS[1].isoformat(),
        "date_start": DAYS[0].isoformat(),
        "date_end": DAYS[1].isoformat(),
        "month": "2025-01",
    }
    filtered = {**days, "plate": plate, "plates": plate, "frota": "F2", "fleet": "F2",
                "fence": FENCE}  # fmt: skip
    return [{}, {"date": DAY.isoformat()}, days, filtered]


def get_urls(app: FastAPI, world: World, doc: dict[str, Any], plate: str) -> list[str]:
    """Every GET URL: the OpenAPI paths, then every page (app.routes)."""
    urls: list[str] = []
    api_paths = set()
    for path, ops in doc["paths"].items():
        if "get" not in ops:
            continue
        api_paths.add(path)
        enums = {}
        for param in ops["get"].get("parameters", []):
            if param["in"] == "path":
                found = _schema_enum(doc, param.get("schema", {}))
                if found:
                    enums[param["name"]] = found
        urls += fill(path, world, plate, enums)
    routes = app_routes(app)
    for method, path, route in routes:
        if method != "GET" or path in GET_SKIP:
            continue
        bare = PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
        if path.startswith("/api"):
            # Every API route is in the document (nothing hidden from the walk).
            assert bare in api_paths or not route.include_in_schema, path
            if bare in api_paths:
                continue
        if path.startswith("/static"):
            continue
        enums = {}
        for param in route.dependant.path_params:
            found = enum_values(param.field_info.annotation)
            if found:
                enums[param.name] = found
        urls += fill(path, world, plate, enums)
    assert {p for m, p, _ in routes if m == "GET"} >= GET_SKIP, "stale GET_SKIP entries"
    return urls


# ---------------------------------------------------------------- reading
def readable(response: Any) -> str:
    """Status, headers and the body as text: XLSX cells, PDF text, else decoded."""
    data: bytes = response.content
    head = f"{response.status_code} " + " ".join(
        f"{k}: {v}" for k, v in response.headers.items() if k.lower() != "set-cookie"
    )
    if data[:2] == b"PK":
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        cells = [
            str(value)
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
            for value in row
            if value is not None
        ]
        book.close()
        return head + "\n" + "\n".join(cells)
    if data[:4] == b"%PDF":
        text = "\n".join(
            page.extract_text() or "" for page in pypdf.PdfReader(io.BytesIO(data)).pages
        )
        return head + "\n" + text
    return head + "\n" + data.decode("utf-8", "replace")


# Open to the monitoring, no login: the server's own figures, its accounts'
# API pace by name (docs/operations.md: keep /metrics off the public side).
SERVER_WIDE = frozenset({"/metrics"})
SOUTH_NAME = re.compile(r"\bsouth\b", re.IGNORECASE)


def get(client: TestClient, url: str, world: World) -> Any:
    response = client.get(url)
    world.bodies.append(readable(response))
    return response


# ------------------------------------------------------------------ tests
@pytest.fixture
def world(two_accounts: SimulatorHandle, accounts_settings: Settings, target: db.Target) -> World:
    return build_world(two_accounts, accounts_settings, target)


def table_states(target: db.Target) -> dict[str, object]:
    """A digest of every table a form or the API may change."""
    tables = (
        "alert_rules", "report_schedules", "geofences", "drivers", "driver_assignments",
        "backfills", "backfill_partitions", "users", "api_tokens", "share_links",
        "procrastinate_jobs",
    )  # fmt: skip
    out: dict[str, object] = {}
    with db.connection(target) as conn:
        for table in tables:
            row = conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), ''))"
                f" FROM {table} t"
            ).fetchone()
            out[table] = row
    return out


def login_as(client: TestClient, world: World, role: str) -> str | None:
    """Log the client in as the role's user; its CSRF token (None for the token)."""
    if role == "api":
        client.headers["Authorization"] = f"Bearer {world.token}"
        return None
    return log_in(client, {"viewer": VIEWER, "manager": MANAGER}[role])


def form_for(path: str, world: World, plate: str) -> dict[str, str]:
    """A form as the page would post it (every field plausible), so a refusal
    can only come from who is asking or the CSRF token."""
    if path == "/rules":
        return {"name": "new-rule", "kinds": "overspeed", "plates": plate, "channel": "email",
                "emails": "ops@example.com"}  # fmt: skip
    if path == "/reports/schedules":
        return {"kind": "fleet-summary", "every": "daily", "at": "07:00", "to": "ops@example.com",
                "formats": "xlsx", "plates": plate, "csv_dialect": "excel-br", "lang": "en"}  # fmt: skip
    if path == "/geofences":
        feature = (
            '{"type": "Feature", "properties": {"name": "new-fence"}, "geometry": {"type": '
            '"Polygon", "coordinates": [[[-46.6, -23.5], [-46.5, -23.5], [-46.5, -23.4], '
            "[-46.6, -23.5]]]}}"
        )
        return {"name": "new-fence", "feature": feature}
    if path.endswith("/remove") or path == "/geofences/delete":
        return {"confirm": "yes", "name": FENCE}
    if path.endswith("/active"):
        return {"active": "false"}
    if path.endswith("/edit"):
        return {"name": "Renamed Driver", "document": "", "fleet": "", "active": "true"}
    if path.endswith("/assign"):
        return {"plate": plate, "start": f"{DAY}T08:00", "end": f"{DAY}T18:00"}
    if path == "/jobs/backfill":
        return {"date_start": DAYS[0].isoformat(), "date_end": DAYS[0].isoformat(),
                "plates": plate}  # fmt: skip
    if path == "/account/password":
        return {"current": PASSWORD, "new": PASSWORD + "x", "again": PASSWORD + "x"}
    if path == "/users":
        return {"login": "new@example.com", "role": "viewer", "fleets": "F1",
                "password": PASSWORD, "again": PASSWORD}  # fmt: skip
    if path.endswith("/password"):
        return {"password": PASSWORD + "y", "again": PASSWORD + "y"}
    if path.endswith("/update"):
        return {"role": "viewer", "fleets": "F2", "name": "x"}
    if path.endswith("/tokens"):
        return {"label": "more", "expires": "30d"}
    if path.endswith("/share"):
        return {"days": "3"}
    if path == "/login":
        return {"username": ADMIN, "password": PASSWORD, "next": "/"}
    return {}


def writes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    return [(m, p, r) for m, p, r in app_routes(app) if m in ("POST", "PUT", "DELETE", "PATCH")]


def is_form(route: APIRoute) -> bool:
    return any(f.alias == "csrf_token" for f in route.dependant.body_params)


def call_write(
    client: TestClient, method: str, url: str, route: APIRoute, data: dict[str, str]
) -> Any:
    if is_form(route):
        return client.request(method, url, data=data)
    return client.request(method, url, json={"type": "FeatureCollection", "features": []})


@dataclass
class Findings:
    """What the walk saw, by kind (each kind is one test's assertion)."""

    requests: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # 5xx, wrong counts, refused writes
    plates: list[str] = field(default_factory=list)  # a plate of the other scope shown
    drivers: list[str] = field(default_factory=list)  # a driver of the other scope shown
    accounts: list[str] = field(default_factory=list)  # the other account's name shown
    not_404: list[str] = field(default_factory=list)  # a vehicle of the other scope not 404


def vehicle_template(app: FastAPI, url: str) -> bool:
    """Whether the URL is one of a route with a {plate} in its path."""
    path = url.split("?", 1)[0]
    return any(
        route.path_regex.match(path) and "{plate" in template
        for _method, template, route in app_routes(app)
    )


def everything(url: str) -> bool:
    return True


def walk(
    world: World,
    *,
    full: bool = True,
    keep: Callable[[str], bool] = everything,
    variants: slice = slice(None),
    probes: slice = slice(None),
) -> Findings:
    """Every route as the admin (the reference counts), then as viewer,
    manager and api user, a vehicle, driver and ids of the other scope in
    the URLs; every body kept in world.bodies for the secrets check.

    Not `full`: only the GET URLs kept, as the three roles (the checks of
    one kind of leak, each its own test)."""
    found = Findings()
    span = f"start={DAYS[0]}&end={DAYS[1]}"
    with web_client(world) as admin:
        log_in_admin(admin, world)
        doc = admin.get("/api/openapi.json").json()
        app = admin.app
        assert isinstance(app, FastAPI)
        days = urlencode(query_variants(world, world.south[0])[2])
        for url in get_urls(app, world, doc, world.south[0]) if full else []:
            response = get(admin, f"{url}?{days}", world)
            if response.status_code >= 500:
                found.errors.append(f"admin: {url} answered {response.status_code}")
        reference = {
            "vehicles": admin.get("/api/vehicles").json()["vehicles"],
            "report": admin.get(f"/api/report?{span}").json()["rows"],
            "summaries": admin.get(f"/api/summaries?{span}&limit=1000").json()["rows"],
        }
        assert {v["placa"] for v in reference["vehicles"]} == set(world.north + world.south)
        if full:
            # The reading works: the admin's spreadsheets and PDFs show plates.
            for kind in ("spreadsheetml", "application/pdf"):
                read = [b for b in world.bodies if kind in b.split("\n", 1)[0]]
                assert any(p in b for b in read for p in world.south), kind
        assert {r["placa"] for r in reference["report"]} == set(world.north + world.south)

    for role in ("viewer", "manager", "api"):
        own, other = world.own(role), world.other(role)
        with web_client(world) as client:
            csrf = login_as(client, world, role)
            app = client.app
            assert isinstance(app, FastAPI)
            count = 0

            def check(url: str, response: Any, role: str = role, other: list[str] = other) -> None:
                text = world.bodies[-1]
                if response.status_code >= 500:
                    found.errors.append(f"{role}: {url} answered {response.status_code}")
                asked = unquote(url)
                found.plates += [f"{role}: {url} shows {p}" for p in other
                                 if p in text and p not in asked]  # fmt: skip
                found.drivers += [f"{role}: {url} shows {n!r}" for n in world.driver_names[role]
                                  if n in text]  # fmt: skip
                server_wide = urlsplit(url).path in SERVER_WIDE
                if (
                    "account=south" not in asked
                    and not server_wide
                    and (SOUTH_NAME.search(text) or SOUTH.user in text)
                ):
                    found.accounts.append(f"{role}: {url}")

            # Every GET route, a vehicle of the other scope in its parameters.
            for plate in world.probes(role)[probes]:
                for url in filter(keep, get_urls(app, world, doc, plate)):
                    for variant in query_variants(world, plate)[variants]:
                        full_url = url + ("?" + urlencode(variant) if variant else "")
                        response = get(client, full_url, world)
                        count += 1
                        check(full_url, response)
                        if vehicle_template(app, url):
                            verdict = vehicle_verdict(
                                client, world, full_url, response, plate, own[0]
                            )
                            if verdict:
                                found.not_404.append(f"{role}: {full_url} {verdict}")
                            if verdict and "WITH DATA" in verdict:
                                found.plates.append(f"{role}: {full_url} {verdict}")
            found.requests[role] = count
            if not full:
                continue

            # Lists hold exactly the own scope.
            listing = client.get("/api/vehicles").json()["vehicles"]
            if sorted(v["placa"] for v in listing) != own:
                found.errors.append(f"{role}: /api/vehicles lists {listing}")
            report = client.get(f"/api/report?{span}").json()["rows"]
            if sorted(r["placa"] for r in report) != sorted(
                r["placa"] for r in reference["report"] if r["placa"] in own
            ):
                found.errors.append(f"{role}: /api/report rows {[r['placa'] for r in report]}")
            summaries = client.get(f"/api/summaries?{span}&limit=1000").json()["rows"]
            if len(summaries) != len([r for r in reference["summaries"] if r["placa"] in own]):
                found.errors.append(f"{role}: /api/summaries has {len(summaries)} rows")

            # ?account= of the other account narrows to nothing, shows nothing.
            for url in ("/", "/api/vehicles", f"/report?{span}", f"/api/report?{span}"):
                narrowed = f"{url}{'&' if '?' in url else '?'}account=south"
                check(narrowed, get(client, narrowed, world))
            if client.get("/api/vehicles?account=south").json()["vehicles"] != []:
                found.errors.append(f"{role}: ?account=south lists vehicles")
            client.get("/api/vehicles?account=")

            # Admin pages: 403 for every one of them.
            for path in ADMIN_ONLY:
                status = client.get(path).status_code
                count += 1
                if status != 403:
                    found.errors.append(f"{role}: {path} answered {status}, not 403")

            # Read-only principals: every other method is refused, nothing changes.
            if role in ("viewer", "api"):
                before = table_states(world.target)
                for method, path, route in writes(app):
                    if (method, path) in SELF_SERVICE:
                        continue
                    for url in fill(path, world, own[0], {}):
                        data = {**form_for(path, world, own[0])}
                        if csrf is not None:
                            data["csrf_token"] = csrf
                        response = call_write(client, method, url, route, data)
                        world.bodies.append(readable(response))
                        count += 1
                        if response.status_code != 403:
                            found.errors.append(
                                f"{role}: {method} {url} answered {response.status_code}"
                            )
                if table_states(world.target) != before:
                    found.errors.append(f"{role}: a refused write changed a table")
            found.requests[role] = count
    return found


def vehicle_verdict(
    client: TestClient, world: World, url: str, response: Any, plate: str, own: str
) -> str | None:
    """None when this answer to a URL of another scope's vehicle tells nothing:
    a 404; a refusal of the input (400/422) or of the role (403) that a URL of
    an own vehicle gets too; a redirect to a URL that answers 404."""
    status = response.status_code
    if status == 404:
        return None
    if status == 303:
        location = response.headers["location"]
        then = client.get(location)
        world.bodies.append(readable(then))
        return None if then.status_code == 404 else f"303 -> {location} answered {then.status_code}"
    if status == 200 and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        rows = [k for k in ("positions", "features", "trips", "stops", "rows") if body.get(k)]
        if rows:
            return f"answered 200 WITH DATA in {rows}"
    mine = client.get(url.replace(quote(plate, safe=""), quote(own, safe="")))
    unknown = client.get(url.replace(quote(plate, safe=""), "ZZZ9Z99"))
    if status in (400, 403, 422) and mine.status_code == status:
        return None
    return (
        f"answered {status} (an own vehicle: {mine.status_code},"
        f" a plate that does not exist: {unknown.status_code})"
    )


@pytest.fixture
def walked(world: World) -> tuple[World, Findings]:
    return world, walk(world)


def test_every_route_for_every_role_stays_in_its_scope_and_shows_no_secret(
    walked: tuple[World, Findings],
) -> None:
    world, found = walked
    assert found.errors == []
    assert found.plates == []
    # Every role went through every route: the OpenAPI paths and the pages,
    # x 2 vehicles x 3 query strings, the admin paths and (viewer, api) the writes.
    assert all(n > 300 for n in found.requests.values()), found.requests

    # Secrets: nothing collected shows a hash, a token or a TOTP secret.
    with db.connection(world.target) as conn:
        hashes = [str(h) for (h,) in conn.execute(
            "SELECT password_hash FROM users WHERE password_hash IS NOT NULL"
        ).fetchall()]  # fmt: skip
        totp = [str(s) for (s,) in conn.execute(
            "SELECT totp_secret FROM users WHERE totp_secret IS NOT NULL"
        ).fetchall()]  # fmt: skip
    assert len(hashes) == 3
    assert totp == [world.totp_secret]
    secrets = [*hashes, *totp, world.token, world.share, PASSWORD]
    assert len(world.bodies) > 1000
    shown = [i for i, body in enumerate(world.bodies) if any(s in body for s in secrets)]
    assert shown == [], "a secret was in an answer"


def test_no_page_names_the_other_account(world: World) -> None:
    found = walk(world, full=False, variants=slice(0, 1), probes=slice(0, 1))
    assert found.accounts == []


def test_a_driver_of_the_other_scope_is_not_shown(world: World) -> None:
    found = walk(world, full=False, keep=lambda url: "/drivers" in url, probes=slice(0, 1))
    assert found.drivers == []


def test_a_vehicle_of_the_other_scope_is_404_by_any_url(world: World) -> None:
    found = walk(world, full=False, keep=lambda url: "/vehicles/" in url or "/positions/" in url
                 or "/routes/" in url)  # fmt: skip
    assert found.not_404 == []


def test_every_form_refuses_a_post_without_its_csrf_token(world: World) -> None:
    with web_client(world) as admin:
        log_in_admin(admin, world)
        app = admin.app
        assert isinstance(app, FastAPI)
        forms = [(m, p, r) for m, p, r in writes(app) if is_form(r)]
        assert {p for _, p, _ in forms} >= {"/rules", "/geofences", "/jobs/backfill", "/logout"}
        for method, path, route in forms:
            for url in fill(path, world, world.south[0], {}):
                before = table_states(world.target)
                response = call_write(
                    admin, method, url, route, form_for(path, world, world.south[0])
                )
                assert response.status_code == 403, (url, response.status_code, response.text[:200])
                assert table_states(world.target) == before, url
                # Still logged in (the logout without a token did not end the session).
                assert admin.get("/account").status_code == 200, url


def test_a_disabled_user_and_a_revoked_token_stop_at_once(world: World) -> None:
    with web_client(world) as viewer:
        log_in(viewer, VIEWER)
        assert viewer.get("/api/vehicles").status_code == 200
        assert viewer.get("/").status_code == 200
        with db.connection(world.target) as conn, acting(Actor("test")):
            assert set_active(conn, VIEWER, False)
        api_answer = viewer.get("/api/vehicles")
        assert api_answer.status_code == 401
        page = viewer.get("/")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")

    with web_client(world) as api:
        api.headers["Authorization"] = f"Bearer {world.token}"
        assert api.get("/api/vehicles").status_code == 200
        with db.connection(world.target) as conn, acting(Actor("test")):
            assert set_active(conn, API, False)
        assert api.get("/api/vehicles").status_code == 401
        with db.connection(world.target) as conn, acting(Actor("test")):
            assert set_active(conn, API, True)
        assert api.get("/api/vehicles").status_code == 200
        with db.connection(world.target) as conn, acting(Actor("test")):
            assert revoke_token(conn, world.token_id)
        refused = api.get("/api/vehicles")
        assert refused.status_code == 401
        assert world.token not in refused.text
