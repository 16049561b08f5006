#!/usr/bin/env bash
# Decisions right after a write burst over HTTP (issue: no slow tail after write bursts):
# creates SUBJECTS subjects and grants CONSENTS consents through the API, then at once
# decides for those subjects with wrk, and reports the cache's misses during the
# decisions against the subjects the burst changed, and /healthz in the same run.
# Usage: bench/burst.sh sqlite|postgres   (needs wrk, curl, python3)
# Tunables: SUBJECTS (10000), CONSENTS (SUBJECTS/2), DURATION (20s), CONNECTIONS (64).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
export SUBJECTS="${SUBJECTS:-10000}"
export CONSENTS="${CONSENTS:-$((SUBJECTS / 2))}"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT=18083
DB_NAME=consentry_burst_bench
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin consentry
source bench/common.sh
export CONSENTRY_LOG="${CONSENTRY_LOG_LEVEL:-info}"

echo "# backend=$BACKEND subjects=$SUBJECTS consents=$CONSENTS connections=$CONNECTIONS duration=$DURATION log=$CONSENTRY_LOG"
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"
start_server 2>"$WORK/server.log"

echo "## the burst"
python3 bench/burst.py "http://127.0.0.1:$PORT"
misses=$(metric consentry_decision_cache_misses_total); misses=${misses:-0}
bypassed=$(metric consentry_decision_cache_bypassed_total); bypassed=${bypassed:-0}
echo "## decisions at once, $CONNECTIONS connections"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/decision.lua "http://127.0.0.1:$PORT" \
    | grep -E 'Requests/sec|50%|90%|99%|Non-2xx|Socket errors|requests in'
after=$(metric consentry_decision_cache_misses_total)
echo "cache misses during the decisions: $(( ${after:-0} - misses )) (subjects: $SUBJECTS)"
echo "  of which the cache was bypassed (PostgreSQL: the instance's lease had lapsed): $(( $(metric consentry_decision_cache_bypassed_total || echo 0) - bypassed ))"
echo "  shared loads: $(metric consentry_decision_cache_shared_loads_total)"
echo "## /healthz, same server"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$PORT/healthz" \
    | grep -E 'Requests/sec|50%|99%'
