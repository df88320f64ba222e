"""A month's fleet-summary for 350 vehicles, rendered to XLSX and PDF.

Side by side in one run, over the same stored month (benchmarks/_fleetdata.py:
350 vehicles x 30 days x 100 positions, routes and day summaries stored by
etrack's own route computation):

- bare read: the month's stored day summaries (route_day_summaries) into
  Python tuples, nothing else: the floor of any report read from storage;
- build: `build_report` of fleet-summary (the day summaries, the trips'
  first and last activity, the odometer probes, the events), per vehicle and
  by day;
- XLSX, PDF: rendering that report (per vehicle: 350 rows; by day: 10,500);
- naive: reading the month's positions (what a report that recomputed the
  routes, as the seed's scripts did, must read before computing anything).

Each timing is the median of `--repeat` runs; the peak memory is Python's
(tracemalloc) during one build + render, and the process's maximum RSS.

Usage: python benchmarks/bench_reports.py [--vehicles 350] [--days 30] [--repeat 3]
Target: a month's fleet-summary to XLSX and PDF in a few seconds, read from
stored routes (not recomputed), under 200 MB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _db import bench_database
from _fleetdata import TZ, load_fleet

from etrack.reports.kinds import ReportContext, ReportRequest, build_report
from etrack.reports.pdf import report_pdf
from etrack.reports.table import Report
from etrack.reports.xlsx import report_xlsx
from etrack.store import db


def timed(repeat: int, work: Callable[[], object]) -> tuple[float, object]:
    times: list[float] = []
    result: object = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def peak_mb(work: Callable[[], object]) -> float:
    tracemalloc.start()
    work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vehicles", type=int, default=350)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with bench_database("etrack_bench_reports") as target:
        started = time.perf_counter()
        fleet = load_fleet(target, vehicles=args.vehicles, days=args.days, rows_per_day=100)
        print(
            f"loaded {fleet.rows:,} positions, {len(fleet.plates)} vehicles x {len(fleet.days)}"
            f" days, routes stored, in {time.perf_counter() - started:.0f} s"
        )
        first, last = fleet.days[0], fleet.days[-1]
        ctx = ReportContext(account="bench", tz=TZ, now=datetime.now(TZ))
        with db.connection(target, autocommit=True) as conn:

            def bare() -> int:
                rows = conn.execute(
                    "SELECT * FROM route_day_summaries WHERE rota_date BETWEEN %s AND %s",
                    (first, last),
                ).fetchall()
                return len(rows)

            def naive() -> int:
                lo = datetime.combine(first, datetime.min.time(), TZ)
                hi = datetime.combine(last, datetime.max.time(), TZ)
                rows = conn.execute(
                    "SELECT placa, data_transmissao, latitude, longitude, velocidade, ignicao,"
                    " odometro FROM positions WHERE data_transmissao >= %s"
                    " AND data_transmissao <= %s AND quality = 'valid'",
                    (lo, hi),
                ).fetchall()
                return len(rows)

            def build(by_day: bool) -> Report:
                request = ReportRequest("fleet-summary", first, last, by_day=by_day)
                return build_report(conn, request, ctx)

            bare_s, summaries = timed(args.repeat, bare)
            print(f"bare read of the stored day summaries: {bare_s:.3f} s ({summaries:,} rows)")
            for by_day in (False, True):
                label = "by day" if by_day else "per vehicle"
                build_s, report = timed(args.repeat, lambda b=by_day: build(b))
                assert isinstance(report, Report)
                rows = len(report.sections[0].rows)
                xlsx_s, xlsx = timed(args.repeat, lambda r=report: report_xlsx(r))
                pdf_s, pdf = timed(args.repeat, lambda r=report: report_pdf(r))
                assert isinstance(xlsx, bytes)
                assert isinstance(pdf, bytes)
                total = build_s + xlsx_s + pdf_s
                peak = peak_mb(lambda b=by_day: (report_xlsx(build(b)), report_pdf(build(b))))
                print(
                    f"fleet-summary {label} ({rows:,} rows): build {build_s:.3f} s"
                    f" ({build_s / bare_s:.1f}x the bare read), XLSX {xlsx_s:.3f} s"
                    f" ({len(xlsx) / 1e3:,.0f} kB), PDF {pdf_s:.3f} s ({len(pdf) / 1e3:,.0f} kB);"
                    f" build + both files {total:.2f} s, Python peak {peak:.0f} MB"
                )
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"process max RSS after the reports (loading included): {rss:.0f} MB")
            naive_s, positions = timed(1, naive)
            print(
                f"naive: reading the month's positions to recompute: {naive_s:.3f} s"
                f" ({positions:,} rows), before any computation"
            )


if __name__ == "__main__":
    main()
