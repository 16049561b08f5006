#!/usr/bin/env bash
# Acknowledged writes under 64 connections: consents, preference documents, and a mix,
# each an audited transaction committed (fsync'd on SQLite) before it answers; then the
# whole chain verified, and how many writes each group commit took on average.
# Usage: bench/writes.sh sqlite|postgres   (needs wrk, curl, python3)
# Tunables: SUBJECTS (1000), DURATION (20s), CONNECTIONS (64), KINDS ("consents
# preferences mixed"), CONSENTRY_LOG_LEVEL (the server's default, info).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
export SUBJECTS="${SUBJECTS:-1000}"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT=18082
DB_NAME=consentry_writes_bench
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin consentry
source bench/common.sh
# The default a user has: request logs at info, written to a file as an operator keeps them.
export CONSENTRY_LOG="${CONSENTRY_LOG_LEVEL:-info}"

echo "# backend=$BACKEND subjects=$SUBJECTS connections=$CONNECTIONS duration=$DURATION log=$CONSENTRY_LOG"
"$BIN" demo --subjects "$SUBJECTS" >/dev/null
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"
COMPLIANCE="$("$BIN" token --role compliance --sub officer --ttl 7200)"
start_server 2>"$WORK/server.log"

for kind in ${KINDS:-consents preferences mixed}; do
    echo "## $kind"
    batches=$(metric consentry_db_write_batches_total) writes=$(metric consentry_db_writes_total)
    KIND="$kind" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/writes.lua "http://127.0.0.1:$PORT" \
        | grep -E 'Requests/sec|50%|90%|99%|Non-2xx|Socket errors|requests in'
    batches=$(( $(metric consentry_db_write_batches_total) - batches )) writes=$(( $(metric consentry_db_writes_total) - writes ))
    echo "group commits: $batches, writes: $writes, writes per commit: $(python3 -c "print(round($writes / max($batches, 1), 1))")"
done

echo "## the whole chain, verified"
curl -sf -H "Authorization: Bearer $COMPLIANCE" "http://127.0.0.1:$PORT/v1/audit/verify" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin); print({k: r[k] for k in ("ok","events_checked","head_seq")})'
echo "server: $(rss)"
