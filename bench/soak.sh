#!/usr/bin/env bash
# Soak: two instances on one PostgreSQL under mixed load (90 % decisions, 8 % consent
# writes, 2 % survey answers, bench/soak.lua), with the default configuration (logs at
# info), while bench/soak_check.py withdraws consents through one instance and asserts
# that neither instance allows afterwards, and records each instance's memory. The load
# runs in slices; each slice's rate, p50 and p99 per instance go to latency.csv.
# Fails on any non-2xx answer, socket error, checker error or violation.
# Usage: bench/soak.sh [SECONDS (600)]. Tunables: SLICE (30 s), CONNECTIONS (16 per
# instance), SUBJECTS (10000), BIN (target/release/consentry, built when missing),
# OUT (where the CSVs go), PLOT=1 (draw OUT/soak.png; needs matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${1:-600}"
SLICE="${SLICE:-30}"
CONNECTIONS="${CONNECTIONS:-16}"
SUBJECTS="${SUBJECTS:-10000}"
BIN="${BIN:-target/release/consentry}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
DB_NAME="consentry_soak_$$"
WORK="$(mktemp -d)"
OUT="${OUT:-$WORK/out}"
mkdir -p "$OUT"
[ -x "$BIN" ] || cargo build --release --quiet --bin consentry

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null || true
    rm -rf "$WORK/data"
}
trap cleanup EXIT

psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DB_NAME" >/dev/null
export CONSENTRY_DATABASE_URL="${PG_ADMIN_URL%/*}/$DB_NAME" CONSENTRY_DATA_DIR="$WORK/data"
"$BIN" demo --subjects "$SUBJECTS" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() {
    # Request logs stay on (the default) but are not kept: ten minutes of them is
    # gigabytes.
    CONSENTRY_BIND="127.0.0.1:$1" "$BIN" serve >/dev/null 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return; sleep 0.1; done
    echo "instance on port $1 did not start" >&2
    exit 1
}
PORT_A="$(free_port)"; start "$PORT_A"; PID_A="${PIDS[-1]}"
PORT_B="$(free_port)"; start "$PORT_B"; PID_B="${PIDS[-1]}"
TOKEN="$("$BIN" token --role service --sub soak --ttl 7200)"
export TOKEN SUBJECTS

echo "# soak: $DURATION s, two instances, $CONNECTIONS connections each, $SUBJECTS subjects, $(nproc) cores"
python3 bench/soak_check.py "$DURATION" "$OUT" "$TOKEN" \
    "http://127.0.0.1:$PORT_A" "$PID_A" "http://127.0.0.1:$PORT_B" "$PID_B" >"$OUT/check.json" &
CHECKER=$!

echo "seconds,instance,requests_per_second,p50_ms,p99_ms,non_2xx,socket_errors" >"$OUT/latency.csv"
started=$SECONDS
while [ $((SECONDS - started + SLICE)) -le "$DURATION" ]; do
    LOADS=()
    for instance in A B; do
        port=$PORT_A; [ "$instance" = B ] && port=$PORT_B
        wrk -t1 -c"$CONNECTIONS" -d"${SLICE}s" --latency -s bench/soak.lua \
            "http://127.0.0.1:$port" >"$WORK/wrk-$instance.txt" &
        LOADS+=("$!")
    done
    wait "${LOADS[@]}"
    for instance in A B; do
        python3 - "$WORK/wrk-$instance.txt" "$((SECONDS - started))" "$instance" >>"$OUT/latency.csv" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def ms(label):
    value, unit = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\b", text, re.M).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non_2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", text) or [0, 0])[1])
errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
socket_errors = sum(map(int, errors.groups())) if errors else 0
print(f"{sys.argv[2]},{sys.argv[3]},{rate:.0f},{ms('50%'):.2f},{ms('99%'):.2f},{non_2xx},{socket_errors}")
PY
    done
    tail -2 "$OUT/latency.csv"
done
status=0
wait "$CHECKER" || status=1
for instance in A B; do
    port=$PORT_A; [ "$instance" = B ] && port=$PORT_B
    curl -sf "http://127.0.0.1:$port/metrics" >"$OUT/metrics-$instance.txt" || true
done
grep -h "change_fence\|cache_bypassed" "$OUT"/metrics-*.txt | grep -v "^#" || true
echo "checker: $(cat "$OUT/check.json")"
awk -F, 'NR > 1 && ($6 > 0 || $7 > 0) { bad = 1 } END { exit bad }' "$OUT/latency.csv" \
    || { echo "non-2xx answers or socket errors under load" >&2; status=1; }
if [ "${PLOT:-0}" = 1 ]; then python3 bench/soak_plot.py "$OUT"; fi
echo "results in $OUT"
exit "$status"
