"""Configuration: one validated settings object (environment and `.env`) and
the eTrac accounts (the accounts file, or the one account of the settings).

The variable names are the seed's (ETRAC_*, PG*, DATABASE_URL,
DISABLE_UI_SCHEDULER); pydantic-settings matches them case-insensitively to
the field names below, so the field name *is* the documented variable name.

Values that are not plain text (durations, cron strings, plates, time zones)
have a type of their own, checked and parsed here once: code above reads the
parsed value. Each type's `str()` is the text as the user writes it, so
`etrack settings` and the generated docs show `ETRACK_RETENTION=400d`.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from croniter import croniter  # type: ignore[import-untyped]  # ships no type hints
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema
from pydantic_settings import BaseSettings, SettingsConfigDict

from etrack.errors import AccountsError, SettingsError
from etrack.model import canonical_plate
from etrack.pace import PaceBounds

__all__ = [
    "DEFAULT_ACCOUNT",
    "Account",
    "Cron",
    "Duration",
    "Elapsed",
    "Holidays",
    "Plate",
    "Settings",
    "TimeZone",
    "WeeklyHours",
    "WorkingHours",
    "default_data_dir",
    "documented_settings",
    "load_accounts",
    "load_settings",
    "parse_duration",
    "parse_elapsed",
    "parse_holidays",
    "parse_working_hours",
    "read_toml",
    "render_env_example",
    "select_accounts",
]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


# ====================================================================== types
_DURATION = re.compile(r"^\s*(\d+)\s*(d|w|mo|m|y)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Duration:
    """A period of `amount` days, weeks, months or years: 90d, 12w, 24m, 2y.

    Not a timedelta: a month here is a calendar month (31 March minus one
    month is 28/29 February), which a fixed number of days cannot express.
    Always at least one unit: retention is the only user, and 0d ("everything
    before today") is too easy to type by mistake.
    """

    amount: int
    unit: Literal["d", "w", "m", "y"]

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def before(self, day: date) -> date:
        """The calendar day this period before `day`."""
        if self.unit == "d":
            return day - timedelta(days=self.amount)
        if self.unit == "w":
            return day - timedelta(weeks=self.amount)
        return _months_back(day, self.amount if self.unit == "m" else 12 * self.amount)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _as_duration,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.to_string_ser_schema(),
        )


def parse_duration(text: str) -> Duration:
    """90d, 12w, 24m (or 24mo) and 2y, as ETRACK_RETENTION takes them."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration like 90d, 12w, 24m or 2y, got {text!r}")
    amount, unit = int(match[1]), match[2].lower()
    if amount <= 0:
        raise ValueError(f"a retention period must be at least one day, got {text!r}")
    if unit == "d":
        return Duration(amount, "d")
    if unit == "w":
        return Duration(amount, "w")
    return Duration(amount, "y") if unit == "y" else Duration(amount, "m")


def _as_duration(value: object) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a duration like 90d, 12w, 24m or 2y, got {value!r}")
    return parse_duration(value)


def _months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    # Clamp the day: 31 March minus one month is 28/29 February.
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last = (next_month - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def _cron(value: str) -> str:
    fields = value.split()
    # Procrastinate reads the schedule with croniter: a 6th field is seconds.
    if len(fields) not in (5, 6) or not bool(croniter.is_valid(" ".join(fields))):
        raise ValueError(f"expected a cron expression like '*/2 * * * *', got {value!r}")
    return " ".join(fields)


def _zone(value: object) -> ZoneInfo:
    if isinstance(value, ZoneInfo):
        return value
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone like America/Sao_Paulo, got {value!r}"
        ) from None


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if "@" in parts.netloc:
        # The client refuses them too, but with a traceback; say it here, without the secret.
        shown = parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()
        raise ValueError(
            f"expected a URL without credentials (put them in ETRAC_USER and ETRAC_KEY), "
            f"got {shown!r}"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s):// URL, got {value!r}")
    return value.rstrip("/")


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# --- events' thresholds (etrack.events): elapsed times, weekly hours, holidays.
# Text settings checked here (a bad value is exit 2 before any work) and parsed
# by the functions below, which the events overrides file reuses.
_ELAPSED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|m|h|d)?\s*$", re.IGNORECASE)
_ELAPSED_UNITS = {"s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_SPAN = re.compile(
    r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$"
)

WeeklyHours = tuple[tuple[tuple[int, int], ...], ...]
"""Per weekday (Monday first), the working intervals as [start, end) minutes of the day."""


def parse_elapsed(text: str) -> float:
    """Seconds of an elapsed time: 90s, 30m (or 30min: minutes, unlike
    ETRACK_RETENTION's months), 2h, 1d, or a bare number of seconds."""
    match = _ELAPSED.match(text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"expected a time like 90s, 30m, 2h or 1d, got {text!r}")
    return float(match[1]) * _ELAPSED_UNITS[(match[2] or "s").lower()]


def parse_working_hours(text: str) -> WeeklyHours:
    """'mon-fri 07:00-19:00, sat 08:00-12:00' as per-weekday intervals; days
    not named have no working hours. 'none' (or empty): never working hours."""
    days: list[list[tuple[int, int]]] = [[] for _ in _WEEKDAYS]
    if text.strip().lower() in ("", "none"):
        return tuple(tuple(d) for d in days)
    for part in text.lower().split(","):
        match = _HOURS_SPAN.match(part)
        problem = (
            f"expected working hours like 'mon-fri 07:00-19:00, sat 08:00-12:00', got {text!r}"
        )
        if not match or match[1] not in _WEEKDAYS or (match[2] or match[1]) not in _WEEKDAYS:
            raise ValueError(problem)
        first, last = _WEEKDAYS.index(match[1]), _WEEKDAYS.index(match[2] or match[1])
        start = int(match[3]) * 60 + int(match[4])
        end = int(match[5]) * 60 + int(match[6])
        if int(match[4]) > 59 or int(match[6]) > 59 or not 0 <= start < end <= 24 * 60:
            raise ValueError(problem)
        for day in (
            range(first, last + 1) if first <= last else [*range(first, 7), *range(last + 1)]
        ):
            days[day].append((start, end))
    return tuple(tuple(sorted(d)) for d in days)


def parse_holidays(text: str) -> tuple[date, ...]:
    """'2025-01-01, 2025-12-25' (ISO days, comma- or space-separated), sorted."""
    try:
        return tuple(sorted({date.fromisoformat(p) for p in re.split(r"[,\s]+", text) if p}))
    except ValueError:
        raise ValueError(f"expected days like 2025-12-25, 2026-01-01, got {text!r}") from None


def _normalised(parse: Callable[[str], object]) -> Callable[[str], str]:
    def check(value: str) -> str:
        parse(value)
        return value.strip()

    return check


Elapsed = Annotated[str, AfterValidator(_normalised(parse_elapsed))]
"""An elapsed time as written (2h, 30m, 90s); `parse_elapsed` gives its seconds."""
WorkingHours = Annotated[str, AfterValidator(_normalised(parse_working_hours))]
"""A weekly calendar as written; `parse_working_hours` gives its intervals."""
Holidays = Annotated[str, AfterValidator(_normalised(parse_holidays))]
"""Days off as written; `parse_holidays` gives the dates."""

Cron = Annotated[str, AfterValidator(_cron)]
"""A cron schedule (5 fields, or 6 with seconds), whitespace normalised."""

TimeZone = Annotated[
    ZoneInfo,
    PlainValidator(_zone),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string"}),
]
"""An IANA time zone, given by name; `str()` of the value is the name."""

Plate = Annotated[str, AfterValidator(canonical_plate)]
"""A vehicle plate in its canonical form (ABC1234, ABC1D23)."""

ApiBase = Annotated[str, AfterValidator(_http_url)]
RateLimit = Annotated[float, Field(gt=0)]


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("etrack", appauthor=False))


class Settings(BaseSettings):
    """Every knob of etrack. Each field's description is its documentation."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        # Settings given by field name in code and tests, by env name (or an
        # alias: ETRACK_MAIL_FROM, ETRACK_PUBLIC_URL) in the environment.
        populate_by_name=True,
    )

    # --- database -----------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL connection URL (postgresql://user:pass@host:5432/db). "
        "Takes precedence over the PG* variables.",
    )
    pghost: str | None = Field(
        default=None, description="PostgreSQL host (used when DATABASE_URL is unset)."
    )
    pgport: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="PostgreSQL port."
    )
    pgdatabase: str | None = Field(default=None, description="PostgreSQL database name.")
    pguser: str | None = Field(default=None, description="PostgreSQL user.")
    pgpassword: SecretStr | None = Field(default=None, description="PostgreSQL password.")
    etrac_schema: str = Field(
        default="e_track",
        description="Schema holding etrack's tables (a plain lower-case SQL identifier).",
    )
    etrack_data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded PostgreSQL keeps its data when no DATABASE_URL/PG* is set, "
        "and where `fetch-latest --loop` spools latest positions during a database outage.",
    )
    etrack_spool_max_mb: Annotated[int, Field(ge=0)] = Field(
        default=512,
        description="Cap in MiB of the disk spool (ETRACK_DATA_DIR/spool) where `fetch-latest "
        "--loop` keeps latest positions fetched while PostgreSQL is down; they are written, "
        "oldest first, when it answers again. When full the oldest answers are dropped; 0 turns "
        "the spool off.",
    )

    # --- eTrac API ----------------------------------------------------------
    etrac_user: str | None = Field(
        default=None, description="eTrac account e-mail (HTTP Basic user)."
    )
    etrac_key: SecretStr | None = Field(
        default=None, description="eTrac API key generated in the platform (HTTP Basic password)."
    )
    etrac_api_base: ApiBase = Field(
        default="https://api.etrac.com.br/monitoramento",
        description="Base URL of the eTrac monitoring API.",
    )
    etrac_timezone: TimeZone = Field(
        default=ZoneInfo("America/Sao_Paulo"),
        description="Time zone of the account: API timestamps are local times of this zone.",
    )
    etrac_timeout: str = Field(
        default="30",
        description="HTTP timeout in seconds: one number is the read timeout (connect timeout "
        "is min(10, it)); 'CONNECT,READ' sets both.",
    )
    etrac_max_attempts: Annotated[int, Field(ge=1, le=20)] = Field(
        default=5, description="Attempts per API call (first try included) before giving up."
    )
    etrac_max_answer_bytes: Annotated[int, Field(ge=1024)] = Field(
        default=64 * 1024 * 1024,
        description="Largest API answer accepted, in bytes after decompression (a 10,000-vehicle "
        "fleet's latest positions weigh about 4.2 MB); a larger one fails that call, unretried.",
    )
    etrac_rate_limit: RateLimit = Field(
        default=5.0,
        description="Requests per second each account starts at (shared by all tasks and "
        "processes); with ETRAC_RATE_ADAPT the pace then adapts to what the API allows and the "
        "next run starts at the learned pace.",
    )
    etrac_rate_adapt: bool = Field(
        default=True,
        description="Adapt each account's pace to the API: faster while answers are fast and no "
        "429 comes, slower on a 429 or when latency climbs; 0 keeps ETRAC_RATE_LIMIT fixed.",
    )
    etrac_rate_max: RateLimit = Field(
        default=20.0,
        description="Fastest pace the adaptation may reach, requests per second (an "
        "ETRAC_RATE_LIMIT above it raises it: the account was said to allow that).",
    )
    etrac_rate_min: RateLimit = Field(
        default=0.5,
        description="Slowest pace the adaptation may fall to, requests per second (an "
        "ETRAC_RATE_LIMIT below it lowers it).",
    )
    etrac_rate_sleep: Annotated[float, Field(ge=0)] = Field(
        default=0.0, description="Minimum pause in seconds between plates / requests of one worker."
    )
    etrac_batch_size: Annotated[int, Field(ge=1)] = Field(
        default=50, description="Plates handled per batch by the daily run and the backfill."
    )

    etrack_accounts_file: Path | None = Field(
        default=None,
        description="TOML file listing several eTrac accounts (name, user, key or key_env, "
        "api_base, timezone, rate_limit), each collected into this database; unset = the one "
        "account of ETRAC_USER/ETRAC_KEY, named 'default'. Re-read when it changes.",
    )
    etrack_account_retry_s: Annotated[float, Field(gt=0)] = Field(
        default=600.0,
        description="An account whose credentials were refused is tried again after this many "
        "seconds (at once when its entry in the accounts file changes).",
    )

    # --- data quality -------------------------------------------------------
    etrac_future_tolerance_s: Annotated[int, Field(ge=0)] = Field(
        default=600,
        description="A position stamped more than this many seconds after now is flagged 'future'.",
    )
    etrac_jump_speed_kmh: Annotated[float, Field(gt=0)] = Field(
        default=300.0,
        description="Implied speed between valid neighbours above which a point is a GPS 'jump'.",
    )
    # 300 km/h: above any road vehicle a fleet tracker rides in (Brazilian
    # limits stop at 120, trucks and vans are governed far below 300), so a
    # real reading is never lost; a tracker's overflow garbage (1e308) is.
    etrac_max_speed_kmh: Annotated[float, Field(gt=0)] = Field(
        default=300.0,
        description="A reported speed (velocidade) above this many km/h, or below 0, is "
        "flagged 'bad_speed' and kept out of routes.",
    )
    # 10 million km: twice the highest odometer ever recorded on a road
    # vehicle (about 5.2 million km), far below garbage such as 1e30.
    etrac_max_odometer_km: Annotated[float, Field(gt=0)] = Field(
        default=10_000_000.0,
        description="An odometer (odometro or odometro_can) above this many km, or below 0, is "
        "flagged 'bad_odometer' and kept out of routes.",
    )
    etrac_earliest_position_date: date = Field(
        default=date(2000, 1, 1),
        description="A position stamped before this day (UTC) is flagged 'too_old' and kept out "
        "of routes: no tracker of the fleet sent data then; it catches clocks reset to 1970.",
    )

    # --- routes, trips and stops ---------------------------------------------
    etrac_route_mode: Literal["location", "ignition"] = Field(
        default="location",
        description="Trip detection: 'location' (movement away from where the vehicle stood, "
        "as Traccar) or 'ignition' (ignicao on/off).",
    )
    etrac_trip_min_distance_m: Annotated[float, Field(gt=0)] = Field(
        default=200.0,
        description="A trip starts once the vehicle is this many metres from where it stood; a "
        "stop stays within it.",
    )
    etrac_stop_min_duration_s: Annotated[float, Field(gt=0)] = Field(
        default=180.0,
        description="Shortest stop in seconds; anything shorter (a red light) stays inside its trip.",
    )
    etrac_trip_max_gap_s: Annotated[float, Field(gt=0)] = Field(
        default=3600.0,
        description="A silence longer than this many seconds ends the trip in progress.",
    )
    etrac_moving_speed_kmh: Annotated[float, Field(ge=0)] = Field(
        default=5.0,
        description="Speeds at or above this count as moving (driving time; no stop holds such a point).",
    )
    etrac_speed_limit_kmh: Annotated[float, Field(ge=0)] = Field(
        default=80.0, description="Time above this speed is reported as time over the limit."
    )
    etrac_route_simplify_m: Annotated[float, Field(ge=0)] = Field(
        default=20.0,
        description="Douglas-Peucker tolerance in metres of the simplified line drawn at fleet zoom.",
    )

    # --- geofences (etrack.geofences; docs/geofences.md) -----------------------
    etrack_visit_min_s: Annotated[float, Field(ge=0)] = Field(
        default=120.0,
        description="Shortest geofence visit in seconds: inside a fence for less is a "
        "passage, not a visit.",
    )

    # --- drivers (etrack.drivers; docs/drivers.md) ----------------------------
    etrack_break_min_s: Annotated[float, Field(gt=0)] = Field(
        default=1800.0,
        description="Shortest stop between a driver's trips that counts as a break (rest), "
        "in seconds; shorter stops neither interrupt the driving nor count as driving.",
    )
    etrack_max_driving_s: Annotated[float, Field(gt=0)] = Field(
        default=19800.0,
        description="Longest uninterrupted driving between breaks, in seconds "
        "(CTB art. 67-C: 5 h 30).",
    )
    etrack_driving_window_s: Annotated[float, Field(gt=0)] = Field(
        default=21600.0,
        description="Driving within which a 30-minute break is due, in seconds, for cargo "
        "(CTB art. 67-C § 1: 6 h); passenger fleets use 4 h (ETRACK_PASSENGER_FLEETS).",
    )
    etrack_passenger_fleets: str = Field(
        default="",
        description="Fleets (comma-separated) carrying passengers: a 30-minute break is due "
        "within each 4 h of driving.",
    )
    etrack_daily_rest_s: Annotated[float, Field(gt=0)] = Field(
        default=39600.0,
        description="Rest due between two working days, in seconds (11 h, not split).",
    )
    etrack_workday_s: Annotated[float, Field(gt=0)] = Field(
        default=28800.0,
        description="A working day's normal working time, in seconds (8 h); beyond it is overtime.",
    )
    etrack_overtime_s: Annotated[float, Field(ge=0)] = Field(
        default=7200.0,
        description="Overtime allowed per working day, in seconds (2 h); fleets under a "
        "collective agreement (ETRACK_AGREEMENT_FLEETS) have 4 h.",
    )
    etrack_agreement_fleets: str = Field(
        default="",
        description="Fleets (comma-separated) whose collective agreement allows 4 h of overtime.",
    )
    etrack_workday_gap_s: Annotated[float, Field(gt=0)] = Field(
        default=21600.0,
        description="A gap between a driver's trips at least this long (seconds) ends a "
        "working day; the next trip starts another.",
    )

    # --- events (etrack.events; docs/events.md) -------------------------------
    etrack_overspeed_min_s: Annotated[float, Field(ge=0)] = Field(
        default=60.0,
        description="Shortest overspeed event in seconds: a run of positions above "
        "ETRAC_SPEED_LIMIT_KMH lasting less is not an event.",
    )
    etrack_idle_min_s: Annotated[float, Field(ge=0)] = Field(
        default=300.0,
        description="Shortest idle event in seconds: ignition on and speed below "
        "ETRAC_MOVING_SPEED_KMH for at least this long.",
    )
    etrack_offline_after: Elapsed = Field(
        default="2h",
        description="A vehicle with no transmission for longer than this (e.g. 2h, 90m) gets an "
        "open offline event, closed when it reports again; checked after each fetch of latest "
        "positions.",
    )
    etrack_low_battery_v: Annotated[float, Field(gt=0)] = Field(
        default=11.5,
        description="A battery (bateria) reading below this many volts counts as low (the "
        "GlobalStar 1/0 indicator form, exactly 0 or 1, is not volts and is ignored).",
    )
    etrack_low_battery_min_s: Annotated[float, Field(ge=0)] = Field(
        default=600.0, description="Shortest low-battery event in seconds."
    )
    etrack_late_data_after: Elapsed = Field(
        default="30m",
        description="A position received (data_gravacao) this much later than it was recorded "
        "(data_transmissao), e.g. 30m, is late data: the tracker buffered out of coverage.",
    )
    etrack_working_hours: WorkingHours = Field(
        default="mon-fri 07:00-19:00",
        description="Working hours, local time (ETRAC_TIMEZONE), e.g. 'mon-fri 07:00-19:00, sat "
        "08:00-12:00'; ignition on outside them is an after_hours event. 'none' = never.",
    )
    etrack_holidays: Holidays = Field(
        default="",
        description="Days off (ISO dates, comma-separated): no working hours on them.",
    )
    etrack_events_file: Annotated[Path | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        description='TOML file of per-fleet ([fleet."NAME"]) and per-vehicle '
        '([vehicle."PLACA"]) event thresholds overriding the settings (docs/events.md).',
    )

    # --- alerts (etrack.alerts; docs/alerts.md) -------------------------------
    etrack_alert_max_age: Elapsed = Field(
        default="6h",
        description="Alert rules send only events that started less than this long ago (e.g. "
        "6h, 90m) when first found: a backfill of old days sends nothing (`etrack alerts "
        "replay` sends past events on purpose).",
    )
    etrack_alert_attempts: Annotated[int, Field(ge=1, le=100)] = Field(
        default=5,
        description="Attempts to deliver one alert (a non-2xx answer, a timeout or an SMTP "
        "error is retried with backoff) before it is marked failed.",
    )
    etrack_alert_retry_s: Annotated[float, Field(gt=0)] = Field(
        default=30.0,
        description="Seconds before the second attempt of an alert; each further wait doubles, "
        "up to one hour.",
    )
    etrack_alert_timeout_s: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0,
        description="Seconds one webhook POST or SMTP conversation may take before the attempt "
        "counts as failed.",
    )
    etrack_webhook_deny_private: bool = Field(
        default=False,
        description="1 = refuse webhook URLs whose host resolves to a loopback, private, "
        "link-local or otherwise non-public address (checked at `alerts add` and at each send).",
    )
    etrack_smtp_url: SecretStr | None = Field(
        default=None,
        description="SMTP server for e-mail alerts and reports: smtp://user:pass@host:587 "
        "(STARTTLS when the server offers it; ?starttls=1 requires it, ?starttls=0 never), or "
        "smtps://user:pass@host:465 (TLS from the start); user and password optional.",
    )
    etrack_smtp_from: str = Field(
        default="etrack@localhost",
        validation_alias=AliasChoices("etrack_smtp_from", "etrack_mail_from"),
        description="From address of e-mail alerts and reports (also read as ETRACK_MAIL_FROM).",
    )
    etrack_web_public_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("etrack_web_public_url", "etrack_public_url"),
        description="Address users open the web UI at (e.g. https://frota.example.com; also "
        "read as ETRACK_PUBLIC_URL): e-mail alerts link to the vehicle's day there, e-mailed "
        "reports to the report's page; unset = no link.",
    )
    etrack_company_name: str | None = Field(
        default=None,
        description="The company's name on reports' headers and e-mails (default: the account's "
        "name, or etrack).",
    )
    etrack_report_attempts: Annotated[int, Field(ge=1, le=100)] = Field(
        default=6,
        description="Attempts to deliver one scheduled report (an SMTP error, a webhook's "
        "non-2xx answer or timeout is retried with backoff) before its period is marked failed.",
    )
    etrack_report_retry_s: Annotated[float, Field(gt=0)] = Field(
        default=60.0,
        description="Seconds before the second attempt of a scheduled report; each further wait "
        "doubles, up to one hour.",
    )
    etrack_report_cron: Cron = Field(
        default="* * * * *",
        description="How often the worker looks for report periods due (cron, local time): a "
        "report goes out at most this long after its --at time.",
    )

    # --- retention (LGPD) ----------------------------------------------------
    etrack_retention: Annotated[Duration | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        description="Drop whole monthly partitions of positions older than this (e.g. 24m, 2y, "
        "400d); unset keeps everything. Applied daily by the worker.",
    )
    etrack_retention_raw: Annotated[Duration | None, BeforeValidator(_blank_is_none)] = Field(
        default=None,
        description="Clear the raw JSON of positions older than this (e.g. 90d, 6m), keeping the "
        "parsed columns; unset keeps it.",
    )

    # --- jobs and UI --------------------------------------------------------
    etrac_daily_lock_id: int = Field(
        default=123456789, description="Advisory lock id guarding the daily run."
    )
    etrac_backfill_lock_id: int = Field(
        default=987654321, description="Advisory lock id guarding backfill enqueueing."
    )
    disable_ui_scheduler: bool = Field(
        default=False,
        description="1 = the web UI does not run the scheduler/worker (use systemd, cron or "
        "`etrack worker` instead).",
    )
    etrac_log_level: str = Field(
        default="INFO", description="Log level: DEBUG, INFO, WARNING, ERROR."
    )
    etrack_fetch_cron: Cron = Field(
        default="*/2 * * * *",
        description="Schedule of the periodic fetch of latest positions (cron, local time of "
        "ETRAC_TIMEZONE; a 6th field adds seconds).",
    )
    etrack_daily_at: str = Field(
        default="01:00",
        description="Local time (HH:MM, ETRAC_TIMEZONE) of the daily run: yesterday's history, "
        "trips and routes.",
    )
    etrack_worker_concurrency: Annotated[int, Field(ge=1, le=64)] = Field(
        default=4, description="Jobs one `etrack worker` runs at once."
    )
    etrack_web_user: str | None = Field(
        default=None,
        description="Web UI login user. With ETRACK_WEB_PASSWORD set, every page and API call "
        "needs a login (session from /login, or HTTP Basic for scripts). Required when the "
        "server listens on anything but loopback.",
    )
    etrack_web_password: SecretStr | None = Field(
        default=None,
        description="Web UI password: plain, or a pbkdf2_sha256$... hash from "
        "`etrack web --hash-password`. Compared in constant time.",
    )
    etrack_secret_key: SecretStr | None = Field(
        default=None,
        description="Signs web sessions and CSRF tokens; generated once into "
        "ETRACK_DATA_DIR/web-secret-key when unset.",
    )
    etrack_web_accounts: str | None = Field(
        default=None,
        description="Comma-separated accounts the web UI and API show; unset = every account. "
        "Other accounts' vehicles are invisible to this web server's users.",
    )
    etrack_web_allowed_hosts: str = Field(
        default="",
        description="Comma-separated Host names (without port) the web UI answers besides "
        "the loopback ones (localhost, 127.0.0.1, [::1]); any other Host header gets 400, "
        "which stops DNS rebinding. Set it to the name users type when a proxy or a DNS name "
        "points at this server.",
    )
    etrack_web_login_free_failures: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=5,
        description="Failed web logins (form or HTTP Basic) from one client address before it "
        "must wait between attempts (slowed down, never locked out: the right password from "
        "another address still works; a login name's own failures only add a short delay).",
    )
    etrack_web_login_lock_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=1.0,
        description="Seconds of the first wait after ETRACK_WEB_LOGIN_FREE_FAILURES failures; "
        "each further failure doubles it, up to ETRACK_WEB_LOGIN_LOCK_MAX_S.",
    )
    etrack_web_login_lock_max_s: Annotated[float, Field(gt=0, le=86400)] = Field(
        default=900.0,
        description="Longest wait between web login attempts in seconds; failures older than "
        "this are forgotten.",
    )
    etrack_web_session_idle_s: Annotated[int, Field(ge=60, le=30 * 86400)] = Field(
        default=7200,
        description="A web session unused for this many seconds ends (log in again).",
    )
    etrack_web_session_max_s: Annotated[int, Field(ge=60, le=90 * 86400)] = Field(
        default=43200,
        description="A web session ends this many seconds after its login, however busy.",
    )
    etrack_web_trust_proxy: bool = Field(
        default=False,
        description="Believe X-Forwarded-Proto and X-Forwarded-For from the reverse proxy in "
        "front (https: the session cookie gets Secure; the audit records the client's address). "
        "Only when every request comes through that proxy.",
    )
    etrack_audit_retention: Annotated[Duration | None, BeforeValidator(_blank_is_none)] = Field(
        default=Duration(2, "y"),
        description="Delete audit rows older than this (e.g. 400d, 2y); empty keeps them all. "
        "Applied daily by the worker with the positions' retention.",
    )
    etrack_share_link_days: Annotated[int, Field(ge=1, le=365)] = Field(
        default=7,
        description="Days a share link of a vehicle-day stays valid unless given --expires.",
    )
    etrack_web_password_threads: Annotated[int, Field(ge=1, le=32)] = Field(
        default=2,
        description="Threads that check web passwords (pbkdf2 is slow on purpose) at once; "
        "further checks wait, so a flood of logins cannot stall the server.",
    )
    etrack_tile_url: str = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Map tile server URL template (its host is allowed by the CSP); empty = "
        "no base map (routes, markers and lists still show).",
    )
    etrack_tile_attribution: str = Field(
        default="&copy; OpenStreetMap contributors", description="Map attribution text."
    )
    etrack_ui_lang: Literal["pt-BR", "en"] = Field(
        default="pt-BR",
        description="Web UI language: pt-BR (dates DD/MM/YYYY, decimal comma) or en.",
    )
    etrack_job_poll_s: Annotated[float, Field(gt=0)] = Field(
        default=2.0,
        description="Seconds between two polls for jobs when no notification came (a job held "
        "back by a Procrastinate lock waits for the next poll).",
    )
    etrack_job_heartbeat_s: Annotated[float, Field(gt=0)] = Field(
        default=10.0, description="Seconds between two heartbeats of a worker."
    )
    etrack_job_stalled_after_s: Annotated[float, Field(gt=0)] = Field(
        default=60.0,
        description="A worker silent this many seconds is dead: its running jobs are retried "
        "(must be at least twice ETRACK_JOB_HEARTBEAT_S).",
    )
    etrack_job_recover_cron: Cron = Field(
        default="* * * * *",
        description="Schedule of the stalled-job recovery (cron; a 6th field adds seconds).",
    )
    etrack_late_data_margin_s: Annotated[float, Field(ge=0)] = Field(
        default=10800.0,
        description="A backfilled (plate, day) counts as done only when fetched this many "
        "seconds after the day ended (account's time zone): trackers out of coverage upload "
        "their buffered positions late. Fetched earlier, it is fetched again by the next "
        "backfill over that day.",
    )
    etrack_api_breaker_failures: Annotated[int, Field(ge=1)] = Field(
        default=3,
        description="After this many API calls of one account in a row failed (API "
        "unavailable), a backfill stops sending that account's requests and probes with one "
        "call every ETRACK_API_BREAKER_WAIT_S until the API answers.",
    )
    etrack_api_breaker_wait_s: Annotated[float, Field(gt=0)] = Field(
        default=30.0,
        description="Seconds between two probes of an account's unavailable API (see "
        "ETRACK_API_BREAKER_FAILURES).",
    )
    etrack_log_dir: Path = Field(
        default=Path("e-track/logs"),
        description="Where scheduled runs write their rotated log files (fetch_latest.log, "
        "compute_routes.log), relative to the working directory.",
    )

    # ------------------------------------------------------------------ checks
    @field_validator("etrac_schema")
    @classmethod
    def _plain_identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(
                f"expected a plain lower-case SQL identifier like e_track, got {value!r}"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("postgres", "postgresql"):
            # Never echo the URL: it may carry a password.
            raise ValueError("expected a postgresql://user@host:port/dbname URL")
        return value

    @field_validator("etrac_log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in _LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}, got {value!r}")
        return value.upper()

    @field_validator("etrack_daily_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        match = re.match(r"^([01]?\d|2[0-3]):([0-5]\d)$", value.strip())
        if not match:
            raise ValueError(f"expected a local time HH:MM like 01:00, got {value!r}")
        return f"{int(match[1]):02d}:{match[2]}"

    @model_validator(mode="after")
    def _heartbeats_fit(self) -> Settings:
        if self.etrack_job_stalled_after_s < 2 * self.etrack_job_heartbeat_s:
            raise ValueError(
                "ETRACK_JOB_STALLED_AFTER_S must be at least twice ETRACK_JOB_HEARTBEAT_S, "
                "or live workers would be taken for dead"
            )
        return self

    @field_validator("etrac_timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        _parse_timeout(value)
        return value

    @field_validator(
        "pghost",
        "pgdatabase",
        "pguser",
        "etrac_user",
        "etrack_accounts_file",
        "etrack_web_accounts",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    # --------------------------------------------------------------- derived
    @property
    def tz(self) -> ZoneInfo:
        """ETRAC_TIMEZONE, by its short name."""
        return self.etrac_timezone

    @property
    def pace_bounds(self) -> PaceBounds:
        """The adaptive pace's start, floor and maximum (etrack.pace). A start
        (ETRAC_RATE_LIMIT, or an account's rate_limit) outside ETRAC_RATE_MIN..
        ETRAC_RATE_MAX widens them: whoever set it said the account allows it."""
        start = self.etrac_rate_limit
        return PaceBounds(
            start=start,
            floor=min(self.etrac_rate_min, start),
            ceiling=max(self.etrac_rate_max, start),
            adapt=self.etrac_rate_adapt,
        )

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds."""
        return _parse_timeout(self.etrac_timeout)

    @property
    def web_accounts(self) -> frozenset[str] | None:
        """The accounts the web shows (ETRACK_WEB_ACCOUNTS), None for all."""
        if not self.etrack_web_accounts:
            return None
        return frozenset(
            part.strip() for part in self.etrack_web_accounts.split(",") if part.strip()
        )

    @property
    def web_allowed_hosts(self) -> frozenset[str]:
        """ETRACK_WEB_ALLOWED_HOSTS, lower-cased."""
        return frozenset(
            part.strip().lower()
            for part in self.etrack_web_allowed_hosts.split(",")
            if part.strip()
        )

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None and not any(
            (self.pghost, self.pgport, self.pgdatabase, self.pguser, self.pgpassword)
        )

    def for_account(self, account: Account) -> Settings:
        """These settings with the account's ETRAC_* values (credentials, API
        base, zone, budget): what one account's client, limiter and collector
        read. The same object when the account is these settings' own."""
        update: dict[str, object] = {
            "etrac_user": account.user,
            "etrac_key": account.key,
            "etrac_api_base": account.api_base,
            "etrac_timezone": account.timezone,
            "etrac_rate_limit": account.rate_limit,
        }
        if all(getattr(self, name) == value for name, value in update.items()):
            return self
        # Every value was validated as part of the account: no re-validation.
        return self.model_copy(update=update)


def _parse_timeout(value: str) -> tuple[float, float]:
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError:
        raise ValueError(f"expected seconds like 30 or 10,30, got {value!r}") from None
    if len(numbers) not in (1, 2) or any(n <= 0 for n in numbers):
        raise ValueError(f"expected seconds like 30 or 10,30, got {value!r}")
    if len(numbers) == 1:
        return (min(10.0, numbers[0]), numbers[0])
    return (numbers[0], numbers[1])


def env_files() -> list[Path]:
    """The `.env` files settings are read from, the first naming a variable
    winning (real environment variables win over all): `.env` in the current
    directory, then in the project root, the nearest directory at or above the
    current one holding `e-track/` (or etrack's own `pyproject.toml`: another
    project's never counts, its `.env` is not ours), then the same found
    from the running script (the seed's `e-track/*.py`, or a checkout's
    `.venv/bin/etrack`), so `cd e-track && python3 collector.py` finds the
    checkout's `.env`. Missing files are skipped."""
    here = Path.cwd()
    found = [here / ".env"]
    for start in (here, Path(sys.argv[0]).resolve().parent if sys.argv[0] else here):
        root = next(
            (
                d
                for d in (start, *start.parents)
                if (d / "e-track").is_dir() or _is_etrack_project(d / "pyproject.toml")
            ),
            None,
        )
        if root is not None and root / ".env" not in found:
            found.append(root / ".env")
    return found


def _is_etrack_project(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r'^name\s*=\s*"etrack"\s*$', text, re.MULTILINE) is not None


def load_settings(**overrides: Any) -> Settings:
    """Build the settings (from `env_files()` unless `_env_file` is given),
    turning validation errors into one clear line."""
    # pydantic-settings lets a later file win: give them last-wins order.
    overrides.setdefault("_env_file", tuple(reversed(env_files())))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        field, message = _first_problem(exc, Settings)
        if field is None:
            raise SettingsError(f"invalid settings: {message}") from None
        raise SettingsError(f"invalid setting {field.upper()}: {message}") from None


def _first_problem(exc: ValidationError, model: type[BaseModel]) -> tuple[str | None, str]:
    """(field name or None, one line) of the first error, never a secret value."""
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else None
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] in ("int_parsing", "float_parsing", "bool_parsing"):
        kind = first["type"].split("_")[0]
        expected = {"int": "an integer", "float": "a number", "bool": "1/0, true/false"}[kind]
        message = f"expected {expected}, got {first.get('input')!r}"
    elif "input" in first and first["type"] not in ("value_error",):
        field = model.model_fields.get(name) if name is not None else None
        secret = field is not None and "SecretStr" in repr(field.annotation)
        if not secret:
            message = f"{message}, got {first['input']!r}"
    extra = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return name, f"{message}{extra}"


def documented_settings() -> list[tuple[str, str, str, bool]]:
    """(VARIABLE, default as text, description, secret) for every setting."""
    rows = []
    for name, field in Settings.model_fields.items():
        secret = "SecretStr" in repr(field.annotation)
        if field.default_factory is not None:
            default = "(platform user data dir)/etrack" if name == "etrack_data_dir" else ""
        elif field.default is None:
            default = ""
        elif isinstance(field.default, bool):
            default = "1" if field.default else "0"
        else:
            default = str(field.default)
        rows.append((name.upper(), default, field.description or "", secret))
    return rows


def render_env_example() -> str:
    """The text of .env.example: every variable, its default and meaning."""
    lines = [
        "# etrack settings. Copy to .env (read from the current directory, then from",
        "# the project root, the directory holding e-track/; real environment",
        "# variables win) and uncomment what you change; each line shows the default.",
        "# Generated from src/etrack/config.py: `etrack settings --env-example`.",
        "",
    ]
    for variable, default, description, _secret in documented_settings():
        lines.append(f"# {description}")
        value = "" if default.startswith("(") else default
        # Commented out: a copied .env then pins nothing but what you change
        # (an uncommented default would override systemd's Environment= too).
        lines.append(f"# {variable}={value}")
        lines.append("")
    return "\n".join(lines)


# =================================================================== accounts
# The accounts file (ETRACK_ACCOUNTS_FILE):
#
#     [accounts.north]
#     user = "fleet@north.example"
#     key_env = "NORTH_ETRAC_KEY"      # or: key = "..."
#     api_base = "https://api.etrac.com.br/monitoramento"   # default ETRAC_API_BASE
#     timezone = "America/Manaus"      # default ETRAC_TIMEZONE
#     rate_limit = 5                   # requests per second, default ETRAC_RATE_LIMIT
#
# Without the file, the one account of ETRAC_USER / ETRAC_KEY is `default`, so
# a single-account installation behaves exactly as before. The file is read
# again on every use (it is small): fixing a key, in the file or in the
# environment variable it names, needs no restart.

DEFAULT_ACCOUNT = "default"
_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ACCOUNT_KEYS = {"user", "key", "key_env", "api_base", "timezone", "rate_limit"}


class Account(BaseModel):
    """One eTrac login: credentials, API base, time zone and request budget.

    `Settings.for_account` gives the settings one account's fetches run with.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    user: str | None
    key: SecretStr | None
    api_base: ApiBase
    timezone: TimeZone
    rate_limit: RateLimit

    @property
    def fingerprint(self) -> str:
        """Changes when the credentials or the API base change: a failing
        account whose entry changed is tried again at once. A digest, so the
        key itself is never stored."""
        key = self.key.get_secret_value() if self.key else ""
        text = f"{self.user}\0{key}\0{self.api_base}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_accounts(settings: Settings) -> list[Account]:
    """The configured accounts, in the file's order (or the one `default`)."""
    path = settings.etrack_accounts_file
    if path is None:
        return [
            Account(
                name=DEFAULT_ACCOUNT,
                user=settings.etrac_user,
                key=settings.etrac_key,
                api_base=settings.etrac_api_base,
                timezone=settings.etrac_timezone,
                rate_limit=settings.etrac_rate_limit,
            )
        ]
    return _read_accounts_file(Path(path), settings)


def select_accounts(accounts: Sequence[Account], name: str | None) -> list[Account]:
    """All accounts, or the one named by `--account NAME`."""
    if name is None:
        return list(accounts)
    chosen = [account for account in accounts if account.name == name]
    if not chosen:
        known = ", ".join(account.name for account in accounts)
        raise AccountsError(f"unknown account {name!r}; accounts: {known}")
    return chosen


def read_toml(
    path: Path, problem: Callable[[str], Exception], *, missing: str = "no such file"
) -> dict[str, Any]:
    """A TOML file's tables, or `problem(what is wrong)` raised: missing,
    unreadable, not UTF-8, not TOML (the accounts and the events files)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise problem(missing) from None
    except OSError as exc:
        raise problem(f"cannot read it ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise problem("not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise problem(f"not valid TOML: {exc}") from None


def _read_accounts_file(path: Path, settings: Settings) -> list[Account]:
    def problem(message: str) -> AccountsError:
        return AccountsError(f"accounts file {path}: {message}")

    data = read_toml(path, problem)
    table = data.get("accounts")
    if not isinstance(table, dict) or not table:
        raise problem("expected one [accounts.NAME] table per account, found none")
    unknown = set(data) - {"accounts"}
    if unknown:
        raise problem(f"unknown top-level key {sorted(unknown)[0]!r} (only [accounts.NAME])")
    accounts: list[Account] = []
    users: dict[str, str] = {}
    for name, entry in table.items():
        if not _ACCOUNT_NAME.match(name):
            raise problem(f"account name {name!r}: expected lower-case letters, digits, '-' or '_'")
        if not isinstance(entry, dict):
            raise problem(f"account {name!r}: expected a table [accounts.{name}]")
        account = _account(name, entry, settings, problem)
        user = (account.user or "").casefold()
        if user in users:
            raise problem(f"accounts {users[user]!r} and {name!r} have the same user")
        users[user] = name
        accounts.append(account)
    return accounts


def _account(
    name: str,
    entry: dict[str, Any],
    settings: Settings,
    problem: Callable[[str], AccountsError],
) -> Account:
    extra = set(entry) - _ACCOUNT_KEYS
    if extra:
        raise problem(f"account {name!r}: unknown key {sorted(extra)[0]!r}")
    user = entry.get("user")
    if not isinstance(user, str) or not user.strip():
        raise problem(f"account {name!r}: 'user' (the eTrac login e-mail) is missing")
    if ("key" in entry) == ("key_env" in entry):
        raise problem(f"account {name!r}: give exactly one of 'key' or 'key_env'")
    if "key" in entry:
        key = entry["key"]
        if not isinstance(key, str) or not key:
            raise problem(f"account {name!r}: 'key' must be a non-empty string")
    else:
        variable = entry["key_env"]
        if not isinstance(variable, str) or not variable:
            raise problem(f"account {name!r}: 'key_env' must name an environment variable")
        key = os.environ.get(variable, "")
        if not key:
            raise problem(f"account {name!r}: environment variable {variable} is not set")
    try:
        # Validated by the same types as the variables they stand for.
        return Account(
            name=name,
            user=user.strip(),
            key=SecretStr(key),
            api_base=entry.get("api_base", settings.etrac_api_base),
            timezone=entry.get("timezone", settings.etrac_timezone),
            rate_limit=entry.get("rate_limit", settings.etrac_rate_limit),
        )
    except ValidationError as exc:
        field, message = _first_problem(exc, Account)
        raise problem(f"account {name!r}: {field}: {message}") from None
