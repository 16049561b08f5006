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
PORT=18080
UPSTREAM_PORT=9100
DB_NAME=consentry_bench
cargo build --release --quiet --bin consentry --example bench_upstream
source bench/common.sh

echo "# backend=$BACKEND subjects=$SUBJECTS connections=$CONNECTIONS duration=$DURATION"
/usr/bin/time -f "seeded in %e s" "$BIN" demo --subjects "$SUBJECTS"
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"

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
