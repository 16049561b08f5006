#!/usr/bin/env bash
# Holds the audit export format, its description and both verifiers together: starts a
# server (embedded SQLite, a temporary data folder, a free local port), records some
# history (non-ASCII names and payloads, a customer acting for themselves, an erasure),
# exports it, and runs the Python verifier written from docs/audit-export.md and
# `consentry audit verify` on the fresh exports (both must pass) and on tampered copies
# (both must fail). The Python verifier's own tests check the document's worked example.
#
#   tools/check_audit_verifier.sh path/to/consentry
#
# The verifier's one package (tools/requirements.txt) is installed from PyPI into a
# virtualenv under the cargo target folder, kept between runs.
set -euo pipefail

[ $# -eq 1 ] && [ -x "$1" ] || { echo "usage: $0 path/to/consentry" >&2; exit 2; }
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="$TARGET/audit-verifier-venv"
WORK="$(mktemp -d)"
SERVER=""
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The virtualenv, rebuilt when the requirements change.
STAMP="$VENV/requirements.sha256"
WANTED="$(sha256sum "$ROOT/tools/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANTED" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/tools/requirements.txt"
    echo "$WANTED" > "$STAMP"
fi
PY="$VENV/bin/python"

"$PY" -m unittest discover -s "$ROOT/tools" -p 'test_*.py' 2>&1 | tail -n 3

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export CONSENTRY_DATA_DIR="$WORK/data"
export CONSENTRY_DATABASE_URL="sqlite://$WORK/data/consentry.db"
export CONSENTRY_POLICIES_DIR="$ROOT/policies"
export CONSENTRY_BIND="127.0.0.1:$PORT"
export CONSENTRY_LOG=warn
mkdir -p "$CONSENTRY_DATA_DIR"
SERVICE="$("$BIN" token --role service --sub crm-riyadh)"
CUSTOMER="$("$BIN" token --role subject --sub cust-1)"
OFFICER="$("$BIN" token --role compliance --sub officer-zoe)"
"$BIN" serve > "$WORK/server.log" 2>&1 &
SERVER=$!
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
    curl -fsS "$BASE/healthz" > /dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
    sleep 0.2
done

call() { # METHOD PATH TOKEN [BODY]
    local args=(-fsS -X "$1" "$BASE$2" -H "Authorization: Bearer $3" -o /dev/null)
    [ $# -lt 4 ] || args+=(-H 'Content-Type: application/json' --data "$4")
    curl "${args[@]}"
}
call PUT /v1/subjects/cust-1 "$SERVICE" '{"region": "DE", "locale": "ar"}'
call PUT /v1/subjects/cust-1/consents/analytics "$SERVICE" '{"status": "granted", "source": "api"}'
call PATCH /v1/subjects/cust-1/profile "$SERVICE" \
    '{"attributes": {"name": {"value": "Zoë Ångström / زوي", "category": "user.name"}}}'
call PUT /v1/subjects/cust-1/consents/marketing "$CUSTOMER" '{"status": "denied", "source": "portal"}'
call PUT /v1/subjects/cust-2 "$SERVICE" '{"region": "FR"}'
call PUT /v1/subjects/cust-2/consents/marketing "$SERVICE" '{"status": "granted", "source": "api"}'
call DELETE /v1/subjects/cust-2 "$OFFICER"

fetch() { curl -fsS "$BASE$1" -H "Authorization: Bearer $OFFICER" -o "$WORK/$2"; }
fetch '/v1/audit/events?subject=cust-2' erased.jsonl
fetch '/v1/audit/events?subject=cust-1' cust-1.jsonl
fetch '/v1/audit/events?action=consent.granted&format=csv' granted.csv
fetch '/v1/audit/events' all.jsonl
fetch '/v1/audit/events?format=csv' all.csv
curl -fsS "$BASE/.well-known/jwks.json" -o "$WORK/jwks.json"

checks=0
both() { # pass|fail FILE [FLAGS...]: both verifiers must agree on FILE
    local want="$1" file="$WORK/$2" flags=("${@:3}") py=0 rs=0
    [ ${#flags[@]} -gt 0 ] || flags=(--jwks "$WORK/jwks.json")
    "$PY" "$ROOT/tools/verify_audit_export.py" "$file" "${flags[@]}" > "$WORK/py.out" 2>&1 || py=$?
    "$BIN" audit verify "$file" "${flags[@]}" > "$WORK/rs.out" 2>&1 || rs=$?
    if { [ "$want" = pass ] && [ $py -eq 0 ] && [ $rs -eq 0 ]; } ||
        { [ "$want" = fail ] && [ $py -ne 0 ] && [ $rs -ne 0 ]; }; then
        checks=$((checks + 1))
        return
    fi
    echo "FAILED: expected both verifiers to $want on $2 ${flags[*]}" >&2
    echo "  python ($py): $(cat "$WORK/py.out")" >&2
    echo "  consentry ($rs): $(cat "$WORK/rs.out")" >&2
    exit 1
}
tamper() { # SOURCE TARGET PYTHON-EXPRESSION on `lines` (the file's lines, ends kept)
    "$PY" - "$WORK/$1" "$WORK/$2" "$3" <<'EOF'
import sys
source, target, expression = sys.argv[1:]
lines = open(source, encoding="utf-8", newline="").read().splitlines(True)
exec(expression)
assert "".join(lines) != open(source, encoding="utf-8", newline="").read(), "nothing changed"
open(target, "w", encoding="utf-8", newline="").write("".join(lines))
EOF
}

for good in all.jsonl all.csv cust-1.jsonl granted.csv erased.jsonl; do
    both pass "$good"
done
both pass all.jsonl --no-signature
if grep -q 'cust-2' "$WORK/all.jsonl" "$WORK/erased.jsonl"; then
    echo "FAILED: an export names the erased customer" >&2
    exit 1
fi

tamper all.jsonl payload.jsonl 'i = next(i for i, l in enumerate(lines) if "Zoë" in l); lines[i] = lines[i].replace("Zoë", "Zoe", 1)'
tamper all.jsonl no-header.jsonl 'del lines[0]'
tamper all.jsonl no-first.jsonl 'del lines[1]'
tamper all.jsonl no-middle.jsonl 'del lines[len(lines) // 2]'
tamper all.jsonl cut.jsonl 'del lines[-1]'
tamper all.jsonl widened.jsonl 'lines[0] = lines[0].replace("\"from\":null", "\"from\":\"1970-01-01T00:00:00.000000Z\"")'
tamper cust-1.jsonl refiltered.jsonl 'lines[0] = lines[0].replace("\"to\":null", "\"to\":\"9998-01-01T00:00:00.000000Z\"")'
tamper cust-1.jsonl cust-1-no-first.jsonl 'del lines[1]'
tamper granted.csv csv-edited.csv 'i = next(i for i, l in enumerate(lines) if l.startswith("event,")); lines[i] = lines[i].replace("granted", "denied", 1)'
for bad in payload.jsonl no-header.jsonl no-first.jsonl no-middle.jsonl cut.jsonl widened.jsonl \
    refiltered.jsonl cust-1-no-first.jsonl csv-edited.csv; do
    both fail "$bad"
done
both fail no-first.jsonl --no-signature
# Keys are required, or the explicit choice not to check the signature.
both fail all.jsonl --jwks "$WORK/no-such-jwks.json"
if "$BIN" audit verify "$WORK/all.jsonl" > /dev/null 2>&1 ||
    "$PY" "$ROOT/tools/verify_audit_export.py" "$WORK/all.jsonl" > /dev/null 2>&1; then
    echo "FAILED: a verifier passed an export without keys or --no-signature" >&2
    exit 1
fi
checks=$((checks + 1))

echo "audit export verifiers agree: $checks checks passed"
