#!/usr/bin/env bash
# Audit chain benchmark: append throughput under 64 concurrent writers, verification
# speed, and a streamed export (time and the server's peak RSS).
# Usage: bench/audit.sh sqlite|postgres   (needs wrk, curl; PostgreSQL at $PG_ADMIN_URL)
# Tunables: SUBJECTS (1000), EVENTS (0: synthetic audit events seeded first, e.g.
# 1000000), DURATION (30s), CONNECTIONS (64).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
export SUBJECTS="${SUBJECTS:-1000}"
DURATION="${DURATION:-30s}"
CONNECTIONS="${CONNECTIONS:-64}"
PORT=18081
DB_NAME=consentry_audit_bench
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin consentry
source bench/common.sh

echo "# backend=$BACKEND subjects=$SUBJECTS connections=$CONNECTIONS duration=$DURATION"
/usr/bin/time -f "seeded in %e s" "$BIN" demo --subjects "$SUBJECTS" --audit-events "${EVENTS:-0}"
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"
COMPLIANCE="$("$BIN" token --role compliance --sub officer --ttl 7200)"
start_server

echo "## consent writes (ledger + state + audit chain), $CONNECTIONS connections"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/writes.lua "http://127.0.0.1:$PORT" \
    | grep -E 'Requests/sec|50%|90%|99%|Non-2xx|Socket errors|requests in'

echo "## verify the whole chain"
/usr/bin/time -f "verify took %e s" curl -sf -H "Authorization: Bearer $COMPLIANCE" \
    "http://127.0.0.1:$PORT/v1/audit/verify" | python3 -c 'import json,sys; r=json.load(sys.stdin); print({k: r[k] for k in ("ok","events_checked","checkpoints_checked","head_seq")})'

echo "## export the whole chain (JSON Lines), then check it offline"
curl -sf "http://127.0.0.1:$PORT/.well-known/jwks.json" > "$WORK/jwks.json"
/usr/bin/time -f "export took %e s" curl -sf -H "Authorization: Bearer $COMPLIANCE" \
    "http://127.0.0.1:$PORT/v1/audit/events" -o "$WORK/audit.jsonl"
echo "export: $(wc -l < "$WORK/audit.jsonl") lines, $(du -h "$WORK/audit.jsonl" | cut -f1)"
echo "server: $(rss)"
/usr/bin/time -f "offline verify took %e s, peak RSS %M KB" "$BIN" audit verify "$WORK/audit.jsonl" --jwks "$WORK/jwks.json"
