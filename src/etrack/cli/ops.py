"""Operations commands: `etrack deploy systemd|cron|compose` and `etrack prune`.

They only wire options to etrack.deploy and etrack.store.retention; `register(app)`
adds them to the `etrack` Typer app (calling it twice is harmless).
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from etrack.cli.common import database, echo, settings, user_input
from etrack.config import Duration, Settings, load_settings, parse_duration
from etrack.deploy import compose, cron, systemd
from etrack.deploy.common import WEB_PORT
from etrack.errors import EXIT_FAILURE, CrontabError, SettingsError, UsageError
from etrack.store import db
from etrack.store.retention import DEFAULT_BATCH, cutoff_for, prune, prune_audit_with_settings

__all__ = ["deploy_app", "prune_command", "register"]

deploy_app = typer.Typer(
    help="Generate deployment files: systemd units, crontab lines, Docker Compose.",
    no_args_is_help=True,
)

OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output", help="Write the files into this folder (created) instead of printing them."
    ),
]
WorkdirOpt = Annotated[
    Path | None,
    typer.Option(
        "--workdir", help="The project checkout the services run in (default: current folder)."
    ),
]


# ------------------------------------------------------------------- deploy
def _workdir(workdir: Path | None) -> Path:
    return (workdir or Path.cwd()).expanduser().resolve()


def _emit(files: dict[str, str], output: Path | None) -> None:
    """Write the files into `output`, or print them one after the other."""
    if output is None:
        for index, (name, text) in enumerate(files.items()):
            if len(files) > 1:
                echo(("\n" if index else "") + f"# ===== {name} =====")
            typer.echo(text, nl=False)
        return
    output.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (output / name).write_text(text, encoding="utf-8")
    echo(f"wrote {len(files)} file(s) to {output}: {', '.join(files)}")


def _warn(message: str) -> None:
    typer.echo(f"etrack: note: {message}", err=True)


# ------------------------------------------------------------------ systemd
@deploy_app.command("systemd")
def deploy_systemd(
    user: Annotated[
        str | None,
        typer.Option("--user", help="System user the services run as (default: you)."),
    ] = None,
    workdir: WorkdirOpt = None,
    env_file: Annotated[
        Path | None,
        typer.Option(
            "--env-file",
            help="Settings and secrets file the units read (default: WORKDIR/.env).",
        ),
    ] = None,
    venv: Annotated[
        Path | None,
        typer.Option("--venv", help="Virtualenv holding etrack (default: WORKDIR/.venv)."),
    ] = None,
    database: Annotated[
        str,
        typer.Option(
            "--database",
            help="auto: embedded unless the env file (or environment) sets DATABASE_URL/PG*; "
            "embedded adds etrack-db.service; server does not.",
        ),
    ] = "auto",
    web_host: Annotated[
        str, typer.Option("--web-host", help="Address the web UI listens on.")
    ] = "127.0.0.1",
    web_port: Annotated[
        int, typer.Option("--web-port", min=1, max=65535, help="Port of the web UI.")
    ] = WEB_PORT,
    output: OutputOpt = None,
) -> None:
    """systemd units: web UI, worker, the seed's collector, and timers (fetch-latest,
    daily, prune) as the alternative to a worker. Secrets stay in the env file."""
    folder = _workdir(workdir)
    env_path = (env_file or folder / ".env").expanduser().absolute()
    current = _settings_from(env_path)
    mode = _database_mode(database, current)
    venv_path = (venv or folder / ".venv").expanduser().absolute()
    options = systemd.SystemdOptions(
        user=user or getpass.getuser(),
        workdir=folder,
        env_file=env_path,
        venv=venv_path,
        embedded_db=mode == "embedded",
        timezone=current.etrac_timezone.key,
        fetch_cron=current.etrack_fetch_cron,
        daily_at=current.etrack_daily_at,
        web_host=web_host,
        web_port=web_port,
    )
    files = user_input(lambda: systemd.render_systemd(options))
    if not options.etrack.exists():
        _warn(f"{options.etrack} does not exist here: create the virtualenv there first")
    if options.user == "root":
        _warn("the services would run as root; prefer a dedicated user (--user etrack)")
    _emit(files, output)
    if output is not None:
        echo(
            f"install: sudo cp {output}/*.service {output}/*.timer /etc/systemd/system/ "
            "&& sudo systemctl daemon-reload"
        )
        echo("then: sudo systemctl enable --now etrack-web.service etrack-worker.service")
        echo(
            "  or, without a worker: sudo systemctl enable --now etrack-web.service "
            "etrack-fetch-latest.timer etrack-daily.timer etrack-prune.timer"
        )


def _settings_from(env_file: Path) -> Settings:
    """The settings the services will see: the environment plus the env file."""
    if not env_file.is_file():
        return settings()
    try:
        return load_settings(_env_file=str(env_file))
    except SettingsError as exc:
        raise UsageError(f"{env_file}: {exc}") from None


def _database_mode(choice: str, current: Settings) -> Literal["embedded", "server"]:
    if choice == "auto":
        return "embedded" if current.uses_embedded_database else "server"
    if choice in ("embedded", "server"):
        return "embedded" if choice == "embedded" else "server"
    raise UsageError(f"--database: expected auto, embedded or server, got {choice!r}")


# --------------------------------------------------------------------- cron
@deploy_app.command("cron")
def deploy_cron(
    install: Annotated[
        bool,
        typer.Option("--install", help="Add the lines to your crontab (between marker comments)."),
    ] = False,
    uninstall: Annotated[
        bool,
        typer.Option("--uninstall", help="Remove exactly the lines --install added."),
    ] = False,
    workdir: WorkdirOpt = None,
    log_dir: Annotated[
        Path | None,
        typer.Option(
            "--log-dir",
            help="Folder of the two log files the lines append to (default: ETRACK_LOG_DIR "
            "under WORKDIR; the seed wrote /var/log, which needs root).",
        ),
    ] = None,
    daily: Annotated[
        bool,
        typer.Option(
            "--daily",
            help="At ETRACK_DAILY_AT run the daily job (yesterday's history, trips and routes) "
            "instead of the seed's --compute-routes-current-day-all.",
        ),
    ] = False,
    crontab_file: Annotated[
        Path | None,
        typer.Option(
            "--crontab-file",
            hidden=True,
            help="Edit this file instead of the user's crontab (tests, /etc/cron.d).",
        ),
    ] = None,
) -> None:
    """The seed's two crontab lines (latest positions every 2 minutes, routes at
    01:00, each appending to a log file): printed, installed or removed."""
    if install and uninstall:
        raise UsageError("give --install or --uninstall, not both")
    current = settings()
    folder = _workdir(workdir)
    logs = log_dir or current.etrack_log_dir
    logs = (logs if logs.is_absolute() else folder / logs).expanduser()
    lines = user_input(
        lambda: cron.render_cron(
            folder,
            logs,
            fetch_cron=current.etrack_fetch_cron,
            daily_at=current.etrack_daily_at,
            daily=daily,
        )
    )
    block = cron.cron_block(lines, timezone=current.etrac_timezone.key)
    if not (install or uninstall):
        typer.echo(block)
        return
    store: cron.CrontabStore = (
        cron.CrontabFile(crontab_file) if crontab_file else cron.UserCrontab()
    )
    try:
        existing = store.read()
        if uninstall:
            text, changed = cron.remove_cron_block(existing)
            if changed:
                store.write(text)
            echo(
                f"removed etrack's lines from {store.describe()}"
                if changed
                else f"no etrack lines in {store.describe()}; nothing to remove"
            )
            return
        text, changed = cron.install_cron_block(existing, block)
        for line in cron.stray_seed_lines(existing):
            _warn(f"this line outside etrack's block also runs the collector: {line}")
        if changed:
            logs.mkdir(parents=True, exist_ok=True)
            store.write(text)
        echo(
            f"installed etrack's lines in {store.describe()} (logs in {logs})"
            if changed
            else f"etrack's lines are already in {store.describe()}; nothing changed"
        )
    except OSError as exc:
        raise CrontabError(str(exc)) from None


# ------------------------------------------------------------------ compose
@deploy_app.command("compose")
def deploy_compose(output: OutputOpt = None) -> None:
    """docker-compose.yml (PostgreSQL 16, web UI, worker, healthchecks, restart
    policies, settings from .env) and a Dockerfile (slim, non-root, no secrets)."""
    project = Path.cwd().resolve()
    if output is None:
        files = compose.render_compose(".", "Dockerfile")
    else:
        folder = output.expanduser().resolve()
        context = os.path.relpath(project, folder)
        dockerfile = os.path.relpath(folder / "Dockerfile", project)
        files = compose.render_compose(Path(context).as_posix(), Path(dockerfile).as_posix())
    if not (project / "pyproject.toml").is_file():
        _warn(f"{project} is not the etrack project root: the image is built from there")
    _emit(files, output)
    if output is not None:
        env = output / ".env"
        hint = "" if env.exists() else f"etrack settings --env-example > {env}; edit it; "
        echo(f"next: {hint}docker compose -f {output}/docker-compose.yml up -d --build")


# -------------------------------------------------------------------- prune
def prune_command(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Age like 90d, 12w, 24m or 2y (default: ETRACK_RETENTION, and "
            "ETRACK_RETENTION_RAW for the raw JSON).",
        ),
    ] = None,
    raw_only: Annotated[
        bool,
        typer.Option("--raw-only", help="Keep the rows; set their raw JSON to NULL."),
    ] = False,
    routes: Annotated[
        bool,
        typer.Option(
            "--routes",
            help="Also delete routes, their trips and stops, and the provider's trip "
            "summaries of days before the cutoff.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; change nothing.")
    ] = False,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            min=1,
            help="With --raw-only: rows cleared per transaction (a month goes in "
            "batches, then a plain VACUUM).",
        ),
    ] = DEFAULT_BATCH,
) -> None:
    """Retention: drop whole monthly partitions of positions older than the
    cutoff (rows of the default partition are deleted), or clear their raw JSON
    month by month in batches, with progress lines. Idempotent (a re-run after
    an interruption does what is left); routes are kept unless --routes."""
    current = settings()
    if raw_only and routes:
        raise UsageError("--routes goes with a full prune, not with --raw-only")
    passes: list[tuple[Duration, bool, str]] = []  # (duration, raw_only, source)
    if older_than is not None:
        passes.append((_duration(older_than), raw_only, "--older-than"))
    else:
        if not raw_only and current.etrack_retention is not None:
            passes.append((current.etrack_retention, False, "ETRACK_RETENTION"))
        if current.etrack_retention_raw is not None:
            passes.append((current.etrack_retention_raw, True, "ETRACK_RETENTION_RAW"))
        if routes and not any(not raw for _, raw, _ in passes):
            raise UsageError("--routes needs --older-than or ETRACK_RETENTION")
    # The audit log's own retention goes with the settings' prune (the
    # cron and systemd timers run this command, not the worker's task).
    audit_too = older_than is None and not dry_run and current.etrack_audit_retention is not None
    if not passes:
        wanted = (
            "ETRACK_RETENTION_RAW is"
            if raw_only
            else "ETRACK_RETENTION and ETRACK_RETENTION_RAW are"
        )
        echo(f"nothing to prune: {wanted} unset (or give --older-than)")
        if audit_too:
            _prune_audit(current)
        return
    cutoffs = [(cutoff_for(duration, current.tz), raw, source) for duration, raw, source in passes]
    target = database()
    failed = False
    with db.connection(target, autocommit=True) as conn:
        for cutoff, raw, source in cutoffs:
            report = prune(
                conn,
                cutoff,
                raw_only=raw,
                dry_run=dry_run,
                routes=routes and not raw,
                batch=batch,
                progress=echo,
            )
            lines = report.lines()
            lines[0] += f" [{source}]"
            for line in lines:
                echo(line)
            failed = failed or report.counts()["failed"] > 0
    if audit_too:
        _prune_audit(current)
    if failed:
        raise typer.Exit(EXIT_FAILURE)


def _prune_audit(current: Settings) -> None:
    with db.connection(database()) as conn:
        deleted = prune_audit_with_settings(conn, current)
    echo(f"audit: {deleted} row(s) older than {current.etrack_audit_retention} deleted")


def _duration(text: str) -> Duration:
    return user_input(lambda: parse_duration(text))


# ----------------------------------------------------------------- register
def register(app: typer.Typer) -> None:
    """Add `deploy` and `prune` to the `etrack` app (once: calling again is harmless)."""
    commands = {info.name for info in app.registered_commands}
    groups = {info.name for info in app.registered_groups}
    if "deploy" not in groups:
        app.add_typer(deploy_app, name="deploy")
    if "prune" not in commands:
        app.command("prune")(prune_command)
