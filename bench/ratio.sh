#!/usr/bin/env bash
# Decisions against the same server's /healthz, in one run, with the default
# configuration a user has (logging at info). Usage: bench/ratio.sh sqlite|postgres
# Tunables: SUBJECTS (10000), DURATION (15s), CONNECTIONS (64), CONSENTRY_LOG_LEVEL (info;
# `warn` to compare what request logs cost), ONLY_DECISIONS=1 (healthz and single
# decisions only).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
export SUBJECTS="${SUBJECTS:-10000}"
DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT=18081
DB_NAME=consentry_ratio
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin consentry
source bench/common.sh
export CONSENTRY_LOG="${CONSENTRY_LOG_LEVEL:-info}"
"$BIN" demo --subjects "$SUBJECTS" >/dev/null
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"
# The logs go to a file, as an operator keeps them (not /dev/null, which costs nothing).
start_server 2>"$WORK/server.log"
python3 bench/warm.py "http://127.0.0.1:$PORT" >/dev/null
run() { # name, wrk args...
    local name="$1"; shift
    echo "## $name"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | grep -E 'Requests/sec|  99%|Non-2xx|Socket errors'
}
run "healthz" "http://127.0.0.1:$PORT/healthz"
run "warm decisions, single" -s bench/decision.lua "http://127.0.0.1:$PORT"
if [ "${ONLY_DECISIONS:-0}" != 1 ]; then
    run "warm decisions by CRM id" -s bench/identifier.lua "http://127.0.0.1:$PORT"
    run "warm reach, single" -s bench/reach.lua "http://127.0.0.1:$PORT"
    BATCH=100 run "warm reach, batches of 100 (multiply req/s by 100)" -s bench/reach.lua "http://127.0.0.1:$PORT"
fi
echo "## log lines dropped: $(metric consentry_log_lines_dropped_total)"
