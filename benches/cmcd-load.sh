#!/usr/bin/env bash
# Collector ingest benchmark: cmcd-load POSTs batches of CMCD v2 event lines to a fresh release
# Rill (SQLite or PostgreSQL catalog) and reports events/s accepted and written, accept latency
# and 429s. See benches/README.md ("Analytics").
#
#   benches/cmcd-load.sh [RATE] [SECONDS]      # default 50000 events/s for 60 s, SQLite
#   DB=postgres benches/cmcd-load.sh 50000 60  # a private PostgreSQL (scripts/postgres.sh)
#
# Knobs (environment): DB (sqlite | postgres), LINES (per request, 100), SESSIONS (50000),
# PER_GROUP (sessions per request, 25), CONNS (32), WARMUP (5), PG_PORT (55442),
# OUT_DIR (/tmp/rill-cmcd-load), RILL_BIN / LOAD_BIN (skip the build).
# The collector's per-client rate limit is raised for the run (all requests come from one
# address): RILL_ANALYTICS_CLIENT_RATE / RILL_ANALYTICS_CLIENT_BURST = 1000000.
set -euo pipefail
RATE=${1:-50000}
SECONDS_=${2:-60}
DB=${DB:-sqlite}
LINES=${LINES:-100}
SESSIONS=${SESSIONS:-50000}
PER_GROUP=${PER_GROUP:-25}
CONNS=${CONNS:-32}
WARMUP=${WARMUP:-5}
PG_PORT=${PG_PORT:-55442}
OUT_DIR=${OUT_DIR:-/tmp/rill-cmcd-load}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
STAMP=$(date +%Y%m%d-%H%M%S)
RUN_DIR=$OUT_DIR/run-$STAMP-$DB-$RATE
mkdir -p "$RUN_DIR"
log() { echo "[cmcd-load] $*" >&2; }

PIDS=()
PG_DIR=""
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    if [[ -n $PG_DIR ]]; then "$ROOT/scripts/postgres.sh" stop "$PG_DIR" || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768+): no clash with outgoing connections
        listening "$p" || { echo "$p"; return 0; }
    done
    log "no free port found"; return 1
}

if [[ -z ${RILL_BIN:-} || -z ${LOAD_BIN:-} ]]; then
    log "building rill and cmcd-load (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$ROOT" && cargo build --release --bin rill && cargo build --release -p rill-benches --bin cmcd-load) >&2
fi
RILL=${RILL_BIN:-$CARGO_TARGET_DIR/release/rill}
LOAD=${LOAD_BIN:-$CARGO_TARGET_DIR/release/cmcd-load}

DB_URL=""
if [[ $DB == postgres ]]; then
    PG_DIR=$OUT_DIR/pg
    admin=$("$ROOT/scripts/postgres.sh" start "$PG_DIR" "$PG_PORT")
    psql -q "$admin" -c "DROP DATABASE IF EXISTS rill_cmcd_load" -c "CREATE DATABASE rill_cmcd_load" >&2
    DB_URL=${admin%/*}/rill_cmcd_load
fi

HTTP_PORT=$(free_port)
RTMP_PORT=$(free_port)
(cd "$RUN_DIR" && RILL_AUTH_MODE=open RILL_HTTP_LISTEN=127.0.0.1:$HTTP_PORT RILL_RTMP_LISTEN=127.0.0.1:$RTMP_PORT \
    RILL_SRT_LISTEN=127.0.0.1:$(free_port) RILL_WEBRTC_UDP_LISTEN=127.0.0.1:$(free_port) \
    RILL_SERVER_DATA_DIR="$RUN_DIR/data" RILL_SERVER_LOG=${RILL_SERVER_LOG:-warn} RILL_DATABASE_URL="$DB_URL" \
    RILL_ANALYTICS_CLIENT_RATE=1000000 RILL_ANALYTICS_CLIENT_BURST=1000000 RILL_ANALYTICS_CLIENT_SESSIONS_PER_MIN=1000000 \
    exec "$RILL" >"$RUN_DIR/rill.log" 2>&1) &
RILL_PID=$!
PIDS+=("$RILL_PID")
for _ in $(seq 100); do listening "$HTTP_PORT" && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null || { log "rill did not start:"; cat "$RUN_DIR/rill.log" >&2; exit 1; }
log "rill pid $RILL_PID on :$HTTP_PORT ($DB), run dir $RUN_DIR"

"$LOAD" --addr "127.0.0.1:$HTTP_PORT" --rate "$RATE" --seconds "$SECONDS_" --warmup "$WARMUP" --lines "$LINES" \
    --sessions "$SESSIONS" --per-group "$PER_GROUP" --conns "$CONNS" --server-pid "$RILL_PID" \
    2> >(tee "$RUN_DIR/per-second.log" >&2) | tee "$RUN_DIR/result.json"
sleep 0.5
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep '^rill_analytics' >"$RUN_DIR/metrics.txt" || true
if [[ $DB == postgres ]]; then
    rows=$(psql -Atq "$DB_URL" -c "SELECT COUNT(*) FROM analytics_events")
    sessions=$(psql -Atq "$DB_URL" -c "SELECT COUNT(*) FROM analytics_sessions")
else
    rows=$(sqlite3 "$RUN_DIR/data/rill.db" "SELECT COUNT(*) FROM analytics_events")
    sessions=$(sqlite3 "$RUN_DIR/data/rill.db" "SELECT COUNT(*) FROM analytics_sessions")
fi
log "database: $rows rows in analytics_events, $sessions in analytics_sessions; metrics:"
grep -E 'reports_total|events_written|batches_total|refused|write_errors|^rill_analytics_queue' "$RUN_DIR/metrics.txt" >&2 || true
echo "{\"db\":\"$DB\",\"analytics_events_rows\":$rows,\"analytics_sessions_rows\":$sessions}" | tee -a "$RUN_DIR/result.json"
grep -ci 'warn\|error' "$RUN_DIR/rill.log" | xargs -I{} echo "[cmcd-load] {} WARN/ERROR lines in rill.log" >&2
