"""The seed's command lines (`python3 e-track/collector.py --fetch-latest`...),
translated into `etrack` commands. The files under e-track/ only call these.

A front end of the whole command line, so it sits above the root app
(etrack.cli imports none of this).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from etrack.cli import main
from etrack.errors import EXIT_USAGE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _run(prog: str, argv: list[str]) -> NoReturn:
    main(argv, prog_name=prog)
    sys.exit(0)


def collector(args: Sequence[str] | None = None) -> NoReturn:
    """e-track/collector.py"""
    parser = _Parser(
        prog="collector.py",
        description="eTrac collector (seed-compatible front end of `etrack`).",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--fetch-latest", action="store_true", help="latest positions of the fleet")
    action.add_argument("--fetch-plate", metavar="PLATE", help="latest position of one plate")
    action.add_argument("--fetch-history", metavar="PLATE", help="history of one plate")
    action.add_argument(
        "--fetch-trips", metavar="PLATE", help="provider trip summaries of one plate"
    )
    action.add_argument(
        "--compute-routes-current-day-all",
        action="store_true",
        help="compute today's routes for every plate",
    )
    action.add_argument("--compute-route-plate", metavar="PLATE", help="compute one plate's route")
    parser.add_argument("--loop", action="store_true", help="with --fetch-latest: keep running")
    parser.add_argument("--interval", type=float, help="with --loop: seconds between fetches")
    parser.add_argument("--date", help="day: YYYY-MM-DD or DD/MM/YYYY")
    parser.add_argument("--date-start", help="range start (with --fetch-history)")
    parser.add_argument("--date-end", help="range end (with --fetch-history)")
    parser.add_argument(
        "--compute-route-date", metavar="DATE", help="day for --compute-route-plate"
    )
    parser.add_argument("--plates", help="comma-separated plates")
    parser.add_argument("--plates-file", help="file with one plate per line")
    ns = parser.parse_args(args)

    def reject_extra(allowed: set[str]) -> None:
        given = {
            name
            for name in ("loop", "interval", "date", "date_start", "date_end",
                         "compute_route_date", "plates", "plates_file")
            if getattr(ns, name) not in (None, False)
        }  # fmt: skip
        extra = given - allowed
        if extra:
            flags = ", ".join("--" + e.replace("_", "-") for e in sorted(extra))
            parser.error(f"{flags} cannot be used with this action")

    argv: list[str]
    if ns.fetch_latest:
        reject_extra({"loop", "interval"})
        argv = ["fetch-latest"]
        if ns.loop:
            argv.append("--loop")
        if ns.interval is not None:
            argv += ["--interval", str(ns.interval)]
    elif ns.fetch_plate:
        reject_extra(set())
        argv = ["fetch-plate", ns.fetch_plate]
    elif ns.fetch_history:
        reject_extra({"date", "date_start", "date_end"})
        argv = ["fetch-history", ns.fetch_history]
        for flag, value in (
            ("--date", ns.date),
            ("--date-start", ns.date_start),
            ("--date-end", ns.date_end),
        ):
            if value is not None:
                argv += [flag, value]
    elif ns.fetch_trips:
        reject_extra({"date"})
        if ns.date is None:
            parser.error("--fetch-trips needs --date")
        argv = ["fetch-trips", ns.fetch_trips, "--date", ns.date]
    elif ns.compute_routes_current_day_all:
        reject_extra({"plates", "plates_file", "date"})
        argv = ["routes", "compute", "--refresh-latest"]
        argv += _plate_flags(ns)
        if ns.date is not None:
            argv += ["--date", ns.date]
    else:
        reject_extra({"compute_route_date", "date"})
        day = ns.compute_route_date or ns.date
        if day is None:
            parser.error("--compute-route-plate needs --compute-route-date")
        argv = ["routes", "compute", "--plates", ns.compute_route_plate, "--date", day]
    _run("collector.py", argv)


def _plate_flags(ns: argparse.Namespace) -> list[str]:
    flags: list[str] = []
    if ns.plates:
        flags += ["--plates", ns.plates]
    if ns.plates_file:
        flags += ["--plates-file", ns.plates_file]
    return flags


# ------------------------------------------------------------- jobs scripts
# Each script forwards every option it was given, as the same flag, to its
# `etrack` command.
def _add_range_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date-start", required=True, help="first day: YYYY-MM-DD")
    parser.add_argument("--date-end", required=True, help="last day (included)")


def _add_plate_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plates", help="comma-separated plates (default: every plate)")
    parser.add_argument("--plates-file", help="file with one plate per line")


def _add_pacing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sleep", type=float, help="seconds between requests (ETRAC_RATE_SLEEP)")
    parser.add_argument("--batch-size", type=int, help="plates per batch (ETRAC_BATCH_SIZE)")


def _forward(ns: argparse.Namespace) -> list[str]:
    """--option value for every given option, --flag for every true flag, in the
    order the parser declares them."""
    argv: list[str] = []
    for name, value in vars(ns).items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    return argv


def backfill_controller(args: Sequence[str] | None = None) -> NoReturn:
    """e-track/backfill_controller.py"""
    parser = _Parser(
        prog="backfill_controller.py",
        description="Backfill history per plate and day, then routes (seed-compatible "
        "front end of `etrack backfill`).",
    )
    _add_range_options(parser)
    _add_plate_options(parser)
    _add_pacing_options(parser)
    parser.add_argument("--concurrency", type=int, help="partitions worked at once")
    parser.add_argument("--with-trips", action="store_true", help="also fetch the trips")
    parser.add_argument("--enqueue-only", action="store_true", help="leave the work to workers")
    parser.add_argument("--force", action="store_true", help="fetch done days again")
    _run("backfill_controller.py", ["backfill", *_forward(parser.parse_args(args))])


def daily_routes_runner(args: Sequence[str] | None = None) -> NoReturn:
    """e-track/daily_routes_runner.py"""
    parser = _Parser(
        prog="daily_routes_runner.py",
        description="Yesterday's history, trips and routes of every plate (seed-compatible "
        "front end of `etrack daily`).",
    )
    parser.add_argument("--date", help="day: YYYY-MM-DD or DD/MM/YYYY (default: yesterday)")
    _add_plate_options(parser)
    _add_pacing_options(parser)
    _run("daily_routes_runner.py", ["daily", *_forward(parser.parse_args(args))])


def summarize_backfill(args: Sequence[str] | None = None) -> NoReturn:
    """e-track/summarize_backfill.py"""
    parser = _Parser(
        prog="summarize_backfill.py",
        description="Per plate: days with routes and points over a range (seed-compatible "
        "front end of `etrack backfill summary`).",
    )
    _add_range_options(parser)
    _add_plate_options(parser)
    _run("summarize_backfill.py", ["backfill", "summary", *_forward(parser.parse_args(args))])
