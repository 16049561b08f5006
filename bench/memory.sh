#!/usr/bin/env bash
# Start time, idle memory, and what each cached subject costs. Usage:
# bench/memory.sh sqlite|postgres. Tunables: SUBJECTS (100000).
# Starts the server on a seeded database, times it from launch to /readyz, reads its
# resident memory idle, then after every subject was decided once (all cached), and
# divides the growth by the subjects; then again with a memory budget for the cache,
# whose gauge gives the cache's own estimate to set beside the measured growth.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
export SUBJECTS="${SUBJECTS:-100000}"
PORT=18083
DB_NAME=consentry_memory
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin consentry
source bench/common.sh
export CONSENTRY_LOG=info
"$BIN" demo --subjects "$SUBJECTS" >/dev/null
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"
kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }

measure() { # label
    local started ready idle full cached weight
    started=$(date +%s%N)
    "$BIN" serve 2>/dev/null & SERVER=$!
    PIDS+=("$SERVER")
    until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.005; done
    ready=$(( ($(date +%s%N) - started) / 1000000 ))
    sleep 1
    idle=$(kib)
    python3 bench/warm.py "http://127.0.0.1:$PORT"
    full=$(kib)
    cached=$(metric consentry_decision_cache_subjects)
    weight=$(metric consentry_decision_cache_weight)
    echo "## $1"
    echo "ready after ${ready} ms; RSS idle $((idle / 1024)) MiB, with $cached subjects cached $((full / 1024)) MiB"
    echo "measured growth per cached subject: $(( (full - idle) * 1024 / cached )) bytes; cache weight $weight"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
}
unset CONSENTRY_DECISION_CACHE_SIZE
measure "subjects limit (default, 100000)"
CONSENTRY_DECISION_CACHE_SIZE=256MiB measure "memory budget 256MiB (weight = estimated bytes)"
