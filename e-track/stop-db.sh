#!/usr/bin/env bash
# The seed's stop-db.sh: stop the PostgreSQL e-track/start-db.sh started
# (the data is kept). See e-track/manage_db.sh.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/manage_db.sh" down "$@"
