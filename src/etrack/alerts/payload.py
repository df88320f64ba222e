"""What an alert says: the webhook's JSON body and the pt-BR e-mail.

The event inside the body has exactly the keys of `etrack events list
--format json` (timestamps ISO 8601 with the offset of ETRAC_TIMEZONE), so a
receiver parses both the same way. The body is serialized once here and
signed as those exact bytes.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, tzinfo
from email.message import EmailMessage

from etrack.model import EVENT_KINDS, EventKind
from etrack.store.events import EventRow

__all__ = [
    "email_message",
    "event_record",
    "synthetic_event",
    "vehicle_day_url",
    "webhook_body",
]


def event_record(event: EventRow, tz: tzinfo) -> dict[str, object]:
    """The event as `etrack events list --format json` shows it."""
    return event.record(tz)


def webhook_body(rule: str, event: EventRow, tz: tzinfo, *, test: bool = False) -> bytes:
    """The POST body: {"rule": ..., "event": {...}} (and "test": true for
    `etrack alerts test`), compact UTF-8 JSON."""
    payload: dict[str, object] = {"rule": rule, "event": event_record(event, tz)}
    if test:
        payload["test"] = True
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def vehicle_day_url(public_url: str | None, event: EventRow, tz: tzinfo) -> str | None:
    """The web page of the vehicle's day the event began on (web/pages/vehicle.py)."""
    if not public_url:
        return None
    day = event.start_ts.astimezone(tz).date().isoformat()
    return f"{public_url.rstrip('/')}/vehicles/{event.placa}/{day}"


def _number(value: float, decimals: int = 1) -> str:
    # pt-BR: decimal comma.
    return f"{value:.{decimals}f}".replace(".", ",")


def _moment(value: datetime, tz: tzinfo) -> str:
    return value.astimezone(tz).strftime("%d/%m/%Y %H:%M:%S")


def email_message(
    rule: str,
    event: EventRow,
    *,
    tz: tzinfo,
    sender: str,
    recipients: tuple[str, ...],
    public_url: str | None,
    test: bool = False,
) -> EmailMessage:
    """The e-mail of one alert, in pt-BR, local times of `tz`."""
    named = EVENT_KINDS.get(event.kind, EventKind(event.kind, event.kind, ""))
    kind, unit = named.pt, named.unit
    start = _moment(event.start_ts, tz)
    message = EmailMessage()
    prefix = "[etrack] [TESTE] " if test else "[etrack] "
    where = f" ({event.fence})" if event.fence else ""
    message["Subject"] = f"{prefix}{kind}{where}: {event.placa} em {start}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    # A receiving system can drop a repeated delivery by these, like the
    # webhook's Idempotency-Key.
    message["X-Etrack-Rule"] = rule
    message["X-Etrack-Event"] = str(event.id)
    lines = [
        f"{kind} — veículo {event.placa}",
        "",
        f"Início: {start}",
        f"Fim: {'em andamento' if event.end_ts is None else _moment(event.end_ts, tz)}",
    ]
    if event.duration_s is not None:
        lines.append(f"Duração: {_number(event.duration_s / 60)} min")
    if event.value is not None:
        lines.append(f"Valor: {_number(event.value)} {unit}".rstrip())
    if event.limit_value is not None:
        lines.append(f"Limite: {_number(event.limit_value)} {unit}".rstrip())
    if event.fence:
        lines.append(f"Cerca: {event.fence}")
    if event.logradouro:
        lines.append(f"Local: {event.logradouro}")
    if event.latitude is not None and event.longitude is not None:
        lines.append(f"Coordenadas: {event.latitude:.6f}, {event.longitude:.6f}")
    if event.driver:
        lines.append(f"Motorista: {event.driver}")
    link = vehicle_day_url(public_url, event, tz)
    if link:
        lines += ["", f"Ver o dia do veículo: {link}"]
    lines += ["", f"Regra de alerta: {rule}", f"Evento: {event.id}"]
    message.set_content("\n".join(lines) + "\n", charset="utf-8")
    return message


def synthetic_event(kind: str, placa: str, *, now: datetime | None = None) -> EventRow:
    """A made-up event of `kind` for `etrack alerts test`: five minutes ending
    now, with a fresh id (a receiver deduplicating by it still sees each test)."""
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    values: dict[str, tuple[float, float | None]] = {
        "overspeed": (97.0, 80.0),
        "idle": (12.0, 5.0),
        "after_hours": (5.0, None),
        "offline": (130.0, 120.0),
        "low_battery": (11.1, 11.5),
        "late_data": (45.0, 30.0),
    }
    value, limit = values.get(kind, (1.0, None))
    return EventRow(
        id=uuid.uuid4(),
        placa=placa,
        kind=kind,
        start_ts=end - timedelta(minutes=5),
        end_ts=end,
        duration_s=300.0,
        value=value,
        limit_value=limit,
        latitude=-23.55052,
        longitude=-46.633308,
        logradouro="Evento de teste (etrack alerts test)",
        driver=None,
        rule="test",
    )
