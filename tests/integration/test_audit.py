"""Every state change is audited (issue 20): alert rules, report schedules,
geofences, drivers, backfills started and data pruned each write one audit
row with the actor in the context (who, from where), in the change's own
transaction; a no-op re-run writes none; no webhook URL or secret reaches
the log; the worker's tasks act as "worker"; old audit rows are pruned by
ETRACK_AUDIT_RETENTION and recent ones kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from etrack.config import Settings, parse_duration
from etrack.jobs import backfill as bf
from etrack.jobs.app import open_app
from etrack.jobs.env import JobEnv
from etrack.jobs.names import PRUNE_RETENTION
from etrack.model import Fence
from etrack.reports.schedules import check_schedule
from etrack.store import db
from etrack.store import drivers as driver_store
from etrack.store.alerts import RuleSpec, add_rule, remove_rule, set_rule_active
from etrack.store.audit import Actor, acting, list_audit
from etrack.store.geofences import delete_fences, upsert_fences
from etrack.store.reports import ScheduleSpec, add_schedule, remove_schedule, set_schedule_active
from etrack.store.retention import cutoff_for, prune, prune_audit_with_settings
from fixtures_jobs import FAST

TZ = ZoneInfo("America/Sao_Paulo")
ANA = Actor("ana@example.com", "10.1.2.3")
# A webhook whose URL carries credentials, and a signing secret: neither may
# reach the audit log.
HOOK = "https://user:pw@hooks.example.com/x"
SECRET = "s3cr3t-signing-value"


def actions(conn: db.Conn) -> list[tuple[str, str | None, str, str | None]]:
    """(action, target, actor, address) of every audit row, oldest first."""
    rows = conn.execute("SELECT action, target, actor, address FROM audit ORDER BY id").fetchall()
    return [(str(a), t, str(who), where) for a, t, who, where in rows]


def audit_text(conn: db.Conn) -> str:
    rows = conn.execute("SELECT row_to_json(a)::text FROM audit a ORDER BY id").fetchall()
    return "\n".join(str(r[0]) for r in rows)


def by_ana(action: str, target: str) -> tuple[str, str, str, str]:
    return (action, target, ANA.name, "10.1.2.3")


def test_alert_rules_are_audited_once_per_change_without_url_or_secret(conn: db.Conn) -> None:
    rule = RuleSpec(
        name="speeding",
        kinds=("overspeed",),
        plates=("ABC1D23",),
        fleets=None,
        fences=None,
        min_value=None,
        channel="webhook",
        url=HOOK,
        secret=SECRET,
        emails=None,
    )
    with acting(ANA):
        assert add_rule(conn, rule)
        assert not add_rule(conn, rule)  # exists: unchanged, not audited
        assert set_rule_active(conn, "speeding", False)
        assert set_rule_active(conn, "speeding", False)  # already paused
        assert set_rule_active(conn, "speeding", True)
        assert remove_rule(conn, "speeding")
        assert not remove_rule(conn, "speeding")
        assert not set_rule_active(conn, "speeding", True)
    assert actions(conn) == [
        by_ana("rule.add", "speeding"),
        by_ana("rule.pause", "speeding"),
        by_ana("rule.resume", "speeding"),
        by_ana("rule.remove", "speeding"),
    ]
    added = list_audit(conn, action="rule.add")[0]
    assert added.detail["kinds"] == ["overspeed"]
    assert added.detail["plates"] == ["ABC1D23"]
    assert added.detail["webhook"] is True
    text = audit_text(conn)
    assert "pw" not in text
    assert "hooks.example.com" not in text
    assert SECRET not in text


def test_report_schedules_are_audited_once_per_change_without_url_or_secret(
    conn: db.Conn,
) -> None:
    def schedule(to: str | None, webhook: str | None) -> ScheduleSpec:
        return check_schedule(
            kind="fleet-summary", every="weekly", at="07:00", to=to, webhook=webhook,
            formats="xlsx", plates=None, fleet=None, account=None, by_day=False,
            csv_dialect=None, lang="pt-BR", tz=TZ, now=datetime(2025, 3, 4, 12, 0, tzinfo=TZ),
        )  # fmt: skip

    spec = schedule(None, HOOK)
    assert spec.secret is not None
    with acting(ANA):
        schedule_id, new = add_schedule(conn, spec)
        assert new
        assert add_schedule(conn, spec) == (schedule_id, False)
        today = date(2025, 3, 10)
        assert set_schedule_active(conn, schedule_id, False, today)
        assert set_schedule_active(conn, schedule_id, False, today)
        assert set_schedule_active(conn, schedule_id, True, today)
        assert remove_schedule(conn, schedule_id)
        assert not remove_schedule(conn, schedule_id)
        mailed, _ = add_schedule(conn, schedule("boss@example.com", None))
    target = f"#{schedule_id} fleet-summary"
    assert actions(conn) == [
        by_ana("schedule.add", target),
        by_ana("schedule.pause", target),
        by_ana("schedule.resume", target),
        by_ana("schedule.remove", target),
        by_ana("schedule.add", f"#{mailed} fleet-summary"),
    ]
    added = list_audit(conn, action="schedule.add")
    assert added[1].detail["every"] == "weekly"
    assert added[1].detail["webhook"] is True
    assert added[0].detail["emails"] == ["boss@example.com"]
    text = audit_text(conn)
    assert "pw" not in text
    assert "hooks.example.com" not in text
    assert spec.secret not in text


def test_geofences_are_audited_when_added_changed_or_removed(conn: db.Conn) -> None:
    depot = Fence("Depot", "circle", {"type": "Point", "coordinates": [-46.6, -23.5]}, 200.0)
    yard = Fence("Yard", "circle", {"type": "Point", "coordinates": [-46.7, -23.6]}, 100.0)
    with acting(ANA):
        upsert_fences(conn, [depot, yard])
        upsert_fences(conn, [depot, yard])  # the same file imported again
        upsert_fences(conn, [Fence(depot.name, depot.kind, depot.geometry, 300.0)])
        assert delete_fences(conn, ["Yard", "Nowhere"]) == ["Yard"]
        assert delete_fences(conn, ["Yard"]) == []
    assert actions(conn) == [
        by_ana("geofence.add", "Depot"),
        by_ana("geofence.add", "Yard"),
        by_ana("geofence.update", "Depot"),
        by_ana("geofence.remove", "Yard"),
    ]
    assert list_audit(conn, action="geofence.update")[0].detail["radius_m"] == 300.0


def test_drivers_are_audited_when_added_renamed_updated_assigned_or_merged(
    conn: db.Conn,
) -> None:
    start = datetime(2025, 3, 4, 8, 0, tzinfo=TZ)
    with acting(ANA):
        assert driver_store.add_driver(conn, "CNH 1", "João", "Carga", "cnh:1") == "CNH 1"
        driver_store.add_driver(conn, "CNH 1", "João", "Carga", "cnh:1")  # known alias
        driver_store.add_driver(conn, "CNH 1", "Joao", "Carga", "name:joao")  # new alias
        driver_store.add_driver(conn, "CNH 2", "Maria", None, "cnh:2")
        row = driver_store.get_driver(conn, "CNH 1")
        assert row is not None
        assert driver_store.update_driver(conn, row._replace(name="João Silva"))
        assert not driver_store.update_driver(conn, row._replace(name="João Silva"))
        renamed = row._replace(name="João Silva")
        assert driver_store.update_driver(conn, renamed._replace(document="52998224725"))
        end = start + timedelta(hours=8)
        assert driver_store.assign_driver(conn, "CNH 1", "ABC1D23", start, end)
        assert not driver_store.assign_driver(conn, "CNH 1", "ABC1D23", start, end)
        driver_store.merge_drivers(conn, "CNH 2", "CNH 1")
        driver_store.merge_drivers(conn, "CNH 2", "CNH 1")  # gone already
    assert actions(conn) == [
        by_ana("driver.add", "CNH 1"),
        by_ana("driver.alias", "CNH 1"),
        by_ana("driver.add", "CNH 2"),
        by_ana("driver.rename", "CNH 1"),
        by_ana("driver.update", "CNH 1"),
        by_ana("driver.assign", "CNH 1"),
        by_ana("driver.merge", "CNH 2"),
    ]
    assert list_audit(conn, action="driver.rename")[0].detail == {
        "from": "João",
        "to": "João Silva",
    }
    assert list_audit(conn, action="driver.update")[0].detail == {"changed": ["document"]}
    # A CPF is personal data: the audit says it changed, not what it is.
    assert "52998224725" not in audit_text(conn)
    assert list_audit(conn, action="driver.merge")[0].detail == {"into": "CNH 1", "trips": 0}


def test_a_backfill_started_is_audited_once_a_resumed_one_not(
    settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    plates = ["ABC1D23", "XYZ9E87"]
    request = bf.BackfillRequest(date(2025, 3, 1), date(2025, 3, 3), plates)

    async def start_twice() -> tuple[int, int]:
        async with open_app(JobEnv(settings, target, FAST)) as app:
            first = await bf.open_backfill(app, request, plates)
            again = await bf.open_backfill(app, request, plates)
        return first.id, again.id

    with acting(ANA):
        first, again = asyncio.run(start_twice())
    assert first == again
    assert actions(conn) == [by_ana("backfill.start", str(first))]
    assert list_audit(conn)[0].detail == {
        "plates": 2,
        "from": "2025-03-01",
        "to": "2025-03-03",
        "with_trips": False,
    }


def old_month(conn: db.Conn) -> None:
    conn.execute("SELECT ensure_positions_partition('2020-01-15 00:00+00')")
    conn.execute(
        "INSERT INTO positions (placa, data_transmissao, latitude, longitude) VALUES"
        " ('ABC1234', '2020-01-15 10:00+00', -23.5, -46.6),"
        " ('ABC1234', now() - interval '1 day', -23.5, -46.6)"
    )


def test_a_prune_is_audited_when_it_dropped_something(conn: db.Conn) -> None:
    old_month(conn)
    cutoff = cutoff_for(parse_duration("24m"), TZ)
    with acting(ANA):
        assert prune(conn, cutoff, dry_run=True).counts()["partitions_dropped"] == 1
        assert actions(conn) == []  # a dry run changes nothing, audits nothing
        prune(conn, cutoff)
        again = prune(conn, cutoff)
    assert not again.changed
    assert actions(conn) == [by_ana("data.prune", "positions")]
    detail = list_audit(conn)[0].detail
    assert detail["partitions_dropped"] == 1
    assert detail["cutoff"] == cutoff.isoformat()
    assert detail["raw_only"] is False


def backdate(conn: db.Conn, action: str, at: datetime) -> None:
    conn.execute(
        "INSERT INTO audit (at, actor, action, target) VALUES (%s, 'cli:old', %s, 'x')",
        (at, action),
    )


def test_audit_rows_older_than_the_retention_are_pruned_recent_ones_kept(
    settings: Settings, conn: db.Conn
) -> None:
    now = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    current = settings.model_copy(update={"etrack_audit_retention": parse_duration("2y")})
    cutoff = cutoff_for(parse_duration("2y"), current.tz, now=now)
    backdate(conn, "rule.add", cutoff - timedelta(days=30))
    backdate(conn, "rule.remove", cutoff - timedelta(seconds=1))
    backdate(conn, "rule.pause", cutoff)  # at the cutoff: kept
    backdate(conn, "rule.resume", now - timedelta(days=1))
    with acting(ANA):
        assert prune_audit_with_settings(conn, current, now=now) == 2
        assert prune_audit_with_settings(conn, current, now=now) == 0
    assert [a[0] for a in actions(conn)] == ["rule.pause", "rule.resume", "audit.prune"]
    pruned = list_audit(conn, action="audit.prune")
    assert len(pruned) == 1
    assert pruned[0].detail == {"before": cutoff.isoformat(), "rows": 2}
    unset = current.model_copy(update={"etrack_audit_retention": None})
    backdate(conn, "rule.add", datetime(2000, 1, 1, tzinfo=UTC))
    assert prune_audit_with_settings(conn, unset, now=now) == 0
    assert conn.execute("SELECT count(*) FROM audit").fetchone() == (4,)


def test_the_worker_prunes_as_worker_with_the_audit_retention(
    settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    old_month(conn)
    backdate(conn, "rule.add", datetime(2000, 1, 1, tzinfo=UTC))
    current = settings.model_copy(update={"etrack_retention": parse_duration("24m")})

    async def work() -> None:
        # Started by Ana's command, run by the worker: the worker is the actor.
        with acting(ANA):
            async with open_app(JobEnv(current, target, FAST), schedule=True) as app:
                await app.configure_task(PRUNE_RETENTION).defer_async(timestamp=0)
                await app.run_worker_async(
                    queues=["etrack"], wait=False, install_signal_handlers=False,
                    listen_notify=False,
                )  # fmt: skip

    asyncio.run(work())
    rows = {a[0]: a for a in actions(conn)}
    assert set(rows) == {"data.prune", "audit.prune"}
    assert rows["data.prune"][2:] == ("worker", None)
    assert rows["audit.prune"][2:] == ("worker", None)
    assert list_audit(conn, action="audit.prune")[0].detail["rows"] == 1


def test_the_retention_task_runs_for_the_audit_alone(
    settings: Settings, target: db.Target, conn: db.Conn
) -> None:
    backdate(conn, "rule.add", datetime(2000, 1, 1, tzinfo=UTC))
    assert settings.etrack_retention is None
    assert settings.etrack_retention_raw is None

    async def work() -> None:
        async with open_app(JobEnv(settings, target, FAST), schedule=True) as app:
            await app.configure_task(PRUNE_RETENTION).defer_async(timestamp=0)
            await app.run_worker_async(
                queues=["etrack"], wait=False, install_signal_handlers=False, listen_notify=False
            )

    asyncio.run(work())
    assert [a[0] for a in actions(conn)] == ["audit.prune"]
    result = conn.execute(
        "SELECT status FROM procrastinate_jobs WHERE task_name = %s", (PRUNE_RETENTION,)
    ).fetchone()
    assert result == ("succeeded",)
