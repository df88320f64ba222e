#!/usr/bin/env bash
# The seed's start-db.sh: start PostgreSQL (docker compose with
# db/docker-compose.yml when a Docker engine answers, else etrack's embedded
# PostgreSQL). See e-track/manage_db.sh.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/manage_db.sh" up "$@"
