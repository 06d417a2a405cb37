#!/usr/bin/env bash
# Start the whole stack in the foreground under honcho: FerretDB and Redis
# with their data under var/ (or MFLIX_VAR_DIR), unless MONGODB_URL or
# REDIS_URL point at existing servers, then the identity, session and
# gateway services. Ctrl-C or SIGTERM stops every process.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
var=$(mkdir -p "${MFLIX_VAR_DIR:-var}" && cd "${MFLIX_VAR_DIR:-var}" && pwd)
procfile=$var/Procfile
: > "$procfile"

# honcho starts every process in a session of its own, so a SIGKILL of
# honcho's process group would leave them running. Where util-linux's
# setpriv exists, each process is killed by the kernel when its parent dies.
launch="exec"
if command -v setpriv >/dev/null 2>&1; then
  launch="exec setpriv --pdeathsig KILL --"
fi

ferretdb_port=${FERRETDB_PORT:-27017}
redis_port=${REDIS_PORT:-6379}

if [ -z "${MONGODB_URL:-}" ]; then
  mkdir -p "$var/ferretdb"
  export MONGODB_URL="mongodb://127.0.0.1:$ferretdb_port/mflix"
  # Telemetry off and no debug listener: FerretDB contacts no outside host.
  echo "ferretdb: $launch .tools/bin/ferretdb --handler=sqlite --sqlite-url=file:$var/ferretdb/ --state-dir=$var/ferretdb --listen-addr=127.0.0.1:$ferretdb_port --telemetry=disable --debug-addr=- --log-level=warn" >> "$procfile"
fi
if [ -z "${REDIS_URL:-}" ]; then
  mkdir -p "$var/redis"
  export REDIS_URL="redis://127.0.0.1:$redis_port/0"
  # The append-only file makes every acknowledged event survive a crash.
  echo "redis: $launch redis-server --bind 127.0.0.1 --port $redis_port --dir $var/redis --appendonly yes --appendfsync everysec --save '' --loglevel warning" >> "$procfile"
fi
cat >> "$procfile" <<PROCS
identity: $launch .venv/bin/python -m services.identity
session: $launch .venv/bin/python -m services.session
gateway: $launch .venv/bin/python -m services.gateway
PROCS

echo "mflix-auth: login page at http://127.0.0.1:${MFLIX_GATEWAY_PORT:-8080}/login"
exec .venv/bin/honcho start --no-prefix -f "$procfile" -d "$root"
