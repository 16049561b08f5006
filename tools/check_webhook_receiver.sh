#!/usr/bin/env bash
# Deliveries verify with the Standard Webhooks reference library: starts a receiver
# that trusts only that library (tools/webhook_receiver.py) and a server (embedded
# SQLite, a temporary data folder), registers the receiver, makes changes, rotates the
# secret (both must then verify) and makes more; every delivery must verify and none
# may be rejected.
#
#   tools/check_webhook_receiver.sh path/to/consentry
set -euo pipefail

[ $# -eq 1 ] && [ -x "$1" ] || { echo "usage: $0 path/to/consentry" >&2; exit 2; }
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/webhook-receiver-venv"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

STAMP="$VENV/requirements.sha256"
WANTED="$(sha256sum "$ROOT/tools/requirements-webhooks.txt" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANTED" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/tools/requirements-webhooks.txt"
    echo "$WANTED" > "$STAMP"
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
RECEIVER_PORT="$(free_port)"
touch "$WORK/secrets" "$WORK/log"
"$VENV/bin/python" "$ROOT/tools/webhook_receiver.py" "$RECEIVER_PORT" "$WORK/secrets" "$WORK/log" &
PIDS+=($!)

PORT="$(free_port)"
export CONSENTRY_DATA_DIR="$WORK/data"
export CONSENTRY_DATABASE_URL="sqlite://$WORK/data/consentry.db"
export CONSENTRY_POLICIES_DIR="$ROOT/policies"
export CONSENTRY_BIND="127.0.0.1:$PORT"
export CONSENTRY_LOG=warn
export CONSENTRY_WEBHOOK_ALLOW_INTERNAL=true
mkdir -p "$CONSENTRY_DATA_DIR"
ADMIN="$("$BIN" token --role admin --sub ops)"
SERVICE="$("$BIN" token --role service --sub crm)"
OFFICER="$("$BIN" token --role compliance --sub officer)"
"$BIN" serve > "$WORK/server.log" 2>&1 &
PIDS+=($!)
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
    curl -fsS "$BASE/healthz" > /dev/null 2>&1 && break
    sleep 0.2
done

call() { # METHOD PATH TOKEN [BODY]
    local args=(-fsS -X "$1" "$BASE$2" -H "Authorization: Bearer $3")
    [ $# -lt 4 ] || args+=(-H 'Content-Type: application/json' --data "$4")
    curl "${args[@]}"
}
CREATED="$(call POST /v1/webhooks "$ADMIN" "{\"url\": \"http://127.0.0.1:$RECEIVER_PORT/hooks\"}")"
python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])' <<< "$CREATED" > "$WORK/secrets"
HOOK="$(python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])' <<< "$CREATED")"

call PUT /v1/subjects/cust-1 "$SERVICE" '{"region": "DE", "locale": "ar"}' > /dev/null
call PUT /v1/subjects/cust-1/consents/marketing.email "$SERVICE" '{"status": "granted", "source": "api"}' > /dev/null
call PUT /v1/subjects/cust-1/consents/marketing.email "$SERVICE" '{"status": "denied", "source": "api"}' > /dev/null
sleep 1
ROTATED="$(call PATCH "/v1/webhooks/$HOOK" "$ADMIN" '{"rotate_secret": true}')"
python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])' <<< "$ROTATED" >> "$WORK/secrets"
call PUT /v1/subjects/cust-2 "$SERVICE" '{"region": "FR"}' > /dev/null
call PUT /v1/subjects/cust-2/consents/analytics "$SERVICE" '{"status": "granted", "source": "api"}' > /dev/null
call DELETE /v1/subjects/cust-2 "$OFFICER" > /dev/null

WANT=6
for _ in $(seq 1 100); do
    [ "$(grep -c '"type"' "$WORK/log" || true)" -ge "$WANT" ] && break
    sleep 0.2
done
cat "$WORK/log"
VERIFIED="$(grep -c '"type"' "$WORK/log" || true)"
REJECTED="$(grep -c '"rejected"' "$WORK/log" || true)"
BOTH="$(grep -c '"secrets": 2' "$WORK/log" || true)"
echo "verified by the reference library: $VERIFIED (with both secrets after the rotation: $BOTH), rejected: $REJECTED"
[ "$VERIFIED" -ge "$WANT" ] && [ "$REJECTED" -eq 0 ] && [ "$BOTH" -ge 3 ] || { cat "$WORK/server.log" >&2; exit 1; }
