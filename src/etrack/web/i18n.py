"""UI text and number/date formatting: Brazilian Portuguese first, English beside it.

A plain dictionary: the UI has a few dozen strings and two languages, which
does not justify gettext catalogs and a compile step.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

LANGUAGES = ("pt-BR", "en")
DEFAULT_LANGUAGE = "pt-BR"

MESSAGES: dict[str, dict[str, str]] = {
    "app_name": {"pt-BR": "e-Track", "en": "e-Track"},
    "nav_fleet": {"pt-BR": "Mapa da frota", "en": "Fleet map"},
    "nav_report": {"pt-BR": "Relatório diário", "en": "Day report"},
    "nav_jobs": {"pt-BR": "Tarefas", "en": "Jobs"},
    "nav_db": {"pt-BR": "Dados", "en": "Data"},
    "account": {"pt-BR": "Conta", "en": "Account"},
    "accounts": {"pt-BR": "Contas eTrac", "en": "eTrac accounts"},
    "all_accounts": {"pt-BR": "Todas", "en": "All"},
    "last_success": {"pt-BR": "Última coleta com sucesso", "en": "Last successful fetch"},
    "logout": {"pt-BR": "Sair", "en": "Log out"},
    "login": {"pt-BR": "Entrar", "en": "Log in"},
    "login_title": {"pt-BR": "Acesso ao e-Track", "en": "Sign in to e-Track"},
    "username": {"pt-BR": "Usuário", "en": "User"},
    "password": {"pt-BR": "Senha", "en": "Password"},
    "login_failed": {"pt-BR": "Usuário ou senha incorretos.", "en": "Wrong user or password."},
    "login_locked": {
        "pt-BR": "Muitas tentativas de login falharam. Tente novamente em {seconds} s.",
        "en": "Too many failed logins. Try again in {seconds} s.",
    },
    "login_needed_setup": {
        "pt-BR": "Este servidor está acessível pela rede: defina ETRACK_WEB_USER e "
        "ETRACK_WEB_PASSWORD para liberar o acesso.",
        "en": "This server is reachable from the network: set ETRACK_WEB_USER and "
        "ETRACK_WEB_PASSWORD to allow access.",
    },
    "scheduler_on": {
        "pt-BR": "Agendador ativo neste processo",
        "en": "Scheduler running in this process",
    },
    "scheduler_off": {
        "pt-BR": "Agendador desativado neste processo (DISABLE_UI_SCHEDULER=1)",
        "en": "Scheduler disabled in this process (DISABLE_UI_SCHEDULER=1)",
    },
    "scheduler_unavailable": {
        "pt-BR": "Agendador indisponível neste processo",
        "en": "Scheduler unavailable in this process",
    },
    "times_in": {"pt-BR": "Horários em", "en": "Times in"},
    "plate": {"pt-BR": "Placa", "en": "Plate"},
    "description": {"pt-BR": "Descrição", "en": "Description"},
    "fleet": {"pt-BR": "Frota", "en": "Fleet"},
    "all_fleets": {"pt-BR": "Todas as frotas", "en": "All fleets"},
    "filter_plate": {"pt-BR": "Filtrar placa", "en": "Filter plate"},
    "vehicles": {"pt-BR": "Veículos", "en": "Vehicles"},
    "state_moving": {"pt-BR": "Em movimento", "en": "Moving"},
    "state_idle": {"pt-BR": "Ligado e parado", "en": "Ignition on, stopped"},
    "state_off": {"pt-BR": "Desligado", "en": "Off"},
    "state_stale": {"pt-BR": "Sem sinal há mais de 1 h", "en": "No report for over 1 h"},
    "state_unknown": {"pt-BR": "Sem posição", "en": "No position"},
    "updated_at": {"pt-BR": "Atualizado às", "en": "Updated at"},
    "last_report": {"pt-BR": "Última posição", "en": "Last report"},
    "speed": {"pt-BR": "Velocidade", "en": "Speed"},
    "address": {"pt-BR": "Endereço", "en": "Address"},
    "day": {"pt-BR": "Dia", "en": "Day"},
    "previous_day": {"pt-BR": "Dia anterior", "en": "Previous day"},
    "next_day": {"pt-BR": "Próximo dia", "en": "Next day"},
    "go": {"pt-BR": "Ir", "en": "Go"},
    "distance": {"pt-BR": "Distância", "en": "Distance"},
    "driving": {"pt-BR": "Dirigindo", "en": "Driving"},
    "idle": {"pt-BR": "Ligado parado", "en": "Idle"},
    "parked": {"pt-BR": "Estacionado", "en": "Parked"},
    "max_speed": {"pt-BR": "Velocidade máx.", "en": "Max speed"},
    "over_limit": {"pt-BR": "Acima do limite", "en": "Over the limit"},
    "speed_limit": {"pt-BR": "Limite", "en": "Limit"},
    "trips": {"pt-BR": "Viagens", "en": "Trips"},
    "stops": {"pt-BR": "Paradas", "en": "Stops"},
    "trip": {"pt-BR": "Viagem", "en": "Trip"},
    "stop": {"pt-BR": "Parada", "en": "Stop"},
    "start": {"pt-BR": "Início", "en": "Start"},
    "end": {"pt-BR": "Fim", "en": "End"},
    "duration": {"pt-BR": "Duração", "en": "Duration"},
    "points": {"pt-BR": "Pontos", "en": "Points"},
    "no_route": {
        "pt-BR": "Nenhuma posição válida neste dia.",
        "en": "No valid position on this day.",
    },
    "live_route": {
        "pt-BR": "Rota calculada agora a partir das posições (ainda não armazenada).",
        "en": "Route computed now from the positions (not stored yet).",
    },
    "speed_chart": {"pt-BR": "Velocidade ao longo do dia", "en": "Speed over the day"},
    "playback": {"pt-BR": "Reprodução", "en": "Playback"},
    "play": {"pt-BR": "Reproduzir", "en": "Play"},
    "pause": {"pt-BR": "Pausar", "en": "Pause"},
    "downloads": {"pt-BR": "Downloads", "en": "Downloads"},
    "provider_trips": {"pt-BR": "Viagens do provedor (eTrac)", "en": "Provider's trips (eTrac)"},
    "provider_agrees": {
        "pt-BR": "As viagens do provedor coincidem com as nossas.",
        "en": "The provider's trips match ours.",
    },
    "provider_disagrees": {
        "pt-BR": "As viagens do provedor diferem das nossas:",
        "en": "The provider's trips differ from ours:",
    },
    "provider_none": {
        "pt-BR": "O provedor não listou viagens neste dia.",
        "en": "The provider listed no trips on this day.",
    },
    "ours": {"pt-BR": "Nossa", "en": "Ours"},
    "agrees": {"pt-BR": "Coincide", "en": "Agrees"},
    "yes": {"pt-BR": "sim", "en": "yes"},
    "no": {"pt-BR": "não", "en": "no"},
    "report_title": {"pt-BR": "Relatório diário da frota", "en": "Fleet day report"},
    "from": {"pt-BR": "De", "en": "From"},
    "to": {"pt-BR": "Até", "en": "To"},
    "show": {"pt-BR": "Mostrar", "en": "Show"},
    "days": {"pt-BR": "Dias", "en": "Days"},
    "hours": {"pt-BR": "h", "en": "h"},
    "no_rows": {"pt-BR": "Nenhum registro.", "en": "No rows."},
    "total": {"pt-BR": "Total", "en": "Total"},
    "db_title": {"pt-BR": "Navegador de dados", "en": "Data browser"},
    "next_page": {"pt-BR": "Próxima página", "en": "Next page"},
    "first_page": {"pt-BR": "Primeira página", "en": "First page"},
    "details": {"pt-BR": "Detalhes", "en": "Details"},
    "filter": {"pt-BR": "Filtrar", "en": "Filter"},
    "jobs_title": {"pt-BR": "Tarefas e backfills", "en": "Jobs and backfills"},
    "recent_runs": {"pt-BR": "Execuções recentes", "en": "Recent runs"},
    "status": {"pt-BR": "Situação", "en": "Status"},
    "kind": {"pt-BR": "Tarefa", "en": "Job"},
    "summary": {"pt-BR": "Resumo", "en": "Summary"},
    "error": {"pt-BR": "Erro", "en": "Error"},
    "backfills": {"pt-BR": "Backfills", "en": "Backfills"},
    "progress": {"pt-BR": "Progresso", "en": "Progress"},
    "start_backfill": {"pt-BR": "Iniciar backfill", "en": "Start a backfill"},
    "plates_hint": {
        "pt-BR": "Placas separadas por vírgula (vazio = todas)",
        "en": "Plates separated by commas (empty = all)",
    },
    "with_trips": {
        "pt-BR": "Buscar também as viagens do provedor",
        "en": "Also fetch the provider's trips",
    },
    "retry_failed": {"pt-BR": "Repetir partições com falha", "en": "Retry failed partitions"},
    "fetch_now": {"pt-BR": "Buscar últimas posições agora", "en": "Fetch latest positions now"},
    "jobs_unavailable": {
        "pt-BR": "A fila de tarefas não está instalada neste banco (etrack db upgrade).",
        "en": "The job queue is not installed in this database (etrack db upgrade).",
    },
    "action_done": {"pt-BR": "Pedido enviado.", "en": "Request sent."},
    "database_unavailable": {
        "pt-BR": "O banco de dados não responde. Tente novamente em instantes.",
        "en": "The database does not answer. Try again in a moment.",
    },
    "server_error": {
        "pt-BR": "Erro interno. O problema foi registrado no log do servidor.",
        "en": "Internal error. The problem was written to the server log.",
    },
    "not_found": {"pt-BR": "Não encontrado.", "en": "Not found."},
    "bad_request": {"pt-BR": "Pedido inválido", "en": "Bad request"},
    "forbidden": {"pt-BR": "Acesso negado", "en": "Forbidden"},
    "language": {"pt-BR": "English", "en": "Português"},
    "map_no_tiles": {
        "pt-BR": "Mapa de fundo indisponível; rotas e marcadores continuam visíveis.",
        "en": "Base map unavailable; routes and markers are still shown.",
    },
    "loading": {"pt-BR": "Carregando…", "en": "Loading…"},
}


def pick_language(requested: str | None, default: str) -> str:
    """A supported language from ?lang= / cookie text, else the default."""
    for candidate in (requested, default):
        if not candidate:
            continue
        lowered = candidate.strip().lower()
        for lang in LANGUAGES:
            if lowered == lang.lower() or lowered == lang.split("-")[0].lower():
                return lang
    return DEFAULT_LANGUAGE


def translate(key: str, lang: str) -> str:
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry[DEFAULT_LANGUAGE]


def catalog(lang: str) -> dict[str, str]:
    """Every message in one language (handed to the page scripts)."""
    return {key: translate(key, lang) for key in MESSAGES}


def format_number(value: Any, digits: int = 1, lang: str = DEFAULT_LANGUAGE) -> str:
    """1234.5 -> '1.234,5' (pt-BR) or '1,234.5' (en); None -> ''."""
    if value is None:
        return ""
    number = float(value) if isinstance(value, Decimal | int | float) else float(str(value))
    text = f"{number:,.{digits}f}"
    if lang == "pt-BR":
        text = text.replace(",", "\0").replace(".", ",").replace("\0", ".")
    return text


def format_day(value: date | None, lang: str = DEFAULT_LANGUAGE) -> str:
    if value is None:
        return ""
    return value.strftime("%d/%m/%Y") if lang == "pt-BR" else value.isoformat()


def format_moment(
    value: datetime | None, tz: tzinfo, lang: str = DEFAULT_LANGUAGE, *, seconds: bool = True
) -> str:
    """An instant in the account's time zone: 08/01/2025 12:00:00 (pt-BR)."""
    if value is None:
        return ""
    local = value.astimezone(tz)
    clock = "%H:%M:%S" if seconds else "%H:%M"
    pattern = f"%d/%m/%Y {clock}" if lang == "pt-BR" else f"%Y-%m-%d {clock}"
    return local.strftime(pattern)


def format_duration(seconds: float | None) -> str:
    """3725 -> '1:02:05' (h:mm:ss), the same in both languages."""
    if seconds is None:
        return ""
    total = round(float(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
