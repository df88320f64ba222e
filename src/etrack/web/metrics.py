"""/metrics in the Prometheus text format.

Two sources: what this process saw (requests by endpoint and outcome, their
latency), counted as they happen; and what the database knows (job runs, their
durations and counts such as rows inserted and retries, backfill partitions,
the age of the newest position), read at scrape time. With several web
workers each one counts its own requests; the database figures are the same
from any of them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from etrack.web.reader import Reader

__all__ = ["MetricsMiddleware", "WebMetrics", "render_metrics"]


class WebMetrics:
    """This process's request counters, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "etrack_http_requests",
            "HTTP requests served, by endpoint (route template) and outcome.",
            ("endpoint", "method", "outcome"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "etrack_http_request_duration_seconds",
            "Time to answer, by endpoint (route template).",
            ("endpoint",),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
            registry=self.registry,
        )
        # Set by security.LoginGuard.
        self.login_failures = Counter(
            "etrack_web_login_failures",
            "Failed web logins (wrong user or password), by way (form, basic).",
            ("via",),
            registry=self.registry,
        )
        self.login_refused = Counter(
            "etrack_web_login_refused",
            "Web logins refused unchecked (429) because the user name or the client "
            "address is locked out, by way (form, basic).",
            ("via",),
            registry=self.registry,
        )
        self.login_locked = Gauge(
            "etrack_web_login_locked",
            "User names and client addresses locked out of the web login now.",
            registry=self.registry,
        )
        self.password_checks = Gauge(
            "etrack_web_password_checks_running",
            "Password checks (pbkdf2) running in threads now.",
            registry=self.registry,
        )


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status < 500:
        return "client_error"
    return "server_error"


class MetricsMiddleware:
    """Counts every answer under its route template (not the raw path: one
    series per endpoint, not one per plate)."""

    def __init__(self, app: ASGIApp, metrics: WebMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith("/static/"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            endpoint = str(getattr(route, "path", None) or "unmatched")
            self.metrics.requests.labels(
                endpoint, scope.get("method", ""), outcome_of(status)
            ).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


class _Snapshot(Collector):
    """Gauges computed from one database read at scrape time."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


async def database_families(
    reader: Reader, scheduler: str, logins: Mapping[str, str] | None = None
) -> list[Metric]:
    now = datetime.now(UTC)
    up = GaugeMetricFamily("etrack_database_up", "1 when PostgreSQL answered this scrape.")
    state = GaugeMetricFamily(
        "etrack_scheduler_running",
        "1 when this web process runs the embedded scheduler (worker).",
        labels=("state",),
    )
    state.add_metric((scheduler,), 1.0 if scheduler == "running" else 0.0)
    try:
        tables = await reader.row("web_metrics_tables")
        runs = await reader.rows("web_metrics_runs")
        last = await reader.rows("web_metrics_last_durations")
        counts = await reader.rows("web_metrics_counts")
        partitions = await reader.rows("web_metrics_partitions")
        paces = await reader.rows("rates_all")
    except Exception:
        up.add_metric((), 0.0)
        return [up, state]
    up.add_metric((), 1.0)
    families: list[Metric] = [up, state]
    families.extend(_table_families(tables or {}, now))
    families.extend(_run_families(runs, last, counts))
    open_parts = GaugeMetricFamily(
        "etrack_backfill_partitions_open",
        "Backfill (plate, day) partitions not done yet, by state.",
        labels=("state",),
    )
    for row in partitions:
        open_parts.add_metric((str(row["state"]),), float(row["partitions"]))
    families.append(open_parts)
    families.extend(_pace_families(paces, logins or {}))
    return families


def _pace_families(paces: list[dict[str, Any]], logins: Mapping[str, str]) -> list[Metric]:
    """Each account's API pace (etrack.pace), shared by every process, by
    account name (*logins*: name -> its rate_limits row's key); rows of
    other accounts are left out."""
    pace = GaugeMetricFamily(
        "etrack_api_pace_requests_per_second",
        "The pace every process of the account sends at now (adaptive: ETRAC_RATE_ADAPT).",
        labels=("account",),
    )
    learning = GaugeMetricFamily(
        "etrack_api_pace_learning",
        "1 while the account's pace is still growing from its start (no 429 seen yet).",
        labels=("account",),
    )
    throttled_at = GaugeMetricFamily(
        "etrack_api_pace_last_429_rate",
        "The pace when the account's last 429 came, requests/s.",
        labels=("account",),
    )
    requests = GaugeMetricFamily(
        "etrack_api_requests",
        "API answers the pace learned from, all processes.",
        labels=("account",),
    )
    throttled = GaugeMetricFamily(
        "etrack_api_throttled", "API answers that were 429, all processes.", labels=("account",)
    )
    latency = GaugeMetricFamily(
        "etrack_api_latency_seconds",
        "Moving average of the API's answer time (the pace backs off when it climbs).",
        labels=("account",),
    )
    by_login = {str(row["account"]): row for row in paces}
    for name, login in sorted(logins.items()):
        row = by_login.get(login)
        if row is None:
            continue
        labels = (name,)
        if row["rate"] is not None:
            pace.add_metric(labels, float(row["rate"]))
            still = row["throttled_at_rate"] is None and row["eased_at_rate"] is None
            learning.add_metric(labels, 1.0 if still else 0.0)
        if row["throttled_at_rate"] is not None:
            throttled_at.add_metric(labels, float(row["throttled_at_rate"]))
        requests.add_metric(labels, float(row["requests"]))
        throttled.add_metric(labels, float(row["throttled"]))
        if row["latency_s"] is not None:
            latency.add_metric(labels, float(row["latency_s"]))
    return [pace, learning, throttled_at, requests, throttled, latency]


def _table_families(tables: dict[str, Any], now: datetime) -> list[Metric]:
    positions = GaugeMetricFamily(
        "etrack_positions_rows_estimate", "Rows in positions (planner estimate, no scan)."
    )
    positions.add_metric((), float(tables.get("positions") or 0))
    vehicles = GaugeMetricFamily("etrack_vehicles", "Vehicles (terminals rows).")
    vehicles.add_metric((), float(tables.get("terminals") or 0))
    families: list[Metric] = [positions, vehicles]
    newest = tables.get("newest_position")
    if newest is not None:
        lag = GaugeMetricFamily(
            "etrack_fetch_lag_seconds",
            "Age of the newest position held for any vehicle (how far behind the data is).",
        )
        lag.add_metric((), max(0.0, (now - newest).total_seconds()))
        families.append(lag)
    return families


def _run_families(
    runs: list[dict[str, Any]], last: list[dict[str, Any]], counts: list[dict[str, Any]]
) -> list[Metric]:
    total = GaugeMetricFamily(
        "etrack_job_runs",
        "Job runs recorded (job_runs), by kind and status.",
        labels=("kind", "status"),
    )
    seconds = GaugeMetricFamily(
        "etrack_job_run_seconds",
        "Total duration of the recorded job runs, by kind and status.",
        labels=("kind", "status"),
    )
    finished = GaugeMetricFamily(
        "etrack_job_last_finished_timestamp_seconds",
        "When the newest run of a kind finished with a status (Unix time).",
        labels=("kind", "status"),
    )
    for row in runs:
        labels = (str(row["kind"]), str(row["status"]))
        total.add_metric(labels, float(row["runs"]))
        seconds.add_metric(labels, float(row["seconds"]))
        if row["last_finished"] is not None:
            finished.add_metric(labels, row["last_finished"].timestamp())
    duration = GaugeMetricFamily(
        "etrack_job_last_duration_seconds",
        "Duration of the newest finished run of each kind.",
        labels=("kind",),
    )
    for row in last:
        if row["seconds"] is not None:
            duration.add_metric((str(row["kind"]),), float(row["seconds"]))
    counted = GaugeMetricFamily(
        "etrack_job_counts",
        "Sums of what the job runs counted (rows inserted, API calls, retries...), by kind.",
        labels=("kind", "count"),
    )
    for row in counts:
        counted.add_metric((str(row["kind"]), str(row["key"])), float(row["total"]))
    return [total, seconds, finished, duration, counted]


async def render_metrics(
    metrics: WebMetrics,
    reader: Reader | None,
    scheduler: str,
    logins: Mapping[str, str] | None = None,
) -> bytes:
    registry = CollectorRegistry()
    families: list[Metric] = []
    if reader is not None:
        families = await database_families(reader, scheduler, logins)
    registry.register(_Snapshot(families))
    return generate_latest(metrics.registry) + generate_latest(registry)
