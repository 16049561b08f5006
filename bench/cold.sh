#!/usr/bin/env bash
# Cold decisions: a cache of one subject, so every decision loads its subject from the
# database, against the same server's /healthz in one run (default configuration, logs at
# info to a file). Usage: bench/cold.sh sqlite|postgres
# Tunables: SUBJECTS (100000), DURATION (15s), CONNECTIONS (64), CONSENTRY_LOG_LEVEL
# (info), BIN (a consentry binary already built, e.g. of another commit, to compare).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
export SUBJECTS="${SUBJECTS:-100000}"
DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT=18082
DB_NAME=consentry_cold
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin consentry
source bench/common.sh
"$BIN" demo --subjects "$SUBJECTS" >/dev/null
# Statistics, as a database in service has them: the planner then keeps one plan for
# the snapshot query instead of planning it at every miss.
if [ "$BACKEND" = postgres ]; then psql "${CONSENTRY_DATABASE_URL}" -qc "VACUUM ANALYZE" >/dev/null; fi
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"
export CONSENTRY_LOG="${CONSENTRY_LOG_LEVEL:-info}" CONSENTRY_DECISION_CACHE_SIZE=1
start_server 2>"$WORK/server.log"
run() { # name, wrk args...
    echo "## $1"; shift
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | grep -E 'Requests/sec|  50%|  99%|Non-2xx|Socket errors'
}
run "healthz" "http://127.0.0.1:$PORT/healthz"
before="$(metric consentry_decision_cache_misses_total)"
run "cold decisions, single" -s bench/decision.lua "http://127.0.0.1:$PORT"
echo "## cache misses during the decisions: $(( $(metric consentry_decision_cache_misses_total) - before ))"
