#!/usr/bin/env bash
# Portal pages under load, against the same server's /healthz, in one run, with the
# default configuration (logging at info): the preference centre of a customer with 20
# purposes (the shipped policies plus four), and a compliance console page.
# Usage: bench/portal.sh sqlite|postgres. Tunables: DURATION (15s), CONNECTIONS (16).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-16}"
PORT=18082
DB_NAME=consentry_portal_bench
cargo build --release --quiet --bin consentry
source bench/common.sh
export CONSENTRY_LOG=info CONSENTRY_PUBLIC_URL="http://127.0.0.1:$PORT"

# Twenty purposes: the shipped sixteen and four more of the same shape.
cp -r policies "$WORK/policies"
for n in 1 2 3 4; do
    cat >> "$WORK/policies/purposes.toml" <<TOML

[[purpose]]
key = "research_$n"
version = 1
name = { en = "Research $n", ar = "بحث $n" }
description = { en = "Studying how the service is used, study $n.", ar = "دراسة كيفية استخدام الخدمة، الدراسة $n." }
data_categories = ["user.unique_id"]
basis = { default = "opt_in" }
TOML
done
export CONSENTRY_POLICIES_DIR="$WORK/policies"
"$BIN" policies check >/dev/null
start_server 2>/dev/null
BASE="http://127.0.0.1:$PORT"
SERVICE="$("$BIN" token --role service --sub bench --ttl 7200)"
COMPLIANCE="$("$BIN" token --role compliance --sub bench --ttl 7200)"
api() { curl -sf -X "$1" "$BASE$2" -H "authorization: Bearer $3" -H 'content-type: application/json' ${4:+-d "$4"}; }
api PUT /v1/subjects/bench-1 "$SERVICE" '{"region": "DE", "locale": "en"}' >/dev/null
for purpose in analytics marketing research_1 research_2; do
    api PUT "/v1/subjects/bench-1/consents/$purpose" "$SERVICE" '{"status": "granted", "source": "api"}' >/dev/null
done
session_cookie() { # link -> "name=value"
    curl -s -o /dev/null -D - "$1" | tr -d '\r' | sed -n 's/^set-cookie: \([^;]*\);.*/\1/Ip'
}
CENTRE_COOKIE="$(session_cookie "$(api POST /v1/subjects/bench-1/portal-sessions "$SERVICE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')")"
CONSOLE_COOKIE="$(session_cookie "$(api POST /v1/console-sessions "$COMPLIANCE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')")"
purposes=$(curl -s -H "Cookie: $CENTRE_COOKIE" "$BASE/portal" | grep -c 'data-purpose=')
bytes=$(( $(curl -s -H "Cookie: $CENTRE_COOKIE" "$BASE/portal" | wc -c) + $(curl -s "$BASE/portal/static/portal.css" | wc -c) ))
echo "centre: $purposes purposes, $bytes bytes with its stylesheet"

run() { # name, wrk args...
    local name="$1"; shift
    echo "## $name"
    wrk -t"$(( CONNECTIONS < 2 ? 1 : 2 ))" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" | grep -E 'Requests/sec|  50%|  99%|Non-2xx|Socket errors'
}
run "healthz" "$BASE/healthz"
run "preference centre (20 purposes)" -H "Cookie: $CENTRE_COOKIE" "$BASE/portal"
run "console: consent rates" -H "Cookie: $CONSOLE_COOKIE" "$BASE/console/consents"
# One connection: the time the server takes for one page, without queueing behind others.
CONNECTIONS=1
run "healthz, one connection" "$BASE/healthz"
run "preference centre, one connection" -H "Cookie: $CENTRE_COOKIE" "$BASE/portal"
run "console: consent rates, one connection" -H "Cookie: $CONSOLE_COOKIE" "$BASE/console/consents"
