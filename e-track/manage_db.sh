#!/usr/bin/env bash
# The seed's database helper, at its documented path:
#
#   e-track/manage_db.sh up | down | apply | psql [PSQL ARGS...] | status
#
# With a Docker engine (`docker info` succeeds) it drives the seed's compose
# file db/docker-compose.yml (PostgreSQL 16, sync_user / sync_pass /
# sync_apis on 127.0.0.1:5432). Without one it uses etrack's embedded
# PostgreSQL (`etrack db start|stop|upgrade`, psql on `etrack db url`), so a
# machine without Docker still gets a database. It says which on stdout
# (on stderr for psql, whose output may be piped). ETRACK_DB_MODE=docker or
# ETRACK_DB_MODE=embedded forces the choice.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPOSE_FILE="$ROOT/db/docker-compose.yml"
# etrack reads .env from the working directory: run where the seed ran.
cd "$ROOT"

usage() {
  cat <<'USAGE'
usage: e-track/manage_db.sh COMMAND
  up            start PostgreSQL and wait until it accepts connections
  down          stop it (the data is kept)
  apply         apply etrack's schema migrations (etrack db upgrade)
  psql [ARGS]   open psql on the etrack database (ARGS go to psql)
  status        which database, and the schema version
Docker compose (db/docker-compose.yml) when a Docker engine answers,
otherwise the embedded PostgreSQL; ETRACK_DB_MODE=docker|embedded forces one.
USAGE
}

die() {
  local code=$1
  shift
  echo "manage_db.sh: error: $*" >&2
  exit "$code"
}

etrack() {
  if [[ -x "$ROOT/.venv/bin/etrack" ]]; then
    "$ROOT/.venv/bin/etrack" "$@"
  elif command -v etrack >/dev/null 2>&1; then
    command etrack "$@"
  else
    die 2 "etrack is not installed: python3 -m venv .venv && .venv/bin/pip install -e ."
  fi
}

docker_engine_answers() {
  # A daemon that hangs must not hang this script.
  if command -v timeout >/dev/null 2>&1; then
    timeout 20 docker info >/dev/null 2>&1
  else
    docker info >/dev/null 2>&1
  fi
}

choose_mode() {
  case "${ETRACK_DB_MODE:-auto}" in
    docker) MODE=docker REASON="ETRACK_DB_MODE=docker" ;;
    embedded) MODE=embedded REASON="ETRACK_DB_MODE=embedded" ;;
    auto)
      if ! command -v docker >/dev/null 2>&1; then
        MODE=embedded REASON="docker is not installed"
      elif ! docker_engine_answers; then
        MODE=embedded REASON="no Docker engine answers (docker info failed)"
      else
        MODE=docker REASON="a Docker engine answers"
      fi
      ;;
    *) die 2 "ETRACK_DB_MODE must be docker, embedded or auto, not '${ETRACK_DB_MODE}'" ;;
  esac
}

announce() {
  if [[ $MODE == docker ]]; then
    echo "database: docker compose with db/docker-compose.yml ($REASON)"
  else
    echo "database: etrack's embedded PostgreSQL ($REASON, so docker compose is not attempted)"
  fi
}

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -f "$COMPOSE_FILE" "$@"
  elif command -v docker-compose >/dev/null 2>&1; then
    docker-compose -f "$COMPOSE_FILE" "$@"
  else
    die 1 "neither 'docker compose' nor 'docker-compose' is installed"
  fi
}

server_configured() {
  # DATABASE_URL or a PG* variable in the environment or .env: etrack uses that server.
  local settings
  settings="$(etrack settings)"
  grep -E '^(DATABASE_URL|PGHOST|PGPORT|PGDATABASE|PGUSER|PGPASSWORD)=' <<<"$settings" |
    grep -vq '=(unset)$'
}

use_compose_database() {
  if server_configured; then
    echo "etrack connects with the DATABASE_URL / PG* settings it finds (environment or .env)"
  else
    export PGHOST=127.0.0.1 PGPORT="${DB_PORT:-5432}" PGDATABASE="${PGDATABASE:-sync_apis}"
    export PGUSER="${PGUSER:-sync_user}" PGPASSWORD="${PGPASSWORD:-sync_pass}"
    echo "etrack connects as the seed did: $PGUSER@127.0.0.1:$PGPORT/$PGDATABASE"
  fi
}

refuse_if_server() {
  if server_configured; then
    die 2 "etrack is set to use a PostgreSQL server (DATABASE_URL / PG* in the environment or .env): nothing to $1 here"
  fi
}

cmd_up() {
  if [[ $MODE == docker ]]; then
    compose up -d db
    echo "waiting for PostgreSQL to accept connections..."
    local _
    for _ in $(seq 1 60); do
      if compose exec -T db pg_isready -q -U "${PGUSER:-sync_user}" -d "${PGDATABASE:-sync_apis}" >/dev/null 2>&1; then
        echo "PostgreSQL is up on 127.0.0.1:${DB_PORT:-5432} (next: e-track/manage_db.sh apply)"
        return 0
      fi
      sleep 1
    done
    die 1 "PostgreSQL did not accept connections within 60 s (see: docker compose -f db/docker-compose.yml logs db)"
  fi
  refuse_if_server start
  etrack db start
}

cmd_down() {
  if [[ $MODE == docker ]]; then
    compose down
    echo "PostgreSQL stopped (data kept in the compose volume)"
    return 0
  fi
  refuse_if_server stop
  etrack db stop
}

cmd_apply() {
  if [[ $MODE == docker ]]; then
    use_compose_database
  fi
  etrack db upgrade
}

cmd_psql() {
  if [[ $MODE == docker ]]; then
    local tty=()
    # -T when stdin is not a terminal, so `manage_db.sh psql < file.sql` works.
    [[ -t 0 ]] || tty=(-T)
    compose exec ${tty[@]+"${tty[@]}"} db psql -U "${PGUSER:-sync_user}" -d "${PGDATABASE:-sync_apis}" "$@"
    return
  fi
  command -v psql >/dev/null 2>&1 || die 1 "psql is not installed (Debian: apt-get install postgresql-client)"
  local url
  url="$(etrack db url)"
  # Unqualified table names find etrack's tables, as they do for etrack itself.
  export PGOPTIONS="${PGOPTIONS:--c search_path=${ETRAC_SCHEMA:-e_track},public}"
  psql "$url" "$@"
}

cmd_status() {
  if [[ $MODE == docker ]]; then
    compose ps db
    use_compose_database
  fi
  etrack db status
}

main() {
  if [[ $# -lt 1 ]]; then
    usage >&2
    exit 2
  fi
  local command=$1
  shift
  case "$command" in
    -h | --help | help)
      usage
      return 0
      ;;
    up | down | apply | psql | status) ;;
    *)
      echo "manage_db.sh: unknown command '$command'" >&2
      usage >&2
      exit 2
      ;;
  esac
  choose_mode
  if [[ $command == psql ]]; then
    announce >&2
  else
    announce
  fi
  "cmd_$command" "$@"
}

main "$@"
