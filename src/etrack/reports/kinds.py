"""The report kinds: each one a function from (scope, period) to a `Report`
of sections with rows and totals, read from what is stored (day summaries,
trips, stops, events, visits, working days), never recomputed.

- fleet-summary: per vehicle over the period (with `by_day`, per vehicle
  and day): distance, driving, idle, parked, top speed, time over the limit,
  trips, stops, first and last activity (the first trip's start, the last
  trip's end), odometer at the start and the end, events begun;
- vehicle-day: one vehicle's day: its trips, stops and points, and the
  route's drawing for the PDF;
- events: the events begun in the period (and offline ones still open);
- visits: the fence visits of the period;
- driver-days: the drivers' working days (Lei 13.103) of the period.

The registry `KINDS` is what the CLI, the worker and the web offer; a new
kind is one more function here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from etrack.dates import days_span
from etrack.drivers.compute import JornadaParams, driver_days
from etrack.errors import UsageError
from etrack.model import EVENT_KINDS
from etrack.reports.table import (
    Cell,
    Column,
    ColumnKind,
    Label,
    Report,
    RouteDrawing,
    Row,
    Section,
    Stop,
)
from etrack.store import db
from etrack.store import reports as store
from etrack.store.events import list_events
from etrack.store.geofences import list_visits

__all__ = [
    "KINDS",
    "MAX_DAYS",
    "ReportContext",
    "ReportKind",
    "ReportRequest",
    "ReportScope",
    "build_report",
]

# A report reads stored rows only, but a year of a large fleet by day is
# still a big file: the longest period one report covers.
MAX_DAYS = 366
# The vehicle day's drawing keeps at most this many vertices (a PDF line).
_DRAWING_POINTS = 2000


@dataclass(frozen=True, slots=True)
class ReportScope:
    """Which vehicles: some plates, or one fleet, or every vehicle (None, None)."""

    plates: tuple[str, ...] | None = None
    fleet: str | None = None

    def describe(self) -> str:
        if self.plates:
            shown = ", ".join(self.plates[:5])
            return shown + (f" (+{len(self.plates) - 5})" if len(self.plates) > 5 else "")
        if self.fleet:
            return f"frota {self.fleet}"
        return "toda a frota"


@dataclass(frozen=True, slots=True)
class ReportRequest:
    kind: str
    first: date
    last: date
    scope: ReportScope = ReportScope()
    by_day: bool = False


@dataclass(frozen=True, slots=True)
class ReportContext:
    """What a report needs beyond the request: the account it is for, its
    time zone, the plates it may see (None = all), the link base, the law's
    parameters for driver-days."""

    account: str
    tz: ZoneInfo
    visible: frozenset[str] | None = None
    public_url: str | None = None
    jornada: JornadaParams | None = None
    now: datetime | None = None


Builder = Callable[[db.Conn, ReportRequest, ReportContext], tuple[Section, ...]]


@dataclass(frozen=True, slots=True)
class ReportKind:
    name: str
    title: Label
    build: Builder
    one_plate: bool = False  # vehicle-day: exactly one plate, one day
    link: str = "/report"  # the page a mail links back to


def _plates(request: ReportRequest, ctx: ReportContext) -> tuple[str, ...] | None:
    """The requested plates within what the account sees (None: no bound)."""
    wanted = request.scope.plates
    if ctx.visible is None:
        return wanted
    if wanted is None:
        return tuple(sorted(ctx.visible))
    return tuple(p for p in wanted if p in ctx.visible)


def _col(
    name: str, pt: str, en: str, kind: ColumnKind = "text", *, decimals: int = 0, width: float = 12
) -> Column:
    return Column(name, Label(pt, en), kind, decimals=decimals, width=width)


# ------------------------------------------------------------ fleet-summary
_VEHICLE = (
    _col("placa", "Placa", "Plate", width=10),
    _col("descricao", "Descrição", "Description", width=22),
    _col("frota", "Frota", "Fleet", width=14),
)
_FIGURES = (
    _col("distance_km", "Distância (km)", "Distance (km)", "number", decimals=1),
    _col("driving_s", "Dirigindo", "Driving", "duration", width=10),
    _col("idle_s", "Ligado parado", "Idle", "duration", width=10),
    _col("parked_s", "Estacionado", "Parked", "duration", width=11),
    _col("max_speed_kmh", "Velocidade máx. (km/h)", "Max speed (km/h)", "number", width=10),
    _col("over_limit_s", "Acima do limite", "Over the limit", "duration", width=10),
    _col("trip_count", "Viagens", "Trips", "int", width=8),
    _col("stop_count", "Paradas", "Stops", "int", width=8),
    _col("first_activity", "Primeira atividade", "First activity", "moment", width=16),
    _col("last_activity", "Última atividade", "Last activity", "moment", width=16),
    _col(
        "odometer_start_km", "Hodômetro inicial (km)", "Odometer start (km)", "number", decimals=1
    ),
    _col("odometer_end_km", "Hodômetro final (km)", "Odometer end (km)", "number", decimals=1),
    _col("event_count", "Eventos", "Events", "int", width=8),
)
_SUMS = (
    "days",
    "distance_km",
    "driving_s",
    "idle_s",
    "parked_s",
    "over_limit_s",
    "trip_count",
    "stop_count",
    "event_count",
)


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _totals(
    rows: Sequence[Row], sums: Sequence[str], tops: Sequence[str] = (), *, label: str = "placa"
) -> Row:
    """The last line: `label`'s cell says Total; sums, and maxima of `tops`."""
    totals: dict[str, Cell] = {label: "Total"}
    for name in sums:
        total = sum(_num(r.get(name)) for r in rows)
        totals[name] = round(total, 3) if isinstance(total, float) else total
    for name in tops:
        values = [_num(r[name]) for r in rows if r.get(name) is not None]
        totals[name] = max(values) if values else None
    return totals


def _cell(value: object) -> Cell:
    if value is None or isinstance(value, str | int | float | date | datetime):
        return value
    return str(value)


def fleet_summary(conn: db.Conn, request: ReportRequest, ctx: ReportContext) -> tuple[Section, ...]:
    plates = _plates(request, ctx)
    tz = str(ctx.tz.key)
    days = store.fleet_days(
        conn, request.first, request.last, tz, plates, request.scope.fleet, odometers=request.by_day
    )
    lo, hi = days_span(request.first, request.last, ctx.tz)
    events = store.event_counts(conn, lo, hi, tz, plates)
    if request.by_day:
        rows: list[Row] = []
        for day in days:
            row = {k: _cell(v) for k, v in day.items()}
            on = day["rota_date"]
            assert isinstance(on, date)
            row["day"] = on
            row["event_count"] = events.get((str(day["placa"]), on), 0)
            rows.append(row)
        columns = (*_VEHICLE, _col("day", "Dia", "Day", "date", width=11), *_FIGURES)
        title = Label("Resumo por dia", "Summary by day")
        return (
            Section(
                "by-day",
                title,
                columns,
                tuple(rows),
                _totals(rows, _SUMS[1:], ("max_speed_kmh",)),
            ),
        )
    per_plate = _per_vehicle(days, events)
    if per_plate:
        odometers = store.fleet_odometers(conn, list(per_plate), lo, hi)
        for placa, row in per_plate.items():
            row["odometer_start_km"], row["odometer_end_km"] = odometers.get(placa, (None, None))
    rows = list(per_plate.values())
    columns = (*_VEHICLE, _col("days", "Dias", "Days", "int", width=6), *_FIGURES)
    return (
        Section(
            "vehicles",
            Label("Resumo por veículo", "Summary by vehicle"),
            columns,
            tuple(rows),
            _totals(rows, _SUMS, ("max_speed_kmh",)),
        ),
    )


def _per_vehicle(
    days: Sequence[store.DayRow], events: dict[tuple[str, date], int]
) -> dict[str, dict[str, Cell]]:
    per_plate: dict[str, dict[str, Cell]] = {}
    event_totals: dict[str, int] = defaultdict(int)
    for (placa, _), count in events.items():
        event_totals[placa] += count
    for day in days:
        placa = str(day["placa"])
        row = per_plate.get(placa)
        if row is None:
            row = per_plate[placa] = {
                "placa": placa,
                "descricao": _cell(day["descricao"]),
                "frota": _cell(day["frota"]),
                "days": 0,
                "max_speed_kmh": None,
                "first_activity": None,
                "last_activity": None,
                "event_count": event_totals.get(placa, 0),
                **dict.fromkeys(("distance_km", "driving_s", "idle_s", "parked_s"), 0.0),
                "over_limit_s": 0.0,
                "trip_count": 0,
                "stop_count": 0,
            }
        row["days"] = int(_num(row["days"])) + 1
        for name in ("distance_km", "driving_s", "idle_s", "parked_s", "over_limit_s"):
            row[name] = round(_num(row[name]) + _num(day[name]), 3)
        for name in ("trip_count", "stop_count"):
            row[name] = int(_num(row[name]) + _num(day[name]))
        speed = day["max_speed_kmh"]
        if isinstance(speed, int | float) and (
            row["max_speed_kmh"] is None or speed > _num(row["max_speed_kmh"])
        ):
            row["max_speed_kmh"] = float(speed)
        first, last = day["first_activity"], day["last_activity"]
        if isinstance(first, datetime) and row["first_activity"] is None:
            row["first_activity"] = first  # days come in order
        if isinstance(last, datetime):
            row["last_activity"] = last
    return per_plate


# -------------------------------------------------------------- vehicle-day
_TRIP_COLUMNS = (
    _col("seq", "Nº", "No.", "int", width=5),
    _col("start_ts", "Início", "Start", "moment", width=8),
    _col("start_address", "Origem", "From", width=30),
    _col("end_ts", "Fim", "End", "moment", width=8),
    _col("end_address", "Destino", "To", width=30),
    _col("distance_km", "Distância (km)", "Distance (km)", "number", decimals=1),
    _col("duration_s", "Duração", "Duration", "duration", width=9),
    _col("max_speed_kmh", "Velocidade máx. (km/h)", "Max speed (km/h)", "number", width=10),
    _col("driver", "Motorista", "Driver", width=18),
)
_STOP_COLUMNS = (
    _col("seq", "Nº", "No.", "int", width=5),
    _col("address", "Local", "Place", width=34),
    _col("start_ts", "Chegada", "Arrival", "moment", width=8),
    _col("end_ts", "Saída", "Departure", "moment", width=8),
    _col("duration_s", "Duração", "Duration", "duration", width=9),
    _col("ignition_on_s", "Motor ligado", "Engine on", "duration", width=9),
    _col("latitude", "Latitude", "Latitude", "number", decimals=6, width=11),
    _col("longitude", "Longitude", "Longitude", "number", decimals=6, width=11),
)
_POINT_COLUMNS = (
    _col("data_transmissao", "Data/hora", "Time", "moment", width=16),
    _col("latitude", "Latitude", "Latitude", "number", decimals=6, width=11),
    _col("longitude", "Longitude", "Longitude", "number", decimals=6, width=11),
    _col("velocidade", "Velocidade (km/h)", "Speed (km/h)", "number", width=9),
    _col("ignicao", "Ignição", "Ignition", width=8),
    _col("odometro", "Hodômetro (km)", "Odometer (km)", "number", decimals=1),
    _col("logradouro", "Endereço", "Address", width=34),
)


def _one_plate(request: ReportRequest, ctx: ReportContext) -> str:
    plates = request.scope.plates or ()
    if len(plates) != 1 or request.first != request.last:
        raise UsageError(
            "vehicle-day: give one plate and one day"
            " (--plates ABC1D23 --date D; in the API plates=ABC1D23&date=D)"
        )
    placa = plates[0]
    if ctx.visible is not None and placa not in ctx.visible:
        raise UsageError(f"vehicle-day: no vehicle {placa} in this account")
    return placa


def vehicle_day(conn: db.Conn, request: ReportRequest, ctx: ReportContext) -> tuple[Section, ...]:
    placa = _one_plate(request, ctx)
    day = request.first
    trips = [{k: _cell(v) for k, v in r.items()} for r in store.day_trips(conn, placa, day)]
    stops = [{k: _cell(v) for k, v in r.items()} for r in store.day_stops(conn, placa, day)]
    lo, hi = days_span(day, day, ctx.tz)
    points: list[Row] = []
    for r in store.day_points(conn, placa, lo, hi):
        row = {k: _cell(v) for k, v in r.items()}
        ignition = r["ignicao"]
        row["ignicao"] = None if ignition is None else ("sim" if ignition else "não")
        points.append(row)
    return (
        Section(
            "trips",
            Label("Viagens", "Trips"),
            _TRIP_COLUMNS,
            tuple(trips),
            _totals(
                trips, ("distance_km", "duration_s"), ("max_speed_kmh",), label="start_address"
            ),
        ),
        Section(
            "stops",
            Label("Paradas", "Stops"),
            _STOP_COLUMNS,
            tuple(stops),
            _totals(stops, ("duration_s", "ignition_on_s"), label="address"),
        ),
        Section("points", Label("Pontos", "Points"), _POINT_COLUMNS, tuple(points)),
    )


def day_drawing(sections: Sequence[Section]) -> RouteDrawing:
    """The line of the day's points (thinned) and the numbered stops."""
    points = next(s for s in sections if s.name == "points").rows
    line = [
        (_num(p["latitude"]), _num(p["longitude"]))
        for p in points
        if p.get("latitude") is not None and p.get("longitude") is not None
    ]
    step = max(1, len(line) // _DRAWING_POINTS)
    thinned = line[::step]
    if line and thinned[-1] != line[-1]:
        thinned.append(line[-1])
    stops = next(s for s in sections if s.name == "stops").rows
    return RouteDrawing(
        line=tuple(thinned),
        stops=tuple(
            Stop(_num(s["latitude"]), _num(s["longitude"]), str(s["seq"]))
            for s in stops
            if s.get("latitude") is not None and s.get("longitude") is not None
        ),
    )


# ------------------------------------------------------------------- events
_EVENT_COLUMNS = (
    _col("start_ts", "Início", "Start", "moment", width=16),
    _col("end_ts", "Fim", "End", "moment", width=16),
    _col("placa", "Placa", "Plate", width=10),
    _col("kind", "Tipo", "Kind", width=22),
    _col("duration_s", "Duração", "Duration", "duration", width=9),
    _col("value", "Valor", "Value", "number", decimals=1, width=9),
    _col("limit_value", "Limite", "Limit", "number", decimals=1, width=9),
    _col("unit", "Unidade", "Unit", width=7),
    _col("logradouro", "Local", "Place", width=34),
    _col("driver", "Motorista", "Driver", width=18),
)


def events_report(conn: db.Conn, request: ReportRequest, ctx: ReportContext) -> tuple[Section, ...]:
    plates = _in_fleet(conn, request, _plates(request, ctx))
    lo, hi = days_span(request.first, request.last, ctx.tz)
    rows: list[Row] = []
    for event in list_events(conn, lo, hi, plates=plates):
        known = EVENT_KINDS.get(event.kind)
        rows.append(
            {
                "start_ts": event.start_ts,
                "end_ts": event.end_ts,
                "placa": event.placa,
                "kind": known.pt if known else event.kind,
                "duration_s": event.duration_s,
                "value": event.value,
                "limit_value": event.limit_value,
                "unit": known.unit if known else None,
                "logradouro": event.logradouro,
                "driver": event.driver,
            }
        )
    return (
        Section(
            "events",
            Label("Eventos", "Events"),
            _EVENT_COLUMNS,
            tuple(rows),
            {"kind": "Total", "placa": str(len(rows))},
        ),
    )


def _in_fleet(
    conn: db.Conn, request: ReportRequest, plates: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    """The plates narrowed to the request's fleet (terminals.frota), if it names one."""
    if not request.scope.fleet:
        return plates
    fleet = store.fleet_plates(conn, request.scope.fleet)
    return tuple(p for p in fleet if plates is None or p in plates)


# ------------------------------------------------------------------- visits
_VISIT_COLUMNS = (
    _col("fence", "Cerca", "Fence", width=22),
    _col("placa", "Placa", "Plate", width=10),
    _col("arrive_ts", "Chegada", "Arrival", "moment", width=16),
    _col("depart_ts", "Saída", "Departure", "moment", width=16),
    _col("dwell_s", "Permanência", "Dwell", "duration", width=10),
)


def visits_report(conn: db.Conn, request: ReportRequest, ctx: ReportContext) -> tuple[Section, ...]:
    plates = _in_fleet(conn, request, _plates(request, ctx))
    lo, hi = days_span(request.first, request.last, ctx.tz)
    rows: list[Row] = [
        {
            "fence": v.fence,
            "placa": v.placa,
            "arrive_ts": v.arrive_ts,
            "depart_ts": v.depart_ts,
            "dwell_s": v.dwell_s,
        }
        for v in list_visits(conn, lo, hi, plates)
    ]
    return (
        Section(
            "visits",
            Label("Visitas a cercas", "Fence visits"),
            _VISIT_COLUMNS,
            tuple(rows),
            {**_totals(rows, ("dwell_s",), label="fence"), "placa": str(len(rows))},
        ),
    )


# -------------------------------------------------------------- driver-days
_DRIVER_COLUMNS = (
    _col("driver_name", "Motorista", "Driver", width=22),
    _col("day", "Dia", "Day", "date", width=11),
    _col("start", "Início", "Start", "moment", width=16),
    _col("end", "Fim", "End", "moment", width=16),
    _col("driving_s", "Direção", "Driving", "duration", width=9),
    _col("working_s", "Jornada", "Working", "duration", width=9),
    _col("breaks_s", "Intervalos", "Breaks", "duration", width=9),
    _col("idle_s", "Ligado parado", "Idle", "duration", width=9),
    _col("overtime_s", "Horas extras", "Overtime", "duration", width=9),
    _col("longest_driving_s", "Maior direção contínua", "Longest driving", "duration", width=10),
    _col("rest_before_s", "Descanso anterior", "Rest before", "duration", width=10),
    _col("plates", "Placas", "Plates", width=16),
    _col("violations", "Infrações", "Violations", "int", width=8),
)


def driver_days_report(
    conn: db.Conn, request: ReportRequest, ctx: ReportContext
) -> tuple[Section, ...]:
    params = ctx.jornada or JornadaParams(tz=ctx.tz)
    plates = _in_fleet(conn, request, _plates(request, ctx))
    wanted = None if plates is None else set(plates)
    rows: list[Row] = []
    for day in driver_days(conn, request.first, request.last, params):
        if wanted is not None and not set(day.plates) & wanted:
            continue
        rows.append(
            {
                "driver_name": day.driver_name,
                "day": day.day,
                "start": day.start,
                "end": day.end,
                "driving_s": round(day.driving_s, 1),
                "working_s": round(day.working_s, 1),
                "breaks_s": round(day.breaks_s, 1),
                "idle_s": round(day.idle_s, 1),
                "overtime_s": round(day.overtime_s, 1),
                "longest_driving_s": round(day.longest_driving_s, 1),
                "rest_before_s": None if day.rest_before_s is None else round(day.rest_before_s, 1),
                "plates": ", ".join(day.plates),
                "violations": len(day.violations),
            }
        )
    return (
        Section(
            "driver-days",
            Label("Jornadas", "Working days"),
            _DRIVER_COLUMNS,
            tuple(rows),
            _totals(
                rows,
                ("driving_s", "working_s", "breaks_s", "idle_s", "overtime_s", "violations"),
                label="driver_name",
            ),
        ),
    )


KINDS: dict[str, ReportKind] = {
    kind.name: kind
    for kind in (
        ReportKind("fleet-summary", Label("Resumo da frota", "Fleet summary"), fleet_summary),
        ReportKind(
            "vehicle-day",
            Label("Dia do veículo", "Vehicle day"),
            vehicle_day,
            one_plate=True,
            link="/vehicles",
        ),
        ReportKind("events", Label("Eventos", "Events"), events_report, link="/events"),
        ReportKind(
            "visits", Label("Visitas a cercas", "Fence visits"), visits_report, link="/visits"
        ),
        ReportKind(
            "driver-days",
            Label("Jornadas dos motoristas", "Drivers' working days"),
            driver_days_report,
            link="/drivers",
        ),
    )
}


def _link(kind: ReportKind, request: ReportRequest, ctx: ReportContext) -> str | None:
    """The report's page in the web UI, for the e-mail (None without ETRACK_WEB_PUBLIC_URL)."""
    if not ctx.public_url:
        return None
    base = ctx.public_url.rstrip("/")
    if kind.one_plate and request.scope.plates:
        return f"{base}/vehicles/{request.scope.plates[0]}/{request.first.isoformat()}"
    if kind.name == "driver-days":
        return f"{base}{kind.link}?{urlencode({'month': f'{request.first:%Y-%m}'})}"
    query = {"start": request.first.isoformat(), "end": request.last.isoformat()}
    if kind.name == "fleet-summary" and request.scope.fleet:
        query["frota"] = request.scope.fleet
    return f"{base}{kind.link}?{urlencode(query)}"


def build_report(conn: db.Conn, request: ReportRequest, ctx: ReportContext) -> Report:
    """The report `request.kind` of the request's scope and period, else
    UsageError naming what is wrong."""
    kind = KINDS.get(request.kind)
    if kind is None:
        raise UsageError(f"unknown report {request.kind!r}: expected one of {', '.join(KINDS)}")
    if request.last < request.first:
        raise UsageError(
            f"--date-end {request.last.isoformat()} is before --date-start {request.first.isoformat()}"
        )
    if (request.last - request.first).days + 1 > MAX_DAYS:
        raise UsageError(f"a report covers at most {MAX_DAYS} days")
    sections = kind.build(conn, request, ctx)
    now = ctx.now or datetime.now(ctx.tz)
    scope = request.scope.describe()
    return Report(
        kind=kind.name,
        title=kind.title,
        account=ctx.account,
        scope=scope,
        first=request.first,
        last=request.last,
        tz=ctx.tz,
        generated_at=now.astimezone(ctx.tz),
        sections=sections,
        drawing=day_drawing(sections) if kind.one_plate else None,
        link=_link(kind, request, ctx),
    )
