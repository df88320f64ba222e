#!/usr/bin/env bash
# The seed's apply-all-migrations.sh: bring the database schema up to date
# (`etrack db upgrade`: versioned migrations, safe to run twice or from two
# processes at once), on the compose database when a Docker engine answers,
# else on etrack's embedded PostgreSQL. See e-track/manage_db.sh.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../e-track/manage_db.sh" apply "$@"
