#!/usr/bin/env bash
# LL-HLS load: one 720p30 publisher (ffmpeg, live encode), N LL-HLS clients (hls-load).
# Usage: benches/hls-load.sh N DURATION        e.g. benches/hls-load.sh 500 60
# See benches/README.md ("LL-HLS load"). Knobs (environment):
#   MODE=hint        hls-load --mode (hint: fetch the preload-hinted part, then reload;
#                    reload: blocking reload then fetch the new parts, as hls.js does)
#   RAMP=5           seconds over which the clients start (evenly spread)
#   WARMUP=3         seconds after the ramp before the measurement window
#   BEHIND=1.0       a client is behind when its newest part is this many seconds older than the edge
#   THREADS=1        hls-load runtime threads (1 = current-thread runtime, at most one core)
#   SETTLE=30        seconds between the first playlist and the load, so the packager's segment
#                    window (12 × 2 s) is full and the RSS baseline no longer grows by itself
#   PIN=1            pin rill to CPU 0 and ffmpeg + hls-load to CPU 1 (taskset; needs >= 2 CPUs)
#   OUT_DIR=/tmp/rill-hls-load   logs, per-second lines and the JSON results
# Needs: cargo, ffmpeg (libx264, aac), curl, jq, taskset (util-linux) when PIN=1.

set -euo pipefail
if [[ $# -ne 2 || ! $1 =~ ^[0-9]+$ || ! $2 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 N DURATION_SECONDS" >&2
    exit 2
fi
CLIENTS=$1
DURATION=$2
MODE=${MODE:-hint}
RAMP=${RAMP:-5}
WARMUP=${WARMUP:-3}
BEHIND=${BEHIND:-1.0}
THREADS=${THREADS:-1}
PIN=${PIN:-1}
SETTLE=${SETTLE:-30}
OUT_DIR=${OUT_DIR:-/tmp/rill-hls-load}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/rill-target}
STAMP=$(date +%Y%m%d-%H%M%S)
RUN_DIR=$OUT_DIR/run-$STAMP-n$CLIENTS
mkdir -p "$RUN_DIR/data"

log() { echo "[hls-load.sh] $*" >&2; }

for cmd in cargo ffmpeg curl jq; do
    command -v "$cmd" >/dev/null || { log "missing $cmd (scripts/deps.sh bench installs ffmpeg, jq, curl)"; exit 1; }
done
if [[ $PIN == 1 ]]; then
    if ! command -v taskset >/dev/null || [[ $(nproc) -lt 2 ]]; then
        log "PIN=1 needs taskset and >= 2 CPUs; running unpinned"
        PIN=0
    fi
fi
SERVER_CPU=() CLIENT_CPU=()
if [[ $PIN == 1 ]]; then SERVER_CPU=(taskset -c 0) CLIENT_CPU=(taskset -c 1); fi

# File descriptors: every client holds one connection, in rill and in hls-load.
need=$((CLIENTS + 1024))
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [[ $(ulimit -n) != unlimited && $(ulimit -n) -lt $need ]]; then
    log "ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); $need needed for $CLIENTS clients"
    exit 1
fi

PIDS=()
cleanup() {
    local pid i
    for (( i = ${#PIDS[@]} - 1; i >= 0; i-- )); do # newest first: publisher before server
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
        sleep 0.3 # let the publisher go before the server (no broken-pipe noise in ffmpeg.log)
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # a random port nothing listens on
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        listening "$p" || { echo "$p"; return 0; }
    done
    log "no free port found"; return 1
}

# --- build -------------------------------------------------------------------------------
log "building rill and hls-load (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$ROOT" && cargo build --release --bin rill && cargo build --release -p rill-benches --bin hls-load) >&2
RILL=$CARGO_TARGET_DIR/release/rill
LOAD=$CARGO_TARGET_DIR/release/hls-load

# --- server ------------------------------------------------------------------------------
HTTP_PORT=$(free_port)
RTMP_PORT=$(free_port)
while [[ $RTMP_PORT == "$HTTP_PORT" ]]; do RTMP_PORT=$(free_port); done
(cd "$RUN_DIR" && RILL_AUTH_MODE=open RILL_HTTP_LISTEN=127.0.0.1:$HTTP_PORT RILL_RTMP_LISTEN=127.0.0.1:$RTMP_PORT \
    RILL_SERVER_DATA_DIR="$RUN_DIR/data" RILL_SERVER_LOG=${RILL_SERVER_LOG:-warn} exec "${SERVER_CPU[@]}" "$RILL" \
    >"$RUN_DIR/rill.log" 2>&1) &
RILL_PID=$!
PIDS+=("$RILL_PID")
for _ in $(seq 100); do listening "$HTTP_PORT" && listening "$RTMP_PORT" && break; sleep 0.1; done
[[ $(cat "/proc/$RILL_PID/comm" 2>/dev/null) == rill ]] || { log "pid $RILL_PID is not rill:"; cat "$RUN_DIR/rill.log" >&2; exit 1; }
curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null

# --- publisher: live encode, 1280x720@30, x264 ultrafast/zerolatency, GOP 60, ~2.4 Mbit/s + AAC 128k
"${CLIENT_CPU[@]}" ffmpeg -nostdin -hide_banner -loglevel warning \
    -re -f lavfi -i testsrc2=size=1280x720:rate=30 -re -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -c:v libx264 -preset ultrafast -tune zerolatency -g 60 -keyint_min 60 -sc_threshold 0 \
    -b:v 2300k -maxrate 2500k -bufsize 2500k -pix_fmt yuv420p \
    -c:a aac -b:a 128k -f flv "rtmp://127.0.0.1:$RTMP_PORT/live/bench" >"$RUN_DIR/ffmpeg.log" 2>&1 &
FFMPEG_PID=$!
PIDS+=("$FFMPEG_PID")

URL=http://127.0.0.1:$HTTP_PORT/live/bench/video/media.m3u8
for i in $(seq 60); do
    if curl -fsS --max-time 5 "$URL" 2>/dev/null | grep -q PRELOAD-HINT; then break; fi
    [[ $i == 60 ]] && { log "no playlist at $URL after 30 s"; cat "$RUN_DIR/ffmpeg.log" "$RUN_DIR/rill.log" >&2; exit 1; }
    sleep 0.5
done
log "stream is up; settling ${SETTLE}s (packager window fills) before the RSS baseline"
sleep "$SETTLE"
log "rill pid $RILL_PID (http $HTTP_PORT, rtmp $RTMP_PORT), ffmpeg pid $FFMPEG_PID, pinned: $([[ $PIN == 1 ]] && echo 'rill→cpu0, ffmpeg+hls-load→cpu1' || echo no); logs in $RUN_DIR"

# --- load --------------------------------------------------------------------------------
curl -fsS "http://127.0.0.1:$HTTP_PORT/metrics" | grep -v '^#' >"$RUN_DIR/metrics-before.txt" || true
"${CLIENT_CPU[@]}" "$LOAD" --url "$URL" --clients "$CLIENTS" --seconds "$DURATION" --ramp "$RAMP" --warmup "$WARMUP" \
    --behind "$BEHIND" --threads "$THREADS" --mode "$MODE" --server-pid "$RILL_PID" --publisher-pid "$FFMPEG_PID" \
    --label "rill-llhls-$MODE-n$CLIENTS" >"$RUN_DIR/result.json" 2> >(tee "$RUN_DIR/per-second.log" >&2)
curl -fsS --max-time 10 "http://127.0.0.1:$HTTP_PORT/metrics" | grep -v '^#' >"$RUN_DIR/metrics-after.txt" || true
kill -0 "$RILL_PID" 2>/dev/null || log "rill is gone!"
kill -0 "$FFMPEG_PID" 2>/dev/null || log "ffmpeg is gone!"
cleanup
cat "$RUN_DIR/result.json" >>"$OUT_DIR/results.jsonl"

# --- report ------------------------------------------------------------------------------
R=$RUN_DIR/result.json
echo
echo "LL-HLS load: $CLIENTS clients, mode $MODE, ${DURATION}s window (pinned: $([[ $PIN == 1 ]] && echo 'rill→cpu0, ffmpeg+hls-load→cpu1' || echo no))"
jq -r '
  "  server CPU       \(.server_cpu_seconds) s = \(.server_cpu_per_client_second) CPU-s per client-second (\((.server_cpu_seconds / .seconds * 100) | round)% of one core)",
  "  server RSS       \(.server_rss_baseline_kib) KiB before → \(.server_rss_kib) KiB at end (peak \(.server_rss_peak_kib)); \(.rss_per_client_kib) KiB per client",
  "  client CPU       \(.client_cpu_seconds) s (\((.client_cpu_seconds / .seconds * 100) | round)% of one core); ffmpeg \(.publisher_cpu_seconds) s",
  "  machine          \(.machine_busy_seconds | to_entries | map("\(.key) \((.value * 10 | round) / 10)") | join(", ")) busy CPU-s; other processes \(.other_cpu_seconds) CPU-s",
  "  run-queue wait   server \(.server_runqueue_wait_s) s, client \(.client_runqueue_wait_s) s (runnable but no CPU); client event-loop lag p99 \(.client_loop_lag_p99_ms) max \(.client_loop_lag_max_ms) ms",
  "  requests         \(.requests) (\(.requests_per_s | round)/s): playlists \(.playlist_requests), parts \(.part_requests)",
  "  parts fetched    \(.parts); bytes \(.bytes) (\(.kbit_per_s_per_client) kbit/s per client)",
  "  errors           \(.errors) \(.errors_by_kind); hint 404 \(.hint_404); resyncs \(.resyncs); reconnects \(.reconnects)",
  "  behind (>\(.behind_threshold_s)s)   at end \(.behind_at_end), max \(.behind_max), ever \(.ever_behind) of \(.clients); lag max \(.lag_max_s) s; newest-part age p50/p99 \(.age_p50_s_end)/\(.age_p99_s_end) s",
  "  fan-out spread   last − first client receipt of a part: p50 \(.spread_p50_ms) p90 \(.spread_p90_ms) max \(.spread_max_ms) ms (\(.spread_parts) parts)",
  "  response ms      " + ([.response_ms | to_entries[] | "\(.key) p50 \(.value.p50_ms) p99 \(.value.p99_ms) max \(.value.max_ms_run)"] | join("; "))
' "$R"
echo "  rill log         $(grep -oE '\b(ERROR|WARN)\b' "$RUN_DIR/rill.log" | sort | uniq -c | tr -s ' ' | tr '\n' ' ' || true)(lines by level)"
grep -E 'rill_hls_blocking_requests_total|rill_hls_dash_playlist' "$RUN_DIR/metrics-after.txt" | sed 's/^/  metric           /' || true
echo "  files            $RUN_DIR"
