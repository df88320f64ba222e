"""UI text and number/date formatting: Brazilian Portuguese first, English beside it.

A plain dictionary: the UI has a few dozen strings and two languages, which
does not justify gettext catalogs and a compile step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from etrack.model import EVENT_KINDS

LANGUAGES = ("pt-BR", "en")
# The cookie a ?lang= choice is kept in.
LANG_COOKIE = "etrack_lang"
DEFAULT_LANGUAGE = "pt-BR"

MESSAGES: dict[str, dict[str, str]] = {
    "app_name": {"pt-BR": "e-Track", "en": "e-Track"},
    "nav_fleet": {"pt-BR": "Mapa da frota", "en": "Fleet map"},
    "nav_report": {"pt-BR": "Relatório diário", "en": "Day report"},
    "nav_jobs": {"pt-BR": "Tarefas", "en": "Jobs"},
    "nav_db": {"pt-BR": "Dados", "en": "Data"},
    "nav_events": {"pt-BR": "Eventos", "en": "Events"},
    "nav_rules": {"pt-BR": "Alertas", "en": "Alerts"},
    # Schedules page (web/pages/schedules.py; issue 19).
    "nav_schedules": {"pt-BR": "Relatórios agendados", "en": "Scheduled reports"},
    "schedules_title": {"pt-BR": "Relatórios agendados", "en": "Scheduled reports"},
    "schedules_intro": {
        "pt-BR": "Relatórios que o worker envia a cada dia, semana ou mês completo, por e-mail "
        "ou webhook, no horário escolhido do dia seguinte ao período.",
        "en": "Reports the worker sends for every complete day, week or month, by e-mail or "
        "webhook, at the chosen time the day after the period.",
    },
    "schedules_restricted": {
        "pt-BR": "Os agendamentos valem para todas as contas: este servidor só os mostra.",
        "en": "Schedules are shared by every account: this server only shows them.",
    },
    "schedule_none": {"pt-BR": "Nenhum relatório agendado.", "en": "No scheduled reports."},
    "schedule_kind": {"pt-BR": "Relatório", "en": "Report"},
    "schedule_every": {"pt-BR": "Periodicidade", "en": "Every"},
    "schedule_every_daily": {"pt-BR": "diário", "en": "daily"},
    "schedule_every_weekly": {"pt-BR": "semanal", "en": "weekly"},
    "schedule_every_monthly": {"pt-BR": "mensal", "en": "monthly"},
    "schedule_at": {"pt-BR": "Horário", "en": "At"},
    "schedule_at_hint": {
        "pt-BR": "Hora local (HH:MM) do envio, no dia seguinte ao período",
        "en": "Local time (HH:MM) it goes out, the day after the period",
    },
    "schedule_formats": {"pt-BR": "Formatos", "en": "Formats"},
    "schedule_next": {"pt-BR": "Próximo envio", "en": "Next send"},
    "schedule_add": {"pt-BR": "Agendar relatório", "en": "Schedule a report"},
    "schedule_plates": {"pt-BR": "Placas", "en": "Plates"},
    "schedule_every_vehicle": {"pt-BR": "toda a frota", "en": "every vehicle"},
    "schedule_by_day": {"pt-BR": "por dia", "en": "by day"},
    "schedule_dialect": {"pt-BR": "CSV", "en": "CSV"},
    "schedule_dialect_default": {
        "pt-BR": "padrão do idioma",
        "en": "the language's default",
    },
    "schedule_lang": {"pt-BR": "Idioma", "en": "Language"},
    "schedule_target_hint": {
        "pt-BR": "Preencha um só: e-mails (separados por vírgula) ou a URL de um webhook.",
        "en": "Fill in one only: e-mail addresses (comma-separated) or a webhook URL.",
    },
    "schedule_secret_title": {
        "pt-BR": "Segredo do webhook do agendamento",
        "en": "Webhook secret of schedule",
    },
    "schedule_secret_once": {
        "pt-BR": "Mostrado só esta vez (não recarregue a página): configure-o no sistema que "
        "recebe os relatórios, que o usa para conferir a assinatura de cada envio.",
        "en": "Shown this once: keep it with the receiver, which checks each request's "
        "signature with it.",
    },
    "report_kind_fleet-summary": {"pt-BR": "Resumo da frota", "en": "Fleet summary"},
    "report_kind_vehicle-day": {"pt-BR": "Dia do veículo", "en": "Vehicle day"},
    "report_kind_events": {"pt-BR": "Eventos", "en": "Events"},
    "report_kind_visits": {"pt-BR": "Visitas a cercas", "en": "Fence visits"},
    "report_kind_driver-days": {
        "pt-BR": "Jornadas dos motoristas",
        "en": "Drivers' working days",
    },
    # Geofences and Visits pages (web/pages/geofences.py, visits.py; issue 17).
    "nav_fences": {"pt-BR": "Cercas", "en": "Geofences"},
    "nav_visits": {"pt-BR": "Visitas", "en": "Visits"},
    "fences_title": {"pt-BR": "Cercas", "en": "Geofences"},
    "fences_intro": {
        "pt-BR": "Locais de clientes e áreas: desenhe um círculo ou um polígono no mapa, dê um "
        "nome e salve; o mesmo nome atualiza a cerca.",
        "en": "Customer sites and areas: draw a circle or a polygon on the map, name it and "
        "save; the same name updates the fence.",
    },
    "fences_restricted": {
        "pt-BR": "As cercas valem para todas as contas: este servidor só as mostra.",
        "en": "Fences are shared by every account: this server only shows them.",
    },
    "fence_draw_circle": {"pt-BR": "Desenhar círculo", "en": "Draw circle"},
    "fence_draw_polygon": {"pt-BR": "Desenhar polígono", "en": "Draw polygon"},
    "fence_finish": {"pt-BR": "Concluir", "en": "Finish"},
    "fence_cancel": {"pt-BR": "Cancelar", "en": "Cancel"},
    "fence_hint_idle": {
        "pt-BR": "Escolha um modo de desenho, ou uma cerca da tabela para editá-la.",
        "en": "Pick a drawing mode, or a fence in the table to edit it.",
    },
    "fence_hint_circle": {
        "pt-BR": "Clique no centro; arraste ou clique de novo para o raio.",
        "en": "Click the centre; drag or click again for the radius.",
    },
    "fence_hint_polygon": {
        "pt-BR": "Clique nos cantos (3 ou mais); clique duas vezes ou em Concluir para fechar.",
        "en": "Click the corners (3 or more); double-click or Finish to close.",
    },
    "fence_hint_done": {
        "pt-BR": "Forma pronta: preencha o nome e salve.",
        "en": "Shape ready: fill in the name and save.",
    },
    "fence_save_title": {"pt-BR": "Salvar cerca", "en": "Save fence"},
    "fence_name": {"pt-BR": "Nome", "en": "Name"},
    "fence_group": {"pt-BR": "Grupo", "en": "Group"},
    "fence_speed_limit": {"pt-BR": "Limite de velocidade", "en": "Speed limit"},
    "fence_shape_none": {"pt-BR": "Nenhuma forma desenhada", "en": "No shape drawn"},
    "fence_shape_kept": {"pt-BR": "Forma enviada mantida", "en": "Shape sent kept"},
    "fence_editing": {"pt-BR": "Editando", "en": "Editing"},
    "fence_corners": {"pt-BR": "cantos", "en": "corners"},
    "fence_save": {"pt-BR": "Salvar", "en": "Save"},
    "fences_list": {"pt-BR": "Cercas cadastradas", "en": "Stored fences"},
    "fence_none": {"pt-BR": "Nenhuma cerca.", "en": "No fences."},
    "fence_kind": {"pt-BR": "Tipo", "en": "Kind"},
    "fence_kind_circle": {"pt-BR": "círculo", "en": "circle"},
    "fence_kind_polygon": {"pt-BR": "polígono", "en": "polygon"},
    "fence_kind_corridor": {"pt-BR": "corredor", "en": "corridor"},
    "fence_radius": {"pt-BR": "Raio", "en": "Radius"},
    "fence_visits": {"pt-BR": "Visitas", "en": "Visits"},
    "fence_updated": {"pt-BR": "Atualizada", "en": "Updated"},
    "fence_edit": {"pt-BR": "Editar", "en": "Edit"},
    "fence_delete": {"pt-BR": "Excluir", "en": "Delete"},
    "fence_delete_confirm": {"pt-BR": "confirmar", "en": "confirm"},
    "fence": {"pt-BR": "Cerca", "en": "Fence"},
    "day_visits": {"pt-BR": "Visitas", "en": "Visits"},
    "visit_none": {"pt-BR": "Nenhuma visita a cercas.", "en": "No fence visits."},
    "visit_open": {"pt-BR": "ainda dentro", "en": "still inside"},
    "visits_title": {"pt-BR": "Visitas a cercas", "en": "Fence visits"},
    "visits_all_fences": {"pt-BR": "Todas as cercas", "en": "Every fence"},
    "visits_by_vehicle": {"pt-BR": "Por cerca e veículo", "en": "By fence and vehicle"},
    "visits_by_day": {"pt-BR": "Por dia", "en": "By day"},
    "visits_none": {
        "pt-BR": "Nenhuma visita nem parada dentro de cercas neste período.",
        "en": "No visits nor stops inside fences in this period.",
    },
    "visit_count": {"pt-BR": "Visitas", "en": "Visits"},
    "dwell_total": {"pt-BR": "Permanência total", "en": "Total dwell"},
    "dwell_avg": {"pt-BR": "Permanência média", "en": "Average dwell"},
    "first_arrival": {"pt-BR": "Primeira chegada", "en": "First arrival"},
    "last_departure": {"pt-BR": "Última saída", "en": "Last departure"},
    "stops_inside": {"pt-BR": "Paradas dentro", "en": "Stops inside"},
    # Drivers pages (web/pages/drivers.py, issue 18).
    "nav_drivers": {"pt-BR": "Motoristas", "en": "Drivers"},
    "drivers_title": {"pt-BR": "Motoristas", "en": "Drivers"},
    "drivers_month": {"pt-BR": "Mês", "en": "Month"},
    "drivers_prev_month": {"pt-BR": "← Mês anterior", "en": "← Previous month"},
    "drivers_next_month": {"pt-BR": "Mês seguinte →", "en": "Next month →"},
    "drivers_name": {"pt-BR": "Motorista", "en": "Driver"},
    "drivers_document": {"pt-BR": "Documento", "en": "Document"},
    "drivers_fleet": {"pt-BR": "Frota", "en": "Fleet"},
    "driver_idle": {"pt-BR": "parado com motor ligado", "en": "stopped, engine on"},
    "driver_edit": {"pt-BR": "Cadastro e escalas", "en": "Record and assignments"},
    "driver_name_label": {"pt-BR": "Nome", "en": "Name"},
    "driver_active": {"pt-BR": "Ativo", "en": "Active"},
    "driver_save": {"pt-BR": "Salvar", "en": "Save"},
    "driver_assign": {"pt-BR": "Escalar em um veículo", "en": "Assign to a vehicle"},
    "driver_assign_hint": {
        "pt-BR": "As viagens do veículo no período sem motorista informado pelo rastreador "
        "passam a ser deste motorista.",
        "en": "The vehicle's trips in the period that the tracker names no driver for "
        "become this driver's.",
    },
    "driver_plate": {"pt-BR": "Placa", "en": "Plate"},
    "driver_from": {"pt-BR": "De", "en": "From"},
    "driver_to": {"pt-BR": "Até", "en": "To"},
    "driver_assign_button": {"pt-BR": "Escalar", "en": "Assign"},
    "driver_not_editable": {
        "pt-BR": "Motoristas são compartilhados por todas as contas: este servidor não os altera.",
        "en": "Drivers are shared by every account: this server does not change them.",
    },
    "drivers_days": {"pt-BR": "Dias trabalhados", "en": "Working days"},
    "drivers_driving": {"pt-BR": "Direção", "en": "Driving"},
    "drivers_working": {"pt-BR": "Jornada", "en": "Working time"},
    "drivers_overtime": {"pt-BR": "Horas extras", "en": "Overtime"},
    "drivers_breaks": {"pt-BR": "Intervalos", "en": "Breaks"},
    "drivers_longest": {"pt-BR": "Maior direção contínua", "en": "Longest driving stretch"},
    "drivers_violations": {"pt-BR": "Infrações", "en": "Violations"},
    "drivers_unattributed": {"pt-BR": "Sem motorista", "en": "No driver"},
    "drivers_none": {
        "pt-BR": "Nenhum motorista com viagens neste mês.",
        "en": "No driver with trips this month.",
    },
    "driver_back": {"pt-BR": "Todos os motoristas", "en": "Every driver"},
    "driver_calendar": {"pt-BR": "Calendário", "en": "Calendar"},
    "driver_weekdays": {
        "pt-BR": "seg ter qua qui sex sáb dom",
        "en": "Mon Tue Wed Thu Fri Sat Sun",
    },
    "driver_workdays": {"pt-BR": "Jornadas", "en": "Working days"},
    "driver_no_days": {
        "pt-BR": "Nenhuma jornada neste mês.",
        "en": "No working day this month.",
    },
    "driver_start": {"pt-BR": "Início", "en": "Start"},
    "driver_end": {"pt-BR": "Fim", "en": "End"},
    "driver_rest_before": {"pt-BR": "Descanso antes", "en": "Rest before"},
    "driver_rest_unknown": {"pt-BR": "sem jornada anterior", "en": "no previous day"},
    "driver_legend_driving": {"pt-BR": "Direção", "en": "Driving"},
    "driver_legend_break": {"pt-BR": "Intervalo (descanso)", "en": "Break (rest)"},
    "driver_legend_stop": {"pt-BR": "Parada curta", "en": "Short stop"},
    "driver_no_violations": {"pt-BR": "Sem infrações.", "en": "No violations."},
    "driver_at": {"pt-BR": "às", "en": "at"},
    "driver_violation_uninterrupted": {
        "pt-BR": "Direção ininterrupta acima de {limit}",
        "en": "Uninterrupted driving over {limit}",
    },
    "driver_violation_rest_in_driving": {
        "pt-BR": "Sem descanso de 30 min em {limit} de direção",
        "en": "No 30 min rest within {limit} of driving",
    },
    "driver_violation_daily_rest": {
        "pt-BR": "Descanso entre jornadas abaixo de {limit}",
        "en": "Rest between working days under {limit}",
    },
    "driver_violation_working_time": {
        "pt-BR": "Jornada acima de {limit}",
        "en": "Working time over {limit}",
    },
    "driver_ficha_pdf": {"pt-BR": "Ficha (PDF)", "en": "Time sheet (PDF)"},
    "driver_ficha_xlsx": {"pt-BR": "Ficha (XLSX)", "en": "Time sheet (XLSX)"},
    # Rules page (web/pages/rules.py, issue 16).
    "rules_title": {"pt-BR": "Regras de alerta", "en": "Alert rules"},
    "rules_intro": {
        "pt-BR": "Cada regra envia uma vez cada evento novo que combina com ela, por webhook "
        "ou e-mail; só eventos que começam depois da criação da regra.",
        "en": "Each rule sends every new event it matches once, by webhook or e-mail; only "
        "events that start after the rule was created.",
    },
    "rules_restricted": {
        "pt-BR": "Você vê só as regras dos veículos das suas contas; uma regra nova precisa "
        "das placas.",
        "en": "You see only the rules of your accounts' vehicles; a new rule needs its plates.",
    },
    "rule_none": {"pt-BR": "Nenhuma regra de alerta.", "en": "No alert rules."},
    "rule_name": {"pt-BR": "Nome", "en": "Name"},
    "rule_kinds": {"pt-BR": "Tipos de evento", "en": "Event kinds"},
    "rule_scope": {"pt-BR": "Veículos", "en": "Vehicles"},
    "rule_target": {"pt-BR": "Destino", "en": "Target"},
    "rule_since": {"pt-BR": "Desde", "en": "Since"},
    "rule_active": {"pt-BR": "ativa", "en": "active"},
    "rule_paused": {"pt-BR": "pausada", "en": "paused"},
    "rule_queued": {"pt-BR": "Na fila", "en": "Queued"},
    "rule_sent": {"pt-BR": "Enviados", "en": "Sent"},
    "rule_failed": {"pt-BR": "Com falha", "en": "Failed"},
    "rule_last_error": {"pt-BR": "Último erro", "en": "Last error"},
    "rule_plates": {"pt-BR": "Placas", "en": "Plates"},
    "rule_plates_hint": {
        "pt-BR": "separadas por vírgula (vazio = todos)",
        "en": "comma-separated (empty = every vehicle)",
    },
    "rule_fleet": {"pt-BR": "Frota", "en": "Fleet"},
    "rule_fences": {"pt-BR": "Cercas", "en": "Fences"},
    "rule_fences_hint": {"pt-BR": "vazio = qualquer", "en": "empty = any"},
    "rule_fences_title": {
        "pt-BR": "só os eventos destas cercas (entrada, saída, excesso no limite da cerca)",
        "en": "only these fences' events (enter, exit, overspeed under the fence's limit)",
    },
    "rule_every_vehicle": {"pt-BR": "todos os veículos", "en": "every vehicle"},
    "rule_value_at_least": {"pt-BR": "valor ≥", "en": "value ≥"},
    "rule_min_value": {"pt-BR": "Valor mínimo", "en": "Minimum value"},
    "rule_min_value_hint": {
        "pt-BR": "na unidade do tipo: km/h, min ou V",
        "en": "in the kind's unit: km/h, min or V",
    },
    "rule_channel": {"pt-BR": "Canal", "en": "Channel"},
    "rule_webhook_url": {"pt-BR": "URL", "en": "URL"},
    "rule_secret": {"pt-BR": "Segredo", "en": "Secret"},
    "rule_secret_hint": {"pt-BR": "vazio = gerar um", "en": "empty = generate one"},
    "rule_email": {"pt-BR": "E-mail", "en": "E-mail"},
    "rule_emails": {"pt-BR": "Endereços", "en": "Addresses"},
    "rule_add": {"pt-BR": "Adicionar regra", "en": "Add a rule"},
    "rule_test": {"pt-BR": "Testar", "en": "Test"},
    "rule_pause": {"pt-BR": "Pausar", "en": "Pause"},
    "rule_resume": {"pt-BR": "Retomar", "en": "Resume"},
    "rule_remove": {"pt-BR": "Remover", "en": "Remove"},
    "rule_remove_confirm": {"pt-BR": "confirmar", "en": "confirm"},
    "rule_secret_title": {
        "pt-BR": "Segredo do webhook da regra",
        "en": "Webhook secret of the rule",
    },
    "rule_secret_once": {
        "pt-BR": "Mostrado só esta vez (não recarregue a página): configure-o no sistema que "
        "recebe os alertas, que o usa para conferir a assinatura (X-Etrack-Signature) de cada envio.",
        "en": "Shown this once: keep it with the receiver, which checks each request's "
        "signature (X-Etrack-Signature) with it.",
    },
    "account": {"pt-BR": "Conta", "en": "Account"},
    "accounts": {"pt-BR": "Contas eTrac", "en": "eTrac accounts"},
    "all_accounts": {"pt-BR": "Todas", "en": "All"},
    "last_success": {"pt-BR": "Última coleta com sucesso", "en": "Last successful fetch"},
    "api_pace": {"pt-BR": "Ritmo da API", "en": "API pace"},
    "pace_learning": {"pt-BR": "aumentando (sem 429 ainda)", "en": "growing (no 429 yet)"},
    "pace_learned": {"pt-BR": "aprendido", "en": "learned"},
    "throttled_of": {"pt-BR": "429 em", "en": "429s in"},
    "requests_word": {"pt-BR": "requisições", "en": "requests"},
    "latency": {"pt-BR": "latência", "en": "latency"},
    "logout": {"pt-BR": "Sair", "en": "Log out"},
    "my_account": {"pt-BR": "Minha conta", "en": "My account"},
    "nav_users": {"pt-BR": "Usuários", "en": "Users"},
    "nav_audit": {"pt-BR": "Auditoria", "en": "Audit"},
    "role_admin": {"pt-BR": "administrador", "en": "admin"},
    "role_manager": {"pt-BR": "gestor", "en": "manager"},
    "role_viewer": {"pt-BR": "consulta", "en": "viewer"},
    "role_api": {"pt-BR": "integração (API)", "en": "api"},
    "password_current": {"pt-BR": "Senha atual", "en": "Current password"},
    "password_new": {
        "pt-BR": "Nova senha (10 caracteres ou mais)",
        "en": "New password (10 characters or more)",
    },
    "password_again": {"pt-BR": "Repita a nova senha", "en": "New password again"},
    "password_change": {"pt-BR": "Trocar a senha", "en": "Change password"},
    "password_changed": {
        "pt-BR": "Senha trocada. As outras sessões deste usuário foram encerradas.",
        "en": "Password changed. This user's other sessions have ended.",
    },
    "login_code": {"pt-BR": "Código do autenticador", "en": "Authenticator code"},
    "login_code_needed": {
        "pt-BR": "Esta conta usa um segundo fator: digite o código de 6 dígitos do aplicativo autenticador.",
        "en": "This account has a second factor: type the 6-digit code of the authenticator app.",
    },
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
    "login_not_needed": {
        "pt-BR": "Sem login configurado: este servidor atende só a este computador "
        "(endereço local). Para acesso pela rede, defina ETRACK_WEB_USER e ETRACK_WEB_PASSWORD.",
        "en": "No login configured: this server answers only this computer (a loopback "
        "address). For access over the network, set ETRACK_WEB_USER and ETRACK_WEB_PASSWORD.",
    },
    "remote_needs_login_title": {
        "pt-BR": "Acesso remoto sem login configurado",
        "en": "Remote access without a configured login",
    },
    "remote_needs_login": {
        "pt-BR": "Este servidor não tem login configurado, por isso atende apenas conexões "
        "locais (127.0.0.1). Para liberar o acesso pela rede, defina ETRACK_WEB_USER e "
        "ETRACK_WEB_PASSWORD no servidor e reinicie-o: as posições dos veículos são dados "
        "pessoais (LGPD).",
        "en": "This server has no login configured, so it answers only local connections "
        "(127.0.0.1). To allow access over the network, set ETRACK_WEB_USER and "
        "ETRACK_WEB_PASSWORD on the server and restart it: vehicle positions are personal "
        "data (LGPD).",
    },
    "show_maintenance": {"pt-BR": "mostrar manutenção", "en": "show maintenance"},
    "hide_maintenance": {"pt-BR": "ocultar manutenção", "en": "hide maintenance"},
    "maintenance_hidden": {
        "pt-BR": "Execuções de manutenção (recuperar tarefas paradas, retenção de dados) ocultas.",
        "en": "Maintenance runs (recover stalled jobs, data retention) hidden.",
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
    "vehicle_one": {"pt-BR": "veículo", "en": "vehicle"},
    "vehicle_many": {"pt-BR": "veículos", "en": "vehicles"},
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
    "yes": {"pt-BR": "Sim", "en": "yes"},
    "no": {"pt-BR": "Não", "en": "no"},
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
    "not_found": {"pt-BR": "Não encontrado", "en": "Not found"},
    "server_error_title": {"pt-BR": "Erro interno", "en": "Internal error"},
    "unavailable_title": {"pt-BR": "Indisponível", "en": "Unavailable"},
    "bad_request": {"pt-BR": "Pedido inválido", "en": "Bad request"},
    "forbidden": {"pt-BR": "Acesso negado", "en": "Forbidden"},
    "language": {"pt-BR": "English", "en": "Português"},
    "map_no_tiles": {
        "pt-BR": "Mapa de fundo indisponível; rotas e marcadores continuam visíveis.",
        "en": "Base map unavailable; routes and markers are still shown.",
    },
    "loading": {"pt-BR": "Carregando…", "en": "Loading…"},
    # Events page, vehicle day and report (issue 16).
    "events_title": {"pt-BR": "Eventos", "en": "Events"},
    "events": {"pt-BR": "Eventos", "en": "Events"},
    "event": {"pt-BR": "Evento", "en": "Event"},
    "all_kinds": {"pt-BR": "Todos os tipos", "en": "All kinds"},
    "events_by_kind": {"pt-BR": "Por tipo", "en": "By kind"},
    "events_by_vehicle": {"pt-BR": "Por veículo", "en": "By vehicle"},
    "events_list": {"pt-BR": "Lista de eventos", "en": "Event list"},
    "events_shown": {
        "pt-BR": "Mostrando os {shown} mais recentes de {total} eventos; os demais em "
        "Todos os eventos (JSON), ou estreite o filtro.",
        "en": "Showing the newest {shown} of {total} events; the rest in Every event (JSON), "
        "or narrow the filter.",
    },
    "events_none": {
        "pt-BR": "Nenhum evento neste período.",
        "en": "No events in this period.",
    },
    "events_open": {"pt-BR": "em andamento", "en": "ongoing"},
    "value": {"pt-BR": "Valor", "en": "Value"},
    "limit": {"pt-BR": "Limite", "en": "Limit"},
    "place": {"pt-BR": "Local", "en": "Place"},
    "driver": {"pt-BR": "Motorista", "en": "Driver"},
    "count": {"pt-BR": "Quantidade", "en": "Count"},
    "event_type": {"pt-BR": "Tipo", "en": "Kind"},
    "events_api": {"pt-BR": "Todos os eventos (JSON)", "en": "Every event (JSON)"},
    **{f"event_{kind}": {"pt-BR": named.pt, "en": named.en} for kind, named in EVENT_KINDS.items()},
    # Users, audit, share links (issue 20)
    "users_title": {"pt-BR": "Usuários", "en": "Users"},
    "users_intro": {
        "pt-BR": "Quem entra no e-Track, com o papel e as contas ou frotas que vê. Um consulta "
        "só olha; um gestor muda alertas, cercas e agendamentos dos seus veículos; uma "
        "integração (API) usa tokens.",
        "en": "Who may log in, with the role and the accounts or fleets they see. A viewer "
        "only looks; a manager changes the alerts, fences and schedules of their vehicles; an "
        "api user has tokens.",
    },
    "users_login": {"pt-BR": "Login (e-mail)", "en": "Login (e-mail)"},
    "users_name": {"pt-BR": "Nome", "en": "Name"},
    "users_role": {"pt-BR": "Papel", "en": "Role"},
    "users_scope": {"pt-BR": "Escopo", "en": "Scope"},
    "users_accounts": {"pt-BR": "Contas", "en": "Accounts"},
    "users_fleets": {"pt-BR": "Frotas", "en": "Fleets"},
    "users_fleets_hint": {"pt-BR": "separadas por vírgula", "en": "comma-separated"},
    "users_every_vehicle": {"pt-BR": "todos os veículos", "en": "every vehicle"},
    "users_2fa": {"pt-BR": "2º fator", "en": "2FA"},
    "users_created": {"pt-BR": "Criado em", "en": "Created"},
    "users_last_login": {"pt-BR": "Último acesso", "en": "Last login"},
    "users_active": {"pt-BR": "ativo", "en": "active"},
    "users_disabled": {"pt-BR": "desativado", "en": "disabled"},
    "users_manage": {"pt-BR": "Gerenciar", "en": "Manage"},
    "users_disable": {"pt-BR": "Desativar", "en": "Disable"},
    "users_enable": {"pt-BR": "Reativar", "en": "Enable"},
    "users_remove": {"pt-BR": "Remover", "en": "Remove"},
    "users_remove_confirm": {"pt-BR": "confirmar", "en": "confirm"},
    "users_set_password": {"pt-BR": "Definir a senha", "en": "Set the password"},
    "users_save": {"pt-BR": "Salvar papel e escopo", "en": "Save role and scope"},
    "users_tokens": {"pt-BR": "Tokens de API", "en": "API tokens"},
    "users_no_tokens": {"pt-BR": "Nenhum token.", "en": "No tokens."},
    "users_token_prefix": {"pt-BR": "Início", "en": "Prefix"},
    "users_token_label": {"pt-BR": "Descrição", "en": "Label"},
    "users_token_expires": {"pt-BR": "Validade", "en": "Expires"},
    "users_token_expires_hint": {
        "pt-BR": "90d, 12w, 6m, 1y ou never",
        "en": "90d, 12w, 6m, 1y or never",
    },
    "users_token_used": {"pt-BR": "Último uso", "en": "Last use"},
    "users_token_revoked": {"pt-BR": "revogado em", "en": "revoked"},
    "users_token_create": {"pt-BR": "Criar token", "en": "Create a token"},
    "users_token_new": {"pt-BR": "Novo token de", "en": "New token of"},
    "users_token_once": {
        "pt-BR": "Mostrado só esta vez (não recarregue a página): guarde-o no programa que o "
        "usa, no cabeçalho Authorization: Bearer.",
        "en": "Shown this once: keep it in the program that uses it, as Authorization: Bearer.",
    },
    "users_never": {"pt-BR": "nunca expira", "en": "never"},
    "users_revoke": {"pt-BR": "Revogar", "en": "Revoke"},
    "users_add": {"pt-BR": "Adicionar usuário", "en": "Add a user"},
    "users_add_hint": {
        "pt-BR": "Senha de 10 caracteres ou mais, duas vezes; uma integração (API) não tem senha. "
        "Quem não é administrador precisa de contas e/ou frotas.",
        "en": "A password of 10 characters or more, twice; an api user has none. "
        "Anyone but an admin needs accounts and/or fleets.",
    },
    "audit_title": {"pt-BR": "Auditoria", "en": "Audit"},
    "audit_intro": {
        "pt-BR": "Quem fez o quê, quando e de onde, os mais recentes primeiro",
        "en": "Who did what, when and from where, newest first",
    },
    "audit_newest": {"pt-BR": "os mais recentes", "en": "the newest"},
    "audit_none": {"pt-BR": "Nenhum registro.", "en": "No rows."},
    "audit_when": {"pt-BR": "Quando", "en": "When"},
    "audit_actor": {"pt-BR": "Quem", "en": "Actor"},
    "audit_address": {"pt-BR": "Endereço", "en": "Address"},
    "audit_action": {"pt-BR": "Ação", "en": "Action"},
    "audit_target": {"pt-BR": "Alvo", "en": "Target"},
    "audit_detail": {"pt-BR": "Detalhe", "en": "Detail"},
    "audit_since": {"pt-BR": "De", "en": "Since"},
    "audit_until": {"pt-BR": "Até", "en": "Until"},
    "audit_failed_only": {"pt-BR": "só falhas", "en": "failed only"},
    "audit_filter": {"pt-BR": "Filtrar", "en": "Filter"},
    "share_title": {"pt-BR": "Links de compartilhamento", "en": "Share links"},
    "share_days": {"pt-BR": "Dias de validade", "en": "Valid for days"},
    "share_create": {"pt-BR": "Criar link deste dia", "en": "Create a link to this day"},
    "share_list": {"pt-BR": "Links ativos deste dia", "en": "This day's live links"},
    "share_none": {"pt-BR": "Nenhum link ativo deste dia.", "en": "No live link to this day."},
    "share_by": {"pt-BR": "Criado por", "en": "Created by"},
    "share_expires": {"pt-BR": "Expira em", "en": "Expires"},
    "share_uses": {"pt-BR": "Acessos", "en": "Uses"},
    "share_revoke": {"pt-BR": "Revogar", "en": "Revoke"},
    "share_once": {
        "pt-BR": "Mostrado só esta vez: quem tiver o link vê este veículo neste dia, só para "
        "leitura, até expirar ou ser revogado.",
        "en": "Shown this once: whoever has the link sees this vehicle on this day, read only, "
        "until it expires or is revoked.",
    },
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


def event_kind(kind: str, lang: str) -> str:
    """An event kind's name in the page's language ('overspeed' -> 'Excesso de velocidade')."""
    named = EVENT_KINDS.get(kind)
    if named is None:
        return kind
    return named.pt if lang == "pt-BR" else named.en


def event_value(kind: str, value: Any, lang: str) -> str:
    """An event's value (or limit) with its kind's unit: '97 km/h', '12,5 min', '11,2 V'."""
    if value is None:
        return ""
    named = EVENT_KINDS.get(kind)
    unit = named.unit if named is not None else ""
    digits = 0 if unit == "km/h" else 1
    return f"{format_number(value, digits, lang)} {unit}".rstrip()


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
    """3725 -> '1:02' (h:mm, rounded to the minute): the one duration format of
    the pages and reports, the same in both languages."""
    if seconds is None:
        return ""
    minutes = round(float(seconds) / 60)
    hours, rest = divmod(minutes, 60)
    return f"{hours}:{rest:02d}"


def format_hours(hours: float | Decimal | None) -> str:
    """Decimal hours (the report's columns) as h:mm: 1.5 -> '1:30'."""
    if hours is None:
        return ""
    return format_duration(float(hours) * 3600)


# ---------------------------------------------------------------- plurals
# word -> (pt-BR singular, pt-BR plural, en singular, en plural)
WORDS: dict[str, tuple[str, str, str, str]] = {
    "vehicle": ("veículo", "veículos", "vehicle", "vehicles"),
    "event": ("evento", "eventos", "event", "events"),
    "partition": ("partição", "partições", "partition", "partitions"),
    "position": ("posição", "posições", "position", "positions"),
    "trip": ("viagem", "viagens", "trip", "trips"),
    "stop": ("parada", "paradas", "stop", "stops"),
    "point": ("ponto", "pontos", "point", "points"),
    "route": ("rota", "rotas", "route", "routes"),
    "account": ("conta", "contas", "account", "accounts"),
    "job": ("tarefa", "tarefas", "job", "jobs"),
    "row": ("linha", "linhas", "row", "rows"),
}


def plural(count: int, word: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """'1 veículo', '2 veículos' (pt-BR: singular only for 1 and -1, as in English)."""
    pt_one, pt_many, en_one, en_many = WORDS[word]
    one, many = (pt_one, pt_many) if lang == "pt-BR" else (en_one, en_many)
    shown = format_number(count, 0, lang)
    return f"{shown} {one if abs(count) == 1 else many}"


# ------------------------------------------------------------------- jobs
# Runs the scheduler starts by itself to keep the queue healthy: hidden from
# the Jobs page unless asked for (one recover_stalled row a minute drowned
# the runs a user started).
MAINTENANCE_KINDS = frozenset({"recover_stalled", "prune_retention", "report_tick"})

JOB_KINDS: dict[str, tuple[str, str]] = {
    "fetch_latest": ("Buscar últimas posições", "Fetch latest positions"),
    "daily": ("Rotina diária", "Daily run"),
    "daily_scheduled": ("Rotina diária (agendada)", "Daily run (scheduled)"),
    "backfill_partition": ("Backfill: um veículo-dia", "Backfill: one vehicle-day"),
    "backfill_routes": ("Backfill: rotas", "Backfill: routes"),
    "recover_stalled": ("Manutenção: recuperar tarefas paradas", "Maintenance: recover stalled"),
    "prune_retention": ("Manutenção: retenção de dados", "Maintenance: data retention"),
    "compute_visits": ("Visitas às cercas (um mês)", "Geofence visits (one month)"),
    "report_tick": ("Manutenção: relatórios a enviar", "Maintenance: reports due"),
    "send_report": ("Relatório agendado", "Scheduled report"),
}

JOB_STATUSES: dict[str, tuple[str, str]] = {
    "succeeded": ("concluída", "succeeded"),
    "failed": ("falhou", "failed"),
    "running": ("em execução", "running"),
    "skipped": ("nada a fazer", "skipped"),
    "interrupted": ("interrompida", "interrupted"),
    "queued": ("na fila", "queued"),
    "todo": ("na fila", "queued"),
    "doing": ("em execução", "running"),
    "cancelled": ("cancelada", "cancelled"),
    "aborted": ("cancelada", "aborted"),
    # An account's state (the Jobs page's accounts table).
    "ok": ("ok", "ok"),
    "failing": ("com falha", "failing"),
    "unknown": ("ainda não consultada", "not fetched yet"),
}


def job_kind(kind: str, lang: str = DEFAULT_LANGUAGE) -> str:
    names = JOB_KINDS.get(kind)
    if names is None:
        return kind
    return names[0] if lang == "pt-BR" else names[1]


def job_status(status: str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    if not status:
        return ""
    names = JOB_STATUSES.get(status)
    if names is None:
        return status
    return names[0] if lang == "pt-BR" else names[1]


# A run's counts key -> (word or None, pt-BR for 1, pt-BR for others, en):
# with a word, "12 posições recebidas"; without, "3 inseridas".
COUNT_LABELS: dict[str, tuple[str | None, str, str, str]] = {
    "received": ("position", "recebida", "recebidas", "received"),
    "inserted": (None, "inserida", "inseridas", "inserted"),
    "updated": (None, "atualizada", "atualizadas", "updated"),
    "flagged": (None, "marcada inválida", "marcadas inválidas", "flagged invalid"),
    "rejected": (None, "rejeitada", "rejeitadas", "rejected"),
    "trips": ("trip", "do provedor", "do provedor", "from the provider"),
    "plates": ("vehicle", "", "", ""),
    "failed": (None, "com falha", "com falha", "failed"),
    "accounts_failed": (None, "conta com falha", "contas com falha", "accounts failed"),
    "routes_computed": ("route", "calculada", "calculadas", "computed"),
    "computed": ("route", "calculada", "calculadas", "computed"),
    "skipped": (None, "sem mudança", "sem mudança", "unchanged"),
    "empty": (None, "vazia", "vazias", "empty"),
    "points": ("point", "", "", ""),
    "retried": ("job", "recuperada", "recuperadas", "recovered"),
}


def _count_part(key: str, value: Any, lang: str) -> str:
    pt = lang == "pt-BR"
    label = COUNT_LABELS.get(key)
    if isinstance(value, bool):
        if key == "partial":
            return "dia incompleto (parcial)" if pt else "day not over (partial)"
        return f"{key}: {translate('yes' if value else 'no', lang)}"
    if label is None:
        return f"{key}: {format_number(value, 0, lang) if isinstance(value, int) else value}"
    word, pt_one, pt_many, en_text = label
    one = isinstance(value, int | float) and abs(value) == 1
    text = (pt_one if one else pt_many) if pt else en_text
    if word is not None and isinstance(value, int):
        return f"{plural(value, word, lang)} {text}".rstrip()
    shown = format_number(value, 0, lang) if isinstance(value, int | float) else str(value)
    return f"{shown} {text}".rstrip()


def describe_counts(counts: dict[str, Any] | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """A run's counts as words: {'received': 12, 'inserted': 3} ->
    '12 posições recebidas, 3 inseridas' (never a Python dict on a page)."""
    if not counts:
        return ""
    # The database's JSON keeps no order: known keys in COUNT_LABELS' order.
    order = {key: index for index, key in enumerate(COUNT_LABELS)}
    keys = sorted(counts, key=lambda key: (order.get(key, len(order)), key))
    return ", ".join(_count_part(key, counts[key], lang) for key in keys)


def describe_run(
    kind: str, args: dict[str, Any], counts: dict[str, Any] | None, lang: str = DEFAULT_LANGUAGE
) -> str:
    """What a run did, in the UI's language, from its arguments and counts."""
    subject = []
    placa = args.get("placa")
    if isinstance(placa, str):
        subject.append(placa)
    day = args.get("day")
    if isinstance(day, str):
        try:
            subject.append(format_day(date.fromisoformat(day), lang))
        except ValueError:
            subject.append(day)
    backfill = args.get("backfill_id")
    if isinstance(backfill, int):
        subject.append(f"backfill #{backfill}")
    text = describe_counts(counts, lang)
    head = " ".join(subject)
    return f"{head}: {text}" if head and text else head or text


def backfill_progress(
    total: int, done: int, running: int, failed: int, lang: str = DEFAULT_LANGUAGE
) -> str:
    """'12 partições, 3 feitas, 1 em andamento, 2 com falha'."""
    pt = lang == "pt-BR"
    parts = [plural(total, "partition", lang)]
    if pt:
        parts.append(f"{done} {'feita' if done == 1 else 'feitas'}")
    else:
        parts.append(f"{done} done")
    if running:
        parts.append(f"{running} em andamento" if pt else f"{running} running")
    if failed:
        parts.append(f"{failed} com falha" if pt else f"{failed} failed")
    return ", ".join(parts)


# ------------------------------------------------- texts from other layers
# The job and request layers write their summaries and errors in English (the
# CLI's and the API's language). The Portuguese pages show them through these
# patterns, in order, first match wins; what no pattern knows is shown as it is.
_N = r"(\d+)"
PT_TEXTS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"^no vehicle (\S+)$", r"veículo \1 desconhecido: não está nos dados deste servidor"),
        (r"^no backfill #(\d+)$", r"backfill nº \1 não existe"),
        (r"^no table '([^']*)'; tables: (.*)$", r"tabela '\1' não existe; tabelas: \2"),
        (r"^no (\w+) row (.*)$", r"nenhuma linha de \1 com a chave \2"),
        (
            r"^(\w+): expected a date as YYYY-MM-DD(?: or |, )DD/MM/YYYY.*got (.*)$",
            r"\1: data inválida \2; use AAAA-MM-DD, DD/MM/AAAA ou DD-MM-AAAA",
        ),
        (r"^(\w+): (.*) is not a day of the calendar(.*)$", r"\1: \2 não existe no calendário"),
        (
            r"^(?:--)?([\w-]+) (.+?) (is before|is not after) (?:--)?([\w-]+) (.+?): "
            r"the end must be .*$",
            lambda m: _reversed_range(m),  # defined below, called later
        ),
        (r"^end must not be before start$", "o fim não pode ser antes do início"),
        (
            r"^date_end must not be before date_start$",
            "a data final não pode ser antes da data inicial",
        ),
        (r"^end must be after start$", "o fim deve ser depois do início"),
        (r"^the range may span at most (\d+) days$", r"o período pode ter no máximo \1 dias"),
        (
            r"^a backfill from the UI may span at most (\d+) days$",
            r"um backfill pela interface pode ter no máximo \1 dias",
        ),
        (
            r"^give either date, or start and end, not both$",
            "informe a data, ou início e fim, não ambos",
        ),
        (
            r"^start and end go together.*$",
            "início e fim vão juntos (datas AAAA-MM-DD ou DD/MM/AAAA)",
        ),
        (
            r"^(\w+): none of these vehicles is visible to you$",
            r"\1: nenhum destes veículos está visível para você",
        ),
        (
            r"^the form expired: reload the page and try again$",
            "o formulário expirou: recarregue a página e tente de novo",
        ),
        (
            r"^(\w+): expected a (?:Brazilian )?plate like .*?, got (.*)$",
            r"\1: placa inválida \2; use o formato ABC1234 ou ABC1D23",
        ),
        (r"^(\w+): expected .*plate.*$", r"\1: placa inválida; use o formato ABC1234 ou ABC1D23"),
        (r"^Not Found$", "página não encontrada"),
        (r"^Method Not Allowed$", "método não permitido"),
        (
            r"^database unavailable, try again in a moment$",
            "o banco de dados não responde; tente novamente em instantes",
        ),
        (
            r"^temporarily unavailable, try again in a moment$",
            "indisponível no momento; tente novamente em instantes",
        ),
        (
            r"^internal error \(incident (\w+), see the server log\)$",
            r"erro interno (ocorrência \1, veja o log do servidor)",
        ),
        (r"^(.*): Field required$", r"\1: campo obrigatório"),
        (r"^(.*): Input should be a valid integer.*$", r"\1: deve ser um número inteiro"),
        (r"^(.*): String should have at most (\d+) characters?$", r"\1: no máximo \2 caracteres"),
        (
            r"^routes: (\d+) plate-days computed, (\d+) skipped unchanged, (\d+) empty; "
            r"(\d+) trips, (\d+) stops, (\d+) points in ([\d.]+) s"
            r"(?: \(\+(\d+) neighbouring days recomputed\))?$",
            lambda m: _routes_line(m),  # defined below, called later
        ),
        (
            r"^events: (\d+) plates, (\d+) positions; (\d+) events \(([^)]*)\): (\d+) new, "
            r"(\d+) updated, (\d+) unchanged, (\d+) deleted in ([\d.]+) s$",
            lambda m: _events_line(m),  # defined below, called later
        ),
        (
            r"^backfill #(\d+): (\S+)\.\.(\S+), (\d+) plates \((\d+) partitions\)(, with trips)?"
            r": (\d+) already done, (\d+) enqueued(?:, (\d+) already queued or running)?"
            r"(?:, (\d+) recovered from dead workers)?$",
            lambda m: _backfill_enqueued(m),  # defined below, called later
        ),
        (
            r"^backfill #(\d+): (\d+) failed partition\(s\) queued again$",
            r"backfill nº \1: \2 partições com falha de volta à fila",
        ),
        (r"^fetch_latest queued \(job (\d+)\)$", r"busca das últimas posições na fila (tarefa \1)"),
        # Rules page (web/pages/rules.py): etrack.alerts' checks and results.
        (
            r"^rule name: expected letters, digits, '_', '-' or '\.' \(at most 63\), got (.*)$",
            r"nome da regra: use letras, dígitos, '_', '-' ou '.' (no máximo 63), não \1",
        ),
        (
            r"^kind: expected one or more of (.*), got (.*)$",
            r"tipos de evento: escolha um ou mais (\1), não \2",
        ),
        (r"^plates and --fleet: give one of them, not both$", "placas ou frota: não ambas"),
        (r"^fleet: expected a fleet name$", "frota: informe o nome de uma frota"),
        (r"^fence: expected a fence name$", "cercas: informe o nome de uma cerca"),
        (
            r"^fence: a rule with fences needs one of the kinds a fence decides: (.*)$",
            r"cercas: uma regra com cercas precisa de um dos tipos que uma cerca decide: \1",
        ),
        (
            r"^fence: no fence named '(.*)' \(etrack geofences list\)$",
            r"cercas: não há cerca chamada '\1' (veja a página Cercas)",
        ),
        (
            r"^give exactly one channel: --webhook URL or --email ADDR\[,ADDR\]$",
            "escolha um canal: webhook (URL) ou e-mail (endereços)",
        ),
        (r"^secret goes with --webhook$", "o segredo só vale para o canal webhook"),
        (
            r"^secret: use at least 16 characters \(or omit it to get one\)$",
            "segredo: use pelo menos 16 caracteres (ou deixe vazio para gerar um)",
        ),
        (
            r"^webhook: expected an http:// or https:// URL, got (.*)$",
            r"webhook: use uma URL http:// ou https://, não \1",
        ),
        (
            r"^email: expected addresses like ana@example\.com, got (.*)$",
            r"e-mail: use endereços como ana@example.com, não \1",
        ),
        (r"^min value: expected a number, got (.*)$", r"valor mínimo: informe um número, não \1"),
        (
            r"^plates: give the rule's plates \(you see the vehicles of some accounts only\)$",
            "placas: informe as placas da regra (você vê só os veículos de algumas contas)",
        ),
        (
            r"^plates: some of these vehicles are not visible to you$",
            "placas: alguns destes veículos não estão visíveis para você",
        ),
        (
            r"^alert rule '(.*)' exists: remove it first to change it$",
            r"a regra '\1' já existe: remova-a antes para mudá-la",
        ),
        (
            r"^name: '(.*)' is not available, choose another$",
            r"nome: '\1' não está disponível, escolha outro",
        ),
        (
            r"^confirm: tick the box beside Remove to remove the rule$",
            "marque a caixa 'confirmar' ao lado de Remover para remover a regra",
        ),
        (r"^no alert rule '(.*)'$", r"a regra de alerta '\1' não existe"),
        # Schedules page (web/pages/schedules.py): etrack.reports' checks and results.
        (
            r"^to: expected addresses like ana@example\.com, got (.*)$",
            r"e-mails: use endereços como ana@example.com, não \1",
        ),
        (
            r"^give exactly one target: --to ADDR\[,ADDR\] or --webhook URL$",
            "informe um só destino: e-mails ou a URL de um webhook",
        ),
        (
            r"^every: expected one of (.*), got (.*)$",
            r"periodicidade: escolha diário, semanal ou mensal, não \2",
        ),
        (
            r"^at: expected a local time HH:MM like 07:00, got (.*)$",
            r"horário: use HH:MM, como 07:00, não \1",
        ),
        (
            r"^format: give at least one of (.*)$",
            r"formatos: escolha pelo menos um (\1)",
        ),
        (r"^format: unknown format (.*)$", r"formatos: formato desconhecido \1"),
        (
            r"^unknown report '(.*)': expected one of (.*)$",
            r"relatório '\1' desconhecido: escolha um destes: \2",
        ),
        (
            r"^(\S+): a schedule of it needs exactly one plate \(--plates ABC1D23\)$",
            r"\1: o agendamento precisa de exatamente uma placa",
        ),
        (r"^(\S+): covers one day: use --every daily$", r"\1: cobre um dia: use diário"),
        (r"^plates and fleet: give one of them, not both$", "placas ou frota: não ambas"),
        (r"^schedule (\d+) added$", r"agendamento \1 adicionado"),
        (r"^schedule (\d+) exists, unchanged$", r"agendamento \1 já existe, sem mudança"),
        (r"^schedule (\d+) removed$", r"agendamento \1 removido"),
        (r"^schedule (\d+) paused$", r"agendamento \1 pausado"),
        (r"^schedule (\d+) resumed$", r"agendamento \1 retomado"),
        (r"^no report schedule (\d+)$", r"o agendamento \1 não existe"),
        (
            r"^confirm: tick the box beside Remove to remove the schedule$",
            "marque a caixa 'confirmar' ao lado de Remover para remover o agendamento",
        ),
        (
            r"^report schedules are shared by every account: this server may not change them$",
            "os agendamentos valem para todas as contas: este servidor não pode alterá-los",
        ),
        (r"^fence (.+) added$", r"cerca \1 adicionada"),
        (r"^fence (.+) updated$", r"cerca \1 atualizada"),
        (r"^fence (.+) unchanged$", r"cerca \1 sem mudanças"),
        (r"^fence (.+) deleted$", r"cerca \1 excluída"),
        (r"^visits queued: (\d+) job\(s\)$", r"visitas na fila: \1 tarefa(s)"),
        (r"^visits not queued: (.*)$", r"visitas fora da fila: \1"),
        (r"^no fence '(.*)'$", r"a cerca '\1' não existe"),
        (r"^name: give the fence a name$", "nome: dê um nome à cerca"),
        (
            r"^shape: draw a circle or a polygon on the map first$",
            "forma: desenhe antes um círculo ou um polígono no mapa",
        ),
        (
            r"^shape: the drawn shape is not (GeoJSON|a GeoJSON Feature): draw it again$",
            "forma: a forma enviada não é um GeoJSON válido: desenhe de novo",
        ),
        (r"^shape: expected one fence$", "forma: esperada uma cerca só"),
        (r"^shape: (.*)$", r"forma: \1"),
        (
            r"^speed limit: expected a number of km/h above 0, got (.*)$",
            r"limite de velocidade: informe um número de km/h acima de 0, não \1",
        ),
        (
            r"^confirm: tick the box beside Delete to delete the fence$",
            "confirmar: marque a caixa ao lado de Excluir para excluir a cerca",
        ),
        (
            r"^fences are shared by every account: this server may not change them$",
            "as cercas valem para todas as contas: este servidor não pode alterá-las",
        ),
        (
            r"^kind: '(.*)' is not one of (.*)$",
            lambda m: (
                f"tipo: '{m[1]}' não é um destes: "
                + ", ".join(event_kind(k, "pt-BR") for k in m[2].split(", "))
            ),
        ),
        (r"^rule (\S+) added$", r"regra \1 adicionada"),
        (r"^rule (\S+) removed$", r"regra \1 removida"),
        (r"^rule (\S+) paused$", r"regra \1 pausada"),
        (r"^rule (\S+) resumed$", r"regra \1 retomada"),
        (r"^test of rule (\S+): delivered(.*)$", r"teste da regra \1: entregue\2"),
        (
            r"^test of rule (\S+): not delivered: (.*)$",
            lambda m: f"teste da regra {m[1]}: não entregue: {localize(m[2], 'pt-BR')}",
        ),
        (
            r"^webhook (\S+) resolves to a non-public address \((.*)\), "
            r"refused by ETRACK_WEBHOOK_DENY_PRIVATE=1$",
            r"webhook \1 aponta para um endereço não público (\2), recusado por "
            r"ETRACK_WEBHOOK_DENY_PRIVATE=1",
        ),
        (
            r"^webhook (\S+): cannot resolve its host \((.*)\)$",
            r"webhook \1: o nome do servidor não foi encontrado (\2)",
        ),
        (r"^webhook (\S+) answered HTTP (\d+)(.*)$", r"webhook \1 respondeu HTTP \2\3"),
        (r"^webhook (\S+): no answer within (\S+) s$", r"webhook \1: sem resposta em \2 s"),
        (r"^driver (.+) updated$", r"motorista \1 atualizado"),
        (r"^driver (.+) unchanged$", r"motorista \1 sem mudança"),
        (
            r"^driver (.+) on (\S+) from (\S+ \S+) to (\S+ \S+): (stored|unchanged)$",
            lambda m: (
                f"motorista {m[1]} escalado em {m[2]} de {m[3]} a {m[4]}"
                + ("" if m[5] == "stored" else " (sem mudança)")
            ),
        ),
        (
            r"^(\S+) is assigned to (.+) from (\S+ \S+) to (\S+ \S+): one driver at a time$",
            r"\1 já está com \2 de \3 a \4: um motorista por vez",
        ),
        (
            r"^CPF (.+): the check digits do not match$",
            r"CPF \1: os dígitos verificadores não conferem",
        ),
        (
            r"^CPF (.+): expected 11 digits \(000\.000\.000-00\)$",
            r"CPF \1: informe 11 dígitos (000.000.000-00)",
        ),
        (
            r"^ETRACK_SMTP_URL is not set: e-mail alerts cannot be sent$",
            "ETRACK_SMTP_URL não está definido: alertas por e-mail não podem ser enviados",
        ),
        # Geofence visits (etrack.geofences.compute.VisitsSummary.line, the
        # compute_visits job's summary: etrack.jobs.visits).
        (
            r"^(?:(\S+)\.\.(\S+): )?visits: (\d+) plates x (\d+) fences, (\d+) positions; "
            r"(\d+) visits: (\d+) written, (\d+) unchanged, (\d+) deleted; "
            r"(\d+) enter/exit events written in (\S+) s$",
            lambda m: _visits_line(m),  # defined below, called later
        ),
        # Users, audit, share links (issue 20): the pages' flash lines and refusals.
        (r"^user (\S+) added$", r"usuário \1 adicionado"),
        (r"^user (\S+) enabled$", r"usuário \1 reativado"),
        (r"^user (\S+) disabled$", r"usuário \1 desativado"),
        (r"^user (\S+) removed$", r"usuário \1 removido"),
        (r"^user (\S+) changed$", r"usuário \1 alterado"),
        (r"^password of (\S+) changed$", r"senha de \1 trocada"),
        (r"^token (\d+) created for (\S+)$", r"token \1 criado para \2"),
        (r"^token (\d+) revoked$", r"token \1 revogado"),
        (r"^share link (\d+) created$", r"link \1 criado"),
        (r"^share link (\d+) revoked$", r"link \1 revogado"),
        (r"^password: the two passwords differ$", "senha: as duas senhas não conferem"),
        (
            r"^user (\S+) exists already.*$",
            r"o usuário \1 já existe",
        ),
        (
            r"^a (\w+) needs a scope: .*$",
            "escolha contas e/ou frotas: só um administrador vê todos os veículos",
        ),
        (
            r"^read only: a (\w+) may look, not change anything$",
            "somente leitura: este perfil pode consultar, não alterar",
        ),
        (
            r"^only an admin may see or change users and the audit$",
            "só um administrador vê e altera os usuários e a auditoria",
        ),
        (
            r"^(\w+) are shared by every account: only an admin may change them$",
            "isto vale para todas as contas: só um administrador pode alterar",
        ),
        (
            r"^this link does not exist, has expired or was revoked$",
            "este link não existe, expirou ou foi revogado",
        ),
        (r"^password: expected at least (\d+) characters$", r"senha: use ao menos \1 caracteres"),
        (
            r"^password: no leading or trailing spaces or line breaks$",
            "senha: sem espaços no começo ou no fim, nem quebras de linha",
        ),
        (r"^again: the two new passwords differ$", "repita: as duas senhas novas não conferem"),
        (
            r"^current: the current password is not this one$",
            "senha atual: não é esta a senha atual",
        ),
        (r"^log in with your password to change it$", "entre com a sua senha para trocá-la"),
        (
            r"^this login's password is ETRACK_WEB_PASSWORD: change it there and restart$",
            "a senha deste login é ETRACK_WEB_PASSWORD: troque-a lá e reinicie",
        ),
        (
            r"^plates: give the plates of your vehicles \(not every vehicle, nor a fleet\)$",
            "placas: informe as placas dos seus veículos (não todos, nem uma frota)",
        ),
    )
)


def localize(text: str | None, lang: str = DEFAULT_LANGUAGE) -> str:
    """English text of the API, the jobs or a request error, as the UI shows
    it in `lang` ("; "-separated parts translated one by one)."""
    if not text:
        return ""
    if lang != "pt-BR":
        return text
    # Lines are joined by "; " and some contain "; " themselves (the routes
    # line): at each point the longest run of parts that a pattern knows wins.
    parts = text.split("; ")
    out: list[str] = []
    i = 0
    while i < len(parts):
        for j in range(len(parts), i, -1):
            known = _localize_part("; ".join(parts[i:j]))
            if known is not None:
                out.append(known)
                i = j
                break
        else:
            out.append(parts[i])
            i += 1
    return "; ".join(out)


def _localize_part(part: str) -> str | None:
    for pattern, replacement in PT_TEXTS:
        if pattern.match(part):
            return pattern.sub(replacement, part, count=1)
    return None


def _iso_day(text: str) -> str:
    try:
        return format_day(date.fromisoformat(text), "pt-BR")
    except ValueError:
        return text


def _routes_line(m: re.Match[str]) -> str:
    text = (
        f"rotas: {m[1]} veículo-dias calculados, {m[2]} sem mudança, {m[3]} vazios; "
        f"{plural(int(m[4]), 'trip')}, {plural(int(m[5]), 'stop')}, "
        f"{plural(int(m[6]), 'point')} em {m[7].replace('.', ',')} s"
    )
    if m[8]:
        text += f" (+{m[8]} dias vizinhos recalculados)"
    return text


def _events_line(m: re.Match[str]) -> str:
    kinds = ", ".join(
        " ".join((event_kind(kind, "pt-BR").lower(), n))
        for kind, _, n in (k.rpartition(" ") for k in m[4].split(", "))
        if kind
    )
    return (
        f"eventos: {plural(int(m[1]), 'vehicle')}, {m[2]} posições; {m[3]} eventos "
        f"({kinds or 'nenhum'}): {m[5]} novos, {m[6]} atualizados, {m[7]} sem mudança, "
        f"{m[8]} apagados em {m[9].replace('.', ',')} s"
    )


def _reversed_range(m: re.Match[str]) -> str:
    # The words of etrack.dates.range_error(lang="pt"), from its English text.
    high, low = _iso_moment(m[2]), _iso_moment(m[5])
    must = "deve ser depois do" if m[3] == "is not after" else "não pode ser antes do"
    return f"{m[1]} {high} é anterior a {m[4]} {low}: o fim {must} início"


def _iso_moment(text: str) -> str:
    day, _, clock = text.partition(" ")
    shown = _iso_day(day)
    return f"{shown} {clock}" if clock else shown


def _backfill_enqueued(m: re.Match[str]) -> str:
    plates, partitions = int(m[4]), int(m[5])
    text = (
        f"backfill nº {m[1]}: {_iso_day(m[2])} a {_iso_day(m[3])}, {plural(plates, 'vehicle')} "
        f"({plural(partitions, 'partition')})"
        + (", com viagens" if m[6] else "")
        + f": {m[7]} já feitas, {m[8]} na fila"
    )
    if m[9]:
        text += f", {m[9]} já na fila ou em execução"
    if m[10]:
        text += f", {m[10]} recuperadas de workers parados"
    return text


def _visits_line(m: re.Match[str]) -> str:
    def n(text: str, one: str, many: str) -> str:
        return f"{text} {one if text == '1' else many}"

    days = f"{_iso_day(m[1])} a {_iso_day(m[2])}: " if m[1] else ""
    return (
        f"{days}visitas: {plural(int(m[3]), 'vehicle')} x {n(m[4], 'cerca', 'cercas')}, "
        f"{plural(int(m[5]), 'position')}; {n(m[6], 'visita', 'visitas')}: "
        f"{n(m[7], 'gravada', 'gravadas')}, {m[8]} sem mudança, {n(m[9], 'apagada', 'apagadas')}; "
        f"{n(m[10], 'evento', 'eventos')} de entrada/saída "
        f"{'gravado' if m[10] == '1' else 'gravados'} em {m[11].replace('.', ',')} s"
    )
