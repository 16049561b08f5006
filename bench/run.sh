#!/usr/bin/env bash
# Load benchmark of the gate. Usage: bench/run.sh sqlite|postgres
# Needs wrk (Debian package `wrk`) and python3; PostgreSQL at $PG_ADMIN_URL for postgres.
# Tunables: SUBJECTS (100000), DURATION (20s), CONNECTIONS (64), CACHE_SIZE (the
# server's default), ONLY=warm to stop after the warm single-decision run.
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
export SUBJECTS="${SUBJECTS:-100000}"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-64}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
PORT=18080
UPSTREAM_PORT=9100
WORK="$(mktemp -d)"
BIN=target/release/consentry
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$BACKEND" = postgres ]; then psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS consentry_bench WITH (FORCE)" >/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet --bin consentry --example bench_upstream

case "$BACKEND" in
    sqlite) export CONSENTRY_DATABASE_URL="sqlite://$WORK/bench.db" ;;
    postgres)
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS consentry_bench WITH (FORCE)" >/dev/null
        psql "$PG_ADMIN_URL" -qc "CREATE DATABASE consentry_bench" >/dev/null
        export CONSENTRY_DATABASE_URL="${PG_ADMIN_URL%/*}/consentry_bench" ;;
    *) echo "usage: $0 sqlite|postgres" >&2; exit 2 ;;
esac
export CONSENTRY_DATA_DIR="$WORK/data" CONSENTRY_BIND="127.0.0.1:$PORT" CONSENTRY_LOG=warn

echo "# backend=$BACKEND subjects=$SUBJECTS connections=$CONNECTIONS duration=$DURATION"
/usr/bin/time -f "seeded in %e s" "$BIN" demo --subjects "$SUBJECTS"
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"

start_server() {
    "$BIN" serve & SERVER=$!
    PIDS+=("$SERVER")
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
    echo "server did not start" >&2; exit 1
}
rss() { grep -E 'VmRSS|VmHWM' "/proc/$SERVER/status" | tr -s ' ' | tr '\n' ' '; echo; }
cache() { curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^consentry_decision_cache' | tr '\n' ' '; echo; }
run() { # name, wrk args...
    local name="$1"; shift
    echo "## $name"
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | grep -E 'Requests/sec|Latency Distribution|50%|90%|99%|Non-2xx|Socket errors|requests in'
}

PORT="$UPSTREAM_PORT" target/release/examples/bench_upstream & PIDS+=($!)
if [ -n "${CACHE_SIZE:-}" ]; then export CONSENTRY_DECISION_CACHE_SIZE="$CACHE_SIZE"; fi
start_server
echo "## warming the cache with every subject"
/usr/bin/time -f "warmed in %e s" python3 bench/warm.py "http://127.0.0.1:$PORT"
echo "rss after warming: $(rss)"
echo "cache before: $(cache)"
run "warm decisions, single" -s bench/decision.lua "http://127.0.0.1:$PORT"
echo "cache after: $(cache)"
echo "rss: $(rss)"
if [ "${ONLY:-}" = warm ]; then exit 0; fi
BATCH=100 run "warm decisions, batches of 100 (multiply req/s by 100)" -s bench/batch.lua "http://127.0.0.1:$PORT"
run "upstream called directly" "http://127.0.0.1:$UPSTREAM_PORT/v1/items?limit=3"
run "upstream through the proxy gate" -s bench/proxy.lua "http://127.0.0.1:$PORT"
echo "## one connection: upstream direct, then through the gate"
wrk -t1 -c1 -d10s --latency "http://127.0.0.1:$UPSTREAM_PORT/v1/items?limit=3" | grep -E '50%|99%|Requests/sec'
wrk -t1 -c1 -d10s --latency -s bench/proxy.lua "http://127.0.0.1:$PORT" | grep -E '50%|99%|Requests/sec'
echo "rss: $(rss)"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true
unset CONSENTRY_DECISION_CACHE_SIZE

echo "## cold path: a cache of one subject, so every decision reads the database"
CONSENTRY_DECISION_CACHE_SIZE=1 start_server
run "cold decisions, single" -s bench/decision.lua "http://127.0.0.1:$PORT"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true

echo "## memory bound: a cache of 10,000 subjects under the same load"
CONSENTRY_DECISION_CACHE_SIZE=10000 start_server
python3 bench/warm.py "http://127.0.0.1:$PORT"
run "decisions, cache of 10,000" -s bench/decision.lua "http://127.0.0.1:$PORT"
echo "rss: $(rss)"
