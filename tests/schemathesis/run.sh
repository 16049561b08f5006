#!/usr/bin/env bash
# Schema-driven API testing: schemathesis generates requests from the /openapi.json the
# server itself serves, with a token for each role, against a binary already built, on a
# fresh database. Strings may hold NUL and control characters. Fails on any 5xx and on any
# response outside its documented status codes, content type or schema, on a method a path
# does not take answered other than 405, and on schema-valid data refused.
# Usage: tests/schemathesis/run.sh BIN [POSTGRES_ADMIN_URL]   (default: SQLite)
# Tunables: EXAMPLES (test cases per operation and role, default 15), SEED (default 1).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN="$1"
PG_ADMIN_URL="${2:-}"
EXAMPLES="${EXAMPLES:-15}"
SEED="${SEED:-1}"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,unsupported_method,positive_data_acceptance

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    -r tests/schemathesis/requirements.txt

WORK="$(mktemp -d)"
DB_NAME="consentry_schemathesis_$$"
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    if [ -n "$PG_ADMIN_URL" ]; then
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "$PG_ADMIN_URL" ]; then
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DB_NAME" >/dev/null
    export CONSENTRY_DATABASE_URL="${PG_ADMIN_URL%/*}/$DB_NAME"
else
    export CONSENTRY_DATABASE_URL="sqlite://$WORK/consentry.db"
fi
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export CONSENTRY_DATA_DIR="$WORK/data" CONSENTRY_BIND="127.0.0.1:$PORT" CONSENTRY_LOG=warn
# Thousands of requests from one address with one token per role: at the default limits
# most would be answered 429, which tests the limits (the API suite does), not the API.
export CONSENTRY_RATE_ANONYMOUS_PER_MINUTE=1000000 CONSENTRY_RATE_FAILED_AUTH_PER_MINUTE=1000000 \
    CONSENTRY_RATE_CUSTOMER_WRITES_PER_MINUTE=1000000 CONSENTRY_PORTAL_RATE_PER_MINUTE=1000000

# Customers and surveys to find, so that some generated requests reach the rules.
"$BIN" demo --subjects 20 >/dev/null
"$BIN" serve >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null

# Runs schemathesis as one role; $1 role, $2 seed.
run_as() {
    local token
    token="$("$BIN" token --role "$1" --sub demo-000001 --ttl 7200)"
    # Per-operation exceptions, each with its rule: schemathesis.toml. The `coverage`
    # phase is left out: schemathesis crashes in it with a KeyError of its own.
    schemathesis --config-file tests/schemathesis/schemathesis.toml \
        run "http://127.0.0.1:$PORT/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks "$CHECKS" \
        --phases examples,fuzzing \
        --max-examples "$EXAMPLES" --seed "$2" \
        --generation-allow-x00 true --generation-codec utf-8 \
        --suppress-health-check all --request-timeout 30 \
        --workers 2 --no-color --warnings off \
        --report junit --report-junit-path "$WORK/junit-$1.xml"
}

# Whether a failed run found only errors of the tool itself (no check failed).
only_tool_errors() {
    python3 - "$WORK/junit-$1.xml" <<'PY'
import sys
import xml.etree.ElementTree as tree
root = tree.parse(sys.argv[1]).getroot()
failures = root.findall(".//failure")
errors = root.findall(".//error")
sys.exit(0 if errors and not failures else 1)
PY
}

status=0
for role in admin compliance service subject; do
    echo "--- as $role"
    if run_as "$role" "$SEED"; then continue; fi
    # The generator itself sometimes crashes (a KeyError inside schemathesis, flaky in
    # its examples phase): that is no finding about the API, so such a run is repeated,
    # with other seeds, up to three times.
    passed=false
    for retry in 1 2 3; do
        only_tool_errors "$role" || break
        echo "--- as $role again ($retry): the last run failed only inside schemathesis"
        if run_as "$role" "$((SEED + retry))"; then passed=true; break; fi
    done
    $passed || status=1
done
if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "the server died during the run" >&2
    tail -50 "$WORK/server.log" >&2
    status=1
fi
if grep -q "panicked" "$WORK/server.log"; then
    echo "a handler panicked during the run" >&2
    grep -m5 -A5 "panicked" "$WORK/server.log" >&2
    status=1
fi
exit "$status"
