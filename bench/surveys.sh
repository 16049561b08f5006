#!/usr/bin/env bash
# Survey benchmark: the report over RESPONSES NPS responses (default 1,000,000), the
# next-survey call under load, and answer submission throughput.
# Usage: bench/surveys.sh sqlite|postgres   (needs wrk, curl; PostgreSQL at $PG_ADMIN_URL)
# Tunables: RESPONSES (1000000), SUBJECTS (10000, with consents), DURATION (20s),
# CONNECTIONS (64), REPEAT (5 report runs each).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
export SUBJECTS="${SUBJECTS:-10000}"
RESPONSES="${RESPONSES:-1000000}"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-64}"
REPEAT="${REPEAT:-5}"
PORT=18082
DB_NAME=consentry_survey_bench
[ -n "${BIN:-}" ] || cargo build --release --quiet --bin consentry
source bench/common.sh

echo "# backend=$BACKEND responses=$RESPONSES subjects=$SUBJECTS connections=$CONNECTIONS duration=$DURATION"
/usr/bin/time -f "seeded in %e s" "$BIN" demo --subjects "$SUBJECTS" --survey-responses "$RESPONSES"
# Index-only scans need the visibility map a vacuum writes (autovacuum does it in time).
if [ "$BACKEND" = postgres ]; then psql "${CONSENTRY_DATABASE_URL}" -qc "VACUUM ANALYZE" >/dev/null; fi
export TOKEN="$("$BIN" token --role service --sub bench --ttl 7200)"
ADMIN="$("$BIN" token --role admin --sub bench --ttl 7200)"
start_server

report() {
    local query="$1"
    for i in $(seq 1 "$REPEAT"); do
        curl -sf -o "$WORK/report.json" -w '%{time_total}\n' -H "Authorization: Bearer $ADMIN" \
            "http://127.0.0.1:$PORT/v1/surveys/nps-after-onboarding/report$query"
    done | sort -n | awk '{a[NR]=$1} END {printf "min %.3f s, median %.3f s, max %.3f s\n", a[1], a[int((NR+1)/2)], a[NR]}'
}
echo "## report over the whole survey (NPS, weekly trend, every question)"
report "?interval=week"
python3 -c 'import json; r=json.load(open("'"$WORK"'/report.json")); print({k: r[k] for k in ("displays","responses","response_rate")}, r["nps"]["n"], r["nps"]["score"], r["nps"]["margin_of_error"], len(r["trend"]), "weeks")'
echo "## report with a breakdown by plan (recorded with each answer by the template)"
report "?interval=month&by=plan"
echo "## report for one month"
report "?from=$(date -u -d '-60 days' +%F)&to=$(date -u -d '-30 days' +%F)&interval=day"

echo "## next-survey call, $CONNECTIONS connections"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/next_survey.lua "http://127.0.0.1:$PORT" \
    | grep -E 'Requests/sec|50%|90%|99%|Non-2xx|Socket errors|requests in'
echo "## answer submissions (partial answers with write-back), $CONNECTIONS connections"
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/answer.lua "http://127.0.0.1:$PORT" \
    | grep -E 'Requests/sec|50%|90%|99%|Non-2xx|Socket errors|requests in'
echo "server: $(rss)"
