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
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
PORT=18081
WORK="$(mktemp -d)"
BIN=target/release/consentry
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
    if [ "$BACKEND" = postgres ]; then psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS consentry_audit_bench WITH (FORCE)" >/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release --quiet --bin consentry
case "$BACKEND" in
    sqlite) export CONSENTRY_DATABASE_URL="sqlite://$WORK/bench.db" ;;
    postgres)
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS consentry_audit_bench WITH (FORCE)" >/dev/null 2>&1
        psql "$PG_ADMIN_URL" -qc "CREATE DATABASE consentry_audit_bench" >/dev/null
        export CONSENTRY_DATABASE_URL="${PG_ADMIN_URL%/*}/consentry_audit_bench" ;;
    *) echo "usage: $0 sqlite|postgres" >&2; exit 2 ;;
esac
export CONSENTRY_DATA_DIR="$WORK/data" CONSENTRY_BIND="127.0.0.1:$PORT" CONSENTRY_LOG=warn

echo "# backend=$BACKEND subjects=$SUBJECTS connections=$CONNECTIONS duration=$DURATION"
/usr/bin/time -f "seeded in %e s" "$BIN" demo --subjects "$SUBJECTS" --audit-events "${EVENTS:-0}"
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"
COMPLIANCE="$("$BIN" token --role compliance --sub officer --ttl 7200)"
"$BIN" serve & SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

echo "## consent writes (ledger + state + audit chain), $CONNECTIONS connections"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/write.lua "http://127.0.0.1:$PORT" \
    | grep -E 'Requests/sec|50%|90%|99%|Non-2xx|Socket errors|requests in'

echo "## verify the whole chain"
/usr/bin/time -f "verify took %e s" curl -sf -H "Authorization: Bearer $COMPLIANCE" \
    "http://127.0.0.1:$PORT/v1/audit/verify" | python3 -c 'import json,sys; r=json.load(sys.stdin); print({k: r[k] for k in ("ok","events_checked","checkpoints_checked","head_seq")})'

echo "## export the whole chain (JSON Lines), then check it offline"
curl -sf "http://127.0.0.1:$PORT/.well-known/jwks.json" > "$WORK/jwks.json"
/usr/bin/time -f "export took %e s" curl -sf -H "Authorization: Bearer $COMPLIANCE" \
    "http://127.0.0.1:$PORT/v1/audit/events" -o "$WORK/audit.jsonl"
echo "export: $(wc -l < "$WORK/audit.jsonl") lines, $(du -h "$WORK/audit.jsonl" | cut -f1)"
echo "server: $(grep -E 'VmRSS|VmHWM' "/proc/$SERVER/status" | tr -s ' ' | tr '\n' ' ')"
/usr/bin/time -f "offline verify took %e s, peak RSS %M KB" "$BIN" audit verify "$WORK/audit.jsonl" --jwks "$WORK/jwks.json"
