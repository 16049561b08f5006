# Shared by the benchmark scripts; source it after setting BACKEND (sqlite|postgres),
# PORT and DB_NAME. Makes a scratch folder, and a database of its own on PostgreSQL,
# exports the server's settings, and on exit stops what was started and drops both.
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
WORK="$(mktemp -d)"
BIN="${BIN:-target/release/consentry}"
PIDS=()
SERVER=""
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    if [ "$BACKEND" = postgres ]; then psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

case "$BACKEND" in
    sqlite) export CONSENTRY_DATABASE_URL="sqlite://$WORK/bench.db" ;;
    postgres)
        psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1
        psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DB_NAME" >/dev/null
        # Another database name; the query (sslmode=...) is kept.
        PG_BASE="${PG_ADMIN_URL%%\?*}" PG_QUERY="${PG_ADMIN_URL#"${PG_ADMIN_URL%%\?*}"}"
        export CONSENTRY_DATABASE_URL="${PG_BASE%/*}/$DB_NAME$PG_QUERY" ;;
    *) echo "usage: $0 sqlite|postgres" >&2; exit 2 ;;
esac
export CONSENTRY_DATA_DIR="$WORK/data" CONSENTRY_BIND="127.0.0.1:$PORT" CONSENTRY_LOG=warn

# Starts the server (its pid in SERVER) and waits until it is ready.
start_server() {
    "$BIN" serve & SERVER=$!
    PIDS+=("$SERVER")
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
    echo "server did not start" >&2; exit 1
}

# One value from the server's /metrics, by its full name.
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }

# The server's resident and peak memory.
rss() { grep -E 'VmRSS|VmHWM' "/proc/$SERVER/status" | tr -s ' ' | tr '\n' ' '; echo; }
