#!/usr/bin/env bash
# Webhook delivery lag, commit to receiver, at a fixed write rate, with the default
# configuration (logging at info). Usage: bench/webhooks.sh sqlite|postgres
# Tunables: RATE (1000 changes/s), SECONDS (20), SUBJECTS (2000).
set -euo pipefail
cd "$(dirname "$0")/.."

BACKEND="${1:-sqlite}"
PORT=18090
DB_NAME=consentry_webhooks
cargo build --release --quiet --bin consentry --example webhook_lag
source bench/common.sh
export CONSENTRY_LOG=info CONSENTRY_WEBHOOK_ALLOW_INTERNAL=true
export ADMIN="$("$BIN" token --role admin --sub bench --ttl 7200)"
export SERVICE="$("$BIN" token --role service --sub bench --ttl 7200)"
start_server >/dev/null 2>&1
echo "## $BACKEND, $(nproc) cores"
BASE="http://127.0.0.1:$PORT" target/release/examples/webhook_lag
